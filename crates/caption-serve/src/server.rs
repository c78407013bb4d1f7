//! Starting the server: the model's thread, a warm-up caption before `/readyz` says ready, the
//! routes, and a graceful stop (no new connections; requests in flight are answered).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caption_infer::Captioner;
use image::RgbImage;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};

use crate::batcher::{Batcher, Job};
use crate::connections::serve_connections;
use crate::metrics::Metrics;
use crate::routes::{AppState, router};
use caption_infer::{Method, ModelFacts, Plan};

/// The server's limits and batching.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Images one batch gathers at most (a single larger request still runs whole).
    pub max_batch: usize,
    /// How long the first request of a batch waits for others.
    pub max_wait: Duration,
    /// Requests that may wait for the model; beyond, 503 with `Retry-After`.
    pub queue: usize,
    /// Captioning requests answered at once; beyond, 503.
    pub max_concurrent: usize,
    /// Connections open at once; beyond, new ones wait in the operating system's accept queue.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, or stay idle between
    /// requests, before it is closed: slow or silent clients are cut off.
    pub header_timeout: Duration,
    /// Largest body (413 beyond).
    pub max_body_bytes: usize,
    /// Most images in one request (413 beyond).
    pub max_images: usize,
    /// Most pixels in one image, read from its header before decoding (422 beyond).
    pub max_pixels: u64,
    /// How long a body may take to arrive (408 beyond): slow clients are cut off.
    pub body_timeout: Duration,
    /// How long a request may wait for its captions (504 beyond).
    pub request_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_batch: 32,
            max_wait: Duration::from_millis(5),
            queue: 256,
            max_concurrent: 512,
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            max_body_bytes: 32 << 20,
            max_images: 64,
            max_pixels: 50_000_000,
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// What `GET /v1/model` answers for `captioner`.
fn model_info(captioner: &Captioner) -> serde_json::Value {
    let config = &captioner.config;
    json!({
        "architecture": config.kind.architecture(),
        "decoder": config.kind.name(),
        "attention": config.kind.has_attention(),
        "embed_size": config.embed_size,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "attention_dim": config.attention_dim,
        "vocabulary_size": captioner.vocabulary.len(),
        "image_size": captioner.transform.resize,
        "checkpoint": captioner.source,
        "device": format!("{:?}", captioner.device),
        "defaults": {"beam": 1, "max_length": captioner.max_length, "batch_size": captioner.batch_size},
    })
}

/// Serves `captioner` on `listener` until `shutdown` completes, then stops accepting, answers the
/// requests in flight and returns. Connections are limited and cut off as [`ServeConfig`] says. `/readyz` says ready once a warm-up caption has run;
/// `on_ready` is called then, with the time since this call.
///
/// # Errors
/// The listener's error, or the warm-up's: a model that cannot caption a grey test picture stops
/// the server.
pub async fn serve(
    captioner: Captioner,
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Duration) + Send + 'static,
) -> std::io::Result<()> {
    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());
    let (facts, model_info) = (ModelFacts::of(&captioner), model_info(&captioner));
    let batcher = Batcher::start(captioner, (config.max_batch, config.max_wait), config.queue, Arc::clone(&metrics));
    let (max_connections, header_timeout) = (config.max_connections, config.header_timeout);
    let state = Arc::new(AppState {
        batcher: batcher.clone(),
        in_flight: Arc::new(Semaphore::new(config.max_concurrent)),
        facts: facts.clone(),
        config,
        metrics,
        model_info,
        ready: AtomicBool::new(false),
        next_id: AtomicU64::new(1),
    });
    // The warm-up: one caption of a grey picture. A model that cannot caption it stops the server.
    let warming = Arc::clone(&state);
    let (failed, warm_up_failed) = oneshot::channel::<String>();
    tokio::spawn(async move {
        let (reply, answer) = oneshot::channel();
        let plan = Plan {
            method: Method::Best(caption_infer::Decoding::Greedy),
            max_length: facts.max_length,
            attention_maps: false,
        };
        let image = RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128]));
        let job = Job { images: vec![image], plan, queued_at: Instant::now(), reply };
        let outcome = match batcher.submit(job) {
            Ok(()) => answer.await.unwrap_or_else(|_| Err("the model's thread stopped".into())).map(drop),
            Err(_) => Err("the model's thread did not take the job".into()),
        };
        match outcome {
            Ok(()) => {
                warming.ready.store(true, Ordering::Release);
                on_ready(started.elapsed());
            }
            Err(problem) => {
                let _ = failed.send(problem);
            }
        }
    });
    let (stop_reason, stopped_for) = tokio::sync::watch::channel(None::<String>);
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            Ok(problem) = warm_up_failed => {
                let _ = stop_reason.send(Some(problem));
            }
        }
    };
    serve_connections(listener, router(state), max_connections, header_timeout, stop).await;
    let problem = stopped_for.borrow().clone();
    match problem {
        Some(problem) => Err(std::io::Error::other(format!("the model could not caption a test image: {problem}"))),
        None => Ok(()),
    }
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM.
pub async fn stop_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
