//! ONNX models run by tract, each described by a model card that is checked
//! against the network when it is loaded.

mod bundled;
mod card;

use std::path::{Path, PathBuf};

use image::RgbImage;
use tract_onnx::pb::type_proto::Value as TypeValue;
use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;
use tract_onnx::prelude::*;

pub use bundled::{bundled, model_dir, EMBEDDER_FILE, MODEL_DIR_ENV, REFERENCES_FILE, SEGMENTER_FILE};
pub use card::{card_path, InputSpec, ModelCard, Normalisation, OutputSpec, Task};

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The card file is missing or unreadable.
    #[error("{path}: cannot read model card: {error}; every model needs a JSON card beside it with the same stem")]
    CardRead { path: PathBuf, error: std::io::Error },
    /// The card is not valid JSON or is inconsistent.
    #[error("{path}: invalid model card: {reason}")]
    CardInvalid { path: PathBuf, reason: String },
    /// The card describes a different task than the caller needs.
    #[error("{path}: the card gives task {found}, but this option needs a {expected} model")]
    WrongTask { path: PathBuf, expected: Task, found: Task },
    /// The ONNX file could not be parsed or optimised.
    #[error("{path}: cannot load ONNX model: {reason}")]
    Onnx { path: PathBuf, reason: String },
    /// The ONNX model does not match its card.
    #[error("{path}: model does not match its card: {reason}; re-export the model or fix the card")]
    CardMismatch { path: PathBuf, reason: String },
    /// Inference failed.
    #[error("{name}: inference failed: {reason}")]
    Run { name: String, reason: String },
}

type Plan = Arc<TypedRunnableModel>;

/// A model loaded by tract together with its card.
pub struct Model {
    card: ModelCard,
    path: PathBuf,
    plan: Plan,
}

/// Returns the declared input shape of the first graph input, where concrete.
fn declared_input_shape(proto: &tract_onnx::pb::ModelProto) -> Option<Vec<Option<i64>>> {
    let graph = proto.graph.as_ref()?;
    let initialisers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let input = graph.input.iter().find(|i| !initialisers.contains(i.name.as_str()))?;
    let TypeValue::TensorType(tensor) = input.r#type.as_ref()?.value.as_ref()?;
    let dims = tensor.shape.as_ref()?.dim.iter().map(|d| match d.value {
        Some(DimValue::DimValue(v)) => Some(v),
        _ => None,
    });
    Some(dims.collect())
}

impl Model {
    /// Loads an ONNX model and its card, checking the one against the other.
    pub fn load(path: &Path, task: Task) -> Result<Model, ModelError> {
        let card = ModelCard::load_for(path)?;
        if card.task != task {
            return Err(ModelError::WrongTask { path: path.to_owned(), expected: task, found: card.task });
        }
        let onnx_error = |e: TractError| ModelError::Onnx { path: path.to_owned(), reason: format!("{e:#}") };
        let mismatch = |reason: String| ModelError::CardMismatch { path: path.to_owned(), reason };

        let onnx = tract_onnx::onnx();
        let proto = onnx.proto_model_for_path(path).map_err(onnx_error)?;
        let (width, height) = (card.input.width as i64, card.input.height as i64);
        if let Some(dims) = declared_input_shape(&proto) {
            let expected = [Some(1), Some(3), Some(height), Some(width)];
            let agrees = dims.len() == 4 && dims.iter().zip(expected).all(|(d, e)| d.is_none() || *d == e);
            if !agrees {
                let shown: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
                return Err(mismatch(format!(
                    "ONNX input is [{}] but the card says [1, 3, {height}, {width}]",
                    shown.join(", ")
                )));
            }
        }

        let shape = [1usize, 3, card.input.height as usize, card.input.width as usize];
        let typed = onnx
            .model_for_proto_model(&proto)
            .and_then(|m| m.with_input_fact(0, f32::fact(shape).into()))
            .and_then(|m| m.into_optimized())
            .map_err(onnx_error)?;
        let output = typed.output_fact(0).map_err(onnx_error)?;
        let output_shape: Vec<usize> = output
            .shape
            .as_concrete()
            .map(|s| s.to_vec())
            .ok_or_else(|| mismatch("the output shape is not fixed".into()))?;
        let expected: Vec<usize> = match task {
            Task::Segmentation => vec![1, card.classes.len(), shape[2], shape[3]],
            Task::Embedding => vec![1, card.output.dimensions.unwrap_or(0)],
        };
        if output_shape != expected {
            return Err(mismatch(format!("ONNX output is {output_shape:?} but the card implies {expected:?}")));
        }
        let plan = typed.into_runnable().map_err(onnx_error)?;
        tracing::info!(model = %path.display(), name = %card.name, "loaded model");
        Ok(Model { card, path: path.to_owned(), plan })
    }

    /// Counts the operators of the optimised network that tract runs, keyed by
    /// operator name and the element type of its first input (for example
    /// `Conv (QU8)`), so a user can see which parts run on integer kernels.
    pub fn operator_summary(&self) -> Vec<(String, usize)> {
        let model = self.plan.model();
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for node in model.nodes() {
            let input_type = node
                .inputs
                .first()
                .and_then(|outlet| model.outlet_fact(*outlet).ok())
                .map(|fact| format!("{:?}", fact.datum_type))
                .unwrap_or_else(|| "-".into());
            *counts.entry(format!("{} ({input_type})", node.op.name())).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Returns the model card.
    pub fn card(&self) -> &ModelCard {
        &self.card
    }

    /// Returns the ONNX file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Converts an RGB image of exactly the input size into the normalised NCHW tensor.
    pub fn input_tensor(&self, image: &RgbImage) -> Result<Tensor, ModelError> {
        let (width, height) = (self.card.input.width as usize, self.card.input.height as usize);
        if image.dimensions() != (width as u32, height as u32) {
            return Err(self.run_error(format!(
                "input image is {}x{}, expected {width}x{height}",
                image.width(),
                image.height()
            )));
        }
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        let norm = &self.card.normalisation;
        let scale = norm.std.map(|s| 1.0 / s);
        for (index, pixel) in image.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * plane + index] = (pixel[c] as f32 - norm.mean[c]) * scale[c];
            }
        }
        Tensor::from_shape(&[1, 3, height, width], &data).map_err(|e| self.run_error(e.to_string()))
    }

    /// Runs the model on a prepared input tensor and returns the flat f32 output.
    pub fn run_tensor(&self, input: Tensor) -> Result<Vec<f32>, ModelError> {
        let outputs = self.plan.run(tvec!(input.into()));
        crate::cpu::clear_upper_vector_state();
        let outputs = outputs.map_err(|e| self.run_error(format!("{e:#}")))?;
        let view = outputs[0].to_plain_array_view::<f32>().map_err(|e| self.run_error(e.to_string()))?;
        Ok(view.iter().copied().collect())
    }

    /// Runs the model on an RGB image of exactly the input size.
    pub fn run_image(&self, image: &RgbImage) -> Result<Vec<f32>, ModelError> {
        let input = self.input_tensor(image)?;
        self.run_tensor(input)
    }

    fn run_error(&self, reason: String) -> ModelError {
        ModelError::Run { name: self.card.name.clone(), reason }
    }
}
