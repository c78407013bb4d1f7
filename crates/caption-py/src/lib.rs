//! The native half of the Python package `caption` (PyO3): the metrics of caption-metrics, the
//! tokenizer and vocabulary of caption-text, the captioner of caption-infer. The package's Python
//! half (`python/caption`) gives them pycocoevalcap's, nltk's and sacrebleu's interfaces; this
//! module takes and returns plain lists, strings and numbers.
//!
//! Every error reaches Python as `caption.CaptionError` (a `ValueError`) with the message the
//! command line prints; a panic becomes pyo3's `PanicException` and never aborts the interpreter.
//! Long work (tokenizing batches, scoring, captioning) runs with the GIL released.
//!
//! Built with maturin (`crates/caption-py/pyproject.toml`):
//!
//! ```text
//! pip install maturin && maturin build --release -m crates/caption-py/Cargo.toml
//! pip install target/wheels/caption-*.whl
//! python -c "from caption.metrics import Bleu; print(Bleu(4).compute_score({1: ['a b c']}, {1: ['a b c']}))"
//! ```

mod captioner;
mod metrics;
mod text;

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    CaptionError,
    pyo3::exceptions::PyValueError,
    "A wrong input or a model that cannot run: the message names the file or the option and the cause."
);

/// `error`'s message as a [`CaptionError`], as the command line prints it: candle captures a
/// backtrace into its errors' text when `RUST_BACKTRACE` is set, and a message for people has none.
pub(crate) fn caption_error(error: impl std::fmt::Display) -> PyErr {
    let message = error.to_string();
    let message = message.split_once("\n   0: ").map_or(message.as_str(), |(message, _)| message);
    CaptionError::new_err(message.trim_end().to_owned())
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("CaptionError", module.py().get_type::<CaptionError>())?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    metrics::register(module)?;
    text::register(module)?;
    captioner::register(module)?;
    Ok(())
}
