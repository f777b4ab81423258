//! Machine facts, the readable table and the JSON output.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::rss::mib;
use crate::scenarios::{Phase, ScenarioResult};
use crate::stats::{Latency, human_bytes, mb_per_sec, ms, per_sec};

/// Facts needed to quote the figures.
#[derive(Debug, Clone)]
pub struct Facts {
    pub command: String,
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_mib: u64,
    pub kernel: String,
    pub bench_version: &'static str,
    pub endpoint: String,
    /// `Some(path)` when the bench started the server itself.
    pub spawned: Option<String>,
    pub data_dir: Option<String>,
    pub server_pid: Option<u32>,
}

impl Facts {
    pub fn gather(command: String, endpoint: String) -> Facts {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, m)| m.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_total_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_string(), |s| s.trim().to_string());
        Facts {
            command,
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_total_mib,
            kernel,
            bench_version: env!("CARGO_PKG_VERSION"),
            endpoint,
            spawned: None,
            data_dir: None,
            server_pid: None,
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "command:  {}", self.command);
        let _ = writeln!(
            s,
            "machine:  nproc {}, {}, {} MiB RAM, Linux {}",
            self.nproc, self.cpu_model, self.mem_total_mib, self.kernel
        );
        let server = match (&self.spawned, self.server_pid) {
            (Some(bin), Some(pid)) => format!(
                "spawned {bin} (pid {pid}, data dir {})",
                self.data_dir.as_deref().unwrap_or("?")
            ),
            (_, Some(pid)) => format!("external, pid {pid}"),
            _ => "external, pid unknown (pass --server-pid to sample RSS)".to_string(),
        };
        let _ = writeln!(s, "server:   {} — {server}", self.endpoint);
        let _ = write!(s, "bench:    artstore-bench {}", self.bench_version);
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "command": self.command,
            "nproc": self.nproc,
            "cpu_model": self.cpu_model,
            "mem_total_mib": self.mem_total_mib,
            "kernel": self.kernel,
            "bench_version": self.bench_version,
            "endpoint": self.endpoint,
            "spawned": self.spawned,
            "data_dir": self.data_dir,
            "server_pid": self.server_pid,
        })
    }
}

fn lat_cell(l: Option<Latency>, f: impl Fn(&Latency) -> std::time::Duration) -> String {
    l.map_or_else(|| "-".to_string(), |l| format!("{:.2}", ms(f(&l))))
}

pub fn table(r: &ScenarioResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "== {}: {} ==", r.scenario.name(), r.description);
    let _ = writeln!(
        s,
        "{:<8} {:>9} {:>8} {:>4} {:>6} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "phase",
        "objects",
        "size",
        "conc",
        "errors",
        "elapsed_s",
        "ops/s",
        "MB/s",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "ttfb_p50"
    );
    for p in &r.phases {
        let _ = writeln!(
            s,
            "{:<8} {:>9} {:>8} {:>4} {:>6} {:>9.3} {:>10.1} {:>9.1} {:>9} {:>9} {:>9} {:>9}",
            p.name,
            p.ops,
            human_bytes(p.object_size),
            p.concurrency,
            p.errors,
            p.elapsed.as_secs_f64(),
            per_sec(p.ops, p.elapsed),
            mb_per_sec(p.bytes, p.elapsed),
            lat_cell(p.latency, |l| l.p50),
            lat_cell(p.latency, |l| l.p99),
            lat_cell(p.latency, |l| l.max),
            lat_cell(p.ttfb, |l| l.p50),
        );
    }
    for p in &r.phases {
        if let Some(e) = &p.first_error {
            let _ = writeln!(s, "{} first error: {e}", p.name);
        }
    }
    match &r.server_rss {
        Some(m) => {
            let _ = writeln!(
                s,
                "server RSS: start {:.1} MiB, peak {:.1} MiB ({} samples, every 100 ms), end {:.1} MiB; \
                 VmHWM since server start {:.1} MiB",
                mib(m.start_kib),
                mib(m.peak_kib),
                m.samples,
                mib(m.end_kib),
                mib(m.hwm_kib)
            );
            if let Some(budget) = r.rss_budget_kib {
                let _ = writeln!(
                    s,
                    "server peak RSS budget {:.0} MiB: {}",
                    mib(budget),
                    if m.peak_kib < budget {
                        "within"
                    } else {
                        "EXCEEDED"
                    }
                );
            }
        }
        None => {
            let _ = writeln!(s, "server RSS: not sampled (no --spawn or --server-pid)");
        }
    }
    if let Some(h) = r.bench_hwm_kib {
        let _ = writeln!(s, "bench RSS: VmHWM {:.1} MiB", mib(h));
    }
    s
}

fn lat_json(l: Option<Latency>) -> Value {
    l.map_or(
        Value::Null,
        |l| json!({ "p50": ms(l.p50), "p99": ms(l.p99), "max": ms(l.max), "mean": ms(l.mean) }),
    )
}

fn phase_json(p: &Phase) -> Value {
    json!({
        "phase": p.name,
        "object_size": p.object_size,
        "concurrency": p.concurrency,
        "ops": p.ops,
        "errors": p.errors,
        "first_error": p.first_error,
        "bytes": p.bytes,
        "elapsed_s": p.elapsed.as_secs_f64(),
        "ops_per_s": per_sec(p.ops, p.elapsed),
        "mb_per_s": mb_per_sec(p.bytes, p.elapsed),
        "latency_ms": lat_json(p.latency),
        "ttfb_ms": lat_json(p.ttfb),
    })
}

pub fn json(r: &ScenarioResult, facts: &Facts) -> Value {
    json!({
        "scenario": r.scenario.name(),
        "description": r.description,
        "phases": r.phases.iter().map(phase_json).collect::<Vec<_>>(),
        "server_rss_mib": r.server_rss.map(|m| json!({
            "start": mib(m.start_kib),
            "peak": mib(m.peak_kib),
            "end": mib(m.end_kib),
            "hwm": mib(m.hwm_kib),
            "samples": m.samples,
        })),
        "rss_budget_mib": r.rss_budget_kib.map(mib),
        "within_rss_budget": match (r.rss_budget_kib, r.server_rss) {
            (Some(b), Some(m)) => Value::Bool(m.peak_kib < b),
            _ => Value::Null,
        },
        "bench_hwm_mib": r.bench_hwm_kib.map(mib),
        "machine": facts.json(),
    })
}
