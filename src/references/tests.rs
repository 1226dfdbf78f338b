//! Tests of the reference-set file: round trip, determinism, GRIS, LRIS and
//! rejection of damaged files.

use std::io::Write;

use tempfile::NamedTempFile;

use super::format::{checksum, section_entry, CHECKSUM_AT, CIELAB_STATS, EMBEDDINGS, HISTOGRAMS, NAMES, SCALES, STATS};
use super::*;
use crate::colour::{self, rgb_histogram, ColourSpace};

/// Xorshift64* generator, so fixtures are the same on every run without a crate.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a value in `0.0..1.0`.
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Returns a value in `low..=high`.
    fn byte_in(&mut self, low: u8, high: u8) -> u8 {
        let span = high as u64 - low as u64 + 1;
        low + ((self.next_u64() >> 32) % span) as u8
    }
}

fn normalise(values: &mut [f32]) {
    let norm = values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt() as f32;
    for value in values.iter_mut() {
        *value /= norm;
    }
}

/// Returns a random L2-normalised vector of `dims` values.
fn unit_vector(rng: &mut Rng, dims: usize) -> Vec<f32> {
    let mut values: Vec<f32> = (0..dims).map(|_| rng.unit() * 2.0 - 1.0).collect();
    normalise(&mut values);
    values
}

/// Generates a 32×24 image whose channels each span a random sub-range.
fn tinted_image(rng: &mut Rng) -> Vec<u8> {
    let mut ranges = [(0u8, 0u8); 3];
    for range in &mut ranges {
        let low = rng.byte_in(0, 180);
        *range = (low, low + rng.byte_in(20, 75));
    }
    let mut rgb = Vec::with_capacity(32 * 24 * 3);
    for _ in 0..32 * 24 {
        for &(low, high) in &ranges {
            rgb.push(rng.byte_in(low, high));
        }
    }
    rgb
}

/// Measures generated images the way `refs build` does, minus the embedder,
/// whose output is replaced by random unit vectors.
fn source_images(names: &[&str], dims: usize, seed: u64) -> Vec<SourceImage> {
    let mut rng = Rng(seed);
    let filter = PixelFilter::default();
    names
        .iter()
        .map(|&name| {
            let rgb = tinted_image(&mut rng);
            SourceImage {
                name: name.to_owned(),
                stats: colour::lab_stats(&rgb, filter),
                cielab_stats: colour::cielab::lab_stats(&rgb, filter),
                histogram: rgb_histogram(&rgb),
                embedding: unit_vector(&mut rng, dims),
            }
        })
        .collect()
}

const NAMES_FIVE: [&str; 5] = ["a.png", "b.png", "c.jpg", "frame 04.png", "gorge-é.png"];
const DIMS: usize = 16;

fn settings() -> BuildSettings {
    BuildSettings {
        stats_size: (320, 240),
        filter: PixelFilter { dark_below: 20, bright_from: 245 },
        embedder_name: "efficientnet-lite0".to_owned(),
        embedder_crc32: 0x1234_abcd,
    }
}

fn build(images: &[SourceImage]) -> Vec<u8> {
    build_reference_file(images, &settings(), |_| {}).expect("building the fixture reference set failed").0
}

fn five_image_file() -> Vec<u8> {
    build(&source_images(&NAMES_FIVE, DIMS, 1))
}

/// Writes `bytes` to a temporary file, which is deleted when the handle drops.
fn write_temp(bytes: &[u8]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("creating a temporary file failed");
    file.write_all(bytes).expect("writing the temporary file failed");
    file.flush().expect("flushing the temporary file failed");
    file
}

fn open_bytes(bytes: &[u8]) -> (NamedTempFile, Result<ReferenceSet, ReferenceError>) {
    let file = write_temp(bytes);
    let result = ReferenceSet::open(file.path());
    (file, result)
}

