//! Shared harness of the black-box tests: starts the real `artstore` binary on free ports, against
//! SQLite (always) or a fresh PostgreSQL database (when `ARTSTORE_TEST_DATABASE_URL` is set), and
//! gives tests an aws-sdk-s3 client, raw SigV4-signed requests and helpers to inspect the data dir.
//!
//! API summary (kept stable; other test files depend on it):
//!
//! ```ignore
//! mod common;
//! use common::*;
//!
//! // one body, two tests: `put_then_get::sqlite` and `put_then_get::postgres`
//! storage_test!(put_then_get, |srv| async move { let c = srv.client(); /* … */ });
//! storage_test!(with_domain, Server::builder().env("ARTSTORE_S3_DOMAIN", "s3.test"), |srv| async move { /* … */ });
//!
//! let srv = Server::start(Db::Sqlite).await;
//! let srv = Server::builder().env("K", "V").arg("--region").arg("eu-west-1").start(Db::Postgres).await;
//! srv.s3_url(); srv.admin_url(); srv.s3_addr(); srv.data_dir(); srv.access_key(); srv.secret_key();
//! srv.logs(); srv.tool_env();            // AWS_* variables for aws-cli / boto3 / rclone
//! srv.client(); srv.client_with(ak, sk); srv.client_config(ak, sk) /* builder */; srv.http();
//! srv.kill9(); srv.stop(); srv.restart().await;      // same data dir and database, new ports
//! let r = srv.raw(Method::PUT, &key_path("b", "k")).header("content-md5", "…").body(data).send().await;
//! r.status; r.code(); r.header("x-amz-request-id"); r.assert_error(400, "BadDigest");
//! srv.raw(..).unsigned_payload() / .payload(Payload::Hash(h)) / .anonymous() / .creds(ak, sk)
//!    / .bad_signature() / .presigned(dur) / .at(time) / .query(k, v) / .signed() -> (url, headers)
//! sdk_err(c.get_object()…send().await).assert(404, "NoSuchKey");
//! srv.object_on_disk("b", "k") -> Option<DiskObject { data, attr, json }>; srv.objects_on_disk("b");
//! srv.assert_no_temp_files("b"); srv.files_snapshot();
//! if !require_tool("aws") { return; }
//! ```
//!
//! Environment: `ARTSTORE_TEST_DATABASE_URL` (PostgreSQL server for the `::postgres` variants),
//! `ARTSTORE_TEST_REQUIRE_ALL=1` (skips become failures), `ARTSTORE_TEST_BIN` (run another
//! binary, e.g. a release build), `ARTSTORE_TEST_KEEP_DATA=1` (keep data dirs of failed tests),
//! `ARTSTORE_TEST_SKIP_DISK=1` (skip the on-disk check of `assert_object`; only for running the
//! suite against a reference S3 implementation).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub mod faults;
pub mod moto;

pub use aws_sdk_s3 as s3;
pub use aws_sdk_s3::primitives::ByteStream;
pub use reqwest::Method;

/// Starts a multipart upload of `b/k`; its UploadId.
pub async fn create_upload(c: &s3::Client, b: &str, k: &str) -> String {
    c.create_multipart_upload()
        .bucket(b)
        .key(k)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_multipart_upload {b}/{k}: {e:?}"))
        .upload_id()
        .expect("UploadId")
        .to_string()
}

/// Uploads part `n` of upload `id`; its ETag.
pub async fn upload_part(
    c: &s3::Client,
    b: &str,
    k: &str,
    id: &str,
    n: i32,
    data: &[u8],
) -> String {
    c.upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload_part {n} of {k}: {e:?}"))
        .e_tag()
        .expect("part ETag")
        .to_string()
}

/// Completes upload `id` with `(part number, ETag)` pairs; the answer.
pub async fn complete_upload(
    c: &s3::Client,
    b: &str,
    k: &str,
    id: &str,
    parts: &[(i32, String)],
) -> s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    let parts = parts
        .iter()
        .map(|(n, etag)| {
            s3::types::CompletedPart::builder()
                .part_number(*n)
                .e_tag(etag)
                .build()
        })
        .collect();
    c.complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .multipart_upload(
            s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete_multipart_upload {b}/{k}: {e:?}"))
}

/// Root credentials every test server is started with.
pub const ROOT_ACCESS_KEY: &str = "AKARTSTORETEST0001";
pub const ROOT_SECRET_KEY: &str = "artstore-test-secret-key-0123456789abcdef";
pub const REGION: &str = "us-east-1";

/// How long we wait for the "listening" log line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Environment switches
// ---------------------------------------------------------------------------------------------

/// `ARTSTORE_TEST_REQUIRE_ALL=1`: skipping (missing PostgreSQL or tool) becomes a failure.
pub fn require_all() -> bool {
    matches!(
        std::env::var("ARTSTORE_TEST_REQUIRE_ALL").as_deref(),
        Ok("1") | Ok("true") | Ok("yes")
    )
}

