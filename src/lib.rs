//! throatseg: segmentation of camera frames with dynamic colour image
//! normalisation (DCIN), for ARM boards.
//!
//! A frame is resized to the model input, its lαβ colour statistics are
//! transferred to those of reference images from the clean source set (chosen
//! globally by histogram medoid and locally by nearest embedding), each version
//! is segmented by a U-Net run with tract, and the logits are averaged.

pub mod colour;
pub mod frame;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod references;
