//! Notifications to systemd for a `Type=notify` service: `READY=1`,
//! `WATCHDOG=1` keep-alives and `STOPPING=1`, sent as datagrams to the socket
//! named by `$NOTIFY_SOCKET` (the protocol of sd_notify(3)).

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Environment variable with the service manager's notification socket.
pub const NOTIFY_SOCKET_ENV: &str = "NOTIFY_SOCKET";
/// Environment variable with the watchdog timeout, in microseconds.
pub const WATCHDOG_USEC_ENV: &str = "WATCHDOG_USEC";
/// Environment variable with the process the watchdog is meant for.
pub const WATCHDOG_PID_ENV: &str = "WATCHDOG_PID";

/// Errors from setting up or sending notifications.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `$NOTIFY_SOCKET` is neither an absolute path nor an abstract name.
    #[error("NOTIFY_SOCKET={0:?} is not supported; use an absolute path or an abstract socket name starting with '@', or unset NOTIFY_SOCKET to run without notifications")]
    Address(String),
    /// The socket could not be created or the datagram not sent.
    #[error("cannot notify systemd at NOTIFY_SOCKET={socket:?}: {error}")]
    Io { socket: String, error: std::io::Error },
}

/// A connection to the service manager's notification socket, with the
/// watchdog timeout if systemd set one for this process.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    name: String,
    watchdog: Option<Duration>,
    last_keep_alive: Mutex<Option<Instant>>,
}

impl Notifier {
    /// Creates a notifier from `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and
    /// `$WATCHDOG_PID`. Returns `None` when `$NOTIFY_SOCKET` is unset or empty,
    /// that is, when the process does not run as a `Type=notify` service.
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        let socket = std::env::var_os(NOTIFY_SOCKET_ENV);
        let usec = std::env::var(WATCHDOG_USEC_ENV).ok();
        let pid = std::env::var(WATCHDOG_PID_ENV).ok();
        Notifier::from_values(socket.as_deref(), usec.as_deref(), pid.as_deref(), std::process::id())
    }

    /// Creates a notifier from the values of the three environment variables,
    /// for the process `own_pid`. The watchdog is on when `watchdog_usec` is a
    /// positive number of microseconds and `watchdog_pid`, if set, is `own_pid`.
    pub fn from_values(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        own_pid: u32,
    ) -> Result<Option<Notifier>, NotifyError> {
        let Some(name) = notify_socket.filter(|name| !name.is_empty()) else {
            return Ok(None);
        };
        let socket_name = name.to_string_lossy().into_owned();
        let address = socket_address(name).map_err(|error| match error {
            Some(error) => NotifyError::Io { socket: socket_name.clone(), error },
            None => NotifyError::Address(socket_name.clone()),
        })?;
        let socket = UnixDatagram::unbound().map_err(|error| NotifyError::Io { socket: socket_name.clone(), error })?;

        let for_this_process = watchdog_pid.is_none_or(|pid| pid.trim().parse::<u32>() == Ok(own_pid));
        let watchdog = watchdog_usec
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && for_this_process)
            .map(Duration::from_micros);
        Ok(Some(Notifier { socket, address, name: socket_name, watchdog, last_keep_alive: Mutex::new(None) }))
    }

    /// Returns the watchdog timeout systemd set for this process, if any.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends newline-separated `KEY=VALUE` assignments in one datagram.
    pub fn notify(&self, state: &str) -> Result<(), NotifyError> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.address)
            .map(|_| ())
            .map_err(|error| NotifyError::Io { socket: self.name.clone(), error })
    }

    /// Tells systemd that start-up is finished.
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.notify("READY=1")?;
        self.mark_keep_alive(Instant::now());
        Ok(())
    }

    /// Tells systemd that the service is shutting down.
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.notify("STOPPING=1")
    }

    /// Sends `WATCHDOG=1` if the watchdog is on and a quarter of its timeout
    /// has passed since the last keep-alive (or since `READY=1`). A quarter
    /// leaves room for a loop that only checks between frames. Returns
    /// whether a keep-alive was sent.
    pub fn keep_alive_if_due(&self) -> Result<bool, NotifyError> {
        let Some(timeout) = self.watchdog else {
            return Ok(false);
        };
        let now = Instant::now();
        let last = *self.last_keep_alive.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.is_some_and(|last| now.duration_since(last) < timeout / 4) {
            return Ok(false);
        }
        self.notify("WATCHDOG=1")?;
        self.mark_keep_alive(now);
        Ok(true)
    }

    fn mark_keep_alive(&self, at: Instant) {
        *self.last_keep_alive.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(at);
    }
}

