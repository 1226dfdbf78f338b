//! V4L2 cameras through the `v4l` crate: format negotiation and mmap streaming.
//! Everything device-specific stays here; frames leave as [`RawFrame`]s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use v4l::buffer::{Flags as BufferFlags, Type};
use v4l::capability::Flags as CapabilityFlags;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::capture::Parameters;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

use super::{unix_time_us, CaptureError, FrameSource, PixelFormat, RawFrame};

/// Camera settings requested from the driver.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraSettings {
    /// Device node, such as `/dev/video0`.
    pub device: PathBuf,
    /// Requested width in pixels; the driver may choose the nearest it supports.
    pub width: u32,
    /// Requested height in pixels.
    pub height: u32,
    /// Requested frames per second; drivers without frame-rate control ignore it.
    pub fps: u32,
    /// Pixel format: `auto` takes the first of MJPEG, YUYV, RGB24 and NV12 that the camera offers.
    pub format: String,
    /// Driver buffers to stream with.
    pub buffers: u32,
    /// Read timeout: the wait for a frame before it is reported as timed out, in milliseconds.
    pub read_timeout_ms: u64,
}

impl Default for CameraSettings {
    fn default() -> CameraSettings {
        CameraSettings {
            device: PathBuf::from("/dev/video0"),
            width: 1280,
            height: 720,
            fps: 30,
            format: "auto".into(),
            buffers: 4,
            read_timeout_ms: 2000,
        }
    }
}

impl CameraSettings {
    /// Returns the formats to try, in order, or the reason the format name is invalid.
    pub fn formats(&self) -> Result<Vec<PixelFormat>, String> {
        if self.format == "auto" {
            return Ok(PixelFormat::PREFERENCE.to_vec());
        }
        PixelFormat::from_name(&self.format)
            .map(|format| vec![format])
            .ok_or_else(|| format!("unknown camera format {:?}; use auto, mjpeg, yuyv, rgb24 or nv12", self.format))
    }
}

/// An open stream and the format the driver settled on.
struct OpenStream {
    // Declared before `device`, so the buffers are unmapped before the device is closed.
    stream: Stream<'static>,
    _device: Device,
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: u32,
}

/// A V4L2 camera, opened on the first frame and reopened after errors.
pub struct DeviceSource {
    settings: CameraSettings,
    formats: Vec<PixelFormat>,
    open: Option<OpenStream>,
}

impl DeviceSource {
    /// Creates a source for the camera in `settings`; nothing is opened yet.
    pub fn new(settings: CameraSettings) -> Result<DeviceSource, CaptureError> {
        let formats = settings
            .formats()
            .map_err(|reason| CaptureError::NotCapture { device: settings.device.clone(), reason })?;
        Ok(DeviceSource { settings, formats, open: None })
    }

    /// Opens the device, negotiates the format and starts streaming.
    pub fn open(&mut self) -> Result<(), CaptureError> {
        self.close();
        let opened = open_stream(&self.settings, &self.formats)?;
        tracing::info!(
            device = %self.settings.device.display(),
            format = %opened.format,
            width = opened.width,
            height = opened.height,
            stride = opened.stride,
            "camera streaming"
        );
        self.open = Some(opened);
        Ok(())
    }

    /// Stops streaming and closes the device.
    pub fn close(&mut self) {
        if let Some(open) = self.open.take() {
            // NOTE: v4l 0.14 panics in Drop when VIDIOC_STREAMOFF or unmapping
            // fails with an error other than ENODEV. A vanished camera returns
            // ENODEV, but other errors are caught here so the process survives;
            // the buffers of such a stream may stay mapped.
            let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(open)));
            if closed.is_err() {
                tracing::warn!(device = %self.settings.device.display(), "closing the camera failed; reopening anyway");
            }
        }
    }
}

