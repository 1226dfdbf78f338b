//! The GRIS medoid: the histogram with the smallest mean Euclidean distance to
//! all others, computed from dot products in tiles of rows on every core.
//!
//! ‖a − b‖² = ‖a‖² + ‖b‖² − 2·a·b, so the N² distances need one pass of dot
//! products, which vectorise well. Tiles of 4 × 4 rows reuse each loaded lane
//! four times. The same tile code is compiled for AVX2 on x86_64 and for the
//! base instruction set elsewhere (aarch64 always has Advanced SIMD).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cpu::{self, Simd};

/// Rows per tile side.
const TILE: usize = 4;

/// Lanes summed side by side, so the compiler can keep them in one vector register.
const LANES: usize = 8;

/// Rows of the outer loop handed to a worker at once.
const BLOCK_ROWS: usize = 16;

/// The GRIS choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Medoid {
    /// Index of the medoid image.
    pub index: usize,
    /// Its mean Euclidean distance to all histograms, itself included.
    pub mean_distance: f32,
}

/// Finds the medoid of histograms (rows of `bins` values): the row with the
/// smallest mean Euclidean distance to all rows, ties to the lower index.
///
/// Runs on all available cores. `progress` is called on the calling thread
/// with the number of rows finished so far.
pub fn gris_medoid(histograms: &[f32], bins: usize, mut progress: impl FnMut(usize)) -> Option<Medoid> {
    let count = if bins == 0 { 0 } else { histograms.len() / bins };
    if count == 0 {
        return None;
    }
    let rows: Vec<&[f32]> = histograms.chunks_exact(bins).collect();
    let norms: Vec<f32> = rows.iter().map(|row| row.iter().map(|v| v * v).sum()).collect();
    let use_avx2 = matches!(cpu::active(), Simd::Avx2 | Simd::Avx512);

    let next_block = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let totals = Mutex::new(vec![0f64; count]);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(count.div_ceil(BLOCK_ROWS));

    let work = |on_block: &mut dyn FnMut(usize)| {
        let mut local = Vec::new();
        loop {
            let start = next_block.fetch_add(BLOCK_ROWS, Ordering::Relaxed);
            if start >= count {
                break;
            }
            let end = (start + BLOCK_ROWS).min(count);
            let mut block = vec![0f64; end - start];
            row_totals(&rows, &norms, start, &mut block, use_avx2);
            local.push((start, block));
            on_block(finished.fetch_add(end - start, Ordering::Relaxed) + end - start);
        }
        let mut totals = totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (start, block) in local {
            totals[start..start + block.len()].copy_from_slice(&block);
        }
    };

    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(|| work(&mut |_| {}));
        }
        work(&mut |done| progress(done));
    });
    progress(count);

    let totals = totals.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut best = Medoid { index: 0, mean_distance: f32::INFINITY };
    for (index, total) in totals.iter().enumerate() {
        let mean = (*total / count as f64) as f32;
        if mean < best.mean_distance {
            best = Medoid { index, mean_distance: mean };
        }
    }
    Some(best)
}

/// Adds, for each row `start + i`, its distances to all rows into `block[i]`.
fn row_totals(rows: &[&[f32]], norms: &[f32], start: usize, block: &mut [f64], use_avx2: bool) {
    #[cfg(target_arch = "x86_64")]
    if use_avx2 {
        // SAFETY: `use_avx2` is true only when the AVX2 family was chosen, which
        // `cpu` allows only after detecting AVX2 and FMA.
        unsafe { row_totals_avx2(rows, norms, start, block) };
        return;
    }
    let _ = use_avx2;
    row_totals_portable(rows, norms, start, block);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_totals_avx2(rows: &[&[f32]], norms: &[f32], start: usize, block: &mut [f64]) {
    row_totals_portable(rows, norms, start, block);
}

#[inline(always)]
fn row_totals_portable(rows: &[&[f32]], norms: &[f32], start: usize, block: &mut [f64]) {
    for i0 in (0..block.len()).step_by(TILE) {
        let a = tile_rows(rows, start + i0);
        for j0 in (0..rows.len()).step_by(TILE) {
            let b = tile_rows(rows, j0);
            let dots = tile_dots(&a, &b);
            for (r, row) in dots.iter().enumerate() {
                let i = start + i0 + r;
                if i0 + r >= block.len() || i >= rows.len() {
                    continue;
                }
                for (c, &dot) in row.iter().enumerate() {
                    let j = j0 + c;
                    // A row's distance to itself is 0; the dot form would give
                    // the square root of rounding noise instead.
                    if j >= rows.len() || j == i {
                        continue;
                    }
                    let squared = (norms[i] + norms[j] - 2.0 * dot).max(0.0);
                    block[i0 + r] += (squared as f64).sqrt();
                }
            }
        }
    }
}

/// Returns up to `TILE` rows from `first`, repeating the last row past the end
/// (those results are skipped by the caller).
#[inline(always)]
fn tile_rows<'a>(rows: &[&'a [f32]], first: usize) -> [&'a [f32]; TILE] {
    let last = rows.len() - 1;
    std::array::from_fn(|k| rows[(first + k).min(last)])
}