fn open_valid(bytes: &[u8]) -> (NamedTempFile, ReferenceSet) {
    let (file, result) = open_bytes(bytes);
    let set = result.unwrap_or_else(|error| panic!("a valid reference set was rejected: {error}"));
    (file, set)
}

/// Opens `bytes` and checks that they are rejected as invalid with a reason
/// that contains `fragment`.
fn assert_invalid(bytes: &[u8], fragment: &str, case: &str) {
    let (file, result) = open_bytes(bytes);
    match result {
        Err(ReferenceError::Invalid { path, reason }) => {
            assert_eq!(path, file.path(), "{case}: the error names the wrong path");
            assert!(reason.contains(fragment), "{case}: reason {reason:?} does not contain {fragment:?}");
            let message = ReferenceError::Invalid { path, reason }.to_string();
            assert!(message.contains("refs build"), "{case}: message {message:?} does not say how to rebuild");
        }
        Err(other) => panic!("{case}: expected an invalid-file error, got {other}"),
        Ok(set) => panic!("{case}: a damaged file was accepted: {set:?}"),
    }
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Rewrites the stored checksum, so a test reaches the check after it.
fn fix_checksum(bytes: &mut [u8]) {
    let crc = checksum(bytes);
    put_u32(bytes, CHECKSUM_AT, crc);
}

/// Returns the (offset, length) of a section from the header table.
fn section(bytes: &[u8], section_index: usize) -> (usize, usize) {
    let entry = section_entry(section_index);
    let offset = u64::from_le_bytes(bytes[entry..entry + 8].try_into().unwrap());
    let length = u64::from_le_bytes(bytes[entry + 8..entry + 16].try_into().unwrap());
    (offset as usize, length as usize)
}

#[test]
fn open_round_trips_names() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (_file, set) = open_valid(&build(&images));
    assert_eq!(set.len(), images.len(), "image count");
    assert!(!set.is_empty(), "a set of five images reports itself empty");
    for (index, image) in images.iter().enumerate() {
        assert_eq!(set.name(index), image.name, "name of image {index}");
    }
}

#[test]
fn open_round_trips_stats() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (_file, set) = open_valid(&build(&images));
    for (index, image) in images.iter().enumerate() {
        assert_eq!(set.stats(index), image.stats, "statistics of image {index}");
    }
}

#[test]
fn open_round_trips_histograms() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (_file, set) = open_valid(&build(&images));
    for (index, image) in images.iter().enumerate() {
        assert_eq!(set.histogram(index), image.histogram.as_slice(), "histogram of image {index}");
    }
}

#[test]
fn open_round_trips_embeddings() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (_file, set) = open_valid(&build(&images));
    assert_eq!(set.embeddings().len(), images.len() * DIMS, "length of all embeddings");
    assert_eq!(set.scales().len(), images.len(), "number of embedding scales");

    for (index, image) in images.iter().enumerate() {
        // The largest magnitude maps to code ±127, so each step is max/127 and
        // rounding errs by at most half a step.
        let max = image.embedding.iter().fold(0f32, |m, v| m.max(v.abs()));
        let step = max / 127.0;
        assert!((set.scale(index) - step).abs() <= step * 1e-6, "scale of image {index} is {}, expected {step}", set.scale(index));

        let codes = set.embedding(index);
        assert_eq!(codes.len(), DIMS, "embedding length of image {index}");
        assert!(codes.iter().any(|&c| c.unsigned_abs() == 127), "no code of image {index} reaches ±127");
        for (dim, (&code, &value)) in codes.iter().zip(&image.embedding).enumerate() {
            let error = (code as f32 * set.scale(index) - value).abs();
            assert!(error <= step * 0.5 + 1e-7, "image {index}, dimension {dim}: code {code} is {error} away from {value}");
        }
    }
}

