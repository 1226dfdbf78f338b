//! Foreground Dice of the bundled model on PolypGen C3 `test`, for every mode.

mod common;

use throatseg::frame;
use throatseg::models::{EMBEDDER_FILE, REFERENCES_FILE, SEGMENTER_FILE};
use throatseg::colour::ColourSpace;
use throatseg::pipeline::{Mode, Pipeline, PipelineConfig};

/// Counts (TP, FP, FN) of the foreground (any class > 0 against mask ≥ 128),
/// summed over all pixels of all images at their original size.
fn foreground_counts(mode: Mode, images: &[(std::path::PathBuf, std::path::PathBuf)]) -> (u64, u64, u64) {
    let model = common::bundled(SEGMENTER_FILE);
    let embedder = common::bundled(EMBEDDER_FILE);
    let references = common::bundled(REFERENCES_FILE);
    let config = PipelineConfig { model: &model, embedder: &embedder, references: &references, mode, fixed_reference: None, colour_space: ColourSpace::default() };
    let pipeline = Pipeline::load(&config).expect("the bundled pipeline loads");
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (image_path, mask_path) in images {
        let rgb = frame::read_rgb(image_path).expect("test image decodes");
        let truth = image::open(mask_path).expect("mask decodes").to_luma8();
        let predicted = pipeline.segment(&rgb).expect("segmentation runs").mask;
        assert_eq!(truth.dimensions(), predicted.dimensions(), "mask size of {}", image_path.display());
        for (p, t) in predicted.pixels().zip(truth.pixels()) {
            match (p[0] > 0, t[0] >= 128) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
    }
    (tp, fp, fn_)
}

#[test]
fn c3_test_dice_per_mode() {
    let images = common::polypgen_split("C3", "test");
    assert_eq!(images.len(), 46, "C3 test split size");
    // One thread per mode: the modes are independent, and under QEMU user
    // mode the test would otherwise run on one core for over half an hour.
    let modes = [Mode::None, Mode::Gris, Mode::Lris, Mode::Full];
    let counts: Vec<(u64, u64, u64)> = std::thread::scope(|scope| {
        let images = &images;
        let workers: Vec<_> = modes.iter().map(|&mode| scope.spawn(move || foreground_counts(mode, images))).collect();
        workers.into_iter().map(|worker| worker.join().expect("a mode's thread panicked")).collect()
    });
    let mut dice = Vec::new();
    for (&mode, (tp, fp, fn_)) in modes.iter().zip(counts) {
        let value = 2.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
        println!("C3 test foreground Dice, mode {mode:?}: {:.1}", value * 100.0);
        dice.push((mode, value));
    }
    let full = dice.iter().find(|(mode, _)| *mode == Mode::Full).map(|(_, d)| *d).unwrap_or(0.0);
    assert!(full >= 0.65, "foreground Dice with --mode full is {full:.4}, below 0.65");
    for (mode, value) in &dice {
        assert!(*value >= 0.5, "foreground Dice with mode {mode:?} is {value:.4}; the model or a transfer is broken");
    }
}
