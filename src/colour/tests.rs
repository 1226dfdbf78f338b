//! Tests of the colour kernels against a naive f64 implementation written from
//! Reinhard et al. (2001), independent of the library's code path.

use super::lab::{invert, log_lms_to_lab, multiply, RGB_TO_LMS};
use super::*;

/// Reinhard's RGB to LMS matrix, copied from Reinhard et al. (2001) rather than from lab.rs.
const NAIVE_RGB_TO_LMS: [[f64; 3]; 3] =
    [[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]];

/// Floor applied to LMS on the 0..255 scale before log10, as the kernels do.
const NAIVE_LMS_FLOOR: f64 = 1.0;

/// Returns the log-LMS to lαβ matrix with every entry written out.
fn naive_lab_matrix() -> [[f64; 3]; 3] {
    let a = 1.0 / 3f64.sqrt();
    let b = 1.0 / 6f64.sqrt();
    let c = 1.0 / 2f64.sqrt();
    [[a, a, a], [b, b, -2.0 * b], [c, -c, 0.0]]
}

/// Inverts a matrix by Gauss-Jordan elimination with partial pivoting, a method
/// different from the cofactor formula in lab.rs.
fn gauss_jordan_inverse(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut left = m;
    let mut right = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for col in 0..3 {
        let pivot = (col..3).max_by(|&i, &j| left[i][col].abs().total_cmp(&left[j][col].abs())).unwrap();
        left.swap(col, pivot);
        right.swap(col, pivot);

        let divisor = left[col][col];
        for k in 0..3 {
            left[col][k] /= divisor;
            right[col][k] /= divisor;
        }

        for row in 0..3 {
            if row == col {
                continue;
            }
            let factor = left[row][col];
            for k in 0..3 {
                left[row][k] -= factor * left[col][k];
                right[row][k] -= factor * right[col][k];
            }
        }
    }
    right
}

fn apply(m: &[[f64; 3]; 3], v: [f64; 3]) -> [f64; 3] {
    let mut out = [0.0; 3];
    for row in 0..3 {
        for k in 0..3 {
            out[row] += m[row][k] * v[k];
        }
    }
    out
}

fn naive_matmul(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for row in 0..3 {
        for col in 0..3 {
            for k in 0..3 {
                out[row][col] += a[row][k] * b[k][col];
            }
        }
    }
    out
}

fn naive_lms(pixel: &[u8]) -> [f64; 3] {
    apply(&NAIVE_RGB_TO_LMS, [pixel[0] as f64, pixel[1] as f64, pixel[2] as f64])
}

fn naive_lab(pixel: &[u8]) -> [f64; 3] {
    let log_lms = naive_lms(pixel).map(|v| v.max(NAIVE_LMS_FLOOR).log10());
    apply(&naive_lab_matrix(), log_lms)
}

/// Returns the lαβ mean and population standard deviation over the given pixels.
fn naive_stats_of<'a>(pixels: impl Iterator<Item = &'a [u8]>) -> ([f64; 3], [f64; 3]) {
    let labs: Vec<[f64; 3]> = pixels.map(naive_lab).collect();
    let n = labs.len() as f64;
    let mut mean = [0.0; 3];
    let mut std = [0.0; 3];
    for c in 0..3 {
        mean[c] = labs.iter().map(|lab| lab[c]).sum::<f64>() / n;
        std[c] = (labs.iter().map(|lab| (lab[c] - mean[c]).powi(2)).sum::<f64>() / n).sqrt();
    }
    (mean, std)
}

fn naive_stats(rgb: &[u8]) -> LabStats {
    let (mean, std) = naive_stats_of(rgb.chunks_exact(3));
    LabStats { mean: mean.map(|v| v as f32), std: std.map(|v| v as f32) }
}

/// Converts lαβ back to RGB code values: inverse lαβ matrix, 10^x, inverse LMS
/// matrix, round to nearest, clamp to 0..255.
fn naive_lab_to_rgb(lab: [f64; 3]) -> [u8; 3] {
    let log_lms = apply(&gauss_jordan_inverse(naive_lab_matrix()), lab);
    let lms = log_lms.map(|v| 10f64.powf(v));
    let rgb = apply(&gauss_jordan_inverse(NAIVE_RGB_TO_LMS), lms);
    rgb.map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// Transfers every pixel channel by channel: `(x − μ_from)·σ_to/σ_from + μ_to`.
fn naive_transfer(rgb: &[u8], from: &LabStats, to: &LabStats) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len());
    for pixel in rgb.chunks_exact(3) {
        let lab = naive_lab(pixel);
        let mut moved = [0.0; 3];
        for c in 0..3 {
            let ratio = to.std[c] as f64 / from.std[c] as f64;
            moved[c] = (lab[c] - from.mean[c] as f64) * ratio + to.mean[c] as f64;
        }
        out.extend_from_slice(&naive_lab_to_rgb(moved));
    }
    out
}

