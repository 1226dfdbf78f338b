//! AVX2 int8 dot product: 32 codes per step with `vpmaddubsw`, which multiplies
//! unsigned by signed bytes, so the sign of `a` is moved onto `b` first.

use std::arch::x86_64::*;

use super::scalar;

/// Dot product of two int8 vectors with codes in -127..=127, accumulated in i32.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // SAFETY: this kernel is reachable only through the AVX2 table, which
    // `dot_kernels_for` hands out after detecting AVX2.
    unsafe { dot_i8_avx2(a, b) }
}

#[target_feature(enable = "avx2")]
fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    let len = a.len().min(b.len());
    let done = len / 32 * 32;
    let ones = _mm256_set1_epi16(1);
    let mut sums = [_mm256_setzero_si256(); 2];

    for (step, (x, y)) in a[..done].chunks_exact(32).zip(b[..done].chunks_exact(32)).enumerate() {
        // SAFETY: each chunk holds exactly 32 bytes; the loads are unaligned.
        let (x, y) = unsafe { (_mm256_loadu_si256(x.as_ptr().cast()), _mm256_loadu_si256(y.as_ptr().cast())) };
        // |x|·(y·sign x) = x·y; two products of at most 127·127 fit an i16 pair sum.
        let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        sums[step % 2] = _mm256_add_epi32(sums[step % 2], _mm256_madd_epi16(pairs, ones));
    }

    let total = _mm256_add_epi32(sums[0], sums[1]);
    let half = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256::<1>(total));
    let quarter = _mm_add_epi32(half, _mm_shuffle_epi32::<0b01_00_11_10>(half));
    let lane = _mm_add_epi32(quarter, _mm_shuffle_epi32::<0b10_11_00_01>(quarter));
    _mm_cvtsi128_si32(lane) + scalar::dot_i8(&a[done..len], &b[done..len])
}