/// The PostgreSQL server URL for tests (`ARTSTORE_TEST_DATABASE_URL`), if any.
pub fn test_postgres_url() -> Option<String> {
    std::env::var("ARTSTORE_TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The Redis URL for tests (`ARTSTORE_TEST_REDIS_URL`), if any. The PostgreSQL variant of every
/// storage test runs with it: the distributed setup (PostgreSQL + Redis).
pub fn test_redis_url() -> Option<String> {
    std::env::var("ARTSTORE_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Redis for a test that needs it: the URL, or `None` after printing why the test is skipped
/// (a panic under `ARTSTORE_TEST_REQUIRE_ALL=1`).
pub fn require_redis() -> Option<String> {
    match test_redis_url() {
        Some(u) => Some(u),
        None if require_all() => {
            panic!("ARTSTORE_TEST_REDIS_URL not set but ARTSTORE_TEST_REQUIRE_ALL=1")
        }
        None => {
            eprintln!("skipping: ARTSTORE_TEST_REDIS_URL not set");
            None
        }
    }
}

/// `n` nodes on one fresh PostgreSQL database and the Redis at `redis`, all with `master_key`
/// (so each can open the secrets the others sealed).
pub async fn cluster(master_key: &str, redis: &str, n: usize) -> Vec<Server> {
    let first = Server::builder()
        .env("ARTSTORE_MASTER_KEY", master_key)
        .env("ARTSTORE_REDIS_URL", redis)
        .start(Db::Postgres)
        .await;
    let url = first.database_url().expect("PostgreSQL");
    let mut nodes = vec![first];
    for _ in 1..n {
        nodes.push(
            Server::builder()
                .env("ARTSTORE_MASTER_KEY", master_key)
                .env("ARTSTORE_DATABASE_URL", &url)
                .env("ARTSTORE_REDIS_URL", redis)
                .start(Db::Sqlite)
                .await,
        );
    }
    nodes
}

/// Whether the given database can be tested here. For PostgreSQL without
/// `ARTSTORE_TEST_DATABASE_URL`: prints `skipping: …` and returns false, or panics under
/// `ARTSTORE_TEST_REQUIRE_ALL=1`.
pub fn db_available(db: Db) -> bool {
    match db {
        Db::Sqlite => true,
        Db::Postgres => {
            if test_postgres_url().is_some() {
                true
            } else if require_all() {
                panic!("ARTSTORE_TEST_DATABASE_URL not set but ARTSTORE_TEST_REQUIRE_ALL=1");
            } else {
                eprintln!("skipping: ARTSTORE_TEST_DATABASE_URL not set");
                false
            }
        }
    }
}

/// Returns true when `tool` is on PATH; otherwise prints why the test is skipped and returns false
/// (or panics under `ARTSTORE_TEST_REQUIRE_ALL=1`).
pub fn require_tool(tool: &str) -> bool {
    if find_on_path(tool).is_some() {
        return true;
    }
    if require_all() {
        panic!("required tool `{tool}` not found on PATH (ARTSTORE_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("skipping: `{tool}` not found on PATH");
    false
}

/// Full path of an executable on PATH.
pub fn find_on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let p = dir.join(tool);
        if let Ok(md) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if md.is_file() && md.permissions().mode() & 0o111 != 0 {
                return Some(p);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// storage_test! macro
// ---------------------------------------------------------------------------------------------

/// Database behind a test server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Writes a test once and generates it for both databases:
///
/// ```ignore
/// storage_test!(put_then_get, |srv| async move { /* srv: Server */ });
/// ```
/// expands to `mod put_then_get { #[tokio::test] async fn sqlite() …; async fn postgres() … }`
/// (test names `put_then_get::sqlite` / `put_then_get::postgres`). The postgres variant skips
/// (prints `skipping: …`) when `ARTSTORE_TEST_DATABASE_URL` is unset, unless
/// `ARTSTORE_TEST_REQUIRE_ALL=1`.
///
/// A variant takes a builder, for servers with extra env/args:
/// `storage_test!(name, Server::builder().env("K", "V"), |srv| async move { … });`
#[macro_export]
macro_rules! storage_test {
    ($name:ident, $f:expr) => {
        $crate::storage_test!($name, $crate::common::Server::builder(), $f);
    };
    ($name:ident, $builder:expr, $f:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_storage_test($builder, $crate::common::Db::Sqlite, $f).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_storage_test($builder, $crate::common::Db::Postgres, $f).await;
            }
        }
    };
}

/// Used by `storage_test!`: starts the server (or skips) and runs the test body.
pub async fn run_storage_test<F, Fut>(builder: ServerBuilder, db: Db, f: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: Future<Output = ()>,
{
    if !db_available(db) {
        return;
    }
    let srv = builder.start(db).await;
    f(srv).await;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one fresh database per server
// ---------------------------------------------------------------------------------------------

/// A database created for one test server; dropped (best effort) when the last holder goes away.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        use sqlx::Connection;
        let admin_url = test_postgres_url().expect("ARTSTORE_TEST_DATABASE_URL not set");
        let name = format!("artstore_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot connect to ARTSTORE_TEST_DATABASE_URL={admin_url}: {e}")
            });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} failed: {e}"));
        let _ = conn.close().await;
        let url = url_with_database(&admin_url, &name);
        PgDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a tokio runtime: do the async work on a thread of its own.
        let t = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                    let _ = conn.close().await;
                }
            });
        });
        let _ = t.join();
    }
}

/// `postgres://u:p@h:5432/db?x=y` with the database replaced by `name`.
pub fn url_with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = before_query
        .split_once('/')
        .map(|(a, _)| a)
        .unwrap_or(before_query);
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Builder for a test server with extra environment variables or arguments.
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    envs: Vec<(String, String)>,
    env_removes: Vec<String>,
    args: Vec<String>,
    root_keys: Option<(String, String)>,
}

