//! Portable colour kernels: the reference every other implementation must match.

use super::lab::{log_lms_to_lab, LMS_FLOOR, RGB_TO_LMS};
use super::{LabSums, PixelFilter, Transfer};

/// Returns the lαβ value of one RGB pixel, in f64.
pub(crate) fn lab_of(r: u8, g: u8, b: u8) -> [f64; 3] {
    let rgb = [r as f64, g as f64, b as f64];
    let mut log_lms = [0.0; 3];
    for row in 0..3 {
        let lms: f64 = (0..3).map(|k| RGB_TO_LMS[row][k] * rgb[k]).sum();
        log_lms[row] = lms.max(LMS_FLOOR).log10();
    }
    let forward = log_lms_to_lab();
    let mut lab = [0.0; 3];
    for row in 0..3 {
        lab[row] = (0..3).map(|k| forward[row][k] * log_lms[k]).sum();
    }
    lab
}

/// Sums lαβ over the pixels that pass the filter.
pub fn lab_sums(rgb: &[u8], filter: PixelFilter) -> LabSums {
    let mut sums = LabSums::default();
    for pixel in rgb.chunks_exact(3) {
        if !filter.counts(pixel[0], pixel[1], pixel[2]) {
            continue;
        }
        let lab = lab_of(pixel[0], pixel[1], pixel[2]);
        sums.count += 1;
        for (c, value) in lab.iter().enumerate() {
            sums.sum[c] += value;
            sums.sum_squares[c] += value * value;
        }
    }
    sums
}

/// Transfers every pixel of `src` into `dst`, rounding to nearest and clamping.
pub fn transfer(src: &[u8], dst: &mut [u8], transfer: &Transfer) {
    let m = &transfer.rgb_to_lms;
    let a = &transfer.matrix;
    let inv = &transfer.lms_to_rgb;
    let floor = LMS_FLOOR as f32;
    for (input, output) in src.chunks_exact(3).zip(dst.chunks_exact_mut(3)) {
        let rgb = [input[0] as f32, input[1] as f32, input[2] as f32];
        let mut log_lms = [0.0f32; 3];
        for row in 0..3 {
            let lms = m[row][0] * rgb[0] + m[row][1] * rgb[1] + m[row][2] * rgb[2];
            log_lms[row] = lms.max(floor).log10();
        }
        let mut lms = [0.0f32; 3];
        for row in 0..3 {
            let value = a[row][0] * log_lms[0]
                + a[row][1] * log_lms[1]
                + a[row][2] * log_lms[2]
                + transfer.offset[row];
            lms[row] = 10f32.powf(value);
        }
        for row in 0..3 {
            let value = inv[row][0] * lms[0] + inv[row][1] * lms[1] + inv[row][2] * lms[2];
            output[row] = value.round().clamp(0.0, 255.0) as u8;
        }
    }
}
