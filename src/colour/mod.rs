//! Colour statistics and Reinhard colour transfer in lαβ (the default) or in
//! 8-bit CIE L*a*b* ([`cielab`]), plus the joint RGB histogram that global
//! reference selection compares.
//!
//! Reinhard et al., "Color transfer between images", IEEE Computer Graphics and
//! Applications 21(5), 2001, defines the colour space and the transfer. The
//! kernels work on packed u8 RGB and are reached through [`ColourKernels`]: the
//! scalar table always exists, and the SIMD table for the family chosen in
//! [`crate::cpu`] replaces it.

// Shared by the SIMD kernels, which 32-bit ARM builds do not have.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
mod approx;
pub mod cielab;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod histogram;
mod lab;
// Shared by the SIMD kernels, which 32-bit ARM builds do not have.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
mod moments;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

use crate::cpu::{self, Simd};

pub use histogram::{rgb_histogram, HISTOGRAM_BINS};
pub use lab::{LabStats, Transfer};

/// The colour space in which statistics are taken and the transfer happens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum ColourSpace {
    /// Reinhard's lαβ (from log LMS), computed by the SIMD kernels.
    #[default]
    #[value(name = "lalphabeta")]
    #[serde(rename = "lalphabeta")]
    LAlphaBeta,
    /// CIE L*a*b* (sRGB, D65) in OpenCV's 8-bit encoding, as python-color-transfer's Lab transfer uses it.
    #[value(name = "lab")]
    #[serde(rename = "lab")]
    Lab,
}

impl ColourSpace {
    /// Returns the name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            ColourSpace::LAlphaBeta => "lalphabeta",
            ColourSpace::Lab => "lab",
        }
    }

    /// Computes the statistics of an image in this colour space over the
    /// pixels that pass the filter (see [`lab_stats`] for the fallback).
    pub fn stats(self, rgb: &[u8], filter: PixelFilter) -> LabStats {
        match self {
            ColourSpace::LAlphaBeta => lab_stats(rgb, filter),
            ColourSpace::Lab => cielab::lab_stats(rgb, filter),
        }
    }

    /// Transfers packed RGB pixels `src` from the statistics `from` to the
    /// statistics `to` in this colour space, writing `dst` (same length).
    pub fn transfer(self, src: &[u8], dst: &mut [u8], from: &LabStats, to: &LabStats) {
        match self {
            ColourSpace::LAlphaBeta => transfer(src, dst, from, to),
            ColourSpace::Lab => cielab::transfer(src, dst, &cielab::CodeMaps::new(from, to)),
        }
    }

    /// Computes the statistics of an image as [`ColourSpace::stats`] does and
    /// keeps what the transfers of the same pixels can reuse: the log2-LMS of
    /// the statistics pass, where the lαβ kernels in use keep it.
    pub fn analyse(self, rgb: &[u8], filter: PixelFilter) -> Analysis<'_> {
        let kernels = kernels();
        let (stats, log_lms) = match (self, kernels.log_lms_kernels) {
            (ColourSpace::LAlphaBeta, Some(reusing)) => {
                let mut log_lms = Vec::new();
                let sums = (reusing.lab_sums)(rgb, filter, &mut log_lms);
                (lab_stats_from(kernels, rgb, sums), Some(log_lms))
            }
            _ => (self.stats(rgb, filter), None),
        };
        Analysis { space: self, rgb, stats, log_lms }
    }
}

/// An image's colour statistics, with what the transfers of the same pixels can
/// reuse (see [`ColourSpace::analyse`]).
pub struct Analysis<'a> {
    space: ColourSpace,
    rgb: &'a [u8],
    stats: LabStats,
    /// log2-LMS of each whole SIMD step of `rgb`, from the statistics pass.
    log_lms: Option<Vec<LogStep>>,
}

