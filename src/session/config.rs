//! The configuration file of `throatseg run` (TOML): camera, triggers,
//! quality limits, output, pipeline and recovery.

use std::path::{Path, PathBuf};

use crate::capture::quality::QualityLimits;
use crate::capture::CameraSettings;
use crate::colour::ColourSpace;
use crate::pipeline::Mode;

/// Largest burst: frames kept for choosing the sharpest one.
pub const MAX_BURST: usize = 16;

/// Errors from reading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read the configuration: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("{path}: invalid configuration: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// Everything `throatseg run` reads from its configuration file.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The camera (also used by `throatseg record`).
    #[serde(default)]
    pub camera: CameraSettings,
    /// When captures are taken.
    #[serde(default)]
    pub trigger: TriggerSettings,
    /// When a capture is rejected instead of segmented.
    #[serde(default)]
    pub quality: QualityLimits,
    /// Output folder and result options.
    pub output: OutputSettings,
    /// Model, references and mode.
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// Recovery from camera errors.
    #[serde(default)]
    pub recovery: RecoverySettings,
}

/// When captures are taken. Triggers combine: any of them takes a capture.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerSettings {
    /// Take a capture at every Nth frame that reaches inference; 0 turns this off.
    pub every_n_frames: u64,
    /// Take a capture when the process receives SIGUSR1.
    pub signal: bool,
    /// Take a capture when a line `take` is written to this FIFO (created if missing).
    pub fifo: Option<PathBuf>,
    /// Frames, up to and including the triggering one, among which the sharpest is segmented.
    pub burst: usize,
}

impl Default for TriggerSettings {
    fn default() -> TriggerSettings {
        TriggerSettings { every_n_frames: 0, signal: true, fifo: None, burst: 5 }
    }
}

/// Output folder and result options.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// Folder for masks, overlays and `results.jsonl` (created if missing).
    pub dir: PathBuf,
    /// Also write the time per stage to `results.jsonl`. Off by default, so
    /// that a replay gives byte-identical results.
    #[serde(default)]
    pub timings: bool,
}

/// Model, references and mode; unset files are the bundled ones.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// Colour normalisation mode.
    pub mode: Mode,
    /// A fixed reference (index or name) instead of selection.
    pub reference: Option<String>,
    /// Segmentation model (ONNX with its card).
    pub model: Option<PathBuf>,
    /// Embedder model for LRIS.
    pub embedder: Option<PathBuf>,
    /// Reference set.
    pub refs: Option<PathBuf>,
    /// Colour space of the transfer (`lalphabeta` or `lab`).
    pub colour_space: ColourSpace,
}

impl Default for PipelineSettings {
    fn default() -> PipelineSettings {
        PipelineSettings {
            mode: Mode::Full,
            reference: None,
            model: None,
            embedder: None,
            refs: None,
            colour_space: ColourSpace::default(),
        }
    }
}

/// Recovery from camera errors: reopen backoff and log intervals.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    /// Wait before the first reopen attempt, in milliseconds; doubled after each failure.
    pub reopen_initial_ms: u64,
    /// Maximum wait between reopen attempts, in milliseconds.
    pub reopen_max_ms: u64,
    /// Read timeouts in a row after which the camera is reopened.
    pub timeouts_before_reopen: u32,
    /// Shortest interval between two log lines about corrupt frames or timeouts, in seconds.
    pub log_interval_s: u64,
}

impl Default for RecoverySettings {
    fn default() -> RecoverySettings {
        RecoverySettings { reopen_initial_ms: 500, reopen_max_ms: 30_000, timeouts_before_reopen: 3, log_interval_s: 10 }
    }
}

impl RunConfig {
    /// Reads and checks a configuration file. Relative paths in it are taken
    /// relative to the file's folder, so a board's configuration can name the
    /// files beside it.
    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        let mut config: RunConfig =
            toml::from_str(&text).map_err(|error| ConfigError::Parse { path: path.to_owned(), message: error.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.check().map_err(|reason| ConfigError::Invalid { path: path.to_owned(), reason })?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.output.dir);
        let optional = [&mut self.pipeline.model, &mut self.pipeline.embedder, &mut self.pipeline.refs, &mut self.trigger.fifo];
        for path in optional.into_iter().flatten() {
            resolve(path);
        }
    }

    /// Returns the first value that is out of range, as a message naming the key.
    fn check(&self) -> Result<(), String> {
        self.camera.formats()?;
        if self.camera.width == 0 || self.camera.height == 0 {
            return Err(format!("camera.width and camera.height must be above 0, not {}x{}", self.camera.width, self.camera.height));
        }
        if !(1..=MAX_BURST).contains(&self.trigger.burst) {
            return Err(format!("trigger.burst is {}; use 1 to {MAX_BURST} frames", self.trigger.burst));
        }
        let quality = &self.quality;
        if !(0.0..=1.0).contains(&quality.max_overexposed_fraction) {
            return Err(format!("quality.max_overexposed_fraction is {}; use a share from 0 to 1", quality.max_overexposed_fraction));
        }
        if self.recovery.reopen_initial_ms == 0 || self.recovery.reopen_max_ms < self.recovery.reopen_initial_ms {
            return Err("recovery.reopen_initial_ms must be above 0 and not above recovery.reopen_max_ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RunConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("board.toml");
        std::fs::write(&path, text).unwrap();
        RunConfig::load(&path)
    }

    #[test]
    fn example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/example.toml");
        let config = RunConfig::load(&path).unwrap();
        assert_eq!(config.camera.device, PathBuf::from("/dev/video0"), "camera device");
        assert!(config.output.dir.is_absolute(), "output folder resolved: {}", config.output.dir.display());
    }

    #[test]
    fn defaults_fill_missing_sections() {
        let config = load("[output]\ndir = \"out\"\n").unwrap();
        assert_eq!(config.trigger, TriggerSettings::default(), "trigger defaults");
        assert_eq!(config.pipeline.mode, Mode::Full, "full DCIN by default");
        assert!(config.output.dir.ends_with("out"), "relative folder kept under the config's folder");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let error = load("[output]\ndir = \"out\"\n[camera]\nfsp = 30\n").unwrap_err().to_string();
        assert!(error.contains("fsp"), "the message names the key: {error}");
        assert!(error.contains("board.toml"), "and the file: {error}");
    }

    #[test]
    fn out_of_range_burst_is_rejected() {
        let error = load("[output]\ndir = \"out\"\n[trigger]\nburst = 0\n").unwrap_err().to_string();
        assert!(error.contains("trigger.burst is 0"), "{error}");
    }

    #[test]
    fn unknown_format_is_rejected() {
        let error = load("[output]\ndir = \"out\"\n[camera]\nformat = \"h264\"\n").unwrap_err().to_string();
        assert!(error.contains("unknown camera format \"h264\""), "{error}");
    }
}
