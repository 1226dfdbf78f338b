//! CIE L*a*b* (sRGB primaries, D65 white) in the 8-bit encoding of OpenCV's
//! `cvtColor`: conversion, per-channel statistics of the codes and the Reinhard
//! transfer that python-color-transfer's `lab_transfer` performs on them.
//!
//! The 8-bit encoding stores L·255/100, a + 128 and b + 128 as u8. OpenCV
//! converts 8-bit images in fixed point, so the exact formulas in f64, rounded
//! to u8, give OpenCV's codes for only 74 % of the RGB colours. This module
//! works in integers as well: gamma and cube-root lookup tables, a 12-bit
//! matrix and rounding shifts, with table sizes and rounding chosen by
//! comparing with opencv-python 4.14 on all 2^24 inputs
//! (`cargo test --test lab_opencv` repeats that comparison). RGB to Lab then
//! gives OpenCV's codes for every colour.
//!
//! NOTE: Lab to RGB is not bit-exact. It gives OpenCV's triple for 94.4 % of
//! the codes and is off by at most 2 code values, by 2 only for 32 of the
//! 16.8 million codes (saturated greens).
//!
//! Formulas: IEC 61966-2-1 (sRGB transfer function), CIE 15:2004 (L*a*b*);
//! the XYZ matrices and white point are the ones OpenCV's documentation of
//! `cvtColor` lists (X = 0.412453 R + 0.357580 G + 0.180423 B, …).

use std::sync::OnceLock;

use super::{LabStats, PixelFilter, MIN_COUNTED_FRACTION};

/// Linear sRGB to XYZ, rows X, Y, Z.
const RGB_TO_XYZ: [[f64; 3]; 3] =
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]];

/// XYZ to linear sRGB, rows R, G, B.
const XYZ_TO_RGB: [[f64; 3]; 3] =
    [[3.240479, -1.53715, -0.498535], [-0.969256, 1.875991, 0.041556], [0.055648, -0.204043, 1.057311]];

/// The D65 white point (X, Y, Z).
const WHITE: [f64; 3] = [0.950456, 1.0, 1.088754];

/// Linear light is kept as 0..=255·8 after the gamma table (3 extra bits).
const LINEAR_SCALE: i32 = 8;
/// Fraction bits of the 12-bit RGB to XYZ matrix.
const MATRIX_SHIFT: u32 = 12;
/// Fraction bits of f(t), the cube-root part of L*a*b*.
const F_SHIFT: u32 = 15;
/// Entries of the f(t) table: t = index / 2040, which covers every sum the
/// matrix can produce (each row sums to at most 1 once divided by the white point).
const F_TABLE_LEN: usize = 255 * LINEAR_SCALE as usize + 1;

/// Fraction bits of y, f(y), x and z on the way back to RGB.
const BACK_SHIFT: u32 = 14;
const BACK_ONE: i32 = 1 << BACK_SHIFT;
/// Entries of the inverse-gamma table: linear light in steps of 1/4096.
const INVERSE_GAMMA_LEN: usize = 4096;
/// Fraction bits of the linear RGB that indexes the inverse-gamma table.
const INVERSE_GAMMA_SHIFT: u32 = 12;
/// The f⁻¹ table covers f values from −0.5 to 2 (scaled by 2^14): f(y) lies in
/// 16/116..=1 and a/500, b/200 add at most ±0.64.
const F_INVERSE_MIN: i32 = -BACK_ONE / 2;
const F_INVERSE_LEN: usize = (BACK_ONE * 5 / 2) as usize;

/// The f(t) table entry whose value OpenCV rounds down (index, value).
const CUBE_ROOT_FIX: (usize, i32) = (324, 17745);

/// CIE constants: the linear segment of f(t) below t = (6/29)³.
const EPSILON: f32 = 216.0 / 24389.0;
const KAPPA_SLOPE: f32 = 841.0 / 108.0;
const F_OFFSET: f32 = 16.0 / 116.0;

