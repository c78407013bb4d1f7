//! Captions over HTTP: any model [`caption_infer::Captioner`] loads (a run, a checkpoint, an
//! export, the PyTorch original's weights), served by axum with dynamic batching.
//!
//! - `POST /v1/captions`: an image as the raw body (`image/jpeg`, `image/png`) or several as the
//!   files of a `multipart/form-data` form; options ([`DecodingOptions`]) in the query string or in a
//!   form part named `options` (JSON): `beam`, `length_penalty`, `num_captions`, `max_length`,
//!   `sample`, `temperature`, `top_k`, `top_p`, `seed`, `attention_maps`. The answer: per image
//!   its name, size and captions (`caption`, `tokens`, `log_prob`, `finished`, as
//!   `cargo xtask caption --json` prints them), the attention map (a PNG strip as a data URL)
//!   when asked, and the timing (queue, model, batch size, total).
//! - `GET /`: a page to try it in a browser (no external assets); `GET /healthz`, `GET /readyz`
//!   (ready once a warm-up caption has run), `GET /metrics` (Prometheus), `GET /v1/model`.
//! - Requests wait at most [`ServeConfig::max_wait`] to share one encoder batch of up to
//!   [`ServeConfig::max_batch`] images; requests with the same options are decoded together. The
//!   queue is bounded: when full, 503 with `Retry-After`. Limits: body size (413), images per
//!   request (413), pixels per image read from the header before decoding (422), unsupported
//!   (415) or corrupt (422) images with the reason, slow bodies (408), answers that take too long
//!   (504), concurrent requests (503), open connections (beyond the limit they wait to be
//!   accepted), slow or silent headers (the connection is closed). Errors are JSON:
//!   `{"error": {"status", "message"}}`.
//! - One JSON line per request on standard error: id, method, route, status, images, batch,
//!   milliseconds.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use caption_serve::{ServeConfig, serve, stop_signal};
//! let captioner = caption_infer::Captioner::from_run_or_checkpoint(
//!     std::path::Path::new("runs/demo"),
//!     &candle_core::Device::Cpu,
//! )
//! .expect("a trained run");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(captioner, ServeConfig::default(), listener, stop_signal(), |after| {
//!     println!("ready after {after:?}")
//! })
//! .await
//! # }
//! ```

mod batcher;
mod connections;
mod error;
#[cfg(feature = "cli")]
mod flags;
mod intake;
mod metrics;
mod routes;
mod server;

pub use caption_infer::{DecodingOptions, MAX_BEAM, MAX_LENGTH};
#[cfg(feature = "cli")]
pub use flags::ServeFlags;
pub use server::{ServeConfig, serve, stop_signal};
