//! Samples a process's resident set size from /proc/<pid>/status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// VmRSS and VmHWM (peak RSS since the process started), in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemStatus {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Parses the VmRSS and VmHWM lines of a /proc/<pid>/status text.
pub fn parse_status(text: &str) -> Option<MemStatus> {
    let mut rss = None;
    let mut hwm = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            rss = parse_kb(v);
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            hwm = parse_kb(v);
        }
    }
    Some(MemStatus {
        rss_kib: rss?,
        hwm_kib: hwm?,
    })
}

fn parse_kb(v: &str) -> Option<u64> {
    let mut it = v.split_whitespace();
    let n = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(n),
        _ => None,
    }
}

/// Reads the memory status of `pid` ("self" for this process).
pub fn read_status(pid: &str) -> Option<MemStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&text)
}

/// What a sampler saw over one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssReport {
    pub start_kib: u64,
    /// Highest VmRSS among the samples (every 100 ms).
    pub peak_kib: u64,
    pub end_kib: u64,
    /// VmHWM at the end: the kernel's own peak since the process started (catches spikes between
    /// samples, but also includes earlier scenarios run against the same process).
    pub hwm_kib: u64,
    pub samples: u64,
}

/// Samples a process's VmRSS every 100 ms on its own thread (so a busy runtime does not delay it).
pub struct Sampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    start: MemStatus,
    thread: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; `None` if the process's status cannot be read.
    pub fn start(pid: u32) -> Option<Sampler> {
        let start = read_status(&pid.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(start.rss_kib));
        let samples = Arc::new(AtomicU64::new(1));
        let thread = {
            let (stop, peak, samples) = (stop.clone(), peak.clone(), samples.clone());
            let path = format!("/proc/{pid}/status");
            std::thread::Builder::new()
                .name("rss-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(SAMPLE_EVERY);
                        let Some(s) = std::fs::read_to_string(&path)
                            .ok()
                            .and_then(|t| parse_status(&t))
                        else {
                            break; // process gone
                        };
                        peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                        samples.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .ok()?
        };
        Some(Sampler {
            pid,
            stop,
            peak,
            samples,
            start,
            thread: Some(thread),
        })
    }

    /// Stops sampling and takes a final reading.
    pub fn finish(mut self) -> RssReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let end = read_status(&self.pid.to_string());
        let mut peak = self.peak.load(Ordering::Relaxed);
        let mut samples = self.samples.load(Ordering::Relaxed);
        if let Some(e) = end {
            peak = peak.max(e.rss_kib);
            samples += 1;
        }
        RssReport {
            start_kib: self.start.rss_kib,
            peak_kib: peak,
            end_kib: end.map_or(0, |e| e.rss_kib),
            hwm_kib: end.map_or(self.start.hwm_kib, |e| e.hwm_kib),
            samples,
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tartstore\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  123456 kB\nVmSize:\t  120000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n\
        RssAnon:\t   10000 kB\nThreads:\t5\n";

    #[test]
    fn parses_proc_status() {
        assert_eq!(
            parse_status(STATUS),
            Some(MemStatus {
                rss_kib: 20480,
                hwm_kib: 40960
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        assert_eq!(parse_status("VmRSS:\tx kB\nVmHWM:\t1 kB\n"), None);
    }

    #[test]
    fn samples_this_process() {
        let s = Sampler::start(std::process::id()).expect("own /proc status");
        std::thread::sleep(Duration::from_millis(250));
        let r = s.finish();
        assert!(r.samples >= 2, "{r:?}");
        assert!(
            r.peak_kib >= r.start_kib && r.peak_kib > 0 && r.hwm_kib > 0,
            "{r:?}"
        );
        // VmHWM is not compared with the sampled VmRSS: the kernel keeps RSS in per-CPU
        // counters and reads them approximately, so a sample can exceed a later VmHWM by a
        // few pages while other tests of this process allocate.
    }
}
