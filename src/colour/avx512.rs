//! AVX-512 colour kernels for x86_64: sixteen pixels per step in one
//! register, the remaining pixels handed to the scalar kernels.
//!
//! They compute what the AVX2 kernels compute, with the same polynomials from
//! `approx.rs`, but with fewer instructions per pixel:
//! - `vpermb` (VBMI) splits 48 bytes of packed RGB into three planes with one
//!   shuffle, and a second one merges them back;
//! - `vgetexpps` and `vgetmantps` reduce the argument of log2;
//! - for exp2, `vrangeps` (DQ) clamps the argument, `vreduceps` (DQ) takes its
//!   fraction, and `vscalefps` scales the result by 2 to its integer part;
//! - the pixel filter is a mask register that the masked adds and fused
//!   multiply-adds of the statistics use directly;
//! - `vpackusdw` and `vpackuswb` saturate the rounded values to bytes, and the
//!   merging `vpermb` also undoes their interleaving.
//!
//! Both kernels work through blocks of [`BLOCK_STEPS`] steps one stage at a
//! time, with the intermediate values in a 3 KB buffer. The constant's
//! documentation explains why.
//!
//! The statistics kernel can also keep its log2-LMS for the transfers of the
//! same pixels (`lab_sums_keeping`, `transfer_from_log_lms`). Such a transfer starts at
//! the 3×3 product in log space and skips the RGB split, RGB→LMS and the three
//! logarithms of each step.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use super::approx::{EXP2, EXP2_LIMIT, LOG2, LOG2_10};
use super::lab::RGB_TO_LMS;
use super::moments::Moments;
use super::{scalar, LabSums, LogStep, PixelFilter, Transfer, LMS_FLOOR_F32};

/// Pixels per step: 48 bytes.
const STEP: usize = 16;

/// Bytes of one step.
const STEP_BYTES: usize = 3 * STEP;

/// Mask of the 48 bytes of one step in a 64-byte register.
const STEP_MASK: __mmask64 = (1 << STEP_BYTES) - 1;

/// Steps between moving the f32 lane sums into f64 (4096 pixels, 256 per lane).
const FLUSH_STEPS: usize = 256;

/// Steps per block of the staged loops.
///
/// The stages of one step (split, 3×3 product, log2, 3×3 product, exp2, 3×3
/// product, pack) form one dependency chain, about 170 cycles long by the
/// instruction latencies. In a loop that runs all stages per step, the
/// out-of-order window keeps about two steps in flight, so the vector ports
/// sit idle for half the time. Run stage by stage over a block, each stage has
/// sixteen independent steps to overlap. On an Ice Lake server core this cut
/// the transfer's time by a third and the statistics' time by an eighth.
const BLOCK_STEPS: usize = 16;

/// `vpermb` indices that turn 16 packed RGB pixels into the planes
/// R0..R15, G0..G15, B0..B15 (the last 16 bytes repeat the first).
const SPLIT: [u8; 64] = split_indices();

/// `vpermb` indices that turn the output of the byte packs back into 16
/// packed RGB pixels. The packs work within 128-bit lanes, so lane `k` contains
/// the red, green and blue bytes of pixels 4k..4k+3, four bytes per channel.
const MERGE: [u8; 64] = merge_indices();

const fn split_indices() -> [u8; 64] {
    let mut indices = [0u8; 64];
    let mut position = 0;
    while position < 64 {
        let (channel, pixel) = ((position / 16) % 3, position % 16);
        indices[position] = (3 * pixel + channel) as u8;
        position += 1;
    }
    indices
}

const fn merge_indices() -> [u8; 64] {
    let mut indices = [0u8; 64];
    let mut position = 0;
    while position < STEP_BYTES {
        let (pixel, channel) = (position / 3, position % 3);
        indices[position] = (16 * (pixel / 4) + 4 * channel + pixel % 4) as u8;
        position += 1;
    }
    indices
}

/// Sums lαβ over the pixels that pass the filter.
pub fn lab_sums(rgb: &[u8], filter: PixelFilter) -> LabSums {
    // SAFETY: this kernel is reachable only through the AVX-512 kernel table,
    // which `colour::kernels_for` hands out after detecting the features.
    unsafe { lab_sums_avx512(rgb, filter, None) }
}

/// Sums lαβ as [`lab_sums`] does and replaces the content of `log_lms` with
/// the log2-LMS of each whole step of `rgb`.
pub fn lab_sums_keeping(rgb: &[u8], filter: PixelFilter, log_lms: &mut Vec<LogStep>) -> LabSums {
    let steps = rgb.len() / STEP_BYTES;
    log_lms.clear();
    log_lms.reserve(steps);
    // SAFETY: `LogStep` and `[__m512; 3]` are both 192 bytes of f32 lanes with
    // 64-byte alignment, and the kernel writes each of the `steps` slots.
    let slots = unsafe { std::slice::from_raw_parts_mut(log_lms.spare_capacity_mut().as_mut_ptr().cast(), steps) };
    // SAFETY: as for `lab_sums`, the table is only handed out after detection.
    let sums = unsafe { lab_sums_avx512(rgb, filter, Some(slots)) };
    // SAFETY: the kernel initialised the first `steps` slots.
    unsafe { log_lms.set_len(steps) };
    sums
}

