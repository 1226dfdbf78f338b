//! The reference set: per-image colour statistics, colour histograms and int8
//! embeddings of the clean source images, in one memory-mapped file.

mod build;
mod format;
pub mod kernels;
mod measure;
mod medoid;
mod select;

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::colour::{ColourSpace, LabStats, PixelFilter, HISTOGRAM_BINS};
use format::*;

pub use build::{build_reference_file, BuildSettings, SourceImage};
pub use measure::measure_image;
pub use medoid::{gris_medoid, Medoid};
pub use select::{nearest, quantise};

#[cfg(not(target_endian = "little"))]
compile_error!("the reference-set reader maps little-endian data in place");

/// Errors from opening a reference-set file.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The file could not be opened or mapped.
    #[error("{path}: cannot open reference set: {error}")]
    Open { path: PathBuf, error: std::io::Error },
    /// The file is not a reference set of a version this program reads, or is damaged.
    #[error("{path}: invalid reference set: {reason}; rebuild it with `throatseg refs build`")]
    Invalid { path: PathBuf, reason: String },
    /// The reference set does not fit the models in use.
    #[error("{path}: reference set does not match the models: {reason}; rebuild it with `throatseg refs build` and the same embedder")]
    Mismatch { path: PathBuf, reason: String },
    /// A reference given by the user does not exist.
    #[error("{path}: reference {given:?} not found; give an index below {count} or a name listed by `throatseg refs info --list`")]
    UnknownReference { path: PathBuf, given: String, count: usize },
    /// The file predates the statistics that the requested colour space needs.
    #[error("{path}: reference set (format version {version}) has no {space} statistics; rebuild it with `throatseg refs build` to use --colour-space {space}")]
    MissingColourSpace { path: PathBuf, version: u32, space: ColourSpace },
    /// A name given by the user matches several references.
    #[error("{path}: reference name {given:?} matches images {matches:?}; give the index instead")]
    AmbiguousReference { path: PathBuf, given: String, matches: Vec<usize> },
}

/// Settings stored in the header, as given to `refs build`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HeaderInfo {
    /// Format version.
    pub version: u32,
    /// Number of reference images.
    pub count: usize,
    /// Histogram bins per image.
    pub histogram_bins: usize,
    /// Embedding dimensions.
    pub embedding_dims: usize,
    /// Index of the GRIS medoid.
    pub gris_index: usize,
    /// Mean histogram distance of the medoid to all images.
    pub gris_mean_distance: f32,
    /// Width and height (pixels) the images were resized to for the statistics.
    pub stats_size: (u32, u32),
    /// Pixel filter used for the statistics.
    pub filter: PixelFilter,
    /// Embedder model name.
    pub embedder_name: String,
    /// CRC-32 of the embedder ONNX file.
    pub embedder_crc32: u32,
    /// Colour spaces that have statistics in the file.
    pub colour_spaces: Vec<ColourSpace>,
}

/// A validated, memory-mapped reference set.
pub struct ReferenceSet {
    path: PathBuf,
    map: Mmap,
    info: HeaderInfo,
    names: Vec<String>,
    sections: [(usize, usize); SECTION_COUNT],
}

impl std::fmt::Debug for ReferenceSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceSet").field("path", &self.path).field("info", &self.info).finish()
    }
}