impl Analysis<'_> {
    /// Returns the statistics of the analysed pixels.
    pub fn stats(&self) -> LabStats {
        self.stats
    }

    /// Transfers the analysed pixels to the statistics `to`, writing `dst`
    /// (same length). The output is the same as [`ColourSpace::transfer`]
    /// from [`Analysis::stats`] gives, to the bit.
    pub fn transfer_to(&self, dst: &mut [u8], to: &LabStats) {
        match (&self.log_lms, kernels().log_lms_kernels) {
            (Some(log_lms), Some(reusing)) => (reusing.transfer)(self.rgb, log_lms, dst, &Transfer::new(&self.stats, to)),
            _ => self.space.transfer(self.rgb, dst, &self.stats, to),
        }
    }
}

impl std::fmt::Display for ColourSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Pixels that count for the colour statistics.
///
/// Near-black pixels (endoscope borders, the unlit depth of the pharynx) and
/// saturated specular highlights carry no information about the camera's colour
/// response. In a frame with a wide black border they outnumber the tissue and
/// would pull the mean towards black. They are left out of the statistics but
/// are still transferred, so the output keeps every pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PixelFilter {
    /// A pixel whose brightest channel is below this value is ignored (0..=255).
    pub dark_below: u8,
    /// A pixel whose darkest channel is at or above this value is ignored (0..=255).
    pub bright_from: u8,
}

impl Default for PixelFilter {
    fn default() -> Self {
        PixelFilter { dark_below: 16, bright_from: 250 }
    }
}

impl PixelFilter {
    /// Returns whether a pixel counts for the statistics.
    #[inline]
    pub fn counts(&self, r: u8, g: u8, b: u8) -> bool {
        r.max(g).max(b) >= self.dark_below && r.min(g).min(b) < self.bright_from
    }
}

/// Running sums of lαβ values over the pixels that count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LabSums {
    /// Number of pixels summed.
    pub count: u64,
    /// Sum of l, α and β.
    pub sum: [f64; 3],
    /// Sum of the squares of l, α and β.
    pub sum_squares: [f64; 3],
}

/// One implementation of the colour kernels.
pub struct ColourKernels {
    /// Name shown in logs and benchmarks.
    pub name: &'static str,
    /// Sums lαβ over the packed RGB pixels that pass the filter.
    pub lab_sums: fn(rgb: &[u8], filter: PixelFilter) -> LabSums,
    /// Transfers packed RGB `src` into `dst` (same length) with a prepared transfer.
    pub transfer: fn(src: &[u8], dst: &mut [u8], transfer: &Transfer),
    /// The kernels that keep the statistics pass's log2-LMS for the transfers,
    /// in the families that have them.
    pub(crate) log_lms_kernels: Option<&'static LogLmsKernels>,
}

/// log2-LMS of one SIMD step of 16 pixels: 16 values of L, then M, then S,
/// aligned for 512-bit loads.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct LogStep(pub(crate) [f32; 48]);

/// Colour kernels that pass log2-LMS from the statistics to the transfers of
/// the same pixels, so that the transfers skip RGB→LMS and the logarithms.
pub(crate) struct LogLmsKernels {
    /// Sums lαβ as [`ColourKernels::lab_sums`] does and replaces the content of
    /// `log_lms` with the log2-LMS of each whole step of `rgb`.
    pub(crate) lab_sums: fn(rgb: &[u8], filter: PixelFilter, log_lms: &mut Vec<LogStep>) -> LabSums,
    /// Transfers `src` as [`ColourKernels::transfer`] does, reading the
    /// log2-LMS of its whole steps from `log_lms`.
    pub(crate) transfer: fn(src: &[u8], log_lms: &[LogStep], dst: &mut [u8], transfer: &Transfer),
}

/// The LMS floor as the f32 kernels use it.
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) const LMS_FLOOR_F32: f32 = lab::LMS_FLOOR as f32;

static SCALAR: ColourKernels = ColourKernels {
    name: "scalar",
    lab_sums: scalar::lab_sums,
    transfer: scalar::transfer,
    log_lms_kernels: None,
};

#[cfg(target_arch = "x86_64")]
static AVX2: ColourKernels = ColourKernels {
    name: "avx2",
    lab_sums: avx2::lab_sums,
    transfer: avx2::transfer,
    log_lms_kernels: None,
};