/// Xorshift64* generator, so fixtures are the same on every run without a crate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a value in `low..=high`.
    fn in_range(&mut self, low: u8, high: u8) -> u8 {
        let span = high as u64 - low as u64 + 1;
        low + (self.next_u64() >> 32).wrapping_rem(span) as u8
    }
}

/// Generates `pixels` packed RGB pixels with each channel in its own range.
fn random_image(seed: u64, pixels: usize, ranges: [(u8, u8); 3]) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut rgb = Vec::with_capacity(pixels * 3);
    for _ in 0..pixels {
        for &(low, high) in &ranges {
            rgb.push(rng.in_range(low, high));
        }
    }
    rgb
}

const FULL_RANGE: [(u8, u8); 3] = [(0, 255), (0, 255), (0, 255)];

/// A reddish mid-tone image, far from both clipping limits.
const MID_TONE: [(u8, u8); 3] = [(90, 190), (60, 150), (60, 140)];

/// Returns the largest difference between two byte slices of equal length.
fn max_difference(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len(), "compared images differ in length");
    a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y)).max().unwrap_or(0)
}

fn assert_stats_close(actual: &LabStats, expected: &LabStats, tolerance: f32, context: &str) {
    for c in 0..3 {
        let mean_error = (actual.mean[c] - expected.mean[c]).abs();
        assert!(
            mean_error <= tolerance,
            "{context}: mean of channel {c} is {}, expected {} (tolerance {tolerance})",
            actual.mean[c],
            expected.mean[c]
        );
        let std_error = (actual.std[c] - expected.std[c]).abs();
        assert!(
            std_error <= tolerance,
            "{context}: std of channel {c} is {}, expected {} (tolerance {tolerance})",
            actual.std[c],
            expected.std[c]
        );
    }
}

#[test]
fn lab_sums_match_naive() {
    let rgb = random_image(1, 1000, FULL_RANGE);
    let everything = PixelFilter { dark_below: 0, bright_from: 255 };
    let sums = (SCALAR.lab_sums)(&rgb, everything);

    let counted: Vec<&[u8]> = rgb.chunks_exact(3).filter(|p| p.iter().any(|&v| v < 255)).collect();
    assert_eq!(sums.count, counted.len() as u64, "lab_sums counted the wrong number of pixels");

    for c in 0..3 {
        let sum: f64 = counted.iter().map(|p| naive_lab(p)[c]).sum();
        let sum_squares: f64 = counted.iter().map(|p| naive_lab(p)[c].powi(2)).sum();
        assert!((sums.sum[c] - sum).abs() < 1e-9 * sum.abs().max(1.0), "sum of channel {c} is {}, naive {sum}", sums.sum[c]);
        assert!(
            (sums.sum_squares[c] - sum_squares).abs() < 1e-9 * sum_squares.max(1.0),
            "sum of squares of channel {c} is {}, naive {sum_squares}",
            sums.sum_squares[c]
        );
    }
}

#[test]
fn transfer_matches_naive_on_random_images() {
    let from = naive_stats(&random_image(2, 4096, FULL_RANGE));
    let to = naive_stats(&random_image(3, 4096, MID_TONE));

    for seed in 10..14 {
        let rgb = random_image(seed, 4096, FULL_RANGE);
        let mut output = vec![0u8; rgb.len()];
        (SCALAR.transfer)(&rgb, &mut output, &Transfer::new(&from, &to));
        let expected = naive_transfer(&rgb, &from, &to);
        let difference = max_difference(&output, &expected);
        assert!(difference <= 1, "seed {seed}: kernel transfer differs from the naive one by {difference} code values");

        // f32 against f64 only disagrees next to a .5 boundary, so almost every
        // value must match exactly. Truncating instead of rounding fails here.
        let mismatched = output.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert!(mismatched * 1000 <= output.len(), "seed {seed}: {mismatched} of {} values differ from the naive transfer", output.len());
    }
}

#[test]
fn transfer_matches_naive_in_reverse_direction() {
    // Mid-tone to full range stretches the contrast, so many outputs clip.
    let from = naive_stats(&random_image(4, 4096, MID_TONE));
    let to = naive_stats(&random_image(5, 4096, FULL_RANGE));

    let rgb = random_image(6, 4096, FULL_RANGE);
    let mut output = vec![0u8; rgb.len()];
    (kernels().transfer)(&rgb, &mut output, &Transfer::new(&from, &to));
    let difference = max_difference(&output, &naive_transfer(&rgb, &from, &to));
    assert!(difference <= 1, "kernel transfer differs from the naive one by {difference} code values");
}