impl ReferenceSet {
    /// Opens, maps and validates a reference-set file, including its checksum.
    pub fn open(path: &Path) -> Result<ReferenceSet, ReferenceError> {
        let open_error = |error| ReferenceError::Open { path: path.to_owned(), error };
        let meta = std::fs::metadata(path).map_err(open_error)?;
        if !meta.is_file() {
            let error = std::io::Error::other("not a regular file; give the path of a .tsrefs file");
            return Err(ReferenceError::Open { path: path.to_owned(), error });
        }
        let file = File::open(path).map_err(open_error)?;
        // SAFETY: the file is opened read-only and the mapping is never written.
        // As for any mapped file, the contract is that no other process truncates
        // or rewrites it in place while it is mapped. `refs build` replaces files
        // by rename, which leaves an existing mapping intact.
        let map = unsafe { Mmap::map(&file) }.map_err(open_error)?;
        let invalid = |reason: String| ReferenceError::Invalid { path: path.to_owned(), reason };
        let (info, sections) = parse_header(&map).map_err(invalid)?;
        let stored = read_u32(&map, CHECKSUM_AT);
        let computed = checksum(&map);
        if stored != computed {
            return Err(invalid(format!("checksum mismatch (stored {stored:08x}, computed {computed:08x}); the file is damaged")));
        }
        let names = parse_names(&map[sections[NAMES].0..][..sections[NAMES].1], info.count).map_err(invalid)?;
        let set = ReferenceSet { path: path.to_owned(), map, info, names, sections };
        set.check_values().map_err(invalid)?;
        Ok(set)
    }

    fn check_values(&self) -> Result<(), String> {
        for index in 0..self.len() {
            for &space in &self.info.colour_spaces {
                let Some(stats) = self.stats_in(space, index) else { continue };
                let finite = stats.mean.iter().chain(stats.std.iter()).all(|v| v.is_finite());
                if !finite {
                    return Err(format!("{space} statistics of image {index} are not finite"));
                }
                if stats.std.iter().any(|&s| s < 0.0) {
                    return Err(format!("{space} statistics of image {index} have a negative standard deviation"));
                }
            }
            if !self.scale(index).is_finite() {
                return Err(format!("embedding scale of image {index} is not finite"));
            }
        }
        Ok(())
    }

    /// Returns the file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the header settings.
    pub fn info(&self) -> &HeaderInfo {
        &self.info
    }

    /// Returns the number of reference images.
    pub fn len(&self) -> usize {
        self.info.count
    }

    /// Returns whether the set has no images (never true for a valid file).
    pub fn is_empty(&self) -> bool {
        self.info.count == 0
    }

