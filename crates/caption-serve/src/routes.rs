//! The HTTP routes: `POST /v1/captions`, the page, health, readiness, metrics and the model's
//! description; and the layer that counts, times and logs every request (one JSON line each).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use image::RgbImage;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

use crate::ServeConfig;
use crate::batcher::{Batcher, Job, Refused};
use crate::error::ApiError;
use crate::intake::{Picture, Upload, is_image_type, picture};
use crate::metrics::Metrics;
use caption_infer::{DecodingOptions, ModelFacts};

/// The page `GET /` serves: everything inline, no external assets.
const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub(crate) struct AppState {
    pub batcher: Batcher,
    pub facts: ModelFacts,
    pub config: ServeConfig,
    pub metrics: Arc<Metrics>,
    pub model_info: Value,
    pub ready: AtomicBool,
    pub in_flight: Arc<Semaphore>,
    pub next_id: AtomicU64,
}

/// What a captioning answer tells the log line.
#[derive(Debug, Clone, Copy)]
struct Captioned {
    images: usize,
    batch: usize,
}

/// The request's id, set by the logging layer for the handlers.
#[derive(Debug, Clone, Copy)]
struct RequestId(u64);

/// The server's routes over `state`.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let body_limit = axum::extract::DefaultBodyLimit::max(state.config.max_body_bytes);
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readiness))
        .route("/metrics", get(metrics))
        .route("/v1/model", get(model))
        .route("/v1/captions", post(captions).layer(body_limit))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route: see GET / and POST /v1/captions") })
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), log_requests))
        .with_state(state)
}

async fn readiness(State(state): State<Arc<AppState>>) -> Response {
    if state.ready.load(Ordering::Acquire) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ApiError::unavailable("the model is warming up", 1).into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], state.metrics.render()).into_response()
}

async fn model(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.model_info.clone())
}

/// `POST /v1/captions`: the images of the body (raw, or the files of a multipart form), the
/// options of the query string (or of a multipart `options` part, JSON), captioned in the next
/// batch.
async fn captions(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    if !state.ready.load(Ordering::Acquire) {
        return Err(ApiError::unavailable("the model is warming up", 1));
    }
    let _permit = Arc::clone(&state.in_flight).try_acquire_owned().map_err(|_| {
        ApiError::unavailable(
            format!("{} requests are being answered already (--max-concurrent)", state.config.max_concurrent),
            1,
        )
    })?;
    let id = request.extensions().get::<RequestId>().map_or(0, |id| id.0);
    let query = Query::<DecodingOptions>::try_from_uri(request.uri())
        .map_err(|rejection| ApiError::bad_request(format!("options: {}", rejection.body_text())))?
        .0;
    let config = &state.config;
    if let Some(length) =
        request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && length > config.max_body_bytes as u64
    {
        return Err(too_large(config.max_body_bytes));
    }
    let (uploads, form_options) =
        tokio::time::timeout(config.body_timeout, read_body(request, &state)).await.map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} s", config.body_timeout.as_secs_f64()),
            )
        })??;
    let options = match form_options {
        Some(_) if query != DecodingOptions::default() => {
            return Err(ApiError::bad_request(
                "options come in the query string or in the form's options part, not both",
            ));
        }
        Some(options) => options,
        None => query,
    };
    let plan = options.plan(&state.facts).map_err(ApiError::bad_request)?;
    if uploads.is_empty() {
        return Err(ApiError::bad_request("no image: send one as the body, or files in a multipart form"));
    }
    if uploads.len() > config.max_images {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} images in one request; at most {} (--max-images)", uploads.len(), config.max_images),
        ));
    }
    let max_pixels = config.max_pixels;
    let read = move || uploads.into_iter().map(|upload| picture(upload, max_pixels)).collect::<Result<Vec<_>, _>>();
    let pictures: Vec<Picture> = tokio::task::spawn_blocking(read)
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reading the images failed"))??;
    let (reply, answer) = oneshot::channel();
    // The pixels go to the model; the answer needs only each picture's name and size.
    let (images, pictures): (Vec<RgbImage>, Vec<(String, u32, u32)>) =
        pictures.into_iter().map(|p| (p.image, (p.name, p.width, p.height))).unzip();
    let job = Job { images, plan, queued_at: Instant::now(), reply };
    state.batcher.submit(job).map_err(|refused| match refused {
        Refused::Full => ApiError::unavailable("the queue is full (--queue): try again shortly", 1),
        Refused::Stopped => ApiError::unavailable("the model has stopped", 5),
    })?;
    let answer = tokio::time::timeout(config.request_timeout, answer)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("no answer within {} s (--request-timeout)", config.request_timeout.as_secs_f64()),
            )
        })?
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the model's thread stopped"))?
        .map_err(|message| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message))?;
    let answered: Vec<Value> = pictures
        .iter()
        .zip(&answer.captions)
        .zip(&answer.maps)
        .map(|(((name, width, height), captions), map)| {
            let mut object = json!({
                "name": name, "width": width, "height": height,
                "captions": captions.iter().map(|caption| caption.to_json(false)).collect::<Vec<_>>(),
            });
            if let Some(map) = map {
                object["attention_map"] = json!(format!("data:image/png;base64,{map}"));
            }
            object
        })
        .collect();
    let body = json!({
        "id": id,
        "images": answered,
        "timing": {
            "queue_ms": answer.queue_ms, "compute_ms": answer.compute_ms, "batch_images": answer.batch_images,
            "total_ms": started.elapsed().as_secs_f64() * 1e3,
        },
    });
    let mut response = Json(body).into_response();
    response.extensions_mut().insert(Captioned { images: pictures.len(), batch: answer.batch_images });
    Ok(response)
}

