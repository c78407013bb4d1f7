//! Attention maps: where an attention decoder looked for each word of a caption, drawn as a strip
//! of panels, one per word: the image with that word's weights over the encoder's grid (8 × 8 for
//! Inception v3 at 299 px) upsampled bilinearly and laid over it as a red glow (none at the
//! word's smallest weight, strongest at its largest), the word written beneath.

use std::path::Path;

use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::InferError;

/// Side of one panel, in pixels.
pub const PANEL: u32 = 160;
/// Height of the word's label under a panel.
const LABEL: u32 = 28;
/// Space between panels.
const GAP: u32 = 6;
/// How much of a panel the glow covers where the weight is the word's largest.
const STRENGTH: f32 = 0.7;

/// Where the cells of an encoder's square grid look in the image: cell `j`'s receptive field is
/// centred at pixel `offset + stride · j` of the encoder's square input of `input` pixels (pixel
/// centres at half-integers: `offset` counts from the input's edge). Maps and measures place
/// each cell's weight there and interpolate bilinearly between cell centres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridGeometry {
    /// Cells per side.
    pub cells: usize,
    /// Centre of cell 0, in input pixels from the edge.
    pub offset: f32,
    /// Input pixels between neighbouring cells' centres.
    pub stride: f32,
    /// Side of the encoder's input, in pixels.
    pub input: f32,
}

impl GridGeometry {
    /// Inception v3's Mixed_7c on an input of `input` pixels, `cells` per side (8 at 299 px):
    /// its unpadded stride-2 layers put cell `j`'s centre at input pixel `32·j + 37` (pixel
    /// centre 37.5), not at the centre of the `j`-th eighth of the image (18.7 + 37.4·j at 299
    /// px): the grid covers the middle of the picture, a half cell in from each edge.
    pub fn inception_v3(input: u32, cells: usize) -> Self {
        Self { cells, offset: 37.5, stride: 32.0, input: input as f32 }
    }

    /// Cells laid side by side over the image, each centred in its block (as
    /// `F.interpolate(..., mode="bilinear", align_corners=False)` places them).
    pub fn uniform(cells: usize) -> Self {
        Self { cells, offset: 0.5, stride: 1.0, input: cells as f32 }
    }

    /// The (fractional) cell index at a fraction `0..1` of the image's side.
    fn cell_at(&self, fraction: f32) -> f32 {
        ((fraction * self.input - self.offset) / self.stride).clamp(0.0, (self.cells - 1) as f32)
    }
}

/// The strip for one image: `words[i]` with `alphas[i]` (`grid.cells²` weights, row by row).
///
/// # Errors
/// [`InferError::Evaluation`] when the words and weights do not match or a grid is the wrong
/// size; a drawing error as [`InferError::Evaluation`].
pub fn attention_strip(
    image: &RgbImage,
    words: &[String],
    alphas: &[Vec<f32>],
    grid: GridGeometry,
) -> Result<RgbImage, InferError> {
    let positions = grid.cells * grid.cells;
    if words.len() != alphas.len() || alphas.iter().any(|a| a.len() != positions) || positions == 0 {
        return Err(InferError::Evaluation(format!(
            "attention map: {} words, {} weight grids of sizes {:?}, expected {} weights each",
            words.len(),
            alphas.len(),
            alphas.iter().map(Vec::len).collect::<Vec<_>>(),
            positions
        )));
    }
    let picture = caption_data::resize_bilinear(image, PANEL, PANEL);
    let panels = words.len().max(1) as u32;
    let (width, height) = (panels * PANEL + (panels - 1) * GAP, PANEL + LABEL);
    let mut strip = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (index, weights) in alphas.iter().enumerate() {
        let left = index as u32 * (PANEL + GAP);
        let scaled = scaled_weights(weights);
        for y in 0..PANEL {
            for x in 0..PANEL {
                let weight = upsampled(&scaled, grid, PANEL, x, y);
                let glow = (STRENGTH * weight).clamp(0.0, 1.0);
                let pixel = picture.get_pixel(x, y).0;
                let tinted = [255.0, 40.0, 0.0];
                let mixed: [u8; 3] =
                    std::array::from_fn(|c| (f32::from(pixel[c]) * (1.0 - glow) + tinted[c] * glow).round() as u8);
                strip.put_pixel(left + x, y, Rgb(mixed));
            }
        }
    }
    label(&mut strip, words)?;
    Ok(strip)
}

