//! Reference selection: the GRIS histogram medoid and the LRIS nearest embedding.

/// Quantises a vector to int8 with one scale: `value ≈ q × scale`, |q| ≤ 127.
///
/// A zero vector gets scale 0 and all-zero codes.
pub fn quantise(values: &[f32]) -> (Vec<i8>, f32) {
    let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; values.len()], 0.0);
    }
    let scale = max / 127.0;
    let codes = values.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8).collect();
    (codes, scale)
}

/// Dot product of two int8 vectors, accumulated in i32.
pub(crate) fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// Returns the index of the row with the highest cosine similarity to `query`
/// (assumed L2-normalised, as are the stored rows) and that similarity.
/// Ties go to the lower index.
pub(crate) fn nearest(rows: &[i8], scales: &[f32], dims: usize, query: &[f32]) -> (usize, f32) {
    let (codes, query_scale) = quantise(query);
    let mut best = (0usize, f32::NEG_INFINITY);
    for (index, row) in rows.chunks_exact(dims).enumerate() {
        let score = dot_i8(&codes, row) as f32 * query_scale * scales[index];
        if score > best.1 {
            best = (index, score);
        }
    }
    best
}

/// The GRIS choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Medoid {
    /// Index of the medoid image.
    pub index: usize,
    /// Its mean Euclidean distance to all histograms, itself included.
    pub mean_distance: f32,
}

/// Finds the medoid of unit-L2 histograms (rows of `bins` values): the row
/// with the smallest mean Euclidean distance to all rows, ties to the lower
/// index. `progress` is called with the number of rows finished.
pub fn gris_medoid(histograms: &[f32], bins: usize, mut progress: impl FnMut(usize)) -> Option<Medoid> {
    let count = histograms.len() / bins;
    if count == 0 {
        return None;
    }
    let mut totals = vec![0f64; count];
    for i in 0..count {
        let a = &histograms[i * bins..(i + 1) * bins];
        for j in (i + 1)..count {
            let b = &histograms[j * bins..(j + 1) * bins];
            let squared: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
            let distance = squared.sqrt() as f64;
            totals[i] += distance;
            totals[j] += distance;
        }
        progress(i + 1);
    }
    let mut best = Medoid { index: 0, mean_distance: f32::INFINITY };
    for (index, total) in totals.iter().enumerate() {
        let mean = (*total / count as f64) as f32;
        if mean < best.mean_distance {
            best = Medoid { index, mean_distance: mean };
        }
    }
    Some(best)
}
