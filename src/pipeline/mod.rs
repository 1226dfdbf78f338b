//! The DCIN pipeline: reference selection, colour transfer, segmentation and
//! the ensemble, for one frame at a time; plus the batch driver for files.

mod batch;
pub mod ensemble;

use std::path::Path;
use std::time::Instant;

use image::{GrayImage, RgbImage};

use crate::colour::{self, ColourSpace, PixelFilter};
use crate::frame::{self, FrameError};
use crate::models::{Model, ModelError, Task};
use crate::references::{ReferenceError, ReferenceSet};

pub use batch::{collect_inputs, prepare_out_dir, publish_segmentation, segment_files, timings_json, BatchSummary, InputList};

/// Colour normalisation mode applied before segmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Segment the image as it is.
    None,
    /// Transfer to the global reference (histogram medoid).
    Gris,
    /// Transfer to the nearest reference by embedding.
    Lris,
    /// Both transfers, logits averaged.
    Full,
}

/// Reference selection strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Global reference image selection.
    Gris,
    /// Local reference image selection.
    Lris,
    /// Fixed by the user.
    Fixed,
}

/// A reference used for one frame.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ChosenReference {
    /// Selection strategy.
    pub strategy: Strategy,
    /// Index in the reference set.
    pub index: usize,
    /// Stored name.
    pub name: String,
    /// Cosine similarity to the frame: of the int8 embeddings for LRIS, of the
    /// unit-L2 colour histograms (at model input size) for GRIS and a fixed reference.
    pub similarity: f32,
}

/// Errors from processing one frame or setting up the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    /// The options do not fit together.
    #[error("{0}")]
    Config(String),
}

