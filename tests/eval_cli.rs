//! `throatseg eval` on real PolypGen C3 test images: the figures against an
//! independent count, COCO polygons against the same shapes as PNG masks, and
//! failures of single images and of the setup.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{stderr_text, throatseg};
use image::imageops::FilterType;
use image::GrayImage;
use throatseg::frame;
use throatseg::models::{EMBEDDER_FILE, REFERENCES_FILE, SEGMENTER_FILE};
use throatseg::colour::ColourSpace;
use throatseg::pipeline::{Mode, Pipeline, PipelineConfig};

/// Number of C3 test images each case uses.
const IMAGES: usize = 6;

/// Copies the first C3 test images to `dir/images` and their masks to `dir/masks`.
fn c3_sample(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    fs::create_dir_all(dir.join("images")).unwrap();
    fs::create_dir_all(dir.join("masks")).unwrap();
    let mut copied = Vec::new();
    for (image, mask) in common::polypgen_split("C3", "test").into_iter().take(IMAGES) {
        let image_copy = dir.join("images").join(image.file_name().unwrap());
        let mask_copy = dir.join("masks").join(mask.file_name().unwrap());
        fs::copy(&image, &image_copy).expect("C3 image copies");
        fs::copy(&mask, &mask_copy).expect("C3 mask copies");
        copied.push((image_copy, mask_copy));
    }
    copied
}

