//! Command-line arguments.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// Default object size of each scenario.
pub const SMALL_SIZE: u64 = 4 * KIB;
pub const LARGE_SIZE: u64 = GIB;
pub const HUGE_SIZE: u64 = 5 * GIB;

/// Number of objects PUT/GET at once in the parallel part of `large`.
pub const LARGE_PARALLEL: usize = 4;

/// Ops of each phase of `small` when neither --ops nor --duration-secs is given.
pub const DEFAULT_SMALL_OPS: usize = 2000;
/// Upper bound on the ops of a phase when only --duration-secs is given.
pub const MAX_SMALL_OPS: usize = 10_000_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// PUT then GET of small (4 KiB) objects at --concurrency.
    Small,
    /// One 1 GiB PUT then GET, then 4 × 256 MiB PUT/GET at once.
    Large,
    /// One 5 GiB PUT then GET while sampling the server's RSS.
    Huge,
    /// small, large and huge, in that order.
    All,
    /// Loads index rows for --objects generated documents into a fresh database (--db), then
    /// times searches and a 1000-key listing (not part of `all`).
    Search,
}

/// The index database of the `search` scenario.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SearchDb {
    /// A file in the spawned server's data dir.
    Sqlite,
    /// A database created on --pg-url's server (and dropped, unless --keep-db).
    Postgres,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Small => "small",
            Scenario::Large => "large",
            Scenario::Huge => "huge",
            Scenario::All => "all",
            Scenario::Search => "search",
        }
    }

    /// The scenarios this selection runs, in order.
    pub fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::All => vec![Scenario::Small, Scenario::Large, Scenario::Huge],
            s => vec![s],
        }
    }

    pub fn default_size(self) -> u64 {
        match self {
            Scenario::Small => SMALL_SIZE,
            Scenario::Large => LARGE_SIZE,
            Scenario::Huge | Scenario::All | Scenario::Search => HUGE_SIZE,
        }
    }
}

/// Load generator for ArtStore or any S3-compatible endpoint (path-style, SigV4, plain HTTP).
#[derive(Parser, Debug, Clone)]
#[command(name = "artstore-bench", version)]
pub struct Args {
    /// S3 endpoint to drive (ignored with --spawn). Plain http:// only.
    #[arg(
        long,
        env = "ARTSTORE_BENCH_ENDPOINT",
        default_value = "http://127.0.0.1:9000"
    )]
    pub endpoint: String,

    /// Access key (with --spawn: the spawned server's root access key).
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        default_value = "ARTSTOREBENCHKEY0001"
    )]
    pub access_key: String,

    /// Secret key (with --spawn: the spawned server's root secret key).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "artstore-bench-secret-key-0123456789abcdef",
        hide_default_value = true
    )]
    pub secret_key: String,

    /// SigV4 signing region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,

    /// Bucket to use; created if missing.
    #[arg(long, default_value = "artstore-bench")]
    pub bucket: String,

    /// Start this `artstore` binary on free loopback ports with a temporary data dir and bench it.
    #[arg(long, value_name = "PATH_TO_ARTSTORE")]
    pub spawn: Option<PathBuf>,

    /// Data dir of the spawned server (default: a fresh temp dir, removed at exit).
    #[arg(long, requires = "spawn")]
    pub data_dir: Option<PathBuf>,

    /// Index database of the spawned server (default: SQLite in its data dir).
    #[arg(long, env = "ARTSTORE_DATABASE_URL", requires = "spawn")]
    pub database_url: Option<String>,

    /// Pid of the server process whose RSS to sample (implied by --spawn).
    #[arg(long, conflicts_with = "spawn")]
    pub server_pid: Option<u32>,

    /// Which scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: Scenario,

    /// Requests in flight at once in `small`.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,

    /// Ops of each phase (PUT, then GET) of `small` [default: 2000].
    #[arg(long)]
    pub ops: Option<usize>,

    /// Stop each phase of `small` after this many seconds (whichever of --ops and this comes first).
    #[arg(long)]
    pub duration_secs: Option<f64>,

    /// Object size in bytes of the selected scenario (not with --scenario all).
    /// [default: small 4096, large 1 GiB, huge 5 GiB]
    #[arg(long)]
    pub size: Option<u64>,

    /// Give up on one request after this many seconds.
    #[arg(long, default_value_t = 900.0)]
    pub timeout_secs: f64,

    /// Do not compare GET bodies with what was PUT (still counts bytes).
    #[arg(long)]
    pub no_verify: bool,

    /// DELETE the objects written by each scenario afterwards.
    #[arg(long)]
    pub cleanup: bool,

    /// Print one JSON object per scenario to stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// `search`: objects in the generated dataset.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub objects: u64,

    /// `search`: the index database.
    #[arg(long, value_enum, default_value = "sqlite")]
    pub db: SearchDb,

    /// `search` on PostgreSQL: a database URL of the server, used to create and drop the
    /// bench's database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub pg_url: String,

    /// `search` on PostgreSQL: the bench's database [default: artstore_bench_search_<objects>].
    #[arg(long)]
    pub pg_db: Option<String>,

    /// `search`: keep the loaded database (and reuse it when it exists) instead of dropping it.
    /// Needs --data-dir, which holds the store's master key (and SQLite's index).
    #[arg(long)]
    pub keep_db: bool,

    /// `search`: timed queries of each kind.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub queries: u64,

    /// `search`: load transactions in flight at once.
    #[arg(long, default_value_t = 2)]
    pub loaders: usize,
}