/// Stage timings of one frame, in milliseconds, in the order they ran.
#[derive(Clone, Debug, Default)]
pub struct Timings(pub Vec<(&'static str, f64)>);

impl Timings {
    fn add(&mut self, stage: &'static str, since: Instant) {
        let ms = since.elapsed().as_secs_f64() * 1e3;
        match self.0.iter_mut().find(|(name, _)| *name == stage) {
            Some(entry) => entry.1 += ms,
            None => self.0.push((stage, ms)),
        }
    }
}

/// The result of segmenting one frame.
#[derive(Clone, Debug)]
pub struct Segmentation {
    /// Class index per pixel, at the frame's size.
    pub mask: GrayImage,
    /// Class index per pixel at the model input size: the argmax of the mean
    /// logits before upsampling, which is what Dice is measured on.
    pub model_mask: GrayImage,
    /// References the frame was normalised to.
    pub references: Vec<ChosenReference>,
    /// Share of pixels per class.
    pub class_fractions: Vec<f64>,
    /// Time per stage.
    pub timings: Timings,
}

/// Everything needed to segment frames.
pub struct Pipeline {
    segmenter: Model,
    embedder: Option<Model>,
    references: Option<ReferenceSet>,
    mode: Mode,
    fixed_reference: Option<usize>,
    filter: PixelFilter,
    colour_space: ColourSpace,
}

/// Files and options for building a [`Pipeline`].
pub struct PipelineConfig<'a> {
    /// Segmentation model (ONNX, card beside it).
    pub model: &'a Path,
    /// Embedder model (needed for `lris` and `full`).
    pub embedder: &'a Path,
    /// Reference set (needed unless the mode is `none`).
    pub references: &'a Path,
    /// Normalisation mode.
    pub mode: Mode,
    /// A fixed reference (index or name) that replaces selection.
    pub fixed_reference: Option<&'a str>,
    /// Colour space of the statistics and the transfer.
    pub colour_space: ColourSpace,
}

impl Pipeline {
    /// Loads the models and the reference set that the configuration needs.
    pub fn load(config: &PipelineConfig) -> Result<Pipeline, PipelineError> {
        let segmenter = Model::load(config.model, Task::Segmentation)?;
        let needs_references = config.mode != Mode::None || config.fixed_reference.is_some();
        let needs_embedder = config.fixed_reference.is_none() && matches!(config.mode, Mode::Lris | Mode::Full);

        let references = if needs_references { Some(ReferenceSet::open(config.references)?) } else { None };
        if let Some(set) = &references {
            set.check_colour_space(config.colour_space)?;
        }
        let embedder = if needs_embedder {
            let embedder = Model::load(config.embedder, Task::Embedding)?;
            let bytes = std::fs::read(config.embedder).map_err(|error| {
                ReferenceError::Open { path: config.embedder.to_owned(), error }
            })?;
            let dims = embedder.card().output.dimensions.unwrap_or(0);
            if let Some(set) = &references {
                set.check_embedder(dims, crc32fast::hash(&bytes))?;
            }
            Some(embedder)
        } else {
            None
        };
        let fixed_reference = match (config.fixed_reference, &references) {
            (Some(given), Some(set)) => Some(set.resolve(given)?),
            _ => None,
        };
        let filter = references.as_ref().map(|r| r.info().filter).unwrap_or_default();
        if let Some(set) = &references {
            let model_size = (segmenter.card().input.width, segmenter.card().input.height);
            if set.info().stats_size != model_size {
                tracing::warn!(
                    references = %set.path().display(),
                    "reference statistics were computed at {:?}, the model input is {:?}",
                    set.info().stats_size, model_size
                );
            }
        }
        tracing::info!(colour_space = %config.colour_space, "colour normalisation");
        Ok(Pipeline { segmenter, embedder, references, mode: config.mode, fixed_reference, filter, colour_space: config.colour_space })
    }

    /// Returns the segmentation model.
    pub fn segmenter(&self) -> &Model {
        &self.segmenter
    }

    /// Returns the reference set, if the mode uses one.
    pub fn references(&self) -> Option<&ReferenceSet> {
        self.references.as_ref()
    }

    /// Returns the colour space of the statistics and the transfer.
    pub fn colour_space(&self) -> ColourSpace {
        self.colour_space
    }

    /// Returns the mode name written to results.
    pub fn mode_name(&self) -> &'static str {
        if self.fixed_reference.is_some() {
            return "reference";
        }
        match self.mode {
            Mode::None => "none",
            Mode::Gris => "gris",
            Mode::Lris => "lris",
            Mode::Full => "full",
        }
    }

    fn reference(&self, strategy: Strategy, index: usize, similarity: f32) -> ChosenReference {
        let name = self.references.as_ref().map(|r| r.name(index).to_owned()).unwrap_or_default();
        ChosenReference { strategy, index, name, similarity }
    }

    /// Chooses the references for a frame (the embedder runs on the raw frame).
    fn choose_references(&self, rgb: &RgbImage, resized: &RgbImage, timings: &mut Timings) -> Result<Vec<ChosenReference>, PipelineError> {
        let Some(set) = &self.references else { return Ok(Vec::new()) };
        let histogram_similarity = |index: usize| {
            let histogram = colour::rgb_histogram(resized.as_raw());
            histogram.iter().zip(set.histogram(index)).map(|(a, b)| a * b).sum::<f32>()
        };
        if let Some(index) = self.fixed_reference {
            return Ok(vec![self.reference(Strategy::Fixed, index, histogram_similarity(index))]);
        }
        let mut chosen = Vec::new();
        if matches!(self.mode, Mode::Gris | Mode::Full) {
            let gris = set.info().gris_index;
            chosen.push(self.reference(Strategy::Gris, gris, histogram_similarity(gris)));
        }
        if matches!(self.mode, Mode::Lris | Mode::Full) {
            if let Some(embedder) = &self.embedder {
                let started = Instant::now();
                let input = &embedder.card().input;
                let small = frame::resize_rgb(rgb, input.width, input.height)?;
                timings.add("resize", started);
                let started = Instant::now();
                let embedding = embedder.run_image(&small)?;
                timings.add("embed", started);
                let started = Instant::now();
                let (index, similarity) = set.nearest(&embedding);
                timings.add("search", started);
                chosen.push(self.reference(Strategy::Lris, index, similarity));
            }
        }
        Ok(chosen)
    }

    /// Segments one RGB frame of any size.
    pub fn segment(&self, rgb: &RgbImage) -> Result<Segmentation, PipelineError> {
        let mut timings = Timings::default();
        let card = self.segmenter.card();
        let (width, height) = (card.input.width, card.input.height);

        let started = Instant::now();
        let resized = frame::resize_rgb(rgb, width, height)?;
        timings.add("resize", started);

        let references = self.choose_references(rgb, &resized, &mut timings)?;
        let mut inputs = Vec::new();
        if references.is_empty() {
            inputs.push(resized.clone());
        } else {
            let started = Instant::now();
            let own = self.colour_space.analyse(resized.as_raw(), self.filter);
            timings.add("statistics", started);
            for reference in &references {
                let started = Instant::now();
                let target = match &self.references {
                    Some(set) => set.stats_in(self.colour_space, reference.index).ok_or_else(|| {
                        ReferenceError::MissingColourSpace {
                            path: set.path().to_owned(),
                            version: set.info().version,
                            space: self.colour_space,
                        }
                    })?,
                    None => own.stats(),
                };
                let mut normalised = vec![0u8; resized.as_raw().len()];
                own.transfer_to(&mut normalised, &target);
                timings.add("transfer", started);
                inputs.push(RgbImage::from_raw(width, height, normalised).expect("buffer sized for the image"));
            }
        }

        let mut outputs = Vec::with_capacity(inputs.len());
        for input in &inputs {
            let started = Instant::now();
            outputs.push(self.segmenter.run_image(input)?);
            timings.add("inference", started);
        }

        let started = Instant::now();
        let logits = ensemble::mean_logits(&outputs);
        let classes = card.classes.len();
        let mask = ensemble::argmax_upsampled(&logits, classes, width as usize, height as usize, rgb.width(), rgb.height());
        let model_mask = ensemble::argmax(&logits, classes, width, height);
        let class_fractions = ensemble::class_fractions(&mask, classes);
        timings.add("ensemble", started);

        Ok(Segmentation { mask, model_mask, references, class_fractions, timings })
    }
}
