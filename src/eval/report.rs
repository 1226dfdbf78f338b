//! Evaluation results as text for people, one JSON object for programs and a
//! per-image CSV table. Dice is reported ×100, as a percentage.

use serde_json::{json, Value};

use super::metrics::{ClassCounts, DiceSummary};

/// Settings and image counts of an evaluation run, for the report.
#[derive(Clone, Debug)]
pub struct RunInfo<'a> {
    /// Model name from its card.
    pub model: &'a str,
    /// Normalisation mode name (`none`, `gris`, `lris`, `full` or `reference`).
    pub mode: &'a str,
    /// The fixed reference given with `--reference`, if any.
    pub reference: Option<&'a str>,
    /// Colour space of the normalisation (`lalphabeta` or `lab`).
    pub colour_space: &'a str,
    /// Model input width and height in pixels, the resolution Dice is measured at.
    pub model_size: (u32, u32),
    /// Class names in index order.
    pub classes: &'a [String],
    /// Images evaluated.
    pub images: usize,
    /// Images that failed and are left out of the figures.
    pub failed: usize,
}

/// One row of the per-image table: the image and its Dice, or why it failed.
#[derive(Clone, Debug)]
pub struct ImageRow {
    /// Image path as shown to the user.
    pub image: String,
    /// Dice of this image alone, or the error message.
    pub outcome: Result<DiceSummary, String>,
}

/// Converts a Dice fraction to a percentage rounded to 3 decimals.
fn percent(dice: Option<f64>) -> Option<f64> {
    dice.map(|d| (d * 100_000.0).round() / 1000.0)
}

fn counts_json(counts: &ClassCounts) -> Value {
    json!({ "tp": counts.tp, "fp": counts.fp, "fn": counts.fn_ })
}

/// Builds the JSON summary: run settings, image counts, the macro, foreground
/// and per-class Dice (×100, `null` where a class has no pixels) and pixel counts.
pub fn json_summary(info: &RunInfo, summary: &DiceSummary) -> Value {
    let classes: Vec<Value> = info
        .classes
        .iter()
        .zip(summary.class_dice.iter().zip(&summary.class_counts))
        .enumerate()
        .map(|(index, (name, (dice, counts)))| {
            let mut entry = counts_json(counts);
            entry["index"] = json!(index);
            entry["name"] = json!(name);
            entry["dice"] = json!(percent(*dice));
            entry
        })
        .collect();
    let mut foreground = counts_json(&summary.foreground_counts);
    foreground["dice"] = json!(percent(summary.foreground_dice));
    json!({
        "model": info.model,
        "mode": info.mode,
        "reference": info.reference,
        "colour_space": info.colour_space,
        "model_size": [info.model_size.0, info.model_size.1],
        "images": info.images,
        "failed": info.failed,
        "macro_dice": percent(summary.macro_dice),
        "foreground_dice": percent(summary.foreground_dice),
        "classes": classes,
        "foreground": foreground,
    })
}

/// Formats a Dice fraction as a percentage with one decimal, or a dash.
fn percent_text(dice: Option<f64>) -> String {
    dice.map_or_else(|| "-".into(), |d| format!("{:.1}", d * 100.0))
}

/// Builds the text report: settings, then Dice ×100 with one decimal.
pub fn text_summary(info: &RunInfo, summary: &DiceSummary) -> String {
    let mut lines = vec![
        format!("model       {} (input {}x{})", info.model, info.model_size.0, info.model_size.1),
        format!("mode        {}{}", info.mode, info.reference.map(|r| format!(" {r}")).unwrap_or_default()),
        format!("colour      {}", info.colour_space),
        format!("images      {} evaluated, {} failed", info.images, info.failed),
        "Dice ×100 at model resolution, pixels summed over all images:".into(),
    ];
    let counted = summary.class_dice.iter().flatten().count();
    lines.push(format!(
        "  {:<14} {:>5}  (mean of {counted} of {} classes, background included)",
        "macro",
        percent_text(summary.macro_dice),
        info.classes.len()
    ));
    lines.push(format!("  {:<14} {:>5}  (all non-background classes as one)", "foreground", percent_text(summary.foreground_dice)));
    for (name, (dice, counts)) in info.classes.iter().zip(summary.class_dice.iter().zip(&summary.class_counts)) {
        let note = match dice {
            Some(_) => format!("TP {} FP {} FN {}", counts.tp, counts.fp, counts.fn_),
            None => "no pixels in truth or prediction, left out of the macro mean".into(),
        };
        lines.push(format!("  {name:<14} {:>5}  {note}", percent_text(*dice)));
    }
    lines.join("\n") + "\n"
}

