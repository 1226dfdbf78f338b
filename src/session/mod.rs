//! Unattended capture sessions. Frames flow from a camera or a record file
//! through the bounded queue to the session loop. At each trigger the
//! sharpest frame of the burst is rejected with a reason, or segmented and
//! written as `segment` writes an image. `record` stores frames instead.

pub mod burst;
pub mod config;
pub mod controls;
pub mod notify;
pub mod producer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde_json::json;

use crate::capture::quality::QualityMeter;
use crate::capture::queue::{FrameQueue, WhenFull};
use crate::capture::{CaptureError, FrameSource, RawFrame, RecordWriter, FLAG_TRIGGER};
use crate::output::ResultsLog;
use crate::pipeline::{self, Pipeline, PipelineError};

use burst::Burst;
pub use config::{ConfigError, RunConfig};
pub use controls::Controls;
pub use notify::{Notifier, NotifyError};
use producer::{CaptureStats, RateLimit};

/// Errors that stop a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Results could not be written.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A record file could not be written.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Signal handlers or the control FIFO could not be set up.
    #[error("{0}")]
    Controls(String),
    /// The capture thread could not be started.
    #[error("cannot start the capture thread: {0}")]
    Thread(std::io::Error),
}

/// How often records are synced to storage while recording.
const RECORD_SYNC_INTERVAL: Duration = Duration::from_secs(2);

/// Sampling interval of resident memory, in frames.
const MEMORY_SAMPLE_FRAMES: u64 = 256;

/// How long the session waits for a frame before checking its flags again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Counters of a finished session.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SessionReport {
    /// Frames the capture thread delivered.
    pub frames_captured: u64,
    /// Frames that reached the session loop (captured minus dropped).
    pub frames_processed: u64,
    /// Frames dropped because inference was behind.
    pub frames_dropped: u64,
    /// Damaged frames skipped.
    pub frames_corrupt: u64,
    /// Read timeouts.
    pub timeouts: u64,
    /// Times the camera was reopened.
    pub reopens: u64,
    /// Captures taken (segmented, rejected or failed).
    pub captures: u64,
    /// Captures segmented and written.
    pub segmented: u64,
    /// Captures rejected for exposure or sharpness.
    pub rejected: u64,
    /// Captures that failed (no readable frame, or the pipeline failed).
    pub failed: u64,
    /// Resident memory samples, one every 256 frames. It is `None` where /proc
    /// is unavailable or fewer than 256 frames arrived.
    pub memory_kb: Option<MemoryReport>,
    /// The error that ended a replay early, if any.
    pub source_error: Option<String>,
}

/// Resident memory samples of a session, in kB.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct MemoryReport {
    /// First sample, taken after 256 frames.
    pub first: u64,
    /// Last sample.
    pub last: u64,
    /// Largest sample.
    pub max: u64,
    /// Samples taken.
    pub samples: u64,
}

impl MemoryReport {
    fn add(report: &mut Option<MemoryReport>, kb: u64) {
        let entry = report.get_or_insert(MemoryReport { first: kb, last: kb, max: kb, samples: 0 });
        entry.last = kb;
        entry.max = entry.max.max(kb);
        entry.samples += 1;
    }
}

/// Returns this process's resident memory (VmRSS) in kB, read from /proc.
pub fn resident_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The capture thread and the queue it fills.
struct Capture {
    queue: Arc<FrameQueue>,
    stop: Arc<AtomicBool>,
    stats: Arc<CaptureStats>,
    thread: std::thread::JoinHandle<Option<CaptureError>>,
}

impl Capture {
    fn start(source: Box<dyn FrameSource>, recovery: &config::RecoverySettings) -> Result<Capture, SessionError> {
        let when_full = if source.is_live() { WhenFull::DropOldest } else { WhenFull::Wait };
        let queue = Arc::new(FrameQueue::new(when_full));
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(CaptureStats::default());
        let thread = producer::spawn(source, Arc::clone(&queue), Arc::clone(&stop), Arc::clone(&stats), recovery.clone())
            .map_err(SessionError::Thread)?;
        Ok(Capture { queue, stop, stats, thread })
    }

