//! [`Progress`]: how long-running steps report what they are doing, without this crate choosing
//! how it is shown; and the numbers such reports show, written for people ([`per_second`],
//! [`thousands`], [`duration`]).

/// Receives progress of long steps. Implementations must be cheap and thread-safe: `advance` is
/// called from worker threads.
pub trait Progress: Sync {
    /// A step named `stage` begins, with `total` units of work.
    fn start(&self, stage: &str, total: u64) {
        let _ = (stage, total);
    }
    /// The same as [`start`](Self::start), saying what a unit is (`"batches"`, `"images"`), so
    /// that a rate can say what it counts.
    fn start_counting(&self, stage: &str, total: u64, unit: &str) {
        let _ = unit;
        self.start(stage, total);
    }
    /// `units` more are done.
    fn advance(&self, units: u64) {
        let _ = units;
    }
    /// `units` were done before this process began (a resumed epoch's first batches): counted in
    /// the position, not in the rate or the time.
    fn skip(&self, units: u64) {
        self.advance(units);
    }
    /// A short status of the current step to show beside it (a running loss, an estimate of
    /// the time left), replacing the previous one.
    fn note(&self, text: &str) {
        let _ = text;
    }
    /// The current step is done.
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A rate for people: whole numbers with thousands separators from 100 up (`1,760`), one
/// decimal below (`8.5`).
pub fn per_second(rate: f64) -> String {
    if !rate.is_finite() {
        "-".into()
    } else if rate >= 100.0 {
        thousands(rate.round() as u64)
    } else {
        format!("{rate:.1}")
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A duration for people: `45 s`, `3 min 20 s`, `2 h 05 min`.
pub fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    match total {
        0..60 => format!("{total} s"),
        60..3600 => format!("{} min {:02} s", total / 60, total % 60),
        _ => format!("{} h {:02} min", total / 3600, total % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(per_second(1759.8522), "1,760");
        assert_eq!(per_second(8.456), "8.5");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(duration(45.2), "45 s");
        assert_eq!(duration(200.0), "3 min 20 s");
        assert_eq!(duration(7500.0), "2 h 05 min");
    }
}
