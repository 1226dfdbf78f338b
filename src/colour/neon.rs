//! Advanced SIMD (NEON) colour kernels for aarch64: sixteen pixels per step
//! with de-interleaving loads, the remaining pixels handed to the scalar kernels.
//!
//! The maths is that of the AVX2 kernels: polynomial log2 and exp2 from
//! `approx.rs`, sums in f32 lanes moved into f64 every few thousand pixels.

use std::arch::aarch64::*;

use super::approx::{EXP2, EXP2_LIMIT, LOG2, LOG2_10};
use super::lab::RGB_TO_LMS;
use super::moments::Moments;
use super::{scalar, LabSums, PixelFilter, Transfer, LMS_FLOOR_F32};

/// Pixels per step: one `ld3` of three 16-byte planes.
const STEP: usize = 16;

/// Steps between moving the f32 lane sums into f64 (4096 pixels).
const FLUSH_STEPS: usize = 256;

/// Sums lαβ over the pixels that pass the filter.
pub fn lab_sums(rgb: &[u8], filter: PixelFilter) -> LabSums {
    // SAFETY: Advanced SIMD is part of the aarch64 base architecture.
    unsafe { lab_sums_neon(rgb, filter) }
}

/// Transfers every pixel of `src` into `dst`, rounding to nearest and clamping.
pub fn transfer(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    // SAFETY: Advanced SIMD is part of the aarch64 base architecture.
    unsafe { transfer_neon(src, dst, transfer) }
}

/// Widens a plane of 16 bytes into four vectors of four f32.
#[inline]
#[target_feature(enable = "neon")]
fn quarters(plane: uint8x16_t) -> [float32x4_t; 4] {
    let low = vmovl_u8(vget_low_u8(plane));
    let high = vmovl_u8(vget_high_u8(plane));
    [
        vcvtq_f32_u32(vmovl_u16(vget_low_u16(low))),
        vcvtq_f32_u32(vmovl_u16(vget_high_u16(low))),
        vcvtq_f32_u32(vmovl_u16(vget_low_u16(high))),
        vcvtq_f32_u32(vmovl_u16(vget_high_u16(high))),
    ]
}

/// Widens a byte mask (0 or 0xFF per lane) into four 32-bit lane masks.
#[inline]
#[target_feature(enable = "neon")]
fn mask_quarters(mask: uint8x16_t) -> [uint32x4_t; 4] {
    let signed = vreinterpretq_s8_u8(mask);
    let low = vmovl_s8(vget_low_s8(signed));
    let high = vmovl_s8(vget_high_s8(signed));
    [
        vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(low))),
        vreinterpretq_u32_s32(vmovl_s16(vget_high_s16(low))),
        vreinterpretq_u32_s32(vmovl_s16(vget_low_s16(high))),
        vreinterpretq_u32_s32(vmovl_s16(vget_high_s16(high))),
    ]
}

/// Applies a 3×3 matrix to three lanes of column vectors.
#[inline]
#[target_feature(enable = "neon")]
fn apply(m: &[[f32; 3]; 3], v: [float32x4_t; 3]) -> [float32x4_t; 3] {
    let row = |r: usize| {
        let partial = vmulq_n_f32(v[2], m[r][2]);
        let partial = vfmaq_n_f32(partial, v[1], m[r][1]);
        vfmaq_n_f32(partial, v[0], m[r][0])
    };
    [row(0), row(1), row(2)]
}

/// log2 of positive normal floats (the callers floor their input at 1).
#[inline]
#[target_feature(enable = "neon")]
fn log2(x: float32x4_t) -> float32x4_t {
    let bits = vreinterpretq_u32_f32(x);
    let exponent = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32::<23>(bits)), vdupq_n_s32(127));
    let mantissa_bits = vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x007f_ffff)), vdupq_n_u32(0x3f80_0000));
    let m = vsubq_f32(vreinterpretq_f32_u32(mantissa_bits), vdupq_n_f32(1.0));
    let mut poly = vdupq_n_f32(LOG2[4]);
    for k in (0..4).rev() {
        poly = vfmaq_f32(vdupq_n_f32(LOG2[k]), poly, m);
    }
    vfmaq_f32(vcvtq_f32_s32(exponent), poly, m)
}

/// 2^x, with x clamped to ±`EXP2_LIMIT`.
#[inline]
#[target_feature(enable = "neon")]
fn exp2(x: float32x4_t) -> float32x4_t {
    let x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-EXP2_LIMIT)), vdupq_n_f32(EXP2_LIMIT));
    let whole = vrndmq_f32(x);
    let fraction = vsubq_f32(x, whole);
    let mut poly = vdupq_n_f32(EXP2[4]);
    for k in (0..4).rev() {
        poly = vfmaq_f32(vdupq_n_f32(EXP2[k]), poly, fraction);
    }
    let scale = vshlq_n_s32::<23>(vcvtq_s32_f32(whole));
    vreinterpretq_f32_s32(vaddq_s32(vreinterpretq_s32_f32(poly), scale))
}

/// log2 of floored LMS for four pixels.
#[inline]
#[target_feature(enable = "neon")]
fn log_lms(rgb: [float32x4_t; 3], rgb_to_lms: &[[f32; 3]; 3]) -> [float32x4_t; 3] {
    let floor = vdupq_n_f32(LMS_FLOOR_F32);
    apply(rgb_to_lms, rgb).map(|lms| log2(vmaxq_f32(lms, floor)))
}

