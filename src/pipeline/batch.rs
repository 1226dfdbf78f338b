//! Segmenting a batch of image files: input discovery, per-file outputs and the
//! report, with failures counted per file instead of stopping the batch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use image::RgbImage;

use super::{Pipeline, PipelineError, Segmentation, Timings};
use crate::frame;
use crate::output::{self, ResultsLog};

/// File extensions read from directories (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Input files found from the command-line arguments.
#[derive(Debug, Default)]
pub struct InputList {
    /// Files to process, in order.
    pub files: Vec<PathBuf>,
    /// Files in directories that were skipped because of their extension.
    pub skipped: usize,
    /// Arguments that could not be listed, with the reason.
    pub missing: Vec<(PathBuf, String)>,
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|known| e.eq_ignore_ascii_case(known)))
}

/// Expands files and directories (recursively, sorted by path) into input files.
/// A file named directly is always taken. In directories only JPEG and PNG
/// names are taken, hidden files are ignored, and symbolic links to
/// directories are not followed, so a link loop cannot repeat or hang the walk.
pub fn collect_inputs(arguments: &[PathBuf]) -> InputList {
    let mut list = InputList::default();
    for argument in arguments {
        match std::fs::metadata(argument) {
            Ok(meta) if meta.is_dir() => walk(argument, &mut list),
            Ok(_) => list.files.push(argument.clone()),
            Err(e) => list.missing.push((argument.clone(), e.to_string())),
        }
    }
    list
}

fn walk(directory: &Path, list: &mut InputList) {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(e) => {
            list.missing.push((directory.to_owned(), e.to_string()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        let is_real_directory = path.symlink_metadata().is_ok_and(|m| m.is_dir());
        if is_real_directory {
            walk(&path, list);
        } else if path.is_dir() {
            tracing::debug!(path = %path.display(), "not following a link to a directory");
            list.skipped += 1;
        } else if is_image_name(&path) {
            list.files.push(path);
        } else {
            list.skipped += 1;
        }
    }
}

/// Counts of a finished batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// Files segmented and written.
    pub succeeded: usize,
    /// Files that failed.
    pub failed: usize,
}

/// Returns the output stems to try: `base`, then `base` with `-2`, `-3` and so on.
fn candidate_stems(base: String) -> impl Iterator<Item = String> {
    std::iter::once(base.clone()).chain((2..).map(move |suffix| format!("{base}-{suffix}")))
}

/// Returns the output stem of an input file: its file stem.
fn input_stem(input: &Path) -> String {
    input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into())
}

/// Publishes the mask and overlay under the first stem whose files do not
/// exist yet, and returns that stem. Existing files are never replaced, so an
/// earlier run's results (or an input in the output directory) stay intact.
fn publish(out_dir: &Path, base_stem: &str, used: &mut HashSet<String>, mask: &[u8], overlay: &[u8]) -> Result<String, PipelineError> {
    for stem in candidate_stems(base_stem.to_owned()) {
        if used.contains(&stem) {
            continue;
        }
        let overlay_path = out_dir.join(format!("{stem}.overlay.png"));
        if overlay_path.symlink_metadata().is_ok() {
            continue;
        }
        if !output::write_new(&out_dir.join(format!("{stem}.mask.png")), mask)? {
            continue;
        }
        used.insert(stem.clone());
        if !output::write_new(&overlay_path, overlay)? {
            // Another process took the overlay name after the check above.
            let error = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "created by another process");
            return Err(output::OutputError::Write { path: overlay_path, error }.into());
        }
        return Ok(stem);
    }
    unreachable!("the candidate stems never run out")
}

/// Creates the output directory, or checks that an existing path is one, and
/// removes temporary files that killed runs left in it.
pub fn prepare_out_dir(out_dir: &Path) -> Result<(), PipelineError> {
    let error = |error| PipelineError::Output(output::OutputError::Write { path: out_dir.to_owned(), error });
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(error(std::io::Error::other("exists and is not a directory; choose another --out")));
    }
    std::fs::create_dir_all(out_dir).map_err(error)?;
    let removed = output::remove_stale_temporaries(out_dir);
    if removed > 0 {
        tracing::info!(directory = %out_dir.display(), removed, "removed temporary files of interrupted runs");
    }
    Ok(())
}