impl ServerBuilder {
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }
    pub fn env_remove(mut self, k: impl Into<String>) -> Self {
        self.env_removes.push(k.into());
        self
    }
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Root credentials (default: ROOT_ACCESS_KEY / ROOT_SECRET_KEY).
    pub fn root_keys(mut self, ak: impl Into<String>, sk: impl Into<String>) -> Self {
        self.root_keys = Some((ak.into(), sk.into()));
        self
    }
    /// Start without ARTSTORE_ROOT_* (the server generates and logs the initial admin keys;
    /// `access_key()`/`secret_key()` then return the test defaults, which will not work).
    pub fn no_root_keys(mut self) -> Self {
        self.root_keys = None;
        self
    }

    pub async fn start(self, db: Db) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("artstore-test-")
            .tempdir()
            .expect("tempdir");
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(Arc::new(PgDatabase::create().await)),
        };
        let mut srv = Server {
            cfg: self,
            db,
            pg,
            tmp: Some(tmp),
            data_dir,
            child: None,
            s3_addr: String::new(),
            admin_addr: String::new(),
            logs: Arc::new(Mutex::new(String::new())),
            generation: 0,
        };
        srv.spawn().await;
        srv
    }
}

/// A running `artstore serve` with its own temp data dir (and PostgreSQL database).
pub struct Server {
    cfg: ServerBuilder,
    db: Db,
    pg: Option<Arc<PgDatabase>>,
    tmp: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    child: Option<Child>,
    s3_addr: String,
    admin_addr: String,
    logs: Arc<Mutex<String>>,
    generation: u32,
}

