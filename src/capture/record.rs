//! Record files: raw camera frames as captured, with their timestamps, in one
//! file that can be replayed through the same conversion and pipeline.
//!
//! All integers are little-endian. The file starts with a 64-byte header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TSEGRAW\0` |
//! | 8 | 4 | version, 1 |
//! | 12 | 4 | header size in bytes, 64 |
//! | 16 | 8 | creation time, microseconds since the Unix epoch |
//! | 24 | 32 | source name (UTF-8, zero-padded, cut at 32 bytes) |
//! | 56 | 4 | reserved, 0 |
//! | 60 | 4 | CRC-32 (IEEE) of bytes 0..60 |
//!
//! Then frames follow until the end of the file, each a 52-byte frame header,
//! the payload, and a CRC-32 of the payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | marker `FRAM` |
//! | 4 | 4 | pixel format, V4L2 four-character code (`MJPG`, `YUYV`, `RGB3`, `NV12`) |
//! | 8 | 4 | width in pixels |
//! | 12 | 4 | height in pixels |
//! | 16 | 4 | stride: bytes per line of the first plane, 0 for MJPEG |
//! | 20 | 4 | driver sequence number |
//! | 24 | 4 | flags (bit 0: a capture was taken at this frame) |
//! | 28 | 8 | driver timestamp, microseconds |
//! | 36 | 8 | dequeue time, microseconds since the Unix epoch |
//! | 44 | 4 | payload length in bytes |
//! | 48 | 4 | CRC-32 of bytes 0..48 of this frame header |
//! | 52 | length | payload: the driver's buffer, `bytesused` bytes |
//! | 52 + length | 4 | CRC-32 of the payload |
//!
//! A frame whose header is intact but whose payload CRC does not match is
//! reported as corrupt and skipped; the next frame starts right after it. A
//! file that ends inside a frame, or a damaged frame header, ends the replay
//! with an error naming the frame; every frame before it is intact.

use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::{CaptureError, FrameSource, PixelFormat, RawFrame};

/// Magic bytes at the start of a record file.
pub const MAGIC: [u8; 8] = *b"TSEGRAW\0";
/// Layout version written and read.
pub const VERSION: u32 = 1;
/// Size of the file header in bytes.
pub const HEADER_BYTES: usize = 64;
/// Size of a frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 52;
/// Marker at the start of each frame.
pub const FRAME_MARKER: [u8; 4] = *b"FRAM";

/// Largest payload read, in bytes (256 MiB), so that a damaged length that
/// passed its CRC by chance still cannot exhaust memory.
pub const MAX_PAYLOAD_BYTES: u32 = 256 << 20;

/// Writes frames to a new record file.
pub struct RecordWriter {
    path: PathBuf,
    file: BufWriter<File>,
    frames: u64,
}

impl RecordWriter {
    /// Creates `path` (which must not exist) and writes the header.
    pub fn create(path: &Path, source_name: &str, created_us: u64) -> Result<RecordWriter, CaptureError> {
        let io_error = |error| CaptureError::RecordIo { path: path.to_owned(), error };
        let file = File::options().write(true).create_new(true).open(path).map_err(|error: std::io::Error| {
            if error.kind() == ErrorKind::AlreadyExists {
                let error = std::io::Error::new(ErrorKind::AlreadyExists, "file exists; choose a new file name, records are never overwritten");
                return CaptureError::RecordIo { path: path.to_owned(), error };
            }
            io_error(error)
        })?;
        let mut header = [0u8; HEADER_BYTES];
        header[0..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        header[16..24].copy_from_slice(&created_us.to_le_bytes());
        let name = truncate_utf8(source_name, 32);
        header[24..24 + name.len()].copy_from_slice(name.as_bytes());
        let crc = crc32fast::hash(&header[..60]);
        header[60..64].copy_from_slice(&crc.to_le_bytes());

        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&header).map_err(io_error)?;
        Ok(RecordWriter { path: path.to_owned(), file, frames: 0 })
    }

    /// Appends one frame.
    pub fn write(&mut self, frame: &RawFrame) -> Result<(), CaptureError> {
        let header = frame_header(frame);
        let payload_crc = crc32fast::hash(&frame.data);
        let written = self
            .file
            .write_all(&header)
            .and_then(|()| self.file.write_all(&frame.data))
            .and_then(|()| self.file.write_all(&payload_crc.to_le_bytes()));
        written.map_err(|error| CaptureError::RecordIo { path: self.path.clone(), error })?;
        self.frames += 1;
        Ok(())
    }

