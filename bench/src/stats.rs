//! Pure statistics and unit formatting.

use std::time::Duration;

/// Nearest-rank percentile (`p` in 0..=100) of an ascending-sorted slice; `None` when empty.
///
/// The nearest-rank method returns an observed value: the smallest sample such that at
/// least `p` percent of the samples are less than or equal to it.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize; // 1-based
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Latency summary of one phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Latency {
    /// Summarises samples (sorts them in place); `None` when empty.
    pub fn from_samples(samples: &mut [Duration]) -> Option<Latency> {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        Some(Latency {
            p50: percentile(samples, 50.0)?,
            p99: percentile(samples, 99.0)?,
            max: *samples.last()?,
            mean: total / samples.len() as u32,
        })
    }
}

/// Decimal megabytes (10^6 bytes) per second.
pub fn mb_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 {
        0.0
    } else {
        bytes as f64 / 1e6 / s
    }
}

pub fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s <= 0.0 { 0.0 } else { n as f64 / s }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Human-readable binary size, e.g. "4 KiB", "1 GiB", "1.5 MiB", "1000 B".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (name, unit) in UNITS {
        if n >= unit {
            return if n.is_multiple_of(unit) {
                format!("{} {name}", n / unit)
            } else {
                format!("{:.1} {name}", n as f64 / unit as f64)
            };
        }
    }
    format!("{n} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn percentile_empty() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Latency::from_samples(&mut []), None);
    }

    #[test]
    fn percentile_single() {
        let v = [d(7)];
        for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&v, p), Some(d(7)));
        }
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile(&v, 50.0), Some(d(50)));
        assert_eq!(percentile(&v, 99.0), Some(d(99)));
        assert_eq!(percentile(&v, 100.0), Some(d(100)));
        assert_eq!(percentile(&v, 0.0), Some(d(1)));
        assert_eq!(percentile(&v, 0.5), Some(d(1)));
        assert_eq!(percentile(&v, 99.5), Some(d(100)));
        // Classic example: 15, 20, 35, 40, 50.
        let w = [d(15), d(20), d(35), d(40), d(50)];
        assert_eq!(percentile(&w, 5.0), Some(d(15)));
        assert_eq!(percentile(&w, 30.0), Some(d(20)));
        assert_eq!(percentile(&w, 40.0), Some(d(20)));
        assert_eq!(percentile(&w, 50.0), Some(d(35)));
        assert_eq!(percentile(&w, 100.0), Some(d(50)));
        // Out-of-range p is clamped.
        assert_eq!(percentile(&w, 150.0), Some(d(50)));
        assert_eq!(percentile(&w, -3.0), Some(d(15)));
    }

    #[test]
    fn percentile_p99_of_small_sample_is_max() {
        let v: Vec<Duration> = (1..=10).map(d).collect();
        assert_eq!(percentile(&v, 99.0), Some(d(10)));
        assert_eq!(percentile(&v, 50.0), Some(d(5)));
    }

    #[test]
    fn latency_sorts_and_summarises() {
        let mut v = vec![d(30), d(10), d(20), d(40)];
        let l = Latency::from_samples(&mut v).unwrap();
        assert_eq!(v, vec![d(10), d(20), d(30), d(40)]);
        assert_eq!(l.p50, d(20));
        assert_eq!(l.p99, d(40));
        assert_eq!(l.max, d(40));
        assert_eq!(l.mean, d(25));
    }

    #[test]
    fn rates() {
        assert_eq!(mb_per_sec(2_000_000, Duration::from_secs(2)), 1.0);
        assert_eq!(mb_per_sec(5, Duration::ZERO), 0.0);
        assert_eq!(per_sec(300, Duration::from_millis(1500)), 200.0);
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }

    #[test]
    fn bytes_formatting() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1000), "1000 B");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(5 << 30), "5 GiB");
        assert_eq!(human_bytes(3 << 19), "1.5 MiB");
    }
}