/// Adds four lanes in f64.
#[inline]
#[target_feature(enable = "neon")]
fn lane_sum(v: float32x4_t) -> f64 {
    let mut lanes = [0f32; 4];
    // SAFETY: `lanes` holds exactly four f32.
    unsafe { vst1q_f32(lanes.as_mut_ptr(), v) };
    lanes.iter().map(|&x| x as f64).sum()
}

/// Lane-wise sums of shifted log2-LMS and of its pairwise products.
struct LaneSums {
    sum: [float32x4_t; 3],
    products: [float32x4_t; 6],
}

impl LaneSums {
    #[inline]
    #[target_feature(enable = "neon")]
    fn new() -> LaneSums {
        LaneSums { sum: [vdupq_n_f32(0.0); 3], products: [vdupq_n_f32(0.0); 6] }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    fn add(&mut self, u: [float32x4_t; 3]) {
        for c in 0..3 {
            self.sum[c] = vaddq_f32(self.sum[c], u[c]);
        }
        for (slot, (k, l)) in Moments::PAIRS.iter().enumerate() {
            self.products[slot] = vfmaq_f32(self.products[slot], u[*k], u[*l]);
        }
    }

    #[inline]
    #[target_feature(enable = "neon")]
    fn flush(&mut self, moments: &mut Moments) {
        for c in 0..3 {
            moments.sum[c] += lane_sum(self.sum[c]);
        }
        for slot in 0..6 {
            moments.products[slot] += lane_sum(self.products[slot]);
        }
        *self = LaneSums::new();
    }
}

#[target_feature(enable = "neon")]
fn lab_sums_neon(rgb: &[u8], filter: PixelFilter) -> LabSums {
    let rgb_to_lms = RGB_TO_LMS.map(|row| row.map(|v| v as f32));
    let dark = vdupq_n_u8(filter.dark_below);
    let bright = vdupq_n_u8(filter.bright_from);
    let mut moments = Moments::shifted_for(rgb, filter, &rgb_to_lms, LMS_FLOOR_F32);
    let shift = moments.shift.map(|v| vdupq_n_f32(v));
    let mut lanes = LaneSums::new();

    let chunks = rgb.chunks_exact(3 * STEP);
    let rest = chunks.remainder();
    for (step, chunk) in chunks.enumerate() {
        // SAFETY: the chunk holds exactly 48 bytes, what ld3 reads.
        let planes = unsafe { vld3q_u8(chunk.as_ptr()) };
        let (red, green, blue) = (planes.0, planes.1, planes.2);

        let brightest = vmaxq_u8(vmaxq_u8(red, green), blue);
        let darkest = vminq_u8(vminq_u8(red, green), blue);
        let keep = vandq_u8(vcgeq_u8(brightest, dark), vcltq_u8(darkest, bright));
        moments.count += vaddlvq_u8(vshrq_n_u8::<7>(keep)) as u64;

        let masks = mask_quarters(keep);
        let (r, g, b) = (quarters(red), quarters(green), quarters(blue));
        for q in 0..4 {
            let u = log_lms([r[q], g[q], b[q]], &rgb_to_lms);
            let d: [float32x4_t; 3] = std::array::from_fn(|c| {
                vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(vsubq_f32(u[c], shift[c])), masks[q]))
            });
            lanes.add(d);
        }

        if step % FLUSH_STEPS == FLUSH_STEPS - 1 {
            lanes.flush(&mut moments);
        }
    }
    lanes.flush(&mut moments);

    let mut sums = moments.to_lab_sums();
    sums.add(&scalar::lab_sums(rest, filter));
    sums
}

/// Narrows four vectors of four rounded i32 into sixteen bytes, saturating to 0..=255.
#[inline]
#[target_feature(enable = "neon")]
fn narrow(values: [int32x4_t; 4]) -> uint8x16_t {
    let low = vcombine_u16(vqmovun_s32(values[0]), vqmovun_s32(values[1]));
    let high = vcombine_u16(vqmovun_s32(values[2]), vqmovun_s32(values[3]));
    vcombine_u8(vqmovn_u16(low), vqmovn_u16(high))
}

#[target_feature(enable = "neon")]
fn transfer_neon(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    assert_eq!(src.len(), dst.len(), "transfer needs equal source and destination lengths");
    let offset = transfer.offset.map(|v| v * LOG2_10);
    let done = src.len() / (3 * STEP) * (3 * STEP);

    for (input, output) in src[..done].chunks_exact(3 * STEP).zip(dst[..done].chunks_exact_mut(3 * STEP)) {
        // SAFETY: the chunk holds exactly 48 bytes, what ld3 reads.
        let planes = unsafe { vld3q_u8(input.as_ptr()) };
        let (r, g, b) = (quarters(planes.0), quarters(planes.1), quarters(planes.2));

        let mut rounded = [[vdupq_n_s32(0); 4]; 3];
        for q in 0..4 {
            let u = log_lms([r[q], g[q], b[q]], &transfer.rgb_to_lms);
            let mut v = apply(&transfer.matrix, u);
            for c in 0..3 {
                v[c] = exp2(vaddq_f32(v[c], vdupq_n_f32(offset[c])));
            }
            let out = apply(&transfer.lms_to_rgb, v);
            for c in 0..3 {
                rounded[c][q] = vcvtnq_s32_f32(out[c]);
            }
        }

        let packed = uint8x16x3_t(narrow(rounded[0]), narrow(rounded[1]), narrow(rounded[2]));
        // SAFETY: the output chunk holds exactly 48 bytes, what st3 writes.
        unsafe { vst3q_u8(output.as_mut_ptr(), packed) };
    }

    scalar::transfer(&src[done..], &mut dst[done..], transfer);
}
