//! The captioner: a run, a checkpoint, an export or the original's weights, captioning image
//! files or pixels with any decoding `cargo xtask caption` offers.

use std::path::PathBuf;
use std::sync::Mutex;

use caption_infer::{Captioner as Model, DecodingOptions, ModelFacts};
use image::RgbImage;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::caption_error;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Captioner>()
}

/// An image to caption: a file's path, or RGB pixels (width, height, row-major bytes).
#[derive(FromPyObject)]
enum Picture<'py> {
    Path(PathBuf),
    Pixels(u32, u32, Bound<'py, PyBytes>),
}

/// A picture with its bytes out of Python's memory, to load without the GIL.
enum Source {
    File(PathBuf),
    Pixels(u32, u32, Vec<u8>),
}

impl Picture<'_> {
    fn source(self) -> Source {
        match self {
            Picture::Path(path) => Source::File(path),
            Picture::Pixels(width, height, bytes) => Source::Pixels(width, height, bytes.as_bytes().to_vec()),
        }
    }
}

impl Source {
    /// The picture as the model takes it; a file is read and checked as `caption` reads it.
    fn load(self) -> Result<RgbImage, String> {
        match self {
            Source::File(path) => caption_data::check_image_file(&path).map_err(|e| format!("{}: {e}", path.display())),
            Source::Pixels(width, height, bytes) => {
                if width == 0 || height == 0 {
                    return Err(format!("an image of {width}x{height} pixels has nothing to caption"));
                }
                let (expected, given) = (width as usize * height as usize * 3, bytes.len());
                RgbImage::from_raw(width, height, bytes)
                    .filter(|_| expected == given)
                    .ok_or_else(|| format!("{width}x{height} RGB pixels take {expected} bytes, not {given}"))
            }
        }
    }
}

/// One caption: its words, the text as a person writes it, the summed log-probability, whether
/// it ended with `<EOS>`, and for an attention model each word's weights (row-major
/// `cells` x `cells`, flattened).
type Caption = (Vec<String>, String, f32, bool, Vec<f32>, usize);

/// A trained model and its vocabulary.
#[pyclass(frozen, module = "caption._native")]
struct Captioner {
    model: Mutex<Model>,
    facts: ModelFacts,
    #[pyo3(get)]
    architecture: String,
    #[pyo3(get)]
    attention: bool,
    #[pyo3(get)]
    vocabulary_size: usize,
    #[pyo3(get)]
    max_length: usize,
    #[pyo3(get)]
    source: String,
}

#[pymethods]
impl Captioner {
    /// Loads a run, checkpoint or export folder, or with `captions` the PyTorch original's
    /// checkpoint and the captions file its vocabulary was built from.
    #[new]
    #[pyo3(signature = (path, captions = None, threshold = 5, device = "cpu"))]
    fn new(py: Python<'_>, path: PathBuf, captions: Option<PathBuf>, threshold: usize, device: &str) -> PyResult<Self> {
        let device = caption_model::parse_device(device).map_err(caption_error)?;
        let model = py
            .detach(|| match &captions {
                Some(captions) => Model::from_original_files(&path, captions, threshold, &device),
                None => Model::from_run_or_checkpoint(&path, &device),
            })
            .map_err(caption_error)?;
        Ok(Self {
            facts: ModelFacts::of(&model),
            architecture: model.config.kind.architecture().to_owned(),
            attention: model.config.kind.has_attention(),
            vocabulary_size: model.vocabulary.len(),
            max_length: model.max_length,
            source: model.source.clone(),
            model: Mutex::new(model),
        })
    }

    /// Captions `images` (paths or pixels): per image its captions, as the options ask (the
    /// names and rules of `POST /v1/captions`' options); an attention model's captions carry
    /// their weights.
    #[pyo3(signature = (images, *, beam = None, length_penalty = None, num_captions = None, max_length = None,
                        sample = None, temperature = None, top_k = None, top_p = None, seed = None))]
    #[allow(clippy::too_many_arguments)]
    fn caption(
        &self,
        py: Python<'_>,
        images: Vec<Picture<'_>>,
        beam: Option<usize>,
        length_penalty: Option<f32>,
        num_captions: Option<usize>,
        max_length: Option<usize>,
        sample: Option<usize>,
        temperature: Option<f32>,
        top_k: Option<usize>,
        top_p: Option<f32>,
        seed: Option<u64>,
    ) -> PyResult<Vec<Vec<Caption>>> {
        let options = DecodingOptions {
            beam,
            length_penalty,
            num_captions,
            max_length,
            sample,
            temperature,
            top_k,
            top_p,
            seed,
            attention_maps: None,
        };
        let plan = options.plan(&self.facts).map_err(caption_error)?;
        let sources: Vec<Source> = images.into_iter().map(Picture::source).collect();
        py.detach(|| {
            let images: Vec<RgbImage> = sources.into_iter().map(Source::load).collect::<Result<_, _>>()?;
            let mut model = self.model.lock().map_err(|_| "an earlier call panicked while captioning".to_string())?;
            let captioned = model.caption_with(&images, &plan).map_err(|e| e.to_string())?;
            Ok::<_, String>(
                captioned
                    .into_iter()
                    .map(|captions| {
                        captions
                            .into_iter()
                            .map(|generated| {
                                let text = generated.text(false);
                                let cells = generated.grid.map_or(0, |grid| grid.cells);
                                let weights = generated.alphas.concat();
                                (generated.words, text, generated.log_prob, generated.finished, weights, cells)
                            })
                            .collect()
                    })
                    .collect(),
            )
        })
        .map_err(caption_error)
    }
}