impl Args {
    /// Checks combinations clap cannot express.
    pub fn validate(&self) -> Result<()> {
        if self.size.is_some() && self.scenario == Scenario::All {
            bail!("--size needs one scenario (--scenario small|large|huge), not all");
        }
        if self.size == Some(0) {
            bail!("--size must be at least 1 byte");
        }
        if let Some(d) = self.duration_secs
            && !(d > 0.0 && d.is_finite())
        {
            bail!("--duration-secs must be a positive number");
        }
        if self.ops == Some(0) {
            bail!("--ops must be at least 1");
        }
        if !(self.timeout_secs > 0.0 && self.timeout_secs.is_finite()) {
            bail!("--timeout-secs must be a positive number");
        }
        if self.spawn.is_none() && !self.endpoint.starts_with("http://") {
            bail!("--endpoint must be a plain http:// URL (the bench speaks HTTP/1.1 over TCP)");
        }
        if self.bucket.is_empty() || self.bucket.contains('/') {
            bail!("--bucket must be a plain bucket name");
        }
        Ok(())
    }

    /// Object size for one scenario.
    pub fn size_for(&self, s: Scenario) -> u64 {
        self.size.unwrap_or_else(|| s.default_size())
    }

    /// Ops of each phase of `small`: --ops, else a large cap when only a duration is given.
    pub fn small_ops(&self) -> usize {
        match (self.ops, self.duration_secs) {
            (Some(n), _) => n,
            (None, Some(_)) => MAX_SMALL_OPS,
            (None, None) => DEFAULT_SMALL_OPS,
        }
    }
}

/// The command line as typed, shell-quoted, with the secret key's value hidden.
pub fn redacted_command_line(argv: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(argv.len());
    let mut hide_next = false;
    for a in argv {
        if hide_next {
            out.push("***".to_string());
            hide_next = false;
        } else if a == "--secret-key" {
            out.push(a.clone());
            hide_next = true;
        } else if a.starts_with("--secret-key=") {
            out.push("--secret-key=***".to_string());
        } else {
            out.push(shell_quote(a));
        }
    }
    out.join(" ")
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args> {
        let mut v = vec!["artstore-bench"];
        v.extend_from_slice(args);
        let a = Args::try_parse_from(v)?;
        a.validate()?;
        Ok(a)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.scenario, Scenario::All);
        assert_eq!(a.concurrency, 16);
        assert_eq!(a.small_ops(), DEFAULT_SMALL_OPS);
        assert_eq!(a.endpoint, "http://127.0.0.1:9000");
        assert_eq!(a.bucket, "artstore-bench");
        assert!(!a.json && a.spawn.is_none() && a.server_pid.is_none());
        assert_eq!(a.size_for(Scenario::Small), 4096);
        assert_eq!(a.size_for(Scenario::Large), 1 << 30);
        assert_eq!(a.size_for(Scenario::Huge), 5 << 30);
    }

    #[test]
    fn full_command_line() {
        let a = parse(&[
            "--endpoint",
            "http://127.0.0.1:9100",
            "--access-key",
            "AK",
            "--secret-key",
            "SK",
            "--server-pid",
            "1234",
            "--scenario",
            "small",
            "--concurrency",
            "32",
            "--ops",
            "5000",
            "--duration-secs",
            "2.5",
            "--size",
            "1024",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:9100");
        assert_eq!((a.access_key.as_str(), a.secret_key.as_str()), ("AK", "SK"));
        assert_eq!(a.server_pid, Some(1234));
        assert_eq!(a.scenario, Scenario::Small);
        assert_eq!(a.concurrency, 32);
        assert_eq!(a.small_ops(), 5000);
        assert_eq!(a.duration_secs, Some(2.5));
        assert_eq!(a.size_for(Scenario::Small), 1024);
        assert!(a.json);
    }

    #[test]
    fn spawn_and_duration_only() {
        let a = parse(&[
            "--spawn",
            "target/release/artstore",
            "--scenario",
            "huge",
            "--duration-secs",
            "10",
        ])
        .unwrap();
        assert_eq!(
            a.spawn.as_deref(),
            Some(std::path::Path::new("target/release/artstore"))
        );
        assert_eq!(a.scenario.expand(), vec![Scenario::Huge]);
        assert_eq!(a.small_ops(), MAX_SMALL_OPS);
    }

    #[test]
    fn rejects_bad_combinations() {
        assert!(parse(&["--scenario", "all", "--size", "10"]).is_err());
        assert!(parse(&["--scenario", "bogus"]).is_err());
        assert!(parse(&["--concurrency", "0"]).is_err());
        assert!(parse(&["--ops", "0"]).is_err());
        assert!(parse(&["--duration-secs", "-1"]).is_err());
        assert!(parse(&["--spawn", "x", "--server-pid", "1"]).is_err());
        assert!(parse(&["--data-dir", "/tmp/x"]).is_err());
        assert!(parse(&["--endpoint", "https://s3.example"]).is_err());
        assert!(parse(&["--scenario", "small", "--size", "0"]).is_err());
    }

    #[test]
    fn all_expands_in_order() {
        assert_eq!(
            Scenario::All.expand(),
            vec![Scenario::Small, Scenario::Large, Scenario::Huge]
        );
    }

    #[test]
    fn command_line_hides_secret() {
        let argv: Vec<String> = [
            "bench",
            "--secret-key",
            "hunter2",
            "--secret-key=hunter3",
            "--endpoint",
            "http://x:1",
            "a b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = redacted_command_line(&argv);
        assert!(!s.contains("hunter"), "{s}");
        assert_eq!(
            s,
            "bench --secret-key *** --secret-key=*** --endpoint http://x:1 'a b'"
        );
    }
}