#[test]
fn transfer_matches_naive_on_odd_widths() {
    let from = naive_stats(&random_image(7, 1024, FULL_RANGE));
    let to = naive_stats(&random_image(8, 1024, MID_TONE));

    for pixels in [1, 7, 9, 17, 33] {
        let rgb = random_image(100 + pixels as u64, pixels, FULL_RANGE);
        let mut output = vec![0u8; rgb.len()];
        (kernels().transfer)(&rgb, &mut output, &Transfer::new(&from, &to));
        let difference = max_difference(&output, &naive_transfer(&rgb, &from, &to));
        assert!(difference <= 1, "{pixels} pixels: kernel transfer differs from the naive one by {difference} code values");
    }
}

#[test]
fn transfer_in_place_matches_naive() {
    let from = naive_stats(&random_image(9, 1024, FULL_RANGE));
    let to = naive_stats(&random_image(10, 1024, MID_TONE));

    for pixels in [1, 7, 9, 17, 33, 1000] {
        let original = random_image(200 + pixels as u64, pixels, FULL_RANGE);
        let mut rgb = original.clone();
        transfer_in_place(&mut rgb, &from, &to);
        let difference = max_difference(&rgb, &naive_transfer(&original, &from, &to));
        assert!(difference <= 1, "{pixels} pixels: in-place transfer differs from the naive one by {difference} code values");
    }
}

#[test]
fn transfer_to_own_stats_is_identity() {
    let rgb = random_image(11, 4096, FULL_RANGE);
    let stats = lab_stats(&rgb, PixelFilter::default());
    let mut output = rgb.clone();
    transfer_in_place(&mut output, &stats, &stats);

    let mut checked = 0;
    for (index, (before, after)) in rgb.chunks_exact(3).zip(output.chunks_exact(3)).enumerate() {
        if naive_lms(before).iter().any(|&v| v <= NAIVE_LMS_FLOOR) {
            continue;
        }
        checked += 1;
        let difference = max_difference(before, after);
        assert!(difference <= 1, "pixel {index} {before:?} became {after:?} under the identity transfer");
    }
    assert!(checked > 4000, "only {checked} of 4096 pixels are above the LMS floor; the fixture is wrong");
}

#[test]
fn transfer_reaches_target_stats() {
    let source = random_image(12, 10_000, MID_TONE);
    let target = random_image(13, 10_000, [(100, 170), (90, 170), (110, 190)]);
    let filter = PixelFilter::default();
    let from = lab_stats(&source, filter);
    let to = naive_stats(&target);

    let mut output = source.clone();
    transfer_in_place(&mut output, &from, &to);
    let clipped = output.iter().filter(|&&v| v == 0 || v == 255).count();
    assert_eq!(clipped, 0, "the transfer clipped {clipped} channel values; choose a fixture without clipping");

    // Rounding to integer code values adds noise with a standard deviation of
    // about 0.29/(128·ln 10) ≈ 0.001 in log10 units. That shifts the means by
    // about 1e-5 and the standard deviations (0.012 or more here) by about 4e-5.
    let (mean, std) = naive_stats_of(output.chunks_exact(3));
    let reached = LabStats { mean: mean.map(|v| v as f32), std: std.map(|v| v as f32) };
    assert_stats_close(&reached, &to, 5e-4, "statistics of the transferred image");
}

#[test]
fn lab_stats_of_white_is_known() {
    // White passes no filter, so this also exercises the fallback that adds white
    // pixels by hand. Row sums of the RGB to LMS matrix are 0.9996, 0.9993 and
    // 0.9973, so LMS = (254.898, 254.8215, 254.3115) and
    // log10 LMS = (2.4063664, 2.4062361, 2.4053660).
    // l = Σ log10 LMS / √3 = 4.1672961
    // α = (L + M − 2S) / √6 = 0.00076363
    // β = (L − M) / √2 = 0.000092178
    let rgb = [255u8; 3 * 16];
    let stats = lab_stats(&rgb, PixelFilter::default());
    let expected = LabStats { mean: [4.167_296, 0.000_763_63, 0.000_092_178], std: [0.0; 3] };
    assert_stats_close(&stats, &expected, 1e-5, "lαβ statistics of a white image");
}

