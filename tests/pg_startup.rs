//! PostgreSQL in production shape: start-up waits (with backoff) for a database that is not up
//! yet and gives up at once on errors waiting cannot cure; several nodes starting at the same
//! moment on one empty database make one admin account and one signing key between them; a
//! statement stuck behind a lock ends with `503 ServiceUnavailable` at the statement timeout,
//! not a hung request, and loses nothing; the pool opens no more connections than configured.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::faults::OwnPostgres;
use common::*;
use serde_json::Value;

/// One master key for every node, so each can read the secrets the others stored.
const MASTER_KEY: &str = "5d1e3c2b4a5968778695a4b3c2d1e0f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Deadlines below are contracts, checked with a margin a slow machine cannot break.
const MARGIN: Duration = Duration::from_secs(1);

async fn ready(srv: &Server) -> (u16, Value) {
    let r = srv
        .http()
        .get(format!("{}/health/ready", srv.admin_url()))
        .send()
        .await
        .expect("ready");
    let status = r.status().as_u16();
    let text = r.text().await.expect("ready body");
    (status, serde_json::from_str(&text).expect("ready json"))
}

async fn put(srv: &Server, bucket: &str, key: &str, data: &[u8]) -> RawResponse {
    srv.raw(Method::PUT, &key_path(bucket, key))
        .body(data.to_vec())
        .send()
        .await
}