/// Transfers every pixel of `src` into `dst`, rounding to nearest and clamping.
pub fn transfer(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    // SAFETY: as for `lab_sums`, the table is only handed out after detection.
    unsafe { transfer_avx512(src, dst, transfer) }
}

/// Transfers `src` as [`transfer`] does, with the log2-LMS of its whole steps
/// from [`lab_sums_keeping`] on the same pixels.
pub fn transfer_from_log_lms(src: &[u8], log_lms: &[LogStep], dst: &mut [u8], transfer: &Transfer) {
    // SAFETY: the layouts match, as in `lab_sums_keeping`, and every slot is initialised.
    let steps = unsafe { std::slice::from_raw_parts(log_lms.as_ptr().cast(), log_lms.len()) };
    // SAFETY: as for `lab_sums`, the table is only handed out after detection.
    unsafe { transfer_from_log_lms_avx512(src, steps, dst, transfer) }
}

/// Loads the 64 bytes of a `vpermb` index table.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn indices(table: &[u8; 64]) -> __m512i {
    // SAFETY: the array contains exactly 64 bytes, and the load is unaligned.
    unsafe { _mm512_loadu_si512(table.as_ptr().cast()) }
}

/// Splits the 16 packed RGB pixels of `pixels` (at least 48 bytes) into planes.
/// Returns the planes as bytes in one register (red, green, blue in the low
/// three 16-byte lanes) and as f32 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn split(pixels: &[u8], split: __m512i) -> (__m512i, [__m512; 3]) {
    assert!(pixels.len() >= STEP_BYTES);
    // SAFETY: the mask reads only the first 48 bytes, inside the slice.
    let bytes = unsafe { _mm512_maskz_loadu_epi8(STEP_MASK, pixels.as_ptr().cast()) };
    let planes = _mm512_permutexvar_epi8(split, bytes);
    let lanes = [
        _mm512_castsi512_si128(planes),
        _mm512_extracti32x4_epi32::<1>(planes),
        _mm512_extracti32x4_epi32::<2>(planes),
    ];
    (planes, lanes.map(|plane| _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(plane))))
}

/// Applies a 3×3 matrix to three lanes of column vectors, plus `offset` when given.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn apply(m: &[[f32; 3]; 3], v: [__m512; 3], offset: Option<[f32; 3]>) -> [__m512; 3] {
    let row = |r: usize| {
        let partial = match offset {
            Some(offset) => _mm512_fmadd_ps(_mm512_set1_ps(m[r][2]), v[2], _mm512_set1_ps(offset[r])),
            None => _mm512_mul_ps(_mm512_set1_ps(m[r][2]), v[2]),
        };
        let partial = _mm512_fmadd_ps(_mm512_set1_ps(m[r][1]), v[1], partial);
        _mm512_fmadd_ps(_mm512_set1_ps(m[r][0]), v[0], partial)
    };
    [row(0), row(1), row(2)]
}

/// log2 of positive normal floats (the callers floor their input at 1).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn log2(x: __m512) -> __m512 {
    let exponent = _mm512_getexp_ps(x);
    let mantissa = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(x);
    let m = _mm512_sub_ps(mantissa, _mm512_set1_ps(1.0));
    let mut poly = _mm512_set1_ps(LOG2[4]);
    for k in (0..4).rev() {
        poly = _mm512_fmadd_ps(poly, m, _mm512_set1_ps(LOG2[k]));
    }
    _mm512_fmadd_ps(poly, m, exponent)
}

/// 2^x, with x clamped to ±`EXP2_LIMIT`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn exp2(x: __m512) -> __m512 {
    // sign(x)·min(|x|, limit): `vrangeps` with the smaller magnitude and the sign of x.
    let x = _mm512_range_ps::<0b0010>(x, _mm512_set1_ps(EXP2_LIMIT));
    // x − floor(x): `vreduceps` rounding down, no fraction bits kept, no
    // precision exception.
    let fraction = _mm512_reduce_ps::<0b1001>(x);
    let mut poly = _mm512_set1_ps(EXP2[4]);
    for k in (0..4).rev() {
        poly = _mm512_fmadd_ps(poly, fraction, _mm512_set1_ps(EXP2[k]));
    }
    // `vscalefps` multiplies by 2^floor(x).
    _mm512_scalef_ps(poly, x)
}