#[test]
fn open_round_trips_info() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (bytes, medoid) = build_reference_file(&images, &settings(), |_| {}).expect("building the fixture failed");
    let (file, set) = open_valid(&bytes);

    let expected = HeaderInfo {
        version: 2,
        count: 5,
        histogram_bins: 512,
        embedding_dims: DIMS,
        gris_index: medoid.index,
        gris_mean_distance: medoid.mean_distance,
        stats_size: (320, 240),
        filter: PixelFilter { dark_below: 20, bright_from: 245 },
        embedder_name: "efficientnet-lite0".to_owned(),
        embedder_crc32: 0x1234_abcd,
        colour_spaces: vec![ColourSpace::LAlphaBeta, ColourSpace::Lab],
    };
    assert_eq!(set.info(), &expected, "header fields after the round trip");
    assert_eq!(set.path(), file.path(), "path of the opened set");
}

#[test]
fn build_truncates_embedder_name_at_char_boundary() {
    // "é" takes bytes 63 and 64, so the 64-byte field keeps only the 63 x's.
    let mut settings = settings();
    settings.embedder_name = format!("{}é", "x".repeat(63));
    let (bytes, _) = build_reference_file(&source_images(&NAMES_FIVE, DIMS, 1), &settings, |_| {}).expect("building failed");
    let (_file, set) = open_valid(&bytes);
    assert_eq!(set.info().embedder_name, "x".repeat(63), "stored embedder name");
}

#[test]
fn build_is_deterministic() {
    let first = build(&source_images(&NAMES_FIVE, DIMS, 1));
    let second = build(&source_images(&NAMES_FIVE, DIMS, 1));
    assert!(first == second, "two builds of the same images differ");
}

#[test]
fn build_aligns_sections() {
    let bytes = five_image_file();
    assert_eq!(bytes.len() % 64, 0, "file length {} is not a multiple of 64", bytes.len());
    for section_index in [NAMES, STATS, HISTOGRAMS, SCALES, EMBEDDINGS] {
        let (offset, _) = section(&bytes, section_index);
        assert_eq!(offset % 64, 0, "section {section_index} starts at {offset}, not a multiple of 64");
    }
}

#[test]
fn build_rejects_no_images() {
    let error = build_reference_file(&[], &settings(), |_| {}).expect_err("an empty set was built");
    assert!(error.contains("no source images"), "message {error:?} does not name the problem");
}

#[test]
fn build_rejects_wrong_histogram_length() {
    let mut images = source_images(&NAMES_FIVE, DIMS, 1);
    images[2].histogram.pop();
    let error = build_reference_file(&images, &settings(), |_| {}).expect_err("a short histogram was accepted");
    assert!(error.contains("c.jpg"), "message {error:?} does not name the image");
}

#[test]
fn build_rejects_mixed_embedding_lengths() {
    let mut images = source_images(&NAMES_FIVE, DIMS, 1);
    images[3].embedding.push(0.0);
    let error = build_reference_file(&images, &settings(), |_| {}).expect_err("mixed embedding lengths were accepted");
    assert!(error.contains("frame 04.png"), "message {error:?} does not name the image");
}

/// Computes the medoid by brute force in f64 and returns its index, its mean
/// distance and the runner-up's mean distance. The medoid is the row with the
/// smallest mean Euclidean distance to every row, itself included, and ties go
/// to the lower index.
fn brute_force_medoid(histograms: &[Vec<f32>]) -> (usize, f64, f64) {
    let means: Vec<f64> = histograms
        .iter()
        .map(|a| {
            let total: f64 = histograms
                .iter()
                .map(|b| a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>().sqrt())
                .sum();
            total / histograms.len() as f64
        })
        .collect();
    let mut best = 0;
    for (index, &mean) in means.iter().enumerate() {
        if mean < means[best] {
            best = index;
        }
    }
    let runner_up = means.iter().enumerate().filter(|&(i, _)| i != best).map(|(_, &m)| m).fold(f64::INFINITY, f64::min);
    (best, means[best], runner_up)
}

