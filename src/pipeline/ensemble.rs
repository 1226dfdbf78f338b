//! Averaging class logits and turning them into a class-index mask.

use image::GrayImage;

/// Averages several NCHW logit tensors (batch 1) of equal length, element-wise.
pub fn mean_logits(outputs: &[Vec<f32>]) -> Vec<f32> {
    let Some(first) = outputs.first() else { return Vec::new() };
    if outputs.len() == 1 {
        return first.clone();
    }
    let mut sum = first.clone();
    for output in &outputs[1..] {
        for (s, v) in sum.iter_mut().zip(output) {
            *s += v;
        }
    }
    let scale = 1.0 / outputs.len() as f32;
    sum.iter_mut().for_each(|s| *s *= scale);
    sum
}

/// Upsamples CHW logits (`classes` planes of `width` × `height`) bilinearly to
/// `out_width` × `out_height` and takes the argmax per pixel (ties to the lower
/// class). Pixel centres are aligned (half-pixel convention), as in image resizing.
pub fn argmax_upsampled(
    logits: &[f32],
    classes: usize,
    width: usize,
    height: usize,
    out_width: u32,
    out_height: u32,
) -> GrayImage {
    let plane = width * height;
    let mut mask = GrayImage::new(out_width, out_height);
    let x_scale = width as f32 / out_width as f32;
    let y_scale = height as f32 / out_height as f32;
    let columns: Vec<(usize, usize, f32)> = (0..out_width)
        .map(|x| axis_sample((x as f32 + 0.5) * x_scale - 0.5, width))
        .collect();
    for y in 0..out_height {
        let (y0, y1, fy) = axis_sample((y as f32 + 0.5) * y_scale - 0.5, height);
        for (x, &(x0, x1, fx)) in columns.iter().enumerate() {
            let mut best = (0u8, f32::NEG_INFINITY);
            for class in 0..classes {
                let p = &logits[class * plane..(class + 1) * plane];
                let top = p[y0 * width + x0] * (1.0 - fx) + p[y0 * width + x1] * fx;
                let bottom = p[y1 * width + x0] * (1.0 - fx) + p[y1 * width + x1] * fx;
                let value = top * (1.0 - fy) + bottom * fy;
                if value > best.1 {
                    best = (class as u8, value);
                }
            }
            mask.put_pixel(x as u32, y, image::Luma([best.0]));
        }
    }
    mask
}

/// Takes the argmax per pixel of CHW logits (`classes` planes of `width` ×
/// `height`) at their own resolution (ties to the lower class).
pub fn argmax(logits: &[f32], classes: usize, width: u32, height: u32) -> GrayImage {
    let plane = width as usize * height as usize;
    let mut mask = GrayImage::new(width, height);
    for (index, pixel) in mask.pixels_mut().enumerate() {
        let mut best = (0u8, f32::NEG_INFINITY);
        for class in 0..classes {
            let value = logits[class * plane + index];
            if value > best.1 {
                best = (class as u8, value);
            }
        }
        pixel[0] = best.0;
    }
    mask
}

/// Returns the two neighbouring sample indices and the weight of the second.
fn axis_sample(position: f32, size: usize) -> (usize, usize, f32) {
    let clamped = position.clamp(0.0, (size - 1) as f32);
    let low = clamped.floor() as usize;
    let high = (low + 1).min(size - 1);
    (low, high, clamped - low as f32)
}

/// Returns the share of pixels of each class in a mask.
pub fn class_fractions(mask: &GrayImage, classes: usize) -> Vec<f64> {
    let mut counts = vec![0u64; classes];
    for pixel in mask.pixels() {
        if let Some(count) = counts.get_mut(pixel[0] as usize) {
            *count += 1;
        }
    }
    let total = (mask.width() as u64 * mask.height() as u64).max(1) as f64;
    counts.iter().map(|&c| c as f64 / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_picks_largest_logit() {
        // Two classes on a 2×1 image: class 1 wins the first pixel, class 0 the second.
        let logits = [0.1, 2.0, 0.5, -1.0];
        let mask = argmax(&logits, 2, 2, 1);
        assert_eq!(mask.as_raw(), &vec![1, 0], "per-pixel argmax");
    }

    #[test]
    fn argmax_ties_go_to_lower_class() {
        let logits = [0.3, 0.3];
        let mask = argmax(&logits, 2, 1, 1);
        assert_eq!(mask.get_pixel(0, 0)[0], 0, "equal logits give class 0");
    }

    #[test]
    fn argmax_equals_upsampled_at_same_size() {
        let (classes, width, height) = (3usize, 7u32, 5u32);
        let plane = (width * height) as usize;
        let logits: Vec<f32> = (0..classes * plane).map(|i| ((i * 37 % 11) as f32 * 0.7).sin()).collect();
        let direct = argmax(&logits, classes, width, height);
        let upsampled = argmax_upsampled(&logits, classes, width as usize, height as usize, width, height);
        assert_eq!(direct, upsampled, "no resampling at the model's own size");
    }
}