/// log2 of LMS floored at `LMS_FLOOR_F32`, for sixteen pixels.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn log_lms(lms: [__m512; 3]) -> [__m512; 3] {
    let floor = _mm512_set1_ps(LMS_FLOOR_F32);
    lms.map(|value| log2(_mm512_max_ps(value, floor)))
}

/// Adds sixteen lanes in f64.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn lane_sum(v: __m512) -> f64 {
    let mut lanes = [0f32; 16];
    // SAFETY: `lanes` contains exactly sixteen f32.
    unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) };
    lanes.iter().map(|&x| x as f64).sum()
}

/// Lane-wise sums of shifted log2-LMS and of its pairwise products.
struct LaneSums {
    count: u32,
    sum: [__m512; 3],
    products: [__m512; 6],
}

impl LaneSums {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
    fn new() -> LaneSums {
        LaneSums { count: 0, sum: [_mm512_setzero_ps(); 3], products: [_mm512_setzero_ps(); 6] }
    }

    /// Adds the lanes selected by `keep`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq,popcnt")]
    fn add(&mut self, u: [__m512; 3], keep: __mmask16) {
        self.count += keep.count_ones();
        for c in 0..3 {
            self.sum[c] = _mm512_mask_add_ps(self.sum[c], keep, self.sum[c], u[c]);
        }
        for (slot, (k, l)) in Moments::PAIRS.iter().enumerate() {
            self.products[slot] = _mm512_mask3_fmadd_ps(u[*k], u[*l], self.products[slot], keep);
        }
    }

    /// Adds the lane sums to the f64 totals. Taking `self` by value lets the
    /// compiler keep the sums in registers: a call through `&mut self` inside
    /// the loop kept them on the stack, one store and reload per step.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
    fn flush(self, moments: &mut Moments) {
        moments.count += self.count as u64;
        for c in 0..3 {
            moments.sum[c] += lane_sum(self.sum[c]);
        }
        for slot in 0..6 {
            moments.products[slot] += lane_sum(self.products[slot]);
        }
    }
}

