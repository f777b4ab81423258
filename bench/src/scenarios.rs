//! The benchmark scenarios.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use bytes::Bytes;

use crate::args::{Args, LARGE_PARALLEL, Scenario};
use crate::client::S3Client;
use crate::rss::{self, RssReport, Sampler};
use crate::stats::{Latency, human_bytes};

/// One timed phase (e.g. all the PUTs of `small`).
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub object_size: u64,
    pub concurrency: usize,
    /// Successful operations.
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Payload bytes moved by the successful operations.
    pub bytes: u64,
    /// Wall time of the whole phase.
    pub elapsed: Duration,
    /// Per-request latency: request sent → response body fully drained.
    pub latency: Option<Latency>,
    /// GET only: request sent → response head received.
    pub ttfb: Option<Latency>,
}

#[derive(Debug, Clone)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub description: String,
    pub phases: Vec<Phase>,
    pub server_rss: Option<RssReport>,
    /// The bench's own peak RSS (VmHWM) at the end of the scenario.
    pub bench_hwm_kib: Option<u64>,
    /// Peak-RSS budget this scenario is judged against, if any.
    pub rss_budget_kib: Option<u64>,
}

impl ScenarioResult {
    pub fn errors(&self) -> u64 {
        self.phases.iter().map(|p| p.errors).sum()
    }
}

/// Peak RSS the server may reach while streaming the huge object.
pub const HUGE_RSS_BUDGET_KIB: u64 = 100 * 1024;

pub struct Ctx {
    pub client: S3Client,
    pub bucket: String,
    pub pattern: Bytes,
    pub verify: bool,
    pub server_pid: Option<u32>,
    pub run_id: String,
}

impl Ctx {
    pub fn new(client: S3Client, args: &Args, server_pid: Option<u32>) -> Ctx {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ctx {
            client,
            bucket: args.bucket.clone(),
            pattern: crate::client::pattern(0x5eed_a575_0000_0001),
            verify: !args.no_verify,
            server_pid,
            // Fresh key prefix per run: creating files right after deleting many is slow on
            // some disks, and reusing names would measure overwrites.
            run_id: format!("bench-{}-{}", now.as_millis(), std::process::id()),
        }
    }

    fn prefix(&self, s: Scenario) -> String {
        format!("{}/{}/", self.run_id, s.name())
    }
}

/// What one operation moved.
struct OpOut {
    bytes: u64,
    ttfb: Option<Duration>,
}

