//! tract's output equals onnxruntime's on the same ONNX file and input.
//!
//! onnxruntime (Python package) is the independent implementation; CI installs
//! it. The tolerance is on raw logits and embedding values.

mod common;

use std::path::Path;
use std::process::Command;

use throatseg::frame;
use throatseg::models::{Model, Task, EMBEDDER_FILE, SEGMENTER_FILE};

/// Largest absolute difference allowed between tract and onnxruntime outputs.
const TOLERANCE: f32 = 1e-4;

fn onnxruntime_output(model: &Path, input: &[f32], shape: [usize; 4]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.f32");
    let output_path = dir.path().join("output.f32");
    let bytes: Vec<u8> = input.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&input_path, bytes).unwrap();
    let python = std::env::var("THROATSEG_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = common::models_dir().join("train/ort_run.py");
    let shape_arg = shape.map(|d| d.to_string()).join(",");
    let status = Command::new(&python)
        .args([script.as_os_str(), model.as_os_str(), input_path.as_os_str(), shape_arg.as_ref(), output_path.as_os_str()])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; install Python 3 with numpy and onnxruntime"));
    assert!(status.success(), "onnxruntime run failed; install onnxruntime (pip install onnxruntime numpy)");
    std::fs::read(&output_path).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn compare(file: &str, task: Task) {
    let path = common::bundled(file);
    let model = Model::load(&path, task).expect("bundled model loads");
    let card = model.card().clone();
    let image_path = common::polypgen_split("C3", "test").remove(0).0;
    let rgb = frame::read_rgb(&image_path).unwrap();
    let resized = frame::resize_rgb(&rgb, card.input.width, card.input.height).unwrap();
    let tensor = model.input_tensor(&resized).unwrap();
    let input: Vec<f32> = tensor.to_plain_array_view::<f32>().unwrap().iter().copied().collect();

    let tract = model.run_tensor(tensor).unwrap();
    let shape = [1, 3, card.input.height as usize, card.input.width as usize];
    let reference = onnxruntime_output(&path, &input, shape);
    assert_eq!(tract.len(), reference.len(), "{file}: output lengths");
    let max_difference = tract.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let magnitude = reference.iter().map(|v| v.abs()).fold(0f32, f32::max);
    println!("{file}: max |tract − onnxruntime| = {max_difference:.2e} (largest output magnitude {magnitude:.2})");
    assert!(max_difference <= TOLERANCE, "{file}: tract and onnxruntime differ by {max_difference}");
}

#[test]
fn segmenter_matches_onnxruntime() {
    compare(SEGMENTER_FILE, Task::Segmentation);
}

#[test]
fn embedder_matches_onnxruntime() {
    compare(EMBEDDER_FILE, Task::Embedding);
}
