//! Histograms in the Prometheus text exposition format: fixed buckets of atomic counters, so
//! that any thread or task records a sample without a lock.
//!
//! A hand-written encoder rather than a crate: the format is a few lines (`_bucket{le=...}`
//! cumulative counts ending in `+Inf`, `_sum`, `_count`), both servers share it from here, and
//! the threaded one must not pull an async runtime in with a metrics crate. The suite checks the
//! output against the format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket bounds for durations, in seconds: from 100 µs (an fsync on a fast disk) to 10 s (past
/// any request timeout), roughly three per decade.
pub const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Bucket bounds for counts of things handled together, such as a driver turn's events.
pub const COUNTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];

/// One histogram: a count per bucket (not cumulative; summed when rendered), the sum of the
/// samples and their number.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    /// The sum of the samples, in millionths of their unit, so that it adds up as an integer.
    micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one sample.
    pub fn observe(&self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket].fetch_add(1, Relaxed);
        self.micros
            .fetch_add((value.max(0.0) * 1e6).round() as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// How many samples it holds.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// Records a duration, in seconds.
    pub fn observe_duration(&self, took: Duration) {
        self.observe(took.as_secs_f64());
    }

    /// Writes the samples of this histogram as `name` with `labels` (`a="b",c="d"`, or empty).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bucket, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = match self.bounds.get(bucket) {
                Some(bound) => bound.to_string(),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = |labels: &str| match labels {
            "" => String::new(),
            labels => format!("{{{labels}}}"),
        };
        let sum = self.micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(
            out,
            "{name}_count{} {}",
            braces(labels),
            self.count.load(Relaxed)
        );
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a histogram family.
pub fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_sum_and_count() {
        let histogram = Histogram::new(&[0.1, 1.0]);
        for value in [0.05, 0.1, 0.5, 3.0] {
            histogram.observe(value);
        }
        let mut out = String::new();
        histogram.render(&mut out, "x_seconds", "op=\"put\"");
        assert_eq!(
            out,
            "x_seconds_bucket{op=\"put\",le=\"0.1\"} 2\n\
             x_seconds_bucket{op=\"put\",le=\"1\"} 3\n\
             x_seconds_bucket{op=\"put\",le=\"+Inf\"} 4\n\
             x_seconds_sum{op=\"put\"} 3.65\n\
             x_seconds_count{op=\"put\"} 4\n"
        );
        let mut bare = String::new();
        Histogram::new(&[1.0]).render(&mut bare, "y", "");
        assert_eq!(
            bare,
            "y_bucket{le=\"1\"} 0\ny_bucket{le=\"+Inf\"} 0\ny_sum 0\ny_count 0\n"
        );
    }
}