impl Server {
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            envs: Vec::new(),
            env_removes: Vec::new(),
            args: Vec::new(),
            root_keys: Some((ROOT_ACCESS_KEY.to_string(), ROOT_SECRET_KEY.to_string())),
        }
    }

    /// Start with the defaults on the given database.
    pub async fn start(db: Db) -> Server {
        Server::builder().start(db).await
    }

    pub fn db(&self) -> Db {
        self.db
    }
    /// The ARTSTORE_DATABASE_URL given to the server (None = default SQLite in the data dir).
    pub fn database_url(&self) -> Option<String> {
        self.pg.as_ref().map(|p| p.url.clone())
    }
    /// `http://127.0.0.1:PORT` (no trailing slash). Changes after `restart()`.
    pub fn s3_url(&self) -> String {
        format!("http://{}", self.s3_addr)
    }
    pub fn s3_addr(&self) -> &str {
        &self.s3_addr
    }
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }
    pub fn admin_addr(&self) -> &str {
        &self.admin_addr
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn access_key(&self) -> &str {
        self.cfg
            .root_keys
            .as_ref()
            .map(|k| k.0.as_str())
            .unwrap_or(ROOT_ACCESS_KEY)
    }
    pub fn secret_key(&self) -> &str {
        self.cfg
            .root_keys
            .as_ref()
            .map(|k| k.1.as_str())
            .unwrap_or(ROOT_SECRET_KEY)
    }
    /// Everything the server wrote to stderr/stdout so far (all generations).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
    /// The process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
    /// Environment for outside tools (aws-cli, rclone, boto3) talking to this server.
    pub fn tool_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key().into()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key().into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ENDPOINT_URL".into(), self.s3_url()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// aws-sdk-s3 client with the root credentials (path style, us-east-1, plain HTTP, no retries).
    pub fn client(&self) -> s3::Client {
        self.client_with(self.access_key(), self.secret_key())
    }

    /// aws-sdk-s3 client with the given credentials.
    pub fn client_with(&self, ak: &str, sk: &str) -> s3::Client {
        s3::Client::from_conf(self.client_config(ak, sk).build())
    }

    /// Config builder behind `client_with`, for tests that need to tweak it (e.g. checksum
    /// calculation).
    pub fn client_config(&self, ak: &str, sk: &str) -> s3::config::Builder {
        let creds = s3::config::Credentials::new(ak, sk, None, None, "artstore-test");
        s3::config::Builder::new()
            .behavior_version(s3::config::BehaviorVersion::latest())
            .region(s3::config::Region::new(REGION))
            .endpoint_url(self.s3_url())
            .force_path_style(true)
            .credentials_provider(creds)
            .retry_config(s3::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
    }

    /// A plain reqwest client (no TLS).
    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::builder().build().expect("reqwest client")
    }

    /// A raw request to the S3 endpoint, SigV4-signed with the root keys unless told otherwise.
    /// `path` is the already-encoded path (use `key_path(bucket, key)`), without query.
    pub fn raw(&self, method: Method, path: &str) -> RawRequest {
        RawRequest {
            base: self.s3_url(),
            method,
            path: path.to_string(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            payload: Payload::Sha256,
            auth: Auth::Keys(self.access_key().to_string(), self.secret_key().to_string()),
            tamper_signature: false,
            time: None,
            scope: None,
        }
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.generation += 1;
        // ARTSTORE_TEST_BIN overrides the binary (e.g. a release build).
        let bin = std::env::var("ARTSTORE_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_artstore").to_string());
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--s3-addr")
            .arg("127.0.0.1:0")
            .arg("--admin-addr")
            .arg("127.0.0.1:0");
        for a in &self.cfg.args {
            cmd.arg(a);
        }
        for k in [
            "ARTSTORE_CONFIG",
            "ARTSTORE_DATA_DIR",
            "ARTSTORE_S3_ADDR",
            "ARTSTORE_ADMIN_ADDR",
            "ARTSTORE_DATABASE_URL",
            "ARTSTORE_REDIS_URL",
            "ARTSTORE_ROOT_ACCESS_KEY",
            "ARTSTORE_ROOT_SECRET_KEY",
            "ARTSTORE_MASTER_KEY",
            "ARTSTORE_S3_DOMAIN",
            "ARTSTORE_REGION",
            "ARTSTORE_LOG_FORMAT",
            "RUST_LOG",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("ARTSTORE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
        if let Some((ak, sk)) = &self.cfg.root_keys {
            cmd.env("ARTSTORE_ROOT_ACCESS_KEY", ak)
                .env("ARTSTORE_ROOT_SECRET_KEY", sk);
        }
        if let Some(pg) = &self.pg {
            cmd.env("ARTSTORE_DATABASE_URL", &pg.url);
            if let Some(redis) = test_redis_url() {
                cmd.env("ARTSTORE_REDIS_URL", redis);
            }
        }
        for k in &self.cfg.env_removes {
            cmd.env_remove(k);
        }
        for (k, v) in &self.cfg.envs {
            cmd.env(k, v);
        }
        // Run from the temp dir so that no ./config/artstore.toml of the repository is picked up.
        if let Some(tmp) = &self.tmp {
            cmd.current_dir(tmp.path());
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));

        {
            let mut l = self.logs.lock().unwrap();
            if self.generation > 1 {
                l.push_str(&format!(
                    "----- server restart (generation {}) -----\n",
                    self.generation
                ));
            }
        }
        let (tx, rx) = mpsc::channel::<Option<(String, String)>>();
        let stderr = child.stderr.take().unwrap();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                logs.lock().unwrap().push_str(&line);
                if !sent && let Some(addrs) = parse_listening(&line) {
                    let _ = tx.send(Some(addrs));
                    sent = true;
                }
            }
            if !sent {
                let _ = tx.send(None);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                logs.lock().unwrap().push_str(&format!("[stdout] {line}"));
            }
        });

        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(START_TIMEOUT))
            .await
            .expect("join");
        match got {
            Ok(Some((s3, admin))) => {
                self.s3_addr = s3;
                self.admin_addr = admin;
                self.child = Some(child);
            }
            other => {
                let status = match other {
                    Err(_) => {
                        let _ = child.kill();
                        let st = child.wait();
                        format!("no \"listening\" line within {START_TIMEOUT:?} (killed: {st:?})")
                    }
                    _ => format!("server exited before listening: {:?}", child.wait()),
                };
                // give the reader thread a moment to flush the last lines
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "artstore serve did not start ({status}); db={:?}; data_dir={}\n--- captured output ---\n{}",
                    self.db,
                    self.data_dir.display(),
                    self.logs()
                );
            }
        }
    }

    /// SIGKILL the server and wait for it to exit. `restart()` starts it again.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Graceful stop: SIGTERM, wait up to 20 s (then SIGKILL). Returns the exit status, if the
    /// server was running and exited by itself.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let pid = c.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match c.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return None;
                }
            }
        }
    }

    /// A bearer token of the root admin account from the token endpoint.
    pub async fn root_token(&self) -> String {
        let r = self
            .http()
            .post(format!("{}/api/v1/auth/token", self.admin_url()))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"client_id": self.access_key(), "client_secret": self.secret_key()})
                    .to_string(),
            )
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status().as_u16(), 200, "token endpoint");
        let v: serde_json::Value =
            serde_json::from_slice(&r.bytes().await.expect("token body")).expect("token json");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// Stop (gracefully, if still running) and start again on the same data dir and database.
    /// Ports change: create new clients afterwards.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn().await;
    }

    // -----------------------------------------------------------------------------------------
    // Disk inspection
    // -----------------------------------------------------------------------------------------

    /// `<data-dir>/elements/<bucket>`
    pub fn element_dir(&self, bucket: &str) -> PathBuf {
        self.data_dir.join("elements").join(bucket)
    }

    /// Every object (data file + sidecar) found under the element's `YYYY/MM/DD/HH` dirs.
    pub fn objects_on_disk(&self, bucket: &str) -> Vec<DiskObject> {
        let mut out = Vec::new();
        let quarantine = self.element_dir(bucket).join(".quarantine");
        for p in walk_files(&self.element_dir(bucket)) {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".tmp-")
                || !name.ends_with(".attr.json")
                || p.starts_with(&quarantine)
            {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let json: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", p.display()));
            let data = PathBuf::from(p.to_string_lossy().trim_end_matches(".attr.json"));
            out.push(DiskObject {
                data,
                attr: p,
                json,
            });
        }
        out
    }

    /// The data file and sidecar of `key` (matched by the sidecar's `key` field).
    /// Panics if more than one sidecar claims the key.
    pub fn object_on_disk(&self, bucket: &str, key: &str) -> Option<DiskObject> {
        let mut found: Vec<DiskObject> = self
            .objects_on_disk(bucket)
            .into_iter()
            .filter(|o| o.json.get("key").and_then(|k| k.as_str()) == Some(key))
            .collect();
        assert!(
            found.len() <= 1,
            "{} sidecars claim key {key:?}: {:?}",
            found.len(),
            found
                .iter()
                .map(|o| o.attr.display().to_string())
                .collect::<Vec<_>>()
        );
        found.pop()
    }

    /// Files under the element dir whose name starts with `.tmp-`.
    pub fn temp_files(&self, bucket: &str) -> Vec<PathBuf> {
        walk_files(&self.element_dir(bucket))
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .collect()
    }

    #[track_caller]
    pub fn assert_no_temp_files(&self, bucket: &str) {
        let t = self.temp_files(bucket);
        assert!(t.is_empty(), "temp files left in bucket {bucket}: {t:?}");
    }

    /// Every file under the data dir (relative paths), except the SQLite database files.
    pub fn files_snapshot(&self) -> BTreeSet<PathBuf> {
        walk_files(&self.data_dir)
            .into_iter()
            .map(|p| p.strip_prefix(&self.data_dir).unwrap().to_path_buf())
            .filter(|p| {
                !p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("artstore.db")
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let logs = self.logs();
            let tail: Vec<&str> = logs.lines().rev().take(300).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            // ARTSTORE_TEST_KEEP_DATA=1 keeps the data dir of a failed test for post-mortem.
            let data = if std::env::var_os("ARTSTORE_TEST_KEEP_DATA").is_some() {
                match self.tmp.take() {
                    Some(t) => format!("data dir kept at {}", t.keep().display()),
                    None => "no data dir".to_string(),
                }
            } else {
                "set ARTSTORE_TEST_KEEP_DATA=1 to keep the data dir".to_string()
            };
            eprintln!(
                "===== artstore server log (db={:?}, last {} lines; {data}) =====\n{}\n===== end of server log =====",
                self.db,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

/// Parses the JSON "listening" event: `{"fields":{"message":"listening","s3_addr":…,"admin_addr":…}}`
/// (also accepts the fields at top level).
fn parse_listening(line: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
    let fields = v.get("fields").unwrap_or(&v);
    let msg = fields
        .get("message")
        .or_else(|| v.get("message"))?
        .as_str()?;
    if msg != "listening" {
        return None;
    }
    let get = |k: &str| {
        fields
            .get(k)
            .or_else(|| v.get(k))
            .and_then(|x| x.as_str())
            .map(|s| s.to_string())
    };
    Some((get("s3_addr")?, get("admin_addr")?))
}

/// One object as found on disk.
#[derive(Debug, Clone)]
pub struct DiskObject {
    pub data: PathBuf,
    pub attr: PathBuf,
    pub json: serde_json::Value,
}

impl DiskObject {
    pub fn data_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.data).unwrap_or_else(|e| panic!("read {}: {e}", self.data.display()))
    }
    pub fn str_field(&self, k: &str) -> Option<String> {
        self.json
            .get(k)
            .and_then(|v| v.as_str())
            .map(|s| s.to_string())
    }
}

/// All regular files under `dir`, recursively (empty if it does not exist).
pub fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
/// Only for conditions the server reaches asynchronously (e.g. cleanup after a client disconnect).
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Raw signed requests
// ---------------------------------------------------------------------------------------------

/// What goes into `x-amz-content-sha256` (and the signature).
#[derive(Clone, Debug)]
pub enum Payload {
    /// SHA-256 of the body (default).
    Sha256,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// A given value (a wrong hash, `STREAMING-…`).
    Hash(String),
}

#[derive(Clone, Debug)]
pub enum Auth {
    Keys(String, String),
    Anonymous,
    /// Presigned query-string auth with this expiry.
    Presigned(String, String, Duration),
}

/// Builder of a raw request; see `Server::raw`.
#[derive(Clone, Debug)]
pub struct RawRequest {
    base: String,
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub payload: Payload,
    pub auth: Auth,
    pub tamper_signature: bool,
    /// Signing time (default: now).
    pub time: Option<SystemTime>,
    /// Credential scope (region, service) to sign with (default: `REGION`, `s3`).
    pub scope: Option<(String, String)>,
}

impl RawRequest {
    /// Adds a query parameter (raw value; it is percent-encoded here). `v = ""` gives `?k=`.
    pub fn query(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.to_string(), v.to_string()));
        self
    }
    /// Adds a header; it is signed (names are lower-cased).
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.to_string()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
    pub fn payload(mut self, p: Payload) -> Self {
        self.payload = p;
        self
    }
    pub fn unsigned_payload(self) -> Self {
        self.payload(Payload::Unsigned)
    }
    pub fn creds(mut self, ak: &str, sk: &str) -> Self {
        self.auth = Auth::Keys(ak.to_string(), sk.to_string());
        self
    }
    pub fn anonymous(mut self) -> Self {
        self.auth = Auth::Anonymous;
        self
    }
    /// Presign (query auth) with the current keys.
    pub fn presigned(mut self, expires: Duration) -> Self {
        if let Auth::Keys(a, s) | Auth::Presigned(a, s, _) = self.auth.clone() {
            self.auth = Auth::Presigned(a, s, expires);
        }
        self
    }
    /// Sign as of this time (for expiry / clock-skew tests and chunk signatures).
    pub fn at(mut self, t: SystemTime) -> Self {
        self.time = Some(t);
        self
    }
    /// Sign with this credential scope instead of `REGION`/`s3`.
    pub fn scope(mut self, region: &str, service: &str) -> Self {
        self.scope = Some((region.to_string(), service.to_string()));
        self
    }
    /// Flip one character of the signature after signing.
    pub fn bad_signature(mut self) -> Self {
        self.tamper_signature = true;
        self
    }

    /// The encoded query string (sorted as given).
    fn query_string(&self) -> String {
        self.query
            .iter()
            // S3 subresources (`?uploads`, `?delete`) are sent as `k=`, as the SDKs do.
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The full URL without auth query parameters.
    pub fn url(&self) -> String {
        let q = self.query_string();
        if q.is_empty() {
            format!("{}{}", self.base, self.path)
        } else {
            format!("{}{}?{}", self.base, self.path, q)
        }
    }

    /// Signs and returns (final URL, headers to send). The headers include the caller's headers,
    /// `x-amz-date`, `x-amz-content-sha256` and `authorization` (header auth), not `host`.
    pub fn signed(&self) -> (String, Vec<(String, String)>) {
        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SignatureLocation, SigningSettings, UriPathNormalizationMode, sign,
        };
        use aws_sigv4::sign::v4;
        let url = self.url();
        let mut headers = self.headers.clone();
        let (ak, sk, presign) = match &self.auth {
            Auth::Anonymous => return (url, headers),
            Auth::Keys(a, s) => (a.clone(), s.clone(), None),
            Auth::Presigned(a, s, d) => (a.clone(), s.clone(), Some(*d)),
        };
        let identity: aws_smithy_runtime_api::client::identity::Identity =
            aws_credential_types::Credentials::new(ak, sk, None, None, "raw").into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if let Some(d) = presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(d);
            settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        } else {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let (region, service) = self.scope.clone().unzip();
        let params: aws_sigv4::http_request::SigningParams = v4::SigningParams::builder()
            .identity(&identity)
            .region(region.as_deref().unwrap_or(REGION))
            .name(service.as_deref().unwrap_or("s3"))
            .time(self.time.unwrap_or_else(SystemTime::now))
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
        let body = match (&self.payload, presign) {
            (_, Some(_)) => SignableBody::UnsignedPayload,
            (Payload::Sha256, None) => SignableBody::Bytes(&self.body),
            (Payload::Unsigned, None) => SignableBody::UnsignedPayload,
            (Payload::Hash(h), None) => SignableBody::Precomputed(h.clone()),
        };
        let signable = SignableRequest::new(
            self.method.as_str(),
            url.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .expect("signable request");
        let (instructions, _sig) = sign(signable, &params).expect("sign").into_parts();
        let (new_headers, new_params) = instructions.into_parts();
        for h in new_headers {
            let mut v = h.value().to_string();
            if self.tamper_signature && h.name().eq_ignore_ascii_case("authorization") {
                v = tamper(&v);
            }
            headers.retain(|(k, _)| !k.eq_ignore_ascii_case(h.name()));
            headers.push((h.name().to_string(), v));
        }
        let mut url = url;
        if !new_params.is_empty() {
            let mut q: Vec<String> = Vec::new();
            for (k, v) in new_params {
                let mut v = v.to_string();
                if self.tamper_signature && k == "X-Amz-Signature" {
                    v = tamper(&v);
                }
                q.push(format!("{}={}", uri_encode(k, true), uri_encode(&v, true)));
            }
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&q.join("&"));
        }
        (url, headers)
    }

    /// Sends the request with reqwest and collects the whole response.
    pub async fn send(self) -> RawResponse {
        let (url, headers) = self.signed();
        let client = reqwest::Client::builder().build().expect("reqwest client");
        let mut rb = client.request(self.method.clone(), &url);
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let resp = rb
            .body(self.body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} {url}: {e}", self.method));
        RawResponse::from_reqwest(resp).await
    }
}