#[test]
fn lab_stats_of_red_is_known() {
    // LMS of (255, 0, 0) is 255 times the first column: (97.1805, 50.1585, 6.1455),
    // all above the floor, so log10 LMS = (1.9875791, 1.7003445, 0.7885572).
    // l = Σ log10 LMS / √3 = 2.5844974
    // α = (L + M − 2S) / √6 = 0.8617343
    // β = (L − M) / √2 = 0.2031055
    let rgb: Vec<u8> = [255u8, 0, 0].repeat(16);
    let stats = lab_stats(&rgb, PixelFilter::default());
    let expected = LabStats { mean: [2.5844974, 0.8617343, 0.2031055], std: [0.0; 3] };
    assert_stats_close(&stats, &expected, 1e-5, "lαβ statistics of a red image");
}

#[test]
fn lab_stats_match_naive() {
    let rgb = random_image(14, 5000, [(20, 240), (20, 240), (20, 240)]);
    let stats = lab_stats(&rgb, PixelFilter::default());
    assert_stats_close(&stats, &naive_stats(&rgb), 1e-5, "lαβ statistics of a random image");
}

/// Places `tissue` (width × height pixels) in the middle of a black frame with a
/// border of `border` pixels, so most of the frame is black.
fn frame_with_border(tissue: &[u8], width: usize, height: usize, border: usize) -> Vec<u8> {
    let frame_width = width + 2 * border;
    let frame_height = height + 2 * border;
    let mut frame = vec![0u8; frame_width * frame_height * 3];
    for y in 0..height {
        let from = y * width * 3;
        let to = ((y + border) * frame_width + border) * 3;
        frame[to..to + width * 3].copy_from_slice(&tissue[from..from + width * 3]);
    }
    frame
}

#[test]
fn filter_ignores_black_border() {
    let tissue = random_image(15, 20 * 20, MID_TONE);
    let frame = frame_with_border(&tissue, 20, 20, 30);
    let filter = PixelFilter::default();

    let black_share = 1.0 - (20.0 * 20.0) / (80.0 * 80.0);
    assert!(black_share > 0.9, "the fixture border covers only {black_share} of the frame");

    for (kernels, tolerance) in every_family() {
        let framed = lab_stats_with(kernels, &frame, filter);
        let alone = lab_stats_with(kernels, &tissue, filter);
        assert_stats_close(&framed, &alone, tolerance, &format!("{}: framed tissue against tissue alone", kernels.name));
        // The naive statistics are exact, so the SIMD families get their own
        // tolerance (polynomial log2) and the scalar one at most 1e-5.
        let against_naive = tolerance.max(1e-5);
        assert_stats_close(&framed, &naive_stats(&tissue), against_naive, &format!("{}: framed tissue against naive statistics", kernels.name));
    }
}

#[test]
fn filter_ignores_dark_and_specular_pixels() {
    let tissue = random_image(16, 400, MID_TONE);
    let mut image = tissue.clone();
    // Near-black (brightest channel below 16) and specular (darkest channel at
    // or above 250) pixels, which the default filter leaves out.
    for pixel in [[15u8, 3, 0], [10, 15, 15], [250, 250, 250], [255, 252, 250]].iter().cycle().take(300) {
        image.extend_from_slice(pixel);
    }

    let stats = lab_stats(&image, PixelFilter::default());
    assert_stats_close(&stats, &naive_stats(&tissue), 1e-5, "tissue with dark and specular pixels against tissue alone");
}

#[test]
fn filter_counts_boundary_values() {
    let filter = PixelFilter::default();
    assert!(filter.counts(16, 0, 0), "a pixel whose brightest channel equals dark_below must count");
    assert!(!filter.counts(15, 15, 15), "a pixel whose brightest channel is below dark_below must not count");
    assert!(filter.counts(255, 255, 249), "a pixel whose darkest channel is below bright_from must count");
    assert!(!filter.counts(250, 251, 252), "a pixel whose darkest channel equals bright_from must not count");
}

#[test]
fn all_black_frame_falls_back_to_all_pixels() {
    let rgb = vec![0u8; 64 * 64 * 3];
    for (kernels, _) in every_family() {
        let stats = lab_stats_with(kernels, &rgb, PixelFilter::default());
        let finite = stats.mean.iter().chain(&stats.std).all(|v| v.is_finite());
        assert!(finite, "{}: statistics of an all-black frame are not finite: {stats:?}", kernels.name);
        // Black LMS is floored to 1, whose log10 is 0 in every channel.
        let zero = LabStats { mean: [0.0; 3], std: [0.0; 3] };
        assert_stats_close(&stats, &zero, 1e-6, &format!("{}: statistics of an all-black frame", kernels.name));
    }
}