/// A 413 for a body over `limit` bytes.
fn too_large(limit: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes (--max-body-bytes)"))
}

/// The uploads of a body, and the options of a multipart form's `options` part.
async fn read_body(
    request: Request,
    state: &Arc<AppState>,
) -> Result<(Vec<Upload>, Option<DecodingOptions>), ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let limit = state.config.max_body_bytes;
    if content_type.as_deref().is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data")) {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        let (mut uploads, mut options) = (Vec::new(), None);
        let field_error = |e: axum::extract::multipart::MultipartError| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large(limit)
            } else {
                ApiError::bad_request(format!("the form: {}", e.body_text()))
            }
        };
        while let Some(field) = form.next_field().await.map_err(field_error)? {
            let name = field.name().unwrap_or("").to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.map_err(field_error)?;
            if name == "options" && file_name.is_none() {
                let text =
                    std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("the options part is not UTF-8"))?;
                let parsed = serde_json::from_str(text).map_err(|e| ApiError::bad_request(format!("options: {e}")))?;
                options = Some(parsed);
            } else {
                uploads.push(Upload { name: file_name.unwrap_or(name), bytes: bytes.to_vec() });
            }
        }
        return Ok((uploads, options));
    }
    if !is_image_type(content_type.as_deref()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {}: send an image (image/jpeg, image/png) as the body, or multipart/form-data",
                content_type.unwrap_or_default()
            ),
        ));
    }
    let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            ApiError::bad_request(rejection.body_text())
        }
    })?;
    Ok((vec![Upload { name: "image".into(), bytes: bytes.to_vec() }], None))
}

/// The route a path counts under (a fixed set, so that metrics stay bounded).
fn route_of(path: &str) -> &'static str {
    ["/", "/healthz", "/readyz", "/metrics", "/v1/model", "/v1/captions"]
        .into_iter()
        .find(|route| *route == path)
        .unwrap_or("other")
}

/// Numbers every request, times it, counts it in the metrics and logs one JSON line to standard
/// error: id, method, route, status, images, batch, milliseconds.
async fn log_requests(State(state): State<Arc<AppState>>, mut request: Request<Body>, next: Next) -> Response {
    let started = Instant::now();
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    request.extensions_mut().insert(RequestId(id));
    let (method, route) = (request.method().to_string(), route_of(request.uri().path()));
    let mut response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.request(route, status, seconds);
    let captioned = response.extensions().get::<Captioned>().copied();
    let line = json!({
        "id": id, "method": method, "route": route, "status": status,
        "images": captioned.map(|c| c.images), "batch": captioned.map(|c| c.batch),
        "ms": (seconds * 1e4).round() / 10.0,
    });
    eprintln!("{line}");
    response.headers_mut().insert("x-request-id", HeaderValue::from(id));
    response
}