#[test]
fn gris_matches_brute_force() {
    let names: Vec<String> = (0..12).map(|i| format!("image_{i:02}.png")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let images = source_images(&name_refs, DIMS, 7);
    let rows: Vec<Vec<f32>> = images.iter().map(|image| image.histogram.clone()).collect();
    let (expected_index, expected_mean, runner_up) = brute_force_medoid(&rows);
    assert!(runner_up - expected_mean > 1e-4, "the fixture has no clear medoid: {expected_mean} against {runner_up}");

    let flat: Vec<f32> = rows.concat();
    let medoid = gris_medoid(&flat, HISTOGRAM_BINS, |_| {}).expect("no medoid for 12 histograms");
    assert_eq!(medoid.index, expected_index, "medoid index");
    let error = (medoid.mean_distance as f64 - expected_mean).abs();
    assert!(error < 1e-5, "medoid mean distance is {}, brute force {expected_mean}", medoid.mean_distance);

    let (_file, set) = open_valid(&build(&images));
    assert_eq!(set.info().gris_index, expected_index, "GRIS index stored in the file");
}

/// Returns a unit histogram with weight 1 in bin 0 and `second` in bin 1.
fn two_bin_histogram(second: f32) -> Vec<f32> {
    let mut histogram = vec![0.0; HISTOGRAM_BINS];
    histogram[0] = 1.0;
    histogram[1] = second;
    normalise(&mut histogram);
    histogram
}

#[test]
fn gris_picks_middle_of_close_cluster() {
    // Rows 1..=3 lie on an arc at angles atan(0.1), atan(0.2) and atan(0.3).
    // Row 0 is orthogonal to all of them, √2 away. Row 2, in the middle of the
    // arc, has mean distance (√2 + 0.097688 + 0.094027 + 0) / 4 = 0.401482.
    let mut outlier = vec![0.0; HISTOGRAM_BINS];
    outlier[HISTOGRAM_BINS - 1] = 1.0;
    let rows = [outlier, two_bin_histogram(0.1), two_bin_histogram(0.2), two_bin_histogram(0.3)];

    let medoid = gris_medoid(&rows.concat(), HISTOGRAM_BINS, |_| {}).expect("no medoid for four histograms");
    assert_eq!(medoid.index, 2, "the medoid must be the middle of the three close histograms");
    assert!((medoid.mean_distance - 0.401482).abs() < 1e-5, "medoid mean distance is {}, expected 0.401482", medoid.mean_distance);
}

#[test]
fn gris_ties_go_to_lower_index() {
    let rows = [two_bin_histogram(0.5), two_bin_histogram(0.5)];
    let medoid = gris_medoid(&rows.concat(), HISTOGRAM_BINS, |_| {}).expect("no medoid for two histograms");
    assert_eq!(medoid.index, 0, "of two identical histograms the medoid must be the first");
}

#[test]
fn gris_of_empty_set_is_none() {
    assert_eq!(gris_medoid(&[], HISTOGRAM_BINS, |_| {}), None, "an empty set has no medoid");
}

#[test]
fn gris_reports_progress() {
    let rows = [two_bin_histogram(0.1), two_bin_histogram(0.2), two_bin_histogram(0.3)];
    let mut reported = Vec::new();
    gris_medoid(&rows.concat(), HISTOGRAM_BINS, |done| reported.push(done));
    assert_eq!(reported.last(), Some(&3), "progress must end at the number of rows");
    assert!(reported.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {reported:?}");
}

/// Builds a set whose embeddings are the given vectors.
fn set_with_embeddings(vectors: &[Vec<f32>]) -> (NamedTempFile, ReferenceSet) {
    let names: Vec<String> = (0..vectors.len()).map(|i| format!("{i}.png")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut images = source_images(&name_refs, vectors[0].len(), 3);
    for (image, vector) in images.iter_mut().zip(vectors) {
        image.embedding = vector.clone();
    }
    open_valid(&build(&images))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn nearest_finds_noisy_copy() {
    let mut rng = Rng(11);
    let stored: Vec<Vec<f32>> = (0..8).map(|_| unit_vector(&mut rng, 64)).collect();
    let (_file, set) = set_with_embeddings(&stored);

    for (index, vector) in stored.iter().enumerate() {
        // Uniform noise of ±0.04 in each of 64 dimensions has a norm of about 0.04·√(64/3) ≈ 0.18.
        let mut query: Vec<f32> = vector.iter().map(|&v| v + (rng.unit() - 0.5) * 0.08).collect();
        normalise(&mut query);
        let best_f64 = (0..stored.len()).max_by(|&i, &j| cosine(&query, &stored[i]).total_cmp(&cosine(&query, &stored[j]))).unwrap();
        assert_eq!(best_f64, index, "fixture: the noisy copy of {index} is closer to {best_f64} in f64");

        let (found, similarity) = set.nearest(&query);
        assert_eq!(found, index, "nearest to a noisy copy of vector {index}");
        let exact = cosine(&query, vector);
        assert!((similarity as f64 - exact).abs() < 0.02, "similarity {similarity} is far from the f64 cosine {exact}");
    }
}

#[test]
fn nearest_finds_exact_copy() {
    let mut rng = Rng(12);
    let stored: Vec<Vec<f32>> = (0..6).map(|_| unit_vector(&mut rng, 32)).collect();
    let (_file, set) = set_with_embeddings(&stored);
    for (index, vector) in stored.iter().enumerate() {
        let (found, similarity) = set.nearest(vector);
        assert_eq!(found, index, "nearest to stored vector {index}");
        assert!((similarity - 1.0).abs() < 0.02, "similarity of vector {index} to itself is {similarity}");
    }
}

#[test]
fn nearest_ties_go_to_lower_index() {
    let mut rng = Rng(13);
    let twin = unit_vector(&mut rng, 32);
    let stored = vec![unit_vector(&mut rng, 32), twin.clone(), twin.clone(), unit_vector(&mut rng, 32)];
    let (_file, set) = set_with_embeddings(&stored);
    assert_eq!(set.nearest(&twin).0, 1, "of two identical stored vectors the first must win");
}

#[test]
fn quantise_zero_vector() {
    let (codes, scale) = quantise(&[0.0; 8]);
    assert_eq!(scale, 0.0, "scale of a zero vector");
    assert!(codes.iter().all(|&c| c == 0), "codes of a zero vector must be zero");
}

#[test]
fn open_rejects_empty_file() {
    assert_invalid(&[], "file is 0 bytes, shorter than the 256-byte header", "empty file");
}

#[test]
fn open_rejects_truncated_file() {
    let bytes = five_image_file();
    let half = bytes.len() / 2;
    let cases = [
        (10, "file is 10 bytes, shorter than the 256-byte header"),
        (200, "file is 200 bytes, shorter than the 256-byte header"),
        (half, "the file may be truncated"),
        // Only padding is lost, so every section still fits and the checksum catches it.
        (bytes.len() - 1, "checksum mismatch"),
    ];
    for (length, fragment) in cases {
        assert_invalid(&bytes[..length], fragment, &format!("file cut at {length} bytes"));
    }
}

#[test]
fn open_rejects_wrong_magic() {
    let mut bytes = five_image_file();
    bytes[..8].copy_from_slice(b"PNG\r\n\x1a\n\0");
    fix_checksum(&mut bytes);
    assert_invalid(&bytes, "wrong magic bytes", "wrong magic");
}

#[test]
fn open_rejects_wrong_version() {
    let mut bytes = five_image_file();
    put_u32(&mut bytes, 8, 3);
    fix_checksum(&mut bytes);
    assert_invalid(&bytes, "format version 3 is not supported", "version 3");
}

/// Rewrites a version-2 file as the version-1 writer laid it out: version 1,
/// no sixth section entry and no CIE L*a*b* section at the end.
fn downgrade_to_version_1(mut bytes: Vec<u8>) -> Vec<u8> {
    let (offset, _) = section(&bytes, CIELAB_STATS);
    bytes.truncate(offset);
    put_u32(&mut bytes, 8, 1);
    let entry = section_entry(CIELAB_STATS);
    bytes[entry..entry + 16].fill(0);
    fix_checksum(&mut bytes);
    bytes
}

#[test]
fn open_round_trips_cielab_stats() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (_file, set) = open_valid(&build(&images));
    for (index, image) in images.iter().enumerate() {
        assert_eq!(set.stats_in(ColourSpace::Lab, index), Some(image.cielab_stats), "L*a*b* statistics of image {index}");
        assert_eq!(set.stats_in(ColourSpace::LAlphaBeta, index), Some(image.stats), "lαβ statistics of image {index}");
    }
    assert!(set.check_colour_space(ColourSpace::Lab).is_ok(), "a version-2 file has L*a*b* statistics");
}

#[test]
fn build_appends_cielab_section() {
    let bytes = five_image_file();
    let (offset, length) = section(&bytes, CIELAB_STATS);
    let (embeddings_offset, embeddings_length) = section(&bytes, EMBEDDINGS);
    assert_eq!(length, 5 * 24, "six f32 per image");
    assert!(offset >= embeddings_offset + embeddings_length, "the new section follows the five of version 1");
}

#[test]
fn open_reads_version_1() {
    let images = source_images(&NAMES_FIVE, DIMS, 1);
    let (_file, set) = open_valid(&downgrade_to_version_1(build(&images)));
    assert_eq!(set.info().version, 1, "version");
    assert_eq!(set.info().colour_spaces, vec![ColourSpace::LAlphaBeta], "colour spaces of a version-1 file");
    for (index, image) in images.iter().enumerate() {
        assert_eq!(set.stats(index), image.stats, "lαβ statistics of image {index}");
        assert_eq!(set.stats_in(ColourSpace::Lab, index), None, "L*a*b* statistics of image {index}");
    }
}

#[test]
fn version_1_lacks_cielab() {
    let (file, set) = open_valid(&downgrade_to_version_1(five_image_file()));
    let error = set.check_colour_space(ColourSpace::Lab).expect_err("a version-1 file was accepted for lab");
    let message = error.to_string();
    assert!(message.contains(&file.path().display().to_string()), "message {message:?} does not name the file");
    assert!(message.contains("version 1"), "message {message:?} does not give the version");
    assert!(message.contains("throatseg refs build"), "message {message:?} does not say how to rebuild");
    assert!(set.check_colour_space(ColourSpace::LAlphaBeta).is_ok(), "a version-1 file serves lαβ");
}

#[test]
fn version_1_rejects_sixth_entry() {
    // A version-1 header must keep the bytes of the sixth entry zero.
    let mut bytes = downgrade_to_version_1(five_image_file());
    put_u64(&mut bytes, section_entry(CIELAB_STATS), 256);
    fix_checksum(&mut bytes);
    assert_invalid(&bytes, "reserved header bytes are not zero", "version 1 with a sixth entry");
}

#[test]
fn open_rejects_flipped_payload_byte() {
    let mut bytes = five_image_file();
    let (offset, length) = section(&bytes, HISTOGRAMS);
    bytes[offset + length / 2] ^= 0x01;
    assert_invalid(&bytes, "checksum mismatch", "flipped histogram byte");
}

#[test]
fn open_rejects_flipped_header_byte() {
    let mut bytes = five_image_file();
    bytes[130] ^= 0x01;
    assert_invalid(&bytes, "checksum mismatch", "flipped embedder name byte");
}

#[test]
fn open_rejects_section_past_end() {
    let bytes = five_image_file();
    let cases = [
        (EMBEDDINGS, bytes.len() as u64, "section 4 (offset"),
        (EMBEDDINGS, u64::MAX - 63, "section 4 (offset"),
        (NAMES, 0, "section 0 (offset 0"),
        (HISTOGRAMS, section(&bytes, HISTOGRAMS).0 as u64 + 4, "not a multiple of 64"),
    ];
    for (section_index, offset, fragment) in cases {
        let mut patched = bytes.clone();
        put_u64(&mut patched, 48 + section_index * 16, offset);
        fix_checksum(&mut patched);
        assert_invalid(&patched, fragment, &format!("section {section_index} moved to offset {offset}"));
    }
}

#[test]
fn open_rejects_gris_index_out_of_range() {
    let mut bytes = five_image_file();
    put_u32(&mut bytes, 28, 5);
    fix_checksum(&mut bytes);
    assert_invalid(&bytes, "GRIS index 5 is not below the image count 5", "GRIS index 5 of 5");
}

#[test]
fn open_rejects_bad_header_fields() {
    let bytes = five_image_file();
    let (stats_offset, _) = section(&bytes, STATS);
    let (scales_offset, _) = section(&bytes, SCALES);
    let (names_offset, _) = section(&bytes, NAMES);
    let (cielab_offset, _) = section(&bytes, CIELAB_STATS);
    type Patch = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Patch, &str)> = vec![
        ("header length 128", Box::new(|b: &mut Vec<u8>| put_u32(b, 12, 128)), "header length 128 is not 256"),
        ("zero images", Box::new(|b: &mut Vec<u8>| put_u32(b, 16, 0)), "the set has no images"),
        ("256 bins", Box::new(|b: &mut Vec<u8>| put_u32(b, 20, 256)), "256 histogram bins, expected 512"),
        ("zero dimensions", Box::new(|b: &mut Vec<u8>| put_u32(b, 24, 0)), "embedding dimension 0 is out of range"),
        ("colour space 1", Box::new(|b: &mut Vec<u8>| b[42] = 1), "colour space 1 is unknown"),
        ("short statistics", Box::new(|b: &mut Vec<u8>| put_u64(b, 56 + STATS * 16, 96)), "section 1 is 96 bytes, expected 120"),
        ("short L*a*b* statistics", Box::new(|b: &mut Vec<u8>| put_u64(b, section_entry(CIELAB_STATS) + 8, 96)), "section 5 is 96 bytes, expected 120"),
        ("reserved byte 197", Box::new(|b: &mut Vec<u8>| b[197] = 1), "reserved header bytes are not zero"),
        ("embedder name not UTF-8", Box::new(|b: &mut Vec<u8>| b[128] = 0xff), "embedder name is not UTF-8"),
        ("name length past table", Box::new(move |b: &mut Vec<u8>| put_u32(b, names_offset, 1000)), "name 0 runs past the name table"),
        ("name not UTF-8", Box::new(move |b: &mut Vec<u8>| b[names_offset + 4] = 0xff), "name 0 is not UTF-8"),
        ("NaN statistic", Box::new(move |b: &mut Vec<u8>| b[stats_offset..stats_offset + 4].copy_from_slice(&f32::NAN.to_le_bytes())), "statistics of image 0 are not finite"),
        ("NaN L*a*b* statistic", Box::new(move |b: &mut Vec<u8>| b[cielab_offset + 28..cielab_offset + 32].copy_from_slice(&f32::NAN.to_le_bytes())), "lab statistics of image 1 are not finite"),
        ("negative std", Box::new(move |b: &mut Vec<u8>| b[stats_offset + 36..stats_offset + 40].copy_from_slice(&(-1f32).to_le_bytes())), "negative standard deviation"),
        ("infinite scale", Box::new(move |b: &mut Vec<u8>| b[scales_offset + 8..scales_offset + 12].copy_from_slice(&f32::INFINITY.to_le_bytes())), "embedding scale of image 2 is not finite"),
    ];
    for (case, patch, fragment) in cases {
        let mut patched = bytes.clone();
        patch(&mut patched);
        fix_checksum(&mut patched);
        assert_invalid(&patched, fragment, case);
    }
}

#[test]
fn open_survives_every_header_byte_change() {
    // Each header byte is changed in turn and the checksum fixed up, so the
    // header checks alone stand between the file and the slice accessors.
    let bytes = five_image_file();
    for at in (0..HEADER_LEN).filter(|at| !(CHECKSUM_AT..CHECKSUM_AT + 4).contains(at)) {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut patched = bytes.clone();
            patched[at] ^= mask;
            fix_checksum(&mut patched);
            let (_file, result) = open_bytes(&patched);
            let Ok(set) = result else { continue };
            for index in 0..set.len() {
                let _ = (set.name(index), set.stats(index), set.histogram(index), set.embedding(index));
                let _ = set.stats_in(ColourSpace::Lab, index);
            }
        }
    }
}

#[test]
fn open_reports_missing_file() {
    let directory = tempfile::tempdir().expect("creating a temporary directory failed");
    let path = directory.path().join("missing.refs");
    let error = ReferenceSet::open(&path).expect_err("a missing file was opened");
    assert!(matches!(error, ReferenceError::Open { .. }), "expected an open error, got {error:?}");
    assert!(error.to_string().contains("missing.refs"), "message {error} does not name the file");
}

#[test]
fn resolve_by_index() {
    let (_file, set) = open_valid(&five_image_file());
    assert_eq!(set.resolve("0").ok(), Some(0), "index 0");
    assert_eq!(set.resolve("4").ok(), Some(4), "index 4, the last one");
}

#[test]
fn resolve_by_name() {
    let (_file, set) = open_valid(&five_image_file());
    assert_eq!(set.resolve("c.jpg").ok(), Some(2), "name c.jpg");
    assert_eq!(set.resolve("gorge-é.png").ok(), Some(4), "non-ASCII name");
}

#[test]
fn resolve_by_stem() {
    let (_file, set) = open_valid(&five_image_file());
    assert_eq!(set.resolve("c").ok(), Some(2), "stem of c.jpg");
    assert_eq!(set.resolve("frame 04").ok(), Some(3), "stem with a space");
}

#[test]
fn resolve_unknown() {
    let (_file, set) = open_valid(&five_image_file());
    for reference in ["zzz", "5", "c.png", ""] {
        match set.resolve(reference) {
            Err(ReferenceError::UnknownReference { given, count, .. }) => {
                assert_eq!(given, reference, "the error must repeat the reference given");
                assert_eq!(count, 5, "the error must give the image count");
            }
            other => panic!("reference {reference:?} resolved to {other:?}"),
        }
    }
}

#[test]
fn check_embedder_accepts_match() {
    let (_file, set) = open_valid(&five_image_file());
    assert!(set.check_embedder(DIMS, 0x1234_abcd).is_ok(), "the embedder the set was built with was rejected");
}

#[test]
fn check_embedder_rejects_other_dims() {
    let (_file, set) = open_valid(&five_image_file());
    let error = set.check_embedder(1280, 0x1234_abcd).expect_err("other dimensions were accepted");
    assert!(matches!(error, ReferenceError::Mismatch { .. }), "expected a mismatch error, got {error:?}");
    assert!(error.to_string().contains("the embedder gives 1280"), "message {error} does not name the dimensions");
}

#[test]
fn check_embedder_rejects_other_crc() {
    let (_file, set) = open_valid(&five_image_file());
    let error = set.check_embedder(DIMS, 0xdead_beef).expect_err("another embedder file was accepted");
    assert!(matches!(error, ReferenceError::Mismatch { .. }), "expected a mismatch error, got {error:?}");
    assert!(error.to_string().contains("deadbeef"), "message {error} does not name the CRC-32");
}