/// Runs `op(i)` for i in `indices` on `concurrency` workers, stopping early at `deadline`.
/// Returns the phase and the indices whose operation succeeded.
async fn run_phase<F, Fut>(
    name: &str,
    object_size: u64,
    concurrency: usize,
    indices: Arc<Vec<usize>>,
    deadline: Option<Instant>,
    op: F,
) -> (Phase, Vec<usize>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<OpOut>> + Send + 'static,
{
    let what = if object_size > 0 {
        format!(" × {}", human_bytes(object_size))
    } else {
        String::new()
    };
    eprintln!(
        "  {name}: {}{what} at concurrency {concurrency} …",
        indices.len()
    );
    let op = Arc::new(op);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.min(indices.len().max(1)) {
        let (op, next, indices) = (op.clone(), next.clone(), indices.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut errors: Vec<String> = Vec::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&i) = indices.get(k) else { break };
                let t0 = Instant::now();
                match op(i).await {
                    Ok(out) => done.push((i, t0.elapsed(), out)),
                    Err(e) => errors.push(format!("{e:#}")),
                }
            }
            (done, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut ttfb = Vec::new();
    let mut ok_indices = Vec::new();
    let mut bytes = 0;
    let mut errors = 0u64;
    let mut first_error = None;
    for w in workers {
        match w.await {
            Ok((done, errs)) => {
                for (i, d, out) in done {
                    ok_indices.push(i);
                    lat.push(d);
                    bytes += out.bytes;
                    if let Some(t) = out.ttfb {
                        ttfb.push(t);
                    }
                }
                errors += errs.len() as u64;
                if first_error.is_none() {
                    first_error = errs.into_iter().next();
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("worker panicked: {e}"));
            }
        }
    }
    let elapsed = start.elapsed();
    ok_indices.sort_unstable();
    if let Some(e) = &first_error {
        eprintln!("  {name}: {errors} error(s); first: {e}");
    }
    let phase = Phase {
        name: name.to_string(),
        object_size,
        concurrency,
        ops: lat.len() as u64,
        errors,
        first_error,
        bytes,
        elapsed,
        latency: Latency::from_samples(&mut lat),
        ttfb: Latency::from_samples(&mut ttfb),
    };
    (phase, ok_indices)
}

/// PUT of `indices` (keys `{prefix}{i:08}`, pattern from offset `i * size`).
async fn put_phase(
    ctx: &Ctx,
    name: &str,
    prefix: &str,
    size: u64,
    concurrency: usize,
    indices: Vec<usize>,
    deadline: Option<Instant>,
) -> (Phase, Vec<usize>) {
    let (client, bucket, pat, prefix) = (
        ctx.client.clone(),
        ctx.bucket.clone(),
        ctx.pattern.clone(),
        prefix.to_string(),
    );
    run_phase(
        name,
        size,
        concurrency,
        Arc::new(indices),
        deadline,
        move |i| {
            let (client, bucket, pat) = (client.clone(), bucket.clone(), pat.clone());
            let key = format!("{prefix}{i:08}");
            async move {
                client
                    .put(&bucket, &key, &pat, i as u64 * size, size)
                    .await?;
                Ok(OpOut {
                    bytes: size,
                    ttfb: None,
                })
            }
        },
    )
    .await
}

/// GET of `indices`, checking length and (unless --no-verify) content.
async fn get_phase(
    ctx: &Ctx,
    name: &str,
    prefix: &str,
    size: u64,
    concurrency: usize,
    indices: Vec<usize>,
    deadline: Option<Instant>,
) -> (Phase, Vec<usize>) {
    let (client, bucket, pat, prefix, verify) = (
        ctx.client.clone(),
        ctx.bucket.clone(),
        ctx.pattern.clone(),
        prefix.to_string(),
        ctx.verify,
    );
    run_phase(
        name,
        size,
        concurrency,
        Arc::new(indices),
        deadline,
        move |i| {
            let (client, bucket, pat) = (client.clone(), bucket.clone(), pat.clone());
            let key = format!("{prefix}{i:08}");
            async move {
                let v = verify.then_some((&pat, i as u64 * size));
                let r = client.get(&bucket, &key, v, size).await?;
                Ok(OpOut {
                    bytes: r.bytes,
                    ttfb: Some(r.ttfb),
                })
            }
        },
    )
    .await
}

async fn cleanup(ctx: &Ctx, prefix: &str, indices: &[usize]) {
    eprintln!("  cleanup: deleting {} object(s) …", indices.len());
    let (client, bucket, prefix) = (ctx.client.clone(), ctx.bucket.clone(), prefix.to_string());
    let (p, _) = run_phase(
        "DELETE",
        0,
        16,
        Arc::new(indices.to_vec()),
        None,
        move |i| {
            let (client, bucket) = (client.clone(), bucket.clone());
            let key = format!("{prefix}{i:08}");
            async move {
                client.delete(&bucket, &key).await?;
                Ok(OpOut {
                    bytes: 0,
                    ttfb: None,
                })
            }
        },
    )
    .await;
    if p.errors > 0 {
        eprintln!("  cleanup: {} delete(s) failed", p.errors);
    }
}

pub async fn run(ctx: &Ctx, args: &Args, s: Scenario) -> Result<ScenarioResult> {
    let size = args.size_for(s);
    let prefix = ctx.prefix(s);
    let sampler = ctx.server_pid.and_then(Sampler::start);
    let mut phases = Vec::new();
    let mut written: Vec<usize> = Vec::new();
    let mut rss_budget_kib = None;
    let description;
    match s {
        Scenario::Search => anyhow::bail!("the search scenario runs on its own (search.rs)"),
        Scenario::Small => {
            let conc = args.concurrency as usize;
            let ops = args.small_ops();
            let limit = args.duration_secs.map(Duration::from_secs_f64);
            description = format!(
                "{} objects, {conc} in flight, {}{} per phase, keys {prefix}*",
                human_bytes(size),
                if args.ops.is_none() && limit.is_some() {
                    "unbounded ops".to_string()
                } else {
                    format!("{ops} ops")
                },
                limit.map_or(String::new(), |l| format!(" / {:.1} s", l.as_secs_f64())),
            );
            let deadline = limit.map(|l| Instant::now() + l);
            let (put, ok) = put_phase(
                ctx,
                "PUT",
                &prefix,
                size,
                conc,
                (0..ops).collect(),
                deadline,
            )
            .await;
            phases.push(put);
            written = ok.clone();
            let deadline = limit.map(|l| Instant::now() + l);
            let (get, _) = get_phase(ctx, "GET", &prefix, size, conc, ok, deadline).await;
            phases.push(get);
        }
        Scenario::Large => {
            let n = LARGE_PARALLEL;
            let part = size.div_ceil(n as u64);
            description = format!(
                "one {} object, then {n} × {} at once, keys {prefix}*",
                human_bytes(size),
                human_bytes(part)
            );
            let (put, ok) = put_phase(ctx, "PUT", &prefix, size, 1, vec![0], None).await;
            phases.push(put);
            let (get, _) = get_phase(ctx, "GET", &prefix, size, 1, ok.clone(), None).await;
            phases.push(get);
            written.extend(ok);
            let idx: Vec<usize> = (1..=n).collect();
            let (put, ok) = put_phase(ctx, &format!("PUT ×{n}"), &prefix, part, n, idx, None).await;
            phases.push(put);
            let (get, _) = get_phase(
                ctx,
                &format!("GET ×{n}"),
                &prefix,
                part,
                n,
                ok.clone(),
                None,
            )
            .await;
            phases.push(get);
            written.extend(ok);
        }
        Scenario::Huge | Scenario::All => {
            description = format!(
                "one {} object streamed in and out; server peak RSS budget {} MiB; key {prefix}*",
                human_bytes(size),
                HUGE_RSS_BUDGET_KIB / 1024
            );
            rss_budget_kib = Some(HUGE_RSS_BUDGET_KIB);
            let (put, ok) = put_phase(ctx, "PUT", &prefix, size, 1, vec![0], None).await;
            phases.push(put);
            let (get, _) = get_phase(ctx, "GET", &prefix, size, 1, ok.clone(), None).await;
            phases.push(get);
            written = ok;
        }
    }
    let server_rss = sampler.map(Sampler::finish);
    if args.cleanup {
        cleanup(ctx, &prefix, &written).await;
    }
    Ok(ScenarioResult {
        scenario: s,
        description,
        phases,
        server_rss,
        bench_hwm_kib: rss::read_status("self").map(|m| m.hwm_kib),
        rss_budget_kib,
    })
}
