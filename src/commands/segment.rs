//! `throatseg segment`.

use std::process::ExitCode;

use anyhow::Context;
use throatseg::models::{bundled, EMBEDDER_FILE, REFERENCES_FILE, SEGMENTER_FILE};
use throatseg::pipeline::{collect_inputs, segment_files, Pipeline, PipelineConfig};

use super::progress_bar;
use crate::SegmentArgs;

pub fn segment(args: SegmentArgs) -> anyhow::Result<ExitCode> {
    let model = args.model.unwrap_or_else(|| bundled(SEGMENTER_FILE));
    let embedder = args.embedder.unwrap_or_else(|| bundled(EMBEDDER_FILE));
    let references = args.refs.unwrap_or_else(|| bundled(REFERENCES_FILE));
    let config = PipelineConfig {
        model: &model,
        embedder: &embedder,
        references: &references,
        mode: args.mode,
        fixed_reference: args.reference.as_deref(),
    };
    let pipeline = Pipeline::load(&config).context("cannot set up the pipeline")?;

    let inputs = collect_inputs(&args.inputs);
    for (path, reason) in &inputs.missing {
        eprintln!("{}: {reason}", path.display());
    }
    if inputs.skipped > 0 {
        eprintln!("skipped {} files without a .jpg, .jpeg or .png extension", inputs.skipped);
    }
    tracing::info!(files = inputs.files.len(), mode = pipeline.mode_name(), "segmenting");

    let bar = progress_bar(inputs.files.len(), "images");
    let summary = segment_files(&pipeline, &inputs.files, &args.out, |_, error| {
        if let Some(error) = error {
            bar.suspend(|| eprintln!("{error}"));
        }
        bar.inc(1);
    })
    .with_context(|| format!("cannot write results to {}", args.out.display()))?;
    bar.finish_and_clear();

    let failed = summary.failed + inputs.missing.len();
    eprintln!(
        "segmented {} of {} images into {}{}",
        summary.succeeded,
        inputs.files.len(),
        args.out.display(),
        if failed > 0 { format!(", {failed} failed") } else { String::new() }
    );
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
