//! Portable int8 dot product: the reference every other kernel must equal.

/// Dot product of two int8 vectors, accumulated in i32.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}