fn tamper(sig_or_header: &str) -> String {
    let mut s = sig_or_header.to_string();
    let last = s.pop().unwrap_or('0');
    s.push(if last == '0' { '1' } else { '0' });
    s
}

/// A fully read response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub async fn from_reqwest(resp: reqwest::Response) -> RawResponse {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        RawResponse {
            status,
            headers,
            body,
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// `<Code>` of the S3 error XML ("" if none).
    pub fn code(&self) -> String {
        s3_error_code(&self.text())
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_string())
    }
    /// Panics with the body when the status differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
    /// Asserts status and S3 error code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "unexpected error; body: {}",
            self.text()
        );
        self
    }
}

/// `<Code>…</Code>` of an S3 error document ("" if absent).
pub fn s3_error_code(body: &str) -> String {
    xml_first(body, "Code").unwrap_or_default()
}

/// Text of the first `<tag>…</tag>` (entity-decoded), if any.
pub fn xml_first(body: &str, tag: &str) -> Option<String> {
    xml_all(body, tag).into_iter().next()
}

/// Texts of all `<tag>…</tag>` elements, in order (not nested-aware; fine for S3 answers).
pub fn xml_all(body: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(xml_unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

pub fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#xD;", "\r")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

/// S3 URI encoding: everything but `A-Za-z0-9-._~` is %XX-encoded; `/` too unless `encode_slash`
/// is false.
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decoding (as in `encoding-type=url` answers; `+` stays `+`).
pub fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `/bucket/key` with the key S3-encoded (slashes kept).
pub fn key_path(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", uri_encode(key, false))
}

// ---------------------------------------------------------------------------------------------
// Hashing helpers
// ---------------------------------------------------------------------------------------------

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}
pub fn md5_bytes(data: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(data).to_vec()
}
pub fn md5_b64(data: &[u8]) -> String {
    b64(&md5_bytes(data))
}
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
pub fn sha256_b64(data: &[u8]) -> String {
    use sha2::Digest;
    b64(&sha2::Sha256::digest(data))
}
pub fn sha1_b64(data: &[u8]) -> String {
    b64(&sha1(data))
}
/// CRC32 (ISO-HDLC, as x-amz-checksum-crc32), base64 of the big-endian value.
pub fn crc32_b64(data: &[u8]) -> String {
    b64(&(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, data) as u32).to_be_bytes())
}
/// CRC32C (Castagnoli), base64 of the big-endian value.
pub fn crc32c_b64(data: &[u8]) -> String {
    b64(&(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32).to_be_bytes())
}
/// CRC64/NVME, base64 of the big-endian value.
pub fn crc64nvme_b64(data: &[u8]) -> String {
    b64(&crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data).to_be_bytes())
}

