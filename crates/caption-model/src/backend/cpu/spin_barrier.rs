//! [`SpinBarrier`]: a barrier for a few threads that meet every few microseconds.
//!
//! `std::sync::Barrier` puts waiting threads to sleep, and waking one costs more than a decoding
//! step's share of work. This one spins, yielding the core after a while (in case threads
//! outnumber cores), counts the waits that took long (a sign that another process has the cores),
//! and fails instead of hanging when a thread has panicked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Spins before a waiting thread starts yielding its core (about 50 µs).
const SPINS: u32 = 1000;

/// A wait longer than this counts as slow.
const SLOW: Duration = Duration::from_micros(200);

/// A reusable barrier for `threads` threads.
pub(crate) struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    poisoned: AtomicBool,
    slow_waits: AtomicUsize,
}

impl SpinBarrier {
    /// A barrier that opens when `threads` threads wait on it.
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            threads,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
            slow_waits: AtomicUsize::new(0),
        }
    }

    /// Waits until every thread has arrived. Everything a thread wrote before it arrived is visible
    /// to all threads after they leave.
    ///
    /// # Panics
    /// When the barrier was [poisoned](Self::poison): a thread that should arrive never will.
    pub(crate) fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(generation.wrapping_add(1), Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        let mut yielding_since = None;
        while self.generation.load(Ordering::Acquire) == generation {
            assert!(!self.poisoned.load(Ordering::Relaxed), "a decoding thread panicked");
            spins += 1;
            if spins < SPINS {
                std::hint::spin_loop();
            } else {
                yielding_since.get_or_insert_with(Instant::now);
                std::thread::yield_now();
            }
        }
        if yielding_since.is_some_and(|since| since.elapsed() > SLOW) {
            self.slow_waits.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many waits so far took longer than 200 µs.
    pub(crate) fn slow_waits(&self) -> usize {
        self.slow_waits.load(Ordering::Relaxed)
    }

    /// Marks the barrier broken: threads waiting now or later panic instead of waiting forever.
    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Relaxed);
    }
}

/// Poisons a barrier when dropped during a panic (hold one in each thread using the barrier).
pub(crate) struct PoisonOnPanic<'a>(pub(crate) &'a SpinBarrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poison();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_meet_at_every_round() {
        let threads = 3;
        let barrier = SpinBarrier::new(threads);
        let counter = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for round in 0..1000 {
                        counter.fetch_add(1, Ordering::Relaxed);
                        barrier.wait();
                        // Everybody has counted this round, nobody the next one yet.
                        assert_eq!(counter.load(Ordering::Relaxed), threads * (round + 1));
                        barrier.wait();
                    }
                });
            }
        });
    }

    #[test]
    fn a_panicking_thread_releases_the_others() {
        let barrier = SpinBarrier::new(2);
        let (panicker, waiter) = std::thread::scope(|scope| {
            let panicker = scope.spawn(|| {
                let _guard = PoisonOnPanic(&barrier);
                panic!("on purpose");
            });
            let waiter = scope.spawn(|| barrier.wait());
            (panicker.join(), waiter.join())
        });
        assert!(panicker.is_err());
        let result = waiter;
        assert!(result.is_err(), "the waiting thread panicked instead of hanging");
    }
}