    /// Returns the stored name of image `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    fn section<T: bytemuck::Pod>(&self, which: usize) -> &[T] {
        let (offset, length) = self.sections[which];
        // `parse_header` checked that each offset is a multiple of 64 (the mapping
        // is page-aligned) and that each length fits the file and the element
        // size, so the cast cannot fail.
        bytemuck::cast_slice(&self.map[offset..offset + length])
    }

    /// Returns the lαβ statistics of image `index`.
    pub fn stats(&self, index: usize) -> LabStats {
        let values: &[f32] = &self.section::<f32>(STATS)[index * 6..index * 6 + 6];
        LabStats { mean: [values[0], values[1], values[2]], std: [values[3], values[4], values[5]] }
    }

    /// Returns the statistics of image `index` in a colour space, or `None`
    /// when the file has none for it (CIE L*a*b* in a version-1 file).
    pub fn stats_in(&self, space: ColourSpace, index: usize) -> Option<LabStats> {
        let which = match space {
            ColourSpace::LAlphaBeta => STATS,
            ColourSpace::Lab if self.info.colour_spaces.contains(&ColourSpace::Lab) => CIELAB_STATS,
            ColourSpace::Lab => return None,
        };
        let values: &[f32] = &self.section::<f32>(which)[index * 6..index * 6 + 6];
        Some(LabStats { mean: [values[0], values[1], values[2]], std: [values[3], values[4], values[5]] })
    }

    /// Checks that the file has statistics for a colour space.
    pub fn check_colour_space(&self, space: ColourSpace) -> Result<(), ReferenceError> {
        if self.info.colour_spaces.contains(&space) {
            return Ok(());
        }
        Err(ReferenceError::MissingColourSpace { path: self.path.clone(), version: self.info.version, space })
    }

    /// Returns the unit-L2 colour histogram of image `index`.
    pub fn histogram(&self, index: usize) -> &[f32] {
        &self.section::<f32>(HISTOGRAMS)[index * HISTOGRAM_BINS..(index + 1) * HISTOGRAM_BINS]
    }

    /// Returns the embedding scale of image `index`.
    pub fn scale(&self, index: usize) -> f32 {
        self.section::<f32>(SCALES)[index]
    }

    /// Returns the int8 embedding of image `index`.
    pub fn embedding(&self, index: usize) -> &[i8] {
        let dims = self.info.embedding_dims;
        &self.section::<i8>(EMBEDDINGS)[index * dims..(index + 1) * dims]
    }

    /// Returns all int8 embeddings, one row of `embedding_dims` per image.
    pub fn embeddings(&self) -> &[i8] {
        self.section::<i8>(EMBEDDINGS)
    }

    /// Returns all embedding scales.
    pub fn scales(&self) -> &[f32] {
        self.section::<f32>(SCALES)
    }

    /// Finds the reference image most similar to an L2-normalised embedding:
    /// top-1 int8 cosine similarity, ties going to the lower index.
    pub fn nearest(&self, embedding: &[f32]) -> (usize, f32) {
        select::nearest(self.embeddings(), self.scales(), self.info.embedding_dims, embedding)
    }

    /// Resolves a reference given as an index or a stored name.
    pub fn resolve(&self, given: &str) -> Result<usize, ReferenceError> {
        if let Ok(index) = given.parse::<usize>() {
            if index < self.len() {
                return Ok(index);
            }
        }
        let stem = |name: &str| Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned());
        let exact: Vec<usize> = (0..self.len()).filter(|&i| self.names[i] == given).collect();
        let matches = if exact.is_empty() {
            (0..self.len()).filter(|&i| stem(&self.names[i]).as_deref() == Some(given)).collect()
        } else {
            exact
        };
        match matches.as_slice() {
            [index] => Ok(*index),
            [] => Err(ReferenceError::UnknownReference { path: self.path.clone(), given: given.to_owned(), count: self.len() }),
            _ => Err(ReferenceError::AmbiguousReference { path: self.path.clone(), given: given.to_owned(), matches }),
        }
    }

    /// Checks that embeddings in this set come from the given embedder file.
    pub fn check_embedder(&self, dims: usize, onnx_crc32: u32) -> Result<(), ReferenceError> {
        let mismatch = |reason: String| ReferenceError::Mismatch { path: self.path.clone(), reason };
        if dims != self.info.embedding_dims {
            return Err(mismatch(format!("embeddings have {} dimensions, the embedder gives {dims}", self.info.embedding_dims)));
        }
        if onnx_crc32 != self.info.embedder_crc32 {
            return Err(mismatch(format!(
                "built with embedder {:?} (CRC-32 {:08x}), but the embedder in use has CRC-32 {onnx_crc32:08x}",
                self.info.embedder_name, self.info.embedder_crc32
            )));
        }
        Ok(())
    }
}

