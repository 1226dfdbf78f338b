//! Ground truth from a COCO file: parsing images, polygon annotations and
//! categories, mapping categories to the model's classes by name, and
//! rasterising an image's polygons into a class map.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use image::GrayImage;
use serde::Deserialize;
use serde_json::Value;

use super::polygon::fill_polygon;
use super::EvalError;

/// Errors from reading a COCO file; each makes the whole file unusable.
#[derive(Debug, thiserror::Error)]
pub enum CocoError {
    /// The file could not be read.
    #[error("{path}: cannot read COCO file: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    /// The file is not COCO JSON.
    #[error("{path}: not a valid COCO file ({reason}); it needs `images`, `annotations` and `categories` arrays")]
    Json { path: PathBuf, reason: String },
    /// A category has a name the model does not know.
    #[error("{path}: category \"{name}\" is not a class of the model, whose classes are {classes}; rename the category to one of these or pass a model that has it with --model")]
    UnknownCategory { path: PathBuf, name: String, classes: String },
    /// The content contradicts itself or cannot be rasterised.
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
struct RawFile {
    images: Vec<RawImage>,
    #[serde(default)]
    annotations: Vec<RawAnnotation>,
    categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
struct RawImage {
    id: i64,
    file_name: String,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    id: Option<i64>,
    image_id: i64,
    category_id: i64,
    #[serde(default)]
    segmentation: Value,
}

#[derive(Deserialize)]
struct RawCategory {
    id: i64,
    name: String,
}

/// One outline as (x, y) vertices in pixels.
type Polygon = Vec<(f64, f64)>;

/// The polygons of one annotation and the class they are filled with.
#[derive(Clone, Debug, PartialEq)]
struct Shape {
    class: u8,
    polygons: Vec<Polygon>,
}

/// One entry of the COCO `images` array with its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoImage {
    /// `file_name` as written in the file.
    pub file_name: String,
    /// `width` and `height` in pixels, when the file gives both.
    pub size: Option<(u32, u32)>,
    /// Annotations in file order.
    shapes: Vec<Shape>,
}

impl CocoImage {
    /// Rasterises the annotations into a class map of `width` × `height`
    /// pixels: background (0) where no polygon covers a pixel centre, and
    /// where annotations overlap the one later in the file wins.
    pub fn rasterise(&self, width: u32, height: u32) -> GrayImage {
        let mut map = GrayImage::new(width, height);
        for shape in &self.shapes {
            for polygon in &shape.polygons {
                fill_polygon(&mut map, polygon, shape.class);
            }
        }
        map
    }
}

/// A parsed COCO file with its categories mapped to model classes.
#[derive(Debug)]
pub struct CocoSet {
    path: PathBuf,
    images: Vec<CocoImage>,
    by_file_name: HashMap<String, usize>,
    by_base_name: HashMap<String, Vec<usize>>,
}

/// Returns a `file_name` with `/` separators and without a leading `./`.
fn normalise_name(name: &str) -> String {
    let name = name.replace('\\', "/");
    name.trim_start_matches("./").to_owned()
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

impl CocoSet {
    /// Reads a COCO file and maps its categories to `classes` by name.
    pub fn load(path: &Path, classes: &[String]) -> Result<CocoSet, CocoError> {
        let text = std::fs::read_to_string(path).map_err(|error| CocoError::Read { path: path.to_owned(), error })?;
        CocoSet::parse(path, &text, classes)
    }

    /// Parses COCO JSON text; `path` is used in errors.
    pub fn parse(path: &Path, text: &str, classes: &[String]) -> Result<CocoSet, CocoError> {
        let raw: RawFile =
            serde_json::from_str(text).map_err(|e| CocoError::Json { path: path.to_owned(), reason: e.to_string() })?;
        let invalid = |reason: String| CocoError::Invalid { path: path.to_owned(), reason };

        let category_classes = map_categories(path, &raw.categories, classes)?;

        let mut images = Vec::with_capacity(raw.images.len());
        let mut index_of_id = HashMap::new();
        let mut by_file_name = HashMap::new();
        let mut by_base_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, image) in raw.images.into_iter().enumerate() {
            if index_of_id.insert(image.id, index).is_some() {
                return Err(invalid(format!("image id {} appears twice in `images`; give each image its own id", image.id)));
            }
            let name = normalise_name(&image.file_name);
            if by_file_name.insert(name.clone(), index).is_some() {
                return Err(invalid(format!("file_name \"{}\" appears twice in `images`; list each image once", image.file_name)));
            }
            by_base_name.entry(base_name(&name).to_owned()).or_default().push(index);
            let size = image.width.zip(image.height);
            images.push(CocoImage { file_name: image.file_name, size, shapes: Vec::new() });
        }

        for (position, annotation) in raw.annotations.iter().enumerate() {
            let label = match annotation.id {
                Some(id) => format!("annotation id {id}"),
                None => format!("annotation {position} (counted from 0)"),
            };
            let &image = index_of_id
                .get(&annotation.image_id)
                .ok_or_else(|| invalid(format!("{label} refers to image id {}, which `images` does not list", annotation.image_id)))?;
            let &class = category_classes.get(&annotation.category_id).ok_or_else(|| {
                invalid(format!("{label} refers to category id {}, which `categories` does not list", annotation.category_id))
            })?;
            let polygons = parse_polygons(&annotation.segmentation).map_err(|reason| invalid(format!("{label}: {reason}")))?;
            images[image].shapes.push(Shape { class, polygons });
        }

        Ok(CocoSet { path: path.to_owned(), images, by_file_name, by_base_name })
    }

    /// Returns the file this set was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the number of entries in `images`.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Returns whether `images` is empty.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Finds the entry of an image file from its path relative to the images
    /// folder: an entry whose `file_name` is that relative path, else the one
    /// entry whose `file_name` ends in the same file name.
    pub fn find(&self, image: &Path, relative: &Path) -> Result<&CocoImage, EvalError> {
        let key: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let key = key.join("/");
        if let Some(&index) = self.by_file_name.get(&key) {
            return Ok(&self.images[index]);
        }
        let matches = self.by_base_name.get(base_name(&key)).map(Vec::as_slice).unwrap_or_default();
        match matches {
            [index] => Ok(&self.images[*index]),
            [] => Err(EvalError::CocoImageMissing { image: image.to_owned(), coco: self.path.clone() }),
            several => Err(EvalError::CocoImageAmbiguous {
                image: image.to_owned(),
                coco: self.path.clone(),
                count: several.len(),
            }),
        }
    }
}

/// Maps category ids to class indices by category name.
fn map_categories(path: &Path, categories: &[RawCategory], classes: &[String]) -> Result<HashMap<i64, u8>, CocoError> {
    let mut mapped = HashMap::new();
    for category in categories {
        let Some(class) = classes.iter().position(|c| *c == category.name) else {
            return Err(CocoError::UnknownCategory {
                path: path.to_owned(),
                name: category.name.clone(),
                classes: classes.join(", "),
            });
        };
        // A card lists at most 255 classes (checked when it is loaded).
        let class = u8::try_from(class).map_err(|_| CocoError::Invalid {
            path: path.to_owned(),
            reason: format!("class index {class} of \"{}\" does not fit a mask byte", category.name),
        })?;
        if mapped.insert(category.id, class).is_some() {
            return Err(CocoError::Invalid {
                path: path.to_owned(),
                reason: format!("category id {} appears twice in `categories`; give each category its own id", category.id),
            });
        }
    }
    Ok(mapped)
}

/// Reads a COCO polygon segmentation: a list of polygons, each a flat list
/// x1, y1, x2, y2, … in pixels. A single flat list is read as one polygon.
fn parse_polygons(segmentation: &Value) -> Result<Vec<Polygon>, String> {
    match segmentation {
        Value::Array(items) if items.iter().all(Value::is_array) => items.iter().map(parse_polygon).collect(),
        Value::Array(items) if items.iter().all(Value::is_number) => Ok(vec![parse_polygon(segmentation)?]),
        Value::Object(_) => Err("segmentation is run-length encoded (RLE), and only polygon lists are read; \
                                 export polygons, or write mask PNGs and pass --masks"
            .into()),
        Value::Null => Err("has no segmentation; only annotations with polygon outlines can be evaluated".into()),
        _ => Err("segmentation is not a list of polygons (each a flat list of x, y coordinates)".into()),
    }
}

fn parse_polygon(value: &Value) -> Result<Polygon, String> {
    let numbers = value.as_array().ok_or("a polygon is not a list of coordinates")?;
    if numbers.len() % 2 != 0 {
        return Err(format!("a polygon has {} coordinates, an odd number; give x, y pairs", numbers.len()));
    }
    let mut coordinates = Vec::with_capacity(numbers.len());
    for number in numbers {
        match number.as_f64() {
            Some(v) if v.is_finite() => coordinates.push(v),
            _ => return Err(format!("polygon coordinate {number} is not a finite number")),
        }
    }
    Ok(coordinates.chunks_exact(2).map(|pair| (pair[0], pair[1])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> Vec<String> {
        ["background", "tonsil", "uvula"].iter().map(|s| s.to_string()).collect()
    }

    /// Two images; "uvula" has category id 7 and "tonsil" id 3, in another
    /// order than the model's classes.
    const TWO_IMAGES: &str = r#"{
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 6, "height": 4},
            {"id": 2, "file_name": "sub/b.jpg"}
        ],
        "categories": [{"id": 7, "name": "uvula"}, {"id": 3, "name": "tonsil"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]]},
            {"id": 11, "image_id": 1, "category_id": 7, "segmentation": [[2, 0, 6, 0, 6, 4, 2, 4]]},
            {"id": 12, "image_id": 2, "category_id": 7, "segmentation": [[0, 0, 1, 0, 1, 1, 0, 1], [2, 0, 3, 0, 3, 1, 2, 1]]}
        ]
    }"#;

    fn parse(text: &str) -> Result<CocoSet, CocoError> {
        CocoSet::parse(Path::new("set.json"), text, &classes())
    }

    #[test]
    fn categories_map_by_name() {
        let set = parse(TWO_IMAGES).unwrap();
        let image = set.find(Path::new("a.jpg"), Path::new("a.jpg")).unwrap();
        let map = image.rasterise(6, 4);
        assert_eq!(map.get_pixel(0, 0)[0], 1, "category 3 \"tonsil\" is class 1");
        assert_eq!(map.get_pixel(5, 3)[0], 2, "category 7 \"uvula\" is class 2");
    }

    #[test]
    fn later_annotation_overwrites() {
        let set = parse(TWO_IMAGES).unwrap();
        let map = set.find(Path::new("a.jpg"), Path::new("a.jpg")).unwrap().rasterise(6, 4);
        let row: Vec<u8> = (0..6).map(|x| map.get_pixel(x, 1)[0]).collect();
        assert_eq!(row, vec![1, 1, 2, 2, 2, 2], "the overlap x 2..4 takes the later class");
    }

    #[test]
    fn several_polygons_fill_one_annotation() {
        let set = parse(TWO_IMAGES).unwrap();
        let map = set.find(Path::new("sub/b.jpg"), Path::new("sub/b.jpg")).unwrap().rasterise(4, 2);
        let row: Vec<u8> = (0..4).map(|x| map.get_pixel(x, 0)[0]).collect();
        assert_eq!(row, vec![2, 0, 2, 0], "both parts filled");
        assert_eq!(map.get_pixel(0, 1)[0], 0, "second row empty");
    }

    #[test]
    fn image_size_is_read() {
        let set = parse(TWO_IMAGES).unwrap();
        assert_eq!(set.find(Path::new("a.jpg"), Path::new("a.jpg")).unwrap().size, Some((6, 4)), "width and height given");
        assert_eq!(set.find(Path::new("b.jpg"), Path::new("sub/b.jpg")).unwrap().size, None, "not given");
    }

    #[test]
    fn unknown_category_names_it_and_classes() {
        let text = TWO_IMAGES.replace("\"uvula\"", "\"teeth\"");
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, CocoError::UnknownCategory { .. }), "error kind: {message}");
        assert!(message.contains("\"teeth\""), "names the category: {message}");
        assert!(message.contains("background, tonsil, uvula"), "lists the classes: {message}");
    }

    #[test]
    fn lookup_falls_back_to_file_name() {
        let set = parse(TWO_IMAGES).unwrap();
        let found = set.find(Path::new("/x/b.jpg"), Path::new("b.jpg")).unwrap();
        assert_eq!(found.file_name, "sub/b.jpg", "unique file name matches");
        let missing = set.find(Path::new("/x/c.jpg"), Path::new("c.jpg")).unwrap_err();
        assert!(matches!(missing, EvalError::CocoImageMissing { .. }), "error: {missing}");
    }

    #[test]
    fn lookup_rejects_ambiguous_file_name() {
        let text = r#"{"images": [{"id": 1, "file_name": "p/a.jpg"}, {"id": 2, "file_name": "q/a.jpg"}], "categories": []}"#;
        let set = parse(text).unwrap();
        let error = set.find(Path::new("a.jpg"), Path::new("a.jpg")).unwrap_err();
        assert!(matches!(error, EvalError::CocoImageAmbiguous { count: 2, .. }), "error: {error}");
        assert!(set.find(Path::new("q/a.jpg"), Path::new("q/a.jpg")).is_ok(), "the full path still matches");
    }

    #[test]
    fn rle_is_rejected() {
        let text = TWO_IMAGES.replace("[[0, 0, 4, 0, 4, 4, 0, 4]]", r#"{"counts": [0, 24], "size": [4, 6]}"#);
        let error = parse(&text).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("annotation id 10"), "names the annotation: {message}");
        assert!(message.contains("RLE"), "says why: {message}");
    }

    #[test]
    fn odd_coordinate_count_is_rejected() {
        let text = TWO_IMAGES.replace("[[0, 0, 4, 0, 4, 4, 0, 4]]", "[[0, 0, 4, 0, 4]]");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("odd"), "message: {message}");
    }

    #[test]
    fn unknown_image_id_is_rejected() {
        let text = TWO_IMAGES.replace("\"image_id\": 2", "\"image_id\": 9");
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("image id 9"), "message: {message}");
    }

    #[test]
    fn flat_polygon_list_is_read() {
        let text = TWO_IMAGES.replace("[[0, 0, 4, 0, 4, 4, 0, 4]]", "[0, 0, 4, 0, 4, 4, 0, 4]");
        let set = parse(&text).unwrap();
        let map = set.find(Path::new("a.jpg"), Path::new("a.jpg")).unwrap().rasterise(6, 4);
        assert_eq!(map.get_pixel(0, 0)[0], 1, "one polygon from a flat list");
    }

    #[test]
    fn invalid_json_is_rejected() {
        let error = parse("{\"images\": 3}").unwrap_err();
        assert!(matches!(error, CocoError::Json { .. }), "error: {error}");
    }
}
