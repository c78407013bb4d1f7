//! Progress bars: [`caption_data::Progress`] drawn with indicatif on standard error (hidden when
//! it is not a terminal).

use std::sync::Mutex;
use std::time::Instant;

use caption_data::progress::{per_second, thousands};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

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
            ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len} {rate} ETA {eta} {msg}")
                .expect("the template is valid")
                .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}/s", per_second(state.per_sec()));
                })
                .progress_chars("=> "),
        );
        bar.set_prefix(stage.to_string());
        *self.bar.lock().expect("no panics while holding the lock") = Some((bar, Instant::now()));
    }

    fn advance(&self, units: u64) {
        if let Some((bar, _)) = self.bar.lock().expect("no panics while holding the lock").as_ref() {
            bar.inc(units);
        }
    }

    fn note(&self, text: &str) {
        if let Some((bar, _)) = self.bar.lock().expect("no panics while holding the lock").as_ref() {
            bar.set_message(text.to_string());
        }
    }

    fn finish(&self) {
        if let Some((bar, started)) = self.bar.lock().expect("no panics while holding the lock").take() {
            bar.finish_and_clear();
            if !self.quiet {
                let seconds = started.elapsed().as_secs_f64();
                let rate = per_second(bar.position() as f64 / seconds.max(1e-9));
                eprintln!("{:>22}: {} in {seconds:.1} s ({rate}/s)", bar.prefix(), thousands(bar.position()));
            }
        }
    }
}
