//! Starts an `artstore` server on free loopback ports with a temporary data dir.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const KEEP_LINES: usize = 40;

/// Extracts s3_addr and admin_addr from the server's "listening" log line (JSON or text format).
pub fn parse_listening(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = v.get("fields").unwrap_or(&v);
        if fields.get("message")?.as_str()? != "listening" {
            return None;
        }
        let s3 = fields.get("s3_addr")?.as_str()?.to_string();
        let admin = fields.get("admin_addr")?.as_str()?.to_string();
        return Some((s3, admin));
    }
    // Text format: `... INFO artstore: listening s3_addr=127.0.0.1:1 admin_addr=127.0.0.1:2`
    if !line.contains("listening") {
        return None;
    }
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(|v| v.trim_matches('"').to_string())
    };
    Some((field("s3_addr=")?, field("admin_addr=")?))
}

/// True for log lines worth showing the user (warnings and errors).
fn is_noteworthy(line: &str) -> bool {
    line.contains("\"level\":\"WARN\"")
        || line.contains("\"level\":\"ERROR\"")
        || line.contains(" WARN ")
        || line.contains(" ERROR ")
        || line.starts_with("thread '")
        || line.starts_with("Error")
}

pub struct Server {
    child: Child,
    pub pid: u32,
    pub s3_addr: String,
    pub admin_addr: String,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    recent: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts `bin serve`, with the index in `database_url` (default: SQLite in the data dir).
    pub async fn spawn(
        bin: &Path,
        data_dir: Option<&Path>,
        database_url: Option<&str>,
        access_key: &str,
        secret_key: &str,
        region: &str,
    ) -> Result<Server> {
        let (temp, data_dir) = match data_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
                (None, d.to_path_buf())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("artstore-bench-")
                    .tempdir()
                    .context("create temp data dir")?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
            .env("ARTSTORE_ROOT_ACCESS_KEY", access_key)
            .env("ARTSTORE_ROOT_SECRET_KEY", secret_key)
            .env("ARTSTORE_REGION", region)
            .env("ARTSTORE_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,artstore=info")
            .env_remove("ARTSTORE_CONFIG")
            .env_remove("ARTSTORE_DATABASE_URL")
            .env_remove("ARTSTORE_REDIS_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = database_url {
            cmd.env("ARTSTORE_DATABASE_URL", url);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("server exited at once"))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let recent = Arc::new(Mutex::new(VecDeque::new()));
        let addrs =
            tokio::time::timeout(STARTUP_TIMEOUT, wait_listening(stderr, recent.clone())).await;
        let (s3_addr, admin_addr) = match addrs {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                bail!(
                    "{e} (server status {status:?}); last server output:\n{}",
                    tail(&recent)
                )
            }
            Err(_) => bail!(
                "server printed no \"listening\" line within {STARTUP_TIMEOUT:?}; last output:\n{}",
                tail(&recent)
            ),
        };
        Ok(Server {
            child,
            pid,
            s3_addr,
            admin_addr,
            data_dir,
            _temp: temp,
            recent,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3_addr)
    }

    /// The server's last log lines (for error reports).
    pub fn tail(&self) -> String {
        tail(&self.recent)
    }

    /// Fails if the server has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("server exited: {status}; last output:\n{}", self.tail());
        }
        Ok(())
    }

    /// SIGTERM, wait up to 15 s for a graceful exit, then SIGKILL.
    pub async fn shutdown(mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
                .await
                .is_err()
            {
                eprintln!("server did not stop within 15 s of SIGTERM; killing it");
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

fn tail(recent: &Mutex<VecDeque<String>>) -> String {
    let r = recent.lock().unwrap_or_else(|e| e.into_inner());
    r.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Reads stderr until the "listening" line, then keeps draining it in the background (so the
/// server never blocks on a full pipe), echoing warnings and errors and keeping the last lines.
async fn wait_listening(
    stderr: ChildStderr,
    recent: Arc<Mutex<VecDeque<String>>>,
) -> Result<(String, String)> {
    let mut lines = BufReader::new(stderr).lines();
    let remember = move |recent: &Mutex<VecDeque<String>>, line: &str| {
        let mut r = recent.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() == KEEP_LINES {
            r.pop_front();
        }
        r.push_back(line.to_string());
    };
    loop {
        let Some(line) = lines.next_line().await.context("read server stderr")? else {
            bail!("server closed stderr before logging \"listening\"");
        };
        remember(&recent, &line);
        if let Some(addrs) = parse_listening(&line) {
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    if is_noteworthy(&line) {
                        eprintln!("[server] {line}");
                    }
                    remember(&recent, &line);
                }
            });
            return Ok(addrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_json_listening_line() {
        let line = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"INFO","fields":{"message":"listening","s3_addr":"127.0.0.1:40001","admin_addr":"127.0.0.1:40002"},"target":"artstore"}"#;
        assert_eq!(
            parse_listening(line),
            Some(("127.0.0.1:40001".into(), "127.0.0.1:40002".into()))
        );
        // Flattened fields also work.
        let flat = r#"{"level":"INFO","message":"listening","s3_addr":"127.0.0.1:1","admin_addr":"127.0.0.1:2"}"#;
        assert_eq!(
            parse_listening(flat),
            Some(("127.0.0.1:1".into(), "127.0.0.1:2".into()))
        );
    }

    #[test]
    fn ignores_other_lines() {
        assert_eq!(
            parse_listening(
                r#"{"level":"INFO","fields":{"message":"migrating"},"target":"artstore"}"#
            ),
            None
        );
        assert_eq!(parse_listening("{not json"), None);
        assert_eq!(parse_listening(""), None);
        assert_eq!(
            parse_listening(r#"{"fields":{"message":"listening","s3_addr":"127.0.0.1:1"}}"#),
            None
        );
    }

    #[test]
    fn parses_text_listening_line() {
        let line = "2025-01-01T00:00:00Z  INFO artstore: listening s3_addr=127.0.0.1:5 admin_addr=127.0.0.1:6";
        assert_eq!(
            parse_listening(line),
            Some(("127.0.0.1:5".into(), "127.0.0.1:6".into()))
        );
    }

    #[test]
    fn noteworthy_lines() {
        assert!(is_noteworthy(
            r#"{"level":"WARN","fields":{"message":"x"}}"#
        ));
        assert!(!is_noteworthy(
            r#"{"level":"INFO","fields":{"message":"x"}}"#
        ));
    }
}
