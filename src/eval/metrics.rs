//! Dice from pixel counts: a confusion matrix per image or per data set, and
//! the per-class, foreground and macro Dice derived from it.
//!
//! Dice of a class is 2TP / (2TP + FP + FN) with the counts summed over every
//! pixel of every image, not averaged per image. A class with no pixels in the
//! truth or the prediction has no Dice and is left out of the macro mean, which
//! is the unweighted mean over the remaining classes, background included.

use image::GrayImage;

/// Pixel counts of one class against the truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    /// Pixels of the class in both truth and prediction.
    pub tp: u64,
    /// Pixels predicted as the class that belong to another.
    pub fp: u64,
    /// Pixels of the class predicted as another.
    pub fn_: u64,
}

impl ClassCounts {
    /// Computes Dice, 2TP / (2TP + FP + FN), as a fraction; `None` when the
    /// class has no pixels in the truth or the prediction.
    pub fn dice(&self) -> Option<f64> {
        let denominator = 2 * self.tp + self.fp + self.fn_;
        (denominator > 0).then(|| 2.0 * self.tp as f64 / denominator as f64)
    }
}

/// Errors from counting a pair of class maps.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CountError {
    /// The maps differ in size.
    #[error("truth is {truth_width}x{truth_height} pixels but the prediction is {predicted_width}x{predicted_height}; both must be at model resolution")]
    Size { truth_width: u32, truth_height: u32, predicted_width: u32, predicted_height: u32 },
    /// A pixel has a value that is not a class index.
    #[error("class map has the value {value}, which is not a class index of the {classes} classes")]
    Class { value: u8, classes: usize },
}

/// Confusion matrix of truth against prediction, in pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confusion {
    classes: usize,
    /// Count of pixels at `truth * classes + predicted`.
    counts: Vec<u64>,
}

/// Dice figures of a confusion matrix, as fractions (0..=1).
#[derive(Clone, Debug, PartialEq)]
pub struct DiceSummary {
    /// Counts of each class.
    pub class_counts: Vec<ClassCounts>,
    /// Dice of each class; `None` for a class with no pixels in truth or prediction.
    pub class_dice: Vec<Option<f64>>,
    /// Unweighted mean of the class Dice values that exist, background included.
    pub macro_dice: Option<f64>,
    /// Counts with every non-background class merged into one foreground class.
    pub foreground_counts: ClassCounts,
    /// Dice of the merged foreground class.
    pub foreground_dice: Option<f64>,
}

