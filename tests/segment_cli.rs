//! `throatseg segment` as a user runs it: real photographs, bad files in a
//! batch, damaged reference sets and models that do not match their cards.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{stderr_text, throatseg};

fn throat_images() -> PathBuf {
    common::data_dir().join("throat/images")
}

fn first_c3_image() -> PathBuf {
    common::polypgen_split("C3", "test").remove(0).0
}

fn results_lines(out: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(out.join("results.jsonl")).expect("results.jsonl exists");
    text.lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
}

#[test]
fn throat_photographs_all_segment() {
    let out = tempfile::tempdir().expect("temporary directory");
    let output = throatseg(&["segment", throat_images().to_str().unwrap(), "--out", out.path().to_str().unwrap()]);
    assert!(output.status.success(), "segment failed on the throat photographs: {}", stderr_text(&output));

    let lines = results_lines(out.path());
    assert_eq!(lines.len(), 80, "one results line per photograph");
    for line in &lines {
        assert!(line.get("error").is_none(), "a photograph failed: {line}");
        let input = PathBuf::from(line["input"].as_str().unwrap());
        let original = image::image_dimensions(&input).expect("input dimensions");
        let mask = image::open(out.path().join(line["mask"].as_str().unwrap())).expect("mask decodes").to_luma8();
        assert_eq!(mask.dimensions(), original, "mask of {} has the input's size", input.display());
        assert!(mask.pixels().all(|p| p[0] < 2), "mask of {} holds class indices only", input.display());
        let overlay = image::open(out.path().join(line["overlay"].as_str().unwrap())).expect("overlay decodes");
        assert_eq!((overlay.width(), overlay.height()), original, "overlay of {} has the input's size", input.display());
        let references = line["references"].as_array().unwrap();
        assert_eq!(references.len(), 2, "full mode uses the GRIS and the LRIS reference");
        let fractions: f64 = line["class_fractions"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
        assert!((fractions - 1.0).abs() < 1e-3, "class fractions of {} sum to {fractions}", input.display());
        for stage in ["decode", "resize", "embed", "search", "statistics", "transfer", "inference", "ensemble", "write"] {
            assert!(line["timings_ms"][stage].as_f64().is_some(), "stage {stage} timed for {}", input.display());
        }
    }
}

/// Writes a batch folder with one good image and every kind of bad file.
fn bad_batch(dir: &Path) -> Vec<(&'static str, &'static str)> {
    let good = fs::read(first_c3_image()).expect("real image");
    fs::write(dir.join("a_good.jpg"), &good).unwrap();
    fs::write(dir.join("b_empty.png"), b"").unwrap();
    fs::write(dir.join("c_text.png"), b"this is not an image\n").unwrap();
    let mut corrupt = good.clone();
    for byte in corrupt.iter_mut().skip(2).take(600) {
        *byte = 0x5a;
    }
    fs::write(dir.join("d_corrupt.jpg"), &corrupt).unwrap();
    fs::write(dir.join("e_truncated.jpg"), &good[..good.len() / 3]).unwrap();
    std::os::unix::fs::symlink("/nonexistent/throatseg-test.jpg", dir.join("f_unreadable.jpg")).unwrap();
    let png = fs::read(common::polypgen_split("C3", "test").remove(0).1).expect("real PNG mask");
    fs::write(dir.join("g_truncated.png"), &png[..png.len() / 2]).unwrap();
    fs::write(dir.join("notes.txt"), b"operator notes").unwrap();
    fs::write(dir.join("z_good.jpg"), &good).unwrap();
    vec![
        ("b_empty.png", "file is empty"),
        ("c_text.png", "not a valid JPEG or PNG image"),
        ("d_corrupt.jpg", "not a valid JPEG or PNG image"),
        ("e_truncated.jpg", "not a valid JPEG or PNG image"),
        ("f_unreadable.jpg", "cannot read file"),
        ("g_truncated.png", "not a valid JPEG or PNG image"),
    ]
}

#[test]
fn bad_files_fail_alone() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let expected_failures = bad_batch(input.path());

    let output = throatseg(&["segment", input.path().to_str().unwrap(), "--out", out.path().to_str().unwrap()]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "exit status after failed inputs; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    for (file, reason) in &expected_failures {
        let line = stderr.lines().find(|l| l.contains(file));
        assert!(line.is_some(), "stderr names {file}: {stderr}");
        assert!(line.unwrap().contains(reason), "error for {file} says {reason:?}: {stderr}");
    }
    assert!(stderr.contains("skipped 1 files"), "one line counts the skipped notes.txt: {stderr}");

    for good in ["a_good", "z_good"] {
        assert!(out.path().join(format!("{good}.mask.png")).is_file(), "{good} still segmented");
        assert!(out.path().join(format!("{good}.overlay.png")).is_file(), "{good} overlay written");
    }
    let lines = results_lines(out.path());
    assert_eq!(lines.len(), 8, "a results line for every image file, failed or not");
    let errors = lines.iter().filter(|l| l.get("error").is_some()).count();
    assert_eq!(errors, 6, "failed files are marked in results.jsonl");
    let leftovers: Vec<_> = fs::read_dir(out.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "no temporary files left behind");
}