    /// Writes buffered frames to the file and syncs it to storage.
    pub fn sync(&mut self) -> Result<(), CaptureError> {
        let synced = self.file.flush().and_then(|()| self.file.get_ref().sync_data());
        synced.map_err(|error| CaptureError::RecordIo { path: self.path.clone(), error })
    }

    /// Returns how many frames were written.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Syncs the file and closes it.
    pub fn finish(mut self) -> Result<u64, CaptureError> {
        self.sync()?;
        Ok(self.frames)
    }
}

fn truncate_utf8(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn frame_header(frame: &RawFrame) -> [u8; FRAME_HEADER_BYTES] {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    header[0..4].copy_from_slice(&FRAME_MARKER);
    header[4..8].copy_from_slice(&frame.format.fourcc());
    header[8..12].copy_from_slice(&frame.width.to_le_bytes());
    header[12..16].copy_from_slice(&frame.height.to_le_bytes());
    header[16..20].copy_from_slice(&frame.stride.to_le_bytes());
    header[20..24].copy_from_slice(&frame.sequence.to_le_bytes());
    header[24..28].copy_from_slice(&frame.flags.to_le_bytes());
    header[28..36].copy_from_slice(&frame.timestamp_us.to_le_bytes());
    header[36..44].copy_from_slice(&frame.wall_clock_us.to_le_bytes());
    header[44..48].copy_from_slice(&(frame.data.len() as u32).to_le_bytes());
    let crc = crc32fast::hash(&header[..48]);
    header[48..52].copy_from_slice(&crc.to_le_bytes());
    header
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(field)
}

/// Fills `buffer` and returns how many bytes were read before the end of the file.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Reads the frames of a record file in order.
pub struct RecordReader {
    path: PathBuf,
    file: BufReader<File>,
    /// Index of the next frame.
    index: u64,
    source_name: String,
    created_us: u64,
    /// Set after an error that leaves the position unknown.
    stopped: bool,
}

impl RecordReader {
    /// Opens `path` and validates its header.
    pub fn open(path: &Path) -> Result<RecordReader, CaptureError> {
        let format_error = |reason: String| CaptureError::RecordFormat { path: path.to_owned(), reason };
        let file = File::open(path).map_err(|error| CaptureError::RecordIo { path: path.to_owned(), error })?;
        let mut file = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_BYTES];
        let read = read_full(&mut file, &mut header).map_err(|error| CaptureError::RecordIo { path: path.to_owned(), error })?;
        if read < 8 || header[0..8] != MAGIC {
            return Err(format_error("not a throatseg record file (no TSEGRAW magic); record one with `throatseg record`".into()));
        }
        if read < HEADER_BYTES {
            return Err(format_error(format!("header is cut off after {read} of {HEADER_BYTES} bytes; the file is truncated")));
        }
        let version = u32_at(&header, 8);
        if version != VERSION {
            return Err(format_error(format!("record version {version}, this build reads version {VERSION}; replay it with a matching throatseg")));
        }
        if crc32fast::hash(&header[..60]) != u32_at(&header, 60) {
            return Err(format_error("header checksum mismatch; the file is damaged".into()));
        }
        let header_bytes = u32_at(&header, 12) as usize;
        if header_bytes != HEADER_BYTES {
            return Err(format_error(format!("header size {header_bytes}, expected {HEADER_BYTES}")));
        }
        let name_bytes = &header[24..56];
        let name_end = name_bytes.iter().position(|&b| b == 0).unwrap_or(name_bytes.len());
        let source_name = String::from_utf8_lossy(&name_bytes[..name_end]).into_owned();
        Ok(RecordReader { path: path.to_owned(), file, index: 0, source_name, created_us: u64_at(&header, 16), stopped: false })
    }

    /// Returns the name of the source the file was recorded from.
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// Returns when the file was created, in microseconds since the Unix epoch.
    pub fn created_us(&self) -> u64 {
        self.created_us
    }

    /// Returns the index of the next frame (frames read or skipped so far).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Reads the next frame into `frame`, reusing its buffer. Returns
    /// `Ok(false)` at a clean end of the file.
    pub fn read(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError> {
        if self.stopped {
            return Ok(false);
        }
        let result = self.read_frame(frame);
        match &result {
            Err(CaptureError::CorruptFrame { .. }) | Ok(true) => self.index += 1,
            Err(_) => self.stopped = true,
            Ok(false) => {}
        }
        result
    }

    fn truncated(&self, reason: String) -> CaptureError {
        CaptureError::RecordTruncated { path: self.path.clone(), index: self.index, reason }
    }

    fn read_frame(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError> {
        let io_error = |error| CaptureError::RecordIo { path: self.path.clone(), error };
        let mut header = [0u8; FRAME_HEADER_BYTES];
        let read = read_full(&mut self.file, &mut header).map_err(io_error)?;
        if read == 0 {
            return Ok(false);
        }
        if read < FRAME_HEADER_BYTES {
            return Err(self.truncated(format!("file ends inside the frame header ({read} of {FRAME_HEADER_BYTES} bytes)")));
        }
        if header[0..4] != FRAME_MARKER || crc32fast::hash(&header[..48]) != u32_at(&header, 48) {
            return Err(self.truncated("frame header is damaged (marker or checksum mismatch)".into()));
        }
        let code = [header[4], header[5], header[6], header[7]];
        let Some(format) = PixelFormat::from_fourcc(code) else {
            let name = String::from_utf8_lossy(&code).into_owned();
            return Err(self.truncated(format!("unknown pixel format {name:?}")));
        };
        let length = u32_at(&header, 44);
        if length > MAX_PAYLOAD_BYTES {
            return Err(self.truncated(format!("payload of {length} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}")));
        }

        frame.format = format;
        frame.width = u32_at(&header, 8);
        frame.height = u32_at(&header, 12);
        frame.stride = u32_at(&header, 16);
        frame.sequence = u32_at(&header, 20);
        frame.flags = u32_at(&header, 24);
        frame.timestamp_us = u64_at(&header, 28);
        frame.wall_clock_us = u64_at(&header, 36);
        frame.data.resize(length as usize, 0);
        let read = read_full(&mut self.file, &mut frame.data).map_err(io_error)?;
        if read < length as usize {
            return Err(self.truncated(format!("file ends inside the payload ({read} of {length} bytes)")));
        }
        let mut crc = [0u8; 4];
        let read = read_full(&mut self.file, &mut crc).map_err(io_error)?;
        if read < 4 {
            return Err(self.truncated("file ends before the payload checksum".into()));
        }
        if crc32fast::hash(&frame.data) != u32::from_le_bytes(crc) {
            let reason = "payload checksum mismatch".to_owned();
            return Err(CaptureError::CorruptFrame { source_name: self.path.display().to_string(), index: self.index, reason });
        }
        Ok(true)
    }
}

/// Frames from a record file, fed to the pipeline as a camera would feed them.
pub struct ReplaySource {
    reader: RecordReader,
}

impl ReplaySource {
    /// Opens a record file for replay.
    pub fn open(path: &Path) -> Result<ReplaySource, CaptureError> {
        Ok(ReplaySource { reader: RecordReader::open(path)? })
    }
}

impl FrameSource for ReplaySource {
    fn next_frame(&mut self, frame: &mut RawFrame) -> Result<bool, CaptureError> {
        self.reader.read(frame)
    }

    fn name(&self) -> String {
        format!("replay:{}", self.reader.path.display())
    }

    fn is_live(&self) -> bool {
        false
    }

    fn reopen(&mut self) -> Result<(), CaptureError> {
        Err(CaptureError::RecordFormat { path: self.reader.path.clone(), reason: "a record file cannot be reopened".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(sequence: u32, length: usize) -> RawFrame {
        RawFrame {
            format: PixelFormat::Yuyv,
            width: 8,
            height: 4,
            stride: 16,
            sequence,
            timestamp_us: 1_000_000 + sequence as u64 * 33_333,
            wall_clock_us: 1_764_900_000_000_000 + sequence as u64,
            flags: sequence % 2,
            data: (0..length).map(|i| (i * 7 + sequence as usize) as u8).collect(),
        }
    }

    fn write_file(path: &Path, frames: &[RawFrame]) {
        let mut writer = RecordWriter::create(path, "/dev/video7", 42).unwrap();
        for frame in frames {
            writer.write(frame).unwrap();
        }
        writer.finish().unwrap();
    }

    fn read_all(path: &Path) -> (Vec<RawFrame>, Option<CaptureError>) {
        let mut reader = RecordReader::open(path).unwrap();
        let mut frames = Vec::new();
        loop {
            let mut frame = RawFrame::default();
            match reader.read(&mut frame) {
                Ok(true) => frames.push(frame),
                Ok(false) => return (frames, None),
                Err(error) => return (frames, Some(error)),
            }
        }
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsraw");
        let frames: Vec<_> = (0..5).map(|i| sample(i, 64)).collect();
        write_file(&path, &frames);

        let reader = RecordReader::open(&path).unwrap();
        assert_eq!(reader.source_name(), "/dev/video7", "source name");
        assert_eq!(reader.created_us(), 42, "creation time");
        let (read, error) = read_all(&path);
        assert!(error.is_none(), "clean end: {error:?}");
        assert_eq!(read.len(), 5, "frame count");
        for (a, b) in frames.iter().zip(&read) {
            assert_eq!((a.format, a.width, a.height, a.stride), (b.format, b.width, b.height, b.stride), "geometry");
            assert_eq!((a.sequence, a.flags, a.timestamp_us, a.wall_clock_us), (b.sequence, b.flags, b.timestamp_us, b.wall_clock_us), "metadata");
            assert_eq!(a.data, b.data, "payload of frame {}", a.sequence);
        }
    }

    #[test]
    fn layout_matches_documentation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsraw");
        write_file(&path, &[sample(3, 10)]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), HEADER_BYTES + FRAME_HEADER_BYTES + 10 + 4, "file size");
        assert_eq!(&bytes[0..8], b"TSEGRAW\0", "magic");
        assert_eq!(u32_at(&bytes, 8), 1, "version");
        let frame = &bytes[HEADER_BYTES..];
        assert_eq!(&frame[0..4], b"FRAM", "frame marker");
        assert_eq!(&frame[4..8], b"YUYV", "fourcc");
        assert_eq!(u32_at(frame, 20), 3, "sequence at offset 20");
        assert_eq!(u64_at(frame, 28), 1_000_000 + 3 * 33_333, "timestamp at offset 28");
        assert_eq!(u32_at(frame, 44), 10, "length at offset 44");
        assert_eq!(u32_at(frame, 52 + 10), crc32fast::hash(&frame[52..62]), "payload CRC after the payload");
    }

    #[test]
    fn every_truncation_names_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsraw");
        write_file(&path, &[sample(0, 30), sample(1, 30), sample(2, 30)]);
        let bytes = std::fs::read(&path).unwrap();
        let frame_size = FRAME_HEADER_BYTES + 30 + 4;
        for cut in HEADER_BYTES + 1..bytes.len() {
            if (cut - HEADER_BYTES).is_multiple_of(frame_size) {
                continue;
            }
            let cut_path = dir.path().join("cut.tsraw");
            std::fs::write(&cut_path, &bytes[..cut]).unwrap();
            let (frames, error) = read_all(&cut_path);
            let whole = (cut - HEADER_BYTES) / frame_size;
            assert_eq!(frames.len(), whole, "frames before a cut at {cut}");
            let message = error.map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(&format!("frame {whole}:")), "cut at {cut} names frame {whole}: {message}");
            assert!(message.contains("cut.tsraw"), "the message names the file: {message}");
        }
    }

    #[test]
    fn corrupt_payload_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsraw");
        write_file(&path, &[sample(0, 30), sample(1, 30), sample(2, 30)]);
        let mut bytes = std::fs::read(&path).unwrap();
        let second_payload = HEADER_BYTES + (FRAME_HEADER_BYTES + 34) + FRAME_HEADER_BYTES + 5;
        bytes[second_payload] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();

        let mut reader = RecordReader::open(&path).unwrap();
        let mut frame = RawFrame::default();
        assert!(reader.read(&mut frame).unwrap(), "frame 0 reads");
        let error = reader.read(&mut frame).unwrap_err();
        assert!(error.is_corrupt_frame(), "frame 1 is corrupt: {error}");
        assert!(error.to_string().contains("frame 1 is corrupt"), "{error}");
        assert!(reader.read(&mut frame).unwrap(), "frame 2 reads after the corrupt one");
        assert_eq!(frame.sequence, 2, "frame 2's sequence");
        assert!(!reader.read(&mut frame).unwrap(), "clean end");
    }

    #[test]
    fn damaged_header_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsraw");
        write_file(&path, &[sample(0, 30)]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let error = RecordReader::open(&path).err().expect("damaged header fails");
        assert!(error.to_string().contains("header checksum mismatch"), "{error}");

        std::fs::write(&path, b"GIF89a and more").unwrap();
        let error = RecordReader::open(&path).err().expect("other file fails");
        assert!(error.to_string().contains("not a throatseg record file"), "{error}");
    }

    #[test]
    fn existing_file_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsraw");
        std::fs::write(&path, b"earlier").unwrap();
        let error = RecordWriter::create(&path, "x", 0).err().expect("existing file is not replaced");
        assert!(error.to_string().contains("choose a new file name"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"earlier", "content unchanged");
    }
}
