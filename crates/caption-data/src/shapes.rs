//! The synthetic shapes dataset: coloured shapes on a plain background, five varied captions per
//! image that describe only what is visible, all deterministic from a seed.
//!
//! Each image holds one shape (on the left or the right) or two identical shapes side by side, in
//! one of four colours and three forms; the captions name the count, colour, shape and, for one
//! shape, its side. [`Scenes::Mixed`] adds pairs of two different shapes (another colour, another
//! form, or both), named left to right, so that which word belongs to which object, and where it
//! is, can only be read by looking at each object (what an attention decoder is for). The design is learnable in minutes on a CPU by the Inception v3 + LSTM model
//! even when the encoder's weights are random: colour and shape are large, flat, high-contrast
//! regions, and every caption word is determined by the picture.

use std::collections::HashMap;
use std::path::Path;

use image::{Rgb, RgbImage};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{CaptionRecord, DataError};

/// A colour a shape can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Red.
    Red,
    /// Green.
    Green,
    /// Blue.
    Blue,
    /// Yellow.
    Yellow,
}

impl Colour {
    /// Every colour.
    pub const ALL: [Colour; 4] = [Colour::Red, Colour::Green, Colour::Blue, Colour::Yellow];

    /// The colour's word in captions.
    pub fn word(self) -> &'static str {
        match self {
            Colour::Red => "red",
            Colour::Green => "green",
            Colour::Blue => "blue",
            Colour::Yellow => "yellow",
        }
    }

    /// The colour's pixel value.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 170, 60],
            Colour::Blue => [40, 80, 220],
            Colour::Yellow => [240, 210, 40],
        }
    }
}

/// A shape's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    /// A disc.
    Circle,
    /// An axis-aligned square.
    Square,
    /// An upright isosceles triangle.
    Triangle,
}

impl Form {
    /// Every form.
    pub const ALL: [Form; 3] = [Form::Circle, Form::Square, Form::Triangle];

    /// The form's word in captions (singular).
    pub fn word(self) -> &'static str {
        match self {
            Form::Circle => "circle",
            Form::Square => "square",
            Form::Triangle => "triangle",
        }
    }

    /// The form's plural word.
    pub fn plural(self) -> &'static str {
        match self {
            Form::Circle => "circles",
            Form::Square => "squares",
            Form::Triangle => "triangles",
        }
    }
}

/// One shape drawn in an image, in pixels of the image it was generated for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Its colour.
    pub colour: Colour,
    /// Its form.
    pub form: Form,
    /// Horizontal centre.
    pub x: f32,
    /// Vertical centre.
    pub y: f32,
    /// Half its width (the radius of a circle).
    pub radius: f32,
}

impl Shape {
    /// Whether the point (`px`, `py`) is inside the shape.
    fn contains(&self, px: f32, py: f32) -> bool {
        let (dx, dy) = (px - self.x, py - self.y);
        let r = self.radius;
        match self.form {
            Form::Circle => dx * dx + dy * dy <= r * r,
            Form::Square => dx.abs() <= r && dy.abs() <= r,
            // Apex at (0, -r), base from (-r, r) to (r, r).
            Form::Triangle => dy <= r && dy >= -r && dx.abs() <= (dy + r) / 2.0,
        }
    }
}

/// One generated image: what it shows and how it is described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapesImage {
    /// File name, `shapes_00042.png`.
    pub name: String,
    /// Side of the square image in pixels.
    pub size: u32,
    /// The shapes, left to right.
    pub shapes: Vec<Shape>,
    /// Five captions, each a complete description.
    pub captions: Vec<String>,
}

/// Background grey.
const BACKGROUND: [u8; 3] = [235, 235, 235];

impl ShapesImage {
    /// Draws the image (2 × 2 supersampled edges).
    pub fn render(&self) -> RgbImage {
        RgbImage::from_fn(self.size, self.size, |x, y| {
            let mut sum = [0u32; 3];
            for (ox, oy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (px, py) = (x as f32 + ox, y as f32 + oy);
                let colour = self.shapes.iter().find(|s| s.contains(px, py)).map_or(BACKGROUND, |s| s.colour.rgb());
                for c in 0..3 {
                    sum[c] += u32::from(colour[c]);
                }
            }
            Rgb(sum.map(|s| ((s + 2) / 4) as u8))
        })
    }

