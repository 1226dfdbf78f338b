//! Result files: class masks, overlays and the JSON-lines report, each
//! replaced atomically so a crash never leaves a half-written file.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageEncoder, RgbImage};

/// Errors from writing results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Writing, syncing or renaming failed.
    #[error("{path}: cannot write: {error}; check free space and write permission on the output directory")]
    Write { path: PathBuf, error: std::io::Error },
    /// PNG encoding failed.
    #[error("{path}: cannot encode PNG: {reason}")]
    Encode { path: PathBuf, reason: String },
}

/// Returns the temporary path used while writing `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    directory.join(format!(".{file_name}.{}.tmp", std::process::id()))
}

/// Writes and syncs `bytes` to the temporary path of `path`.
fn write_temporary(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let temporary = temporary_path(path);
    let written = File::create(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(temporary),
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Syncs the directory holding `path`, which makes a rename or link durable.
/// Some file systems do not support it; the data itself is already synced then.
fn sync_parent(path: &Path) {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(dir) = File::open(directory) {
        let _ = dir.sync_all();
    }
}

/// Writes `bytes` to `path` atomically, replacing any existing file: a
/// temporary file in the same directory is written and synced, renamed over
/// `path`, then the directory is synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let error = |error| OutputError::Write { path: path.to_owned(), error };
    let temporary = write_temporary(path, bytes).map_err(error)?;
    if let Err(e) = fs::rename(&temporary, path) {
        let _ = fs::remove_file(&temporary);
        return Err(error(e));
    }
    sync_parent(path);
    Ok(())
}

/// Writes `bytes` to `path` atomically unless `path` already exists, and
/// returns whether it was written. The file appears complete or not at all.
///
/// The temporary file is hard-linked to `path`, which fails if `path` exists,
/// so two processes cannot both claim a name. On file systems without hard
/// links (FAT) it falls back to an existence check before the rename, which
/// is not safe against a concurrent writer.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, OutputError> {
    let error = |error| OutputError::Write { path: path.to_owned(), error };
    if path.symlink_metadata().is_ok() {
        return Ok(false);
    }
    let temporary = write_temporary(path, bytes).map_err(error)?;
    let created = match fs::hard_link(&temporary, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) if path.symlink_metadata().is_ok() => Ok(false),
        Err(_) => fs::rename(&temporary, path).map(|()| true),
    };
    let _ = fs::remove_file(&temporary);
    let created = created.map_err(error)?;
    if created {
        sync_parent(path);
    }
    Ok(created)
}

/// Encodes an 8-bit grayscale or RGB image as PNG.
fn encode_png(path: &Path, raw: &[u8], width: u32, height: u32, colour: image::ExtendedColorType) -> Result<Vec<u8>, OutputError> {
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(raw, width, height, colour)
        .map_err(|e| OutputError::Encode { path: path.to_owned(), reason: e.to_string() })?;
    Ok(bytes)
}

/// Encodes a class-index mask (one byte per pixel) as an 8-bit grayscale PNG.
pub fn mask_png(path: &Path, mask: &GrayImage) -> Result<Vec<u8>, OutputError> {
    encode_png(path, mask.as_raw(), mask.width(), mask.height(), image::ExtendedColorType::L8)
}

/// Encodes an RGB image as PNG.
pub fn rgb_png(path: &Path, image: &RgbImage) -> Result<Vec<u8>, OutputError> {
    encode_png(path, image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
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

/// The JSON-lines report, shared safely by concurrent runs.
///
/// Each record is appended with one `write` on a file opened in append mode,
/// under an exclusive lock, then synced. A power cut during that write can
/// leave at most one partial last line, and the next run removes it before
/// appending. Rewriting the whole file per record would make a long batch
/// write quadratically many bytes to the SD card.
pub struct ResultsLog {
    path: PathBuf,
    file: File,
}

impl ResultsLog {
    /// Opens or creates the report at `path` and repairs a partial last line.
    pub fn open(path: &Path) -> Result<ResultsLog, OutputError> {
        let error = |error| OutputError::Write { path: path.to_owned(), error };
        let file = fs::OpenOptions::new().create(true).read(true).append(true).open(path).map_err(error)?;
        file.lock().map_err(error)?;
        let repaired = repair_tail(&file);
        let _ = file.unlock();
        repaired.map_err(error)?;
        Ok(ResultsLog { path: path.to_owned(), file })
    }

    /// Appends one JSON value as a line and syncs it to storage.
    pub fn append(&mut self, value: &serde_json::Value) -> Result<(), OutputError> {
        let mut line = value.to_string().into_bytes();
        line.push(b'\n');
        let result = self.file.lock().and_then(|()| {
            let written = (&self.file).write_all(&line).and_then(|()| self.file.sync_data());
            let _ = self.file.unlock();
            written
        });
        result.map_err(|error| OutputError::Write { path: self.path.clone(), error })
    }
}

/// Makes the file end with a newline: a last line that is valid JSON gets its
/// newline, anything else after the last newline is a partial record and is cut.
fn repair_tail(file: &File) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};

    let length = file.metadata()?.len();
    if length == 0 {
        return Ok(());
    }
    let window = length.min(1 << 20);
    let mut tail = vec![0u8; window as usize];
    let mut reader = file;
    reader.seek(SeekFrom::Start(length - window))?;
    reader.read_exact(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let line_start = tail.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    let last_line = &tail[line_start.unwrap_or(0)..];
    if serde_json::from_slice::<serde_json::Value>(last_line).is_ok() {
        let mut writer = file;
        return writer.write_all(b"\n");
    }
    match line_start {
        Some(start) => file.set_len(length - window + start as u64),
        // The partial line is longer than the window; only cut what is certain.
        None if window == length => file.set_len(0),
        None => Ok(()),
    }
}

/// Removes temporary files that [`write_atomic`] left in `directory` when a
/// process was killed, recognised by their `.NAME.PID.tmp` names and a PID
/// that no longer runs. Returns how many were removed.
pub fn remove_stale_temporaries(directory: &Path) -> usize {
    let Ok(entries) = fs::read_dir(directory) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else { continue };
        let Some(pid) = rest.rsplit('.').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let running = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !running && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}