#[cfg(target_arch = "x86_64")]
static AVX512: ColourKernels = ColourKernels {
    name: "avx512",
    lab_sums: avx512::lab_sums,
    transfer: avx512::transfer,
    log_lms_kernels: Some(&LogLmsKernels { lab_sums: avx512::lab_sums_keeping, transfer: avx512::transfer_from_log_lms }),
};

#[cfg(target_arch = "aarch64")]
static NEON: ColourKernels = ColourKernels {
    name: "neon",
    lab_sums: neon::lab_sums,
    transfer: neon::transfer,
    log_lms_kernels: None,
};

/// Returns the colour kernels of a family, or `None` when this CPU cannot run it.
pub fn kernels_for(family: Simd) -> Option<&'static ColourKernels> {
    if !cpu::available().contains(&family) {
        return None;
    }
    match family {
        Simd::Scalar => Some(&SCALAR),
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => Some(&AVX2),
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => Some(&AVX512),
        #[cfg(target_arch = "aarch64")]
        Simd::Neon => Some(&NEON),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Returns the colour kernels of the family in use (see [`crate::cpu::active`]).
pub fn kernels() -> &'static ColourKernels {
    static ACTIVE: std::sync::OnceLock<&'static ColourKernels> = std::sync::OnceLock::new();
    ACTIVE.get_or_init(|| kernels_for(cpu::active()).unwrap_or(&SCALAR))
}

/// Computes the lαβ mean and standard deviation of an image.
///
/// When fewer than [`MIN_COUNTED_FRACTION`] of the pixels pass the filter (an
/// almost black or almost white frame), every pixel counts instead, so the
/// statistics stay defined.
pub fn lab_stats(rgb: &[u8], filter: PixelFilter) -> LabStats {
    lab_stats_with(kernels(), rgb, filter)
}

/// Computes the lαβ statistics with the given kernels (see [`lab_stats`]).
pub fn lab_stats_with(kernels: &ColourKernels, rgb: &[u8], filter: PixelFilter) -> LabStats {
    lab_stats_from(kernels, rgb, (kernels.lab_sums)(rgb, filter))
}

/// Derives the lαβ statistics from the sums over the pixels that passed the
/// filter, falling back to every pixel as [`lab_stats`] describes.
fn lab_stats_from(kernels: &ColourKernels, rgb: &[u8], filtered: LabSums) -> LabStats {
    let pixels = (rgb.len() / 3) as u64;
    let mut sums = filtered;
    if (sums.count as f64) < MIN_COUNTED_FRACTION * pixels as f64 || sums.count == 0 {
        let everything = PixelFilter { dark_below: 0, bright_from: 255 };
        sums = (kernels.lab_sums)(rgb, everything);
        // A pure-white pixel fails even this filter, so add those back by hand.
        if sums.count < pixels {
            let white = scalar::lab_of(255, 255, 255);
            let missing = (pixels - sums.count) as f64;
            for (c, value) in white.iter().enumerate() {
                sums.sum[c] += missing * value;
                sums.sum_squares[c] += missing * value * value;
            }
            sums.count = pixels;
        }
    }
    LabStats::from_sums(&sums)
}

/// Minimum share of pixels that must pass the filter for it to apply.
pub const MIN_COUNTED_FRACTION: f64 = 0.01;

/// Transfers packed RGB pixels `src` from the statistics `from` to the
/// statistics `to`, writing `dst` (same length).
pub fn transfer(src: &[u8], dst: &mut [u8], from: &LabStats, to: &LabStats) {
    (kernels().transfer)(src, dst, &Transfer::new(from, to));
}

/// Transfers packed RGB pixels from the statistics `from` to the statistics `to`, in place.
pub fn transfer_in_place(rgb: &mut [u8], from: &LabStats, to: &LabStats) {
    let source = rgb.to_vec();
    transfer(&source, rgb, from, to);
}

#[cfg(test)]
mod tests;
