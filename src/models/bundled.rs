//! Locating the bundled models and reference set.

use std::path::PathBuf;

/// Environment variable that overrides the directory of bundled files.
pub const MODEL_DIR_ENV: &str = "THROATSEG_MODEL_DIR";

/// File name of the bundled segmentation model.
pub const SEGMENTER_FILE: &str = "polyp-unet-lite0-aug.onnx";
/// File name of the bundled embedder.
pub const EMBEDDER_FILE: &str = "embedder-lite0.onnx";
/// File name of the bundled reference set.
pub const REFERENCES_FILE: &str = "references-c3.tsrefs";

/// Returns the directory of bundled files: `$THROATSEG_MODEL_DIR`, else
/// `<prefix>/share/throatseg/models` beside an installed binary, else the
/// `models/` folder of the source tree the binary was built from.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(|bin| bin.parent()) {
            let installed = prefix.join("share/throatseg/models");
            if installed.join(SEGMENTER_FILE).exists() {
                return installed;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Returns the path of a bundled file.
pub fn bundled(file: &str) -> PathBuf {
    model_dir().join(file)
}
