//! Camera frames: the raw frame type, V4L2 capture, record files and their
//! replay, conversion to packed RGB, and the bounded queue between capture and
//! inference.

pub mod convert;
mod device;
pub mod quality;
pub mod queue;
pub mod record;

use std::path::PathBuf;

pub use device::{CameraSettings, DeviceSource};
pub use record::{RecordReader, RecordWriter, ReplaySource};

/// Pixel format of a raw frame, named as V4L2 names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG: each frame is one JPEG image.
    #[default]
    Mjpeg,
    /// Packed 4:2:2 YCbCr, `Y0 Cb Y1 Cr` for each pair of pixels.
    Yuyv,
    /// Packed 8-bit RGB (V4L2 `RGB3`).
    Rgb24,
    /// 4:2:0 YCbCr: a luma plane, then one plane of interleaved `Cb Cr` for each 2×2 block.
    Nv12,
}

impl PixelFormat {
    /// Formats in the order they are preferred when a camera offers several:
    /// MJPEG needs the least USB bandwidth, YUYV is what every UVC camera offers.
    pub const PREFERENCE: [PixelFormat; 4] = [PixelFormat::Mjpeg, PixelFormat::Yuyv, PixelFormat::Rgb24, PixelFormat::Nv12];

    /// Returns the V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Mjpeg => *b"MJPG",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Rgb24 => *b"RGB3",
            PixelFormat::Nv12 => *b"NV12",
        }
    }

    /// Returns the format with this V4L2 four-character code, if it is one of the four.
    pub fn from_fourcc(code: [u8; 4]) -> Option<PixelFormat> {
        PixelFormat::PREFERENCE.into_iter().find(|format| format.fourcc() == code)
    }

    /// Returns the lower-case name used in configuration files and results.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Mjpeg => "mjpeg",
            PixelFormat::Yuyv => "yuyv",
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Nv12 => "nv12",
        }
    }

    /// Parses a name as [`PixelFormat::name`] returns it.
    pub fn from_name(name: &str) -> Option<PixelFormat> {
        PixelFormat::PREFERENCE.into_iter().find(|format| format.name() == name)
    }

    /// Returns the smallest stride (bytes per line) of the first plane for `width` pixels; 0 for MJPEG.
    pub fn min_stride(self, width: u32) -> u64 {
        match self {
            PixelFormat::Mjpeg => 0,
            PixelFormat::Yuyv => 2 * width as u64,
            PixelFormat::Rgb24 => 3 * width as u64,
            // An odd width still has a Cb Cr pair for its last column.
            PixelFormat::Nv12 => (width as u64).div_ceil(2) * 2,
        }
    }

    /// Returns the bytes a frame of this size and stride needs; 0 for MJPEG,
    /// whose size depends on its content.
    pub fn frame_bytes(self, height: u32, stride: u32) -> u64 {
        let plane = height as u64 * stride as u64;
        match self {
            PixelFormat::Mjpeg => 0,
            PixelFormat::Yuyv | PixelFormat::Rgb24 => plane,
            // The chroma plane has one line per two luma lines, as wide in bytes.
            PixelFormat::Nv12 => plane + height.div_ceil(2) as u64 * stride as u64,
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bit of [`RawFrame::flags`]: a capture was taken at this frame.
pub const FLAG_TRIGGER: u32 = 1;

/// One frame as the camera delivered it, with the buffer reused from frame to frame.
#[derive(Clone, Debug, Default)]
pub struct RawFrame {
    /// Pixel format of `data`.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per line of the first plane (0 for MJPEG). V4L2 drivers may pad lines.
    pub stride: u32,
    /// Frame number from the driver; it restarts when the device is reopened.
    pub sequence: u32,
    /// Driver timestamp in microseconds, usually of the monotonic clock.
    pub timestamp_us: u64,
    /// Time the frame was dequeued, in microseconds since the Unix epoch (UTC).
    pub wall_clock_us: u64,
    /// Marks such as [`FLAG_TRIGGER`].
    pub flags: u32,
    /// Pixel data: `frame_bytes` bytes for raw formats, one JPEG for MJPEG.
    pub data: Vec<u8>,
}

impl RawFrame {
    /// Copies `other` into this frame, reusing this frame's buffer.
    pub fn copy_from(&mut self, other: &RawFrame) {
        self.format = other.format;
        self.width = other.width;
        self.height = other.height;
        self.stride = other.stride;
        self.sequence = other.sequence;
        self.timestamp_us = other.timestamp_us;
        self.wall_clock_us = other.wall_clock_us;
        self.flags = other.flags;
        self.data.clear();
        self.data.extend_from_slice(&other.data);
    }

    /// Checks that the declared size, stride and data length fit together, and
    /// returns the reason when they do not.
    pub fn check(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 {
            return Err(format!("frame is {}x{} pixels", self.width, self.height));
        }
        if self.width as u64 * self.height as u64 > crate::frame::MAX_PIXELS {
            return Err(format!("frame is {}x{} pixels, more than {}", self.width, self.height, crate::frame::MAX_PIXELS));
        }
        if self.format == PixelFormat::Mjpeg {
            return if self.data.is_empty() { Err("MJPEG frame has no bytes".into()) } else { Ok(()) };
        }
        if self.format == PixelFormat::Yuyv && !self.width.is_multiple_of(2) {
            return Err(format!("YUYV frame has an odd width of {} pixels", self.width));
        }
        let min_stride = self.format.min_stride(self.width);
        if (self.stride as u64) < min_stride {
            return Err(format!("{} stride of {} bytes is below the {min_stride} bytes of one line", self.format, self.stride));
        }
        let needed = self.format.frame_bytes(self.height, self.stride);
        if (self.data.len() as u64) < needed {
            return Err(format!(
                "{} frame of {}x{} with stride {} needs {needed} bytes, has {}",
                self.format,
                self.width,
                self.height,
                self.stride,
                self.data.len()
            ));
        }
        Ok(())
    }
}

/// Errors from capturing, recording or replaying frames.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The device could not be opened or configured.
    #[error("{device}: cannot open: {error}; check that the camera is connected and that this user may open it (group video)")]
    Open { device: PathBuf, error: std::io::Error },
    /// The device is not a streaming video capture device.
    #[error("{device}: {reason}; give the path of a camera's capture node (see `v4l2-ctl --list-devices`)")]
    NotCapture { device: PathBuf, reason: String },
    /// The device offers none of the formats that can be converted.
    #[error("{device}: offers none of the formats {wanted} (it offers {offered}); choose another format in the configuration or another camera")]
    NoFormat { device: PathBuf, wanted: String, offered: String },
    /// A device call failed while streaming, usually because the camera was unplugged.
    #[error("{device}: {operation} failed: {error}")]
    Device { device: PathBuf, operation: &'static str, error: std::io::Error },
    /// No frame arrived within the read timeout.
    #[error("{device}: no frame within {timeout_ms} ms")]
    Timeout { device: PathBuf, timeout_ms: u64 },
    /// One frame is damaged; the frames after it can still be read.
    #[error("{source_name}: frame {index} is corrupt: {reason}")]
    CorruptFrame { source_name: String, index: u64, reason: String },
    /// Reading or writing a record file failed.
    #[error("{path}: {error}")]
    RecordIo { path: PathBuf, error: std::io::Error },
    /// A record file is not one, or is of another version.
    #[error("{path}: {reason}")]
    RecordFormat { path: PathBuf, reason: String },
    /// A record file ends inside a frame or its frame header is damaged; the
    /// frames before `index` are intact.
    #[error("{path}: frame {index}: {reason}; the {index} frames before it are intact")]
    RecordTruncated { path: PathBuf, index: u64, reason: String },
}

impl CaptureError {
    /// Returns whether only one frame was lost and the next one can be read.
    pub fn is_corrupt_frame(&self) -> bool {
        matches!(self, CaptureError::CorruptFrame { .. })
    }
}

/// A source of frames: a camera or a record file.
pub trait FrameSource: Send {
    /// Fills `frame` with the next frame, reusing its buffer, and returns
    /// `false` at the end of a finite source.
    fn next_frame(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError>;

    /// Returns the name used in logs and errors.
    fn name(&self) -> String;

    /// Returns whether frames arrive in real time. A live source drops the
    /// oldest waiting frame when inference is behind; a replay waits instead,
    /// so every recorded frame is processed.
    fn is_live(&self) -> bool;

    /// Closes and reopens a live source after an error. Sources that cannot
    /// recover return the error that stopped them.
    fn reopen(&mut self) -> Result<(), CaptureError>;
}

/// Returns the current time in microseconds since the Unix epoch.
pub fn unix_time_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}
