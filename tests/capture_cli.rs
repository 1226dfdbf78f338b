//! Record files and `throatseg run --source replay:FILE` as a user runs them:
//! frames made from real photographs, replays repeated and re-recorded,
//! damaged files, and resident memory over a long replay.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{stderr_text, throatseg};
use image::{Rgb, RgbImage};
use throatseg::capture::convert::to_rgb;
use throatseg::capture::{PixelFormat, RawFrame, RecordReader, RecordWriter, FLAG_TRIGGER};

fn throat_images() -> Vec<PathBuf> {
    let mut images: Vec<PathBuf> = fs::read_dir(common::data_dir().join("throat/images"))
        .expect("throat images folder")
        .map(|entry| entry.unwrap().path())
        .collect();
    images.sort();
    images
}

/// BT.601 limited-range YUYV of an even-width image, from the standard's
/// floating-point formulas; each pair shares its mean chroma.
fn yuyv_bytes(image: &RgbImage) -> Vec<u8> {
    let ycbcr = |p: &Rgb<u8>| {
        let [r, g, b] = p.0.map(|v| v as f64);
        [
            16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0,
            128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
            128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0,
        ]
    };
    let mut data = Vec::with_capacity((image.width() * image.height() * 2) as usize);
    for y in 0..image.height() {
        for x in (0..image.width()).step_by(2) {
            let left = ycbcr(image.get_pixel(x, y));
            let right = ycbcr(image.get_pixel(x + 1, y));
            let byte = |v: f64| v.round().clamp(0.0, 255.0) as u8;
            data.extend_from_slice(&[byte(left[0]), byte((left[1] + right[1]) / 2.0), byte(right[0]), byte((left[2] + right[2]) / 2.0)]);
        }
    }
    data
}

/// A YUYV frame of a photograph resized to `width` × `height`, scaled in brightness by `gain`.
fn yuyv_frame(path: &Path, width: u32, height: u32, gain: f32, sequence: u32) -> RawFrame {
    let rgb = throatseg::frame::read_rgb(path).expect("photograph decodes");
    let mut small = image::imageops::resize(&rgb, width, height, image::imageops::FilterType::Triangle);
    for pixel in small.pixels_mut() {
        pixel.0 = pixel.0.map(|v| (v as f32 * gain).min(255.0) as u8);
    }
    RawFrame {
        format: PixelFormat::Yuyv,
        width,
        height,
        stride: width * 2,
        sequence,
        timestamp_us: 5_000_000 + sequence as u64 * 33_333,
        wall_clock_us: 1_796_000_000_000_000 + sequence as u64 * 33_333,
        flags: 0,
        data: yuyv_bytes(&small),
    }
}

fn write_record(path: &Path, frames: &[RawFrame]) {
    let mut writer = RecordWriter::create(path, "/dev/video0", 1_796_000_000_000_000).expect("record file created");
    for frame in frames {
        writer.write(frame).expect("frame written");
    }
    writer.finish().expect("record file synced");
}

fn read_record(path: &Path) -> Vec<RawFrame> {
    let mut reader = RecordReader::open(path).expect("record file opens");
    let mut frames = Vec::new();
    let mut frame = RawFrame::default();
    while reader.read(&mut frame).expect("frame reads") {
        frames.push(frame.clone());
    }
    frames
}

/// Writes a configuration that takes a capture at every `every_n` frames and
/// writes to `out`, and returns its path.
fn write_config(dir: &Path, every_n: u64, burst: usize, mode: &str) -> PathBuf {
    let path = dir.join(format!("run-{every_n}-{burst}-{mode}.toml"));
    let text = format!(
        "[trigger]\nevery_n_frames = {every_n}\nsignal = false\nburst = {burst}\n\n[output]\ndir = \"unused\"\n\n[pipeline]\nmode = \"{mode}\"\n"
    );
    fs::write(&path, text).unwrap();
    path
}

/// Returns every file in `dir` with its bytes.
fn folder_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .map(|entry| (entry.file_name().to_string_lossy().into_owned(), fs::read(entry.path()).unwrap()))
        .collect()
}

fn results_lines(dir: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(dir.join("results.jsonl")).expect("results.jsonl exists");
    text.lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
}

