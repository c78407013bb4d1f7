//! Progress bars: [`caption_data::Progress`] drawn with indicatif on standard error (hidden when
//! it is not a terminal).

use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// One bar per stage, replaced when the next stage starts.
pub struct Bars {
    bar: Mutex<Option<(ProgressBar, Instant)>>,
    quiet: bool,
}

impl Bars {
    /// Bars on standard error; `quiet` hides them and the stage summaries.
    pub fn new(quiet: bool) -> Self {
        Self { bar: Mutex::new(None), quiet }
    }
}

impl caption_data::Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        let bar = if self.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
        bar.set_style(
            ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(stage.to_string());
        *self.bar.lock().expect("no panics while holding the lock") = Some((bar, Instant::now()));
    }

    fn advance(&self, units: u64) {
        if let Some((bar, _)) = self.bar.lock().expect("no panics while holding the lock").as_ref() {
            bar.inc(units);
        }
    }

    fn finish(&self) {
        if let Some((bar, started)) = self.bar.lock().expect("no panics while holding the lock").take() {
            bar.finish_and_clear();
            if !self.quiet {
                eprintln!("{:>22}: {} in {:.1} s", bar.message(), bar.position(), started.elapsed().as_secs_f64());
            }
        }
    }
}