/// SHA-1, for x-amz-checksum-sha1.
pub fn sha1(data: &[u8]) -> Vec<u8> {
    use sha1::Digest;
    sha1::Sha1::digest(data).to_vec()
}
pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}
/// `"<hex>"` as S3 returns ETags.
pub fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}
/// The multipart ETag `md5(concat(md5(part)))-N` (quoted).
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut cat = Vec::new();
    for p in parts {
        cat.extend_from_slice(&md5_bytes(p));
    }
    format!("\"{}-{}\"", md5_hex(&cat), parts.len())
}

/// Deterministic pseudo-random bytes (xorshift), so failures are reproducible.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// SDK helpers
// ---------------------------------------------------------------------------------------------

/// Status, code and message of a failed SDK call.
#[derive(Debug, Clone)]
pub struct SdkFail {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub debug: String,
}

/// Unwraps the error of an SDK call that must fail; panics with the output if it succeeded.
#[track_caller]
pub fn sdk_err<T, E>(
    r: Result<
        T,
        s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
) -> SdkFail
where
    T: std::fmt::Debug,
    E: s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    use s3::error::ProvideErrorMetadata;
    match r {
        Ok(v) => panic!("expected an error, got success: {v:?}"),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
            let request_id = e
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-request-id").map(|s| s.to_string()));
            SdkFail {
                status,
                code: e.code().unwrap_or("").to_string(),
                message: e.message().unwrap_or("").to_string(),
                request_id,
                debug: format!("{e:?}"),
            }
        }
    }
}