    /// Whether `words` (a lowercased, tokenized caption) describes every object: it names the
    /// colours and forms present and no other ([`caption_matches`](Self::caption_matches)); one
    /// shape as "colour form" with its side ("left" or "right", not the other); two identical
    /// shapes in the plural with "two", "pair" or "both"; two different ones each as "colour form",
    /// left to right.
    pub fn describes_every_object<W: AsRef<str>>(&self, words: &[W]) -> bool {
        if !self.caption_matches(words) {
            return false;
        }
        let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
        let named = |word: &str| words.contains(&word);
        let position =
            |colour: Colour, form: &str| words.windows(2).position(|pair| pair[0] == colour.word() && pair[1] == form);
        match self.shapes.as_slice() {
            [one] => {
                let (side, other) = if one.x < self.size as f32 / 2.0 { ("left", "right") } else { ("right", "left") };
                position(one.colour, one.form.word()).is_some() && named(side) && !named(other)
            }
            // One colour and one form: naming them (checked above) binds them; the count remains.
            [a, b] if (a.colour, a.form) == (b.colour, b.form) => {
                named(a.form.plural()) && ["two", "pair", "both"].iter().any(|w| named(w))
            }
            [left, right] => match (position(left.colour, left.form.word()), position(right.colour, right.form.word()))
            {
                (Some(l), Some(r)) => l < r,
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether `words` (a lowercased, tokenized caption) names the colour and the form of every
    /// shape in the image and no colour or form that is absent: the demo's attribute check.
    pub fn caption_matches<W: AsRef<str>>(&self, words: &[W]) -> bool {
        let named = |word: &str| words.iter().any(|w| w.as_ref() == word);
        let colours_ok = Colour::ALL.iter().all(|c| named(c.word()) == self.shapes.iter().any(|s| s.colour == *c));
        let forms_ok = Form::ALL
            .iter()
            .all(|f| (named(f.word()) || named(f.plural())) == self.shapes.iter().any(|s| s.form == *f));
        colours_ok && forms_ok
    }
}

/// Which scenes the generator draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenes {
    /// One shape, left or right, or two identical shapes side by side.
    #[default]
    Simple,
    /// As `Simple`, but half the pairs are two different shapes: another colour, another form, or
    /// both (the same images as `Simple` otherwise, up to the second shape and the captions).
    Mixed,
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapesConfig {
    /// Number of images.
    pub images: usize,
    /// Side of each square image in pixels.
    pub size: u32,
    /// Seed: the same seed gives the same images and captions.
    pub seed: u64,
    /// Which scenes.
    pub scenes: Scenes,
}

impl Default for ShapesConfig {
    fn default() -> Self {
        Self { images: 1500, size: 128, seed: 0, scenes: Scenes::Simple }
    }
}

impl ShapesConfig {
    /// Image counts accepted (every image is rendered in memory before preparation).
    pub const IMAGES: std::ops::RangeInclusive<usize> = 1..=200_000;
    /// Sides accepted: Inception v3's smallest input up to what the drawing scales to sensibly.
    pub const SIZES: std::ops::RangeInclusive<u32> = 75..=1024;

    /// Checks the counts before anything is allocated.
    ///
    /// # Errors
    /// What is out of range, as text.
    pub fn validate(&self) -> Result<(), String> {
        if !Self::IMAGES.contains(&self.images) {
            return Err(format!(
                "shapes: {} images asked; between {} and {} are generated",
                self.images,
                Self::IMAGES.start(),
                Self::IMAGES.end()
            ));
        }
        if !Self::SIZES.contains(&self.size) {
            return Err(format!(
                "shapes: images of {} px asked; sides from {} (Inception v3's smallest input) to {} px are generated",
                self.size,
                Self::SIZES.start(),
                Self::SIZES.end()
            ));
        }
        Ok(())
    }
}

/// Generates the dataset's descriptions (render each with [`ShapesImage::render`]). Image `i`
/// depends only on the seed and `i`, so a larger dataset extends a smaller one.
pub fn generate(config: ShapesConfig) -> Vec<ShapesImage> {
    (0..config.images).map(|i| generate_one(config, i)).collect()
}

fn generate_one(config: ShapesConfig, index: usize) -> ShapesImage {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(index as u64);
    let size = config.size as f32;
    let unit = size / 128.0;
    let colour = Colour::ALL[rng.random_range(0..Colour::ALL.len())];
    let form = Form::ALL[rng.random_range(0..Form::ALL.len())];
    let two = rng.random_bool(0.4);
    let left = rng.random_bool(0.5);
    // Mixed scenes draw the second shape's attributes here (simple scenes draw nothing, so their
    // images are the same as before there was a choice).
    let (second_colour, second_form) = if two && config.scenes == Scenes::Mixed && rng.random_bool(0.5) {
        let other_colour = |rng: &mut ChaCha8Rng| loop {
            let other = Colour::ALL[rng.random_range(0..Colour::ALL.len())];
            if other != colour {
                break other;
            }
        };
        let other_form = |rng: &mut ChaCha8Rng| loop {
            let other = Form::ALL[rng.random_range(0..Form::ALL.len())];
            if other != form {
                break other;
            }
        };
        match rng.random_range(0..3) {
            0 => (other_colour(&mut rng), form),
            1 => (colour, other_form(&mut rng)),
            _ => (other_colour(&mut rng), other_form(&mut rng)),
        }
    } else {
        (colour, form)
    };
    let mut place = |x: f32, colour: Colour, form: Form| {
        let radius = rng.random_range(20.0..28.0) * unit;
        let x = (x + rng.random_range(-6.0..6.0)) * unit;
        let y = (64.0 + rng.random_range(-14.0..14.0)) * unit;
        Shape { colour, form, x, y, radius }
    };
    let shapes = if two {
        vec![place(32.0, colour, form), place(96.0, second_colour, second_form)]
    } else {
        vec![place(if left { 32.0 } else { 96.0 }, colour, form)]
    };
    let captions = describe(&shapes, left, &mut rng);
    ShapesImage { name: format!("shapes_{index:05}.png"), size: config.size, shapes, captions }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// Five captions for the shapes, picked from varied templates.
fn describe(shapes: &[Shape], left: bool, rng: &mut ChaCha8Rng) -> Vec<String> {
    let (c, f) = (shapes[0].colour.word(), shapes[0].form);
    // Short, attribute-dense templates: nearly every 4-gram holds a colour or a shape word, so a
    // caption that ignores the picture cannot score well (the demo's constant-caption baseline).
    let different = shapes.len() == 2 && (shapes[1].colour, shapes[1].form) != (shapes[0].colour, f);
    let mut templates: Vec<String> = if different {
        // Named left to right.
        let (l, r) = (format!("{c} {}", f.word()), format!("{} {}", shapes[1].colour.word(), shapes[1].form.word()));
        vec![
            format!("A {l} and a {r}"),
            format!("A {l} on the left and a {r} on the right"),
            format!("A {l} to the left of a {r}"),
            format!("A {l} beside a {r}"),
            format!("On the left a {l}, on the right a {r}"),
            format!("A {l} next to a {r}"),
        ]
    } else if shapes.len() == 1 {
        let (s, side) = (f.word(), if left { "left" } else { "right" });
        vec![
            format!("A {c} {s} on the {side}"),
            format!("A {c} {s} to the {side}"),
            format!("A single {c} {s} at the {side}"),
            format!("{} {s}, {side} side", capitalise(c)),
            format!("One {c} {s} on the {side} side"),
            format!("The {side} side has a {c} {s}"),
        ]
    } else {
        let s = f.plural();
        vec![
            format!("Two {c} {s}"),
            format!("Two {c} {s} side by side"),
            format!("A pair of {c} {s}"),
            format!("There are two {c} {s}"),
            format!("Two {c} {s} in a row"),
            format!("Two {s}, both {c}"),
        ]
    };
    templates.shuffle(rng);
    templates.truncate(5);
    templates
}

/// File of the prepared shapes dataset that holds every image's [`ShapesImage`] (the ground
/// truth the demo's attribute accuracy is checked against).
pub const GROUND_TRUTH_FILE: &str = "shapes.json";

/// The shapes dataset as a source for [`crate::prepare`]: its caption records and rendered
/// images, with `options` describing it (its source line, format `shapes`, and the ground truth
/// as an extra file, [`GROUND_TRUTH_FILE`]); the name is left as `options` has it.
///
/// # Errors
/// [`DataError::Invalid`] when `config` is out of range ([`ShapesConfig::validate`]).
pub fn source(
    config: ShapesConfig,
    options: &mut crate::PrepareOptions,
) -> Result<(Vec<CaptionRecord>, crate::ImageSource), DataError> {
    config.validate().map_err(DataError::Invalid)?;
    let generated = generate(config);
    let (records, pngs) = records_and_images(&generated);
    let scenes = match config.scenes {
        Scenes::Simple => "",
        Scenes::Mixed => ", mixed scenes",
    };
    options.source =
        format!("shapes generator: {} images of {} px, seed {}{scenes}", config.images, config.size, config.seed);
    options.format = "shapes".into();
    let truth = serde_json::to_vec(&generated).expect("the ground truth serialises");
    options.extra_files = vec![(GROUND_TRUTH_FILE.into(), truth)];
    Ok((records, crate::ImageSource::Bytes(pngs)))
}

/// The caption records (no splits: the split is hashed from the name) and PNG bytes of every
/// image, rendered in parallel, ready for [`crate::prepare`].
pub fn records_and_images(images: &[ShapesImage]) -> (Vec<CaptionRecord>, HashMap<String, Vec<u8>>) {
    let records = images
        .iter()
        .flat_map(|image| {
            image.captions.iter().enumerate().map(|(k, caption)| CaptionRecord {
                image: image.name.clone(),
                caption: caption.clone(),
                line: k as u64 + 1,
                split: None,
            })
        })
        .collect();
    let pngs = images
        .par_iter()
        .map(|image| {
            let mut bytes = Vec::new();
            image
                .render()
                .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
                .expect("encoding a PNG into memory cannot fail");
            (image.name.clone(), bytes)
        })
        .collect();
    (records, pngs)
}

/// Reads the ground truth stored with a prepared shapes dataset.
///
/// # Errors
/// [`DataError::Io`] or [`DataError::Malformed`].
pub fn read_ground_truth(dataset_root: &Path) -> Result<Vec<ShapesImage>, DataError> {
    let path = dataset_root.join(GROUND_TRUTH_FILE);
    let text =
        std::fs::read_to_string(&path).map_err(|source| DataError::Io { path: path.display().to_string(), source })?;
    serde_json::from_str(&text).map_err(|e| DataError::Malformed {
        path: path.display().to_string(),
        line: e.line() as u64,
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_dataset_and_prefixes_agree() {
        let a = generate(ShapesConfig { images: 20, size: 64, seed: 3, ..ShapesConfig::default() });
        let b = generate(ShapesConfig { images: 30, size: 64, seed: 3, ..ShapesConfig::default() });
        assert_eq!(a[..], b[..20]);
        assert_eq!(a[7].render(), b[7].render());
        let c = generate(ShapesConfig { images: 20, size: 64, seed: 4, ..ShapesConfig::default() });
        assert_ne!(a, c);
    }

    #[test]
    fn captions_describe_the_picture() {
        let tokenizer = caption_text::Tokenizer::english();
        let mut different_pairs = 0;
        for scenes in [Scenes::Simple, Scenes::Mixed] {
            for image in generate(ShapesConfig { images: 200, size: 128, seed: 1, scenes }) {
                check_captions(&tokenizer, &image);
                different_pairs += usize::from(
                    image.shapes.len() == 2
                        && (image.shapes[0].colour, image.shapes[0].form)
                            != (image.shapes[1].colour, image.shapes[1].form),
                );
            }
        }
        assert!((20..60).contains(&different_pairs), "{different_pairs} of 80 expected pairs in mixed scenes differ");
    }

    #[test]
    fn mixed_scenes_are_simple_scenes_but_for_the_pairs_they_change() {
        let simple = generate(ShapesConfig { images: 100, size: 96, seed: 2, scenes: Scenes::Simple });
        let mixed = generate(ShapesConfig { images: 100, size: 96, seed: 2, scenes: Scenes::Mixed });
        let mut changed = 0;
        for (a, b) in simple.iter().zip(&mixed) {
            if a.shapes.len() == 1 {
                assert_eq!(a, b, "single shapes are drawn alike");
            }
            changed += usize::from(a != b);
            assert_eq!((a.shapes[0].colour, a.shapes[0].form), (b.shapes[0].colour, b.shapes[0].form));
        }
        assert!(changed > 0);
    }

    #[test]
    fn the_object_check_wants_each_object_bound_and_in_its_place() {
        let image = |shapes: Vec<Shape>| ShapesImage { name: "x.png".into(), size: 128, shapes, captions: Vec::new() };
        let shape = |colour, form, x| Shape { colour, form, x, y: 64.0, radius: 20.0 };
        let pair = image(vec![shape(Colour::Red, Form::Circle, 32.0), shape(Colour::Blue, Form::Square, 96.0)]);
        let words = |text: &str| text.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert!(pair.describes_every_object(&words("a red circle and a blue square")));
        assert!(!pair.describes_every_object(&words("a blue square and a red circle")), "right to left");
        assert!(!pair.describes_every_object(&words("a blue circle and a red square")), "colours swapped");
        assert!(pair.caption_matches(&words("a blue circle and a red square")), "the looser check passes it");
        let single = image(vec![shape(Colour::Green, Form::Triangle, 96.0)]);
        assert!(single.describes_every_object(&words("a green triangle on the right")));
        assert!(!single.describes_every_object(&words("a green triangle on the left")));
        let twins = image(vec![shape(Colour::Yellow, Form::Square, 32.0), shape(Colour::Yellow, Form::Square, 96.0)]);
        assert!(twins.describes_every_object(&words("two yellow squares")));
        assert!(!twins.describes_every_object(&words("a yellow square")));
    }

    fn check_captions(tokenizer: &caption_text::Tokenizer, image: &ShapesImage) {
        assert_eq!(image.captions.len(), 5);
        for caption in &image.captions {
            let words = tokenizer.lowercase_words(caption);
            assert!(image.caption_matches(&words), "{caption:?} for {:?}", image.shapes);
            assert!(image.describes_every_object(&words), "{caption:?} for {:?}", image.shapes);
        }
        let pixels = image.render();
        for shape in &image.shapes {
            let centre = pixels.get_pixel(shape.x as u32, shape.y as u32 + 2);
            assert_eq!(centre.0, shape.colour.rgb(), "{} centre", image.name);
        }
        assert_eq!(pixels.get_pixel(64, 2).0, BACKGROUND);
    }

    #[test]
    fn the_attribute_check_rejects_wrong_or_extra_words() {
        let image = generate_one(ShapesConfig { images: 1, size: 128, seed: 0, ..ShapesConfig::default() }, 0);
        let (c, f) = (image.shapes[0].colour, image.shapes[0].form);
        let other_colour = Colour::ALL.iter().find(|x| **x != c).unwrap().word();
        let other_form = Form::ALL.iter().find(|x| **x != f).unwrap().word();
        assert!(image.caption_matches(&["a", c.word(), f.word()]));
        assert!(!image.caption_matches(&["a", other_colour, f.word()]));
        assert!(!image.caption_matches(&["a", c.word(), other_form]));
        assert!(!image.caption_matches(&["a", c.word(), f.word(), "and", other_form]));
        assert!(!image.caption_matches(&["a", c.word()]));
    }
}
