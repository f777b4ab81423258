//! Control data survives the loss of the index (issue 8, items 6 and 7): `artstore backup`
//! while the server writes, `artstore restore` and its refusals, and subcommands that refuse
//! to run on a store that does not exist instead of creating one.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};

#[track_caller]
fn cli_json(srv: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = srv.cli(args);
    assert!(ok, "artstore {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[track_caller]
fn cli_fails(srv: &Server, args: &[&str], needle: &str) {
    let (ok, out, err) = srv.cli(args);
    assert!(!ok, "artstore {args:?} should fail: {out}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

async fn admin_get(srv: &Server, path: &str) -> Value {
    let r = srv
        .http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(json!({"client_id": srv.access_key(), "client_secret": srv.secret_key()}).to_string())
        .send()
        .await
        .expect("token");
    let tok: Value = serde_json::from_str(&r.text().await.expect("body")).expect("json");
    let r = srv
        .http()
        .get(format!("{}{path}", srv.admin_url()))
        .bearer_auth(tok["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("admin get");
    assert_eq!(r.status().as_u16(), 200, "{path}");
    serde_json::from_str(&r.text().await.expect("body")).expect("json")
}

fn actions(audit: &Value) -> Vec<String> {
    audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect()
}

fn index_file(srv: &Server) -> std::path::PathBuf {
    srv.data_dir().join("artstore.db")
}

storage_test!(
    backup_while_writing_restores_control_data,
    |srv| async move {
        let mut srv = srv;
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("index.backup");
        let out_s = out.to_str().expect("utf-8").to_owned();
        if srv.db() == Db::Postgres {
            cli_fails(
                &srv,
                &["backup", "--out", &out_s],
                "artstore backup copies the SQLite index; back up and restore PostgreSQL with pg_dump / pg_restore",
            );
            cli_fails(
                &srv,
                &["restore", "--from", &out_s],
                "artstore restore puts back a SQLite index; back up and restore PostgreSQL with pg_dump",
            );
            assert!(!out.exists(), "nothing written");
            return;
        }

        // Control data of every kind: an account with a grant, a rotated key, audit events.
        let c = srv.client();
        create_bucket(&c, "books").await;
        let clerk = cli_json(&srv, &["account", "create", "clerk"]);
        let (cid, csecret) = (
            clerk["client_id"].as_str().expect("client_id").to_owned(),
            clerk["client_secret"].as_str().expect("secret").to_owned(),
        );
        let granted = cli_json(
            &srv,
            &["account", "grants", "clerk", "--grant", "books=write"],
        );
        assert_eq!(
            granted["grants"],
            json!([{"bucket": "books", "access": "write"}])
        );
        cli_json(&srv, &["keys", "rotate"]);
        let keys_before = admin_get(&srv, "/.well-known/jwks.json").await["keys"]
            .as_array()
            .map(Vec::len);
        assert_eq!(keys_before, Some(2));

        // A writer runs all through the backup.
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicUsize::new(0));
        put(&c, "books", "first", "before the backup").await;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let writer = {
            let (c, stop, written) = (c.clone(), stop.clone(), written.clone());
            tokio::spawn(async move {
                let mut started = Some(started_tx);
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    put(&c, "books", &format!("w/{i}"), "x").await;
                    written.fetch_add(1, Ordering::Relaxed);
                    if let Some(tx) = started.take() {
                        let _ = tx.send(());
                    }
                    i += 1;
                }
            })
        };
        // The writer is under way before the backup starts and stops only after it ends.
        started_rx.await.expect("writer started");
        let (ok, stdout, err) = {
            let srv_args = ["backup".to_owned(), "--out".to_owned(), out_s.clone()];
            let data_dir = srv.data_dir().to_owned();
            tokio::task::spawn_blocking(move || {
                let o = Command::new(artstore_bin())
                    .args(srv_args)
                    .arg("--data-dir")
                    .arg(&data_dir)
                    .env_remove("ARTSTORE_DATABASE_URL")
                    .env_remove("ARTSTORE_MASTER_KEY")
                    .env_remove("ARTSTORE_CONFIG")
                    .env("ARTSTORE_LOG_FORMAT", "json")
                    .output()
                    .expect("run backup");
                (
                    o.status.success(),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                )
            })
            .await
            .expect("join")
        };
        assert!(ok, "backup failed: {err}");
        let report: Value = serde_json::from_str(&stdout).expect("backup report");
        assert_eq!(report["backup"], out_s.as_str());
        assert!(report["bytes"].as_u64().is_some_and(|b| b > 0), "{report}");
        put(&c, "books", "after", "after the backup").await;
        stop.store(true, Ordering::Relaxed);
        writer.await.expect("writer");
        assert!(written.load(Ordering::Relaxed) > 0);

        // A backup never overwrites; a restore never replaces the index under a live server.
        let size = std::fs::metadata(&out).expect("backup file").len();
        cli_fails(
            &srv,
            &["backup", "--out", &out_s],
            "exists: a backup never overwrites a file, choose a new name",
        );
        assert_eq!(std::fs::metadata(&out).expect("backup file").len(), size);
        cli_fails(
            &srv,
            &["restore", "--from", &out_s, "--force"],
            "a server is running on",
        );
        assert_eq!(
            cli_json(&srv, &["account", "show", "clerk"])["name"],
            "clerk",
            "the live index is untouched"
        );

        // Lose the index file; rebuild says the control data is gone.
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        cli_fails(
            &srv,
            &["restore", "--from", &out_s],
            "exists: restoring replaces it; add --force to do so",
        );
        srv.delete_index().await;
        assert!(!index_file(&srv).exists());
        // Not a backup: refused, nothing put in place.
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"not a database at all").expect("junk");
        cli_fails(
            &srv,
            &["restore", "--from", junk.to_str().expect("utf-8")],
            "is not a usable ArtStore index",
        );
        assert!(
            !index_file(&srv).exists(),
            "a failed restore creates no index"
        );
        // A WAL the lost database left behind must not be replayed into the restored one.
        let stale_wal = srv.data_dir().join("artstore.db-wal");
        std::fs::write(&stale_wal, b"left over").expect("stale wal");
        let restored = cli_json(&srv, &["restore", "--from", &out_s]);
        let kept = restored["previous_index"].as_str().expect("previous_index");
        assert!(!stale_wal.exists(), "{restored}");
        assert_eq!(
            std::fs::read(format!("{kept}-wal")).expect("kept wal"),
            b"left over"
        );

        // The server starts on the restored index; everything the backup held is there.
        srv.restart().await;
        let accounts = admin_get(&srv, "/api/v1/service-accounts").await;
        let clerk_row = accounts["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|a| a["name"] == "clerk")
            .cloned()
            .expect("clerk restored");
        let shown = admin_get(
            &srv,
            &format!(
                "/api/v1/service-accounts/{}",
                clerk_row["id"].as_str().expect("id")
            ),
        )
        .await;
        assert_eq!(
            shown["grants"],
            json!([{"bucket": "books", "access": "write"}])
        );
        assert_eq!(
            admin_get(&srv, "/.well-known/jwks.json").await["keys"]
                .as_array()
                .map(Vec::len),
            keys_before
        );
        let audit = actions(&admin_get(&srv, "/api/v1/audit?limit=1000").await);
        for a in ["account.create", "account.grants", "keys.rotate"] {
            assert!(audit.iter().any(|x| x == a), "{a} in {audit:?}");
        }
        // The restored secret works, and the grant still binds it.
        let u = srv.client_with(&cid, &csecret);
        assert_eq!(get(&u, "books", "first").await, b"before the backup");
        // Objects written after the backup are on disk; start-up recovery indexed them.
        assert_eq!(
            get(&srv.client(), "books", "after").await,
            b"after the backup"
        );

        // --force keeps the index it replaces.
        srv.stop();
        let again = cli_json(&srv, &["restore", "--from", &out_s, "--force"]);
        let kept = again["previous_index"].as_str().expect("previous_index");
        assert!(
            kept.starts_with(index_file(&srv).to_str().expect("utf-8"))
                && kept.contains(".before-restore-")
                && Path::new(kept).is_file(),
            "{again}"
        );
        srv.restart().await;
        assert_eq!(
            get(&srv.client(), "books", "first").await,
            b"before the backup"
        );
    }
);

/// Runs `artstore <args> --data-dir <dir>` with nothing from the environment.
fn run_on(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(artstore_bin());
    cmd.args(args).arg("--data-dir").arg(dir);
    for k in [
        "ARTSTORE_DATABASE_URL",
        "ARTSTORE_MASTER_KEY",
        "ARTSTORE_CONFIG",
        "ARTSTORE_DATA_DIR",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("ARTSTORE_LOG_FORMAT", "json");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run artstore");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const MAINTENANCE: &[&[&str]] = &[
    &["account", "list"],
    &["account", "show", "admin"],
    &["account", "grants", "admin"],
    &["element", "list"],
    &["element", "delete", "books", "--confirm"],
    &["element", "update", "books", "--capacity", "10"],
    &["keys", "rotate"],
    &["index", "rebuild"],
    &["index", "verify"],
];

#[test]
fn subcommands_refuse_a_store_that_does_not_exist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("typo");
    let out = tmp.path().join("b.db");
    let backup: &[&str] = &["backup", "--out", out.to_str().expect("utf-8")];
    for args in MAINTENANCE.iter().copied().chain([backup]) {
        let (ok, err) = run_on(&missing, args, &[]);
        assert!(!ok, "{args:?} must fail");
        assert!(
            err.contains(&format!(
                "the data dir {} does not exist: point --data-dir (ARTSTORE_DATA_DIR) and --database-url (ARTSTORE_DATABASE_URL) at an existing store; only `artstore serve` and `artstore migrate` create one",
                missing.display()
            )),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created the data dir");
        assert!(!out.exists());
    }

    // The data dir exists, the index does not: nothing is created in it.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for args in MAINTENANCE {
        let (ok, err) = run_on(&empty, args, &[]);
        assert!(!ok, "{args:?} must fail");
        assert!(
            err.contains(&format!(
                "the index {} does not exist",
                empty.join("artstore.db").display()
            )) && err.contains("create an empty one with `artstore migrate` first"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(&empty).expect("ls").count(),
            0,
            "{args:?} left files behind"
        );
    }
    let (ok, err) = run_on(
        &empty,
        &["restore", "--from", "/nonexistent/backup.db"],
        &[],
    );
    assert!(
        !ok && err.contains("the backup /nonexistent/backup.db does not exist"),
        "{err}"
    );
    assert!(!empty.join("artstore.db").exists());

    // `migrate` creates the store; then the same commands work.
    let (ok, err) = run_on(&empty, &["migrate"], &[]);
    assert!(ok, "migrate: {err}");
    let (ok, err) = run_on(&empty, &["account", "list"], &[]);
    assert!(ok, "account list on a migrated store: {err}");
    // Without its master key the store's secrets cannot be read: refused, no new key made.
    std::fs::remove_file(empty.join("master.key")).expect("rm key");
    let (ok, err) = run_on(&empty, &["account", "list"], &[]);
    assert!(
        !ok && err.contains(&format!(
            "the master key {} does not exist and --master-key (ARTSTORE_MASTER_KEY) is not set",
            empty.join("master.key").display()
        )),
        "{err}"
    );
    assert!(!empty.join("master.key").exists());
}

#[tokio::test]
async fn a_postgres_database_without_the_schema_counts_as_missing() {
    if !db_available(Db::Postgres) {
        return;
    }
    let db = PgDatabase::create().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = "ab".repeat(32);
    let env: &[(&str, &str)] = &[
        ("ARTSTORE_DATABASE_URL", db.url.as_str()),
        ("ARTSTORE_MASTER_KEY", key.as_str()),
    ];
    for args in MAINTENANCE {
        let (ok, err) = run_on(tmp.path(), args, env);
        assert!(!ok, "{args:?} must fail");
        assert!(
            err.contains("holds no ArtStore index: point --data-dir (ARTSTORE_DATA_DIR) and --database-url (ARTSTORE_DATABASE_URL)"),
            "{args:?}: {err}"
        );
    }
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("count");
    assert_eq!(tables, 0, "nothing was created in the database");
    let (ok, err) = run_on(tmp.path(), &["migrate"], env);
    assert!(ok, "migrate: {err}");
    let (ok, err) = run_on(tmp.path(), &["account", "list"], env);
    assert!(ok, "account list after migrate: {err}");
}
