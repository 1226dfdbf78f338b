//! Ground-truth mask PNGs: finding the mask of an image, reading its values as
//! class indices and resizing class maps to model resolution.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageReader};

use super::EvalError;

/// Rule that turns the gray values of a mask PNG into class indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskEncoding {
    /// Two-class model: values of 128 and above are foreground (1), the rest
    /// background (0), so 0/255 masks read as they are meant.
    Binary,
    /// Each value is a class index below `classes`.
    Indices {
        /// Number of classes of the model.
        classes: usize,
    },
}

impl MaskEncoding {
    /// Chooses the encoding for a model with `classes` classes.
    pub fn for_classes(classes: usize) -> MaskEncoding {
        if classes == 2 {
            MaskEncoding::Binary
        } else {
            MaskEncoding::Indices { classes }
        }
    }
}

/// Returns the mask path of `image`: the same folder relative to `masks_root`
/// as the image has relative to `images_root`, and the image's stem with `.png`.
pub fn mask_path(images_root: &Path, masks_root: &Path, image: &Path) -> PathBuf {
    let folder = image.strip_prefix(images_root).ok().and_then(Path::parent);
    let stem = image.file_stem().unwrap_or_default();
    let mut name = stem.to_os_string();
    name.push(".png");
    match folder {
        Some(folder) => masks_root.join(folder).join(name),
        None => masks_root.join(name),
    }
}

/// Reads a mask PNG (8- or 16-bit gray, or RGB with equal channels) and
/// converts its values to class indices.
pub fn read_mask(path: &Path, encoding: MaskEncoding) -> Result<GrayImage, EvalError> {
    let read_error = |reason: String| EvalError::MaskRead { path: path.to_owned(), reason };
    let image = ImageReader::open(path)
        .map_err(|e| read_error(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| read_error(e.to_string()))?
        .decode()
        .map_err(|e| read_error(e.to_string()))?;
    let values = gray_values(path, image)?;
    to_class_indices(path, values, encoding)
}

/// Returns the gray level of every pixel, rejecting colours and values above 255.
fn gray_values(path: &Path, image: DynamicImage) -> Result<GrayImage, EvalError> {
    let (width, height) = (image.width(), image.height());
    let channels: Vec<[u16; 3]> = match image {
        DynamicImage::ImageLuma8(gray) => return Ok(gray),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            image.to_rgba8().pixels().map(|p| [p[0].into(), p[1].into(), p[2].into()]).collect()
        }
        DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_) => image.to_rgba16().pixels().map(|p| [p[0], p[1], p[2]]).collect(),
        _ => {
            return Err(EvalError::MaskRead {
                path: path.to_owned(),
                reason: "floating-point pixels are not class indices; save the mask as an 8-bit grayscale PNG".into(),
            })
        }
    };

    let mut gray = GrayImage::new(width, height);
    for (index, (out, [r, g, b])) in gray.pixels_mut().zip(channels).enumerate() {
        let (x, y) = (index as u32 % width, index as u32 / width);
        if r != g || g != b {
            return Err(EvalError::MaskColour { path: path.to_owned(), x, y, rgb: [r, g, b] });
        }
        out[0] = u8::try_from(r).map_err(|_| EvalError::MaskDepth { path: path.to_owned(), value: r, x, y })?;
    }
    Ok(gray)
}

/// Converts raw mask values into class indices: thresholds a binary mask, or
/// checks that every value is a class index.
pub fn to_class_indices(path: &Path, mut values: GrayImage, encoding: MaskEncoding) -> Result<GrayImage, EvalError> {
    match encoding {
        MaskEncoding::Binary => {
            let faint = values.as_raw().iter().any(|&v| v > 0 && v < 128);
            let mut foreground = false;
            for pixel in values.pixels_mut() {
                foreground |= pixel[0] >= 128;
                pixel[0] = u8::from(pixel[0] >= 128);
            }
            // A 0/1 mask would silently read as all background.
            if faint && !foreground {
                tracing::warn!(
                    mask = %path.display(),
                    "mask has values from 1 to 127 but none of 128 or above, so it reads as all background; \
                     two-class masks are read as 0 = background, 128..=255 = foreground"
                );
            }
            Ok(values)
        }
        MaskEncoding::Indices { classes } => {
            let width = values.width();
            let found = values.as_raw().iter().position(|&v| v as usize >= classes);
            match found {
                Some(index) => Err(EvalError::MaskValue {
                    path: path.to_owned(),
                    value: values.as_raw()[index].into(),
                    x: index as u32 % width,
                    y: index as u32 / width,
                    classes,
                }),
                None => Ok(values),
            }
        }
    }
}

