//! `throatseg refs build` and `refs info` on real source images.

mod common;

use std::fs;

use common::{stderr_text, throatseg};

/// Writes a list file of the first `count` C3 train images.
fn write_list(dir: &std::path::Path, count: usize) -> std::path::PathBuf {
    let lines: Vec<String> = common::polypgen_split("C3", "train")
        .into_iter()
        .take(count)
        .map(|(image, _)| image.display().to_string())
        .collect();
    let list = dir.join("images.txt");
    fs::write(&list, format!("# first {count} C3 train images\n{}\n", lines.join("\n"))).unwrap();
    list
}

#[test]
fn build_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let list = write_list(dir.path(), 6);
    let mut outputs = Vec::new();
    for name in ["first.tsrefs", "second.tsrefs"] {
        let out = dir.path().join(name);
        let output = throatseg(&["refs", "build", "--list", list.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(output.status.success(), "refs build failed: {}", stderr_text(&output));
        outputs.push(fs::read(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1], "two builds from the same images are byte-identical");
}

#[test]
fn info_reports_build() {
    let dir = tempfile::tempdir().unwrap();
    let list = write_list(dir.path(), 5);
    let out = dir.path().join("set.tsrefs");
    let output = throatseg(&["refs", "build", "--list", list.to_str().unwrap(), "--out", out.to_str().unwrap(), "--dark-below", "20"]);
    assert!(output.status.success(), "refs build failed: {}", stderr_text(&output));

    let info = throatseg(&["refs", "info", out.to_str().unwrap(), "--json", "--list"]);
    assert!(info.status.success(), "refs info failed: {}", stderr_text(&info));
    let value: serde_json::Value = serde_json::from_slice(&info.stdout).expect("refs info --json prints JSON");
    assert_eq!(value["checksum"], "ok", "checksum verified");
    assert_eq!(value["info"]["count"], 5, "image count");
    assert_eq!(value["info"]["embedding_dims"], 1280, "embedding dimensions");
    assert_eq!(value["info"]["histogram_bins"], 512, "histogram bins");
    assert_eq!(value["info"]["filter"]["dark_below"], 20, "build setting recorded");
    assert_eq!(value["images"].as_array().unwrap().len(), 5, "listed images");
    let gris = value["info"]["gris_index"].as_u64().unwrap() as usize;
    assert_eq!(value["gris_name"], value["images"][gris], "GRIS name matches its index");
    assert_eq!(value["info"]["version"], 2, "format version");
    assert_eq!(value["info"]["colour_spaces"], serde_json::json!(["lalphabeta", "lab"]), "colour spaces with statistics");

    let text = throatseg(&["refs", "info", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("checksum:          ok"), "text output reports the checksum: {stdout}");
    assert!(stdout.contains("lab (8-bit CIE L*a*b* codes)"), "text output lists the lab statistics: {stdout}");
}

#[test]
fn build_skips_bad_source_images() {
    let dir = tempfile::tempdir().unwrap();
    let list = write_list(dir.path(), 3);
    let mut text = fs::read_to_string(&list).unwrap();
    fs::write(dir.path().join("broken.jpg"), b"not a jpeg").unwrap();
    text.push_str("broken.jpg\n");
    fs::write(&list, text).unwrap();
    let out = dir.path().join("set.tsrefs");
    let output = throatseg(&["refs", "build", "--list", list.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "a bad source image is reported in the exit status: {stderr}");
    assert!(stderr.contains("broken.jpg"), "the bad file is named: {stderr}");
    let info = throatseg(&["refs", "info", out.to_str().unwrap(), "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(value["info"]["count"], 3, "the set holds the readable images");
}

#[test]
fn closed_pipe_ends_listing_quietly() {
    // The read end is closed before the program starts, so its first print
    // meets a closed pipe, as under `throatseg refs info --list | head -c 100`.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let references = common::bundled(throatseg::models::REFERENCES_FILE);
    let output = common::throatseg_command()
        .args(["refs", "info", references.to_str().unwrap(), "--list", "--json"])
        .stdout(writer)
        .output()
        .expect("the throatseg binary runs");
    let stderr = stderr_text(&output);
    assert!(!stderr.contains("panicked"), "no panic on a closed pipe: {stderr}");
}
