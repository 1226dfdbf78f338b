//! Conversion of raw camera frames (YUYV, NV12, RGB24, MJPEG) to packed RGB.
//!
//! YCbCr is converted with the ITU-R BT.601 matrix at limited range (luma
//! 16..235, chroma 16..240), which is what V4L2 assumes for these formats
//! unless a driver reports otherwise. The integer coefficients are the BT.601
//! ones scaled by 256: 1.164 → 298, 1.596 → 409, 0.391 → 100, 0.813 → 208,
//! 2.018 → 516.
//! NOTE: cameras that send full-range YCbCr (V4L2_QUANTIZATION_FULL_RANGE)
//! come out with slightly too much contrast; the quantization is not read yet.

use image::RgbImage;

use super::{PixelFormat, RawFrame};
use crate::frame;

/// Converts `frame` into `out`, reusing `out`'s buffer when the size is
/// unchanged, and returns the reason when the frame cannot be converted.
///
/// MJPEG frames are decoded by [`frame::decode_rgb`], which allocates a new
/// image, and must decode to the frame's declared size.
pub fn to_rgb(frame: &RawFrame, out: &mut RgbImage) -> Result<(), String> {
    frame.check()?;
    if frame.format == PixelFormat::Mjpeg {
        let decoded = frame::decode_rgb(&frame.data).map_err(|e| format!("MJPEG frame does not decode: {e}"))?;
        if decoded.dimensions() != (frame.width, frame.height) {
            let (width, height) = decoded.dimensions();
            return Err(format!("MJPEG frame decodes to {width}x{height}, the stream is {}x{}", frame.width, frame.height));
        }
        *out = decoded;
        return Ok(());
    }

    if out.dimensions() != (frame.width, frame.height) {
        *out = RgbImage::new(frame.width, frame.height);
    }
    let width = frame.width as usize;
    let height = frame.height as usize;
    let stride = frame.stride as usize;
    let rgb: &mut [u8] = out;
    match frame.format {
        PixelFormat::Yuyv => yuyv_to_rgb(&frame.data, stride, width, height, rgb),
        PixelFormat::Nv12 => nv12_to_rgb(&frame.data, stride, width, height, rgb),
        PixelFormat::Rgb24 => copy_rgb24(&frame.data, stride, width, height, rgb),
        PixelFormat::Mjpeg => unreachable!("decoded above"),
    }
    Ok(())
}

/// Chroma terms of one BT.601 limited-range conversion, shared by the pixels
/// that use the same `Cb Cr` pair.
#[derive(Clone, Copy)]
struct Chroma {
    red: i32,
    green: i32,
    blue: i32,
}

impl Chroma {
    #[inline(always)]
    fn new(cb: u8, cr: u8) -> Chroma {
        let d = cb as i32 - 128;
        let e = cr as i32 - 128;
        Chroma { red: 409 * e + 128, green: -100 * d - 208 * e + 128, blue: 516 * d + 128 }
    }

    #[inline(always)]
    fn write(self, y: u8, out: &mut [u8]) {
        let c = 298 * (y as i32 - 16);
        out[0] = ((c + self.red) >> 8).clamp(0, 255) as u8;
        out[1] = ((c + self.green) >> 8).clamp(0, 255) as u8;
        out[2] = ((c + self.blue) >> 8).clamp(0, 255) as u8;
    }
}

fn yuyv_to_rgb(data: &[u8], stride: usize, width: usize, height: usize, rgb: &mut [u8]) {
    for (row, out_row) in rgb.chunks_exact_mut(width * 3).take(height).enumerate() {
        let line = &data[row * stride..row * stride + width * 2];
        for (pair, out) in line.chunks_exact(4).zip(out_row.chunks_exact_mut(6)) {
            let chroma = Chroma::new(pair[1], pair[3]);
            chroma.write(pair[0], &mut out[..3]);
            chroma.write(pair[2], &mut out[3..]);
        }
    }
}

fn nv12_to_rgb(data: &[u8], stride: usize, width: usize, height: usize, rgb: &mut [u8]) {
    let chroma_plane = &data[stride * height..];
    for (row, out_row) in rgb.chunks_exact_mut(width * 3).take(height).enumerate() {
        let luma = &data[row * stride..row * stride + width];
        let chroma_line = &chroma_plane[(row / 2) * stride..];
        for (column, (y, out)) in luma.iter().zip(out_row.chunks_exact_mut(3)).enumerate() {
            // Cb and Cr of the 2×2 block holding this pixel; an odd last column
            // has a pair of its own.
            let block = (column / 2) * 2;
            Chroma::new(chroma_line[block], chroma_line[block + 1]).write(*y, out);
        }
    }
}