/// The lookup tables and fixed-point matrices, built once.
struct Tables {
    /// sRGB code to linear light × 2040.
    gamma: [i32; 256],
    /// f(index / 2040) × 2^15.
    f: Vec<i32>,
    /// RGB to XYZ / white, × 2^12.
    to_xyz: [[i32; 3]; 3],
    /// L code to y × 2^14 and f(y) × 2^14.
    y_of_l: [i32; 256],
    f_of_l: [i32; 256],
    /// f⁻¹(v) × 2^14 for v = (index + F_INVERSE_MIN) / 2^14.
    f_inverse: Vec<i32>,
    /// XYZ × white to linear RGB, × 2^12.
    to_rgb: [[i64; 3]; 3],
    /// Linear light (index / 4096) to sRGB code.
    inverse_gamma: [u8; INVERSE_GAMMA_LEN],
}

fn srgb_to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f64) -> f64 {
    if v <= 0.0031308 {
        12.92 * v
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

fn round_to_i32(value: f32) -> i32 {
    value.round_ties_even() as i32
}

impl Tables {
    fn build() -> Tables {
        // The tables are rounded from f32 arithmetic where that is what makes
        // the codes agree with OpenCV's; the f64 choices were measured the same way.
        let mut gamma = [0i32; 256];
        for (code, value) in gamma.iter_mut().enumerate() {
            let linear = srgb_to_linear(code as f64 / 255.0);
            *value = (linear * (255 * LINEAR_SCALE) as f64).round_ties_even() as i32;
        }

        let step = 1.0f32 / (255 * LINEAR_SCALE) as f32;
        let f_one = (1u32 << F_SHIFT) as f32;
        let mut f: Vec<i32> = (0..F_TABLE_LEN)
            .map(|index| {
                let t = step * index as f32;
                let value = if t < EPSILON { t * KAPPA_SLOPE + F_OFFSET } else { t.cbrt() };
                round_to_i32(f_one * value)
            })
            .collect();
        // NOTE: OpenCV's own f32 cube root is one ulp below the correctly rounded
        // one at t = 324/2040, where the correctly rounded value scales to exactly
        // 17745.5. Comparing all 2^24 colours with opencv-python 4.14 finds this
        // entry as the only one that differs.
        if f[CUBE_ROOT_FIX.0] == CUBE_ROOT_FIX.1 + 1 {
            f[CUBE_ROOT_FIX.0] = CUBE_ROOT_FIX.1;
        }

        let mut to_xyz = [[0i32; 3]; 3];
        let mut to_rgb = [[0i64; 3]; 3];
        for row in 0..3 {
            for col in 0..3 {
                let scale = (1u32 << MATRIX_SHIFT) as f64;
                to_xyz[row][col] = (scale * RGB_TO_XYZ[row][col] / WHITE[row]).round_ties_even() as i32;
                to_rgb[row][col] = (XYZ_TO_RGB[row][col] * WHITE[col] * scale).round_ties_even() as i64;
            }
        }

        let back_one = BACK_ONE as f32;
        let mut y_of_l = [0i32; 256];
        let mut f_of_l = [0i32; 256];
        for code in 0..256 {
            let lightness = code as f32 * 100.0 / 255.0;
            // L* = 8 is where the cube and the linear segment meet (κ·ε = 8).
            let (y, fy) = if lightness <= 8.0 {
                let y = lightness / 903.3;
                (y, y * 7.787 + F_OFFSET)
            } else {
                let fy = (lightness + 16.0) / 116.0;
                (fy * fy * fy, fy)
            };
            y_of_l[code] = round_to_i32(y * back_one);
            f_of_l[code] = round_to_i32(fy * back_one);
        }

        let threshold = 6.0f32 / 29.0;
        let f_inverse = (0..F_INVERSE_LEN)
            .map(|index| {
                let v = (index as i32 + F_INVERSE_MIN) as f32 / back_one;
                let t = if v > threshold { v * v * v } else { (v - F_OFFSET) / 7.787 };
                round_to_i32(t * back_one)
            })
            .collect();

        let mut inverse_gamma = [0u8; INVERSE_GAMMA_LEN];
        for (index, value) in inverse_gamma.iter_mut().enumerate() {
            let code = 255.0 * linear_to_srgb(index as f64 / INVERSE_GAMMA_LEN as f64);
            *value = code.round_ties_even().clamp(0.0, 255.0) as u8;
        }

        Tables { gamma, f, to_xyz, y_of_l, f_of_l, f_inverse, to_rgb, inverse_gamma }
    }
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::build)
}

/// Adds half a unit and shifts right by `bits`: rounding division by 2^bits,
/// towards +∞ at ties, also for negative values (the shift is arithmetic).
#[inline]
fn descale(value: i32, bits: u32) -> i32 {
    (value + (1 << (bits - 1))) >> bits
}

/// Converts one sRGB pixel to 8-bit L*a*b* codes (L·255/100, a + 128, b + 128).
pub fn rgb_to_lab(rgb: [u8; 3]) -> [u8; 3] {
    tables().rgb_to_lab(rgb)
}

/// Converts 8-bit L*a*b* codes back to one sRGB pixel, clamping colours
/// outside the sRGB gamut.
pub fn lab_to_rgb(lab: [u8; 3]) -> [u8; 3] {
    tables().lab_to_rgb(lab)
}

impl Tables {
    #[inline]
    fn rgb_to_lab(&self, rgb: [u8; 3]) -> [u8; 3] {
        let linear = [self.gamma[rgb[0] as usize], self.gamma[rgb[1] as usize], self.gamma[rgb[2] as usize]];
        let mut f = [0i32; 3];
        for (row, value) in f.iter_mut().enumerate() {
            let m = &self.to_xyz[row];
            let sum = descale(m[0] * linear[0] + m[1] * linear[1] + m[2] * linear[2], MATRIX_SHIFT);
            *value = self.f[sum.clamp(0, F_TABLE_LEN as i32 - 1) as usize];
        }
        let [fx, fy, fz] = f;

        // L code = (116·f(y) − 16)·255/100 with f in 2^15 units. The scale is
        // rounded to the integer 296 (from 295.8) and the offset to 16·2.55·2^15.
        let l_scale = (116 * 255 + 50) / 100;
        let l_offset = (16 * 255 * (1 << F_SHIFT) + 50) / 100;
        let lightness = descale(l_scale * fy - l_offset, F_SHIFT);
        let centre = 128 << F_SHIFT;
        let a = descale(500 * (fx - fy) + centre, F_SHIFT);
        let b = descale(200 * (fy - fz) + centre, F_SHIFT);
        [saturate(lightness), saturate(a), saturate(b)]
    }

    #[inline]
    fn lab_to_rgb(&self, lab: [u8; 3]) -> [u8; 3] {
        let y = self.y_of_l[lab[0] as usize];
        let fy = self.f_of_l[lab[0] as usize];

        // a/500 and b/200 in 2^14 units, each code and the centre divided apart
        // (integer division), which agrees with OpenCV more often than dividing
        // the difference.
        let a_part = lab[1] as i32 * BACK_ONE / 500 - 128 * BACK_ONE / 500;
        let b_part = lab[2] as i32 * BACK_ONE / 200 - 128 * BACK_ONE / 200;
        let x = self.f_inverse[(fy + a_part - F_INVERSE_MIN) as usize] as i64;
        let z = self.f_inverse[(fy - b_part - F_INVERSE_MIN) as usize] as i64;
        let y = y as i64;

        let shift = MATRIX_SHIFT + BACK_SHIFT - INVERSE_GAMMA_SHIFT;
        let mut rgb = [0u8; 3];
        for (row, value) in rgb.iter_mut().enumerate() {
            let m = &self.to_rgb[row];
            let sum = m[0] * x + m[1] * y + m[2] * z;
            let linear = (sum + (1 << (shift - 1))) >> shift;
            *value = self.inverse_gamma[linear.clamp(0, INVERSE_GAMMA_LEN as i64 - 1) as usize];
        }
        rgb
    }
}

fn saturate(value: i32) -> u8 {
    value.clamp(0, 255) as u8
}

/// Per-channel counts of the 8-bit L, a and b codes.
struct CodeHistogram {
    counts: [[u64; 256]; 3],
    pixels: u64,
}

impl CodeHistogram {
    fn of(rgb: &[u8], counts_pixel: impl Fn(u8, u8, u8) -> bool) -> CodeHistogram {
        let tables = tables();
        let mut histogram = CodeHistogram { counts: [[0; 256]; 3], pixels: 0 };
        for pixel in rgb.chunks_exact(3) {
            if !counts_pixel(pixel[0], pixel[1], pixel[2]) {
                continue;
            }
            let lab = tables.rgb_to_lab([pixel[0], pixel[1], pixel[2]]);
            for (channel, &code) in lab.iter().enumerate() {
                histogram.counts[channel][code as usize] += 1;
            }
            histogram.pixels += 1;
        }
        histogram
    }

    /// Returns the mean and population standard deviation of each channel's codes.
    fn stats(&self) -> LabStats {
        let n = self.pixels.max(1) as f64;
        let mut stats = LabStats { mean: [0.0; 3], std: [0.0; 3] };
        for channel in 0..3 {
            let counts = &self.counts[channel];
            // The sum of codes is an exact integer, so the mean is the correctly
            // rounded one, as NumPy's is.
            let sum: u64 = counts.iter().enumerate().map(|(code, &n)| code as u64 * n).sum();
            let mean = sum as f64 / n;
            let squares: f64 =
                counts.iter().enumerate().map(|(code, &count)| count as f64 * (code as f64 - mean).powi(2)).sum();
            stats.mean[channel] = mean as f32;
            stats.std[channel] = (squares / n).sqrt() as f32;
        }
        stats
    }
}

/// Computes the mean and standard deviation of the 8-bit L*a*b* codes over the
/// pixels that pass the filter.
///
/// Falls back to every pixel, as [`super::lab_stats`] does, when fewer than
/// [`MIN_COUNTED_FRACTION`] of the pixels pass.
pub fn lab_stats(rgb: &[u8], filter: PixelFilter) -> LabStats {
    let pixels = (rgb.len() / 3) as u64;
    let histogram = CodeHistogram::of(rgb, |r, g, b| filter.counts(r, g, b));
    if (histogram.pixels as f64) < MIN_COUNTED_FRACTION * pixels as f64 || histogram.pixels == 0 {
        return lab_stats_all(rgb);
    }
    histogram.stats()
}

/// Computes the mean and standard deviation of the 8-bit L*a*b* codes over
/// every pixel, as python-color-transfer's `mean_std_transfer` does.
pub fn lab_stats_all(rgb: &[u8]) -> LabStats {
    CodeHistogram::of(rgb, |_, _, _| true).stats()
}

/// A standard deviation (in codes) below this marks a flat channel, whose scale
/// stays 1. python-color-transfer divides by it anyway and gets NaN or ±∞.
const MIN_STD: f64 = 1e-3;

/// Per-channel maps from input code to output code for one transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeMaps {
    /// Output code for each input code, per channel L, a, b.
    pub maps: [[u8; 256]; 3],
}

