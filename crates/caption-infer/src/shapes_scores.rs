//! How well a model describes the synthetic shapes dataset ([`caption_data::shapes`]): what
//! `cargo xtask demo` reports beside BLEU, computed from a captioned split and the dataset's ground
//! truth, so that a test can ask for the same numbers.
//!
//! - attribute accuracy: the share of captions that name the right colours and shapes and no
//!   other ([`ShapesImage::caption_matches`]);
//! - object accuracy: the share that also bind each colour to its shape and place every object
//!   ([`ShapesImage::describes_every_object`]);
//! - attention on the named object (a model with attention): the mean share of a colour or shape
//!   word's attention that falls inside the box of the objects it names;
//! - [`best_constant_caption`]: the baseline a model must beat.
//!
//! caption-data generates the shapes and says what each image holds; the measures live here
//! because they need what caption-data does not know: BLEU and where a grid cell looks.

use std::collections::{HashMap, HashSet};

use caption_data::shapes::{self, ShapesImage};
use caption_data::{PreparedDataset, Split};
use caption_metrics::{Bleu, Corpus};

use crate::InferError;
use crate::attention_map::mass_in_box;
use crate::evaluation::SplitCaptions;

/// A captioned split of the shapes dataset, measured against the ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapesScores {
    /// Per image: the caption names the right colours and shapes and no other.
    pub attribute_hits: Vec<bool>,
    /// Per image: it also binds each colour to its shape and places every object.
    pub object_hits: Vec<bool>,
    /// The mean share of a colour or shape word's attention on its objects; `None` without
    /// attention weights, or when no caption names a colour or shape.
    pub attention_on_object: Option<f64>,
}

impl ShapesScores {
    /// Measures `captions` (a split of `dataset`, which must be a shapes dataset: its ground truth
    /// is read from its folder).
    ///
    /// # Errors
    /// [`InferError::Data`] when the ground truth cannot be read, [`InferError::Evaluation`] when
    /// an image has none.
    pub fn of(dataset: &PreparedDataset, captions: &SplitCaptions) -> Result<Self, InferError> {
        let truth: HashMap<String, ShapesImage> =
            shapes::read_ground_truth(&dataset.root)?.into_iter().map(|s| (s.name.clone(), s)).collect();
        let images: Vec<&ShapesImage> = captions
            .ids
            .iter()
            .map(|id| truth.get(id).ok_or_else(|| InferError::Evaluation(format!("no ground truth for {id}"))))
            .collect::<Result<_, _>>()?;
        let hits = |check: fn(&ShapesImage, &[String]) -> bool| -> Vec<bool> {
            images.iter().zip(&captions.hypotheses).map(|(image, words)| check(image, words)).collect()
        };
        Ok(Self {
            attribute_hits: hits(|image, words| image.caption_matches(words)),
            object_hits: hits(|image, words| image.describes_every_object(words)),
            attention_on_object: attention_on_objects(&images, captions),
        })
    }

    /// The share of captions naming the right colours and shapes.
    pub fn attribute_accuracy(&self) -> f64 {
        share(&self.attribute_hits)
    }

    /// The share of captions describing every object.
    pub fn object_accuracy(&self) -> f64 {
        share(&self.object_hits)
    }
}

fn share(hits: &[bool]) -> f64 {
    hits.iter().filter(|&&h| h).count() as f64 / hits.len().max(1) as f64
}

