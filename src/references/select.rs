//! LRIS reference selection: int8 quantisation and the nearest embedding.

use super::kernels::dot_kernels;

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

/// Returns the index of the row with the highest cosine similarity to `query`
/// (assumed L2-normalised, as are the stored rows) and that similarity.
/// Ties go to the lower index.
pub fn nearest(rows: &[i8], scales: &[f32], dims: usize, query: &[f32]) -> (usize, f32) {
    let (codes, query_scale) = quantise(query);
    let dot_i8 = dot_kernels().dot_i8;
    let mut best = (0usize, f32::NEG_INFINITY);
    for (index, row) in rows.chunks_exact(dims).enumerate() {
        let score = dot_i8(&codes, row) as f32 * query_scale * scales[index];
        if score > best.1 {
            best = (index, score);
        }
    }
    best
}
