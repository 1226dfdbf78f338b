//! `throatseg bench`: median time of each stage of a full DCIN frame on one
//! image, plus the colour kernels on a 768×512 frame, decode and resize of a
//! 1920×1080 MJPEG frame, and an LRIS search over 16,000 embeddings.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use image::RgbImage;
use throatseg::colour::{self, PixelFilter};
use throatseg::frame;
use throatseg::output;
use throatseg::references::{self, kernels::dot_kernels};

use super::load_pipeline;
use crate::BenchArgs;

/// Size of the frame the colour kernels are timed on (pixels).
const COLOUR_SIZE: (u32, u32) = (768, 512);

/// Size of the camera frame whose decode and resize are timed (pixels).
const MJPEG_SIZE: (u32, u32) = (1920, 1080);

/// Size of the generated embedding set the LRIS search is timed on.
const SEARCH_ROWS: usize = 16_000;
const SEARCH_DIMS: usize = 1280;

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let pipeline = load_pipeline(&args.pipeline)?;
    // read_rgb checks the file as `segment` does, so both report a bad file
    // alike. The bytes are read again to time decoding on its own.
    let rgb = frame::read_rgb(&args.image)?;
    let bytes = std::fs::read(&args.image).with_context(|| format!("cannot read {}", args.image.display()))?;
    let card = pipeline.segmenter().card();
    let runs = args.runs as usize;

    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for _ in 0..runs {
        let started = Instant::now();
        let decoded = frame::decode_rgb(&bytes)?;
        samples.entry("decode").or_default().push(elapsed_ms(started));

        let result = pipeline.segment(&decoded).with_context(|| format!("{}: segmentation failed", args.image.display()))?;
        for (stage, ms) in &result.timings.0 {
            samples.entry(stage).or_default().push(*ms);
        }

        let started = Instant::now();
        let mask = output::mask_png(&args.image, &result.mask)?;
        let overlay = output::rgb_png(&args.image, &output::overlay(&decoded, &result.mask, &card.colours, 0.45))?;
        samples.entry("encode").or_default().push(elapsed_ms(started));
        std::hint::black_box((mask, overlay));
    }

    let mut report: BTreeMap<String, f64> = samples.into_iter().map(|(stage, times)| (format!("{stage}_ms"), median(times))).collect();
    let frame_total: f64 = report.values().sum();
    report.insert("frame_total_ms".into(), frame_total);
    report.insert("colour_768x512_ms".into(), colour_ms(&rgb, &pipeline, runs)?);
    report.insert("mjpeg_1920x1080_to_model_ms".into(), mjpeg_ms(&rgb, card.input.width, card.input.height, runs)?);
    report.insert("lris_16000_ms".into(), search_ms(runs));

    // The CIE L*a*b* path has only a scalar implementation.
    let colour_kernels = match pipeline.colour_space() {
        colour::ColourSpace::Lab => "scalar",
        colour::ColourSpace::LAlphaBeta => colour::kernels().name,
    };
    if args.json {
        let mut object = serde_json::Map::new();
        object.insert("simd".into(), throatseg::cpu::active().name().into());
        object.insert("colour_space".into(), pipeline.colour_space().name().into());
        object.insert("colour_kernels".into(), colour_kernels.into());
        object.insert("dot_kernels".into(), dot_kernels().name.into());
        object.insert("runs".into(), runs.into());
        for (key, value) in &report {
            object.insert(key.clone(), serde_json::json!((value * 1e4).round() / 1e4));
        }
        println!("{}", serde_json::Value::Object(object));
    } else {
        println!("{} ({}x{}), median of {runs} runs", args.image.display(), rgb.width(), rgb.height());
        println!("kernels: colour {colour_kernels} ({}), int8 dot {}", pipeline.colour_space(), dot_kernels().name);
        for (key, value) in &report {
            println!("{:<32} {value:>10.3} ms", key.trim_end_matches("_ms"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    if times.len() % 2 == 1 {
        times[middle]
    } else {
        (times[middle - 1] + times[middle]) / 2.0
    }
}

/// Times statistics plus one transfer to the GRIS reference on the image
/// resized to 768×512, in the pipeline's colour space, as a DCIN frame runs
/// them: through `ColourSpace::analyse`, so that the transfer reuses the
/// statistics pass's log2-LMS where the kernels keep it.
fn colour_ms(rgb: &RgbImage, pipeline: &throatseg::pipeline::Pipeline, runs: usize) -> anyhow::Result<f64> {
    let frame = frame::resize_rgb(rgb, COLOUR_SIZE.0, COLOUR_SIZE.1)?;
    let filter = PixelFilter::default();
    let space = pipeline.colour_space();
    let own = space.stats(frame.as_raw(), filter);
    let target = pipeline.references().and_then(|set| set.stats_in(space, set.info().gris_index)).unwrap_or(own);
    let mut out = vec![0u8; frame.as_raw().len()];
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(5) {
        let started = Instant::now();
        space.analyse(frame.as_raw(), filter).transfer_to(&mut out, &target);
        times.push(elapsed_ms(started));
        std::hint::black_box(&out);
    }
    Ok(median(times))
}

/// Times decoding a 1920×1080 JPEG (an MJPEG camera frame) and resizing it to the model input.
fn mjpeg_ms(rgb: &RgbImage, width: u32, height: u32, runs: usize) -> anyhow::Result<f64> {
    let camera = frame::resize_rgb(rgb, MJPEG_SIZE.0, MJPEG_SIZE.1)?;
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&camera)
        .context("cannot encode the 1920x1080 test frame")?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let decoded = frame::decode_rgb(&jpeg)?;
        let resized = frame::resize_rgb(&decoded, width, height)?;
        times.push(elapsed_ms(started));
        std::hint::black_box(resized);
    }
    Ok(median(times))
}

/// Times one LRIS top-1 search over a generated set of 16,000 int8 embeddings of 1280 dimensions.
fn search_ms(runs: usize) -> f64 {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let rows: Vec<i8> = (0..SEARCH_ROWS * SEARCH_DIMS).map(|_| (((next() >> 40) % 255) as i32 - 127) as i8).collect();
    let scales: Vec<f32> = (0..SEARCH_ROWS).map(|_| 1.0 / 127.0 / (SEARCH_DIMS as f32).sqrt()).collect();
    let query: Vec<f32> = (0..SEARCH_DIMS).map(|_| ((next() >> 40) % 2001) as f32 / 1000.0 - 1.0).collect();

    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(5) {
        let started = Instant::now();
        let best = references::nearest(&rows, &scales, SEARCH_DIMS, &query);
        times.push(elapsed_ms(started));
        std::hint::black_box(best);
    }
    median(times)
}
