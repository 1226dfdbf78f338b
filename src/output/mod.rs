//! Result files: class masks, overlays and the JSON-lines report, each
//! replaced atomically so a crash never leaves a half-written file.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageEncoder, RgbImage};

/// Errors from writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Writing, syncing or renaming failed.
    #[error("{path}: cannot write: {source}; check free space and write permission on the output directory")]
    Write { path: PathBuf, source: std::io::Error },
    /// PNG encoding failed.
    #[error("{path}: cannot encode PNG: {reason}")]
    Encode { path: PathBuf, reason: String },
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory
/// is written and synced, renamed over `path`, then the directory is synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let error = |source| OutputError::Write { path: path.to_owned(), source };
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));

    let result = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        // Syncing the directory makes the rename itself durable. Some file
        // systems do not support it; the data is already synced then.
        if let Ok(dir) = File::open(directory) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(error)
}

/// Encodes an 8-bit grayscale or RGB image as PNG.
fn encode_png(path: &Path, raw: &[u8], width: u32, height: u32, colour: image::ExtendedColorType) -> Result<Vec<u8>, OutputError> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(raw, width, height, colour)
        .map_err(|e| OutputError::Encode { path: path.to_owned(), reason: e.to_string() })?;
    Ok(bytes)
}

/// Writes a class-index mask (one byte per pixel) as an 8-bit PNG.
pub fn write_mask(path: &Path, mask: &GrayImage) -> Result<(), OutputError> {
    let bytes = encode_png(path, mask.as_raw(), mask.width(), mask.height(), image::ExtendedColorType::L8)?;
    write_atomic(path, &bytes)
}

/// Writes an RGB image as PNG.
pub fn write_rgb_png(path: &Path, image: &RgbImage) -> Result<(), OutputError> {
    let bytes = encode_png(path, image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)?;
    write_atomic(path, &bytes)
}

/// Blends class colours into an image: each pixel of class `c > 0` becomes
/// `(1 − alpha)·pixel + alpha·colours[c]`; background (class 0) is left as is.
pub fn overlay(image: &RgbImage, mask: &GrayImage, colours: &[[u8; 3]], alpha: f32) -> RgbImage {
    let mut out = image.clone();
    for (pixel, class) in out.pixels_mut().zip(mask.pixels()) {
        let class = class[0] as usize;
        if class == 0 || class >= colours.len() {
            continue;
        }
        for c in 0..3 {
            let blended = (1.0 - alpha) * pixel[c] as f32 + alpha * colours[class][c] as f32;
            pixel[c] = blended.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The JSON-lines report. Lines already in the file are kept; each new line
/// rewrites the whole file atomically, so a reader never sees a partial line.
pub struct ResultsLog {
    path: PathBuf,
    content: Vec<u8>,
}

impl ResultsLog {
    /// Opens the report at `path`, keeping the complete lines it already holds.
    pub fn open(path: &Path) -> Result<ResultsLog, OutputError> {
        let mut content = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(OutputError::Write { path: path.to_owned(), source }),
        };
        // Drop a trailing partial line (possible only if another program wrote it).
        if let Some(end) = content.iter().rposition(|&b| b == b'\n') {
            content.truncate(end + 1);
        } else {
            content.clear();
        }
        Ok(ResultsLog { path: path.to_owned(), content })
    }

    /// Appends one JSON value as a line and replaces the file.
    pub fn append(&mut self, value: &serde_json::Value) -> Result<(), OutputError> {
        let previous = self.content.len();
        self.content.extend_from_slice(value.to_string().as_bytes());
        self.content.push(b'\n');
        let result = write_atomic(&self.path, &self.content);
        if result.is_err() {
            self.content.truncate(previous);
        }
        result
    }
}
