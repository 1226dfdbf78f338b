//! `throatseg refs build` and `throatseg refs info`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use throatseg::colour::{ColourSpace, PixelFilter};
use throatseg::models::{bundled, Model, Task, EMBEDDER_FILE, SEGMENTER_FILE};
use throatseg::output::write_atomic;
use throatseg::pipeline::collect_inputs;
use throatseg::references::{build_reference_file, measure_image, BuildSettings, ReferenceSet};

use super::progress_bar;
use crate::{RefsBuildArgs, RefsInfoArgs};

pub fn refs_build(args: RefsBuildArgs) -> anyhow::Result<ExitCode> {
    let model_path = args.model.unwrap_or_else(|| bundled(SEGMENTER_FILE));
    let embedder_path = args.embedder.unwrap_or_else(|| bundled(EMBEDDER_FILE));
    let segmenter = Model::load(&model_path, Task::Segmentation)?;
    let embedder = Model::load(&embedder_path, Task::Embedding)?;
    let embedder_bytes =
        std::fs::read(&embedder_path).with_context(|| format!("cannot read {}", embedder_path.display()))?;
    let stats_size = (segmenter.card().input.width, segmenter.card().input.height);
    if args.dark_below >= args.bright_from {
        bail!(
            "--dark-below {} must be below --bright-from {}, or no pixel would count for the statistics",
            args.dark_below,
            args.bright_from
        );
    }
    let filter = PixelFilter { dark_below: args.dark_below, bright_from: args.bright_from };

    let mut arguments = args.images.clone();
    if let Some(list) = &args.list {
        arguments.extend(read_list(list)?);
    }
    let inputs = collect_inputs(&arguments);
    for (path, reason) in &inputs.missing {
        eprintln!("{}: {reason}", path.display());
    }
    if inputs.skipped > 0 {
        eprintln!("skipped {} files without a .jpg, .jpeg or .png extension", inputs.skipped);
    }
    let mut failed = inputs.missing.len();
    let bar = progress_bar(inputs.files.len(), "images measured");
    let mut images = Vec::with_capacity(inputs.files.len());
    for path in &inputs.files {
        match measure_image(path, &embedder, stats_size, filter) {
            Ok(image) if image.stats.std.iter().any(|&s| s < FLAT_STD) => {
                failed += 1;
                bar.suspend(|| {
                    eprintln!("{}: image is flat (a colour standard deviation is below {FLAT_STD}); it cannot serve as a colour reference", path.display())
                });
            }
            Ok(mut image) => {
                image.name = stored_name(path, &arguments);
                images.push(image);
            }
            Err(error) => {
                failed += 1;
                bar.suspend(|| eprintln!("{error}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if images.is_empty() {
        bail!("no source image could be read; nothing was written to {}", args.out.display());
    }

    let settings = BuildSettings {
        stats_size,
        filter,
        embedder_name: embedder.card().name.clone(),
        embedder_crc32: crc32fast::hash(&embedder_bytes),
    };
    let bar = progress_bar(images.len(), "histograms compared");
    let (bytes, medoid) = build_reference_file(&images, &settings, |done| bar.set_position(done as u64))
        .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    write_atomic(&args.out, &bytes)?;
    eprintln!(
        "wrote {} ({} images, GRIS {} = {}){}",
        args.out.display(),
        images.len(),
        medoid.index,
        images[medoid.index].name,
        if failed > 0 { format!(", {failed} inputs failed") } else { String::new() }
    );
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Smallest lαβ standard deviation a reference image may have in each channel.
/// Transferring to a flat reference would flatten every frame.
const FLAT_STD: f32 = 1e-3;

/// Returns the name stored for a source image: its path relative to the
/// directory argument it was found under, or its file name when it was named
/// directly or through a list.
fn stored_name(path: &Path, arguments: &[PathBuf]) -> String {
    let relative = arguments
        .iter()
        .filter(|argument| argument.is_dir())
        .find_map(|argument| path.strip_prefix(argument).ok());
    let name = relative.map(Path::to_path_buf).or_else(|| path.file_name().map(PathBuf::from)).unwrap_or_default();
    name.to_string_lossy().into_owned()
}

/// Reads a list file: one image path per line, relative to the list's directory.
fn read_list(list: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list).with_context(|| format!("cannot read image list {}", list.display()))?;
    let base = list.parent().unwrap_or(Path::new("."));
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| base.join(line))
        .collect())
}

pub fn refs_info(args: RefsInfoArgs) -> anyhow::Result<ExitCode> {
    let set = ReferenceSet::open(&args.file)?;
    let info = set.info();
    let gris_name = set.name(info.gris_index);
    if args.json {
        let mut value = serde_json::json!({
            "file": args.file.display().to_string(),
            "checksum": "ok",
            "info": info,
            "gris_name": gris_name,
        });
        if args.list {
            value["images"] = (0..set.len()).map(|i| set.name(i)).collect::<Vec<_>>().into();
        }
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("file:              {}", args.file.display());
    println!("format version:    {}", info.version);
    println!("checksum:          ok");
    println!("images:            {}", info.count);
    println!("histogram bins:    {}", info.histogram_bins);
    println!("embedding:         {} dimensions, int8, from {} (CRC-32 {:08x})", info.embedding_dims, info.embedder_name, info.embedder_crc32);
    println!("GRIS reference:    {} {} (mean histogram distance {:.4})", info.gris_index, gris_name, info.gris_mean_distance);
    println!("statistics size:   {}x{} pixels", info.stats_size.0, info.stats_size.1);
    println!("pixel filter:      dark below {}, bright from {}", info.filter.dark_below, info.filter.bright_from);
    if info.colour_spaces.contains(&ColourSpace::Lab) {
        println!("colour spaces:     lalphabeta (lαβ), lab (8-bit CIE L*a*b* codes)");
    } else {
        println!("colour spaces:     lalphabeta (lαβ) only; rebuild with `throatseg refs build` for lab");
    }
    if args.list {
        for index in 0..set.len() {
            let stats = set.stats(index);
            println!("{index:6} {}  lαβ mean {:?} std {:?}", set.name(index), stats.mean, stats.std);
            if let Some(stats) = set.stats_in(ColourSpace::Lab, index) {
                println!("{:6} {}  lab mean {:?} std {:?}", "", " ".repeat(set.name(index).chars().count()), stats.mean, stats.std);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