    /// Stops the capture thread, waits for it and fills the capture counters of `report`.
    fn finish(self, report: &mut SessionReport) {
        self.stop.store(true, Ordering::SeqCst);
        self.queue.close();
        let ended = self.thread.join().unwrap_or_else(|_| {
            tracing::error!("the capture thread panicked");
            None
        });
        report.frames_captured = self.stats.frames.load(Ordering::Relaxed);
        report.frames_dropped = self.queue.dropped();
        report.frames_corrupt = self.stats.corrupt.load(Ordering::Relaxed);
        report.timeouts = self.stats.timeouts.load(Ordering::Relaxed);
        report.reopens = self.stats.reopens.load(Ordering::Relaxed);
        report.source_error = ended.map(|error| error.to_string());
    }
}

/// Options of [`run`] besides the configuration.
pub struct RunOptions<'a> {
    /// Stop after this many captures.
    pub max_captures: Option<u64>,
    /// Record every processed frame, with trigger marks, to this writer.
    pub record: Option<&'a mut RecordWriter>,
    /// Send systemd watchdog keep-alives and `STOPPING=1` through this notifier.
    pub notifier: Option<&'a Notifier>,
}

/// Sends watchdog keep-alives from the session loop while the capture
/// thread makes progress. The loop itself being alive is the other half of
/// health: a loop stuck in inference or output sends nothing either.
struct Watchdog<'a> {
    notifier: &'a Notifier,
    /// Maximum time the capture thread may go without progress. A read
    /// blocks for up to the camera's read timeout, so that is allowed on top
    /// of the watchdog timeout.
    stall_limit: Duration,
    error_log: RateLimit,
}

