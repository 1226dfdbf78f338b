//! Controls of a running session: SIGTERM and SIGINT stop it, and SIGUSR1 or a
//! `take` line on the control FIFO requests a capture.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::SessionError;

/// Flags set by signals and the control FIFO, read by the session loop.
#[derive(Clone, Default)]
pub struct Controls {
    shutdown: Arc<AtomicBool>,
    take: Arc<AtomicBool>,
}

impl Controls {
    /// Creates flags that nothing sets yet (for tests and embedding).
    pub fn new() -> Controls {
        Controls::default()
    }

    /// Makes SIGTERM and SIGINT request a shutdown. A second signal of either
    /// kind ends the process at once with status 1, for a session stuck in a
    /// device call.
    pub fn stop_on_signals(&self) -> Result<(), SessionError> {
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&self.shutdown))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&self.shutdown)))
                .map_err(|error| SessionError::Controls(format!("cannot install the handler for signal {signal}: {error}")))?;
        }
        Ok(())
    }

    /// Makes SIGUSR1 request a capture.
    pub fn take_on_sigusr1(&self) -> Result<(), SessionError> {
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&self.take))
            .map(|_| ())
            .map_err(|error| SessionError::Controls(format!("cannot install the SIGUSR1 handler: {error}")))
    }

    /// Opens (creating it if missing) the control FIFO at `path` and starts a
    /// thread that requests a capture for each `take` line written to it.
    pub fn take_on_fifo(&self, path: &Path) -> Result<(), SessionError> {
        let fifo = open_fifo(path)?;
        let take = Arc::clone(&self.take);
        let path = path.to_owned();
        std::thread::Builder::new()
            .name("control-fifo".into())
            .spawn(move || read_commands(fifo, &path, &take))
            .map_err(|error| SessionError::Controls(format!("cannot start the control FIFO thread: {error}")))?;
        Ok(())
    }

    /// Requests a capture, as SIGUSR1 does.
    pub fn request_capture(&self) {
        self.take.store(true, Ordering::SeqCst);
    }

    /// Requests a shutdown, as SIGTERM does.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
    }

    /// Returns whether a capture was requested since the last call, and clears the request.
    pub fn take_requested(&self) -> bool {
        self.take.swap(false, Ordering::SeqCst)
    }

    /// Returns whether a shutdown was requested.
    pub fn shutdown_requested(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }
}

fn controls_error(path: &Path, reason: impl std::fmt::Display) -> SessionError {
    SessionError::Controls(format!("{}: {reason}", path.display()))
}

fn open_fifo(path: &Path) -> Result<File, SessionError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => {}
        Ok(_) => return Err(controls_error(path, "exists and is not a FIFO; remove it or set another trigger.fifo")),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => make_fifo(path)?,
        Err(error) => return Err(controls_error(path, error)),
    }
    // Opened for reading and writing, so the FIFO stays open (and reads
    // block instead of returning end-of-file) while no writer has it open.
    File::options().read(true).write(true).open(path).map_err(|error| controls_error(path, format!("cannot open the FIFO: {error}")))
}

fn make_fifo(path: &Path) -> Result<(), SessionError> {
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| controls_error(path, "path contains a NUL byte"))?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call, and
    // mkfifo only reads it. Mode 0660 lets the service's group write commands.
    let result = unsafe { libc::mkfifo(name.as_ptr(), 0o660) };
    if result != 0 {
        let error = std::io::Error::last_os_error();
        return Err(controls_error(path, format!("cannot create the FIFO: {error}; create its folder or set another trigger.fifo")));
    }
    tracing::info!(fifo = %path.display(), "created the control FIFO");
    Ok(())
}

fn read_commands(fifo: File, path: &Path, take: &AtomicBool) {
    for line in BufReader::new(fifo).lines() {
        match line {
            Ok(line) if line.trim() == "take" => {
                tracing::debug!(fifo = %path.display(), "capture requested");
                take.store(true, Ordering::SeqCst);
            }
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => tracing::warn!(fifo = %path.display(), command = %line.trim(), "ignored unknown command; the only command is `take`"),
            Err(error) => {
                tracing::error!(fifo = %path.display(), %error, "reading the control FIFO failed; FIFO captures are off until restart");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn fifo_take_requests_capture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        let controls = Controls::new();
        controls.take_on_fifo(&path).unwrap();
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_fifo(), "the FIFO is created");

        let mut writer = File::options().write(true).open(&path).unwrap();
        writer.write_all(b"hello\ntake\n").unwrap();
        drop(writer);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !controls.take_requested() {
            assert!(Instant::now() < deadline, "no capture requested within 5 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!controls.take_requested(), "the request is cleared once read");
    }

    #[test]
    fn regular_file_is_not_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control");
        std::fs::write(&path, b"").unwrap();
        let error = Controls::new().take_on_fifo(&path).expect_err("a regular file is rejected");
        assert!(error.to_string().contains("is not a FIFO"), "{error}");
    }
}
