//! Decoding image files into RGB frames and resizing them.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use fast_image_resize::{images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

mod jpeg;

/// Errors from reading an input image.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The file could not be read.
    #[error("{path}: cannot read file: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    /// The path is a directory, device or pipe, or a link to one.
    #[error("{path}: not a regular file; give the path of an image file")]
    NotAFile { path: PathBuf },
    /// The file or the image it declares is too large to process.
    #[error("{path}: {reason}; downscale the image before segmenting it")]
    TooLarge { path: PathBuf, reason: String },
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
    let read_error = |error| FrameError::Read { path: path.to_owned(), error };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(FrameError::NotAFile { path: path.to_owned() });
    }
    if meta.len() > MAX_FILE_BYTES {
        let reason = format!("file is {} bytes, more than the limit of {MAX_FILE_BYTES}", meta.len());
        return Err(FrameError::TooLarge { path: path.to_owned(), reason });
    }
    // The length is checked again while reading, in case the file grows.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.is_empty() {
        return Err(FrameError::Empty { path: path.to_owned() });
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let reason = format!("file grew past the limit of {MAX_FILE_BYTES} bytes while being read");
        return Err(FrameError::TooLarge { path: path.to_owned(), reason });
    }
    decode_rgb(&bytes).map_err(|error| match error {
        DecodeError::TooLarge(reason) => FrameError::TooLarge { path: path.to_owned(), reason },
        DecodeError::Invalid(reason) => FrameError::Decode { path: path.to_owned(), reason },
    })
}

/// Returns whether `bytes` is a JPEG stream that reaches its end-of-image
/// marker through well-formed marker segments, which a cut-off MJPEG frame does not.
pub fn is_complete_jpeg(bytes: &[u8]) -> bool {
    jpeg::is_complete(bytes)
}

/// Largest image file read, in bytes (256 MiB).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Largest decoded image, in pixels (100 megapixels, about 300 MB as RGB).
/// A damaged header can claim any size; this bounds the allocation.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Reason bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The image is larger than [`MAX_PIXELS`].
    TooLarge(String),
    /// The bytes are not a complete JPEG or PNG image.
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::TooLarge(reason) | DecodeError::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for DecodeError {}

impl DecodeError {
    /// Returns whether the message contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }
}

/// Decodes JPEG or PNG bytes into packed 8-bit RGB (see [`read_rgb`]).
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let invalid = |e: image::ImageError| DecodeError::Invalid(e.to_string());
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| DecodeError::Invalid(e.to_string()))?;
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg::is_complete(bytes) {
        return Err(DecodeError::Invalid("JPEG data ends before its end-of-image marker; the file is truncated".into()));
    }
    let mut decoder = reader.into_decoder().map_err(invalid)?;
    let (width, height) = decoder.dimensions();
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(DecodeError::TooLarge(format!(
            "image is {width}x{height} pixels, more than the limit of {MAX_PIXELS}"
        )));
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 8);
    decoder.set_limits(limits).map_err(invalid)?;
    let orientation = decoder.orientation().map_err(invalid)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(invalid)?;
    image.apply_orientation(orientation);
    if image.width() == 0 || image.height() == 0 {
        return Err(DecodeError::Invalid("image has zero width or height".into()));
    }
    Ok(flatten_to_rgb(image))
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    fn png_bytes(raw: &[u8], width: u32, height: u32, colour: image::ExtendedColorType) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes).write_image(raw, width, height, colour).unwrap();
        bytes
    }

    #[test]
    fn grayscale_expands_to_rgb() {
        let bytes = png_bytes(&[0, 100, 200, 255], 2, 2, image::ExtendedColorType::L8);
        let rgb = decode_rgb(&bytes).unwrap();
        assert_eq!(rgb.get_pixel(1, 0), &Rgb([100, 100, 100]), "gray 100 becomes RGB 100,100,100");
        assert_eq!(rgb.get_pixel(0, 1), &Rgb([200, 200, 200]), "gray 200 becomes RGB 200,200,200");
    }

    #[test]
    fn alpha_composites_over_black() {
        let raw = [200, 100, 50, 255, 200, 100, 50, 0, 200, 100, 50, 128];
        let bytes = png_bytes(&raw, 3, 1, image::ExtendedColorType::Rgba8);
        let rgb = decode_rgb(&bytes).unwrap();
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([200, 100, 50]), "opaque pixel unchanged");
        assert_eq!(rgb.get_pixel(1, 0), &Rgb([0, 0, 0]), "transparent pixel becomes black");
        assert_eq!(rgb.get_pixel(2, 0), &Rgb([100, 50, 25]), "half-transparent pixel is scaled by alpha");
    }

    /// Big-endian TIFF block with one IFD entry: Orientation (0x0112) = 6,
    /// "rotate 90° clockwise to display".
    const EXIF_ROTATE_90: [u8; 26] = [
        0x4D, 0x4D, 0x00, 0x2A, 0x00, 0x00, 0x00, 0x08, 0x00, 0x01, 0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn exif_orientation_is_applied() {
        // Stored 32×16: left half red, right half blue.
        let mut stored = RgbImage::new(32, 16);
        for (x, _, pixel) in stored.enumerate_pixels_mut() {
            *pixel = if x < 16 { Rgb([220, 20, 20]) } else { Rgb([20, 20, 220]) };
        }
        let mut bytes = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
        encoder.set_exif_metadata(EXIF_ROTATE_90.to_vec()).unwrap();
        encoder.write_image(stored.as_raw(), 32, 16, image::ExtendedColorType::Rgb8).unwrap();

        let displayed = decode_rgb(&bytes).unwrap();
        assert_eq!(displayed.dimensions(), (16, 32), "rotated image is 16 wide and 32 high");
        // Rotating clockwise moves the stored left half to the top.
        assert!(displayed.get_pixel(8, 4)[0] > 150, "top is red: {:?}", displayed.get_pixel(8, 4));
        assert!(displayed.get_pixel(8, 28)[2] > 150, "bottom is blue: {:?}", displayed.get_pixel(8, 28));
    }

    #[test]
    fn truncated_jpeg_is_rejected() {
        let image = RgbImage::from_pixel(64, 64, Rgb([90, 120, 150]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut bytes).write_image(image.as_raw(), 64, 64, image::ExtendedColorType::Rgb8).unwrap();
        assert!(decode_rgb(&bytes).is_ok(), "the complete JPEG decodes");
        let error = decode_rgb(&bytes[..bytes.len() - 40]).unwrap_err();
        assert!(error.contains("truncated"), "a cut JPEG is reported as truncated: {error}");
    }

    #[test]
    fn resize_keeps_flat_colour() {
        let image = RgbImage::from_pixel(640, 480, Rgb([10, 128, 250]));
        let small = resize_rgb(&image, 256, 192).unwrap();
        assert_eq!(small.dimensions(), (256, 192), "target size");
        assert!(small.pixels().all(|p| *p == Rgb([10, 128, 250])), "a flat image stays flat");
    }
}
