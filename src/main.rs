//! The `throatseg` command line: parses arguments and dispatches to a command.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use throatseg::colour::ColourSpace;
use throatseg::pipeline::Mode;

/// Pharynx segmentation with dynamic colour normalisation, for ARM boards.
#[derive(Parser, Debug)]
#[command(name = "throatseg", version, about)]
struct Cli {
    /// Log more (-v: debug, -vv: trace); RUST_LOG overrides this.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Kernel family for colour and search: auto, scalar, avx2, avx512 or neon.
    #[arg(long, global = true, value_name = "FAMILY", env = throatseg::cpu::SIMD_ENV, default_value = "auto")]
    simd: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Segment image files (JPEG, PNG) and write masks, overlays and results.jsonl.
    Segment(SegmentArgs),
    /// Measure Dice against ground-truth masks or a COCO file.
    Eval(EvalArgs),
    /// Build or inspect a reference set.
    #[command(subcommand)]
    Refs(RefsCommand),
    /// Inspect a model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Time each stage of a full DCIN frame on one image (median of several runs).
    Bench(BenchArgs),
    /// Capture from a camera (or replay a record file) and segment on triggers, unattended.
    Run(RunArgs),
    /// Record raw camera frames to a file for replay with `run --source replay:FILE`.
    Record(RecordArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Configuration file (TOML), such as boards/example.toml.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Frame source: device:/dev/videoN, or replay:FILE for a record file; default: camera.device of the configuration.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// Stop after this many captures (segmented, rejected or failed).
    #[arg(long, value_name = "N")]
    pub max_captures: Option<u64>,
    /// Also record every frame that reaches inference, with capture marks, to this new file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write results to this folder instead of output.dir of the configuration.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the session's counters as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("camera").required(true).multiple(true).args(["device", "config"])))]
pub struct RecordArgs {
    /// Camera device node, such as /dev/video0; overrides camera.device of --config.
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<PathBuf>,
    /// Configuration file whose [camera] and [recovery] sections are used.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Record file to create; an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Print the counters as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Image file (JPEG or PNG).
    pub image: PathBuf,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Runs per stage; the median is reported.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub runs: u32,
    /// Print one JSON object of milliseconds instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options that set up the segmentation pipeline, shared by segment, eval and bench.
#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Colour normalisation before segmentation.
    #[arg(long, value_enum, default_value_t = Mode::Full)]
    pub mode: Mode,
    /// Normalise to this one reference (index, or name as listed by `refs info --list`) instead of selecting.
    #[arg(long, value_name = "ID", conflicts_with = "mode")]
    pub reference: Option<String>,
    /// Segmentation model (ONNX with its .json card); default: the bundled model.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Embedder model for LRIS (ONNX with its .json card); default: the bundled embedder.
    #[arg(long, value_name = "FILE")]
    pub embedder: Option<PathBuf>,
    /// Reference set; default: the bundled set.
    #[arg(long, value_name = "FILE")]
    pub refs: Option<PathBuf>,
    /// Colour space of the statistics and the transfer: lalphabeta (Reinhard's
    /// lαβ) or lab (8-bit CIE L*a*b* as OpenCV encodes it). Use lab to compare
    /// with OpenCV-based Lab transfer. It needs a reference set of format version 2.
    #[arg(long, value_enum, value_name = "SPACE", default_value_t = ColourSpace::LAlphaBeta)]
    pub colour_space: ColourSpace,
}

#[derive(clap::Args, Debug)]
pub struct SegmentArgs {
    /// Image files or directories (searched recursively for .jpg, .jpeg, .png).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("truth").required(true).args(["masks", "coco"])))]
pub struct EvalArgs {
    /// Folder of images (searched recursively for .jpg, .jpeg, .png).
    #[arg(long, value_name = "DIR")]
    pub images: PathBuf,
    /// Folder of class-index mask PNGs: image DIR/a/X.jpg needs mask a/X.png here.
    /// For a two-class model, values of 128 and above are foreground.
    #[arg(long, value_name = "DIR")]
    pub masks: Option<PathBuf>,
    /// COCO JSON file with polygon annotations; categories match classes by name.
    #[arg(long, value_name = "FILE")]
    pub coco: Option<PathBuf>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Write per-image Dice (×100) to this CSV file (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Load a model with tract, check it against its card, and list the
    /// operators that run (with their input element types).
    Info(ModelInfoArgs),
}

#[derive(clap::Args, Debug)]
pub struct ModelInfoArgs {
    /// ONNX model with its .json card beside it.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
enum RefsCommand {
    /// Build a reference set from clean source images.
    Build(RefsBuildArgs),
    /// Print a reference set's settings and verify its checksum.
    Info(RefsInfoArgs),
}

#[derive(clap::Args, Debug)]
pub struct RefsBuildArgs {
    /// Directories or files of source images.
    #[arg(long, num_args = 1.., required_unless_present = "list")]
    pub images: Vec<PathBuf>,
    /// Text file listing source images, one path per line (relative paths are
    /// resolved against the list's directory; blank lines and # comments are ignored).
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Reference-set file to write (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Segmentation model whose input size the statistics are computed at.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Embedder model; default: the bundled embedder.
    #[arg(long, value_name = "FILE")]
    pub embedder: Option<PathBuf>,
    /// Pixels whose brightest channel is below this (0..=255) are left out of the statistics.
    #[arg(long, default_value_t = 16)]
    pub dark_below: u8,
    /// Pixels whose darkest channel is at least this (0..=255) are left out of the statistics.
    #[arg(long, default_value_t = 250)]
    pub bright_from: u8,
}

#[derive(clap::Args, Debug)]
pub struct RefsInfoArgs {
    /// Reference-set file.
    pub file: PathBuf,
    /// Also list every image with its index.
    #[arg(long)]
    pub list: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn main() -> ExitCode {
    // A reader that closes the pipe early (`throatseg refs info --list | head`)
    // ends the program quietly, as it ends other command-line tools, instead
    // of making the next print panic.
    // SAFETY: this runs before any thread starts, and SIG_DFL is a valid disposition.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    commands::init_logging(cli.verbose);
    if let Err(error) = throatseg::cpu::Simd::parse(&cli.simd).and_then(throatseg::cpu::init) {
        eprintln!("error: --simd or {}: {error}", throatseg::cpu::SIMD_ENV);
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Segment(args) => commands::segment(args),
        Command::Eval(args) => commands::eval(args),
        Command::Refs(RefsCommand::Build(args)) => commands::refs_build(args),
        Command::Refs(RefsCommand::Info(args)) => commands::refs_info(args),
        Command::Model(ModelCommand::Info(args)) => commands::model_info(args),
        Command::Bench(args) => commands::bench(args),
        Command::Run(args) => commands::run(args),
        Command::Record(args) => commands::record(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
