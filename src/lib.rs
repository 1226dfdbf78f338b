//! throatseg: segmentation of camera frames with dynamic colour image
//! normalisation (DCIN), for ARM boards.
//!
//! A frame is resized to the model input. Its lαβ colour statistics are
//! transferred to those of two reference images from the clean source set: the
//! histogram medoid (global) and the nearest image by embedding (local). Each
//! version is segmented by a U-Net run with tract, and the logits are averaged.

pub mod capture;
pub mod colour;
pub mod cpu;
pub mod eval;
pub mod frame;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod references;
pub mod session;