/// Sums lαβ over the pixels that pass the filter, and writes the log2-LMS of
/// step `i` into `log_out[i]` when `log_out` is given (one slot per whole step).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq,popcnt")]
fn lab_sums_avx512(rgb: &[u8], filter: PixelFilter, mut log_out: Option<&mut [MaybeUninit<[__m512; 3]>]>) -> LabSums {
    let rgb_to_lms = RGB_TO_LMS.map(|row| row.map(|v| v as f32));
    let dark = _mm_set1_epi8(filter.dark_below as i8);
    let bright = _mm_set1_epi8(filter.bright_from as i8);
    let split_indices = indices(&SPLIT);
    let mut moments = Moments::shifted_for(rgb, filter, &rgb_to_lms, LMS_FLOOR_F32);
    let shift = moments.shift.map(|v| _mm512_set1_ps(v));
    let mut values = [[_mm512_setzero_ps(); 3]; BLOCK_STEPS];
    let mut keeps: [__mmask16; BLOCK_STEPS] = [0; BLOCK_STEPS];

    let done = rgb.len() / STEP_BYTES * STEP_BYTES;
    let mut first_step = 0;
    for flush_block in rgb[..done].chunks(FLUSH_STEPS * STEP_BYTES) {
        let mut lanes = LaneSums::new();
        for block in flush_block.chunks(BLOCK_STEPS * STEP_BYTES) {
            let steps = block.len() / STEP_BYTES;
            // Stage 1: the pixel filter and LMS.
            for ((chunk, lms), keep) in block.chunks_exact(STEP_BYTES).zip(&mut values).zip(&mut keeps) {
                let (planes, rgb) = split(chunk, split_indices);
                let red = _mm512_castsi512_si128(planes);
                let green = _mm512_extracti32x4_epi32::<1>(planes);
                let blue = _mm512_extracti32x4_epi32::<2>(planes);
                let brightest = _mm_max_epu8(_mm_max_epu8(red, green), blue);
                let darkest = _mm_min_epu8(_mm_min_epu8(red, green), blue);
                *keep = _mm_cmpge_epu8_mask(brightest, dark) & _mm_cmplt_epu8_mask(darkest, bright);
                *lms = apply(&rgb_to_lms, rgb, None);
            }
            // Stage 2: log2-LMS, also written to `log_out` when given.
            match log_out.as_deref_mut() {
                Some(log_out) => {
                    for (lms, slot) in values[..steps].iter_mut().zip(&mut log_out[first_step..first_step + steps]) {
                        *lms = log_lms(*lms);
                        slot.write(*lms);
                    }
                }
                None => {
                    for lms in &mut values[..steps] {
                        *lms = log_lms(*lms);
                    }
                }
            }
            // Stage 3: the sums of the shifted values.
            for (u, keep) in values[..steps].iter().zip(keeps) {
                lanes.add(std::array::from_fn(|c| _mm512_sub_ps(u[c], shift[c])), keep);
            }
            first_step += steps;
        }
        lanes.flush(&mut moments);
    }

    let mut sums = moments.to_lab_sums();
    sums.add(&scalar::lab_sums(&rgb[done..], filter));
    sums
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn transfer_avx512(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    assert_eq!(src.len(), dst.len(), "transfer needs equal source and destination lengths");
    let offset = transfer.offset.map(|v| v * LOG2_10);
    let split_indices = indices(&SPLIT);
    let merge_indices = indices(&MERGE);
    let mut values = [[_mm512_setzero_ps(); 3]; BLOCK_STEPS];
    let done = src.len() / STEP_BYTES * STEP_BYTES;

    let blocks = src[..done].chunks(BLOCK_STEPS * STEP_BYTES).zip(dst[..done].chunks_mut(BLOCK_STEPS * STEP_BYTES));
    for (input, output) in blocks {
        let values = &mut values[..input.len() / STEP_BYTES];
        // Stage 1: LMS.
        for (chunk, lms) in input.chunks_exact(STEP_BYTES).zip(values.iter_mut()) {
            let (_, rgb) = split(chunk, split_indices);
            *lms = apply(&transfer.rgb_to_lms, rgb, None);
        }
        // Stage 2: the affine map of log2-LMS.
        for lms in values.iter_mut() {
            *lms = apply(&transfer.matrix, log_lms(*lms), Some(offset));
        }
        // Stage 3: back from logarithms.
        for v in values.iter_mut() {
            *v = v.map(|value| exp2(value));
        }
        // Stage 4: RGB, rounded and packed.
        for (chunk, v) in output.chunks_exact_mut(STEP_BYTES).zip(values.iter()) {
            store_rgb(chunk, &transfer.lms_to_rgb, *v, merge_indices);
        }
    }

    scalar::transfer(&src[done..], &mut dst[done..], transfer);
}

/// Transfers `src` from its kept log2-LMS: the last three stages of
/// `transfer_avx512`, with the 3×3 product and exp2 in one stage.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn transfer_from_log_lms_avx512(src: &[u8], log_lms: &[[__m512; 3]], dst: &mut [u8], transfer: &Transfer) {
    assert_eq!(src.len(), dst.len(), "transfer needs equal source and destination lengths");
    let done = src.len() / STEP_BYTES * STEP_BYTES;
    assert_eq!(log_lms.len(), done / STEP_BYTES, "log2-LMS must have one slot per whole step of the source");
    let offset = transfer.offset.map(|v| v * LOG2_10);
    let merge_indices = indices(&MERGE);
    let mut values = [[_mm512_setzero_ps(); 3]; BLOCK_STEPS];

    for (logs, output) in log_lms.chunks(BLOCK_STEPS).zip(dst[..done].chunks_mut(BLOCK_STEPS * STEP_BYTES)) {
        let values = &mut values[..logs.len()];
        // Stage 1: the affine map of log2-LMS, back from logarithms.
        for (v, log) in values.iter_mut().zip(logs) {
            *v = apply(&transfer.matrix, *log, Some(offset)).map(|value| exp2(value));
        }
        // Stage 2: RGB, rounded and packed.
        for (chunk, v) in output.chunks_exact_mut(STEP_BYTES).zip(values.iter()) {
            store_rgb(chunk, &transfer.lms_to_rgb, *v, merge_indices);
        }
    }

    scalar::transfer(&src[done..], &mut dst[done..], transfer);
}

/// Converts one step of LMS to RGB with `lms_to_rgb`, rounds, saturates to
/// bytes and stores the 48 bytes of packed RGB in `chunk`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512dq")]
fn store_rgb(chunk: &mut [u8], lms_to_rgb: &[[f32; 3]; 3], lms: [__m512; 3], merge_indices: __m512i) {
    assert_eq!(chunk.len(), STEP_BYTES);
    // Values above 255, infinities included, are clamped before the
    // conversion, which would turn them into i32::MIN. Negative values
    // become 0 in the unsigned saturation of the packs.
    let top = _mm512_set1_ps(255.0);
    let rounded = apply(lms_to_rgb, lms, None).map(|channel| _mm512_cvtps_epi32(_mm512_min_ps(channel, top)));
    let red_green = _mm512_packus_epi32(rounded[0], rounded[1]);
    let blue = _mm512_packus_epi32(rounded[2], rounded[2]);
    let packed = _mm512_permutexvar_epi8(merge_indices, _mm512_packus_epi16(red_green, blue));
    // SAFETY: `chunk` contains exactly 48 bytes, and the mask writes only those.
    unsafe { _mm512_mask_storeu_epi8(chunk.as_mut_ptr().cast(), STEP_MASK, packed) };
}