fn run_json(args: &[&str]) -> serde_json::Value {
    let output = throatseg(args);
    assert!(output.status.success(), "eval failed: {}", stderr_text(&output));
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Counts foreground TP, FP and FN at model resolution without the eval
/// module: the library pipeline's model-resolution mask against the truth
/// resized by the image crate's nearest filter.
fn independent_counts(images: &[(PathBuf, PathBuf)]) -> (u64, u64, u64) {
    let model = common::bundled(SEGMENTER_FILE);
    let embedder = common::bundled(EMBEDDER_FILE);
    let references = common::bundled(REFERENCES_FILE);
    let config = PipelineConfig { model: &model, embedder: &embedder, references: &references, mode: Mode::None, fixed_reference: None, colour_space: ColourSpace::default() };
    let pipeline = Pipeline::load(&config).expect("the bundled pipeline loads");
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (image, mask) in images {
        let rgb = frame::read_rgb(image).expect("image decodes");
        let predicted = pipeline.segment(&rgb).expect("segmentation runs").model_mask;
        assert_eq!(predicted.dimensions(), (256, 192), "model mask of {} at model size", image.display());
        let truth = image::open(mask).expect("mask decodes").to_luma8();
        let truth = image::imageops::resize(&truth, 256, 192, FilterType::Nearest);
        for (p, t) in predicted.pixels().zip(truth.pixels()) {
            match (p[0] == 1, t[0] >= 128) {
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
fn masks_match_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    let images = c3_sample(dir.path());
    let csv = dir.path().join("per-image.csv");
    let value = run_json(&[
        "eval",
        "--images",
        arg(&dir.path().join("images")),
        "--masks",
        arg(&dir.path().join("masks")),
        "--mode",
        "none",
        "--csv",
        arg(&csv),
        "--json",
    ]);

    assert_eq!(value["model"], "polyp-unet-lite0-aug", "model name of the bundled default");
    assert_eq!(value["mode"], "none", "mode");
    assert_eq!(value["colour_space"], "lalphabeta", "default colour space");
    assert_eq!(value["images"], IMAGES, "image count");
    assert_eq!(value["failed"], 0, "failed count");
    assert_eq!(value["model_size"], serde_json::json!([256, 192]), "model resolution");
    assert_eq!(value["classes"].as_array().map(Vec::len), Some(2), "two classes");

    let (tp, fp, fn_) = independent_counts(&images);
    println!("foreground TP {tp} FP {fp} FN {fn_} on {IMAGES} C3 test images, mode none");
    assert_eq!(value["foreground"]["tp"], tp, "foreground TP");
    assert_eq!(value["foreground"]["fp"], fp, "foreground FP");
    assert_eq!(value["foreground"]["fn"], fn_, "foreground FN");
    let expected = 200.0 * tp as f64 / (2 * tp + fp + fn_) as f64;
    let reported = value["foreground_dice"].as_f64().expect("foreground Dice is a number");
    assert!((reported - expected).abs() < 1e-3, "foreground Dice {reported}, expected {expected}");
    assert_eq!(value["classes"][1]["dice"], value["foreground_dice"], "two classes: polyp Dice is foreground Dice");

    // Background counts mirror the polyp counts, and the macro Dice is the mean of both.
    assert_eq!(value["classes"][0]["fp"], fn_, "background FP is polyp FN");
    let total = IMAGES as u64 * 256 * 192;
    let background_tp = total - tp - fp - fn_;
    let background = 200.0 * background_tp as f64 / (2 * background_tp + fp + fn_) as f64;
    let macro_dice = value["macro_dice"].as_f64().expect("macro Dice is a number");
    assert!((macro_dice - (background + expected) / 2.0).abs() < 2e-3, "macro Dice {macro_dice}");

    let table = fs::read_to_string(&csv).expect("the CSV is written");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "image,dice_background,dice_polyp,dice_foreground,error", "CSV header");
    assert_eq!(lines.len(), IMAGES + 1, "one CSV row per image");
    for line in &lines[1..] {
        assert_eq!(line.split(',').count(), 5, "five CSV fields in {line}");
        assert!(line.ends_with(','), "empty error field in {line}");
    }
}

/// Returns the rectangle's pixel range: pixels whose centre lies in [low, high).
fn covered(low: f64, high: f64) -> std::ops::Range<u32> {
    (low - 0.5).ceil() as u32..(high - 0.5).ceil() as u32
}

#[test]
fn coco_rectangles_equal_png_masks() {
    let dir = tempfile::tempdir().unwrap();
    let images = c3_sample(dir.path());
    let rectangle_masks = dir.path().join("rectangles");
    fs::create_dir_all(&rectangle_masks).unwrap();

    let mut coco_images = Vec::new();
    let mut annotations = Vec::new();
    for (index, (image, _)) in images.iter().enumerate() {
        let (width, height) = image::image_dimensions(image).expect("image size");
        // Corners off the pixel grid, different per image.
        let (x0, x1) = (width as f64 * 0.2 + 0.3 + index as f64, width as f64 * 0.55 + 0.7);
        let (y0, y1) = (height as f64 * 0.3 + 0.6, height as f64 * 0.7 + 0.2 + index as f64);
        let mut mask = GrayImage::new(width, height);
        for y in covered(y0, y1) {
            for x in covered(x0, x1) {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
        let stem = image.file_stem().unwrap().to_str().unwrap();
        mask.save(rectangle_masks.join(format!("{stem}.png"))).unwrap();

        let name = image.file_name().unwrap().to_str().unwrap();
        coco_images.push(serde_json::json!({ "id": index + 1, "file_name": name, "width": width, "height": height }));
        annotations.push(serde_json::json!({
            "id": 100 + index,
            "image_id": index + 1,
            "category_id": 5,
            "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
        }));
    }
    let coco = dir.path().join("rectangles.json");
    let document = serde_json::json!({
        "images": coco_images,
        "annotations": annotations,
        "categories": [{ "id": 5, "name": "polyp" }],
    });
    fs::write(&coco, document.to_string()).unwrap();

    let images_dir = dir.path().join("images");
    let from_masks = run_json(&["eval", "--images", arg(&images_dir), "--masks", arg(&rectangle_masks), "--mode", "none", "--json"]);
    let from_coco = run_json(&["eval", "--images", arg(&images_dir), "--coco", arg(&coco), "--mode", "none", "--json"]);
    assert_eq!(from_coco["images"], IMAGES, "every image found in the COCO file");
    let truth_pixels = from_masks["foreground"]["tp"].as_u64().unwrap() + from_masks["foreground"]["fn"].as_u64().unwrap();
    assert!(truth_pixels > 0, "the rectangles hold foreground pixels at model resolution");
    assert_eq!(from_coco["foreground"], from_masks["foreground"], "foreground counts and Dice");
    assert_eq!(from_coco["classes"], from_masks["classes"], "per-class counts and Dice");
    assert_eq!(from_coco["macro_dice"], from_masks["macro_dice"], "macro Dice");
}

#[test]
fn missing_mask_fails_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let images = c3_sample(dir.path());
    let (lonely_image, lonely_mask) = &images[0];
    fs::remove_file(lonely_mask).unwrap();

    let output = throatseg(&[
        "eval",
        "--images",
        arg(&dir.path().join("images")),
        "--masks",
        arg(&dir.path().join("masks")),
        "--mode",
        "none",
        "--json",
    ]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(1), "exit status 1 when an image fails: {stderr}");
    let name = lonely_image.file_name().unwrap().to_str().unwrap();
    assert!(stderr.contains(name), "stderr names the image: {stderr}");
    assert!(stderr.contains("no mask"), "stderr says what is missing: {stderr}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("figures are still printed");
    assert_eq!(value["images"], IMAGES - 1, "the other images are evaluated");
    assert_eq!(value["failed"], 1, "one failure counted");
}

#[test]
fn unknown_category_stops_setup() {
    let dir = tempfile::tempdir().unwrap();
    c3_sample(dir.path());
    let coco = dir.path().join("tumour.json");
    let document = r#"{"images": [], "annotations": [], "categories": [{"id": 1, "name": "tumour"}]}"#;
    fs::write(&coco, document).unwrap();

    let output = throatseg(&["eval", "--images", arg(&dir.path().join("images")), "--coco", arg(&coco), "--mode", "none"]);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(2), "setup error: {stderr}");
    assert!(stderr.contains("\"tumour\""), "names the category: {stderr}");
    assert!(stderr.contains("background, polyp"), "lists the model's classes: {stderr}");
}

#[test]
fn masks_and_coco_are_exclusive() {
    let output = throatseg(&["eval", "--images", "x", "--masks", "m", "--coco", "c.json"]);
    assert_eq!(output.status.code(), Some(2), "clap rejects both: {}", stderr_text(&output));
    let output = throatseg(&["eval", "--images", "x"]);
    assert_eq!(output.status.code(), Some(2), "clap requires one: {}", stderr_text(&output));
}