/// `artstore migrate` on a fresh data dir against `url`: (success, stderr, how long it took).
fn migrate(url: &str, wait: &str) -> (bool, String, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let out = Command::new(artstore_bin())
        .arg("migrate")
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("ARTSTORE_CONFIG")
        .env("ARTSTORE_DATABASE_URL", url)
        .env("ARTSTORE_DATABASE_STARTUP_WAIT", wait)
        .env("ARTSTORE_LOG_FORMAT", "json")
        .current_dir(dir.path())
        .output()
        .expect("run artstore migrate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        t.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_waits_for_a_database_that_starts_later() {
    let Some(pg) = OwnPostgres::init() else {
        return;
    };
    let builder = Server::builder()
        .env("ARTSTORE_DATABASE_URL", pg.url())
        .env("ARTSTORE_DATABASE_STARTUP_WAIT", "60s");
    // `Db::Sqlite` only keeps the harness off the shared PostgreSQL: the URL above wins.
    let (srv, ()) = tokio::join!(builder.start(Db::Sqlite), async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        tokio::task::block_in_place(|| pg.start_again());
    });

    let logs = srv.logs();
    let retries: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("does not answer yet"))
        })
        .collect();
    assert!(retries.len() >= 2, "retries are logged:\n{logs}");
    for r in &retries {
        assert_eq!(r["level"], "WARN", "{r}");
        assert!(
            r["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
            "the retry names the error: {r}"
        );
    }
    // Backoff: the pauses grow.
    let pauses: Vec<u64> = retries
        .iter()
        .filter_map(|r| r["fields"]["retry_in_ms"].as_u64())
        .collect();
    assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
    assert!(pauses.first() < pauses.last(), "{pauses:?}");

    let (st, j) = ready(&srv).await;
    assert_eq!((st, j["status"].as_str()), (200, Some("ready")), "{j}");
    srv.raw(Method::PUT, "/late")
        .send()
        .await
        .assert_status(200);
    put(&srv, "late", "doc", b"served after the wait")
        .await
        .assert_status(200);
    let r = srv.raw(Method::GET, &key_path("late", "doc")).send().await;
    r.assert_status(200);
    assert_eq!(r.body, b"served after the wait");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_gives_up_after_the_wait_and_at_once_on_lasting_errors() {
    let Some(pg) = OwnPostgres::init() else {
        return;
    };
    // Never started: refused until the wait is over, then an error naming the wait.
    let (ok, err, took) = migrate(&pg.url(), "2s");
    assert!(!ok, "{err}");
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    assert!(took < Duration::from_secs(2) + 2 * MARGIN, "took {took:?}");
    assert!(err.contains("waited up to 2s"), "{err}");

    // Up, but no such database: waiting cannot cure it, so no wait.
    pg.start_again();
    let url = url_with_database(&pg.url(), "no_such_database");
    let (ok, err, took) = migrate(&url, "60s");
    assert!(!ok, "{err}");
    assert!(err.contains("no_such_database"), "{err}");
    assert!(!err.contains("does not answer yet"), "no retry: {err}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // And the database itself works.
    let (ok, err, _) = migrate(&pg.url(), "0");
    assert!(ok, "{err}");
}

/// `SELECT COUNT(*) …` on the database at `url`.
async fn count(url: &str, sql: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to the test database");
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let _ = conn.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_at_once_on_an_empty_database_bootstrap_once() {
    if !db_available(Db::Postgres) {
        return;
    }
    const NODES: usize = 4;
    for round in 0..3 {
        let db = PgDatabase::create().await;
        let nodes = futures::future::join_all((0..NODES).map(|_| {
            Server::builder()
                .env("ARTSTORE_DATABASE_URL", &db.url)
                .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
                .start(Db::Sqlite)
        }))
        .await;

        for node in &nodes {
            let (st, j) = ready(node).await;
            assert_eq!((st, j["status"].as_str()), (200, Some("ready")), "{j}");
        }
        let admins = count(
            &db.url,
            "SELECT COUNT(*) FROM service_accounts WHERE is_system = 1",
        )
        .await;
        assert_eq!(admins, 1, "round {round}: one initial admin account");
        assert_eq!(
            count(&db.url, "SELECT COUNT(*) FROM service_accounts").await,
            1
        );
        let keys = count(&db.url, "SELECT COUNT(*) FROM signing_keys").await;
        assert_eq!(keys, 1, "round {round}: one signing key");
        assert_eq!(
            count(
                &db.url,
                "SELECT COUNT(*) FROM settings WHERE name = 'deployment_id'"
            )
            .await,
            1
        );

        // Every node takes the same credentials, and the tokens of each.
        for (i, node) in nodes.iter().enumerate() {
            node.raw(Method::GET, "/").send().await.assert_status(200);
            let token = node.root_token().await;
            let other = &nodes[(i + 1) % NODES];
            let r = other
                .http()
                .get(format!("{}/api/v1/service-accounts", other.admin_url()))
                .bearer_auth(&token)
                .send()
                .await
                .expect("accounts request");
            assert_eq!(r.status().as_u16(), 200, "round {round}: node {i}'s token");
        }
        drop(nodes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_stuck_behind_a_lock_ends_at_the_statement_timeout() {
    if !db_available(Db::Postgres) {
        return;
    }
    let limit = Duration::from_secs(1);
    let srv = Server::builder()
        .env("ARTSTORE_DATABASE_STATEMENT_TIMEOUT", "1s")
        .start(Db::Postgres)
        .await;
    let url = srv.database_url().expect("PostgreSQL");
    srv.raw(Method::PUT, "/locked")
        .send()
        .await
        .assert_status(200);
    put(&srv, "locked", "doc", b"version 1")
        .await
        .assert_status(200);

    // Another session holds the key's write lock (the one every writer of the key takes).
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind("locked/doc")
        .execute(&mut holder)
        .await
        .expect("take the lock");

    let t = Instant::now();
    let r = put(&srv, "locked", "doc", b"version 2").await;
    let took = t.elapsed();
    r.assert_error(503, "ServiceUnavailable");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert!(took >= limit, "answered before the timeout: {took:?}");
    assert!(took < limit + MARGIN, "took {took:?}");
    let r = srv
        .raw(Method::GET, &key_path("locked", "doc"))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body, b"version 1", "nothing lost, nothing half-written");

    sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind("locked/doc")
        .execute(&mut holder)
        .await
        .expect("release the lock");
    let _ = holder.close().await;
    put(&srv, "locked", "doc", b"version 3")
        .await
        .assert_status(200);
    let r = srv
        .raw(Method::GET, &key_path("locked", "doc"))
        .send()
        .await;
    assert_eq!(r.body, b"version 3");
    srv.assert_no_temp_files("locked");
    let on_disk: Vec<_> = srv
        .objects_on_disk("locked")
        .into_iter()
        .filter(|o| o.str_field("key").as_deref() == Some("doc"))
        .collect();
    assert_eq!(on_disk.len(), 1, "the refused write left no data behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_never_opens_more_than_its_size() {
    if !db_available(Db::Postgres) {
        return;
    }
    let size = 3;
    let srv = Server::builder()
        .env("ARTSTORE_DATABASE_POOL_SIZE", size.to_string())
        .start(Db::Postgres)
        .await;
    let url = srv.database_url().expect("PostgreSQL");
    srv.raw(Method::PUT, "/pool")
        .send()
        .await
        .assert_status(200);
    // Many writers at once wait for one of the few connections instead of opening more.
    let puts = futures::future::join_all((0..24).map(|i| {
        let srv = &srv;
        async move { put(srv, "pool", &format!("k{i}"), b"queued for a connection").await }
    }))
    .await;
    for r in &puts {
        r.assert_status(200);
    }
    let open = count(
        &url,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    assert!(
        (1..=size).contains(&open),
        "{open} connections open, at most {size} configured"
    );
}
