//! `throatseg run` and `throatseg record`: configuration, frame source,
//! signal handling, the summary and the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use throatseg::capture::{unix_time_us, CameraSettings, DeviceSource, FrameSource, RecordWriter, ReplaySource};
use throatseg::session::{self, Controls, Notifier, RecordLimits, RunConfig, RunOptions, SessionReport};

use super::load_pipeline;
use crate::{PipelineArgs, RecordArgs, RunArgs};

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = RunConfig::load(&args.config)?;
    if let Some(out) = args.out {
        config.output.dir = out;
    }
    let source = open_source(args.source.as_deref(), &config.camera)?;
    let settings = &config.pipeline;
    let pipeline = load_pipeline(&PipelineArgs {
        mode: settings.mode,
        reference: settings.reference.clone(),
        model: settings.model.clone(),
        embedder: settings.embedder.clone(),
        refs: settings.refs.clone(),
        colour_space: settings.colour_space,
    })?;

    let controls = Controls::new();
    controls.stop_on_signals()?;
    if config.trigger.signal {
        controls.take_on_sigusr1()?;
    }
    if let Some(fifo) = &config.trigger.fifo {
        controls.take_on_fifo(fifo)?;
    }
    if config.trigger.every_n_frames == 0 && !config.trigger.signal && config.trigger.fifo.is_none() {
        tracing::warn!(config = %args.config.display(), "no trigger is configured; only frames marked as captures in a replay are segmented");
    }

    let mut recorder = match &args.record {
        Some(path) => Some(RecordWriter::create(path, &source.name(), unix_time_us())?),
        None => None,
    };
    // Under systemd (Type=notify) the service counts as started once the
    // pipeline is loaded and the source exists; the camera itself opens on
    // the first read and is reopened with backoff, which the watchdog covers.
    let notifier = Notifier::from_env()?;
    if let Some(notifier) = &notifier {
        notifier.ready()?;
        let watchdog_ms = notifier.watchdog_timeout().map(|timeout| timeout.as_millis() as u64);
        tracing::info!(?watchdog_ms, "notified systemd that the service is ready");
    }
    let options = RunOptions { max_captures: args.max_captures, record: recorder.as_mut(), notifier: notifier.as_ref() };
    let report = session::run(&pipeline, source, &config, &controls, options)
        .with_context(|| format!("session writing to {} stopped", config.output.dir.display()))?;
    if let Some(recorder) = recorder {
        let frames = recorder.finish()?;
        eprintln!("recorded {frames} frames to {}", args.record.unwrap_or_default().display());
    }

    print_summary(&report, args.json)?;
    let failed = report.failed > 0 || report.source_error.is_some();
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let mut config_camera = CameraSettings::default();
    let mut recovery = session::config::RecoverySettings::default();
    if let Some(path) = &args.config {
        let config = RunConfig::load(path)?;
        config_camera = config.camera;
        recovery = config.recovery;
    }
    if let Some(device) = &args.device {
        config_camera.device = device.clone();
    }
    let mut source = DeviceSource::new(config_camera)?;
    // Fail at once when the camera is missing; reopening is for later errors.
    source.open()?;

    let controls = Controls::new();
    controls.stop_on_signals()?;
    if let Some(seconds) = args.seconds {
        if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
            anyhow::bail!("--seconds {seconds} is not a duration; give a number of seconds above 0");
        }
    }
    let limits = RecordLimits { frames: args.frames, duration: args.seconds.map(Duration::from_secs_f64) };
    let (report, frames) = session::record(Box::new(source), &args.out, limits, &recovery, &controls)?;
    eprintln!("recorded {frames} frames to {}", args.out.display());
    print_summary(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the frame source named by `--source`, or the configured camera.
fn open_source(source: Option<&str>, camera: &CameraSettings) -> anyhow::Result<Box<dyn FrameSource>> {
    let Some(source) = source else {
        return Ok(Box::new(DeviceSource::new(camera.clone())?));
    };
    if let Some(path) = session::replay_path(source) {
        return Ok(Box::new(ReplaySource::open(&path)?));
    }
    if let Some(device) = source.strip_prefix("device:") {
        let settings = CameraSettings { device: PathBuf::from(device), ..camera.clone() };
        return Ok(Box::new(DeviceSource::new(settings)?));
    }
    anyhow::bail!("--source {source:?} is not a source; use device:/dev/videoN or replay:FILE")
}

/// Prints the session's counters to stderr, or as one JSON object to stdout.
fn print_summary(report: &SessionReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    eprintln!(
        "{} frames processed of {} captured ({} dropped, {} corrupt, {} timeouts, {} reopens); {} captures: {} segmented, {} rejected, {} failed",
        report.frames_processed,
        report.frames_captured,
        report.frames_dropped,
        report.frames_corrupt,
        report.timeouts,
        report.reopens,
        report.captures,
        report.segmented,
        report.rejected,
        report.failed
    );
    if let Some(memory) = &report.memory_kb {
        eprintln!(
            "resident memory: {} kB at the first sample, {} kB at the last, {} kB at most ({} samples, one per 256 frames)",
            memory.first, memory.last, memory.max, memory.samples
        );
    }
    if let Some(error) = &report.source_error {
        eprintln!("the source ended early: {error}");
    }
    Ok(())
}
