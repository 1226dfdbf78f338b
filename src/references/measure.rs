//! Measuring one source image for the reference set.

use std::path::Path;

use crate::colour::{self, PixelFilter};
use crate::frame;
use crate::models::Model;
use crate::pipeline::PipelineError;

use super::SourceImage;

/// Decodes an image and computes its statistics and histogram at `stats_size`
/// (the segmentation model's input size, where transfers happen) and its
/// embedding with `embedder`.
pub fn measure_image(
    path: &Path,
    embedder: &Model,
    stats_size: (u32, u32),
    filter: PixelFilter,
) -> Result<SourceImage, PipelineError> {
    let rgb = frame::read_rgb(path)?;
    let resized = frame::resize_rgb(&rgb, stats_size.0, stats_size.1)?;
    let stats = colour::lab_stats(resized.as_raw(), filter);
    let cielab_stats = colour::cielab::lab_stats(resized.as_raw(), filter);
    let histogram = colour::rgb_histogram(resized.as_raw());
    let input = &embedder.card().input;
    let small = frame::resize_rgb(&rgb, input.width, input.height)?;
    let embedding = embedder.run_image(&small)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(SourceImage { name, stats, cielab_stats, histogram, embedding })
}