#[test]
fn nearly_black_frame_falls_back_to_all_pixels() {
    // 30 tissue pixels in 10,000 are below the 1 % that the filter needs, so
    // every pixel, black ones included, must count.
    let mut rgb = vec![0u8; 10_000 * 3];
    rgb[..30 * 3].copy_from_slice(&random_image(17, 30, MID_TONE));

    let stats = lab_stats(&rgb, PixelFilter::default());
    assert_stats_close(&stats, &naive_stats(&rgb), 1e-5, "statistics of a nearly black frame");
}

#[test]
fn flat_source_transfer_is_finite() {
    let flat: Vec<u8> = [120u8, 80, 70].repeat(64);
    let from = lab_stats(&flat, PixelFilter::default());
    let to = naive_stats(&random_image(18, 1024, MID_TONE));
    let transfer = Transfer::new(&from, &to);

    let finite = transfer.matrix.iter().flatten().chain(&transfer.offset).all(|v| v.is_finite());
    assert!(finite, "transfer from a flat image has non-finite coefficients: {transfer:?}");

    // A flat channel keeps scale 1, so the single colour moves to the target mean.
    let mut output = flat.clone();
    transfer_in_place(&mut output, &from, &to);
    let expected = naive_lab_to_rgb(to.mean.map(|v| v as f64)).repeat(64);
    let difference = max_difference(&output, &expected);
    assert!(difference <= 1, "a flat image should become the colour of the target mean, but differs by {difference}");
}

#[test]
fn flat_target_transfer_is_finite() {
    let source = random_image(19, 1024, MID_TONE);
    let from = naive_stats(&source);
    let to = lab_stats(&[90u8, 140, 60].repeat(64), PixelFilter::default());
    let transfer = Transfer::new(&from, &to);

    let finite = transfer.matrix.iter().flatten().chain(&transfer.offset).all(|v| v.is_finite());
    assert!(finite, "transfer to a flat image has non-finite coefficients: {transfer:?}");

    // σ_to = 0 collapses every pixel onto the target mean.
    let mut output = source.clone();
    transfer_in_place(&mut output, &from, &to);
    let expected = naive_lab_to_rgb(to.mean.map(|v| v as f64)).repeat(1024);
    let difference = max_difference(&output, &expected);
    assert!(difference <= 1, "every pixel should become the colour of the flat target, but one differs by {difference}");
}

#[test]
fn histogram_has_unit_norm() {
    let histogram = rgb_histogram(&random_image(20, 5000, FULL_RANGE));
    assert_eq!(histogram.len(), HISTOGRAM_BINS, "histogram length");
    let norm = histogram.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-6, "histogram L2 norm is {norm}, expected 1");
}

#[test]
fn histogram_puts_red_in_bin_448() {
    let histogram = rgb_histogram(&[255u8, 0, 0].repeat(10));
    // Bin = (r >> 5) << 6 | (g >> 5) << 3 | (b >> 5) = 7 << 6 = 448.
    assert_eq!(histogram[448], 1.0, "a pure red image must fill bin 448");
    let others = histogram.iter().enumerate().filter(|&(bin, &v)| bin != 448 && v != 0.0).count();
    assert_eq!(others, 0, "a pure red image must leave every other bin empty");
}

#[test]
fn histogram_splits_at_multiples_of_32() {
    // (32, 31, 224) has levels (1, 0, 7), so bin 1 << 6 | 0 << 3 | 7 = 71.
    // Three of those and four pure blue (bin 7) give 3/5 and 4/5 after scaling.
    let mut rgb = [32u8, 31, 224].repeat(3);
    rgb.extend([0u8, 0, 255].repeat(4));
    let histogram = rgb_histogram(&rgb);
    assert!((histogram[71] - 0.6).abs() < 1e-6, "bin 71 is {}, expected 0.6", histogram[71]);
    assert!((histogram[7] - 0.8).abs() < 1e-6, "bin 7 is {}, expected 0.8", histogram[7]);
}

#[test]
fn histogram_of_empty_image_is_zero() {
    let histogram = rgb_histogram(&[]);
    assert_eq!(histogram.len(), HISTOGRAM_BINS, "histogram length of an empty image");
    assert!(histogram.iter().all(|&v| v == 0.0), "the histogram of an empty image must be all zeros");
}

fn assert_identity(m: [[f64; 3]; 3], context: &str) {
    for (row, values) in m.iter().enumerate() {
        for (col, &value) in values.iter().enumerate() {
            let expected = if row == col { 1.0 } else { 0.0 };
            assert!((value - expected).abs() < 1e-12, "{context}: entry ({row}, {col}) is {value}, expected {expected}");
        }
    }
}