fn run_replay(config: &Path, record: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let source = format!("replay:{}", record.display());
    let mut args = vec!["run", "--config", config.to_str().unwrap(), "--source", &source, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    throatseg(&args)
}

#[test]
fn record_round_trip_real_photographs() {
    let dir = tempfile::tempdir().unwrap();
    let images = throat_images();
    let mut frames = Vec::new();
    for (index, path) in images.iter().take(6).enumerate() {
        let rgb = throatseg::frame::read_rgb(path).unwrap();
        let bytes = fs::read(path).unwrap();
        frames.push(RawFrame {
            format: PixelFormat::Mjpeg,
            width: rgb.width(),
            height: rgb.height(),
            sequence: index as u32,
            data: bytes,
            ..RawFrame::default()
        });
        frames.push(yuyv_frame(path, 320, 240, 1.0, 100 + index as u32));
    }
    let record = dir.path().join("photos.tsraw");
    write_record(&record, &frames);

    let replayed = read_record(&record);
    assert_eq!(replayed.len(), frames.len(), "every frame comes back");
    for (written, read) in frames.iter().zip(&replayed) {
        assert_eq!(read.data, written.data, "payload of frame {}", written.sequence);
        assert_eq!((read.format, read.width, read.height, read.stride), (written.format, written.width, written.height, written.stride), "geometry");
        assert_eq!((read.timestamp_us, read.wall_clock_us), (written.timestamp_us, written.wall_clock_us), "timestamps");
    }
    for (path, frame) in images.iter().zip(replayed.iter().step_by(2)) {
        let mut rgb = RgbImage::new(1, 1);
        to_rgb(frame, &mut rgb).expect("replayed MJPEG converts");
        assert_eq!(rgb, throatseg::frame::read_rgb(path).unwrap(), "replayed MJPEG decodes like the file {}", path.display());
    }
}

/// Twelve 160×120 YUYV frames of photographs; the last four are nearly black.
fn session_frames() -> Vec<RawFrame> {
    let images = throat_images();
    (0..12).map(|i| yuyv_frame(&images[i % images.len()], 160, 120, if i < 8 { 1.0 } else { 0.05 }, i as u32)).collect()
}

#[test]
fn replay_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("session.tsraw");
    write_record(&record, &session_frames());
    let config = write_config(dir.path(), 4, 3, "full");

    let first = dir.path().join("first");
    let output = run_replay(&config, &record, &first, &[]);
    assert!(output.status.success(), "first replay failed: {}", stderr_text(&output));
    let second = dir.path().join("second");
    let output = run_replay(&config, &record, &second, &[]);
    assert!(output.status.success(), "second replay failed: {}", stderr_text(&output));

    let a = folder_contents(&first);
    let b = folder_contents(&second);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "same files");
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between two replays");
    }

    let lines = results_lines(&first);
    assert_eq!(lines.len(), 3, "a capture at frames 4, 8 and 12");
    for line in &lines[..2] {
        assert!(line.get("mask").is_some(), "bright captures are segmented: {line}");
        assert_eq!(line["width"], 160, "mask at the frame's width: {line}");
        assert_eq!(line["burst"]["frames"], 3, "burst of three: {line}");
        assert!(line["frame"]["time"].as_str().unwrap().starts_with("2026-"), "recorded time: {line}");
        assert!(line.get("timings_ms").is_none(), "no timings by default: {line}");
    }
    let rejected = lines[2]["rejected"].as_str().unwrap_or_default();
    assert!(rejected.starts_with("too dark"), "the dark capture is rejected with its reason: {}", lines[2]);
    let mask = image::open(first.join(lines[0]["mask"].as_str().unwrap())).unwrap().to_luma8();
    assert_eq!(mask.dimensions(), (160, 120), "mask size");
}

#[test]
fn rerecorded_session_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.tsraw");
    write_record(&original, &session_frames());
    let config = write_config(dir.path(), 4, 3, "gris");

    // The run that records stands for a live run: it records what reached
    // inference, with each capture marked.
    let live = dir.path().join("live");
    let rerecorded = dir.path().join("rerecorded.tsraw");
    let output = run_replay(&config, &original, &live, &["--record", rerecorded.to_str().unwrap()]);
    assert!(output.status.success(), "recording run failed: {}", stderr_text(&output));

    let marks: Vec<u32> = read_record(&rerecorded).iter().filter(|f| f.flags & FLAG_TRIGGER != 0).map(|f| f.sequence).collect();
    assert_eq!(marks, vec![3, 7, 11], "captures marked at the 4th, 8th and 12th frame");

    // Without any trigger configured, the marks alone reproduce the captures.
    let no_trigger = write_config(dir.path(), 0, 3, "gris");
    let replay = dir.path().join("replay");
    let output = run_replay(&no_trigger, &rerecorded, &replay, &[]);
    assert!(output.status.success(), "replay failed: {}", stderr_text(&output));
    let a = folder_contents(&live);
    let b = folder_contents(&replay);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "same files");
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between the recording run and its replay");
    }
}

#[test]
fn truncated_record_keeps_earlier_frames() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("cut.tsraw");
    write_record(&record, &session_frames());
    let bytes = fs::read(&record).unwrap();
    // Cut inside the payload of frame 9 (index 9 of 0..12).
    let frame_size = 52 + 160 * 120 * 2 + 4;
    fs::write(&record, &bytes[..64 + 9 * frame_size + 1000]).unwrap();
    let config = write_config(dir.path(), 4, 3, "none");

    let out = dir.path().join("out");
    let output = run_replay(&config, &record, &out, &[]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "a cut replay exits with 1: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(stderr.contains("cut.tsraw: frame 9: file ends inside the payload"), "the error names the file and frame: {stderr}");
    assert_eq!(results_lines(&out).len(), 2, "the captures at frames 4 and 8 are still written");
}

