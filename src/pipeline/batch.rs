//! Segmenting a batch of image files: input discovery, per-file outputs and the
//! report, with failures counted per file instead of stopping the batch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::{Pipeline, PipelineError};
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
/// A file named directly is always taken; in directories only JPEG and PNG
/// names are, and hidden files are ignored.
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
        if path.is_dir() {
            walk(&path, list);
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

/// Returns an output stem for `input` that no earlier file of the batch used.
fn unique_stem(input: &Path, used: &mut HashSet<String>) -> String {
    let base = input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    let mut stem = base.clone();
    let mut suffix = 2;
    while !used.insert(stem.clone()) {
        stem = format!("{base}-{suffix}");
        suffix += 1;
    }
    stem
}

/// Segments every file, writing `<stem>.mask.png`, `<stem>.overlay.png` and one
/// line of `results.jsonl` per file into `out_dir`. `on_file` is called after
/// each file with its error, if any.
pub fn segment_files(
    pipeline: &Pipeline,
    files: &[PathBuf],
    out_dir: &Path,
    mut on_file: impl FnMut(&Path, Option<&PipelineError>),
) -> Result<BatchSummary, PipelineError> {
    std::fs::create_dir_all(out_dir).map_err(|source| output::OutputError::Write { path: out_dir.to_owned(), source })?;
    let mut log = ResultsLog::open(&out_dir.join("results.jsonl"))?;
    let mut summary = BatchSummary::default();
    let mut used = HashSet::new();

    for input in files {
        let stem = unique_stem(input, &mut used);
        let outcome = segment_one(pipeline, input, out_dir, &stem);
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

fn segment_one(pipeline: &Pipeline, input: &Path, out_dir: &Path, stem: &str) -> Result<serde_json::Value, PipelineError> {
    let started = Instant::now();
    let rgb = frame::read_rgb(input)?;
    let decode_ms = started.elapsed().as_secs_f64() * 1e3;

    let result = pipeline.segment(&rgb)?;

    let started = Instant::now();
    let card = pipeline.segmenter().card();
    output::write_mask(&out_dir.join(format!("{stem}.mask.png")), &result.mask)?;
    let blended = output::overlay(&rgb, &result.mask, &card.colours, 0.45);
    output::write_rgb_png(&out_dir.join(format!("{stem}.overlay.png")), &blended)?;
    let write_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut timings = serde_json::Map::new();
    timings.insert("decode".into(), json!(round3(decode_ms)));
    for (stage, ms) in &result.timings.0 {
        timings.insert((*stage).into(), json!(round3(*ms)));
    }
    timings.insert("write".into(), json!(round3(write_ms)));
    let fractions: serde_json::Map<String, serde_json::Value> = card
        .classes
        .iter()
        .zip(&result.class_fractions)
        .map(|(name, fraction)| (name.clone(), json!(round6(*fraction))))
        .collect();
    Ok(json!({
        "input": input.display().to_string(),
        "mask": format!("{stem}.mask.png"),
        "overlay": format!("{stem}.overlay.png"),
        "width": rgb.width(),
        "height": rgb.height(),
        "model": card.name,
        "mode": pipeline.mode_name(),
        "references": result.references,
        "class_fractions": fractions,
        "timings_ms": timings,
    }))
}

fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}
