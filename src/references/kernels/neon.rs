//! aarch64 int8 dot products: `sdot` (Armv8.2 dot-product extension, e.g.
//! Cortex-A76 and A78AE) and a widening multiply with pairwise accumulation for
//! CPUs without it (e.g. Cortex-A72).

use std::arch::aarch64::*;
use std::arch::asm;

use super::scalar;

/// Dot product with `smull` and `sadalp`, for any aarch64 CPU.
pub fn dot_i8_widening(a: &[i8], b: &[i8]) -> i32 {
    // SAFETY: Advanced SIMD is part of the aarch64 base architecture.
    unsafe { widening(a, b) }
}

/// Dot product with `sdot`.
pub fn dot_i8_sdot(a: &[i8], b: &[i8]) -> i32 {
    // SAFETY: this kernel is reachable only through the table that
    // `dot_kernels_for` hands out after detecting the dot-product extension.
    unsafe { sdot(a, b) }
}

#[target_feature(enable = "neon")]
fn widening(a: &[i8], b: &[i8]) -> i32 {
    let len = a.len().min(b.len());
    let done = len / 16 * 16;
    let mut sums = [vdupq_n_s32(0); 2];

    for (x, y) in a[..done].chunks_exact(16).zip(b[..done].chunks_exact(16)) {
        // SAFETY: each chunk holds exactly 16 bytes.
        let (x, y) = unsafe { (vld1q_s8(x.as_ptr()), vld1q_s8(y.as_ptr())) };
        // Each i16 product is at most 128·128 in magnitude, so it cannot overflow.
        sums[0] = vpadalq_s16(sums[0], vmull_s8(vget_low_s8(x), vget_low_s8(y)));
        sums[1] = vpadalq_s16(sums[1], vmull_high_s8(x, y));
    }

    vaddvq_s32(vaddq_s32(sums[0], sums[1])) + scalar::dot_i8(&a[done..len], &b[done..len])
}

#[target_feature(enable = "neon,dotprod")]
fn sdot(a: &[i8], b: &[i8]) -> i32 {
    let len = a.len().min(b.len());
    let done = len / 16 * 16;
    let mut sums = [vdupq_n_s32(0); 2];

    for (step, (x, y)) in a[..done].chunks_exact(16).zip(b[..done].chunks_exact(16)).enumerate() {
        // SAFETY: each chunk holds exactly 16 bytes.
        let (x, y) = unsafe { (vld1q_s8(x.as_ptr()), vld1q_s8(y.as_ptr())) };
        let mut sum = sums[step % 2];
        // SAFETY: `sdot` only reads and writes the named vector registers; the
        // function is compiled with the dot-product extension enabled.
        unsafe {
            asm!(
                "sdot {sum:v}.4s, {x:v}.16b, {y:v}.16b",
                sum = inout(vreg) sum,
                x = in(vreg) x,
                y = in(vreg) y,
                options(pure, nomem, nostack),
            );
        }
        sums[step % 2] = sum;
    }

    vaddvq_s32(vaddq_s32(sums[0], sums[1])) + scalar::dot_i8(&a[done..len], &b[done..len])
}