impl Confusion {
    /// Creates an empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Confusion {
        Confusion { classes, counts: vec![0; classes * classes] }
    }

    /// Returns the number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Returns the number of pixels counted so far.
    pub fn pixels(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Counts every pixel of two class maps of the same size.
    pub fn add_maps(&mut self, truth: &GrayImage, predicted: &GrayImage) -> Result<(), CountError> {
        if truth.dimensions() != predicted.dimensions() {
            return Err(CountError::Size {
                truth_width: truth.width(),
                truth_height: truth.height(),
                predicted_width: predicted.width(),
                predicted_height: predicted.height(),
            });
        }
        let classes = self.classes;
        // Checked before counting, so a bad map leaves the matrix unchanged.
        if let Some(&value) = truth.as_raw().iter().chain(predicted.as_raw()).find(|&&v| v as usize >= classes) {
            return Err(CountError::Class { value, classes });
        }
        for (&t, &p) in truth.as_raw().iter().zip(predicted.as_raw()) {
            self.counts[t as usize * classes + p as usize] += 1;
        }
        Ok(())
    }

    /// Adds the counts of another matrix with the same classes.
    pub fn merge(&mut self, other: &Confusion) {
        debug_assert_eq!(self.classes, other.classes, "matrices of different class counts");
        for (sum, &count) in self.counts.iter_mut().zip(&other.counts) {
            *sum += count;
        }
    }

    fn count(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Returns the TP, FP and FN pixel counts of one class.
    pub fn class_counts(&self, class: usize) -> ClassCounts {
        let mut counts = ClassCounts::default();
        for other in 0..self.classes {
            if other == class {
                counts.tp += self.count(class, class);
            } else {
                counts.fn_ += self.count(class, other);
                counts.fp += self.count(other, class);
            }
        }
        counts
    }

    /// Returns the counts of all non-background classes (index above 0) merged
    /// into one: confusing two foreground classes still counts as a hit.
    pub fn foreground_counts(&self) -> ClassCounts {
        let mut counts = ClassCounts::default();
        for truth in 0..self.classes {
            for predicted in 0..self.classes {
                let pixels = self.count(truth, predicted);
                match (truth > 0, predicted > 0) {
                    (true, true) => counts.tp += pixels,
                    (false, true) => counts.fp += pixels,
                    (true, false) => counts.fn_ += pixels,
                    (false, false) => {}
                }
            }
        }
        counts
    }

    /// Computes the per-class, macro and foreground Dice.
    pub fn summary(&self) -> DiceSummary {
        let class_counts: Vec<ClassCounts> = (0..self.classes).map(|c| self.class_counts(c)).collect();
        let class_dice: Vec<Option<f64>> = class_counts.iter().map(ClassCounts::dice).collect();
        let present: Vec<f64> = class_dice.iter().flatten().copied().collect();
        let macro_dice = (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64);
        let foreground_counts = self.foreground_counts();
        DiceSummary { class_counts, class_dice, macro_dice, foreground_dice: foreground_counts.dice(), foreground_counts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(width: u32, height: u32, values: &[u8]) -> GrayImage {
        GrayImage::from_raw(width, height, values.to_vec()).expect("values fill the map")
    }

    fn close(actual: Option<f64>, expected: f64) -> bool {
        actual.is_some_and(|a| (a - expected).abs() < 1e-12)
    }

    #[test]
    fn class_counts_from_two_maps() {
        let truth = map(4, 1, &[0, 1, 1, 0]);
        let predicted = map(4, 1, &[0, 1, 0, 1]);
        let mut confusion = Confusion::new(2);
        confusion.add_maps(&truth, &predicted).unwrap();
        assert_eq!(confusion.class_counts(1), ClassCounts { tp: 1, fp: 1, fn_: 1 }, "class 1 counts");
        assert_eq!(confusion.class_counts(0), ClassCounts { tp: 1, fp: 1, fn_: 1 }, "class 0 counts");
    }

    #[test]
    fn dice_is_summed_over_images() {
        // Image A: class 1 TP 3, FP 1, FN 0. Image B: class 1 TP 0, FP 0, FN 1.
        // Summed: 2·3 / (2·3 + 1 + 1) = 0.75; the per-image mean would be (6/7 + 0) / 2.
        let mut total = Confusion::new(2);
        total.add_maps(&map(3, 2, &[1, 1, 1, 0, 0, 0]), &map(3, 2, &[1, 1, 1, 1, 0, 0])).unwrap();
        total.add_maps(&map(3, 2, &[1, 0, 0, 0, 0, 0]), &map(3, 2, &[0, 0, 0, 0, 0, 0])).unwrap();
        let summary = total.summary();
        assert!(close(summary.class_dice[1], 0.75), "class 1 Dice {:?}", summary.class_dice[1]);
        // Background: TP 2 + 5 = 7, FP 0 + 1 = 1, FN 1 + 0 = 1: 14 / 16.
        assert!(close(summary.class_dice[0], 14.0 / 16.0), "background Dice {:?}", summary.class_dice[0]);
    }

    #[test]
    fn macro_mean_includes_background() {
        let mut confusion = Confusion::new(2);
        confusion.add_maps(&map(4, 1, &[0, 1, 1, 0]), &map(4, 1, &[0, 1, 0, 0])).unwrap();
        let summary = confusion.summary();
        // Background: TP 2, FP 1, FN 0 → 4/5. Class 1: TP 1, FP 0, FN 1 → 2/3.
        assert!(close(summary.class_dice[0], 0.8), "background Dice {:?}", summary.class_dice[0]);
        assert!(close(summary.class_dice[1], 2.0 / 3.0), "class 1 Dice {:?}", summary.class_dice[1]);
        assert!(close(summary.macro_dice, (0.8 + 2.0 / 3.0) / 2.0), "macro Dice {:?}", summary.macro_dice);
    }

    #[test]
    fn absent_class_is_dropped() {
        // Class 2 appears in neither map: no Dice, not in the mean.
        let mut confusion = Confusion::new(3);
        confusion.add_maps(&map(4, 1, &[0, 1, 1, 0]), &map(4, 1, &[0, 1, 0, 0])).unwrap();
        let summary = confusion.summary();
        assert_eq!(summary.class_dice[2], None, "class 2 has no Dice");
        assert!(close(summary.macro_dice, (0.8 + 2.0 / 3.0) / 2.0), "macro over two classes {:?}", summary.macro_dice);
    }

    #[test]
    fn class_only_predicted_scores_zero() {
        // Class 2 is predicted once but never true: Dice 0, and it counts in the mean.
        let mut confusion = Confusion::new(3);
        confusion.add_maps(&map(2, 1, &[0, 1]), &map(2, 1, &[0, 2])).unwrap();
        let summary = confusion.summary();
        assert!(close(summary.class_dice[2], 0.0), "class 2 Dice {:?}", summary.class_dice[2]);
        assert!(close(summary.class_dice[1], 0.0), "class 1 Dice {:?}", summary.class_dice[1]);
        assert!(close(summary.class_dice[0], 1.0), "background Dice {:?}", summary.class_dice[0]);
        assert!(close(summary.macro_dice, 1.0 / 3.0), "macro Dice {:?}", summary.macro_dice);
    }

    #[test]
    fn foreground_merges_classes() {
        // Truth class 1 predicted as class 2 is a foreground hit.
        let mut confusion = Confusion::new(3);
        confusion.add_maps(&map(4, 1, &[0, 1, 2, 2]), &map(4, 1, &[1, 2, 2, 0])).unwrap();
        let counts = confusion.foreground_counts();
        assert_eq!(counts, ClassCounts { tp: 2, fp: 1, fn_: 1 }, "foreground counts");
        assert!(close(confusion.summary().foreground_dice, 4.0 / 6.0), "foreground Dice");
    }

    #[test]
    fn empty_foreground_has_no_dice() {
        let mut confusion = Confusion::new(2);
        confusion.add_maps(&map(2, 1, &[0, 0]), &map(2, 1, &[0, 0])).unwrap();
        let summary = confusion.summary();
        assert_eq!(summary.foreground_dice, None, "no foreground anywhere");
        assert!(close(summary.macro_dice, 1.0), "macro is background alone");
    }

    #[test]
    fn merge_equals_counting_together() {
        let (a_truth, a_predicted) = (map(2, 1, &[0, 1]), map(2, 1, &[1, 1]));
        let (b_truth, b_predicted) = (map(2, 1, &[1, 1]), map(2, 1, &[0, 1]));
        let mut together = Confusion::new(2);
        together.add_maps(&a_truth, &a_predicted).unwrap();
        together.add_maps(&b_truth, &b_predicted).unwrap();
        let mut a = Confusion::new(2);
        a.add_maps(&a_truth, &a_predicted).unwrap();
        let mut b = Confusion::new(2);
        b.add_maps(&b_truth, &b_predicted).unwrap();
        a.merge(&b);
        assert_eq!(a, together, "merged matrices");
        assert_eq!(a.pixels(), 4, "pixel count");
    }

    #[test]
    fn size_mismatch_is_rejected() {
        let mut confusion = Confusion::new(2);
        let error = confusion.add_maps(&map(2, 1, &[0, 1]), &map(1, 2, &[0, 1])).unwrap_err();
        assert!(matches!(error, CountError::Size { .. }), "size error: {error}");
    }

    #[test]
    fn out_of_range_value_is_rejected() {
        let mut confusion = Confusion::new(2);
        let error = confusion.add_maps(&map(2, 1, &[0, 5]), &map(2, 1, &[0, 1])).unwrap_err();
        assert_eq!(error, CountError::Class { value: 5, classes: 2 }, "class error");
        assert_eq!(confusion.pixels(), 0, "nothing counted");
    }
}