/// Segments every input file, writing `<stem>.mask.png`, `<stem>.overlay.png`
/// and one line of `results.jsonl` per input into `out_dir`. Inputs that could
/// not be listed get an error line too. `on_file` is called after each file
/// with its error, if any.
pub fn segment_files(
    pipeline: &Pipeline,
    inputs: &InputList,
    out_dir: &Path,
    mut on_file: impl FnMut(&Path, Option<&PipelineError>),
) -> Result<BatchSummary, PipelineError> {
    prepare_out_dir(out_dir)?;
    let mut log = ResultsLog::open(&out_dir.join("results.jsonl"))?;
    let mut summary = BatchSummary::default();
    let mut used = HashSet::new();

    for (path, reason) in &inputs.missing {
        let message = format!("{}: {reason}", path.display());
        log.append(&json!({ "input": path.display().to_string(), "error": message }))?;
        summary.failed += 1;
    }

    for input in &inputs.files {
        let outcome = segment_one(pipeline, input, out_dir, &mut used);
        let line = match &outcome {
            Ok(line) => line.clone(),
            Err(error) => json!({ "input": input.display().to_string(), "error": error.to_string() }),
        };
        // The report line is written even for a failed input, so the operator
        // sees every file; a failure to write it fails the file too.
        let logged = log.append(&line).map_err(PipelineError::from);
        match outcome.and(logged) {
            Ok(()) => {
                summary.succeeded += 1;
                on_file(input, None);
            }
            Err(error) => {
                summary.failed += 1;
                on_file(input, Some(&error));
            }
        }
    }
    Ok(summary)
}

fn segment_one(pipeline: &Pipeline, input: &Path, out_dir: &Path, used: &mut HashSet<String>) -> Result<serde_json::Value, PipelineError> {
    let started = Instant::now();
    let rgb = frame::read_rgb(input)?;
    let decode_ms = started.elapsed().as_secs_f64() * 1e3;

    let result = pipeline.segment(&rgb)?;

    let started = Instant::now();
    let mut fields = publish_segmentation(pipeline, &rgb, &result, &input_stem(input), out_dir, used)?;
    let write_ms = started.elapsed().as_secs_f64() * 1e3;

    fields.insert("input".into(), json!(input.display().to_string()));
    fields.insert("timings_ms".into(), timings_json(decode_ms, &result.timings, write_ms));
    Ok(serde_json::Value::Object(fields))
}

/// Writes the mask and overlay of a segmented frame under the first free stem
/// starting with `base_stem` (see [`publish`]), and returns the results-line
/// fields that every command writes: mask and overlay names, size, model,
/// mode, references and class fractions.
pub fn publish_segmentation(
    pipeline: &Pipeline,
    rgb: &RgbImage,
    result: &Segmentation,
    base_stem: &str,
    out_dir: &Path,
    used: &mut HashSet<String>,
) -> Result<serde_json::Map<String, serde_json::Value>, PipelineError> {
    let card = pipeline.segmenter().card();
    let name = out_dir.join(base_stem);
    let mask_png = output::mask_png(&name, &result.mask)?;
    let blended = output::overlay(rgb, &result.mask, &card.colours, 0.45);
    let overlay_png = output::rgb_png(&name, &blended)?;
    let stem = publish(out_dir, base_stem, used, &mask_png, &overlay_png)?;

    let fractions: serde_json::Map<String, serde_json::Value> = card
        .classes
        .iter()
        .zip(&result.class_fractions)
        .map(|(name, fraction)| (name.clone(), json!(round6(*fraction))))
        .collect();
    let line = json!({
        "mask": format!("{stem}.mask.png"),
        "overlay": format!("{stem}.overlay.png"),
        "width": rgb.width(),
        "height": rgb.height(),
        "model": card.name,
        "mode": pipeline.mode_name(),
        "colour_space": pipeline.colour_space(),
        "references": result.references,
        "class_fractions": fractions,
    });
    match line {
        serde_json::Value::Object(fields) => Ok(fields),
        _ => unreachable!("json! of an object literal is an object"),
    }
}

/// Returns the stage timings as a JSON object, with decoding first and writing last.
pub fn timings_json(decode_ms: f64, stages: &Timings, write_ms: f64) -> serde_json::Value {
    let mut timings = serde_json::Map::new();
    timings.insert("decode".into(), json!(round3(decode_ms)));
    for (stage, ms) in &stages.0 {
        timings.insert((*stage).into(), json!(round3(*ms)));
    }
    timings.insert("write".into(), json!(round3(write_ms)));
    serde_json::Value::Object(timings)
}

fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}
