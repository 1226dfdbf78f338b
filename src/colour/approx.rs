//! Polynomial log2 and exp2 shared by the SIMD colour kernels.
//!
//! The coefficients are near-minimax fits (Chebyshev nodes, iteratively
//! reweighted least squares) on the reduced ranges. Their errors bound what the
//! SIMD kernels may differ from the scalar ones: a transferred channel is a
//! combination of exp2 results with weights up to about 4.5 on the 0..255 scale,
//! so a relative error e moves it by at most about 2000·e code values.

/// log2(m) ≈ (m − 1)·Σ LOG2[k]·(m − 1)^k for m in [1, 2); maximum absolute
/// error 1.5e-5, and exactly 0 at m = 1, so black (LMS floored at 1) stays 0.
pub(crate) const LOG2: [f32; 5] = [1.441_965_6, -0.709_662_7, 0.417_595_57, -0.196_269_38, 0.046_385_25];

/// 2^f ≈ Σ EXP2[k]·f^k for f in [0, 1); maximum relative error 3.7e-6.
pub(crate) const EXP2: [f32; 5] = [1.000_003_7, 0.692_966_1, 0.241_638_44, 0.051_690_365, 0.013_697_661];

/// Exponents passed to exp2 are clamped to ±EXP2_LIMIT, so the result stays a
/// finite normal float; no real transfer comes near (LMS stays below 2^10).
pub(crate) const EXP2_LIMIT: f32 = 60.0;

/// log10(2): converts log2 sums to the log10 units of the lαβ statistics.
pub(crate) const LOG10_2: f64 = std::f64::consts::LOG10_2;

/// log2(10): converts the log10 transfer offset to log2.
pub(crate) const LOG2_10: f32 = std::f32::consts::LOG2_10;

/// Evaluates the log2 polynomial on one value, the scalar model of the SIMD code.
#[cfg(test)]
pub(crate) fn log2(x: f32) -> f32 {
    let bits = x.to_bits();
    let exponent = ((bits >> 23) as i32 - 127) as f32;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000) - 1.0;
    let mut poly = LOG2[4];
    for k in (0..4).rev() {
        poly = poly * mantissa + LOG2[k];
    }
    exponent + poly * mantissa
}

/// Evaluates the exp2 polynomial on one value, the scalar model of the SIMD code.
#[cfg(test)]
pub(crate) fn exp2(x: f32) -> f32 {
    let x = x.clamp(-EXP2_LIMIT, EXP2_LIMIT);
    let whole = x.floor();
    let fraction = x - whole;
    let mut poly = EXP2[4];
    for k in (0..4).rev() {
        poly = poly * fraction + EXP2[k];
    }
    f32::from_bits((poly.to_bits() as i32 + ((whole as i32) << 23)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_error_is_bounded() {
        let mut worst = 0f64;
        for i in 0..=100_000 {
            let x = 1.0 + i as f32 * 254.0 / 100_000.0;
            worst = worst.max((log2(x) as f64 - (x as f64).log2()).abs());
        }
        assert!(worst < 2e-5, "log2 error {worst}");
    }

    #[test]
    fn exp2_error_is_bounded() {
        let mut worst = 0f64;
        for i in 0..=100_000 {
            let x = -20.0 + i as f32 * 40.0 / 100_000.0;
            let exact = (x as f64).exp2();
            worst = worst.max(((exp2(x) as f64 - exact) / exact).abs());
        }
        assert!(worst < 5e-6, "exp2 relative error {worst}");
    }
}