#[test]
fn invert_gives_identity_product() {
    for (name, m) in [("RGB to LMS", RGB_TO_LMS), ("log-LMS to lαβ", log_lms_to_lab())] {
        let inverse = invert(m);
        assert_identity(multiply(m, inverse), &format!("{name} · invert({name})"));
        assert_identity(naive_matmul(m, inverse), &format!("{name} · invert({name}), naive product"));
        assert_identity(naive_matmul(inverse, m), &format!("invert({name}) · {name}, naive product"));
    }
}

#[test]
fn invert_matches_gauss_jordan() {
    for (name, m) in [("RGB to LMS", RGB_TO_LMS), ("log-LMS to lαβ", log_lms_to_lab())] {
        let cofactor = invert(m);
        let eliminated = gauss_jordan_inverse(m);
        for row in 0..3 {
            for col in 0..3 {
                let difference = (cofactor[row][col] - eliminated[row][col]).abs();
                assert!(difference < 1e-12, "{name}: inverse entry ({row}, {col}) differs from Gauss-Jordan by {difference}");
            }
        }
    }
}

#[test]
fn lab_matrix_matches_paper() {
    let code = log_lms_to_lab();
    let paper = naive_lab_matrix();
    for row in 0..3 {
        for col in 0..3 {
            assert!((code[row][col] - paper[row][col]).abs() < 1e-15, "lαβ matrix entry ({row}, {col}) is {}", code[row][col]);
        }
    }
    assert_eq!(RGB_TO_LMS, NAIVE_RGB_TO_LMS, "RGB to LMS matrix differs from Reinhard et al. (2001)");
}


/// Pixel counts that leave every possible remainder after whole SIMD steps.
/// The last two also end in a partial block of the staged x86 loops. 300 pixels
/// are one block of 16 steps, then 2 steps and 12 pixels. 4179 pixels cross the
/// 256-step flush of the lane sums and end 5 steps and 3 pixels after it.
const AWKWARD_WIDTHS: [usize; 16] = [1, 2, 7, 9, 15, 16, 17, 31, 33, 47, 48, 49, 65, 1031, 300, 4179];

/// Returns every kernel family this CPU runs with the tolerance its statistics
/// meet: f64 sums for the scalar one, f32 lanes and polynomial log2 for SIMD.
fn every_family() -> Vec<(&'static ColourKernels, f32)> {
    let mut families = vec![(&SCALAR, 1e-6)];
    families.extend(simd_families().into_iter().map(|(_, kernels)| (kernels, 2e-5)));
    families
}

/// Returns the SIMD kernel families this CPU runs, without the scalar reference.
fn simd_families() -> Vec<(Simd, &'static ColourKernels)> {
    cpu::available()
        .into_iter()
        .filter(|&family| family != Simd::Scalar)
        .filter_map(|family| kernels_for(family).map(|kernels| (family, kernels)))
        .collect()
}

/// Statistics that move colours by a visible amount in every channel.
fn shifting_stats() -> (LabStats, LabStats) {
    let from = LabStats { mean: [4.1, -0.05, 0.02], std: [0.12, 0.03, 0.015] };
    let to = LabStats { mean: [4.3, -0.02, 0.05], std: [0.2, 0.05, 0.01] };
    (from, to)
}

#[test]
fn simd_transfer_matches_scalar_on_awkward_widths() {
    let (from, to) = shifting_stats();
    let transfer = Transfer::new(&from, &to);
    for (family, kernels) in simd_families() {
        for (seed, &pixels) in AWKWARD_WIDTHS.iter().enumerate() {
            let src = random_image(seed as u64 + 10, pixels, FULL_RANGE);
            let mut expected = vec![0; src.len()];
            let mut actual = vec![0; src.len()];
            (SCALAR.transfer)(&src, &mut expected, &transfer);
            (kernels.transfer)(&src, &mut actual, &transfer);
            let difference = max_difference(&actual, &expected);
            assert!(difference <= 1, "{family:?}, {pixels} pixels: {difference} code values from scalar");
            // Off-by-one values come only from rounding next to .5, so they stay rare.
            let mismatched = actual.iter().zip(&expected).filter(|(a, b)| a != b).count();
            assert!(mismatched * 100 <= actual.len().max(100), "{family:?}, {pixels} pixels: {mismatched} values differ");
        }
    }
}

/// Returns every value of each channel with the others held at several levels,
/// including pure black and white, where the LMS floor and clamping act.
fn colour_ramps() -> Vec<u8> {
    let mut rgb = Vec::new();
    for level in [0u8, 1, 17, 128, 254, 255] {
        for value in 0..=255u8 {
            rgb.extend_from_slice(&[value, level, level, level, value, level, level, level, value]);
        }
    }
    rgb
}

