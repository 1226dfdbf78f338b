//! AVX2 and FMA colour kernels for x86_64: sixteen pixels per step, the
//! remaining pixels handed to the scalar kernels.
//!
//! Both kernels use the polynomial log2 and exp2 of `approx.rs`. The sums are
//! kept in f32 lanes for a few thousand pixels at a time, then added in f64.
//! Like the AVX-512 kernels, both work through blocks of [`BLOCK_STEPS`] steps
//! one stage at a time, which lets the core overlap the long dependency chain
//! of one step with the other steps of the block.

use std::arch::x86_64::*;

use super::approx::{EXP2, EXP2_LIMIT, LOG2, LOG2_10};
use super::lab::RGB_TO_LMS;
use super::moments::Moments;
use super::{scalar, LabSums, PixelFilter, Transfer, LMS_FLOOR_F32};

/// Pixels per step: 48 bytes, three 16-byte loads.
const STEP: usize = 16;

/// Steps between moving the f32 lane sums into f64 (4096 pixels).
const FLUSH_STEPS: usize = 256;

/// Steps per block of the staged loops: 32 sets of eight pixels.
const BLOCK_STEPS: usize = 16;

/// Byte shuffles that split 48 bytes of packed RGB into three planes of 16
/// (`SPLIT[channel][block]`) and merge them back (`MERGE[block][channel]`).
/// A lane index of 0x80 writes zero.
const SPLIT: [[[u8; 16]; 3]; 3] = split_masks();
const MERGE: [[[u8; 16]; 3]; 3] = merge_masks();

const fn split_masks() -> [[[u8; 16]; 3]; 3] {
    let mut masks = [[[0x80u8; 16]; 3]; 3];
    let mut channel = 0;
    while channel < 3 {
        let mut pixel = 0;
        while pixel < 16 {
            let source = 3 * pixel + channel;
            masks[channel][source / 16][pixel] = (source % 16) as u8;
            pixel += 1;
        }
        channel += 1;
    }
    masks
}

const fn merge_masks() -> [[[u8; 16]; 3]; 3] {
    let mut masks = [[[0x80u8; 16]; 3]; 3];
    let mut position = 0;
    while position < 48 {
        masks[position / 16][position % 3][position % 16] = (position / 3) as u8;
        position += 1;
    }
    masks
}

/// Sums lαβ over the pixels that pass the filter.
pub fn lab_sums(rgb: &[u8], filter: PixelFilter) -> LabSums {
    // SAFETY: this kernel is reachable only through the AVX2 kernel table, which
    // `colour::kernels_for` hands out after detecting AVX2, FMA and POPCNT.
    unsafe { lab_sums_avx2(rgb, filter) }
}

/// Transfers every pixel of `src` into `dst`, rounding to nearest and clamping.
pub fn transfer(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    // SAFETY: as for `lab_sums`, the table is only handed out after detection.
    unsafe { transfer_avx2(src, dst, transfer) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn mask(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: the array holds exactly 16 bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// Splits 16 packed RGB pixels into planes of red, green and blue bytes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn split(pixels: &[u8]) -> [__m128i; 3] {
    assert!(pixels.len() >= 48);
    // SAFETY: the assert above keeps the three 16-byte loads inside the slice.
    let blocks = unsafe {
        let p = pixels.as_ptr();
        [_mm_loadu_si128(p.cast()), _mm_loadu_si128(p.add(16).cast()), _mm_loadu_si128(p.add(32).cast())]
    };
    let channel = |c: usize| {
        let first = _mm_shuffle_epi8(blocks[0], mask(&SPLIT[c][0]));
        let second = _mm_shuffle_epi8(blocks[1], mask(&SPLIT[c][1]));
        let third = _mm_shuffle_epi8(blocks[2], mask(&SPLIT[c][2]));
        _mm_or_si128(_mm_or_si128(first, second), third)
    };
    [channel(0), channel(1), channel(2)]
}

/// Merges planes of red, green and blue bytes into 16 packed RGB pixels.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn merge(planes: [__m128i; 3], out: &mut [u8]) {
    assert!(out.len() >= 48);
    for (block, masks) in MERGE.iter().enumerate() {
        let red = _mm_shuffle_epi8(planes[0], mask(&masks[0]));
        let green = _mm_shuffle_epi8(planes[1], mask(&masks[1]));
        let blue = _mm_shuffle_epi8(planes[2], mask(&masks[2]));
        let bytes = _mm_or_si128(_mm_or_si128(red, green), blue);
        // SAFETY: the assert above keeps block * 16 + 16 ≤ 48 inside the slice.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().add(block * 16).cast(), bytes) };
    }
}

/// Converts the low eight bytes of each plane to f32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn to_f32(planes: [__m128i; 3]) -> [__m256; 3] {
    planes.map(|plane| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(plane)))
}