impl CodeMaps {
    /// Prepares the transfer from the statistics `from` to the statistics `to`.
    ///
    /// Each code maps to `(x − μ_from) / σ_from · σ_to + μ_to` in f64, in that
    /// order, clipped to 0..=255 and truncated towards zero, as NumPy's
    /// `astype("uint8")` does in python-color-transfer.
    pub fn new(from: &LabStats, to: &LabStats) -> CodeMaps {
        let mut maps = [[0u8; 256]; 3];
        for (channel, map) in maps.iter_mut().enumerate() {
            let from_mean = from.mean[channel] as f64;
            let from_std = from.std[channel] as f64;
            let to_mean = to.mean[channel] as f64;
            let to_std = to.std[channel] as f64;
            for (code, out) in map.iter_mut().enumerate() {
                let centred = code as f64 - from_mean;
                let value = if from_std < MIN_STD { centred + to_mean } else { centred / from_std * to_std + to_mean };
                *out = value.clamp(0.0, 255.0) as u8;
            }
        }
        CodeMaps { maps }
    }
}

/// Transfers packed RGB pixels `src` into `dst` (same length): RGB to L*a*b*
/// codes, one map per channel, and back to RGB.
pub fn transfer(src: &[u8], dst: &mut [u8], maps: &CodeMaps) {
    let tables = tables();
    for (input, output) in src.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
        let lab = tables.rgb_to_lab([input[0], input[1], input[2]]);
        let mapped = [maps.maps[0][lab[0] as usize], maps.maps[1][lab[1] as usize], maps.maps[2][lab[2] as usize]];
        output.copy_from_slice(&tables.lab_to_rgb(mapped));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_and_white_codes() {
        assert_eq!(rgb_to_lab([0, 0, 0]), [0, 128, 128], "black");
        assert_eq!(rgb_to_lab([255, 255, 255]), [255, 128, 128], "white");
    }

    #[test]
    fn primaries_match_cie_values() {
        // CIE L*a*b* of the sRGB primaries (D65), from the float formulas:
        // red (53.24, 80.09, 67.20), green (87.73, −86.18, 83.18), blue (32.30, 79.19, −107.86).
        let cases = [
            ([255, 0, 0], [53.24, 80.09, 67.20]),
            ([0, 255, 0], [87.73, -86.18, 83.18]),
            ([0, 0, 255], [32.30, 79.19, -107.86]),
        ];
        for (rgb, lab) in cases {
            let codes = rgb_to_lab(rgb);
            let expected = [lab[0] * 2.55, lab[1] + 128.0, lab[2] + 128.0];
            for channel in 0..3 {
                let expected = (expected[channel] as f64).clamp(0.0, 255.0);
                let error = (codes[channel] as f64 - expected).abs();
                assert!(error <= 1.0, "{rgb:?} channel {channel}: code {} for {expected:.2}", codes[channel]);
            }
        }
    }

    #[test]
    fn round_trip_of_muted_colours() {
        // With every channel in 60..=200, OpenCV's own 8-bit round trip moves a
        // channel by at most 5. Saturated colours move further (up to 27 in
        // OpenCV), because a and b are quantised to whole units.
        let mut worst = 0i32;
        for r in (60..=200).step_by(4) {
            for g in (60..=200).step_by(4) {
                for b in (60..=200).step_by(4) {
                    let back = lab_to_rgb(rgb_to_lab([r as u8, g as u8, b as u8]));
                    for (channel, value) in [r, g, b].into_iter().enumerate() {
                        worst = worst.max((back[channel] as i32 - value).abs());
                    }
                }
            }
        }
        assert!(worst <= 5, "round trip moved a channel by {worst}");
    }

    #[test]
    fn grey_stays_neutral() {
        for value in 0..=255u8 {
            let lab = rgb_to_lab([value; 3]);
            assert_eq!([lab[1], lab[2]], [128, 128], "grey {value} has a or b off centre");
        }
    }

    #[test]
    fn tables_cover_every_index() {
        // Every u8 code of every channel must stay inside the f⁻¹ table.
        let t = tables();
        for l in 0..256 {
            let fy = t.f_of_l[l];
            for code in [0i32, 255] {
                let a_part = code * BACK_ONE / 500 - 128 * BACK_ONE / 500;
                let b_part = code * BACK_ONE / 200 - 128 * BACK_ONE / 200;
                for value in [fy + a_part, fy - b_part] {
                    let index = value - F_INVERSE_MIN;
                    assert!(index >= 0, "L {l}, code {code}: index {index} below the table");
                    assert!((index as usize) < F_INVERSE_LEN, "L {l}, code {code}: index {index} past the table");
                }
            }
        }
    }

    #[test]
    fn stats_of_two_colours() {
        let rgb = [[255u8, 0, 0], [0, 0, 255]].concat();
        let stats = lab_stats_all(&rgb);
        let red = rgb_to_lab([255, 0, 0]);
        let blue = rgb_to_lab([0, 0, 255]);
        for channel in 0..3 {
            let mean = (red[channel] as f32 + blue[channel] as f32) / 2.0;
            let std = (red[channel] as f32 - blue[channel] as f32).abs() / 2.0;
            assert_eq!(stats.mean[channel], mean, "mean of channel {channel}");
            assert_eq!(stats.std[channel], std, "std of channel {channel}");
        }
    }

    #[test]
    fn stats_skip_filtered_pixels() {
        // Ten tissue pixels and one black border pixel: the default filter drops the black one.
        let mut rgb = [180u8, 90, 80].repeat(10);
        rgb.extend_from_slice(&[0, 0, 0]);
        let stats = lab_stats(&rgb, PixelFilter::default());
        let tissue = rgb_to_lab([180, 90, 80]);
        assert_eq!(stats.mean[0], tissue[0] as f32, "mean L of the counted pixels");
        assert_eq!(stats.std, [0.0; 3], "one colour counted");
    }

    #[test]
    fn stats_fall_back_to_every_pixel() {
        let rgb = [[0u8, 0, 0], [255, 255, 255]].concat();
        let stats = lab_stats(&rgb, PixelFilter::default());
        assert_eq!(stats.mean[0], 127.5, "black and white both count");
    }

    #[test]
    fn identity_maps_keep_codes() {
        let stats = LabStats { mean: [120.5, 140.0, 135.0], std: [30.0, 8.0, 9.0] };
        let maps = CodeMaps::new(&stats, &stats);
        for channel in 0..3 {
            for code in 0..256usize {
                let out = maps.maps[channel][code] as i32;
                // x − μ + μ in f64 can land just below x, which truncation turns into x − 1.
                assert!((out - code as i32).abs() <= 1, "channel {channel}: {code} became {out}");
            }
        }
    }

    #[test]
    fn maps_truncate_and_clip() {
        let from = LabStats { mean: [100.0; 3], std: [10.0; 3] };
        let to = LabStats { mean: [100.5; 3], std: [20.0; 3] };
        let maps = CodeMaps::new(&from, &to);
        assert_eq!(maps.maps[0][100], 100, "100.5 truncates to 100");
        assert_eq!(maps.maps[0][101], 102, "102.5 truncates to 102");
        assert_eq!(maps.maps[0][0], 0, "negative values clip to 0");
        assert_eq!(maps.maps[0][255], 255, "values above 255 clip to 255");
    }

    #[test]
    fn flat_channel_shifts_only() {
        let from = LabStats { mean: [50.0; 3], std: [0.0; 3] };
        let to = LabStats { mean: [60.0; 3], std: [5.0; 3] };
        let maps = CodeMaps::new(&from, &to);
        assert_eq!(maps.maps[1][50], 60, "the mean moves");
        assert_eq!(maps.maps[1][51], 61, "the scale stays 1");
    }

    #[test]
    fn transfer_to_own_stats_is_close() {
        let rgb: Vec<u8> = (0..300u32)
            .flat_map(|i| [(i * 7 % 200 + 30) as u8, (i * 3 % 150 + 40) as u8, (i * 11 % 120 + 20) as u8])
            .collect();
        let stats = lab_stats_all(&rgb);
        let mut out = vec![0u8; rgb.len()];
        transfer(&rgb, &mut out, &CodeMaps::new(&stats, &stats));
        let worst = rgb.iter().zip(&out).map(|(&a, &b)| (a as i32 - b as i32).abs()).max().unwrap_or(0);
        assert!(worst <= 8, "transfer to its own statistics moved a channel by {worst}");
    }
}
