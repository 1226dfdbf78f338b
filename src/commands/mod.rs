//! The work behind each subcommand: configuration, progress and exit codes.

mod bench;
mod eval;
mod model;
mod refs;
mod run;
mod segment;

use std::io::IsTerminal;

use anyhow::Context;
use throatseg::models::{bundled, EMBEDDER_FILE, REFERENCES_FILE, SEGMENTER_FILE};
use throatseg::pipeline::{Pipeline, PipelineConfig};

use crate::PipelineArgs;

pub use bench::bench;
pub use eval::eval;
pub use model::model_info;
pub use refs::{refs_build, refs_info};
pub use run::{record, run};
pub use segment::segment;

/// Sets up `tracing` on stderr at warn, or lower with `-v`; RUST_LOG overrides.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("throatseg={level},warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Creates a progress bar on stderr; it draws nothing when stderr is not a terminal.
pub fn progress_bar(length: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length as u64);
    let template = format!("{{elapsed_precise}} [{{wide_bar}}] {{pos}}/{{len}} {what} ({{eta}} left)");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Loads the pipeline from the shared options, with the bundled files as defaults.
pub fn load_pipeline(args: &PipelineArgs) -> anyhow::Result<Pipeline> {
    let model = args.model.clone().map_or_else(|| segment::bundled_or_hint(SEGMENTER_FILE, "--model"), Ok)?;
    let embedder = args.embedder.clone().unwrap_or_else(|| bundled(EMBEDDER_FILE));
    let references = args.refs.clone().unwrap_or_else(|| bundled(REFERENCES_FILE));
    let config = PipelineConfig {
        model: &model,
        embedder: &embedder,
        references: &references,
        mode: args.mode,
        fixed_reference: args.reference.as_deref(),
        colour_space: args.colour_space,
    };
    Pipeline::load(&config).context("cannot set up the pipeline")
}
