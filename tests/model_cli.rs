//! `throatseg model info` on the bundled models.

mod common;

use common::{stderr_text, throatseg};
use throatseg::models::{EMBEDDER_FILE, SEGMENTER_FILE};

#[test]
fn info_lists_card_and_operators() {
    let model = common::bundled(SEGMENTER_FILE);
    let output = throatseg(&["model", "info", model.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "model info failed: {}", stderr_text(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("model info --json prints JSON");
    assert_eq!(value["card"]["classes"], serde_json::json!(["background", "polyp"]), "card classes");
    let operators = value["operators"].as_object().expect("operator counts");
    let convolutions: u64 = operators
        .iter()
        .filter(|(name, _)| name.contains("Conv") || name.contains("MatMul"))
        .map(|(_, count)| count.as_u64().unwrap())
        .sum();
    assert!(convolutions >= 59, "the U-Net's 59 convolutions appear as tract kernels: {operators:?}");
}

#[test]
fn info_rejects_a_file_without_card() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("bare.onnx");
    std::fs::copy(common::bundled(EMBEDDER_FILE), &model).unwrap();
    let output = throatseg(&["model", "info", model.to_str().unwrap()]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bare.json: cannot read model card"), "names the missing card: {stderr}");
}

#[test]
fn int8_convolutions_run_on_integer_kernels() {
    let model = common::bundled("polyp-unet-lite0-base-int8.onnx");
    let output = throatseg(&["model", "info", model.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "model info failed: {}", stderr_text(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let operators = value["operators"].as_object().unwrap();
    let integer = operators.get("OptMatMul (I8)").and_then(|c| c.as_u64()).unwrap_or(0);
    assert!(integer >= 59, "all 59 QLinearConv run as int8 matrix products: {operators:?}");
    assert!(!operators.contains_key("OptMatMul (F32)"), "no convolution falls back to f32: {operators:?}");
}