/// Returns the high eight bytes of each plane in the low half.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn high_half(planes: [__m128i; 3]) -> [__m128i; 3] {
    planes.map(|plane| _mm_srli_si128::<8>(plane))
}

/// Applies a 3×3 matrix to three lanes of column vectors.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn apply(m: &[[f32; 3]; 3], v: [__m256; 3]) -> [__m256; 3] {
    let row = |r: usize| {
        let partial = _mm256_mul_ps(_mm256_set1_ps(m[r][2]), v[2]);
        let partial = _mm256_fmadd_ps(_mm256_set1_ps(m[r][1]), v[1], partial);
        _mm256_fmadd_ps(_mm256_set1_ps(m[r][0]), v[0], partial)
    };
    [row(0), row(1), row(2)]
}

/// log2 of positive normal floats (the callers floor their input at 1).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn log2(x: __m256) -> __m256 {
    let bits = _mm256_castps_si256(x);
    let exponent = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(127));
    let mantissa_bits = _mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x3f80_0000),
    );
    let m = _mm256_sub_ps(_mm256_castsi256_ps(mantissa_bits), _mm256_set1_ps(1.0));
    let mut poly = _mm256_set1_ps(LOG2[4]);
    for k in (0..4).rev() {
        poly = _mm256_fmadd_ps(poly, m, _mm256_set1_ps(LOG2[k]));
    }
    _mm256_fmadd_ps(poly, m, _mm256_cvtepi32_ps(exponent))
}

/// 2^x, with x clamped to ±`EXP2_LIMIT`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp2(x: __m256) -> __m256 {
    let x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-EXP2_LIMIT)), _mm256_set1_ps(EXP2_LIMIT));
    let whole = _mm256_floor_ps(x);
    let fraction = _mm256_sub_ps(x, whole);
    let mut poly = _mm256_set1_ps(EXP2[4]);
    for k in (0..4).rev() {
        poly = _mm256_fmadd_ps(poly, fraction, _mm256_set1_ps(EXP2[k]));
    }
    let scale = _mm256_slli_epi32::<23>(_mm256_cvtps_epi32(whole));
    _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(poly), scale))
}

/// log2 of LMS floored at `LMS_FLOOR_F32`, for eight pixels.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn log_lms(lms: [__m256; 3]) -> [__m256; 3] {
    let floor = _mm256_set1_ps(LMS_FLOOR_F32);
    lms.map(|value| log2(_mm256_max_ps(value, floor)))
}

/// Adds eight lanes in f64.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lane_sum(v: __m256) -> f64 {
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly eight f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
    lanes.iter().map(|&x| x as f64).sum()
}

/// Lane-wise sums of shifted log2-LMS and of its pairwise products.
struct LaneSums {
    sum: [__m256; 3],
    products: [__m256; 6],
}

impl LaneSums {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new() -> LaneSums {
        LaneSums { sum: [_mm256_setzero_ps(); 3], products: [_mm256_setzero_ps(); 6] }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn add(&mut self, u: [__m256; 3]) {
        for c in 0..3 {
            self.sum[c] = _mm256_add_ps(self.sum[c], u[c]);
        }
        for (slot, (k, l)) in Moments::PAIRS.iter().enumerate() {
            self.products[slot] = _mm256_fmadd_ps(u[*k], u[*l], self.products[slot]);
        }
    }

    /// Adds the lane sums to the f64 totals; taking `self` by value keeps the
    /// sums in registers while the loop runs.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn flush(self, moments: &mut Moments) {
        for c in 0..3 {
            moments.sum[c] += lane_sum(self.sum[c]);
        }
        for slot in 0..6 {
            moments.products[slot] += lane_sum(self.products[slot]);
        }
    }
}