impl<'a> Watchdog<'a> {
    fn new(notifier: &'a Notifier, read_timeout: Duration, log_interval: Duration) -> Option<Watchdog<'a>> {
        let timeout = notifier.watchdog_timeout()?;
        Some(Watchdog { notifier, stall_limit: timeout + read_timeout, error_log: RateLimit::new(log_interval) })
    }

    /// Sends a keep-alive if one is due and the capture thread's last
    /// progress is at most `stall_limit` old.
    fn keep_alive(&mut self, capture_progress_age: Duration) {
        if capture_progress_age > self.stall_limit {
            if let Some(held_back) = self.error_log.allow() {
                tracing::error!(
                    stalled_ms = capture_progress_age.as_millis() as u64,
                    held_back,
                    "the capture thread has made no progress; withholding watchdog keep-alives so that systemd restarts the service"
                );
            }
            return;
        }
        if let Err(error) = self.notifier.keep_alive_if_due() {
            if let Some(held_back) = self.error_log.allow() {
                tracing::warn!(%error, held_back, "sending the watchdog keep-alive failed");
            }
        }
    }
}

/// Runs a capture session until the source ends, `max_captures` captures
/// were taken, or a shutdown is requested; the capture in flight is always
/// finished. Results go to `config.output.dir`.
pub fn run(pipeline: &Pipeline, source: Box<dyn FrameSource>, config: &RunConfig, controls: &Controls, options: RunOptions) -> Result<SessionReport, SessionError> {
    let out_dir = config.output.dir.as_path();
    pipeline::prepare_out_dir(out_dir)?;
    let mut log = ResultsLog::open(&out_dir.join("results.jsonl")).map_err(PipelineError::from)?;
    let source_name = source.name();
    tracing::info!(source = %source_name, out = %out_dir.display(), mode = pipeline.mode_name(), "session started");

    let capture = Capture::start(source, &config.recovery)?;
    let mut taker = CaptureTaker::new(pipeline, config, out_dir);
    let mut burst = Burst::new(config.trigger.burst);
    let mut report = SessionReport::default();
    let mut record = options.record;
    let mut last_sync = Instant::now();
    let read_timeout = Duration::from_millis(config.camera.read_timeout_ms);
    let log_interval = Duration::from_secs(config.recovery.log_interval_s);
    let mut watchdog = options.notifier.and_then(|notifier| Watchdog::new(notifier, read_timeout, log_interval));
    let result = loop {
        if controls.shutdown_requested() {
            tracing::info!("shutdown requested");
            if let Some(Err(error)) = options.notifier.map(Notifier::stopping) {
                tracing::warn!(%error, "sending STOPPING=1 to systemd failed");
            }
            break Ok(());
        }
        if let Some(watchdog) = watchdog.as_mut() {
            watchdog.keep_alive(capture.stats.heartbeat.age());
        }
        if options.max_captures.is_some_and(|max| report.captures >= max) {
            break Ok(());
        }
        let Some(mut frame) = capture.queue.pop(POLL_INTERVAL) else {
            if capture.queue.is_finished() {
                break Ok(());
            }
            continue;
        };
        report.frames_processed += 1;

        // The request is cleared even when another trigger fires at this
        // frame, so one request never takes two captures.
        let requested = controls.take_requested();
        let every_n = config.trigger.every_n_frames;
        let triggered = requested || frame.flags & FLAG_TRIGGER != 0 || (every_n > 0 && report.frames_processed % every_n == 0);
        frame.flags = if triggered { frame.flags | FLAG_TRIGGER } else { frame.flags & !FLAG_TRIGGER };
        burst.push(&frame);
        let written = record.as_deref_mut().map(|writer| writer.write(&frame)).transpose();
        capture.queue.recycle(frame);
        if let Err(error) = written {
            break Err(error.into());
        }
        if let Some(writer) = record.as_deref_mut() {
            if last_sync.elapsed() >= RECORD_SYNC_INTERVAL {
                if let Err(error) = writer.sync() {
                    break Err(error.into());
                }
                last_sync = Instant::now();
            }
        }
        if report.frames_processed % MEMORY_SAMPLE_FRAMES == 0 {
            if let Some(kb) = resident_kb() {
                tracing::debug!(frames = report.frames_processed, resident_kb = kb, "memory");
                MemoryReport::add(&mut report.memory_kb, kb);
            }
        }

        if triggered {
            report.captures += 1;
            match taker.take(&burst, report.captures, &mut log) {
                Ok(Outcome::Segmented) => report.segmented += 1,
                Ok(Outcome::Rejected) => report.rejected += 1,
                Ok(Outcome::Failed) => report.failed += 1,
                Err(error) => break Err(error),
            }
        }
    };

    capture.finish(&mut report);
    if let Some(writer) = record {
        writer.sync()?;
    }
    tracing::info!(source = %source_name, frames = report.frames_processed, captures = report.captures, "session stopped");
    result.map(|()| report)
}

/// Result of one capture.
enum Outcome {
    Segmented,
    Rejected,
    Failed,
}

/// Chooses, checks, segments and writes captures.
struct CaptureTaker<'a> {
    pipeline: &'a Pipeline,
    config: &'a RunConfig,
    out_dir: &'a Path,
    meter: QualityMeter,
    scratch: RgbImage,
    used: HashSet<String>,
}