fn copy_rgb24(data: &[u8], stride: usize, width: usize, height: usize, rgb: &mut [u8]) {
    for (row, out_row) in rgb.chunks_exact_mut(width * 3).take(height).enumerate() {
        out_row.copy_from_slice(&data[row * stride..row * stride + width * 3]);
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageEncoder, Rgb};

    use super::*;

    /// BT.601 limited-range YCbCr of an RGB pixel, from the standard's
    /// floating-point formulas (not the integer ones under test).
    fn ycbcr(pixel: &Rgb<u8>) -> [u8; 3] {
        let [r, g, b] = pixel.0.map(|v| v as f64);
        let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
        let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
        let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
        [y, cb, cr].map(|v| v.round().clamp(0.0, 255.0) as u8)
    }

    /// An image whose 2×2 blocks have one colour each, so chroma subsampling
    /// loses nothing and the conversion can be compared pixel by pixel. The
    /// colours sweep the RGB cube.
    fn block_image(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let (bx, by) = (x / 2, y / 2);
            Rgb([(bx * 37 % 256) as u8, (by * 53 % 256) as u8, ((bx + by) * 29 % 256) as u8])
        })
    }

    fn yuyv_frame(image: &RgbImage, padding: u32) -> RawFrame {
        let (width, height) = image.dimensions();
        let stride = width * 2 + padding;
        let mut data = vec![0xAB; (stride * height) as usize];
        for y in 0..height {
            for x in (0..width).step_by(2) {
                let left = ycbcr(image.get_pixel(x, y));
                let right = ycbcr(image.get_pixel(x + 1, y));
                let at = (y * stride + x * 2) as usize;
                // The pair shares the mean of its two chroma samples.
                let cb = (left[1] as u16 + right[1] as u16).div_ceil(2) as u8;
                let cr = (left[2] as u16 + right[2] as u16).div_ceil(2) as u8;
                data[at..at + 4].copy_from_slice(&[left[0], cb, right[0], cr]);
            }
        }
        RawFrame { format: PixelFormat::Yuyv, width, height, stride, data, ..RawFrame::default() }
    }

    fn nv12_frame(image: &RgbImage, padding: u32) -> RawFrame {
        let (width, height) = image.dimensions();
        let stride = width + padding;
        let mut data = vec![0xAB; PixelFormat::Nv12.frame_bytes(height, stride) as usize];
        for y in 0..height {
            for x in 0..width {
                data[(y * stride + x) as usize] = ycbcr(image.get_pixel(x, y))[0];
            }
        }
        let chroma_start = (stride * height) as usize;
        for by in 0..height.div_ceil(2) {
            for bx in 0..width.div_ceil(2) {
                // Chroma of the block's top-left pixel: blocks are one colour in these tests.
                let [_, cb, cr] = ycbcr(image.get_pixel(bx * 2, by * 2));
                let at = chroma_start + (by * stride + bx * 2) as usize;
                data[at] = cb;
                data[at + 1] = cr;
            }
        }
        RawFrame { format: PixelFormat::Nv12, width, height, stride, data, ..RawFrame::default() }
    }

    /// Returns the first photograph of the shared throat data set
    /// (`$THROATSEG_DATA`, else `../shared/data` beside the checkout).
    fn first_throat_image() -> std::path::PathBuf {
        let data = std::env::var_os("THROATSEG_DATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
        let mut images: Vec<_> = std::fs::read_dir(data.join("throat/images"))
            .unwrap_or_else(|e| panic!("{}: {e}; set THROATSEG_DATA to the shared data folder", data.display()))
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        images.sort();
        images.into_iter().next().expect("the throat data set has images")
    }

    /// Returns the largest difference of any channel between two images.
    fn max_difference(a: &RgbImage, b: &RgbImage) -> u8 {
        a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
    }

    /// Quantising Y, Cb and Cr to 8 bits moves a channel by up to about 2.5
    /// code values after the inverse matrix (2.018 × 0.5 + 1.164 × 0.5).
    const YCBCR_TOLERANCE: u8 = 3;

    #[test]
    fn yuyv_matches_bt601() {
        let image = block_image(64, 48);
        let mut rgb = RgbImage::new(1, 1);
        to_rgb(&yuyv_frame(&image, 0), &mut rgb).unwrap();
        assert_eq!(rgb.dimensions(), (64, 48), "output size");
        let difference = max_difference(&image, &rgb);
        assert!(difference <= YCBCR_TOLERANCE, "YUYV round trip differs by {difference}");
    }

    #[test]
    fn yuyv_padded_stride() {
        let image = block_image(30, 10);
        let mut rgb = RgbImage::new(30, 10);
        to_rgb(&yuyv_frame(&image, 8), &mut rgb).unwrap();
        let difference = max_difference(&image, &rgb);
        assert!(difference <= YCBCR_TOLERANCE, "padded YUYV differs by {difference}");
    }

    #[test]
    fn nv12_matches_bt601() {
        let image = block_image(64, 48);
        let mut rgb = RgbImage::new(64, 48);
        to_rgb(&nv12_frame(&image, 0), &mut rgb).unwrap();
        let difference = max_difference(&image, &rgb);
        assert!(difference <= YCBCR_TOLERANCE, "NV12 round trip differs by {difference}");
    }

    #[test]
    fn nv12_odd_size_and_padding() {
        let image = block_image(31, 17);
        let mut rgb = RgbImage::new(1, 1);
        to_rgb(&nv12_frame(&image, 5), &mut rgb).unwrap();
        assert_eq!(rgb.dimensions(), (31, 17), "output size");
        let difference = max_difference(&image, &rgb);
        assert!(difference <= YCBCR_TOLERANCE, "odd-sized NV12 differs by {difference}");
    }

    #[test]
    fn yuyv_real_photograph() {
        // A real photograph has chroma detail that 4:2:2 subsampling loses, so
        // only the mean error is tight.
        let path = first_throat_image();
        let image = crate::frame::read_rgb(&path).unwrap();
        let even = image::imageops::crop_imm(&image, 0, 0, image.width() & !1, image.height()).to_image();
        let mut rgb = RgbImage::new(1, 1);
        to_rgb(&yuyv_frame(&even, 0), &mut rgb).unwrap();
        let total: u64 = even.as_raw().iter().zip(rgb.as_raw()).map(|(a, b)| a.abs_diff(*b) as u64).sum();
        let mean = total as f64 / even.as_raw().len() as f64;
        assert!(mean < 2.0, "mean difference {mean:.2} on {}", path.display());
    }

    #[test]
    fn rgb24_copies_lines() {
        let image = block_image(7, 5);
        let stride = 7 * 3 + 3;
        let mut data = vec![0xEE; stride * 5];
        for (row, line) in image.as_raw().chunks_exact(21).enumerate() {
            data[row * stride..row * stride + 21].copy_from_slice(line);
        }
        let frame = RawFrame { format: PixelFormat::Rgb24, width: 7, height: 5, stride: stride as u32, data, ..RawFrame::default() };
        let mut rgb = RgbImage::new(1, 1);
        to_rgb(&frame, &mut rgb).unwrap();
        assert_eq!(rgb, image, "RGB24 lines are copied without the padding");
    }

    #[test]
    fn mjpeg_decodes_to_rgb() {
        let image = block_image(64, 48);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .write_image(image.as_raw(), 64, 48, image::ExtendedColorType::Rgb8)
            .unwrap();
        let frame = RawFrame { format: PixelFormat::Mjpeg, width: 64, height: 48, data: jpeg, ..RawFrame::default() };
        let mut rgb = RgbImage::new(1, 1);
        to_rgb(&frame, &mut rgb).unwrap();
        assert_eq!(rgb.dimensions(), (64, 48), "decoded size");
        let total: u64 = image.as_raw().iter().zip(rgb.as_raw()).map(|(a, b)| a.abs_diff(*b) as u64).sum();
        let mean = total as f64 / image.as_raw().len() as f64;
        assert!(mean < 6.0, "mean JPEG error {mean:.2} at quality 95");
    }

    #[test]
    fn mjpeg_wrong_size_is_rejected() {
        let image = block_image(16, 16);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg).write_image(image.as_raw(), 16, 16, image::ExtendedColorType::Rgb8).unwrap();
        let frame = RawFrame { format: PixelFormat::Mjpeg, width: 32, height: 16, data: jpeg, ..RawFrame::default() };
        let error = to_rgb(&frame, &mut RgbImage::new(1, 1)).unwrap_err();
        assert!(error.contains("decodes to 16x16"), "{error}");
    }

    #[test]
    fn short_frame_is_rejected() {
        let mut frame = yuyv_frame(&block_image(16, 8), 0);
        frame.data.truncate(100);
        let error = to_rgb(&frame, &mut RgbImage::new(1, 1)).unwrap_err();
        assert!(error.contains("needs 256 bytes, has 100"), "{error}");
    }
}