#[target_feature(enable = "avx2,fma,popcnt")]
fn lab_sums_avx2(rgb: &[u8], filter: PixelFilter) -> LabSums {
    let rgb_to_lms = RGB_TO_LMS.map(|row| row.map(|v| v as f32));
    let dark = _mm_set1_epi8(filter.dark_below as i8);
    let bright = _mm_set1_epi8(filter.bright_from as i8);
    let mut moments = Moments::shifted_for(rgb, filter, &rgb_to_lms, LMS_FLOOR_F32);
    let shift = moments.shift.map(|v| _mm256_set1_ps(v));
    // Two sets of eight pixels per step.
    let mut values = [[_mm256_setzero_ps(); 3]; 2 * BLOCK_STEPS];
    let mut selected = [_mm256_setzero_ps(); 2 * BLOCK_STEPS];

    let done = rgb.len() / (3 * STEP) * (3 * STEP);
    for flush_block in rgb[..done].chunks(FLUSH_STEPS * 3 * STEP) {
        let mut lanes = LaneSums::new();
        for block in flush_block.chunks(BLOCK_STEPS * 3 * STEP) {
            let sets = 2 * block.len() / (3 * STEP);
            // Stage 1: the pixel filter and LMS.
            let slots = values.chunks_exact_mut(2).zip(selected.chunks_exact_mut(2));
            for (chunk, (lms, select)) in block.chunks_exact(3 * STEP).zip(slots) {
                let planes = split(chunk);
                // Unsigned byte comparisons by way of max: a ≥ b ⇔ max(a, b) = a.
                let brightest = _mm_max_epu8(_mm_max_epu8(planes[0], planes[1]), planes[2]);
                let darkest = _mm_min_epu8(_mm_min_epu8(planes[0], planes[1]), planes[2]);
                let lit = _mm_cmpeq_epi8(_mm_max_epu8(brightest, dark), brightest);
                let saturated = _mm_cmpeq_epi8(_mm_max_epu8(darkest, bright), darkest);
                let keep = _mm_andnot_si128(saturated, lit);
                moments.count += (_mm_movemask_epi8(keep) as u32).count_ones() as u64;
                for (half, (planes, keep)) in [(planes, keep), (high_half(planes), _mm_srli_si128::<8>(keep))].into_iter().enumerate() {
                    select[half] = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(keep));
                    lms[half] = apply(&rgb_to_lms, to_f32(planes));
                }
            }
            // Stage 2: shifted log2-LMS of the counted pixels, zero elsewhere.
            for (lms, select) in values[..sets].iter_mut().zip(&selected) {
                let u = log_lms(*lms);
                *lms = std::array::from_fn(|c| _mm256_and_ps(_mm256_sub_ps(u[c], shift[c]), *select));
            }
            // Stage 3: the sums.
            for d in &values[..sets] {
                lanes.add(*d);
            }
        }
        lanes.flush(&mut moments);
    }

    let mut sums = moments.to_lab_sums();
    sums.add(&scalar::lab_sums(&rgb[done..], filter));
    sums
}

/// Packs two sets of eight i32 into sixteen bytes, saturating to 0..=255.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pack(low: __m256i, high: __m256i) -> __m128i {
    // packus works within 128-bit lanes; the permute puts the quadwords back in order.
    let words = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(low, high));
    _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256::<1>(words))
}

#[target_feature(enable = "avx2,fma")]
fn transfer_avx2(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    assert_eq!(src.len(), dst.len(), "transfer needs equal source and destination lengths");
    let offset = transfer.offset.map(|v| _mm256_set1_ps(v * LOG2_10));
    // Clamped before the conversion: a value beyond the i32 range would
    // convert to i32::MIN, which the saturating packs turn into 0, not 255.
    let (zero, top) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
    let mut values = [[_mm256_setzero_ps(); 3]; 2 * BLOCK_STEPS];
    let done = src.len() / (3 * STEP) * (3 * STEP);

    let blocks = src[..done].chunks(BLOCK_STEPS * 3 * STEP).zip(dst[..done].chunks_mut(BLOCK_STEPS * 3 * STEP));
    for (input, output) in blocks {
        let values = &mut values[..2 * input.len() / (3 * STEP)];
        // Stage 1: LMS.
        for (chunk, lms) in input.chunks_exact(3 * STEP).zip(values.chunks_exact_mut(2)) {
            let planes = split(chunk);
            lms[0] = apply(&transfer.rgb_to_lms, to_f32(planes));
            lms[1] = apply(&transfer.rgb_to_lms, to_f32(high_half(planes)));
        }
        // Stage 2: the affine map of log2-LMS.
        for lms in values.iter_mut() {
            let v = apply(&transfer.matrix, log_lms(*lms));
            *lms = std::array::from_fn(|c| _mm256_add_ps(v[c], offset[c]));
        }
        // Stage 3: back from logarithms.
        for v in values.iter_mut() {
            *v = v.map(|value| exp2(value));
        }
        // Stage 4: RGB, rounded and packed.
        for (chunk, v) in output.chunks_exact_mut(3 * STEP).zip(values.chunks_exact(2)) {
            let [low, high] = [v[0], v[1]].map(|v| {
                apply(&transfer.lms_to_rgb, v).map(|channel| _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(channel, zero), top)))
            });
            merge([pack(low[0], high[0]), pack(low[1], high[1]), pack(low[2], high[2])], chunk);
        }
    }

    scalar::transfer(&src[done..], &mut dst[done..], transfer);
}
