//! The joint 8×8×8 RGB histogram used by global reference selection.

/// Number of histogram bins: 8 levels per channel (value >> 5).
pub const HISTOGRAM_BINS: usize = 512;

/// Computes the joint RGB histogram of packed RGB pixels, scaled to unit L2 norm.
///
/// An empty image gives an all-zero histogram.
pub fn rgb_histogram(rgb: &[u8]) -> Vec<f32> {
    let mut counts = vec![0u32; HISTOGRAM_BINS];
    for pixel in rgb.chunks_exact(3) {
        let bin = ((pixel[0] as usize >> 5) << 6) | ((pixel[1] as usize >> 5) << 3) | (pixel[2] as usize >> 5);
        counts[bin] += 1;
    }
    let norm = counts.iter().map(|&c| (c as f64) * (c as f64)).sum::<f64>().sqrt();
    if norm == 0.0 {
        return vec![0.0; HISTOGRAM_BINS];
    }
    counts.iter().map(|&c| (c as f64 / norm) as f32).collect()
}