/// A word's weights scaled from its smallest (0) to its largest (1), as matplotlib's imshow
/// scales an array; all zeros when they are uniform (no glow). The strips and the report's maps
/// draw these.
pub fn scaled_weights(weights: &[f32]) -> Vec<f32> {
    let smallest = weights.iter().copied().fold(f32::INFINITY, f32::min);
    let range = weights.iter().copied().fold(f32::NEG_INFINITY, f32::max) - smallest;
    weights.iter().map(|w| if range > 1e-12 { (w - smallest) / range } else { 0.0 }).collect()
}

/// The PNG `Software` text of every attention map: a map is only ever replaced by another map.
pub const ATTENTION_MAP_SOFTWARE: &str = "caption attention map";

/// Writes [`attention_strip`] as a PNG (its `Software` text [`ATTENTION_MAP_SOFTWARE`]), atomically.
///
/// # Errors
/// As [`attention_strip`]; [`InferError::Io`] naming the file.
pub fn write_attention_map(
    path: &Path,
    image: &RgbImage,
    words: &[String],
    alphas: &[Vec<f32>],
    grid: GridGeometry,
) -> Result<(), InferError> {
    let strip = attention_strip(image, words, alphas, grid)?;
    let mut bytes = Vec::new();
    let encoding = |e: png::EncodingError| InferError::Evaluation(format!("{}: {e}", path.display()));
    let mut encoder = png::Encoder::new(&mut bytes, strip.width(), strip.height());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.add_text_chunk("Software".into(), ATTENTION_MAP_SOFTWARE.into()).map_err(encoding)?;
    let mut writer = encoder.write_header().map_err(encoding)?;
    writer.write_image_data(strip.as_raw()).map_err(encoding)?;
    writer.finish().map_err(encoding)?;
    caption_io::write_bytes_atomically(path, &bytes)
        .map_err(|source| InferError::Io { path: path.display().to_string(), source })
}

/// The weight at pixel (x, y) of an image of `side` × `side` pixels: the weights bilinearly
/// interpolated between the cells' centres as `grid` places them (constant beyond the outer
/// centres).
fn upsampled(weights: &[f32], grid: GridGeometry, side: u32, x: u32, y: u32) -> f32 {
    let cells = grid.cells;
    let source = |pixel: u32| {
        let position = grid.cell_at((pixel as f32 + 0.5) / side as f32);
        let low = position.floor() as usize;
        (low, (low + 1).min(cells - 1), position - low as f32)
    };
    let ((top, bottom, dy), (left, right, dx)) = (source(y), source(x));
    let at = |row: usize, column: usize| weights[row * cells + column];
    let upper = at(top, left) * (1.0 - dx) + at(top, right) * dx;
    let lower = at(bottom, left) * (1.0 - dx) + at(bottom, right) * dx;
    upper * (1.0 - dy) + lower * dy
}

/// The map file name of each image, `NAME.attention.png` (`NAME-2`, … for images of the same
/// name from other folders, in order).
pub fn map_file_names(files: &[std::path::PathBuf]) -> Vec<String> {
    let mut taken = std::collections::HashSet::new();
    files
        .iter()
        .map(|path| {
            let stem = path.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
            let mut name = stem.clone();
            let mut k = 2;
            while !taken.insert(name.clone()) {
                name = format!("{stem}-{k}");
                k += 1;
            }
            format!("{name}.attention.png")
        })
        .collect()
}