#[test]
fn simd_transfer_matches_scalar_on_every_colour_ramp() {
    let src = colour_ramps();
    let (from, to) = shifting_stats();
    for (from, to) in [(from, to), (to, from)] {
        let transfer = Transfer::new(&from, &to);
        for (family, kernels) in simd_families() {
            let mut expected = vec![0; src.len()];
            let mut actual = vec![0; src.len()];
            (SCALAR.transfer)(&src, &mut expected, &transfer);
            (kernels.transfer)(&src, &mut actual, &transfer);
            let difference = max_difference(&actual, &expected);
            assert!(difference <= 1, "{family:?}: {difference} code values from scalar");
        }
    }
}

#[test]
fn simd_lab_sums_match_scalar_on_awkward_widths() {
    let filter = PixelFilter::default();
    for (family, kernels) in simd_families() {
        for (seed, &pixels) in AWKWARD_WIDTHS.iter().enumerate() {
            let rgb = random_image(seed as u64 + 40, pixels, FULL_RANGE);
            let expected = (SCALAR.lab_sums)(&rgb, filter);
            let actual = (kernels.lab_sums)(&rgb, filter);
            assert_eq!(actual.count, expected.count, "{family:?}, {pixels} pixels: counted pixels differ");
            for c in 0..3 {
                let scale = expected.count.max(1) as f64;
                let sum_error = (actual.sum[c] - expected.sum[c]).abs() / scale;
                let square_error = (actual.sum_squares[c] - expected.sum_squares[c]).abs() / scale;
                assert!(sum_error < 1e-5, "{family:?}, {pixels} pixels: channel {c} sum off by {sum_error} per pixel");
                assert!(square_error < 1e-4, "{family:?}, {pixels} pixels: channel {c} squares off by {square_error} per pixel");
            }
        }
    }
}

#[test]
fn simd_lab_stats_match_scalar_on_large_image() {
    // Long enough to cross several f32-to-f64 flushes of the lane sums.
    let rgb = random_image(77, 768 * 512, MID_TONE);
    let filter = PixelFilter::default();
    let expected = lab_stats_with(&SCALAR, &rgb, filter);
    for (family, kernels) in simd_families() {
        let actual = lab_stats_with(kernels, &rgb, filter);
        assert_stats_close(&actual, &expected, 2e-5, &format!("{family:?}"));
    }
}

#[test]
fn simd_filter_matches_scalar_at_boundaries() {
    // Pixels on both sides of each threshold, in every channel position.
    let filter = PixelFilter { dark_below: 16, bright_from: 250 };
    let mut rgb = Vec::new();
    for value in [0u8, 15, 16, 17, 128, 248, 249, 250, 251, 255] {
        for position in 0..3 {
            let mut pixel = [value; 3];
            pixel[position] = 128;
            rgb.extend_from_slice(&pixel);
            rgb.extend_from_slice(&[value; 3]);
        }
    }
    let expected = (SCALAR.lab_sums)(&rgb, filter);
    for (family, kernels) in simd_families() {
        assert_eq!((kernels.lab_sums)(&rgb, filter).count, expected.count, "{family:?}");
    }
}

#[test]
fn kernels_for_unavailable_family_is_none() {
    for family in [Simd::Avx2, Simd::Avx512, Simd::Neon] {
        assert_eq!(kernels_for(family).is_some(), cpu::available().contains(&family), "{family:?}");
    }
}

#[test]
fn simd_stats_uncounted_middle_pixel() {
    // Red and black pixels in turn, with a black (uncounted) pixel in the
    // middle: every counted pixel is the same red, so the spread is zero.
    for pixels in [33 * 33, 256 * 192] {
        let rgb: Vec<u8> = (0..pixels).flat_map(|i| if i % 2 == 1 { [255, 0, 0] } else { [0, 0, 0] }).collect();
        assert!(!PixelFilter::default().counts(0, 0, 0), "black is left out");
        let expected = lab_stats_with(&SCALAR, &rgb, PixelFilter::default());
        for (family, kernels) in simd_families() {
            let actual = lab_stats_with(kernels, &rgb, PixelFilter::default());
            for c in 0..3 {
                let error = (actual.std[c] - expected.std[c]).abs();
                assert!(error <= 2e-5, "{family:?}, {pixels} pixels, channel {c}: std {} against scalar {}", actual.std[c], expected.std[c]);
            }
        }
    }
}

