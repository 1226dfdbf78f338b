//! Parity of the `lab` colour space with OpenCV: throatseg's CIE L*a*b*
//! conversion and transfer against python-color-transfer's `lab_transfer`
//! (OpenCV's 8-bit `cvtColor`) on pairs of real images.
//!
//! The peers live in `.venv-peers`, made by `bash tests/peers/setup.sh`.
//! Without it the test is skipped, unless CI=true, where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use throatseg::colour::cielab::{self, CodeMaps};
use throatseg::frame;

/// Images of each unseen centre used as transfer inputs.
const INPUTS_PER_CENTRE: usize = 3;

fn peer_python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-peers/bin/python");
    if python.is_file() {
        return Some(python);
    }
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    assert!(!in_ci, "{} not found; CI must run `bash tests/peers/setup.sh` before the tests", python.display());
    eprintln!("skipping: {} not found; run `bash tests/peers/setup.sh` to compare with OpenCV", python.display());
    None
}

/// Returns (input, reference) pairs: images of C1, C2, C4 and C5 transferred to
/// C3 training images, and throat photographs transferred to each other.
fn image_pairs() -> Vec<(PathBuf, PathBuf)> {
    let references: Vec<PathBuf> =
        common::polypgen_split("C3", "train").into_iter().map(|(image, _)| image).take(4).collect();
    let mut pairs = Vec::new();
    for centre in ["C1", "C2", "C4", "C5"] {
        let images = common::polypgen_split(centre, "target");
        let step = (images.len() / INPUTS_PER_CENTRE).max(1);
        for (image, _) in images.into_iter().step_by(step).take(INPUTS_PER_CENTRE) {
            let reference = references[pairs.len() % references.len()].clone();
            pairs.push((image, reference));
        }
    }
    let throat = common::data_dir().join("throat/images");
    for (input, reference) in [("throat_001.jpg", "throat_040.jpg"), ("throat_063.jpg", "throat_017.jpg")] {
        pairs.push((throat.join(input), throat.join(reference)));
    }
    pairs
}

/// Decodes an image with throatseg and writes it as PNG, so both sides start
/// from the same pixels whatever their JPEG decoders do.
fn decoded_png(path: &Path, out: &Path) -> image::RgbImage {
    let rgb = frame::read_rgb(path).unwrap_or_else(|error| panic!("{error}"));
    rgb.save(out).unwrap_or_else(|error| panic!("{}: cannot write the decoded image: {error}", out.display()));
    rgb
}

/// Counts of per-channel differences between two byte arrays.
#[derive(Default)]
struct Agreement {
    values: u64,
    identical: u64,
    within_one: u64,
    max: u8,
}

impl Agreement {
    fn add(&mut self, ours: &[u8], theirs: &[u8]) {
        for (&a, &b) in ours.iter().zip(theirs) {
            let difference = a.abs_diff(b);
            self.values += 1;
            self.identical += (difference == 0) as u64;
            self.within_one += (difference <= 1) as u64;
            self.max = self.max.max(difference);
        }
    }

    fn report(&self, what: &str) {
        let share = |count: u64| 100.0 * count as f64 / self.values.max(1) as f64;
        println!(
            "{what}: {} channel values, {:.4} % identical, {:.4} % within 1, max difference {}",
            self.values,
            share(self.identical),
            share(self.within_one),
            self.max
        );
    }
}

