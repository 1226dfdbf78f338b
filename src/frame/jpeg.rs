//! A structural check that a JPEG stream is complete.
//!
//! The JPEG decoder fills a truncated scan with grey instead of failing, which
//! would segment half an image without a word. This walks the marker segments
//! (ITU-T T.81, annex B) up to the end-of-image marker, skipping entropy-coded
//! data, so trailing bytes after the image (phone "motion photos" append a
//! video there) are allowed and a stream cut before its end is detected.

/// Returns whether the stream starts with SOI and reaches EOI through
/// well-formed marker segments.
pub fn is_complete(bytes: &[u8]) -> bool {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return false;
    }
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while at < bytes.len() && bytes[at] == 0xFF && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if at + 1 >= bytes.len() || bytes[at] != 0xFF {
            return false;
        }
        let marker = bytes[at + 1];
        at += 2;
        match marker {
            0xD9 => return true,
            // Standalone markers without a length: TEM and RST0..RST7.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        if at + 2 > bytes.len() {
            return false;
        }
        let length = u16::from_be_bytes([bytes[at], bytes[at + 1]]) as usize;
        if length < 2 || at + length > bytes.len() {
            return false;
        }
        at += length;
        if marker == 0xDA {
            match skip_entropy_coded(bytes, at) {
                Some(next) => at = next,
                None => return false,
            }
        }
    }
}

/// Returns the offset of the first marker after entropy-coded data that starts
/// at `at`, or `None` if the data runs to the end of the stream. Inside the
/// data, 0xFF is followed by 0x00 (a stuffed byte) or by a restart marker.
fn skip_entropy_coded(bytes: &[u8], mut at: usize) -> Option<usize> {
    while at + 1 < bytes.len() {
        if bytes[at] == 0xFF {
            let next = bytes[at + 1];
            if next != 0x00 && !(0xD0..=0xD7).contains(&next) && next != 0xFF {
                return Some(at);
            }
            if next == 0xFF {
                at += 1;
                continue;
            }
            at += 2;
        } else {
            at += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(progressive_like_trailer: &[u8]) -> Vec<u8> {
        use image::ImageEncoder;
        let image = image::RgbImage::from_fn(48, 40, |x, y| image::Rgb([(x * 5) as u8, (y * 6) as u8, 128]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut bytes)
            .write_image(image.as_raw(), 48, 40, image::ExtendedColorType::Rgb8)
            .unwrap();
        bytes.extend_from_slice(progressive_like_trailer);
        bytes
    }

    #[test]
    fn complete_stream_passes() {
        assert!(is_complete(&encoded(&[])), "a whole JPEG is complete");
    }

    #[test]
    fn trailer_after_end_is_allowed() {
        let mut trailer = vec![0u8; 4096];
        for (i, byte) in trailer.iter_mut().enumerate() {
            *byte = (i * 7919 % 251) as u8;
        }
        trailer[100] = 0xFF;
        trailer[101] = 0xDA;
        assert!(is_complete(&encoded(&trailer)), "bytes after EOI, even marker-like ones, are ignored");
    }

    #[test]
    fn every_cut_is_detected() {
        let bytes = encoded(&[]);
        for cut in 0..bytes.len() {
            assert!(!is_complete(&bytes[..cut]), "stream cut at {cut} of {} passes", bytes.len());
        }
    }
}
