//! Settings: command-line flags, then `ARTSTORE_*` env vars (clap reads both), then the
//! TOML file named by `--config`, then defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use artstore_metadata::DbOptions;
use serde::Deserialize;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// TOML file with settings (see config/artstore.toml).
    #[arg(long, env = "ARTSTORE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where data, the SQLite index and the master key live.
    #[arg(long, env = "ARTSTORE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// S3 listen address; port 0 picks a free port.
    #[arg(long, env = "ARTSTORE_S3_ADDR")]
    pub s3_addr: Option<String>,
    /// Admin API listen address; port 0 picks a free port.
    #[arg(long, env = "ARTSTORE_ADMIN_ADDR")]
    pub admin_addr: Option<String>,
    /// sqlite://… or postgres://…; default: SQLite in the data dir.
    #[arg(long, env = "ARTSTORE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// redis://… for multi-node coordination (optional).
    #[arg(long, env = "ARTSTORE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Region reported to S3 clients.
    #[arg(long, env = "ARTSTORE_REGION")]
    pub region: Option<String>,
    /// Domain for virtual-hosted-style requests (bucket.DOMAIN).
    #[arg(long, env = "ARTSTORE_S3_DOMAIN")]
    pub s3_domain: Option<String>,
    /// Access key of the initial admin account.
    #[arg(long, env = "ARTSTORE_ROOT_ACCESS_KEY")]
    pub root_access_key: Option<String>,
    /// Secret key of the initial admin account.
    #[arg(long, env = "ARTSTORE_ROOT_SECRET_KEY", hide_env_values = true)]
    pub root_secret_key: Option<String>,
    /// Key that encrypts stored secrets (64 hex chars); default: <data-dir>/master.key.
    #[arg(long, env = "ARTSTORE_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// json or text; default: text on a terminal, json otherwise.
    #[arg(long, env = "ARTSTORE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Read rate of archive-restore verification, bytes per second; default (or 0): unlimited.
    #[arg(long = "restore-rate-bytes", env = "ARTSTORE_RESTORE_RATE")]
    pub restore_rate_bytes: Option<u64>,
    /// How long a request waits for a PostgreSQL connection before answering 503, in
    /// milliseconds; default 2000.
    #[arg(long = "database-timeout-ms", env = "ARTSTORE_DATABASE_TIMEOUT_MS")]
    pub database_timeout_ms: Option<u64>,
    /// Most connections to the index at once; default 16 (PostgreSQL), 8 (SQLite).
    #[arg(long = "database-pool-size", env = "ARTSTORE_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<u32>,
    /// Longest a PostgreSQL statement may run (e.g. 30s, 500ms); 0 or off: no limit. Default
    /// 30s. SQLite: ignored.
    #[arg(
        long = "database-statement-timeout",
        env = "ARTSTORE_DATABASE_STATEMENT_TIMEOUT"
    )]
    pub database_statement_timeout: Option<String>,
    /// How long start-up waits for a PostgreSQL index that does not answer yet (e.g. 60s, 5m);
    /// 0: fail at the first refusal. Default 60s.
    #[arg(long = "database-startup-wait", env = "ARTSTORE_DATABASE_STARTUP_WAIT")]
    pub database_startup_wait: Option<String>,
    /// Age after which an incomplete multipart upload is aborted (e.g. 7d, 36h, 90s), unless
    /// a lifecycle rule of its bucket says otherwise; 0 or off: never. Default 7d.
    #[arg(long = "multipart-expiry", env = "ARTSTORE_MULTIPART_EXPIRY")]
    pub multipart_expiry: Option<String>,
    /// How often the expiry of incomplete multipart uploads runs (e.g. 1h, 30s). Default 1h.
    #[arg(
        long = "multipart-expiry-interval",
        env = "ARTSTORE_MULTIPART_EXPIRY_INTERVAL"
    )]
    pub multipart_expiry_interval: Option<String>,
    /// Bytes per second the background scrub re-reads stored data at; default (or 0): off.
    #[arg(long = "scrub-rate", env = "ARTSTORE_SCRUB_RATE")]
    pub scrub_rate: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    s3_addr: Option<String>,
    admin_addr: Option<String>,
    database_url: Option<String>,
    redis_url: Option<String>,
    region: Option<String>,
    s3_domain: Option<String>,
    root_access_key: Option<String>,
    root_secret_key: Option<String>,
    master_key: Option<String>,
    log_format: Option<String>,
    restore_rate_bytes: Option<u64>,
    database_timeout_ms: Option<u64>,
    database_pool_size: Option<u32>,
    database_statement_timeout: Option<String>,
    database_startup_wait: Option<String>,
    multipart_expiry: Option<String>,
    multipart_expiry_interval: Option<String>,
    scrub_rate: Option<u64>,
}

/// Default age of an incomplete multipart upload that is aborted (AWS users set 7 days).
pub const DEFAULT_MULTIPART_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default time between two sweeps for expired uploads.
pub const DEFAULT_MULTIPART_EXPIRY_INTERVAL: Duration = Duration::from_secs(3600);