/// Quotes a CSV field when it contains a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv_number(dice: Option<f64>) -> String {
    percent(dice).map(|p| format!("{p:.3}")).unwrap_or_default()
}

/// Builds the per-image CSV table: `image`, `dice_<class>` for each class,
/// `dice_foreground` (all ×100, empty where the image has no pixels of a
/// class in truth or prediction) and `error` (empty unless the image failed).
pub fn csv_table(classes: &[String], rows: &[ImageRow]) -> String {
    let mut header = vec!["image".to_owned()];
    header.extend(classes.iter().map(|c| csv_field(&format!("dice_{c}"))));
    header.push("dice_foreground".into());
    header.push("error".into());
    let mut text = header.join(",") + "\n";

    for row in rows {
        let mut fields = vec![csv_field(&row.image)];
        match &row.outcome {
            Ok(summary) => {
                fields.extend(summary.class_dice.iter().map(|d| csv_number(*d)));
                fields.push(csv_number(summary.foreground_dice));
                fields.push(String::new());
            }
            Err(error) => {
                fields.extend(std::iter::repeat_n(String::new(), classes.len() + 1));
                fields.push(csv_field(error));
            }
        }
        text += &fields.join(",");
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Confusion;
    use image::GrayImage;

    fn names() -> Vec<String> {
        vec!["background".into(), "polyp".into(), "stalk".into()]
    }

    fn summary() -> DiceSummary {
        // Background: TP 2, FP 1, FN 0 → 80 %. Polyp: TP 1, FN 1 → 66.667 %. Stalk: absent.
        let mut confusion = Confusion::new(3);
        let truth = GrayImage::from_raw(4, 1, vec![0, 1, 1, 0]).unwrap();
        let predicted = GrayImage::from_raw(4, 1, vec![0, 1, 0, 0]).unwrap();
        confusion.add_maps(&truth, &predicted).unwrap();
        confusion.summary()
    }

    fn info(classes: &[String]) -> RunInfo<'_> {
        RunInfo { model: "m", mode: "full", reference: None, colour_space: "lab", model_size: (4, 1), classes, images: 1, failed: 0 }
    }

    #[test]
    fn csv_leaves_absent_classes_empty() {
        let rows = [
            ImageRow { image: "a.jpg".into(), outcome: Ok(summary()) },
            ImageRow { image: "b, c.jpg".into(), outcome: Err("b.jpg: no \"mask\"".into()) },
        ];
        let table = csv_table(&names(), &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "image,dice_background,dice_polyp,dice_stalk,dice_foreground,error", "header");
        assert_eq!(lines[1], "a.jpg,80.000,66.667,,66.667,", "evaluated row");
        assert_eq!(lines[2], "\"b, c.jpg\",,,,,\"b.jpg: no \"\"mask\"\"\"", "failed row, quoted");
    }

    #[test]
    fn json_has_figures_and_counts() {
        let classes = names();
        let value = json_summary(&info(&classes), &summary());
        assert_eq!(value["macro_dice"], json!(73.333), "mean of 80 and 66.667");
        assert_eq!(value["foreground_dice"], json!(66.667), "foreground");
        assert_eq!(value["classes"][2]["dice"], Value::Null, "absent class");
        assert_eq!(value["classes"][1]["fn"], json!(1), "polyp false negatives");
        assert_eq!(value["classes"][0]["name"], json!("background"), "class name");
        assert_eq!(value["colour_space"], json!("lab"), "colour space");
    }

    #[test]
    fn text_rounds_to_one_decimal() {
        let classes = names();
        let text = text_summary(&info(&classes), &summary());
        assert!(text.contains("macro           73.3"), "macro line in {text}");
        assert!(text.contains("polyp           66.7"), "polyp line in {text}");
        assert!(text.contains("stalk              -  no pixels"), "absent class in {text}");
    }
}
