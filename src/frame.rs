//! Decoding image files into RGB frames and resizing them.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// Errors from reading an input image.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The file could not be read.
    #[error("{path}: cannot read file: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file has no bytes.
    #[error("{path}: file is empty; re-export or re-copy the image")]
    Empty { path: PathBuf },
    /// The bytes are not a JPEG or PNG image, or the image is damaged.
    #[error("{path}: not a valid JPEG or PNG image ({reason}); check that the file is complete and not renamed from another format")]
    Decode { path: PathBuf, reason: String },
    /// Resizing failed.
    #[error("cannot resize a {width}x{height} image: {reason}")]
    Resize { width: u32, height: u32, reason: String },
}

/// Reads a JPEG or PNG file into packed 8-bit RGB.
///
/// EXIF orientation is applied, grayscale is expanded to three channels and an
/// alpha channel is composited over black (so transparent pixels count as the
/// dark border they usually are).
pub fn read_rgb(path: &Path) -> Result<RgbImage, FrameError> {
    let bytes = std::fs::read(path).map_err(|source| FrameError::Read { path: path.to_owned(), source })?;
    if bytes.is_empty() {
        return Err(FrameError::Empty { path: path.to_owned() });
    }
    decode_rgb(&bytes).map_err(|reason| FrameError::Decode { path: path.to_owned(), reason })
}

/// Decodes JPEG or PNG bytes into packed 8-bit RGB (see [`read_rgb`]).
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, String> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        return Err("JPEG data ends before its end-of-image marker; the file is truncated".into());
    }
    let mut decoder = reader.into_decoder().map_err(|e| e.to_string())?;
    let orientation = decoder.orientation().map_err(|e| e.to_string())?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
    image.apply_orientation(orientation);
    if image.width() == 0 || image.height() == 0 {
        return Err("image has zero width or height".into());
    }
    Ok(flatten_to_rgb(image))
}

/// Returns whether a JPEG stream has an end-of-image marker (FF D9) after its
/// last start-of-scan marker (FF DA).
///
/// The JPEG decoder fills a truncated scan with grey instead of failing, which
/// would segment half an image without a word. Inside entropy-coded data every
/// FF byte is followed by 00 or a restart marker, so FF D9 after the last scan
/// header can only be the real end marker. Bytes after that marker are allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker_at = |marker: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == marker);
    match (marker_at(0xDA), marker_at(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

fn flatten_to_rgb(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    let (width, height) = rgba.dimensions();
    let mut rgb = RgbImage::new(width, height);
    for (out, pixel) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = pixel[3] as u32;
        for c in 0..3 {
            out[c] = ((pixel[c] as u32 * alpha + 127) / 255) as u8;
        }
    }
    rgb
}

/// Resizes packed RGB to `width` × `height` with a bilinear convolution filter
/// (which also averages when shrinking, unlike point sampling).
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> Result<RgbImage, FrameError> {
    let error = |reason: String| FrameError::Resize { width: image.width(), height: image.height(), reason };
    if image.dimensions() == (width, height) {
        return Ok(image.clone());
    }
    let source = Image::from_vec_u8(image.width(), image.height(), image.as_raw().clone(), PixelType::U8x3)
        .map_err(|e| error(e.to_string()))?;
    let mut target = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new().resize(&source, &mut target, &options).map_err(|e| error(e.to_string()))?;
    RgbImage::from_raw(width, height, target.into_vec()).ok_or_else(|| error("buffer size mismatch".into()))
}
