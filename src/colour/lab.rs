//! The lαβ colour space: matrices, statistics and the prepared transfer.

use super::LabSums;

/// RGB to LMS, from Reinhard et al. (2001).
pub(crate) const RGB_TO_LMS: [[f64; 3]; 3] =
    [[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]];

/// LMS values are floored here (on the 0..255 scale) before the logarithm, so a
/// black pixel maps to log10 = 0 instead of minus infinity.
pub(crate) const LMS_FLOOR: f64 = 1.0;

/// A standard deviation below this (lαβ units) is treated as a flat channel,
/// whose scale is left at 1 instead of being blown up by a near-zero divisor.
pub(crate) const MIN_STD: f64 = 1e-3;

/// Returns log-LMS to lαβ: diag(1/√3, 1/√6, 1/√2) · [[1,1,1],[1,1,−2],[1,−1,0]].
pub(crate) fn log_lms_to_lab() -> [[f64; 3]; 3] {
    let scale = [1.0 / 3f64.sqrt(), 1.0 / 6f64.sqrt(), 1.0 / 2f64.sqrt()];
    let mix = [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]];
    let mut out = [[0.0; 3]; 3];
    for row in 0..3 {
        for col in 0..3 {
            out[row][col] = scale[row] * mix[row][col];
        }
    }
    out
}

/// Inverts a 3×3 matrix in f64 (the matrices here are well conditioned).
pub(crate) fn invert(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    let cofactor = |r0: usize, r1: usize, c0: usize, c1: usize| {
        m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]
    };
    [
        [cofactor(1, 2, 1, 2) / det, -cofactor(0, 2, 1, 2) / det, cofactor(0, 1, 1, 2) / det],
        [-cofactor(1, 2, 0, 2) / det, cofactor(0, 2, 0, 2) / det, -cofactor(0, 1, 0, 2) / det],
        [cofactor(1, 2, 0, 1) / det, -cofactor(0, 2, 0, 1) / det, cofactor(0, 1, 0, 1) / det],
    ]
}

pub(crate) fn multiply(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for row in 0..3 {
        for col in 0..3 {
            out[row][col] = (0..3).map(|k| a[row][k] * b[k][col]).sum();
        }
    }
    out
}

/// Per-channel mean and standard deviation: of lαβ (log10 units), or of the
/// 8-bit L*a*b* codes in [`super::cielab`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LabStats {
    /// Mean of l, α and β (or of the L, a and b codes).
    pub mean: [f32; 3],
    /// Population standard deviation of the same channels.
    pub std: [f32; 3],
}

impl LabStats {
    /// Computes mean and standard deviation from running sums.
    pub fn from_sums(sums: &LabSums) -> LabStats {
        let n = sums.count.max(1) as f64;
        let mut stats = LabStats { mean: [0.0; 3], std: [0.0; 3] };
        for c in 0..3 {
            let mean = sums.sum[c] / n;
            let variance = (sums.sum_squares[c] / n - mean * mean).max(0.0);
            stats.mean[c] = mean as f32;
            stats.std[c] = variance.sqrt() as f32;
        }
        stats
    }
}

/// A colour transfer folded into one affine map in log-LMS space.
///
/// The per-channel lαβ transfer `(x − μ_from)·σ_to/σ_from + μ_to` is linear in
/// lαβ, and lαβ is linear in log-LMS, so the whole transfer is
/// `log_lms_out = matrix · log_lms_in + offset`, with
/// `matrix = T⁻¹·S·T` and `offset = T⁻¹·(μ_to − S·μ_from)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transfer {
    /// RGB (0..255) to LMS.
    pub rgb_to_lms: [[f32; 3]; 3],
    /// Affine map in log10-LMS space.
    pub matrix: [[f32; 3]; 3],
    /// Offset of the affine map.
    pub offset: [f32; 3],
    /// LMS to RGB, the exact inverse of `rgb_to_lms`.
    pub lms_to_rgb: [[f32; 3]; 3],
}

fn to_f32(m: [[f64; 3]; 3]) -> [[f32; 3]; 3] {
    m.map(|row| row.map(|v| v as f32))
}

impl Transfer {
    /// Prepares the transfer from the statistics `from` to the statistics `to`.
    pub fn new(from: &LabStats, to: &LabStats) -> Transfer {
        let forward = log_lms_to_lab();
        let inverse = invert(forward);
        let mut scale = [[0.0; 3]; 3];
        let mut shifted = [0.0; 3];
        for c in 0..3 {
            let from_std = from.std[c] as f64;
            let ratio = if from_std < MIN_STD { 1.0 } else { to.std[c] as f64 / from_std };
            scale[c][c] = ratio;
            shifted[c] = to.mean[c] as f64 - ratio * from.mean[c] as f64;
        }
        let matrix = multiply(inverse, multiply(scale, forward));
        let mut offset = [0.0f32; 3];
        for row in 0..3 {
            offset[row] = (0..3).map(|k| inverse[row][k] * shifted[k]).sum::<f64>() as f32;
        }
        Transfer {
            rgb_to_lms: to_f32(RGB_TO_LMS),
            matrix: to_f32(matrix),
            offset,
            lms_to_rgb: to_f32(invert(RGB_TO_LMS)),
        }
    }
}