/// The share of a word's attention inside a box of a square image of `side` pixels (`left`,
/// `top`, `right`, `bottom` in pixels): the weights upsampled to the image as the maps draw them
/// (bilinear between the cells' centres, placed by `grid`), summed over the pixels whose centres
/// are inside, divided by the sum over all pixels. 1 when all weight is on the box; the box's share of the image when
/// the attention is uniform.
pub fn mass_in_box(weights: &[f32], grid: GridGeometry, side: u32, [left, top, right, bottom]: [f32; 4]) -> f32 {
    let (mut inside, mut total) = (0.0f64, 0.0f64);
    for y in 0..side {
        for x in 0..side {
            let weight = f64::from(upsampled(weights, grid, side, x, y));
            total += weight;
            let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
            if (left..=right).contains(&cx) && (top..=bottom).contains(&cy) {
                inside += weight;
            }
        }
    }
    if total > 0.0 { (inside / total) as f32 } else { 0.0 }
}

/// Writes each word centred under its panel.
fn label(strip: &mut RgbImage, words: &[String]) -> Result<(), InferError> {
    let (width, height) = strip.dimensions();
    let drawing = |e: DrawingAreaErrorKind<_>| InferError::Evaluation(format!("attention map: {e}"));
    let root = BitMapBackend::with_buffer(strip.as_mut(), (width, height)).into_drawing_area();
    let style =
        TextStyle::from((crate::font::sans(), 16).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Top));
    for (index, word) in words.iter().enumerate() {
        let centre = (index as u32 * (PANEL + GAP) + PANEL / 2) as i32;
        root.draw(&Text::new(word.as_str(), (centre, PANEL as i32 + 5), style.clone())).map_err(drawing)?;
    }
    root.present().map_err(drawing)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights on one cell of an 8 × 8 grid.
    fn one_cell(row: usize, column: usize) -> Vec<f32> {
        let mut weights = vec![0.0; 64];
        weights[row * 8 + column] = 1.0;
        weights
    }

    #[test]
    fn each_panel_glows_where_its_word_looked_and_names_the_word() {
        let image = RgbImage::from_pixel(90, 60, Rgb([128, 128, 128]));
        let words = vec!["red".to_string(), "square".to_string()];
        let strip =
            attention_strip(&image, &words, &[one_cell(0, 0), one_cell(7, 7)], GridGeometry::uniform(8)).unwrap();
        assert_eq!(strip.dimensions(), (2 * PANEL + GAP, PANEL + LABEL));
        let redness = |left: u32, x0: u32, y0: u32| {
            let pixels: Vec<[u8; 3]> = (y0..y0 + 20)
                .flat_map(|y| (x0..x0 + 20).map(move |x| (x, y)))
                .map(|(x, y)| strip.get_pixel(left + x, y).0)
                .collect();
            pixels.iter().map(|p| f32::from(p[0]) - f32::from(p[2])).sum::<f32>() / pixels.len() as f32
        };
        let second = PANEL + GAP;
        // The first word looked at the top-left cell, the second at the bottom-right one.
        assert!(redness(0, 0, 0) > 100.0 && redness(0, PANEL - 20, PANEL - 20) < 5.0);
        assert!(redness(second, PANEL - 20, PANEL - 20) > 100.0 && redness(second, 0, 0) < 5.0);
        // Far from the attended cell the picture shows through unchanged; uniform attention
        // shows no glow at all.
        assert_eq!(strip.get_pixel(PANEL / 2, PANEL - 1).0, [128, 128, 128]);
        let uniform = attention_strip(&image, &words[..1], &[vec![1.0 / 64.0; 64]], GridGeometry::uniform(8)).unwrap();
        assert!((0..PANEL).all(|p| uniform.get_pixel(p, p).0 == [128, 128, 128]));
        // The words are written under the panels: dark pixels in each label.
        for left in [0, second] {
            let dark = (PANEL..PANEL + LABEL)
                .flat_map(|y| (left..left + PANEL).map(move |x| (x, y)))
                .filter(|&(x, y)| strip.get_pixel(x, y).0.iter().all(|&c| c < 100))
                .count();
            assert!(dark > 20, "no label under the panel at {left}");
        }
    }

    #[test]
    fn mismatched_words_and_weights_are_an_error() {
        let image = RgbImage::from_pixel(10, 10, Rgb([0, 0, 0]));
        let words = vec!["a".to_string()];
        assert!(attention_strip(&image, &words, &[], GridGeometry::uniform(8)).is_err());
        assert!(attention_strip(&image, &words, &[vec![1.0; 63]], GridGeometry::uniform(8)).is_err());
    }

    #[test]
    fn upsampling_keeps_a_uniform_grid_uniform_and_interpolates_between_centres() {
        let uniform = vec![0.25; 4];
        assert!(
            (0..PANEL)
                .all(|p| (upsampled(&uniform, GridGeometry::uniform(2), PANEL, p, PANEL - 1 - p) - 0.25).abs() < 1e-6)
        );
        // Two columns 0 and 1: the left quarter is 0, the right quarter 1, the middle ramps.
        let ramp = [0.0, 1.0, 0.0, 1.0];
        assert_eq!(upsampled(&ramp, GridGeometry::uniform(2), PANEL, 0, 0), 0.0);
        assert_eq!(upsampled(&ramp, GridGeometry::uniform(2), PANEL, PANEL - 1, 0), 1.0);
        let middle = upsampled(&ramp, GridGeometry::uniform(2), PANEL, PANEL / 2, 0);
        assert!((middle - 0.5).abs() < 0.02, "{middle}");
    }

    #[test]
    fn mass_in_box_is_the_share_of_the_upsampled_weights_inside() {
        // All weight on the top-left cell of a 2 × 2 grid over 100 px.
        let corner = [1.0, 0.0, 0.0, 0.0];
        let top_left = mass_in_box(&corner, GridGeometry::uniform(2), 100, [0.0, 0.0, 50.0, 50.0]);
        let everything = mass_in_box(&corner, GridGeometry::uniform(2), 100, [0.0, 0.0, 100.0, 100.0]);
        let bottom_right = mass_in_box(&corner, GridGeometry::uniform(2), 100, [50.0, 50.0, 100.0, 100.0]);
        assert!((everything - 1.0).abs() < 1e-6);
        assert!(top_left > 0.75 && bottom_right < 0.05, "{top_left} {bottom_right}");
        // Uniform weights: the box's share of the image.
        let uniform = mass_in_box(&[0.25; 4], GridGeometry::uniform(2), 100, [0.0, 0.0, 50.0, 100.0]);
        assert!((uniform - 0.5).abs() < 1e-6, "{uniform}");
    }

    #[test]
    fn inception_cells_look_at_their_receptive_fields_centres() {
        // Inception v3 at 299 px: cell 0's centre is input pixel 37.5, cell 7's 261.5.
        let grid = GridGeometry::inception_v3(299, 8);
        assert!(grid.cell_at(37.5 / 299.0).abs() < 1e-5);
        assert!((grid.cell_at(261.5 / 299.0) - 7.0).abs() < 1e-5);
        assert!((grid.cell_at(0.5) - (149.5 - 37.5) / 32.0).abs() < 1e-5);
        // Beyond the outer centres the weight is the outer cell's.
        assert_eq!(grid.cell_at(0.01), 0.0);
        assert_eq!(grid.cell_at(0.99), 7.0);
        // Uniform cells: align_corners=False.
        let uniform = GridGeometry::uniform(8);
        assert!((uniform.cell_at(0.5) - 3.5).abs() < 1e-6 && uniform.cell_at(1.0 / 16.0) == 0.0);
    }
}
