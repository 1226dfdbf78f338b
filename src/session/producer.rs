//! The capture thread: reads frames from a source into the queue, skips and
//! counts corrupt frames and timeouts, and reopens a live camera with
//! exponential backoff after errors.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::RecoverySettings;
use crate::capture::queue::FrameQueue;
use crate::capture::{CaptureError, FrameSource};

/// Counters of the capture thread, read by the session.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Frames put into the queue.
    pub frames: AtomicU64,
    /// Frames skipped because they were damaged.
    pub corrupt: AtomicU64,
    /// Reads that timed out.
    pub timeouts: AtomicU64,
    /// Successful reopens of the camera.
    pub reopens: AtomicU64,
    /// The time the thread last made progress, for the service watchdog.
    pub heartbeat: Heartbeat,
}

/// The time of the capture thread's last sign of progress: a frame, a read
/// error or timeout, a step of the reopen backoff, or a step of waiting for
/// room in a full queue. A thread stuck in a device call stops beating.
#[derive(Debug)]
pub struct Heartbeat {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat { epoch: Instant::now(), last_ms: AtomicU64::new(0) }
    }
}

impl Heartbeat {
    /// Records progress now.
    pub fn beat(&self) {
        self.last_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Returns the time since the last beat (or since creation, before the first).
    pub fn age(&self) -> Duration {
        self.epoch.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Allows a log line at most once per interval and counts the ones held back.
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// Creates a limit of one line per `interval`.
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit { interval, last: None, suppressed: 0 }
    }

    /// Returns how many lines were held back since the last allowed one, or
    /// `None` when this line should be held back too.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < self.interval) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Starts the capture thread. It runs until `stop` is set, the queue is
/// closed, or a finite source ends. Then it closes the queue and returns the
/// error that ended the source, if any.
pub fn spawn(
    mut source: Box<dyn FrameSource>,
    queue: Arc<FrameQueue>,
    stop: Arc<AtomicBool>,
    stats: Arc<CaptureStats>,
    recovery: RecoverySettings,
) -> std::io::Result<JoinHandle<Option<CaptureError>>> {
    std::thread::Builder::new().name("capture".into()).spawn(move || {
        let ended = capture_loop(source.as_mut(), &queue, &stop, &stats, &recovery);
        queue.close();
        ended
    })
}

fn capture_loop(
    source: &mut dyn FrameSource,
    queue: &FrameQueue,
    stop: &AtomicBool,
    stats: &CaptureStats,
    recovery: &RecoverySettings,
) -> Option<CaptureError> {
    let name = source.name();
    let interval = Duration::from_secs(recovery.log_interval_s);
    let mut corrupt_log = RateLimit::new(interval);
    let mut timeout_log = RateLimit::new(interval);
    let mut timeouts_in_row = 0u32;

    while !stop.load(Ordering::SeqCst) {
        stats.heartbeat.beat();
        let mut frame = queue.take_spare();
        let read = source.next_frame(&mut frame);
        stats.heartbeat.beat();
        let error = match read {
            Ok(true) => {
                timeouts_in_row = 0;
                stats.frames.fetch_add(1, Ordering::Relaxed);
                // Waiting for room in the queue while inference runs is
                // progress: the camera is fine, the consumer is slow.
                if !queue.push_while_waiting(frame, || stats.heartbeat.beat()) {
                    return None;
                }
                continue;
            }
            Ok(false) => {
                queue.recycle(frame);
                return None;
            }
            Err(error) => {
                queue.recycle(frame);
                error
            }
        };

        if error.is_corrupt_frame() {
            let total = stats.corrupt.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(held_back) = corrupt_log.allow() {
                tracing::warn!(source = %name, total, held_back, %error, "skipped a corrupt frame");
            }
            continue;
        }
        if !source.is_live() {
            return Some(error);
        }
        if let CaptureError::Timeout { .. } = error {
            let total = stats.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
            timeouts_in_row += 1;
            if let Some(held_back) = timeout_log.allow() {
                tracing::warn!(source = %name, total, in_row = timeouts_in_row, held_back, %error, "read timed out");
            }
            if timeouts_in_row < recovery.timeouts_before_reopen {
                continue;
            }
        }
        tracing::warn!(source = %name, %error, "capture failed; reopening the camera");
        timeouts_in_row = 0;
        if !reopen_with_backoff(source, &name, stop, recovery, &stats.heartbeat) {
            return None;
        }
        stats.reopens.fetch_add(1, Ordering::Relaxed);
    }
    None
}

/// Reopens `source` until it works or `stop` is set, waiting
/// `reopen_initial_ms` before the first attempt and doubling the wait after
/// each failure up to `reopen_max_ms`. Returns whether it reopened.
fn reopen_with_backoff(source: &mut dyn FrameSource, name: &str, stop: &AtomicBool, recovery: &RecoverySettings, heartbeat: &Heartbeat) -> bool {
    let mut delay = Duration::from_millis(recovery.reopen_initial_ms);
    let max_delay = Duration::from_millis(recovery.reopen_max_ms);
    for attempt in 1u64.. {
        if !sleep_unless_stopped(delay, stop, heartbeat) {
            return false;
        }
        let reopened = source.reopen();
        heartbeat.beat();
        match reopened {
            Ok(()) => {
                tracing::info!(source = %name, attempt, "camera reopened");
                return true;
            }
            Err(error) => {
                delay = (delay * 2).min(max_delay);
                tracing::warn!(source = %name, attempt, next_attempt_ms = delay.as_millis() as u64, %error, "reopening the camera failed");
            }
        }
    }
    false
}

/// Sleeps for `duration` in short steps, beating `heartbeat` at each; returns
/// `false` as soon as `stop` is set.
fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool, heartbeat: &Heartbeat) -> bool {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        heartbeat.beat();
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::queue::WhenFull;
    use crate::capture::RawFrame;

    /// A live source that fails in a scripted way: each entry is a frame
    /// (`Ok`), or an error to return; reopening fails `reopen_failures` times.
    struct ScriptedSource {
        script: Vec<Result<u32, &'static str>>,
        at: usize,
        reopen_failures: u32,
        reopen_attempts: u32,
    }

    impl FrameSource for ScriptedSource {
        fn next_frame(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError> {
            let Some(step) = self.script.get(self.at).copied() else { return Ok(false) };
            self.at += 1;
            let device = std::path::PathBuf::from("/dev/video9");
            match step {
                Ok(sequence) => {
                    frame.sequence = sequence;
                    Ok(true)
                }
                Err("corrupt") => Err(CaptureError::CorruptFrame { source_name: "test".into(), index: 0, reason: "bad".into() }),
                Err("timeout") => Err(CaptureError::Timeout { device, timeout_ms: 1 }),
                Err(_) => Err(CaptureError::Device { device, operation: "VIDIOC_DQBUF", error: std::io::Error::from_raw_os_error(19) }),
            }
        }

        fn name(&self) -> String {
            "scripted".into()
        }

        fn is_live(&self) -> bool {
            true
        }

        fn reopen(&mut self) -> Result<(), CaptureError> {
            self.reopen_attempts += 1;
            if self.reopen_attempts <= self.reopen_failures {
                let device = std::path::PathBuf::from("/dev/video9");
                return Err(CaptureError::Open { device, error: std::io::Error::from_raw_os_error(2) });
            }
            Ok(())
        }
    }

    #[test]
    fn errors_are_counted_and_recovered() {
        let script = vec![Ok(1), Err("corrupt"), Ok(2), Err("timeout"), Ok(3), Err("gone"), Ok(4)];
        let source = ScriptedSource { script, at: 0, reopen_failures: 2, reopen_attempts: 0 };
        let queue = Arc::new(FrameQueue::new(WhenFull::Wait));
        let stats = Arc::new(CaptureStats::default());
        let recovery = RecoverySettings { reopen_initial_ms: 1, reopen_max_ms: 4, timeouts_before_reopen: 2, log_interval_s: 10 };
        let handle = spawn(Box::new(source), Arc::clone(&queue), Arc::new(AtomicBool::new(false)), Arc::clone(&stats), recovery).unwrap();

        let mut sequences = Vec::new();
        while !queue.is_finished() {
            if let Some(frame) = queue.pop(Duration::from_millis(20)) {
                sequences.push(frame.sequence);
            }
        }
        assert!(handle.join().unwrap().is_none(), "the source ended cleanly");
        assert_eq!(sequences, vec![1, 2, 3, 4], "every good frame arrives");
        assert_eq!(stats.corrupt.load(Ordering::Relaxed), 1, "corrupt frames");
        assert_eq!(stats.timeouts.load(Ordering::Relaxed), 1, "timeouts");
        assert_eq!(stats.reopens.load(Ordering::Relaxed), 1, "one reopen after the device error");
    }

    #[test]
    fn heartbeat_continues_during_backoff() {
        let source = ScriptedSource { script: vec![Err("gone")], at: 0, reopen_failures: u32::MAX, reopen_attempts: 0 };
        let queue = Arc::new(FrameQueue::new(WhenFull::DropOldest));
        let stats = Arc::new(CaptureStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let recovery = RecoverySettings { reopen_initial_ms: 300, reopen_max_ms: 300, timeouts_before_reopen: 1, log_interval_s: 10 };
        let handle = spawn(Box::new(source), Arc::clone(&queue), Arc::clone(&stop), Arc::clone(&stats), recovery).unwrap();

        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(70));
            let age = stats.heartbeat.age();
            assert!(age < Duration::from_millis(200), "heartbeat {age:?} old while the camera is reopened");
        }
        stop.store(true, Ordering::SeqCst);
        assert!(handle.join().unwrap().is_none(), "the thread stops cleanly");
        assert_eq!(stats.reopens.load(Ordering::Relaxed), 0, "no reopen succeeded");
    }

    /// An endless live source whose frames are never taken.
    struct EndlessSource;

    impl FrameSource for EndlessSource {
        fn next_frame(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError> {
            frame.sequence = frame.sequence.wrapping_add(1);
            Ok(true)
        }

        fn name(&self) -> String {
            "endless".into()
        }

        fn is_live(&self) -> bool {
            false
        }

        fn reopen(&mut self) -> Result<(), CaptureError> {
            Ok(())
        }
    }

    #[test]
    fn heartbeat_continues_while_waiting_for_queue_space() {
        // A replay waits for inference instead of dropping frames; a long
        // inference must not look like a stalled capture thread.
        let queue = Arc::new(FrameQueue::new(WhenFull::Wait));
        let stats = Arc::new(CaptureStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let recovery = RecoverySettings { reopen_initial_ms: 1, reopen_max_ms: 1, timeouts_before_reopen: 1, log_interval_s: 10 };
        let handle = spawn(Box::new(EndlessSource), Arc::clone(&queue), Arc::clone(&stop), Arc::clone(&stats), recovery).unwrap();

        for _ in 0..8 {
            std::thread::sleep(Duration::from_millis(70));
            let age = stats.heartbeat.age();
            assert!(age < Duration::from_millis(200), "heartbeat {age:?} old while the queue is full");
        }
        assert_eq!(stats.frames.load(Ordering::Relaxed), crate::capture::queue::QUEUE_FRAMES as u64 + 1, "the thread waits after filling the queue");
        stop.store(true, Ordering::SeqCst);
        queue.close();
        assert!(handle.join().unwrap().is_none(), "the thread stops cleanly");
    }

    #[test]
    fn heartbeat_age_grows_without_beats() {
        let heartbeat = Heartbeat::default();
        heartbeat.beat();
        std::thread::sleep(Duration::from_millis(60));
        assert!(heartbeat.age() >= Duration::from_millis(50), "age {:?} after 60 ms", heartbeat.age());
        heartbeat.beat();
        assert!(heartbeat.age() < Duration::from_millis(50), "age {:?} right after a beat", heartbeat.age());
    }

    #[test]
    fn rate_limit_counts_held_back_lines() {
        let mut limit = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0), "first line passes");
        assert_eq!(limit.allow(), None, "second is held back");
        assert_eq!(limit.allow(), None, "third is held back");
        limit.last = Some(Instant::now() - Duration::from_secs(7200));
        assert_eq!(limit.allow(), Some(2), "the next allowed line reports two held back");
    }
}