impl<'a> CaptureTaker<'a> {
    fn new(pipeline: &'a Pipeline, config: &'a RunConfig, out_dir: &'a Path) -> CaptureTaker<'a> {
        CaptureTaker { pipeline, config, out_dir, meter: QualityMeter::default(), scratch: RgbImage::new(1, 1), used: HashSet::new() }
    }

    /// Takes capture number `number` from the burst and appends its line to
    /// `log`. Only a failure to write results is an error; a bad frame or a
    /// failed segmentation is reported in the line.
    fn take(&mut self, burst: &Burst, number: u64, log: &mut ResultsLog) -> Result<Outcome, SessionError> {
        let config = self.config;
        let limits = &config.quality;
        let chosen = burst.choose_sharpest(&mut self.meter, limits.overexposed_level, &mut self.scratch);
        let (choice, frame) = match chosen {
            Ok(chosen) => chosen,
            Err(reason) => {
                let newest = burst.newest().cloned().unwrap_or_default();
                let mut line = capture_fields(number, &newest);
                line.insert("error".into(), json!(format!("no frame of the burst could be converted: {reason}")));
                tracing::error!(capture = number, %reason, "capture failed");
                log.append(&serde_json::Value::Object(line)).map_err(PipelineError::from)?;
                return Ok(Outcome::Failed);
            }
        };

        let mut line = capture_fields(number, frame);
        line.insert(
            "burst".into(),
            json!({ "frames": choice.compared, "chosen": choice.position, "unreadable": choice.unreadable }),
        );
        line.insert(
            "quality".into(),
            json!({
                "mean_luma": round3(choice.quality.mean_luma),
                "overexposed_fraction": round6(choice.quality.overexposed_fraction),
                "sharpness": round3(choice.quality.sharpness),
            }),
        );

        let outcome = if let Some(reason) = limits.rejection(&choice.quality) {
            tracing::warn!(capture = number, %reason, "capture rejected; retake");
            line.insert("rejected".into(), json!(reason));
            Outcome::Rejected
        } else {
            match self.segment(&choice.rgb, frame) {
                Ok(fields) => {
                    line.extend(fields);
                    Outcome::Segmented
                }
                Err(error @ PipelineError::Output(_)) => return Err(error.into()),
                Err(error) => {
                    tracing::error!(capture = number, %error, "segmentation failed");
                    line.insert("error".into(), json!(error.to_string()));
                    Outcome::Failed
                }
            }
        };
        // The chosen image becomes the next scratch buffer.
        self.scratch = choice.rgb;
        log.append(&serde_json::Value::Object(line)).map_err(PipelineError::from)?;
        Ok(outcome)
    }

    fn segment(&mut self, rgb: &RgbImage, frame: &RawFrame) -> Result<serde_json::Map<String, serde_json::Value>, PipelineError> {
        let result = self.pipeline.segment(rgb)?;
        let started = Instant::now();
        let stem = format!("capture-{}-{:06}", compact_utc(frame.wall_clock_us), frame.sequence);
        let mut fields = pipeline::publish_segmentation(self.pipeline, rgb, &result, &stem, self.out_dir, &mut self.used)?;
        if self.config.output.timings {
            let write_ms = started.elapsed().as_secs_f64() * 1e3;
            fields.insert("timings_ms".into(), pipeline::timings_json(0.0, &result.timings, write_ms));
        }
        Ok(fields)
    }
}

/// Returns the fields that identify a capture and its frame. They come from
/// the frame's recorded metadata, never from the clock, so a replay writes
/// the same line as the live run.
fn capture_fields(number: u64, frame: &RawFrame) -> serde_json::Map<String, serde_json::Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("capture".into(), json!(number));
    fields.insert(
        "frame".into(),
        json!({
            "sequence": frame.sequence,
            "timestamp_us": frame.timestamp_us,
            "time": iso_utc(frame.wall_clock_us),
            "format": frame.format.name(),
            "width": frame.width,
            "height": frame.height,
        }),
    );
    fields
}

fn round3(value: f64) -> f64 {
    (value * 1e3).round() / 1e3
}

fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Splits microseconds since the Unix epoch into a UTC civil date and time:
/// (year, month, day, hour, minute, second, microsecond).
fn civil_utc(unix_us: u64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let seconds = (unix_us / 1_000_000) as i64;
    let micros = (unix_us % 1_000_000) as u32;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400) as u32;
    // Days to a proleptic Gregorian date, after Howard Hinnant's
    // "chrono-Compatible Low-Level Date Algorithms" (days_from_civil inverse).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = (if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 }) as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day, of_day / 3600, of_day / 60 % 60, of_day % 60, micros)
}

/// Formats microseconds since the Unix epoch as RFC 3339 UTC with microseconds.
pub fn iso_utc(unix_us: u64) -> String {
    let (year, month, day, hour, minute, second, micros) = civil_utc(unix_us);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{micros:06}Z")
}

