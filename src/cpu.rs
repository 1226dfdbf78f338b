//! Selection of the SIMD kernel family. It is detected once at start-up, or forced
//! by the `--simd` flag or the `THROATSEG_SIMD` environment variable, so tests and
//! QEMU runs can exercise every family on one machine.

use std::sync::OnceLock;

/// Environment variable that forces a kernel family (`auto`, `scalar`, `avx2`, `avx512`, `neon`).
pub const SIMD_ENV: &str = "THROATSEG_SIMD";

/// A family of kernels, each built for one instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Simd {
    /// Portable Rust, the reference every other family is tested against.
    Scalar,
    /// x86_64 with AVX2, FMA and POPCNT.
    Avx2,
    /// x86_64 with AVX-512 F, BW, VL, DQ and VBMI (Ice Lake and later, Zen 4 and
    /// later) on top of AVX2 and FMA. The colour kernels use 16 lanes; the
    /// int8 search kernels are the AVX2 ones.
    Avx512,
    /// aarch64 Advanced SIMD (int8 dot products use `sdot` when the CPU has it).
    Neon,
}

impl Simd {
    /// Returns the name used on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Simd::Scalar => "scalar",
            Simd::Avx2 => "avx2",
            Simd::Avx512 => "avx512",
            Simd::Neon => "neon",
        }
    }

    /// Parses a name as given to `--simd` or `THROATSEG_SIMD`; `auto` gives `None`.
    pub fn parse(name: &str) -> Result<Option<Simd>, SimdError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(None),
            "scalar" => Ok(Some(Simd::Scalar)),
            "avx2" => Ok(Some(Simd::Avx2)),
            "avx512" => Ok(Some(Simd::Avx512)),
            "neon" => Ok(Some(Simd::Neon)),
            _ => Err(SimdError::Unknown(name.to_string())),
        }
    }
}

/// Errors from choosing a kernel family.
#[derive(Debug, thiserror::Error)]
pub enum SimdError {
    /// The name is not a kernel family.
    #[error("unknown SIMD family {0:?}; use auto, scalar, avx2, avx512 or neon")]
    Unknown(String),
    /// The family exists but this CPU (or build) cannot run it.
    #[error("this CPU cannot run the {} kernels (available: {}); choose one of those or auto", .0.name(), names(&available()))]
    Unavailable(Simd),
    /// The family was already fixed for this process.
    #[error("the SIMD family is already fixed to {}", .0.name())]
    AlreadyChosen(Simd),
}

fn names(families: &[Simd]) -> String {
    families.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
}

/// Returns the families this CPU can run, the portable one first and the best last.
pub fn available() -> Vec<Simd> {
    // Only x86_64 and aarch64 builds add a family to the scalar one.
    #[allow(unused_mut)]
    let mut families = vec![Simd::Scalar];
    // Both x86 families count the pixels of a step with `popcnt`.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("popcnt")
    {
        families.push(Simd::Avx2);
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vbmi")
        {
            families.push(Simd::Avx512);
        }
    }
    // Advanced SIMD is part of the aarch64 base architecture.
    #[cfg(target_arch = "aarch64")]
    families.push(Simd::Neon);
    families
}

/// Returns whether this aarch64 CPU has the int8 dot-product instructions (`sdot`).
pub fn has_dotprod() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// Clears the upper halves of the x86 vector registers (`vzeroupper`).
///
/// tract's hand-written AVX and AVX-512 kernels return with the upper register
/// halves still in use. On Intel CPUs every later SSE instruction (the scalar
/// kernels, libm, parts of image decoding) then waits on a merge with those
/// halves. On one Intel Xeon the scalar colour statistics ran 28 times slower
/// right after an embedder pass than right after a segmenter pass. Call this
/// after each tract run. It does nothing on other architectures or CPUs
/// without AVX.
#[inline]
pub fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, which `vzeroupper` needs.
        unsafe { zero_upper() }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zero_upper() {
    std::arch::x86_64::_mm256_zeroupper();
}

static ACTIVE: OnceLock<Simd> = OnceLock::new();

/// Fixes the kernel family for this process: `None` picks the best available.
///
/// Call it once, before any kernel runs; a later call fails unless it asks for
/// the family already in use.
pub fn init(requested: Option<Simd>) -> Result<Simd, SimdError> {
    let family = match requested {
        Some(family) if !available().contains(&family) => return Err(SimdError::Unavailable(family)),
        Some(family) => family,
        None => best(),
    };
    let active = *ACTIVE.get_or_init(|| family);
    if active != family {
        return Err(SimdError::AlreadyChosen(active));
    }
    tracing::info!(simd = family.name(), dotprod = has_dotprod(), "kernel family chosen");
    Ok(family)
}

/// Returns the kernel family in use, fixing it from `THROATSEG_SIMD` (or
/// detection) on first use when [`init`] was not called.
pub fn active() -> Simd {
    *ACTIVE.get_or_init(|| {
        let requested = std::env::var(SIMD_ENV).ok();
        match requested.as_deref().map(Simd::parse) {
            None | Some(Ok(None)) => best(),
            Some(Ok(Some(family))) if available().contains(&family) => family,
            Some(Ok(Some(family))) => {
                tracing::warn!("{SIMD_ENV}: {}; using {}", SimdError::Unavailable(family), best().name());
                best()
            }
            Some(Err(error)) => {
                tracing::warn!("{SIMD_ENV}: {error}; using {}", best().name());
                best()
            }
        }
    })
}

fn best() -> Simd {
    *available().last().unwrap_or(&Simd::Scalar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_is_always_available() {
        assert_eq!(available()[0], Simd::Scalar);
    }

    #[test]
    fn parse_accepts_names_and_auto() {
        assert_eq!(Simd::parse("AVX2").unwrap(), Some(Simd::Avx2));
        assert_eq!(Simd::parse("auto").unwrap(), None);
        assert!(matches!(Simd::parse("sse9"), Err(SimdError::Unknown(_))));
    }

    #[test]
    fn unavailable_family_is_refused() {
        let missing = [Simd::Avx2, Simd::Avx512, Simd::Neon].into_iter().find(|s| !available().contains(s));
        if let Some(family) = missing {
            assert!(matches!(init(Some(family)), Err(SimdError::Unavailable(_))));
        }
    }
}
