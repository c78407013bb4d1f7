//! What `GET /metrics` reports, in Prometheus' text exposition format: requests by status, their
//! latency, the batches the model ran and the images waiting for it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Upper bounds of the batch-size histogram's buckets, in images.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// A cumulative histogram (Prometheus' `_bucket{le=…}`, `_sum`, `_count`).
struct Histogram {
    bounds: &'static [f64],
    /// Per bound, the observations at or below it (not yet cumulative), then the sum and count.
    state: Mutex<(Vec<u64>, f64, u64)>,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, state: Mutex::new((vec![0; bounds.len()], 0.0, 0)) }
    }

    fn observe(&self, value: f64) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bucket) = self.bounds.iter().position(|&bound| value <= bound) {
            state.0[bucket] += 1;
        }
        state.1 += value;
        state.2 += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let (counts, sum, count) = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}");
    }
}

/// The server's counters, shared by the handlers and the batcher.
pub(crate) struct Metrics {
    /// Requests answered, by route and status.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Histogram,
    batches: Histogram,
    /// Images captioned.
    images: AtomicU64,
    /// Images accepted and not yet taken by the batcher.
    pub queued_images: AtomicUsize,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            latency: Histogram::new(&LATENCY_BUCKETS),
            batches: Histogram::new(&BATCH_BUCKETS),
            images: AtomicU64::new(0),
            queued_images: AtomicUsize::new(0),
        }
    }

    /// A request to `route` answered with `status` after `seconds`.
    pub(crate) fn request(&self, route: &'static str, status: u16, seconds: f64) {
        *self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry((route, status)).or_default() +=
            1;
        self.latency.observe(seconds);
    }

    /// A batch of `images` run through the model.
    pub(crate) fn batch(&self, images: usize) {
        self.batches.observe(images as f64);
        self.images.fetch_add(images as u64, Ordering::Relaxed);
    }

    /// The text `GET /metrics` answers.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP caption_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE caption_requests_total counter\n");
        for ((route, status), n) in self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "caption_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        self.latency.render(
            &mut out,
            "caption_request_duration_seconds",
            "Time from a request's arrival to its answer.",
        );
        self.batches.render(&mut out, "caption_batch_images", "Images per batch the model ran.");
        let _ = writeln!(
            out,
            "# HELP caption_images_total Images captioned.\n# TYPE caption_images_total counter\ncaption_images_total {}",
            self.images.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP caption_queue_images Images waiting for the model.\n# TYPE caption_queue_images gauge\ncaption_queue_images {}",
            self.queued_images.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_requests_and_accumulates_buckets() {
        let metrics = Metrics::new();
        metrics.request("/v1/captions", 200, 0.02);
        metrics.request("/v1/captions", 200, 0.3);
        metrics.request("/v1/captions", 503, 0.001);
        metrics.batch(3);
        let text = metrics.render();
        assert!(text.contains("caption_requests_total{route=\"/v1/captions\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("caption_requests_total{route=\"/v1/captions\",status=\"503\"} 1"), "{text}");
        assert!(text.contains("caption_request_duration_seconds_bucket{le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("caption_request_duration_seconds_bucket{le=\"0.025\"} 2"), "{text}");
        assert!(text.contains("caption_request_duration_seconds_bucket{le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("caption_request_duration_seconds_count 3"), "{text}");
        assert!(
            text.contains("caption_batch_images_bucket{le=\"2\"} 0")
                && text.contains("caption_batch_images_bucket{le=\"4\"} 1")
        );
        assert!(text.contains("caption_images_total 3") && text.contains("caption_queue_images 0"), "{text}");
    }
}
