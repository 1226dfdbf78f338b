//! Best of burst: the last K frames are kept, and at a trigger the sharpest
//! one (highest variance of the Laplacian) is chosen for segmentation.

use image::RgbImage;

use crate::capture::convert::to_rgb;
use crate::capture::quality::{FrameQuality, QualityMeter};
use crate::capture::RawFrame;

/// The last frames, in buffers allocated once and then reused.
pub struct Burst {
    frames: Vec<RawFrame>,
    /// Slot the next frame is written to.
    next: usize,
    /// Slots that hold a frame.
    filled: usize,
}

/// The frame chosen from a burst.
pub struct Choice {
    /// The chosen frame, converted to RGB.
    pub rgb: RgbImage,
    /// Its position in the burst, 0 being the oldest frame.
    pub position: usize,
    /// Frames that were compared.
    pub compared: usize,
    /// Frames that could not be converted and were skipped.
    pub unreadable: usize,
    /// Its exposure and sharpness.
    pub quality: FrameQuality,
}

impl Burst {
    /// Creates a burst of `capacity` frames (at least 1).
    pub fn new(capacity: usize) -> Burst {
        Burst { frames: vec![RawFrame::default(); capacity.max(1)], next: 0, filled: 0 }
    }

    /// Copies `frame` into the burst, replacing the oldest frame when full.
    pub fn push(&mut self, frame: &RawFrame) {
        self.frames[self.next].copy_from(frame);
        self.next = (self.next + 1) % self.frames.len();
        self.filled = (self.filled + 1).min(self.frames.len());
    }

    /// Returns the frames from oldest to newest.
    pub fn frames(&self) -> impl Iterator<Item = &RawFrame> {
        let capacity = self.frames.len();
        let start = (self.next + capacity - self.filled) % capacity;
        (0..self.filled).map(move |i| &self.frames[(start + i) % capacity])
    }

    /// Returns the newest frame.
    pub fn newest(&self) -> Option<&RawFrame> {
        self.frames().last()
    }

    /// Converts every frame, measures it and returns the sharpest, with the
    /// newer frame winning a tie. Returns the last conversion error when no
    /// frame converts. `scratch` is reused between calls.
    pub fn choose_sharpest(&self, meter: &mut QualityMeter, overexposed_level: u8, scratch: &mut RgbImage) -> Result<(Choice, &RawFrame), String> {
        let mut best: Option<(Choice, &RawFrame)> = None;
        let mut unreadable = 0;
        let mut last_error = String::from("the burst holds no frames");
        for (position, frame) in self.frames().enumerate() {
            if let Err(reason) = to_rgb(frame, scratch) {
                unreadable += 1;
                last_error = format!("frame {}: {reason}", frame.sequence);
                continue;
            }
            let quality = meter.measure(scratch, overexposed_level);
            let better = best.as_ref().is_none_or(|(choice, _)| quality.sharpness >= choice.quality.sharpness);
            if better {
                // The previous best image becomes the next scratch buffer.
                let previous = best.take().map(|(choice, _)| choice.rgb).unwrap_or_else(|| RgbImage::new(1, 1));
                let rgb = std::mem::replace(scratch, previous);
                best = Some((Choice { rgb, position, compared: 0, unreadable: 0, quality }, frame));
            }
        }
        let compared = self.filled;
        match best {
            Some((mut choice, frame)) => {
                choice.compared = compared;
                choice.unreadable = unreadable;
                Ok((choice, frame))
            }
            None => Err(last_error),
        }
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;
    use crate::capture::PixelFormat;

    /// An RGB24 frame of stripes `period` pixels wide: narrower stripes are sharper.
    fn stripes(sequence: u32, period: u32) -> RawFrame {
        let image = RgbImage::from_fn(32, 16, |x, _| if (x / period).is_multiple_of(2) { Rgb([180, 160, 150]) } else { Rgb([60, 50, 40]) });
        let blurred = if period > 2 { image::imageops::blur(&image, period as f32 / 2.0) } else { image };
        RawFrame { format: PixelFormat::Rgb24, width: 32, height: 16, stride: 96, sequence, data: blurred.into_raw(), ..RawFrame::default() }
    }

    #[test]
    fn keeps_last_frames_in_order() {
        let mut burst = Burst::new(3);
        for sequence in 0..5 {
            burst.push(&stripes(sequence, 2));
        }
        let order: Vec<u32> = burst.frames().map(|f| f.sequence).collect();
        assert_eq!(order, vec![2, 3, 4], "oldest to newest");
        assert_eq!(burst.newest().unwrap().sequence, 4, "newest");
    }

    #[test]
    fn sharpest_frame_wins() {
        let mut burst = Burst::new(4);
        burst.push(&stripes(10, 8));
        burst.push(&stripes(11, 2));
        burst.push(&stripes(12, 6));
        let mut scratch = RgbImage::new(1, 1);
        let (choice, frame) = burst.choose_sharpest(&mut QualityMeter::default(), 250, &mut scratch).unwrap();
        assert_eq!(frame.sequence, 11, "the unblurred frame");
        assert_eq!(choice.position, 1, "its position");
        assert_eq!(choice.compared, 3, "frames compared");
        assert_eq!(choice.rgb.dimensions(), (32, 16), "converted image");
    }

    #[test]
    fn unreadable_frames_are_skipped() {
        let mut burst = Burst::new(2);
        let mut broken = stripes(1, 2);
        broken.data.truncate(10);
        burst.push(&broken);
        burst.push(&stripes(2, 4));
        let mut scratch = RgbImage::new(1, 1);
        let (choice, frame) = burst.choose_sharpest(&mut QualityMeter::default(), 250, &mut scratch).unwrap();
        assert_eq!(frame.sequence, 2, "the readable frame");
        assert_eq!(choice.unreadable, 1, "one skipped");

        let mut only_broken = Burst::new(1);
        only_broken.push(&broken);
        let error = only_broken.choose_sharpest(&mut QualityMeter::default(), 250, &mut scratch).err().unwrap();
        assert!(error.contains("frame 1"), "{error}");
    }
}
