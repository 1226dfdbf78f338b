//! Measuring segmentation against ground truth: Dice at model resolution over
//! a data set, with the truth from mask PNGs or a COCO file.
//!
//! Each image is segmented by the [`Pipeline`]. Its truth class map is read at
//! the image's original size, resized to the model input by nearest neighbour
//! and compared with the argmax of the logits at that size
//! ([`Segmentation::model_mask`](crate::pipeline::Segmentation::model_mask)).
//! Pixel counts are summed over all images before Dice is computed.

pub mod coco;
pub mod masks;
pub mod metrics;
pub mod polygon;
pub mod report;

use std::path::{Path, PathBuf};

use image::GrayImage;

use crate::frame::{self, FrameError};
use crate::pipeline::{Pipeline, PipelineError};

pub use coco::{CocoError, CocoSet};
pub use masks::MaskEncoding;
pub use metrics::{ClassCounts, Confusion, CountError, DiceSummary};

/// Errors from evaluating one image; the batch goes on without it.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// No mask file for the image.
    #[error("{image}: no mask {mask}; masks are matched to images by file stem (X.jpg needs X.png), so add the mask or remove the image")]
    MaskMissing { image: PathBuf, mask: PathBuf },
    /// The mask file could not be read or decoded.
    #[error("{path}: cannot read mask: {reason}")]
    MaskRead { path: PathBuf, reason: String },
    /// The mask has colour pixels instead of gray class indices.
    #[error("{path}: pixel ({x}, {y}) has the colour {rgb:?}, not a gray level; save class indices as an 8-bit grayscale PNG (palette and colour-coded masks are not read)")]
    MaskColour { path: PathBuf, x: u32, y: u32, rgb: [u16; 3] },
    /// A 16-bit mask has a value that does not fit 8 bits.
    #[error("{path}: pixel ({x}, {y}) has the 16-bit value {value}, which is not a class index; save class indices as an 8-bit grayscale PNG")]
    MaskDepth { path: PathBuf, value: u16, x: u32, y: u32 },
    /// A mask value is not a class index of the model.
    #[error("{path}: pixel ({x}, {y}) has the value {value}, but the model has {classes} classes (0 to {}); fix the mask, or pass the model it was labelled for with --model", classes.saturating_sub(1))]
    MaskValue { path: PathBuf, value: u16, x: u32, y: u32, classes: usize },
    /// The mask and its image differ in size.
    #[error("{path}: mask is {mask_width}x{mask_height} pixels but its image {image} is {image_width}x{image_height}; a mask must have its image's size (after EXIF rotation)")]
    MaskSize { path: PathBuf, image: PathBuf, mask_width: u32, mask_height: u32, image_width: u32, image_height: u32 },
    /// The COCO file lists no entry for the image.
    #[error("{image}: not listed in {coco}; add it to `images` (an entry without annotations is all background) or remove the image")]
    CocoImageMissing { image: PathBuf, coco: PathBuf },
    /// Several COCO entries end in the image's file name.
    #[error("{image}: {count} entries of `images` in {coco} end in this file name; make file_name the path relative to the images folder")]
    CocoImageAmbiguous { image: PathBuf, coco: PathBuf, count: usize },
    /// The COCO entry gives another size than the image has.
    #[error("{image}: {coco} gives the size {coco_width}x{coco_height}, but the image is {image_width}x{image_height}; fix width and height in the COCO file")]
    CocoImageSize { image: PathBuf, coco: PathBuf, coco_width: u32, coco_height: u32, image_width: u32, image_height: u32 },
    /// The image could not be decoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Segmentation failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The class maps could not be counted.
    #[error("{image}: {error}")]
    Count { image: PathBuf, error: CountError },
}

/// Source of a data set's ground truth.
#[derive(Debug)]
pub enum GroundTruth {
    /// Mask PNGs under this folder, one per image, matched by relative path and stem.
    Masks(PathBuf),
    /// Polygon annotations of a COCO file.
    Coco(CocoSet),
}

impl GroundTruth {
    /// Reads the truth class map of `image` at its original size
    /// (`width` × `height` pixels). `images_root` is the folder the images were
    /// found in, which mask and COCO paths are relative to.
    pub fn class_map(
        &self,
        images_root: &Path,
        image: &Path,
        (width, height): (u32, u32),
        encoding: MaskEncoding,
    ) -> Result<GrayImage, EvalError> {
        match self {
            GroundTruth::Masks(masks_root) => {
                let path = masks::mask_path(images_root, masks_root, image);
                if !path.is_file() {
                    return Err(EvalError::MaskMissing { image: image.to_owned(), mask: path });
                }
                let map = masks::read_mask(&path, encoding)?;
                if map.dimensions() != (width, height) {
                    return Err(EvalError::MaskSize {
                        path,
                        image: image.to_owned(),
                        mask_width: map.width(),
                        mask_height: map.height(),
                        image_width: width,
                        image_height: height,
                    });
                }
                Ok(map)
            }
            GroundTruth::Coco(set) => {
                let relative = image.strip_prefix(images_root).unwrap_or(image);
                let entry = set.find(image, relative)?;
                if let Some((coco_width, coco_height)) = entry.size {
                    if (coco_width, coco_height) != (width, height) {
                        return Err(EvalError::CocoImageSize {
                            image: image.to_owned(),
                            coco: set.path().to_owned(),
                            coco_width,
                            coco_height,
                            image_width: width,
                            image_height: height,
                        });
                    }
                }
                Ok(entry.rasterise(width, height))
            }
        }
    }
}

/// Segments one image and counts its pixels against the truth at model
/// resolution, returning the image's confusion matrix.
pub fn evaluate_image(
    pipeline: &Pipeline,
    truth: &GroundTruth,
    images_root: &Path,
    image: &Path,
) -> Result<Confusion, EvalError> {
    let card = pipeline.segmenter().card();
    let classes = card.classes.len();
    let rgb = frame::read_rgb(image)?;
    let truth_map = truth.class_map(images_root, image, rgb.dimensions(), MaskEncoding::for_classes(classes))?;

    let segmentation = pipeline.segment(&rgb)?;

    let truth_small = masks::resize_nearest(&truth_map, card.input.width, card.input.height);
    let mut confusion = Confusion::new(classes);
    confusion
        .add_maps(&truth_small, &segmentation.model_mask)
        .map_err(|error| EvalError::Count { image: image.to_owned(), error })?;
    Ok(confusion)
}