fn parse_header(bytes: &[u8]) -> Result<(HeaderInfo, [(usize, usize); SECTION_COUNT]), String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!("file is {} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a throatseg reference set (wrong magic bytes)".into());
    }
    let version = read_u32(bytes, 8);
    if version != VERSION && version != VERSION_LALPHABETA_ONLY {
        return Err(format!(
            "format version {version} is not supported (this program reads versions {VERSION_LALPHABETA_ONLY} and {VERSION})"
        ));
    }
    let section_count = if version == VERSION { SECTION_COUNT } else { SECTION_COUNT - 1 };
    if read_u32(bytes, 12) as usize != HEADER_LEN {
        return Err(format!("header length {} is not {HEADER_LEN}", read_u32(bytes, 12)));
    }
    let count = read_u32(bytes, 16) as usize;
    let histogram_bins = read_u32(bytes, 20) as usize;
    let embedding_dims = read_u32(bytes, 24) as usize;
    let gris_index = read_u32(bytes, 28) as usize;
    if count == 0 {
        return Err("the set has no images".into());
    }
    if histogram_bins != HISTOGRAM_BINS {
        return Err(format!("{histogram_bins} histogram bins, expected {HISTOGRAM_BINS}"));
    }
    if embedding_dims == 0 || embedding_dims > 65536 {
        return Err(format!("embedding dimension {embedding_dims} is out of range"));
    }
    if gris_index >= count {
        return Err(format!("GRIS index {gris_index} is not below the image count {count}"));
    }
    let sixth_entry = section_entry(CIELAB_STATS)..section_entry(CIELAB_STATS) + 16;
    let reserved = (196..CHECKSUM_AT).filter(|at| version == VERSION_LALPHABETA_ONLY || !sixth_entry.contains(at));
    if bytes[43] != 0 || reserved.chain(CHECKSUM_AT + 4..HEADER_LEN).any(|at| bytes[at] != 0) {
        return Err("reserved header bytes are not zero".into());
    }
    if bytes[42] != 0 {
        return Err(format!("colour space {} is unknown", bytes[42]));
    }

    // u64 arithmetic, because a damaged count times a row size can overflow a
    // 32-bit usize on armv7.
    let rows = count as u64;
    let expected_lengths = [
        None,
        Some(rows * 24),
        Some(rows * HISTOGRAM_BINS as u64 * 4),
        Some(rows * 4),
        Some(rows * embedding_dims as u64),
        Some(rows * 24),
    ];
    let mut sections = [(0usize, 0usize); SECTION_COUNT];
    for (index, expected) in expected_lengths.iter().enumerate().take(section_count) {
        let offset = read_u64(bytes, section_entry(index));
        let length = read_u64(bytes, section_entry(index) + 8);
        let end = offset.checked_add(length).filter(|&end| end <= bytes.len() as u64);
        if end.is_none() || (offset as usize) < HEADER_LEN {
            return Err(format!("section {index} (offset {offset}, length {length}) lies outside the {}-byte file; the file may be truncated", bytes.len()));
        }
        if offset as usize % SECTION_ALIGN != 0 {
            return Err(format!("section {index} starts at offset {offset}, not a multiple of {SECTION_ALIGN}"));
        }
        if let Some(expected) = expected {
            if length != *expected {
                return Err(format!("section {index} is {length} bytes, expected {expected}"));
            }
        }
        sections[index] = (offset as usize, length as usize);
    }

    let name_bytes = &bytes[128..128 + EMBEDDER_NAME_LEN];
    let name_end = name_bytes.iter().position(|&b| b == 0).unwrap_or(EMBEDDER_NAME_LEN);
    let embedder_name = std::str::from_utf8(&name_bytes[..name_end])
        .map_err(|_| "embedder name is not UTF-8".to_string())?
        .to_owned();
    let info = HeaderInfo {
        version,
        count,
        histogram_bins,
        embedding_dims,
        gris_index,
        gris_mean_distance: f32::from_le_bytes(bytes[192..196].try_into().unwrap_or_default()),
        stats_size: (read_u32(bytes, 32), read_u32(bytes, 36)),
        filter: PixelFilter { dark_below: bytes[40], bright_from: bytes[41] },
        embedder_name,
        embedder_crc32: read_u32(bytes, 44),
        colour_spaces: if version == VERSION {
            vec![ColourSpace::LAlphaBeta, ColourSpace::Lab]
        } else {
            vec![ColourSpace::LAlphaBeta]
        },
    };
    Ok((info, sections))
}

fn parse_names(bytes: &[u8], count: usize) -> Result<Vec<String>, String> {
    let mut names = Vec::with_capacity(count);
    let mut at = 0usize;
    for index in 0..count {
        if at + 4 > bytes.len() {
            return Err(format!("name table ends before image {index}"));
        }
        let length = read_u32(bytes, at) as usize;
        at += 4;
        let raw = bytes.get(at..at + length).ok_or_else(|| format!("name {index} runs past the name table"))?;
        let name = std::str::from_utf8(raw).map_err(|_| format!("name {index} is not UTF-8"))?;
        names.push(name.to_owned());
        at += length;
    }
    Ok(names)
}

#[cfg(test)]
mod tests;
