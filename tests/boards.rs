//! The board configurations in `boards/`: each loads with `RunConfig::load`
//! and names files that the package installs (or that exist in the source
//! tree) and folders that the systemd unit creates.

use std::fs;
use std::path::{Path, PathBuf};

use throatseg::session::RunConfig;

/// Installed folders and the source-tree folders the package fills them from.
const INSTALLED: [(&str, &str); 2] = [("/usr/share/throatseg/models", "models"), ("/usr/share/throatseg/boards", "boards")];
/// The unit's StateDirectory: output must go below it.
const STATE_DIR: &str = "/var/lib/throatseg";
/// The unit's RuntimeDirectory: the control FIFO must be in it.
const RUNTIME_DIR: &str = "/run/throatseg";

fn source_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn board_configs() -> Vec<PathBuf> {
    let mut configs: Vec<PathBuf> = fs::read_dir(source_root().join("boards"))
        .expect("boards folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    configs.sort();
    configs
}

/// Returns where an installed path comes from in the source tree, or the
/// path itself when it is not in an installed folder.
fn in_source_tree(path: &Path) -> PathBuf {
    for (installed, source) in INSTALLED {
        if let Ok(rest) = path.strip_prefix(installed) {
            return source_root().join(source).join(rest);
        }
    }
    path.to_owned()
}

#[test]
fn expected_boards_exist() {
    let names: Vec<String> = board_configs().iter().map(|path| path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for board in ["pi4.toml", "pi5.toml", "jetson-orin-nano.toml", "pi-armhf.toml", "example.toml"] {
        assert!(names.iter().any(|name| name == board), "boards/{board} missing; found {names:?}");
    }
}

#[test]
fn every_board_loads() {
    for path in board_configs() {
        if let Err(error) = RunConfig::load(&path) {
            panic!("{error}");
        }
    }
}

#[test]
fn board_files_exist() {
    for path in board_configs() {
        let config = RunConfig::load(&path).unwrap();
        let pipeline = &config.pipeline;
        let named = [&pipeline.model, &pipeline.embedder, &pipeline.refs];
        for file in named.into_iter().flatten() {
            let source = in_source_tree(file);
            assert!(source.is_file(), "{}: {} is neither installed by the package nor in the source tree ({})", path.display(), file.display(), source.display());
        }
        for model in [&pipeline.model, &pipeline.embedder].into_iter().flatten() {
            let card = in_source_tree(model).with_extension("json");
            assert!(card.is_file(), "{}: the card of {} is missing ({})", path.display(), model.display(), card.display());
        }
    }
}

#[test]
fn board_folders_match_unit() {
    let unit = fs::read_to_string(source_root().join("boards/throatseg.service")).expect("boards/throatseg.service");
    assert!(unit.lines().any(|line| line == "StateDirectory=throatseg"), "the unit creates {STATE_DIR}");
    assert!(unit.lines().any(|line| line == "RuntimeDirectory=throatseg"), "the unit creates {RUNTIME_DIR}");
    for path in board_configs() {
        let config = RunConfig::load(&path).unwrap();
        let output = &config.output.dir;
        assert!(output.starts_with(STATE_DIR), "{}: output.dir {} is outside {STATE_DIR}, which the service cannot write", path.display(), output.display());
        if let Some(fifo) = &config.trigger.fifo {
            assert_eq!(fifo.parent(), Some(Path::new(RUNTIME_DIR)), "{}: trigger.fifo {} is not in {RUNTIME_DIR}", path.display(), fifo.display());
        }
    }
}