/// The mean, over every colour or shape word of the generated captions, of the share of the
/// word's attention inside the bounding box of the objects it names ([`mass_in_box`], each cell's
/// weight placed at the centre of its receptive field); `None` without such words.
fn attention_on_objects(images: &[&ShapesImage], captions: &SplitCaptions) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0usize);
    let grid = captions.grid?;
    for ((image, words), alphas) in images.iter().zip(&captions.hypotheses).zip(&captions.alphas) {
        for (word, weights) in words.iter().zip(alphas) {
            let named: Vec<&shapes::Shape> = image
                .shapes
                .iter()
                .filter(|s| [s.colour.word(), s.form.word(), s.form.plural()].contains(&word.as_str()))
                .collect();
            if named.is_empty() || weights.len() != grid.cells * grid.cells {
                continue;
            }
            let bounds = named.iter().fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, s| {
                [b[0].min(s.x - s.radius), b[1].min(s.y - s.radius), b[2].max(s.x + s.radius), b[3].max(s.y + s.radius)]
            });
            sum += f64::from(mass_in_box(weights, grid, image.size, bounds));
            count += 1;
        }
    }
    (count > 0).then(|| sum / count as f64)
}

/// The training caption that, given for every image of `test`, scores the highest corpus BLEU-4
/// (pycocoevalcap's), with that score: the baseline a captioning model must beat.
///
/// # Errors
/// [`InferError::Metrics`] for a corpus BLEU cannot score.
pub fn best_constant_caption(dataset: &PreparedDataset, test: &SplitCaptions) -> Result<(String, f64), InferError> {
    let train_rows: HashSet<usize> = dataset.images_in(Split::Train).into_iter().collect();
    let tokenizer = caption_text::Tokenizer::english();
    let mut seen = HashSet::new();
    let mut best = (String::new(), -1.0);
    for caption in dataset.captions.iter().filter(|c| train_rows.contains(&c.image)) {
        let words = tokenizer.lowercase_words(&caption.text);
        if !seen.insert(words.clone()) {
            continue;
        }
        let hypotheses = vec![words.clone(); test.ids.len()];
        let score = Bleu::coco().corpus(&Corpus::new(&hypotheses, &test.reference_words)?)?.bleu[3];
        if score > best.1 {
            best = (words.join(" "), score);
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use caption_data::shapes::{Colour, Form, Shape};
    use caption_metrics::Bleu;

    use super::*;
    use crate::attention_map::GridGeometry;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    #[test]
    fn attention_on_objects_weighs_only_the_words_that_name_an_object_by_its_box() {
        let shape = |colour, form, x, y, radius| Shape { colour, form, x, y, radius };
        let image = ShapesImage {
            name: "shapes_00001.png".into(),
            size: 100,
            shapes: vec![
                shape(Colour::Red, Form::Circle, 25.0, 25.0, 10.0),
                shape(Colour::Blue, Form::Square, 70.0, 70.0, 20.0),
            ],
            captions: Vec::new(),
        };
        let hypothesis = words("a red circle and a blue square");
        // Uniform attention over a 2 × 2 grid: each word's share is its box's share of the image,
        // 20² / 100² for the circle's words and 40² / 100² for the square's.
        let alphas = vec![vec![0.25f32; 4]; hypothesis.len()];
        let grid = GridGeometry { cells: 2, offset: 25.0, stride: 50.0, input: 100.0 };
        let mut captions = SplitCaptions {
            rows: vec![0],
            ids: vec![image.name.clone()],
            hypotheses: vec![hypothesis],
            alphas: vec![alphas],
            grid: Some(grid),
            references: Vec::new(),
            reference_words: Vec::new(),
            bleu: Bleu::coco(),
        };
        let share = attention_on_objects(&[&image], &captions).unwrap();
        assert!((share - (0.04 + 0.04 + 0.16 + 0.16) / 4.0).abs() < 1e-6, "{share}");
        captions.hypotheses = vec![words("a shape")];
        assert_eq!(attention_on_objects(&[&image], &captions), None, "no word names an object");
        captions.grid = None;
        assert_eq!(attention_on_objects(&[&image], &captions), None, "no attention weights");
        let scores = ShapesScores {
            attribute_hits: vec![true, false, true, true],
            object_hits: vec![],
            attention_on_object: None,
        };
        assert_eq!((scores.attribute_accuracy(), scores.object_accuracy()), (0.75, 0.0));
    }
}
