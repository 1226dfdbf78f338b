//! Exposure and sharpness of a frame, for choosing the best frame of a burst
//! and rejecting captures the operator should retake.

use image::RgbImage;

/// Measured exposure and sharpness of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct FrameQuality {
    /// Mean BT.601 luma, 0..255.
    pub mean_luma: f64,
    /// Share of pixels whose luma is at or above the overexposure level.
    pub overexposed_fraction: f64,
    /// Variance of the 4-neighbour Laplacian of the luma: higher is sharper.
    pub sharpness: f64,
}

/// Limits below or above which a capture is rejected.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityLimits {
    /// Reject when the mean luma is below this (0..255).
    pub min_mean_luma: f64,
    /// Luma at or above which a pixel counts as overexposed (0..255).
    pub overexposed_level: u8,
    /// Reject when more than this share of pixels is overexposed (0..1).
    pub max_overexposed_fraction: f64,
    /// Reject when the variance of the Laplacian is below this. It depends on
    /// the camera, the resolution and the scene, so set it from the values in
    /// `results.jsonl` of captures taken at the bedside.
    pub min_sharpness: f64,
}

impl Default for QualityLimits {
    fn default() -> QualityLimits {
        QualityLimits { min_mean_luma: 30.0, overexposed_level: 250, max_overexposed_fraction: 0.25, min_sharpness: 10.0 }
    }
}

impl QualityLimits {
    /// Returns why a frame of this quality should be retaken, or `None` when it is usable.
    pub fn rejection(&self, quality: &FrameQuality) -> Option<String> {
        if quality.mean_luma < self.min_mean_luma {
            return Some(format!("too dark: mean luma {:.1} is below {:.1}", quality.mean_luma, self.min_mean_luma));
        }
        if quality.overexposed_fraction > self.max_overexposed_fraction {
            return Some(format!(
                "overexposed: {:.1} % of pixels at luma {} or above, more than {:.1} %",
                quality.overexposed_fraction * 100.0,
                self.overexposed_level,
                self.max_overexposed_fraction * 100.0
            ));
        }
        if quality.sharpness < self.min_sharpness {
            return Some(format!("blurred: variance of the Laplacian {:.1} is below {:.1}", quality.sharpness, self.min_sharpness));
        }
        None
    }
}

/// Measures frames, reusing one luma buffer.
#[derive(Default)]
pub struct QualityMeter {
    luma: Vec<u8>,
}

impl QualityMeter {
    /// Measures the exposure and sharpness of `rgb`; pixels at or above
    /// `overexposed_level` count as overexposed.
    pub fn measure(&mut self, rgb: &RgbImage, overexposed_level: u8) -> FrameQuality {
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        self.luma.clear();
        // BT.601 luma weights 0.299, 0.587, 0.114 scaled by 256.
        self.luma.extend(rgb.as_raw().chunks_exact(3).map(|p| ((77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32 + 128) >> 8) as u8));

        let pixels = self.luma.len().max(1) as f64;
        let sum: u64 = self.luma.iter().map(|&v| v as u64).sum();
        let overexposed = self.luma.iter().filter(|&&v| v >= overexposed_level).count();
        FrameQuality {
            mean_luma: sum as f64 / pixels,
            overexposed_fraction: overexposed as f64 / pixels,
            sharpness: laplacian_variance(&self.luma, width, height),
        }
    }
}

/// Returns the variance of the 4-neighbour Laplacian over the interior pixels
/// of a `width` × `height` luma plane (0 for planes under 3×3).
pub fn laplacian_variance(luma: &[u8], width: usize, height: usize) -> f64 {
    if width < 3 || height < 3 {
        return 0.0;
    }
    let mut sum = 0i64;
    let mut sum_squares = 0i64;
    for y in 1..height - 1 {
        let above = &luma[(y - 1) * width..y * width];
        let row = &luma[y * width..(y + 1) * width];
        let below = &luma[(y + 1) * width..(y + 2) * width];
        for x in 1..width - 1 {
            let response = above[x] as i32 + below[x] as i32 + row[x - 1] as i32 + row[x + 1] as i32 - 4 * row[x] as i32;
            sum += response as i64;
            sum_squares += (response * response) as i64;
        }
    }
    let count = ((width - 2) * (height - 2)) as f64;
    let mean = sum as f64 / count;
    sum_squares as f64 / count - mean * mean
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    fn checkerboard(cell: u32) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| if (x / cell + y / cell).is_multiple_of(2) { Rgb([200, 200, 200]) } else { Rgb([40, 40, 40]) })
    }

    #[test]
    fn flat_image_has_no_sharpness() {
        let quality = QualityMeter::default().measure(&RgbImage::from_pixel(32, 32, Rgb([90, 90, 90])), 250);
        assert_eq!(quality.sharpness, 0.0, "flat image");
        assert!((quality.mean_luma - 90.0).abs() < 0.5, "mean luma {}", quality.mean_luma);
    }

    #[test]
    fn blur_lowers_sharpness() {
        let sharp = checkerboard(4);
        let blurred = image::imageops::blur(&sharp, 2.0);
        let mut meter = QualityMeter::default();
        let a = meter.measure(&sharp, 250).sharpness;
        let b = meter.measure(&blurred, 250).sharpness;
        assert!(a > 10.0 * b, "sharp {a} against blurred {b}");
    }

    #[test]
    fn laplacian_of_single_spike() {
        // One pixel of 10 in a 3×3 zero plane: one interior response of −40.
        let mut luma = vec![0u8; 9];
        luma[4] = 10;
        assert_eq!(laplacian_variance(&luma, 3, 3), 0.0, "one response has no variance");
        // In 4×3, the interior responses are −40 and 10: mean −15, variance 625.
        let mut luma = vec![0u8; 12];
        luma[5] = 10;
        assert_eq!(laplacian_variance(&luma, 4, 3), 625.0, "two responses");
    }

    #[test]
    fn limits_name_the_reason() {
        let limits = QualityLimits::default();
        let dark = FrameQuality { mean_luma: 5.0, overexposed_fraction: 0.0, sharpness: 100.0 };
        assert!(limits.rejection(&dark).unwrap().starts_with("too dark"), "dark frame");
        let bright = FrameQuality { mean_luma: 240.0, overexposed_fraction: 0.6, sharpness: 100.0 };
        assert!(limits.rejection(&bright).unwrap().starts_with("overexposed"), "bright frame");
        let soft = FrameQuality { mean_luma: 120.0, overexposed_fraction: 0.0, sharpness: 1.0 };
        assert!(limits.rejection(&soft).unwrap().starts_with("blurred"), "soft frame");
        let good = FrameQuality { mean_luma: 120.0, overexposed_fraction: 0.01, sharpness: 100.0 };
        assert_eq!(limits.rejection(&good), None, "good frame");
    }
}
