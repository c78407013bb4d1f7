//! [`Progress`]: how long-running steps report what they are doing, without this crate choosing
//! how it is shown.

/// Receives progress of long steps. Implementations must be cheap and thread-safe: `advance` is
/// called from worker threads.
pub trait Progress: Sync {
    /// A step named `stage` begins, with `total` units of work.
    fn start(&self, stage: &str, total: u64) {
        let _ = (stage, total);
    }
    /// `units` more are done.
    fn advance(&self, units: u64) {
        let _ = units;
    }
    /// The current step is done.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