#[test]
fn simd_transfer_saturates_huge_values_to_white() {
    // A transfer that scales a white frame far beyond 255 in every channel
    // (beyond the i32 range, too): every family must give 255, not wrap to 0.
    let src = vec![255u8; 3 * 17];
    let from = LabStats { mean: [3.4, 0.0, 0.0], std: [0.05, 0.05, 0.05] };
    let to = LabStats { mean: [4.2, 0.0, 0.0], std: [2.0, 2.0, 2.0] };
    let transfer = Transfer::new(&from, &to);
    let mut expected = vec![0u8; src.len()];
    (SCALAR.transfer)(&src, &mut expected, &transfer);
    assert!(expected.iter().all(|&v| v == 255), "scalar saturates: {expected:?}");
    for (family, kernels) in simd_families() {
        let mut actual = vec![0u8; src.len()];
        (kernels.transfer)(&src, &mut actual, &transfer);
        assert_eq!(actual, expected, "{family:?}");
    }
}

/// Returns the SIMD families whose kernels keep log2-LMS for the transfers.
fn log_lms_families() -> Vec<(Simd, &'static ColourKernels, &'static LogLmsKernels)> {
    simd_families().into_iter().filter_map(|(family, kernels)| kernels.log_lms_kernels.map(|kept| (family, kernels, kept))).collect()
}

#[test]
fn kept_lab_sums_equal_plain_ones() {
    let filter = PixelFilter::default();
    for (family, kernels, kept) in log_lms_families() {
        for (seed, &pixels) in AWKWARD_WIDTHS.iter().enumerate() {
            let rgb = random_image(seed as u64 + 90, pixels, FULL_RANGE);
            // Stale content, which the kernel must replace.
            let mut log_lms = vec![LogStep([f32::NAN; 48]); 3];
            let sums = (kept.lab_sums)(&rgb, filter, &mut log_lms);
            assert_eq!(sums, (kernels.lab_sums)(&rgb, filter), "{family:?}, {pixels} pixels");
            assert_eq!(log_lms.len(), pixels / 16, "{family:?}, {pixels} pixels: kept steps");
        }
    }
}

#[test]
fn kept_log_lms_matches_naive() {
    // Checks the layout too: step i contains pixels 16i..16i+15, L then M then S.
    let rgb = random_image(95, 1031, FULL_RANGE);
    for (family, _, kept) in log_lms_families() {
        let mut log_lms = Vec::new();
        (kept.lab_sums)(&rgb, PixelFilter::default(), &mut log_lms);
        for (step, values) in log_lms.iter().enumerate() {
            for lane in 0..16 {
                let pixel = 16 * step + lane;
                let lms = naive_lms(&rgb[3 * pixel..3 * pixel + 3]);
                for (c, value) in lms.iter().enumerate() {
                    let expected = value.max(NAIVE_LMS_FLOOR).log2();
                    let actual = values.0[16 * c + lane] as f64;
                    assert!((actual - expected).abs() < 2e-5, "{family:?}, pixel {pixel}, channel {c}: {actual} against {expected}");
                }
            }
        }
    }
}

#[test]
fn kept_transfer_equals_plain_one() {
    let mut images: Vec<Vec<u8>> =
        AWKWARD_WIDTHS.iter().enumerate().map(|(seed, &pixels)| random_image(seed as u64 + 110, pixels, FULL_RANGE)).collect();
    images.push(colour_ramps());
    let (from, to) = shifting_stats();
    for transfer in [Transfer::new(&from, &to), Transfer::new(&to, &from)] {
        for (family, kernels, kept) in log_lms_families() {
            for src in &images {
                let mut log_lms = Vec::new();
                (kept.lab_sums)(src, PixelFilter::default(), &mut log_lms);
                let mut expected = vec![0; src.len()];
                let mut actual = vec![0; src.len()];
                (kernels.transfer)(src, &mut expected, &transfer);
                (kept.transfer)(src, &log_lms, &mut actual, &transfer);
                assert_eq!(actual, expected, "{family:?}, {} pixels", src.len() / 3);
            }
        }
    }
}

#[test]
fn analysis_matches_stats_and_transfer() {
    let filter = PixelFilter::default();
    let target = random_image(130, 4179, MID_TONE);
    let images = [random_image(131, 768 * 3 + 5, FULL_RANGE), random_image(132, 4179, MID_TONE), vec![0u8; 3 * 1000]];
    for space in [ColourSpace::LAlphaBeta, ColourSpace::Lab] {
        let to = space.stats(&target, filter);
        for rgb in &images {
            let pixels = rgb.len() / 3;
            let analysis = space.analyse(rgb, filter);
            let stats = space.stats(rgb, filter);
            assert_eq!(analysis.stats(), stats, "{space}, {pixels} pixels: statistics");

            let mut expected = vec![0; rgb.len()];
            let mut actual = vec![0; rgb.len()];
            space.transfer(rgb, &mut expected, &stats, &to);
            analysis.transfer_to(&mut actual, &to);
            assert_eq!(actual, expected, "{space}, {pixels} pixels: transferred pixels");
        }
    }
}