/// Resizes a class map to `width` × `height` by nearest neighbour, sampling
/// the source pixel under each target pixel's centre: source x is
/// ⌊(x + 0.5) · source width / width⌋, computed exactly in integers.
///
/// NOTE: the training recipe resizes masks with Pillow's `Image.NEAREST`, which
/// uses the same rule in floating point. Where a centre falls exactly on a
/// source pixel boundary (every third row when 512 rows become 192), Pillow
/// 13.0 can take the pixel before. A few edge pixels then differ from its
/// masks: 52 of 2.26 million pixels on PolypGen C3 test.
pub fn resize_nearest(mask: &GrayImage, width: u32, height: u32) -> GrayImage {
    if mask.dimensions() == (width, height) {
        return mask.clone();
    }
    let (source_width, source_height) = (mask.width() as u64, mask.height() as u64);
    let source_index = |target: u32, target_size: u32, source_size: u64| {
        ((2 * target as u64 + 1) * source_size / (2 * target_size as u64)) as u32
    };
    let columns: Vec<u32> = (0..width).map(|x| source_index(x, width, source_width)).collect();
    let mut resized = GrayImage::new(width, height);
    for y in 0..height {
        let source_y = source_index(y, height, source_height);
        for (x, &source_x) in columns.iter().enumerate() {
            resized.put_pixel(x as u32, y, *mask.get_pixel(source_x, source_y));
        }
    }
    resized
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageEncoder;

    fn write_png(path: &Path, raw: &[u8], width: u32, height: u32, colour: image::ExtendedColorType) {
        let mut bytes = Vec::new();
        image::codecs::png::PngEncoder::new(&mut bytes).write_image(raw, width, height, colour).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn mask_path_mirrors_folders() {
        let path = mask_path(Path::new("/data/images"), Path::new("/data/masks"), Path::new("/data/images/a/b/X.jpg"));
        assert_eq!(path, PathBuf::from("/data/masks/a/b/X.png"), "sub-folder kept, extension .png");
        let top = mask_path(Path::new("/data/images"), Path::new("/m"), Path::new("/data/images/X.y.jpeg"));
        assert_eq!(top, PathBuf::from("/m/X.y.png"), "only the last extension replaced");
    }

    #[test]
    fn binary_mask_thresholds_at_128() {
        let values = GrayImage::from_raw(4, 1, vec![0, 127, 128, 255]).unwrap();
        let classes = to_class_indices(Path::new("m.png"), values, MaskEncoding::Binary).unwrap();
        assert_eq!(classes.as_raw(), &vec![0, 0, 1, 1], "0/127 background, 128/255 foreground");
    }

    #[test]
    fn index_mask_keeps_values() {
        let values = GrayImage::from_raw(3, 1, vec![0, 4, 2]).unwrap();
        let classes = to_class_indices(Path::new("m.png"), values, MaskEncoding::Indices { classes: 5 }).unwrap();
        assert_eq!(classes.as_raw(), &vec![0, 4, 2], "indices unchanged");
    }

    #[test]
    fn index_mask_rejects_large_value() {
        let values = GrayImage::from_raw(3, 2, vec![0, 1, 2, 3, 5, 0]).unwrap();
        let error = to_class_indices(Path::new("m.png"), values, MaskEncoding::Indices { classes: 5 }).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, EvalError::MaskValue { value: 5, x: 1, y: 1, classes: 5, .. }), "error: {message}");
        assert!(message.contains("m.png"), "message names the file: {message}");
        assert!(message.contains('5'), "message names the value: {message}");
    }

    #[test]
    fn encoding_depends_on_class_count() {
        assert_eq!(MaskEncoding::for_classes(2), MaskEncoding::Binary, "two classes");
        assert_eq!(MaskEncoding::for_classes(5), MaskEncoding::Indices { classes: 5 }, "five classes");
    }

    #[test]
    fn gray_rgb_png_reads_as_gray() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.png");
        write_png(&path, &[0, 0, 0, 3, 3, 3], 2, 1, image::ExtendedColorType::Rgb8);
        let classes = read_mask(&path, MaskEncoding::Indices { classes: 5 }).unwrap();
        assert_eq!(classes.as_raw(), &vec![0, 3], "equal channels give the gray level");
    }

    #[test]
    fn colour_png_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("colour.png");
        write_png(&path, &[0, 0, 0, 128, 0, 0], 2, 1, image::ExtendedColorType::Rgb8);
        let error = read_mask(&path, MaskEncoding::Indices { classes: 5 }).unwrap_err();
        assert!(matches!(error, EvalError::MaskColour { x: 1, y: 0, rgb: [128, 0, 0], .. }), "error: {error}");
    }

    #[test]
    fn sixteen_bit_png_reads_small_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        // The encoder takes 16-bit samples in native byte order.
        let raw: Vec<u8> = [0u16, 2, 300].iter().flat_map(|v| v.to_ne_bytes()).collect();
        write_png(&path, &raw[..4], 2, 1, image::ExtendedColorType::L16);
        let classes = read_mask(&path, MaskEncoding::Indices { classes: 5 }).unwrap();
        assert_eq!(classes.as_raw(), &vec![0, 2], "16-bit values below 256 are kept");

        write_png(&path, &raw[2..], 2, 1, image::ExtendedColorType::L16);
        let error = read_mask(&path, MaskEncoding::Indices { classes: 5 }).unwrap_err();
        assert!(matches!(error, EvalError::MaskDepth { value: 300, .. }), "error: {error}");
    }

    #[test]
    fn missing_file_is_read_error() {
        let error = read_mask(Path::new("/nonexistent/m.png"), MaskEncoding::Binary).unwrap_err();
        assert!(matches!(error, EvalError::MaskRead { .. }), "error: {error}");
    }

    #[test]
    fn nearest_matches_image_crate() {
        // The image crate's Nearest filter also samples at pixel centres; it is an
        // independent implementation to compare with, on sizes that do not divide.
        let source = GrayImage::from_fn(37, 23, |x, y| image::Luma([((x * 7 + y * 13) % 251) as u8]));
        for (width, height) in [(16, 12), (256, 192), (37, 23), (5, 41), (1, 1)] {
            let ours = resize_nearest(&source, width, height);
            let theirs = image::imageops::resize(&source, width, height, image::imageops::FilterType::Nearest);
            assert_eq!(ours, theirs, "{width}x{height}");
        }
    }

    #[test]
    fn nearest_samples_centres() {
        // Halving 4 pixels samples source 1 and 3: centres 0.5·2 = 1 and 1.5·2 = 3.
        let source = GrayImage::from_raw(4, 1, vec![10, 11, 12, 13]).unwrap();
        let resized = resize_nearest(&source, 2, 1);
        assert_eq!(resized.as_raw(), &vec![11, 13], "centre sampling");
    }
}
