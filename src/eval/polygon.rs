//! Scan-line polygon fill (even-odd rule, pixel centres) for rasterising
//! ground-truth outlines.

use image::GrayImage;

/// Fills every pixel whose centre lies inside `polygon` with `value`.
///
/// Coordinates are in pixels with (0, 0) at the top-left corner of the top-left
/// pixel, as in COCO, so pixel (x, y) has its centre at (x + 0.5, y + 0.5).
/// Inside is decided by the even-odd rule, so a self-intersecting outline
/// leaves its doubly covered parts empty. A centre exactly on a left or top
/// edge is inside and one on a right or bottom edge is outside, so polygons
/// that share an edge never both fill a pixel. Parts outside the image are
/// clipped. Non-finite coordinates fill nothing useful; callers reject them.
pub fn fill_polygon(image: &mut GrayImage, polygon: &[(f64, f64)], value: u8) {
    if polygon.len() < 3 {
        return;
    }
    let (width, height) = image.dimensions();
    let (top, bottom) = polygon
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &(_, y)| (low.min(y), high.max(y)));
    // Rows whose centre y + 0.5 lies in [top, bottom).
    let first_row = (top - 0.5).ceil().clamp(0.0, height as f64) as u32;
    let end_row = (bottom - 0.5).ceil().clamp(0.0, height as f64) as u32;

    let mut crossings = Vec::with_capacity(polygon.len());
    for row in first_row..end_row {
        let centre_y = row as f64 + 0.5;
        crossings.clear();
        for (index, &(x0, y0)) in polygon.iter().enumerate() {
            let (x1, y1) = polygon[(index + 1) % polygon.len()];
            // Half-open in y: a vertex on the scan line counts for exactly one
            // of its two edges, and horizontal edges never cross.
            if (y0 <= centre_y) != (y1 <= centre_y) {
                crossings.push(x0 + (centre_y - y0) * (x1 - x0) / (y1 - y0));
            }
        }
        crossings.sort_by(f64::total_cmp);

        for span in crossings.chunks_exact(2) {
            // Pixels whose centre x + 0.5 lies in [left, right).
            let start = (span[0] - 0.5).ceil().clamp(0.0, width as f64) as u32;
            let end = (span[1] - 0.5).ceil().clamp(0.0, width as f64) as u32;
            for x in start..end {
                image.put_pixel(x, row, image::Luma([value]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(width: u32, height: u32, polygon: &[(f64, f64)]) -> GrayImage {
        let mut image = GrayImage::new(width, height);
        fill_polygon(&mut image, polygon, 1);
        image
    }

    fn count(image: &GrayImage) -> usize {
        image.pixels().filter(|p| p[0] != 0).count()
    }

    #[test]
    fn square_fills_its_pixels() {
        let image = filled(6, 6, &[(1.0, 1.0), (4.0, 1.0), (4.0, 4.0), (1.0, 4.0)]);
        assert_eq!(count(&image), 9, "a 3×3 square covers 9 pixel centres");
        for y in 0..6 {
            for x in 0..6 {
                let inside = (1..4).contains(&x) && (1..4).contains(&y);
                assert_eq!(image.get_pixel(x, y)[0] == 1, inside, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn square_ignores_vertex_order() {
        let clockwise = filled(6, 6, &[(1.0, 1.0), (4.0, 1.0), (4.0, 4.0), (1.0, 4.0)]);
        let counter_clockwise = filled(6, 6, &[(1.0, 4.0), (4.0, 4.0), (4.0, 1.0), (1.0, 1.0)]);
        assert_eq!(clockwise, counter_clockwise, "winding direction does not matter");
    }

    #[test]
    fn triangle_covers_centres_below_hypotenuse() {
        // Centres (x + 0.5, y + 0.5) with x + y + 1 < 4: rows of 3, 2 and 1 pixels.
        let image = filled(4, 4, &[(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)]);
        let rows: Vec<usize> = (0..4).map(|y| (0..4).filter(|&x| image.get_pixel(x, y)[0] == 1).count()).collect();
        assert_eq!(rows, vec![3, 2, 1, 0], "pixels per row");
        assert_eq!(image.get_pixel(2, 1)[0], 0, "centre (2.5, 1.5) lies on the hypotenuse, right edge, outside");
    }

    #[test]
    fn pixel_centres_decide_coverage() {
        // The square spans 0.6..2.4 on both axes: only the centre 1.5 is inside.
        let image = filled(4, 4, &[(0.6, 0.6), (2.4, 0.6), (2.4, 2.4), (0.6, 2.4)]);
        assert_eq!(count(&image), 1, "one centre inside");
        assert_eq!(image.get_pixel(1, 1)[0], 1, "pixel (1, 1) has centre (1.5, 1.5)");
    }

    #[test]
    fn thin_polygon_between_centres_fills_nothing() {
        let image = filled(4, 4, &[(0.6, 0.0), (1.4, 0.0), (1.4, 4.0), (0.6, 4.0)]);
        assert_eq!(count(&image), 0, "no centre x lies in 0.6..1.4");
    }

    #[test]
    fn shared_edge_is_filled_once() {
        let mut image = GrayImage::new(4, 4);
        fill_polygon(&mut image, &[(0.0, 0.0), (2.0, 0.0), (2.0, 4.0), (0.0, 4.0)], 1);
        fill_polygon(&mut image, &[(2.0, 0.0), (4.0, 0.0), (4.0, 4.0), (2.0, 4.0)], 2);
        assert_eq!(image.pixels().filter(|p| p[0] == 1).count(), 8, "left half");
        assert_eq!(image.pixels().filter(|p| p[0] == 2).count(), 8, "right half");
    }

    #[test]
    fn polygon_is_clipped_to_image() {
        let image = filled(4, 3, &[(-10.0, -10.0), (10.0, -10.0), (10.0, 10.0), (-10.0, 10.0)]);
        assert_eq!(count(&image), 12, "every pixel of a 4×3 image");
    }

    #[test]
    fn bowtie_fills_both_lobes() {
        // The edges cross at (2, 2), giving a left and a right lobe.
        let image = filled(4, 4, &[(0.0, 0.0), (4.0, 4.0), (4.0, 0.0), (0.0, 4.0)]);
        assert_eq!(image.get_pixel(0, 2)[0], 1, "left lobe");
        assert_eq!(image.get_pixel(3, 1)[0], 1, "right lobe");
        assert_eq!(image.get_pixel(2, 0)[0], 0, "above the crossing");
        assert_eq!(image.get_pixel(1, 3)[0], 0, "below the crossing");
    }

    #[test]
    fn overlapping_outlines_cancel_under_even_odd() {
        // One outline that runs twice around the same square: every centre is
        // crossed an even number of times, so nothing is inside.
        let square = [(1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0)];
        let twice: Vec<(f64, f64)> = square.iter().chain(square.iter()).copied().collect();
        let image = filled(4, 4, &twice);
        assert_eq!(count(&image), 0, "doubly wound square is empty");
    }

    #[test]
    fn degenerate_polygon_fills_nothing() {
        let image = filled(4, 4, &[(0.0, 0.0), (4.0, 4.0)]);
        assert_eq!(count(&image), 0, "two vertices have no area");
    }
}