#[test]
fn bench_names_bad_files_like_segment() {
    let input = tempfile::tempdir().unwrap();
    for (file, reason) in bad_batch(input.path()) {
        let path = input.path().join(file);
        let output = throatseg(&["bench", path.to_str().unwrap(), "--runs", "1"]);
        let stderr = stderr_text(&output);
        assert!(!output.status.success(), "bench of {file} fails");
        assert!(!stderr.contains("panicked"), "no panic for {file}: {stderr}");
        assert!(stderr.contains(file), "bench's error names {file}: {stderr}");
        assert!(stderr.contains(reason), "bench's error for {file} says {reason:?}: {stderr}");
    }
}

#[test]
fn earlier_results_are_kept() {
    let out = tempfile::tempdir().unwrap();
    let image = first_c3_image();
    for _ in 0..2 {
        let output = throatseg(&["segment", image.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--mode", "none"]);
        assert!(output.status.success(), "{}", stderr_text(&output));
    }
    assert_eq!(results_lines(out.path()).len(), 2, "a second run appends to results.jsonl");
}

#[test]
fn modes_and_fixed_reference_run() {
    let image = first_c3_image();
    for (extra, mode, references) in [
        (vec!["--mode", "none"], "none", 0),
        (vec!["--mode", "gris"], "gris", 1),
        (vec!["--mode", "lris"], "lris", 1),
        (vec!["--reference", "3"], "reference", 1),
    ] {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["segment", image.to_str().unwrap(), "--out", out.path().to_str().unwrap()];
        args.extend(extra.iter());
        let output = throatseg(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr_text(&output));
        let line = &results_lines(out.path())[0];
        assert_eq!(line["mode"], mode, "mode recorded for {args:?}");
        assert_eq!(line["references"].as_array().unwrap().len(), references, "references used with {args:?}");
    }
}

#[test]
fn unknown_reference_is_rejected() {
    let out = tempfile::tempdir().unwrap();
    let image = first_c3_image();
    let output = throatseg(&["segment", image.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--reference", "no-such-image"]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "setup errors exit with 2: {stderr}");
    assert!(stderr.contains("reference \"no-such-image\" not found"), "message names the reference: {stderr}");
}

/// Copies the bundled reference set, lets `damage` change its bytes and
/// returns the error `segment` prints for it.
fn segment_with_damaged_refs(damage: impl FnOnce(&mut Vec<u8>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(common::bundled(throatseg::models::REFERENCES_FILE)).unwrap();
    damage(&mut bytes);
    let refs = dir.path().join("damaged.tsrefs");
    fs::write(&refs, &bytes).unwrap();
    let image = first_c3_image();
    let output = throatseg(&["segment", image.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap(), "--refs", refs.to_str().unwrap()]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "a bad reference set stops the run: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(stderr.contains("damaged.tsrefs"), "error names the file: {stderr}");
    stderr
}

#[test]
fn damaged_reference_sets_are_rejected() {
    let flipped = segment_with_damaged_refs(|b| {
        let last = b.len() - 100;
        b[last] ^= 0xff;
    });
    assert!(flipped.contains("checksum mismatch"), "flipped byte: {flipped}");
    let truncated = segment_with_damaged_refs(|b| b.truncate(b.len() / 2));
    assert!(truncated.contains("truncated"), "truncated file: {truncated}");
    let empty = segment_with_damaged_refs(|b| b.clear());
    assert!(empty.contains("shorter than the 256-byte header"), "empty file: {empty}");
    let version = segment_with_damaged_refs(|b| b[8] = 99);
    assert!(version.contains("format version 99 is not supported"), "wrong version: {version}");
    let garbage = segment_with_damaged_refs(|b| b[..8].copy_from_slice(b"GARBAGE!"));
    assert!(garbage.contains("wrong magic"), "not a reference set: {garbage}");
}

/// Copies the bundled model with an edited card and returns `segment`'s error.
fn segment_with_card(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("edited.onnx");
    fs::copy(common::bundled(throatseg::models::SEGMENTER_FILE), &model).unwrap();
    let card_text = fs::read_to_string(common::bundled(throatseg::models::SEGMENTER_FILE).with_extension("json")).unwrap();
    let mut card: serde_json::Value = serde_json::from_str(&card_text).unwrap();
    edit(&mut card);
    fs::write(model.with_extension("json"), card.to_string()).unwrap();
    let image = first_c3_image();
    let output = throatseg(&["segment", image.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap(), "--model", model.to_str().unwrap(), "--mode", "none"]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "a mismatched card stops the run: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(stderr.contains("edited"), "error names the model: {stderr}");
    stderr
}

#[test]
fn mismatched_cards_are_rejected() {
    let classes = segment_with_card(|c| {
        c["classes"] = serde_json::json!(["background", "tonsil", "uvula"]);
        c["colours"] = serde_json::json!([[0, 0, 0], [1, 2, 3], [4, 5, 6]]);
    });
    assert!(classes.contains("does not match its card"), "class count: {classes}");
    let size = segment_with_card(|c| c["input"]["width"] = serde_json::json!(320));
    assert!(size.contains("does not match its card"), "input width: {size}");
    let colours = segment_with_card(|c| c["colours"] = serde_json::json!([[0, 0, 0]]));
    assert!(colours.contains("give one RGB colour per class"), "colour count: {colours}");
    let task = segment_with_card(|c| {
        c["task"] = serde_json::json!("embedding");
        c["output"] = serde_json::json!({"layout": "NC", "dimensions": 1280});
    });
    assert!(task.contains("the card gives task embedding"), "wrong task: {task}");
    let duplicate = segment_with_card(|c| c["classes"] = serde_json::json!(["polyp", "polyp"]));
    assert!(duplicate.contains("listed twice"), "duplicate class names: {duplicate}");
    let broken = segment_with_card(|c| *c = serde_json::json!({"name": 5}));
    assert!(broken.contains("invalid model card"), "invalid JSON shape: {broken}");
}

#[test]
fn missing_card_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("nocard.onnx");
    fs::copy(common::bundled(throatseg::models::SEGMENTER_FILE), &model).unwrap();
    let image = first_c3_image();
    let output = throatseg(&["segment", image.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap(), "--model", model.to_str().unwrap()]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nocard.json: cannot read model card"), "names the missing card: {stderr}");
}

/// Returns a PNG whose header claims `width` × `height` pixels, with no pixel data.
fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    chunk.extend_from_slice(&[8, 2, 0, 0, 0]);
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&chunk);
    bytes.extend_from_slice(&crc32fast::hash(&chunk).to_be_bytes());
    // A tiny zlib stream, so the decoder reaches the point where it allocates.
    let idat: Vec<u8> = [b"IDAT".as_slice(), &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]].concat();
    bytes.extend_from_slice(&8u32.to_be_bytes());
    bytes.extend_from_slice(&idat);
    bytes.extend_from_slice(&crc32fast::hash(&idat).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    bytes
}

#[test]
fn hostile_inputs_fail_alone() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    fs::write(input.path().join("a_huge.png"), png_header_claiming(100_000, 100_000)).unwrap();
    let fifo = input.path().join("b_fifo.jpg");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo created the pipe");
    std::os::unix::fs::symlink(".", input.path().join("c_loop")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", input.path().join("d_zero.jpg")).unwrap();
    fs::copy(first_c3_image(), input.path().join("e_good.jpg")).unwrap();

    let output = throatseg(&["segment", input.path().to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--mode", "none"]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "hostile files fail, the run finishes: {stderr}");
    assert!(stderr.contains("a_huge.png: image is 100000x100000 pixels, more than the limit"), "huge image: {stderr}");
    assert!(stderr.contains("b_fifo.jpg: not a regular file"), "pipe: {stderr}");
    assert!(stderr.contains("d_zero.jpg: not a regular file"), "device: {stderr}");
    let lines = results_lines(out.path());
    assert_eq!(lines.len(), 4, "the linked directory is not walked again: {lines:?}");
    assert!(out.path().join("e_good.mask.png").is_file(), "the good image is segmented");
}

#[test]
fn existing_outputs_are_never_replaced() {
    let out = tempfile::tempdir().unwrap();
    let image = first_c3_image();
    let stem = image.file_stem().unwrap().to_string_lossy().into_owned();
    let ground_truth = out.path().join(format!("{stem}.mask.png"));
    fs::write(&ground_truth, b"a file the user keeps").unwrap();
    for _ in 0..2 {
        let output = throatseg(&["segment", image.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--mode", "none"]);
        assert!(output.status.success(), "{}", stderr_text(&output));
    }
    assert_eq!(fs::read(&ground_truth).unwrap(), b"a file the user keeps", "an existing mask file is left alone");
    let lines = results_lines(out.path());
    let masks: Vec<&str> = lines.iter().map(|l| l["mask"].as_str().unwrap()).collect();
    assert_eq!(masks, [format!("{stem}-2.mask.png"), format!("{stem}-3.mask.png")], "each run gets its own names");
}

#[test]
fn concurrent_runs_keep_every_line() {
    let out = tempfile::tempdir().unwrap();
    let images: Vec<PathBuf> = common::polypgen_split("C3", "test").into_iter().take(8).map(|(image, _)| image).collect();
    let spawn = |part: &[PathBuf]| {
        let mut command = common::throatseg_command();
        command.arg("segment").args(part).args(["--out", out.path().to_str().unwrap(), "--mode", "none"]);
        command.spawn().expect("throatseg starts")
    };
    let mut first = spawn(&images[..4]);
    let mut second = spawn(&images[4..]);
    assert!(first.wait().unwrap().success(), "first run succeeds");
    assert!(second.wait().unwrap().success(), "second run succeeds");
    assert_eq!(results_lines(out.path()).len(), 8, "both runs' lines are in results.jsonl");
}

#[test]
fn missing_input_is_reported() {
    let out = tempfile::tempdir().unwrap();
    let image = first_c3_image();
    let output = throatseg(&["segment", "/nonexistent/scan.jpg", image.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--mode", "none"]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("segmented 1 of 2 inputs"), "summary counts the missing input: {stderr}");
    let lines = results_lines(out.path());
    assert_eq!(lines[0]["input"], "/nonexistent/scan.jpg", "the missing input has a results line");
    assert!(lines[0]["error"].as_str().is_some(), "with its error");
}

#[test]
fn reference_conflicts_with_mode() {
    let out = tempfile::tempdir().unwrap();
    let image = first_c3_image();
    let output = throatseg(&["segment", image.to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--mode", "none", "--reference", "0"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects the combination: {}", stderr_text(&output));
}

#[test]
fn lab_colour_space_is_recorded() {
    let image = first_c3_image();
    for (extra, space) in [(vec![], "lalphabeta"), (vec!["--colour-space", "lab"], "lab")] {
        let out = tempfile::tempdir().unwrap();
        let mut args = vec!["segment", image.to_str().unwrap(), "--out", out.path().to_str().unwrap()];
        args.extend(extra.iter());
        let output = throatseg(&args);
        assert!(output.status.success(), "{args:?}: {}", stderr_text(&output));
        let line = &results_lines(out.path())[0];
        assert_eq!(line["colour_space"], space, "colour space recorded for {args:?}");
        assert_eq!(line["references"].as_array().unwrap().len(), 2, "full DCIN references with {args:?}");
    }
}

/// Rewrites the bundled version-2 reference set as a version-1 file: version 1,
/// no sixth section entry, the CIE L*a*b* section cut off, checksum redone.
fn version_1_copy(dir: &Path) -> PathBuf {
    let mut bytes = fs::read(common::bundled("references-c3.tsrefs")).unwrap();
    assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 2, "the bundled set is format version 2");
    let sixth_offset = u64::from_le_bytes(bytes[200..208].try_into().unwrap()) as usize;
    bytes.truncate(sixth_offset);
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    bytes[200..216].fill(0);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..248]);
    hasher.update(&bytes[256..]);
    let checksum = hasher.finalize();
    bytes[248..252].copy_from_slice(&checksum.to_le_bytes());
    let path = dir.join("version-1.tsrefs");
    fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn lab_needs_version_2_references() {
    let dir = tempfile::tempdir().unwrap();
    let refs = version_1_copy(dir.path());
    let image = first_c3_image();
    let out = dir.path().join("out");
    let common_args = ["segment", image.to_str().unwrap(), "--out", out.to_str().unwrap(), "--refs", refs.to_str().unwrap()];

    let output = throatseg(&[&common_args[..], &["--colour-space", "lab"]].concat());
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "lab with a version-1 set is a setup error: {stderr}");
    assert!(stderr.contains(refs.to_str().unwrap()), "the error names the file: {stderr}");
    assert!(stderr.contains("throatseg refs build"), "the error says how to rebuild: {stderr}");

    let output = throatseg(&common_args);
    assert!(output.status.success(), "lαβ with a version-1 set: {}", stderr_text(&output));
}