#[test]
fn missing_and_foreign_sources_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), 4, 3, "none");
    let out = dir.path().join("out");

    let output = run_replay(&config, &dir.path().join("absent.tsraw"), &out, &[]);
    assert_eq!(output.status.code(), Some(2), "a missing record file is a setup error");
    assert!(stderr_text(&output).contains("absent.tsraw"), "it is named: {}", stderr_text(&output));

    let jpeg = throat_images().remove(0);
    let output = run_replay(&config, &jpeg, &out, &[]);
    assert_eq!(output.status.code(), Some(2), "a JPEG is not a record file");
    assert!(stderr_text(&output).contains("not a throatseg record file"), "{}", stderr_text(&output));

    let bad_config = dir.path().join("bad.toml");
    fs::write(&bad_config, "[output]\ndir = \"x\"\n[trigger]\nevery_n = 3\n").unwrap();
    let output = throatseg(&["run", "--config", bad_config.to_str().unwrap(), "--source", "replay:x"]);
    assert_eq!(output.status.code(), Some(2), "an unknown key is a setup error");
    assert!(stderr_text(&output).contains("every_n"), "the key is named: {}", stderr_text(&output));
}

#[test]
fn memory_flat_over_long_replay() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("long.tsraw");
    let images = throat_images();
    let distinct: Vec<RawFrame> = images.iter().take(16).enumerate().map(|(i, path)| yuyv_frame(path, 64, 48, 1.0, i as u32)).collect();
    let frames: Vec<RawFrame> = (0..2400)
        .map(|i| RawFrame {
            sequence: i as u32,
            timestamp_us: 5_000_000 + i as u64 * 33_333,
            wall_clock_us: 1_796_000_000_000_000 + i as u64 * 33_333,
            ..distinct[i % distinct.len()].clone()
        })
        .collect();
    write_record(&record, &frames);
    // The first capture (frame 200) comes before the first memory sample
    // (frame 256), so the model's first-run allocations are in every sample.
    let config = write_config(dir.path(), 200, 5, "full");

    let out = dir.path().join("out");
    let output = run_replay(&config, &record, &out, &["--json"]);
    assert!(output.status.success(), "long replay failed: {}", stderr_text(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints the counters");
    assert_eq!(report["frames_processed"], 2400, "every frame reached the loop: {report}");
    assert_eq!(report["frames_dropped"], 0, "a replay drops nothing: {report}");
    assert_eq!(report["captures"], 12, "a capture every 200 frames: {report}");

    let memory = &report["memory_kb"];
    let first = memory["first"].as_u64().expect("memory sampled");
    let last = memory["last"].as_u64().unwrap();
    let max = memory["max"].as_u64().unwrap();
    println!("resident memory over 2400 frames: first {first} kB, last {last} kB, max {max} kB, samples {}", memory["samples"]);
    assert_eq!(memory["samples"], 9, "a sample every 256 frames");
    assert!(last <= first + 16 * 1024, "resident memory grew from {first} kB to {last} kB");
}

/// Receives the next datagram as text, or `None` after a 60 s wait.
fn next_notification(socket: &std::os::unix::net::UnixDatagram) -> Option<String> {
    let mut buffer = [0u8; 512];
    let length = socket.recv(&mut buffer).ok()?;
    Some(String::from_utf8_lossy(&buffer[..length]).into_owned())
}

#[test]
fn systemd_notifications_over_run() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("long.tsraw");
    let images = throat_images();
    let frames: Vec<RawFrame> = (0..600).map(|i| yuyv_frame(&images[i % 8], 64, 48, 1.0, i as u32)).collect();
    write_record(&record, &frames);
    let config = write_config(dir.path(), 1, 1, "none");
    let socket_path = dir.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();

    let out = dir.path().join("out");
    let source = format!("replay:{}", record.display());
    let child = common::throatseg_command()
        .args(["run", "--config", config.to_str().unwrap(), "--source", &source, "--out", out.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "200000")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the throatseg binary starts");

    assert_eq!(next_notification(&socket).as_deref(), Some("READY=1"), "READY=1 comes first");
    assert_eq!(next_notification(&socket).as_deref(), Some("WATCHDOG=1"), "keep-alives follow");
    assert_eq!(next_notification(&socket).as_deref(), Some("WATCHDOG=1"), "keep-alives repeat");
    // SAFETY: kill only sends a signal to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");

    let mut after_term = Vec::new();
    while let Some(state) = next_notification(&socket) {
        after_term.push(state.clone());
        if state == "STOPPING=1" {
            break;
        }
    }
    assert_eq!(after_term.last().map(String::as_str), Some("STOPPING=1"), "STOPPING=1 after SIGTERM: {after_term:?}");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "SIGTERM ends the run cleanly: {}", stderr_text(&output));
    let captures = results_lines(&out).len();
    assert!(captures < 600, "the run stopped before the end of the replay ({captures} captures)");
}
