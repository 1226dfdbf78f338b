//! First and second moments of log2-LMS, which the SIMD statistics kernels
//! accumulate instead of lαβ sums: lαβ is linear in log-LMS, so its sums and
//! sums of squares follow from these with the lαβ matrix.
//!
//! The kernels sum `u − shift` rather than `u`, with the shift taken from one
//! pixel of the image. In f32, Σu² − (Σu)²/n loses the variance of a nearly
//! uniform image to cancellation; around a shift inside the data it does not.

use super::approx::LOG10_2;
use super::lab::log_lms_to_lab;
use super::{LabSums, PixelFilter};

/// Sums of shifted log2-LMS values d = u − shift and of their pairwise
/// products over counted pixels.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Moments {
    /// The log2-LMS value subtracted before summing.
    pub shift: [f32; 3],
    /// Pixels counted.
    pub count: u64,
    /// Σ d_k for k = L, M, S.
    pub sum: [f64; 3],
    /// Σ d_k·d_l for the pairs in [`Moments::PAIRS`].
    pub products: [f64; 6],
}

impl Moments {
    /// Index pairs (k, l), k ≤ l, in the order of `products`.
    pub const PAIRS: [(usize, usize); 6] = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];

    /// Starts empty sums shifted by the log2-LMS of a pixel of `rgb` that
    /// passes the filter: the middle one, or else the next one that passes
    /// after it, or else the first one before it.
    ///
    /// The shift must come from a counted pixel. A shift far from every counted
    /// value (a black middle pixel in a frame where only red pixels count)
    /// brings the cancellation back, and a flat channel then gets a spurious
    /// standard deviation that the transfer scales up.
    pub fn shifted_for(rgb: &[u8], filter: PixelFilter, rgb_to_lms: &[[f32; 3]; 3], floor: f32) -> Moments {
        let middle = rgb.len() / 3 / 2 * 3;
        let counted = |pixel: &&[u8]| filter.counts(pixel[0], pixel[1], pixel[2]);
        let chosen = rgb[middle..]
            .chunks_exact(3)
            .find(counted)
            .or_else(|| rgb[..middle].chunks_exact(3).find(counted))
            .or_else(|| rgb.get(middle..middle + 3));
        let mut shift = [0f32; 3];
        if let Some(pixel) = chosen {
            for (row, value) in shift.iter_mut().enumerate() {
                let lms: f32 = (0..3).map(|k| rgb_to_lms[row][k] * pixel[k] as f32).sum();
                *value = lms.max(floor).log2();
            }
        }
        Moments { shift, ..Moments::default() }
    }

    /// Returns Σ u_k·u_l = Σ d_k·d_l + shift_k·Σ d_l + shift_l·Σ d_k + n·shift_k·shift_l.
    fn product(&self, k: usize, l: usize) -> f64 {
        let (k, l) = if k <= l { (k, l) } else { (l, k) };
        let slot = Self::PAIRS.iter().position(|&pair| pair == (k, l)).unwrap_or(0);
        let (a, b) = (self.shift[k] as f64, self.shift[l] as f64);
        self.products[slot] + a * self.sum[l] + b * self.sum[k] + self.count as f64 * a * b
    }

    /// Returns Σ u_k = Σ d_k + n·shift_k.
    fn total(&self, k: usize) -> f64 {
        self.sum[k] + self.count as f64 * self.shift[k] as f64
    }

    /// Converts to sums of lαβ (log10 units) and their squares.
    pub fn to_lab_sums(&self) -> LabSums {
        let forward = log_lms_to_lab();
        let mut sums = LabSums { count: self.count, ..LabSums::default() };
        for c in 0..3 {
            let row = forward[c];
            sums.sum[c] = LOG10_2 * (0..3).map(|k| row[k] * self.total(k)).sum::<f64>();
            let mut square = 0.0;
            for k in 0..3 {
                for l in 0..3 {
                    square += row[k] * row[l] * self.product(k, l);
                }
            }
            sums.sum_squares[c] = LOG10_2 * LOG10_2 * square;
        }
        sums
    }
}

impl LabSums {
    /// Adds the sums of another part of the same image.
    pub fn add(&mut self, other: &LabSums) {
        self.count += other.count;
        for c in 0..3 {
            self.sum[c] += other.sum[c];
            self.sum_squares[c] += other.sum_squares[c];
        }
    }
}
