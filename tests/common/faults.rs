//! Faults for the fault tests: a small filesystem that can be filled and freed, and a
//! PostgreSQL server of the test's own that can be stopped, paused (SIGSTOP) and started again.
//! Neither ever touches the shared PostgreSQL of `ARTSTORE_TEST_DATABASE_URL`.
//!
//! ```ignore
//! let Some(disk) = SmallDisk::mount(8 << 20) else { return };   // tmpfs; needs root
//! let filler = disk.fill(); /* … */ disk.free(&filler);
//! let Some(pg) = OwnPostgres::start() else { return };           // initdb + pg_ctl on a free port
//! let Some(pg) = OwnPostgres::init() else { return };            // initdb only: not up yet
//! pg.url(); pg.stop(); pg.start_again(); pg.pause(); pg.resume(); pg.count("SELECT …").await;
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::require_all;

/// Prints why a fault test cannot run here and returns `None`, or fails under
/// `ARTSTORE_TEST_REQUIRE_ALL=1`.
fn skip<T>(why: &str) -> Option<T> {
    if require_all() {
        panic!("{why} (ARTSTORE_TEST_REQUIRE_ALL=1)");
    }
    eprintln!("skipping: {why}");
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// A small filesystem
// ---------------------------------------------------------------------------------------------

/// A size-limited tmpfs mounted on a temp dir for the life of the value.
pub struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes`. Mounting needs root: otherwise prints why and returns `None`
    /// (a failure under `ARTSTORE_TEST_REQUIRE_ALL=1`).
    pub fn mount(bytes: u64) -> Option<SmallDisk> {
        if !is_root() {
            return skip("a small filesystem needs root to mount a tmpfs");
        }
        let dir = tempfile::Builder::new()
            .prefix("artstore-small-disk-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        if !out.status.success() {
            return skip(&format!(
                "cannot mount a tmpfs: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Some(SmallDisk { path, _dir: dir })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes every free byte with one file; returns its path.
    pub fn fill(&self) -> PathBuf {
        let filler = self
            .path
            .join(format!("filler-{}", uuid::Uuid::new_v4().simple()));
        let mut f = std::fs::File::create(&filler).expect("create filler");
        let chunk = vec![0u8; 64 << 10];
        let mut small = false;
        loop {
            let buf = if small { &chunk[..512] } else { &chunk[..] };
            match f.write(buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull && !small => small = true,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", filler.display()),
            }
        }
        let _ = f.sync_all();
        assert_eq!(self.free_bytes(), 0, "the disk should be full now");
        filler
    }

    /// Gives the space of a filler back.
    pub fn free(&self, filler: &Path) {
        std::fs::remove_file(filler).expect("remove filler");
    }

    /// Bytes available, as `df` reports them.
    pub fn free_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.path)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df output")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a server still holding files there must not keep the mount alive.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

// ---------------------------------------------------------------------------------------------
// A PostgreSQL server of the test's own
// ---------------------------------------------------------------------------------------------

/// A PostgreSQL cluster in a temp dir on a free port, run as the `postgres` user when the
/// tests run as root (PostgreSQL refuses to run as root).
pub struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    _dir: tempfile::TempDir,
}

fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl OwnPostgres {
    /// Creates and starts the cluster; `None` (after printing why) when PostgreSQL's binaries
    /// are missing or cannot run here (a failure under `ARTSTORE_TEST_REQUIRE_ALL=1`).
    pub fn start() -> Option<OwnPostgres> {
        let pg = OwnPostgres::init()?;
        if let Err(e) = pg.try_start() {
            return skip(&format!("pg_ctl start failed: {e}"));
        }
        Some(pg)
    }

    /// Creates the cluster without starting it (`start_again` starts it): a database that is
    /// not up yet. `None` as for `start`.
    pub fn init() -> Option<OwnPostgres> {
        let Some(bin) = pg_bin() else {
            return skip("no initdb/pg_ctl under /usr/lib/postgresql/*/bin");
        };
        let run_as = if is_root() { Some("postgres") } else { None };
        let dir = tempfile::Builder::new()
            .prefix("artstore-own-pg-")
            .tempdir()
            .expect("tempdir");
        if let Some(user) = run_as {
            let ok = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return skip(&format!(
                    "cannot give {} to user {user}",
                    dir.path().display()
                ));
            }
        }
        let pg = OwnPostgres {
            bin,
            data: dir.path().join("pgdata"),
            port: free_port(),
            run_as,
            _dir: dir,
        };
        let out = pg
            .cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pg.data)
            .output()
            .expect("run initdb");
        if !out.status.success() {
            return skip(&format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Some(pg)
    }

    fn cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut c = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        c.stdin(Stdio::null());
        c
    }

    fn try_start(&self) -> Result<(), String> {
        let sock_dir = self
            .data
            .parent()
            .unwrap_or(&self.data)
            .display()
            .to_string();
        let opts = format!(
            "-p {} -k {sock_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.data.parent().unwrap_or(&self.data).join("server.log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        let st = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl stop");
        assert!(st.success(), "pg_ctl stop failed");
    }

    /// Starts it again on the same port and data.
    pub fn start_again(&self) {
        if let Err(e) = self.try_start() {
            panic!("pg_ctl start failed: {e}");
        }
    }

    /// The postmaster and its children (backends, background workers).
    fn pids(&self) -> Vec<u32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap_or_default();
        let Some(main) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut pids = vec![main];
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // `pid (comm) state ppid …`; comm may hold spaces, so split after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(main) {
                pids.push(pid);
            }
        }
        pids
    }

    fn signal(&self, sig: &str, pids: &[u32]) {
        for pid in pids {
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
        }
    }

    /// Freezes every process of the server (SIGSTOP): connections stay open and nothing
    /// answers, like a hung host.
    pub fn pause(&self) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "own PostgreSQL is not running");
        self.signal("STOP", &pids);
    }

    /// Undoes `pause` (SIGCONT).
    pub fn resume(&self) {
        let pids = self.pids();
        self.signal("CONT", &pids);
    }

    /// Runs a `SELECT COUNT(*) …` on its `postgres` database.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url())
            .await
            .expect("connect to own PostgreSQL");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut conn)
            .await
            .expect("count query");
        let _ = conn.close().await;
        n
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let pids = self.pids();
        self.signal("CONT", &pids);
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
