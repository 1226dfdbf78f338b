//! Writing a reference-set file from per-image measurements.

use crate::colour::{LabStats, PixelFilter, HISTOGRAM_BINS};

use super::format::*;
use super::medoid::{gris_medoid, Medoid};
use super::select::quantise;

/// Measurements of one source image.
#[derive(Clone, Debug)]
pub struct SourceImage {
    /// Name stored in the file (the file name, without directories).
    pub name: String,
    /// lαβ statistics over the pixels that count.
    pub stats: LabStats,
    /// Statistics of the 8-bit CIE L*a*b* codes over the same pixels.
    pub cielab_stats: LabStats,
    /// Unit-L2 joint RGB histogram ([`HISTOGRAM_BINS`] values).
    pub histogram: Vec<f32>,
    /// L2-normalised embedding.
    pub embedding: Vec<f32>,
}

/// Settings recorded in the header.
#[derive(Clone, Debug)]
pub struct BuildSettings {
    /// Width and height (pixels) the statistics were computed at.
    pub stats_size: (u32, u32),
    /// Pixel filter used for the statistics.
    pub filter: PixelFilter,
    /// Embedder model name (at most 64 bytes are stored).
    pub embedder_name: String,
    /// CRC-32 of the embedder ONNX file.
    pub embedder_crc32: u32,
}

/// Serialises the reference set, choosing the GRIS medoid. The same images in
/// the same order give byte-identical output.
pub fn build_reference_file(
    images: &[SourceImage],
    settings: &BuildSettings,
    progress: impl FnMut(usize),
) -> Result<(Vec<u8>, Medoid), String> {
    let count = images.len();
    let dims = images.first().map(|i| i.embedding.len()).ok_or("no source images")?;
    for image in images {
        if image.histogram.len() != HISTOGRAM_BINS || image.embedding.len() != dims {
            return Err(format!("{}: histogram or embedding has the wrong length", image.name));
        }
    }
    let histograms: Vec<f32> = images.iter().flat_map(|i| i.histogram.iter().copied()).collect();
    let medoid = gris_medoid(&histograms, HISTOGRAM_BINS, progress).ok_or("no source images")?;

    let mut names = Vec::new();
    for image in images {
        names.extend_from_slice(&(image.name.len() as u32).to_le_bytes());
        names.extend_from_slice(image.name.as_bytes());
    }
    let stats: Vec<f32> = images.iter().flat_map(|i| i.stats.mean.into_iter().chain(i.stats.std)).collect();
    let cielab_stats: Vec<f32> =
        images.iter().flat_map(|i| i.cielab_stats.mean.into_iter().chain(i.cielab_stats.std)).collect();
    let mut scales = Vec::with_capacity(count);
    let mut embeddings = Vec::with_capacity(count * dims);
    for image in images {
        let (codes, scale) = quantise(&image.embedding);
        scales.push(scale);
        embeddings.extend(codes.into_iter().map(|c| c as u8));
    }
    let sections: [Vec<u8>; SECTION_COUNT] = [
        names,
        bytemuck::cast_slice(&stats).to_vec(),
        bytemuck::cast_slice(&histograms).to_vec(),
        bytemuck::cast_slice(&scales).to_vec(),
        embeddings,
        bytemuck::cast_slice(&cielab_stats).to_vec(),
    ];

    let mut file = vec![0u8; HEADER_LEN];
    let mut table = Vec::new();
    for section in &sections {
        file.resize(align_up(file.len()), 0);
        table.push((file.len() as u64, section.len() as u64));
        file.extend_from_slice(section);
    }
    file.resize(align_up(file.len()), 0);

    file[..8].copy_from_slice(MAGIC);
    let put = |file: &mut Vec<u8>, at: usize, value: u32| file[at..at + 4].copy_from_slice(&value.to_le_bytes());
    put(&mut file, 8, VERSION);
    put(&mut file, 12, HEADER_LEN as u32);
    put(&mut file, 16, count as u32);
    put(&mut file, 20, HISTOGRAM_BINS as u32);
    put(&mut file, 24, dims as u32);
    put(&mut file, 28, medoid.index as u32);
    put(&mut file, 32, settings.stats_size.0);
    put(&mut file, 36, settings.stats_size.1);
    file[40] = settings.filter.dark_below;
    file[41] = settings.filter.bright_from;
    put(&mut file, 44, settings.embedder_crc32);
    for (index, (offset, length)) in table.iter().enumerate() {
        let at = section_entry(index);
        file[at..at + 8].copy_from_slice(&offset.to_le_bytes());
        file[at + 8..at + 16].copy_from_slice(&length.to_le_bytes());
    }
    let name = truncate_utf8(&settings.embedder_name, EMBEDDER_NAME_LEN);
    file[128..128 + name.len()].copy_from_slice(name.as_bytes());
    file[192..196].copy_from_slice(&medoid.mean_distance.to_le_bytes());
    let crc = checksum(&file);
    put(&mut file, CHECKSUM_AT, crc);
    Ok((file, medoid))
}

fn truncate_utf8(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
