//! int8 dot-product kernels for the LRIS search: a scalar reference, AVX2 on
//! x86_64, and on aarch64 `sdot` where the CPU has the dot-product extension or
//! a widening multiply otherwise.
//!
//! Every kernel takes codes in -127..=127 (what [`super::quantise`] produces);
//! -128 may give a wrong sum on the AVX2 path, never undefined behaviour.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

use crate::cpu::{self, Simd};

/// One implementation of the int8 kernels.
pub struct DotKernels {
    /// Name shown in logs and benchmarks.
    pub name: &'static str,
    /// Dot product of two int8 vectors of equal length, accumulated in i32.
    pub dot_i8: fn(a: &[i8], b: &[i8]) -> i32,
}

static SCALAR: DotKernels = DotKernels { name: "scalar", dot_i8: scalar::dot_i8 };

#[cfg(target_arch = "x86_64")]
static AVX2: DotKernels = DotKernels { name: "avx2", dot_i8: avx2::dot_i8 };

#[cfg(target_arch = "aarch64")]
static NEON_WIDENING: DotKernels = DotKernels { name: "neon-smull", dot_i8: neon::dot_i8_widening };

#[cfg(target_arch = "aarch64")]
static NEON_SDOT: DotKernels = DotKernels { name: "neon-sdot", dot_i8: neon::dot_i8_sdot };

/// Returns every int8 kernel set of a family this CPU can run, best last.
pub fn dot_kernels_for(family: Simd) -> Vec<&'static DotKernels> {
    if !cpu::available().contains(&family) {
        return Vec::new();
    }
    match family {
        Simd::Scalar => vec![&SCALAR],
        // The AVX-512 family brings its own colour kernels; its int8 search
        // runs the AVX2 kernels, which meet the search target.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 | Simd::Avx512 => vec![&AVX2],
        #[cfg(target_arch = "aarch64")]
        Simd::Neon if cpu::has_dotprod() => vec![&NEON_WIDENING, &NEON_SDOT],
        #[cfg(target_arch = "aarch64")]
        Simd::Neon => vec![&NEON_WIDENING],
        #[allow(unreachable_patterns)]
        _ => Vec::new(),
    }
}

/// Returns the int8 kernels of the family in use (see [`crate::cpu::active`]).
pub fn dot_kernels() -> &'static DotKernels {
    static ACTIVE: std::sync::OnceLock<&'static DotKernels> = std::sync::OnceLock::new();
    ACTIVE.get_or_init(|| dot_kernels_for(cpu::active()).last().copied().unwrap_or(&SCALAR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(seed: u64, len: usize) -> Vec<i8> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (((state >> 40) % 255) as i32 - 127) as i8
            })
            .collect()
    }

    fn all_kernels() -> Vec<&'static DotKernels> {
        cpu::available().into_iter().flat_map(dot_kernels_for).collect()
    }

    #[test]
    fn every_kernel_matches_scalar_on_awkward_lengths() {
        for len in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1279, 1280, 1281] {
            let a = codes(len as u64 + 1, len);
            let b = codes(len as u64 + 1000, len);
            let expected = scalar::dot_i8(&a, &b);
            for kernels in all_kernels() {
                assert_eq!((kernels.dot_i8)(&a, &b), expected, "{} on length {len}", kernels.name);
            }
        }
    }

    #[test]
    fn every_kernel_handles_extreme_codes() {
        let len = 1280;
        for (x, y) in [(127i8, 127i8), (-127, -127), (127, -127), (-127, 127), (0, -127)] {
            let a = vec![x; len];
            let b = vec![y; len];
            let expected = x as i32 * y as i32 * len as i32;
            for kernels in all_kernels() {
                assert_eq!((kernels.dot_i8)(&a, &b), expected, "{} on {x}·{y}", kernels.name);
            }
        }
    }

    #[test]
    fn scalar_dot_is_known_value() {
        assert_eq!(scalar::dot_i8(&[1, -2, 3], &[4, 5, -6]), 4 - 10 - 18);
    }
}
