//! Model cards: the JSON file beside each ONNX model that describes its input,
//! normalisation, classes and output.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The task of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Per-pixel class logits, NCHW.
    Segmentation,
    /// One feature vector per image, NC.
    Embedding,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Segmentation => "segmentation",
            Task::Embedding => "embedding",
        })
    }
}

/// Input size and layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Tensor layout; only "NCHW" is supported.
    pub layout: String,
}

/// Per-channel input normalisation on the 0..255 scale: `(x − mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    /// Mean of R, G and B (0..255 scale).
    pub mean: [f32; 3],
    /// Standard deviation of R, G and B (0..255 scale).
    pub std: [f32; 3],
}

/// Output layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// "NCHW" for segmentation logits, "NC" for embeddings.
    pub layout: String,
    /// Length of the feature vector (embedding models only).
    #[serde(default)]
    pub dimensions: Option<usize>,
}

/// The card of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Model name, recorded in results and reference sets.
    pub name: String,
    /// Task of the model.
    pub task: Task,
    /// Class names in output channel order (segmentation only).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Overlay colour (RGB) of each class (segmentation only).
    #[serde(default)]
    pub colours: Vec<[u8; 3]>,
    /// Input size and layout.
    pub input: InputSpec,
    /// Input normalisation.
    pub normalisation: Normalisation,
    /// Output layout.
    pub output: OutputSpec,
}

/// Returns the card path for a model: `model.onnx` → `model.json`.
pub fn card_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

impl ModelCard {
    /// Reads and checks the card for `model` from the JSON file beside it.
    pub fn load_for(model: &Path) -> Result<ModelCard, ModelError> {
        let path = card_path(model);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| ModelError::CardRead { path: path.clone(), error })?;
        // Editors on Windows often save UTF-8 with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let card: ModelCard = serde_json::from_str(text)
            .map_err(|e| ModelError::CardInvalid { path: path.clone(), reason: e.to_string() })?;
        card.check().map_err(|reason| ModelError::CardInvalid { path, reason })?;
        Ok(card)
    }

    /// Checks the card's own consistency, returning the first problem found.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name is empty; give the model a name".into());
        }
        if self.input.layout != "NCHW" {
            return Err(format!("input layout {:?} is not supported; use \"NCHW\"", self.input.layout));
        }
        if self.input.width == 0 || self.input.height == 0 || self.input.width > 8192 || self.input.height > 8192 {
            return Err(format!("input size {}x{} is out of range 1..=8192", self.input.width, self.input.height));
        }
        if self.normalisation.std.iter().any(|&s| !(s.is_finite() && s > 0.0)) {
            return Err("normalisation std must be positive".into());
        }
        match self.task {
            Task::Segmentation => {
                if self.classes.len() < 2 || self.classes.len() > 255 {
                    return Err(format!("a segmentation model needs 2 to 255 classes, the card lists {}", self.classes.len()));
                }
                if self.colours.len() != self.classes.len() {
                    return Err(format!("{} classes but {} colours; give one RGB colour per class", self.classes.len(), self.colours.len()));
                }
                let mut seen = std::collections::HashSet::new();
                if let Some(duplicate) = self.classes.iter().find(|name| !seen.insert(name.as_str())) {
                    return Err(format!("class {duplicate:?} is listed twice; class names must be unique"));
                }
                if self.output.layout != "NCHW" {
                    return Err(format!("segmentation output layout {:?} is not supported; use \"NCHW\"", self.output.layout));
                }
            }
            Task::Embedding => {
                if self.output.dimensions.unwrap_or(0) == 0 {
                    return Err("an embedding model needs output.dimensions".into());
                }
                if self.output.layout != "NC" {
                    return Err(format!("embedding output layout {:?} is not supported; use \"NC\"", self.output.layout));
                }
            }
        }
        Ok(())
    }
}