/// A duration setting such as `7d`, `36h`, `90s` or `500ms`.
fn duration(name: &str, text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text.trim()).with_context(|| {
        format!("{name} = '{text}' is not a duration (examples: 7d, 36h, 90s, 500ms)")
    })
}

/// The expiry age: `None` when turned off with `0` or `off`.
fn expiry(text: Option<String>) -> anyhow::Result<Option<Duration>> {
    let Some(text) = text else {
        return Ok(Some(DEFAULT_MULTIPART_EXPIRY));
    };
    let t = text.trim();
    if t == "0" || t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d = duration("multipart_expiry", t)?;
    Ok((!d.is_zero()).then_some(d))
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub s3_addr: String,
    pub admin_addr: String,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub region: String,
    pub s3_domain: Option<String>,
    pub root_access_key: Option<String>,
    pub root_secret_key: Option<String>,
    pub master_key: Option<String>,
    pub log_format: Option<String>,
    /// Bytes per second a restore may read while verifying; `None` = unlimited.
    pub restore_rate_bytes: Option<u64>,
    /// The index's pool: size, connection wait (`database_timeout_ms`), statement timeout
    /// and the start-up wait.
    pub database: DbOptions,
    /// Age after which incomplete multipart uploads are aborted; `None` = never (bucket
    /// lifecycle rules still apply).
    pub multipart_expiry: Option<Duration>,
    /// Time between two expiry sweeps.
    pub multipart_expiry_interval: Duration,
    /// Bytes per second the background scrub reads; `None` = no scrub.
    pub scrub_rate: Option<u64>,
}

/// The pool settings of the index.
fn database_options(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<DbOptions> {
    let acquire_timeout = match args.database_timeout_ms.or(file.database_timeout_ms) {
        Some(0) => anyhow::bail!("database_timeout_ms must be at least 1"),
        Some(ms) => Duration::from_millis(ms),
        None => artstore_metadata::DEFAULT_DB_TIMEOUT,
    };
    let pool_size = match args.database_pool_size.or(file.database_pool_size) {
        Some(0) => anyhow::bail!("database_pool_size must be at least 1"),
        n => n,
    };
    let statement_timeout = match args
        .database_statement_timeout
        .clone()
        .or_else(|| file.database_statement_timeout.clone())
    {
        None => Some(artstore_metadata::DEFAULT_STATEMENT_TIMEOUT),
        Some(t) if t.trim().eq_ignore_ascii_case("off") || t.trim() == "0" => None,
        Some(t) => Some(duration("database_statement_timeout", &t)?).filter(|d| !d.is_zero()),
    };
    let startup_wait = match args
        .database_startup_wait
        .clone()
        .or_else(|| file.database_startup_wait.clone())
    {
        None => artstore_metadata::DEFAULT_STARTUP_WAIT,
        Some(t) if t.trim() == "0" => Duration::ZERO,
        Some(t) => duration("database_startup_wait", &t)?,
    };
    Ok(DbOptions {
        pool_size,
        acquire_timeout,
        statement_timeout,
        startup_wait,
    })
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl Settings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let database = database_options(args, &file)?;
        let pick = |a: &Option<String>, f: Option<String>| a.clone().or(f);
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = pick(&args.database_url, file.database_url)
            .unwrap_or_else(|| artstore_metadata::Store::sqlite_url(&data_dir));
        Ok(Settings {
            s3_addr: pick(&args.s3_addr, file.s3_addr).unwrap_or_else(|| "127.0.0.1:9000".into()),
            admin_addr: pick(&args.admin_addr, file.admin_addr)
                .unwrap_or_else(|| "127.0.0.1:9001".into()),
            database_url,
            redis_url: pick(&args.redis_url, file.redis_url),
            region: pick(&args.region, file.region).unwrap_or_else(|| "us-east-1".into()),
            s3_domain: pick(&args.s3_domain, file.s3_domain),
            root_access_key: pick(&args.root_access_key, file.root_access_key),
            root_secret_key: pick(&args.root_secret_key, file.root_secret_key),
            master_key: pick(&args.master_key, file.master_key),
            log_format: pick(&args.log_format, file.log_format),
            restore_rate_bytes: args
                .restore_rate_bytes
                .or(file.restore_rate_bytes)
                .filter(|r| *r > 0),
            database,
            multipart_expiry: expiry(pick(&args.multipart_expiry, file.multipart_expiry))?,
            multipart_expiry_interval: match pick(
                &args.multipart_expiry_interval,
                file.multipart_expiry_interval,
            ) {
                None => DEFAULT_MULTIPART_EXPIRY_INTERVAL,
                Some(t) => {
                    let d = duration("multipart_expiry_interval", &t)?;
                    if d.is_zero() {
                        anyhow::bail!("multipart_expiry_interval must be more than 0");
                    }
                    d
                }
            },
            scrub_rate: args.scrub_rate.or(file.scrub_rate).filter(|r| *r > 0),
            data_dir,
        })
    }

    /// The log format is needed before the rest is resolved, so errors can be logged.
    pub fn log_format_hint(args: &ServeArgs) -> Option<String> {
        args.log_format.clone().or_else(|| {
            args.config
                .as_deref()
                .and_then(|p| read_file(p).ok())
                .and_then(|f| f.log_format)
        })
    }
}
