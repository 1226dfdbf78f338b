//! The reference-set file: a little-endian binary laid out to be memory-mapped.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TSEGREFS` |
//! | 8 | 4 | format version ([`VERSION`]; version 1 is read too) |
//! | 12 | 4 | header length ([`HEADER_LEN`]) |
//! | 16 | 4 | image count N |
//! | 20 | 4 | histogram bins (512) |
//! | 24 | 4 | embedding dimensions D |
//! | 28 | 4 | GRIS index |
//! | 32 | 8 | statistics image width and height (u32 each) |
//! | 40 | 4 | pixel filter: dark_below, bright_from, colour space of the statistics section (0 = lαβ), 0 |
//! | 44 | 4 | CRC-32 of the embedder ONNX file |
//! | 48 | 80 | five sections, each (offset u64, length u64): names, statistics, histograms, scales, embeddings |
//! | 128 | 64 | embedder name, UTF-8, zero padded |
//! | 192 | 4 | GRIS mean distance (f32) |
//! | 196 | 4 | zero |
//! | 200 | 16 | version 2: sixth section (offset u64, length u64), CIE L*a*b* statistics; version 1: zero |
//! | 216 | 32 | zero |
//! | 248 | 4 | CRC-32 of bytes 0..248 followed by bytes 256..end |
//! | 252 | 4 | zero |
//!
//! Sections start at multiples of 64 bytes: names (per image a u32 length and
//! UTF-8 bytes), statistics (N × 6 f32: lαβ mean then std), histograms
//! (N × 512 f32, unit L2 norm), scales (N f32), embeddings (N × D i8, one
//! vector per image, value = i8 × scale) and, from version 2 on, CIE L*a*b*
//! statistics (N × 6 f32: mean then std of the 8-bit L, a and b codes).

pub const MAGIC: &[u8; 8] = b"TSEGREFS";
pub const VERSION: u32 = 2;
/// The first version, without the CIE L*a*b* statistics section.
pub const VERSION_LALPHABETA_ONLY: u32 = 1;
pub const HEADER_LEN: usize = 256;
pub const SECTION_ALIGN: usize = 64;
/// Sections of a version-2 file; version 1 has the first five.
pub const SECTION_COUNT: usize = 6;
pub const EMBEDDER_NAME_LEN: usize = 64;
pub const CHECKSUM_AT: usize = 248;

/// Section indices in the header's section table.
pub const NAMES: usize = 0;
pub const STATS: usize = 1;
pub const HISTOGRAMS: usize = 2;
pub const SCALES: usize = 3;
pub const EMBEDDINGS: usize = 4;
pub const CIELAB_STATS: usize = 5;

/// Returns the header offset of a section's (offset u64, length u64) entry.
pub fn section_entry(index: usize) -> usize {
    if index < 5 {
        48 + index * 16
    } else {
        200
    }
}

/// Computes the file checksum: CRC-32 over the header up to the checksum field
/// and over everything after the header.
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..CHECKSUM_AT]);
    hasher.update(&bytes[HEADER_LEN..]);
    hasher.finalize()
}

pub fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

pub fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

pub fn align_up(value: usize) -> usize {
    value.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}