fn open_stream(settings: &CameraSettings, formats: &[PixelFormat]) -> Result<OpenStream, CaptureError> {
    let path = settings.device.as_path();
    let device_error = |operation, error| CaptureError::Device { device: path.to_owned(), operation, error };
    let device = Device::with_path(path).map_err(|error| CaptureError::Open { device: path.to_owned(), error })?;

    let capabilities = device.query_caps().map_err(|error| device_error("VIDIOC_QUERYCAP", error))?;
    if !capabilities.capabilities.contains(CapabilityFlags::VIDEO_CAPTURE) {
        let reason = format!("{} ({}) is not a single-planar video capture device", capabilities.card, capabilities.driver);
        return Err(CaptureError::NotCapture { device: path.to_owned(), reason });
    }
    if !capabilities.capabilities.contains(CapabilityFlags::STREAMING) {
        let reason = format!("{} ({}) does not support streaming I/O", capabilities.card, capabilities.driver);
        return Err(CaptureError::NotCapture { device: path.to_owned(), reason });
    }

    let offered = device.enum_formats().map_err(|error| device_error("VIDIOC_ENUM_FMT", error))?;
    let chosen = formats.iter().copied().find(|format| offered.iter().any(|o| o.fourcc.repr == format.fourcc()));
    let Some(chosen) = chosen else {
        let offered: Vec<String> = offered.iter().map(|o| o.fourcc.str().unwrap_or("????").to_owned()).collect();
        let wanted: Vec<&str> = formats.iter().map(|f| f.name()).collect();
        return Err(CaptureError::NoFormat { device: path.to_owned(), wanted: wanted.join(", "), offered: offered.join(", ") });
    };

    let requested = Format::new(settings.width, settings.height, FourCC::new(&chosen.fourcc()));
    let actual = device.set_format(&requested).map_err(|error| device_error("VIDIOC_S_FMT", error))?;
    if actual.fourcc.repr != chosen.fourcc() {
        let reason = format!("asked for {chosen}, the driver set {}", actual.fourcc);
        return Err(CaptureError::NotCapture { device: path.to_owned(), reason });
    }
    if (actual.width, actual.height) != (settings.width, settings.height) {
        tracing::info!(
            device = %path.display(),
            "asked for {}x{}, the driver chose {}x{}",
            settings.width, settings.height, actual.width, actual.height
        );
    }
    if settings.fps > 0 {
        match device.set_params(&Parameters::with_fps(settings.fps)) {
            Ok(params) => tracing::debug!(device = %path.display(), interval = %params.interval, "frame interval set"),
            Err(error) => tracing::debug!(device = %path.display(), %error, "driver has no frame-rate control"),
        }
    }

    let mut stream = Stream::with_buffers(&device, Type::VideoCapture, settings.buffers.max(2))
        .map_err(|error| device_error("VIDIOC_REQBUFS", error))?;
    stream.set_timeout(Duration::from_millis(settings.read_timeout_ms.max(1)));
    Ok(OpenStream { stream, _device: device, format: chosen, width: actual.width, height: actual.height, stride: actual.stride })
}

impl FrameSource for DeviceSource {
    fn next_frame(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError> {
        if self.open.is_none() {
            self.open()?;
        }
        let device: &Path = &self.settings.device;
        let timeout_ms = self.settings.read_timeout_ms;
        let Some(open) = self.open.as_mut() else { unreachable!("opened above") };
        let (buffer, meta) = match open.stream.next() {
            Ok(next) => next,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                return Err(CaptureError::Timeout { device: device.to_owned(), timeout_ms });
            }
            Err(error) => return Err(CaptureError::Device { device: device.to_owned(), operation: "VIDIOC_DQBUF", error }),
        };

        let used = (meta.bytesused as usize).min(buffer.len());
        frame.format = open.format;
        frame.width = open.width;
        frame.height = open.height;
        frame.stride = if open.format == PixelFormat::Mjpeg { 0 } else { open.stride };
        frame.sequence = meta.sequence;
        // time_t is 32 bits on some armv7 targets, so the casts are not redundant there.
        #[allow(clippy::unnecessary_cast)]
        let timestamp_us = meta.timestamp.sec as i64 * 1_000_000 + meta.timestamp.usec as i64;
        frame.timestamp_us = timestamp_us.max(0) as u64;
        frame.wall_clock_us = unix_time_us();
        frame.flags = 0;
        frame.data.clear();
        frame.data.extend_from_slice(&buffer[..used]);

        let corrupt = |reason: String| CaptureError::CorruptFrame { source_name: device.display().to_string(), index: meta.sequence as u64, reason };
        if meta.flags.contains(BufferFlags::ERROR) {
            return Err(corrupt("the driver flagged the buffer as damaged".into()));
        }
        if let Err(reason) = frame.check() {
            return Err(corrupt(reason));
        }
        if frame.format == PixelFormat::Mjpeg && !crate::frame::is_complete_jpeg(&frame.data) {
            return Err(corrupt(format!("MJPEG frame of {used} bytes is incomplete")));
        }
        Ok(true)
    }

    fn name(&self) -> String {
        format!("device:{}", self.settings.device.display())
    }

    fn is_live(&self) -> bool {
        true
    }

    fn reopen(&mut self) -> Result<(), CaptureError> {
        self.open()
    }
}

impl Drop for DeviceSource {
    fn drop(&mut self) {
        self.close();
    }
}
