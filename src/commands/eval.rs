//! `throatseg eval`: Dice of the pipeline against ground-truth masks or a COCO file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use throatseg::eval::report::{self, ImageRow, RunInfo};
use throatseg::eval::{evaluate_image, CocoSet, Confusion, GroundTruth};
use throatseg::output::write_atomic;
use throatseg::pipeline::collect_inputs;

use super::{load_pipeline, progress_bar};
use crate::EvalArgs;

pub fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let pipeline = load_pipeline(&args.pipeline)?;
    let card = pipeline.segmenter().card();

    let truth = ground_truth(args.masks.as_deref(), args.coco.as_deref(), &card.classes)?;
    let files = image_files(&args.images)?;
    tracing::info!(images = files.len(), mode = pipeline.mode_name(), "evaluating");

    let bar = progress_bar(files.len(), "images evaluated");
    let mut total = Confusion::new(card.classes.len());
    let mut rows = Vec::with_capacity(files.len());
    let mut failed = 0;
    for image in &files {
        let outcome = evaluate_image(&pipeline, &truth, &args.images, image);
        let relative = image.strip_prefix(&args.images).unwrap_or(image).display().to_string();
        match outcome {
            Ok(confusion) => {
                total.merge(&confusion);
                rows.push(ImageRow { image: relative, outcome: Ok(confusion.summary()) });
            }
            Err(error) => {
                failed += 1;
                bar.suspend(|| eprintln!("{error}"));
                rows.push(ImageRow { image: relative, outcome: Err(error.to_string()) });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    if let Some(csv) = &args.csv {
        write_atomic(csv, report::csv_table(&card.classes, &rows).as_bytes())
            .with_context(|| format!("cannot write the per-image table to {}", csv.display()))?;
    }
    let evaluated = files.len() - failed;
    if evaluated == 0 {
        bail!("none of the {} images could be evaluated; see the errors above", files.len());
    }

    let info = RunInfo {
        model: &card.name,
        mode: pipeline.mode_name(),
        reference: args.pipeline.reference.as_deref(),
        colour_space: pipeline.colour_space().name(),
        model_size: (card.input.width, card.input.height),
        classes: &card.classes,
        images: evaluated,
        failed,
    };
    let summary = total.summary();
    if args.json {
        println!("{}", report::json_summary(&info, &summary));
    } else {
        print!("{}", report::text_summary(&info, &summary));
    }
    if failed > 0 {
        eprintln!("{failed} of {} images failed and are left out of the figures", files.len());
    }
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Opens the ground truth named by `--masks` or `--coco` (clap allows exactly one).
fn ground_truth(masks: Option<&Path>, coco: Option<&Path>, classes: &[String]) -> anyhow::Result<GroundTruth> {
    match (masks, coco) {
        (Some(masks), _) => {
            if !masks.is_dir() {
                bail!("mask folder {} not found; pass the folder holding <stem>.png masks with --masks", masks.display());
            }
            Ok(GroundTruth::Masks(masks.to_owned()))
        }
        (None, Some(coco)) => Ok(GroundTruth::Coco(CocoSet::load(coco, classes)?)),
        (None, None) => bail!("no ground truth; pass --masks DIR or --coco FILE"),
    }
}

/// Lists the JPEG and PNG files under the images folder, recursively.
fn image_files(images: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !images.is_dir() {
        bail!("image folder {} not found; pass a folder of JPEG or PNG images with --images", images.display());
    }
    let inputs = collect_inputs(&[images.to_owned()]);
    for (path, reason) in &inputs.missing {
        eprintln!("{}: {reason}", path.display());
    }
    if inputs.files.is_empty() {
        bail!("no .jpg, .jpeg or .png files in {}", images.display());
    }
    Ok(inputs.files)
}