#[test]
fn lab_transfer_matches_opencv() {
    let Some(python) = peer_python() else { return };
    let work = tempfile::tempdir().expect("creating a temporary directory failed");
    let pairs = image_pairs();

    let mut list = String::new();
    let mut decoded = Vec::new();
    for (index, (input, reference)) in pairs.iter().enumerate() {
        let input_png = work.path().join(format!("{index}-input.png"));
        let reference_png = work.path().join(format!("{index}-reference.png"));
        let stem = work.path().join(format!("{index}"));
        decoded.push((decoded_png(input, &input_png), decoded_png(reference, &reference_png), stem.clone()));
        list.push_str(&format!("{}\t{}\t{}\n", input_png.display(), reference_png.display(), stem.display()));
    }
    let list_path = work.path().join("pairs.tsv");
    std::fs::write(&list_path, list).expect("writing the pair list failed");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/opencv_lab.py");
    let output = Command::new(&python).arg(&script).arg(&list_path).output().expect("the peer Python runs");
    assert!(output.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr));
    println!("peer: {}", String::from_utf8_lossy(&output.stdout).trim());

    let mut codes = Agreement::default();
    let mut transferred = Agreement::default();
    for ((input, reference), (rgb, reference_rgb, stem)) in pairs.iter().zip(&decoded) {
        let read = |extension: &str| {
            let path = stem.with_extension(extension);
            let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(bytes.len(), rgb.as_raw().len(), "{}: size differs from {}", path.display(), input.display());
            bytes
        };

        let ours_lab: Vec<u8> =
            rgb.as_raw().chunks_exact(3).flat_map(|p| cielab::rgb_to_lab([p[0], p[1], p[2]])).collect();
        codes.add(&ours_lab, &read("lab"));

        let maps = CodeMaps::new(&cielab::lab_stats_all(rgb.as_raw()), &cielab::lab_stats_all(reference_rgb.as_raw()));
        let mut ours = vec![0u8; rgb.as_raw().len()];
        cielab::transfer(rgb.as_raw(), &mut ours, &maps);
        let mut pair = Agreement::default();
        pair.add(&ours, &read("rgb"));
        pair.report(&format!("{} to {}", input.display(), reference.display()));
        transferred.add(&ours, &read("rgb"));
    }

    codes.report(&format!("RGB to Lab codes, {} images", pairs.len()));
    transferred.report(&format!("Lab transfer, {} pairs", pairs.len()));
    assert_eq!(codes.identical, codes.values, "RGB to Lab codes differ from cv2.cvtColor");
    assert!(transferred.max <= 1, "a transferred value differs from python-color-transfer by {}", transferred.max);
}

/// Returns every u8 triple in index order: first value in the high byte.
fn all_triples() -> impl Iterator<Item = [u8; 3]> {
    (0u32..1 << 24).map(|index| [(index >> 16) as u8, (index >> 8) as u8, index as u8])
}

#[test]
fn lab_conversions_match_opencv_everywhere() {
    let Some(python) = peer_python() else { return };
    let work = tempfile::tempdir().expect("creating a temporary directory failed");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/opencv_lab.py");
    let output =
        Command::new(&python).arg(&script).arg("--all-codes").arg(work.path()).output().expect("the peer Python runs");
    assert!(output.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr));
    let read = |name: &str| std::fs::read(work.path().join(name)).unwrap_or_else(|error| panic!("{name}: {error}"));

    let theirs = read("rgb_to_lab.bin");
    let ours: Vec<u8> = all_triples().flat_map(cielab::rgb_to_lab).collect();
    let mut forward = Agreement::default();
    forward.add(&ours, &theirs);
    forward.report("RGB to Lab, all 2^24 colours");

    let theirs = read("lab_to_rgb.bin");
    let ours: Vec<u8> = all_triples().flat_map(cielab::lab_to_rgb).collect();
    let mut backward = Agreement::default();
    backward.add(&ours, &theirs);
    backward.report("Lab to RGB, all 2^24 codes");
    let triples_identical = ours.chunks_exact(3).zip(theirs.chunks_exact(3)).filter(|(a, b)| a == b).count();
    let over_one = ours
        .chunks_exact(3)
        .zip(theirs.chunks_exact(3))
        .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > 1))
        .count();
    println!(
        "Lab to RGB: {:.4} % of triples identical, {over_one} triples off by more than 1",
        100.0 * triples_identical as f64 / (1u64 << 24) as f64
    );

    assert_eq!(forward.identical, forward.values, "RGB to Lab codes differ from cv2.cvtColor");
    assert!(backward.max <= 2, "a Lab to RGB value differs from cv2.cvtColor by {}", backward.max);
    assert!(over_one <= 32, "{over_one} Lab codes convert more than 1 away from cv2.cvtColor");
}