impl SdkFail {
    /// Asserts HTTP status and S3 error code (code "" = do not check, e.g. HEAD without body).
    #[track_caller]
    pub fn assert(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "unexpected status: {self:#?}");
        if !code.is_empty() {
            assert_eq!(self.code, code, "unexpected error code: {self:#?}");
        }
        self
    }
}

/// Creates a bucket, panicking on failure.
pub async fn create_bucket(c: &s3::Client, bucket: &str) {
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_bucket {bucket}: {e:?}"));
}

/// PutObject; returns the ETag (quoted).
pub async fn put(c: &s3::Client, bucket: &str, key: &str, data: impl Into<Vec<u8>>) -> String {
    let out = c
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_object {bucket}/{key}: {e:?}"));
    out.e_tag().unwrap_or_default().to_string()
}

/// GetObject; returns the whole body.
pub async fn get(c: &s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get_object {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

/// Whether the key exists (HEAD 200 vs 404; panics on anything else).
pub async fn exists(c: &s3::Client, bucket: &str, key: &str) -> bool {
    match c.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            assert_eq!(status, Some(404), "head_object {bucket}/{key}: {e:?}");
            false
        }
    }
}

/// All keys of a bucket (ListObjectsV2, all pages).
pub async fn list_keys(c: &s3::Client, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .list_objects_v2()
            .bucket(bucket)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list_objects_v2 {bucket}: {e:?}"));
        keys.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key().map(|k| k.to_string())),
        );
        if out.is_truncated() == Some(true) {
            token = out.next_continuation_token().map(|s| s.to_string());
            assert!(
                token.is_some(),
                "truncated listing without continuation token"
            );
        } else {
            return keys;
        }
    }
}

/// Asserts the object is stored with exactly these bytes (GET and the data file on disk).
pub async fn assert_object(srv: &Server, bucket: &str, key: &str, data: &[u8]) {
    let c = srv.client();
    let got = get(&c, bucket, key).await;
    assert!(
        got == data,
        "{bucket}/{key}: body differs (got {} bytes, want {})",
        got.len(),
        data.len()
    );
    if std::env::var_os("ARTSTORE_TEST_SKIP_DISK").is_some() {
        // only for running the suite against a reference S3 implementation
        return;
    }
    let on_disk = srv
        .object_on_disk(bucket, key)
        .unwrap_or_else(|| panic!("{bucket}/{key}: no sidecar on disk"));
    assert!(
        on_disk.data_bytes() == data,
        "{bucket}/{key}: data file differs"
    );
}

/// Reads a whole child stream (for tools).
pub fn read_all(mut r: impl Read) -> String {
    let mut s = String::new();
    let _ = r.read_to_string(&mut s);
    s
}

/// The `artstore` binary under test (`ARTSTORE_TEST_BIN` overrides it, e.g. a release build).
pub fn artstore_bin() -> String {
    std::env::var("ARTSTORE_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_artstore").into())
}

