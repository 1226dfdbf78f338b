//! `throatseg segment`.

use std::process::ExitCode;

use anyhow::Context;
use throatseg::models::{bundled, MODEL_DIR_ENV};
use throatseg::pipeline::{collect_inputs, segment_files};

use super::{load_pipeline, progress_bar};
use crate::SegmentArgs;

pub fn segment(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    let pipeline = load_pipeline(&args.pipeline)?;

    let inputs = collect_inputs(&args.inputs);
    for (path, reason) in &inputs.missing {
        eprintln!("{}: {reason}", path.display());
    }
    if inputs.skipped > 0 {
        eprintln!("skipped {} files without a .jpg, .jpeg or .png extension", inputs.skipped);
    }
    tracing::info!(files = inputs.files.len(), mode = pipeline.mode_name(), "segmenting");

    let total = inputs.files.len() + inputs.missing.len();
    if total == 0 {
        eprintln!("no .jpg, .jpeg or .png images found in {:?}", args.inputs);
        return Ok(ExitCode::from(1));
    }

    let bar = progress_bar(inputs.files.len(), "images");
    let summary = segment_files(&pipeline, &inputs, &args.out, |_, error| {
        if let Some(error) = error {
            bar.suspend(|| eprintln!("{error}"));
        }
        bar.inc(1);
    })
    .with_context(|| format!("cannot write results to {}", args.out.display()))?;
    bar.finish_and_clear();

    eprintln!(
        "segmented {} of {total} inputs into {}{}",
        summary.succeeded,
        args.out.display(),
        if summary.failed > 0 { format!("; {} failed", summary.failed) } else { String::new() }
    );
    Ok(if summary.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Returns a bundled file, or an error that names where it was looked for and
/// how to choose another file.
pub fn bundled_or_hint(file: &str, option: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = bundled(file);
    if !path.exists() {
        anyhow::bail!(
            "bundled file {} not found; set {MODEL_DIR_ENV} to the folder holding it or pass {option}",
            path.display()
        );
    }
    Ok(path)
}