/// Formats microseconds since the Unix epoch as a file-name stamp, `YYYYMMDDTHHMMSS.mmmZ`.
fn compact_utc(unix_us: u64) -> String {
    let (year, month, day, hour, minute, second, micros) = civil_utc(unix_us);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}.{:03}Z", micros / 1000)
}

/// When `record` stops.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecordLimits {
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this much time.
    pub duration: Option<Duration>,
}

/// Writes frames from `source` to `path` until a limit is reached, the
/// source ends or a shutdown is requested. Returns the report and the number
/// of frames written.
pub fn record(
    source: Box<dyn FrameSource>,
    path: &Path,
    limits: RecordLimits,
    recovery: &config::RecoverySettings,
    controls: &Controls,
) -> Result<(SessionReport, u64), SessionError> {
    let mut writer = RecordWriter::create(path, &source.name(), crate::capture::unix_time_us())?;
    let source_name = source.name();
    tracing::info!(source = %source_name, record = %path.display(), "recording started");
    let capture = Capture::start(source, recovery)?;
    let started = Instant::now();
    let mut last_sync = Instant::now();
    let mut report = SessionReport::default();
    let result = loop {
        if controls.shutdown_requested()
            || limits.frames.is_some_and(|max| writer.frames() >= max)
            || limits.duration.is_some_and(|max| started.elapsed() >= max)
        {
            break Ok(());
        }
        let Some(frame) = capture.queue.pop(POLL_INTERVAL) else {
            if capture.queue.is_finished() {
                break Ok(());
            }
            continue;
        };
        report.frames_processed += 1;
        let written = writer.write(&frame);
        capture.queue.recycle(frame);
        if let Err(error) = written {
            break Err(error);
        }
        if last_sync.elapsed() >= RECORD_SYNC_INTERVAL {
            if let Err(error) = writer.sync() {
                break Err(error);
            }
            last_sync = Instant::now();
        }
    };
    capture.finish(&mut report);
    result?;
    let frames = writer.finish()?;
    tracing::info!(source = %source_name, frames, "recording stopped");
    Ok((report, frames))
}

/// Returns the record-file path a `--source` value names, if it is a replay.
pub fn replay_path(source: &str) -> Option<PathBuf> {
    source.strip_prefix("replay:").map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.000000Z", "epoch");
        // 2000-02-29 12:34:56.789012 UTC: 951827696 s.
        assert_eq!(iso_utc(951_827_696_789_012), "2000-02-29T12:34:56.789012Z", "leap day");
        // 2026-12-31 23:59:59 UTC: 1798761599 s.
        assert_eq!(iso_utc(1_798_761_599_000_000), "2026-12-31T23:59:59.000000Z", "end of a year");
        assert_eq!(compact_utc(951_827_696_789_012), "20000229T123456.789Z", "file-name stamp");
    }

    #[test]
    fn watchdog_withheld_when_capture_stalls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        let notifier = Notifier::from_values(Some(path.as_os_str()), Some("1000000"), None, 1).unwrap().unwrap();
        let mut watchdog = Watchdog::new(&notifier, Duration::from_millis(500), Duration::from_secs(10)).expect("watchdog on");
        let mut buffer = [0u8; 64];

        watchdog.keep_alive(Duration::from_millis(1600));
        assert!(socket.recv(&mut buffer).is_err(), "no keep-alive while the capture thread is stalled past 1.5 s");
        watchdog.keep_alive(Duration::from_millis(1400));
        let length = socket.recv(&mut buffer).expect("a keep-alive once the capture thread is within the limit");
        assert_eq!(&buffer[..length], b"WATCHDOG=1", "keep-alive datagram");
    }

    #[test]
    fn watchdog_off_without_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let _socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::from_values(Some(path.as_os_str()), None, None, 1).unwrap().unwrap();
        assert!(Watchdog::new(&notifier, Duration::from_millis(500), Duration::from_secs(10)).is_none(), "no WATCHDOG_USEC, no watchdog");
    }

    #[test]
    fn resident_memory_is_read() {
        let kb = resident_kb().expect("VmRSS in /proc/self/status");
        assert!(kb > 100, "a running test uses more than 100 kB: {kb}");
    }
}
