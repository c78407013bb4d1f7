//! Progress bars: [`caption_data::Progress`] drawn with indicatif on standard error (hidden when
//! it is not a terminal).

use std::sync::Mutex;
use std::time::Instant;

use caption_data::progress::{per_second, thousands};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// One bar per stage, replaced when the next stage starts.
pub struct Bars {
    bar: Mutex<Option<Stage>>,
    quiet: bool,
}

/// The bar of the current stage.
struct Stage {
    bar: ProgressBar,
    started: Instant,
    /// Units done before this process (a resumed epoch's): not part of the rate.
    skipped: u64,
    /// What a unit is, for the rate ("images/s").
    unit: String,
}

impl Bars {
    /// Bars on standard error; `quiet` hides them and the stage summaries.
    pub fn new(quiet: bool) -> Self {
        Self { bar: Mutex::new(None), quiet }
    }
}

impl caption_data::Progress for Bars {
    fn start(&self, stage: &str, total: u64) {
        self.start_counting(stage, total, "");
    }

    fn start_counting(&self, stage: &str, total: u64, unit: &str) {
        let bar = if self.quiet { ProgressBar::hidden() } else { ProgressBar::new(total) };
        let unit = unit.to_string();
        let shown = if unit.is_empty() { String::new() } else { format!(" {unit}") };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>22} [{bar:30}] {pos}/{len}{unit} {rate} ETA {eta} {msg}")
                .expect("the template is valid")
                .with_key("unit", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{shown}");
                })
                .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}/s", per_second(state.per_sec()));
                })
                .progress_chars("=> "),
        );
        bar.set_prefix(stage.to_string());
        let stage = Stage { bar, started: Instant::now(), skipped: 0, unit };
        *self.bar.lock().expect("no panics while holding the lock") = Some(stage);
    }

    fn advance(&self, units: u64) {
        if let Some(stage) = self.bar.lock().expect("no panics while holding the lock").as_ref() {
            stage.bar.inc(units);
        }
    }

    fn skip(&self, units: u64) {
        if let Some(stage) = self.bar.lock().expect("no panics while holding the lock").as_mut() {
            stage.bar.inc(units);
            // The rate and the time left start from here, not from units done in no time.
            stage.bar.reset_eta();
            stage.started = Instant::now();
            stage.skipped += units;
        }
    }

    fn note(&self, text: &str) {
        if let Some(stage) = self.bar.lock().expect("no panics while holding the lock").as_ref() {
            stage.bar.set_message(text.to_string());
        }
    }

    fn finish(&self) {
        if let Some(stage) = self.bar.lock().expect("no panics while holding the lock").take() {
            stage.bar.finish_and_clear();
            if !self.quiet {
                let seconds = stage.started.elapsed().as_secs_f64();
                let done = stage.bar.position() - stage.skipped;
                let rate = per_second(done as f64 / seconds.max(1e-9));
                let unit = if stage.unit.is_empty() { String::new() } else { format!(" {}", stage.unit) };
                let earlier = match stage.skipped {
                    0 => String::new(),
                    skipped => format!(" (after {} done before the resume)", thousands(skipped)),
                };
                eprintln!(
                    "{:>22}: {}{unit} in {seconds:.1} s ({rate}{unit}/s){earlier}",
                    stage.bar.prefix(),
                    thousands(done)
                );
            }
        }
    }
}