impl Server {
    /// Runs `artstore <args…> --data-dir … [--database-url …]` on this server's data dir and
    /// database, as an operator would next to the running server: (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(artstore_bin());
        cmd.args(args)
            .arg("--data-dir")
            .arg(self.data_dir())
            .env_remove("ARTSTORE_DATABASE_URL")
            .env_remove("ARTSTORE_MASTER_KEY")
            .env_remove("ARTSTORE_CONFIG")
            .env("ARTSTORE_LOG_FORMAT", "json")
            .current_dir(self.data_dir());
        if let Some(url) = self.database_url() {
            cmd.arg("--database-url").arg(url);
            // As an operator would, with the cluster's Redis: the change reaches the server's
            // cache through its subscription.
            if let Some(redis) = test_redis_url() {
                cmd.env("ARTSTORE_REDIS_URL", redis);
            }
        }
        let out = cmd.output().expect("run artstore");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `artstore index <action>` (rebuild, verify): (success, JSON report, stderr).
    pub fn index_cmd(&self, action: &str) -> (bool, serde_json::Value, String) {
        let (ok, out, err) = self.cli(&["index", action]);
        let json = serde_json::from_str(&out).unwrap_or(serde_json::Value::Null);
        (ok, json, err)
    }

    /// Throws the index away and rebuilds it from the sidecars alone, as an operator would
    /// (`artstore migrate`: only serve and migrate create an index; then `index rebuild`).
    /// The server must be stopped. Returns the rebuild report and what the rebuild logged.
    pub async fn rebuild_lost_index(&self) -> (serde_json::Value, String) {
        self.delete_index().await;
        let (ok, _, err) = self.cli(&["migrate"]);
        assert!(ok, "migrate: {err}");
        let (ok, report, err) = self.index_cmd("rebuild");
        assert!(ok, "rebuild failed: {err} {report}");
        (report, err)
    }

    /// A direct connection to this server's index, for tests that must set up a state only a
    /// crash or a foreign writer could leave.
    pub async fn index_conn(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = self.database_url().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.data_dir().join("artstore.db").to_string_lossy()
            )
        });
        sqlx::AnyConnection::connect(&url)
            .await
            .expect("connect to the index")
    }

    /// Throws the whole index away (SQLite files, or every table of the PostgreSQL database),
    /// as a lost or corrupted database would. Stop the server first.
    pub async fn delete_index(&self) {
        match self.database_url() {
            None => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ =
                        std::fs::remove_file(self.data_dir().join(format!("artstore.db{suffix}")));
                }
            }
            Some(url) => {
                use sqlx::Connection as _;
                sqlx::any::install_default_drivers();
                let mut c = sqlx::AnyConnection::connect(&url).await.expect("connect");
                sqlx::query("DROP SCHEMA public CASCADE")
                    .execute(&mut c)
                    .await
                    .expect("drop schema");
                sqlx::query("CREATE SCHEMA public")
                    .execute(&mut c)
                    .await
                    .expect("create schema");
            }
        }
    }
}

impl Server {
    /// Sets an environment variable for the next start (`restart()`), e.g. a test crash point.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.cfg.envs.retain(|(name, _)| name != k);
        self.cfg.envs.push((k.to_owned(), v.to_owned()));
    }

    /// Removes an environment variable set with `set_env` or the builder, for the next start.
    pub fn unset_env(&mut self, k: &str) {
        self.cfg.envs.retain(|(name, _)| name != k);
    }

    /// Waits (up to 20 s) for the server to exit by itself, e.g. at a test crash point;
    /// returns whether it did. `restart()` starts it again.
    pub fn wait_exit(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match c.try_wait() {
                Ok(Some(_)) => return true,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = c.kill();
                    let _ = c.wait();
                    return false;
                }
            }
        }
    }

    /// Makes `key` look written long ago, as an object from an earlier run of the server:
    /// moves its files into the hour directory `2020/01/01/00`, points its row (and its
    /// sidecar's `storage_path`) there, and dates that directory back, so start-up recovery
    /// does not look at it unless something touches it. Stop the server first.
    pub async fn age_object(&self, bucket: &str, key: &str) -> DiskObject {
        let on_disk = self
            .object_on_disk(bucket, key)
            .unwrap_or_else(|| panic!("{bucket}/{key} on disk"));
        let old_dir = self.element_dir(bucket).join("2020/01/01/00");
        std::fs::create_dir_all(&old_dir).expect("old hour dir");
        let name = on_disk.data.file_name().expect("name").to_owned();
        let rel = format!("2020/01/01/00/{}", name.to_string_lossy());
        let data = old_dir.join(&name);
        let attr = old_dir.join(format!("{}.attr.json", name.to_string_lossy()));
        let mut json = on_disk.json.clone();
        json["storage_path"] = rel.clone().into();
        std::fs::rename(&on_disk.data, &data).expect("move data");
        std::fs::write(&attr, serde_json::to_vec_pretty(&json).expect("json")).expect("sidecar");
        std::fs::remove_file(&on_disk.attr).expect("remove moved sidecar");
        let mut conn = self.index_conn().await;
        sqlx::query("UPDATE objects SET storage_path = $1 WHERE bucket = $2 AND key = $3")
            .bind(&rel)
            .bind(bucket)
            .bind(key)
            .execute(&mut conn)
            .await
            .expect("point the row at the old directory");
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
        std::fs::File::open(&old_dir)
            .and_then(|d| d.set_modified(long_ago))
            .expect("date the directory back");
        DiskObject { data, attr, json }
    }

    /// `SELECT COUNT(*) FROM pending_deletes`: obsolete files not yet removed.
    pub async fn obsolete_records(&self) -> i64 {
        let mut c = self.index_conn().await;
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pending_deletes")
            .fetch_one(&mut c)
            .await
            .expect("count pending deletes")
    }
}