/// Returns the address `$NOTIFY_SOCKET` names: an absolute path, or an
/// abstract name after '@'. The error is `None` for a form systemd may use but
/// throatseg does not support (such as `vsock:`), or the I/O error.
fn socket_address(name: &OsStr) -> Result<SocketAddr, Option<std::io::Error>> {
    let bytes = name.as_bytes();
    if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        return SocketAddr::from_abstract_name(abstract_name).map_err(Some);
    }
    if bytes.starts_with(b"/") {
        return SocketAddr::from_pathname(Path::new(name)).map_err(Some);
    }
    Err(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binds a datagram socket in a fresh folder and returns it with its path.
    fn listener() -> (tempfile::TempDir, UnixDatagram, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (dir, socket, path)
    }

    fn receive(socket: &UnixDatagram) -> String {
        let mut buffer = [0u8; 256];
        let length = socket.recv(&mut buffer).expect("a datagram within 5 s");
        String::from_utf8(buffer[..length].to_vec()).unwrap()
    }

    fn assert_nothing_waiting(socket: &UnixDatagram) {
        socket.set_nonblocking(true).unwrap();
        let mut buffer = [0u8; 256];
        let error = socket.recv(&mut buffer).expect_err("no datagram is waiting");
        assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock, "{error}");
        socket.set_nonblocking(false).unwrap();
    }

    #[test]
    fn unset_socket_gives_no_notifier() {
        assert!(Notifier::from_values(None, Some("1000000"), None, 1).unwrap().is_none(), "unset");
        assert!(Notifier::from_values(Some(OsStr::new("")), None, None, 1).unwrap().is_none(), "empty");
    }

    #[test]
    fn path_socket_receives_states() {
        let (_dir, socket, path) = listener();
        let notifier = Notifier::from_values(Some(path.as_os_str()), None, None, 1).unwrap().unwrap();
        notifier.ready().unwrap();
        assert_eq!(receive(&socket), "READY=1", "ready");
        notifier.stopping().unwrap();
        assert_eq!(receive(&socket), "STOPPING=1", "stopping");
    }

    #[test]
    fn abstract_socket_receives_states() {
        let name = format!("throatseg-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let variable = format!("@{name}");
        let notifier = Notifier::from_values(Some(OsStr::new(&variable)), None, None, 1).unwrap().unwrap();
        notifier.ready().unwrap();
        assert_eq!(receive(&socket), "READY=1", "ready through the abstract name");
    }

    #[test]
    fn keep_alive_follows_timeout() {
        let (_dir, socket, path) = listener();
        let notifier = Notifier::from_values(Some(path.as_os_str()), Some("400000"), Some("7"), 7).unwrap().unwrap();
        assert_eq!(notifier.watchdog_timeout(), Some(Duration::from_millis(400)), "timeout read");
        assert!(notifier.keep_alive_if_due().unwrap(), "the first keep-alive is due at once");
        assert_eq!(receive(&socket), "WATCHDOG=1", "keep-alive datagram");
        assert!(!notifier.keep_alive_if_due().unwrap(), "not due again right away");
        assert_nothing_waiting(&socket);
        std::thread::sleep(Duration::from_millis(110));
        assert!(notifier.keep_alive_if_due().unwrap(), "due after a quarter of the timeout");
        assert_eq!(receive(&socket), "WATCHDOG=1", "second keep-alive");
    }

    #[test]
    fn watchdog_off_without_timeout_or_for_other_pid() {
        let (_dir, socket, path) = listener();
        let cases = [(None, None), (Some("0"), None), (Some("soon"), None), (Some("400000"), Some("8"))];
        for (usec, pid) in cases {
            let notifier = Notifier::from_values(Some(path.as_os_str()), usec, pid, 7).unwrap().unwrap();
            assert_eq!(notifier.watchdog_timeout(), None, "WATCHDOG_USEC={usec:?} WATCHDOG_PID={pid:?}");
            assert!(!notifier.keep_alive_if_due().unwrap(), "no keep-alive for {usec:?} {pid:?}");
        }
        assert_nothing_waiting(&socket);
    }

    #[test]
    fn unsupported_address_is_rejected() {
        let error = Notifier::from_values(Some(OsStr::new("vsock:2:1234")), None, None, 1).expect_err("vsock address");
        assert!(error.to_string().contains("vsock:2:1234"), "{error}");
    }

    #[test]
    fn missing_socket_fails_to_send() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let notifier = Notifier::from_values(Some(path.as_os_str()), None, None, 1).unwrap().unwrap();
        let error = notifier.ready().expect_err("no socket at the path");
        assert!(error.to_string().contains("absent"), "{error}");
    }
}