/// Dot products of every row of `a` with every row of `b`.
#[inline(always)]
fn tile_dots(a: &[&[f32]; TILE], b: &[&[f32]; TILE]) -> [[f32; TILE]; TILE] {
    let bins = a[0].len();
    let whole = bins / LANES * LANES;
    let mut lanes = [[[0f32; LANES]; TILE]; TILE];
    for k in (0..whole).step_by(LANES) {
        let a_chunk: [&[f32]; TILE] = std::array::from_fn(|r| &a[r][k..k + LANES]);
        let b_chunk: [&[f32]; TILE] = std::array::from_fn(|c| &b[c][k..k + LANES]);
        for r in 0..TILE {
            for c in 0..TILE {
                for l in 0..LANES {
                    lanes[r][c][l] += a_chunk[r][l] * b_chunk[c][l];
                }
            }
        }
    }
    let mut dots = [[0f32; TILE]; TILE];
    for r in 0..TILE {
        for c in 0..TILE {
            let tail: f32 = (whole..bins).map(|k| a[r][k] * b[c][k]).sum();
            dots[r][c] = lanes[r][c].iter().sum::<f32>() + tail;
        }
    }
    dots
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The medoid by definition: every pair's distance from the differences.
    fn naive_medoid(histograms: &[f32], bins: usize) -> Medoid {
        let rows: Vec<&[f32]> = histograms.chunks_exact(bins).collect();
        let mut best = Medoid { index: 0, mean_distance: f32::INFINITY };
        for (i, a) in rows.iter().enumerate() {
            let total: f64 = rows
                .iter()
                .map(|b| a.iter().zip(b.iter()).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt())
                .sum();
            let mean = (total / rows.len() as f64) as f32;
            if mean < best.mean_distance {
                best = Medoid { index: i, mean_distance: mean };
            }
        }
        best
    }

    fn unit_histograms(count: usize, bins: usize, seed: u64) -> Vec<f32> {
        let mut state = seed | 1;
        let mut values = Vec::with_capacity(count * bins);
        for _ in 0..count {
            let row: Vec<f32> = (0..bins)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Sparse, skewed counts, as colour histograms are.
                    let v = (state >> 40) as f32 / (1u64 << 24) as f32;
                    if v < 0.7 { 0.0 } else { (v - 0.7) * (v - 0.7) }
                })
                .collect();
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            values.extend(row.iter().map(|v| v / norm));
        }
        values
    }

    #[test]
    fn medoid_matches_naive_on_awkward_counts() {
        for (count, bins) in [(1, 512), (3, 512), (5, 512), (17, 512), (33, 13), (70, 512)] {
            let histograms = unit_histograms(count, bins, count as u64 * 31 + bins as u64);
            let fast = gris_medoid(&histograms, bins, |_| {}).expect("non-empty set");
            let naive = naive_medoid(&histograms, bins);
            assert_eq!(fast.index, naive.index, "{count} histograms of {bins} bins");
            assert!((fast.mean_distance - naive.mean_distance).abs() < 1e-5, "{count}×{bins}: {fast:?} vs {naive:?}");
        }
    }

    #[test]
    fn medoid_of_cluster_is_its_centre() {
        let bins = 4;
        let histograms = [1.0, 0.0, 0.0, 0.0, 0.8, 0.6, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0];
        let medoid = gris_medoid(&histograms, bins, |_| {}).expect("non-empty set");
        assert_eq!(medoid.index, naive_medoid(&histograms, bins).index);
    }
}
