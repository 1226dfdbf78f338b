//! Helpers shared by the integration tests: where the shared data and the
//! bundled models are, and running the built binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variable that points the tests at the shared data folder.
pub const DATA_ENV: &str = "THROATSEG_DATA";

/// Returns the shared data folder: `$THROATSEG_DATA`, else `../shared/data`
/// beside the checkout.
pub fn data_dir() -> PathBuf {
    let dir = match std::env::var_os(DATA_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
    };
    assert!(
        dir.join("polypgen/manifest.csv").is_file(),
        "shared data not found at {}; set {DATA_ENV} to the folder holding polypgen/ and throat/",
        dir.display()
    );
    dir
}

/// Returns the bundled models folder of this checkout.
pub fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Returns a bundled file by name.
pub fn bundled(name: &str) -> PathBuf {
    models_dir().join(name)
}

/// Environment variable naming a program that runs the binary under test, for
/// example `qemu-aarch64` when the tests of an ARM build run on an x86 host
/// without binfmt_misc (see cross/env.sh).
pub const RUNNER_ENV: &str = "THROATSEG_TEST_RUNNER";

/// Returns a command that starts the throatseg binary (through the runner, if
/// one is set) with the bundled models.
pub fn throatseg_command() -> Command {
    let binary = env!("CARGO_BIN_EXE_throatseg");
    let mut command = match std::env::var_os(RUNNER_ENV).filter(|runner| !runner.is_empty()) {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(binary);
            command
        }
        None => Command::new(binary),
    };
    // NOTIFY_SOCKET is removed so that tests run from a systemd service do not
    // notify it; the notification test sets its own.
    command.env("THROATSEG_MODEL_DIR", models_dir()).env_remove("RUST_LOG").env_remove("NOTIFY_SOCKET");
    command
}

/// Runs the throatseg binary with the bundled models.
pub fn throatseg(args: &[&str]) -> Output {
    throatseg_command().args(args).output().expect("the throatseg binary runs")
}

/// Returns stderr as text.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// One row of PolypGen's manifest.csv.
#[derive(Clone, Debug)]
pub struct ManifestRow {
    pub id: String,
    pub centre: String,
    pub split: String,
}

/// Reads PolypGen's manifest.csv.
pub fn manifest() -> Vec<ManifestRow> {
    let text = std::fs::read_to_string(data_dir().join("polypgen/manifest.csv")).expect("manifest.csv is readable");
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            ManifestRow { id: fields[0].into(), centre: fields[1].into(), split: fields[2].into() }
        })
        .collect()
}

/// Returns (image, mask) paths of one centre and split.
pub fn polypgen_split(centre: &str, split: &str) -> Vec<(PathBuf, PathBuf)> {
    let root = data_dir().join("polypgen").join(centre);
    manifest()
        .into_iter()
        .filter(|row| row.centre == centre && row.split == split)
        .map(|row| (root.join("images").join(format!("{}.jpg", row.id)), root.join("masks").join(format!("{}.png", row.id))))
        .collect()
}
