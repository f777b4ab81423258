//! A lost database is a fast, clear 503: while the PostgreSQL index is stopped or hangs, S3
//! requests answer `503 ServiceUnavailable` with `Retry-After` within the configured database
//! timeout, `/health/ready` within a second, the token endpoint `503 unavailable`; audit events
//! are spooled to disk and written once the database is back; nothing acknowledged is lost and
//! service resumes without a restart. Each test runs a PostgreSQL server of its own (never the
//! shared one), see `common::faults::OwnPostgres`.

mod common;

use std::time::{Duration, Instant};

use common::faults::OwnPostgres;
use common::*;
use serde_json::{Value, json};

/// The deadlines below are contracts ("answers within the configured timeout"), checked with a
/// generous margin so that a slow machine cannot make them flaky; they are not performance
/// assertions.
const MARGIN: Duration = Duration::from_secs(1);

async fn put(srv: &Server, bucket: &str, key: &str, data: &[u8]) -> RawResponse {
    srv.raw(Method::PUT, &key_path(bucket, key))
        .body(data.to_vec())
        .send()
        .await
}

async fn token_request(srv: &Server) -> reqwest::Response {
    srv.http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(json!({"client_id": srv.access_key(), "client_secret": srv.secret_key()}).to_string())
        .send()
        .await
        .expect("token request")
}

async fn json_body(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("JSON body")
}

/// `name value` of an OpenMetrics sample without labels.
async fn metric(srv: &Server, name: &str) -> Option<u64> {
    let text = srv
        .http()
        .get(format!("{}/metrics", srv.admin_url()))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Answers 503 ServiceUnavailable with Retry-After, before `bound`.
#[track_caller]
fn assert_unavailable(r: &RawResponse, took: Duration, bound: Duration, what: &str) {
    r.assert_error(503, "ServiceUnavailable");
    assert!(
        r.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "{what}: Retry-After missing: {:?}",
        r.headers
    );
    assert!(took < bound, "{what} took {took:?}, more than {bound:?}");
}

/// Runs one outage: `fail` takes the database away, `heal` brings it back.
async fn outage(
    pg: &OwnPostgres,
    timeout: Duration,
    fail: impl FnOnce(&OwnPostgres),
    heal: impl FnOnce(&OwnPostgres),
) {
    let mut builder = Server::builder().env("ARTSTORE_DATABASE_URL", pg.url());
    if timeout != artstore_metadata::DEFAULT_DB_TIMEOUT {
        builder = builder.env(
            "ARTSTORE_DATABASE_TIMEOUT_MS",
            timeout.as_millis().to_string(),
        );
    }
    // `Db::Sqlite` only tells the harness not to make a database on the shared PostgreSQL:
    // ARTSTORE_DATABASE_URL points the server at the test's own one.
    let srv = builder.start(Db::Sqlite).await;
    let pid = srv.pid();
    let bucket = "outage";
    srv.raw(Method::PUT, &format!("/{bucket}"))
        .send()
        .await
        .assert_status(200);
    let mut acked = Vec::new();
    for i in 0..5 {
        let (key, data) = (
            format!("before-{i}"),
            format!("acknowledged {i}").into_bytes(),
        );
        put(&srv, bucket, &key, &data).await.assert_status(200);
        acked.push((key, data));
    }
    let audit_before = pg.count("SELECT COUNT(*) FROM audit_events").await;

    fail(pg);
    // Let the account cache (500 ms) expire, so authentication needs the index too.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let bound = timeout + MARGIN;
    let t = Instant::now();
    let r = srv
        .raw(Method::GET, &key_path(bucket, "before-0"))
        .send()
        .await;
    assert_unavailable(&r, t.elapsed(), bound, "GET");
    let t = Instant::now();
    let r = put(&srv, bucket, "during", b"never acknowledged").await;
    assert_unavailable(&r, t.elapsed(), bound, "PUT");
    let t = Instant::now();
    let r = srv
        .raw(Method::GET, &format!("/{bucket}"))
        .query("list-type", "2")
        .send()
        .await;
    assert_unavailable(&r, t.elapsed(), bound, "LIST");

    // Readiness is bounded by itself: about a second, whatever the database does.
    let t = Instant::now();
    let r = srv
        .http()
        .get(format!("{}/health/ready", srv.admin_url()))
        .send()
        .await
        .expect("ready");
    let took = t.elapsed();
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = json_body(r).await;
    assert_eq!(
        (v["status"].as_str(), v["index"]["status"].as_str()),
        (Some("unavailable"), Some("down")),
        "{v}"
    );
    assert!(v["index"]["error"].as_str().is_some(), "{v}");
    assert!(
        took < Duration::from_secs(1) + MARGIN,
        "/health/ready took {took:?}"
    );

    // The token endpoint: 503, not 500. Each refusal is an audit event the index cannot take.
    let refusals = 3;
    for _ in 0..refusals {
        let r = token_request(&srv).await;
        assert_eq!(r.status().as_u16(), 503);
        assert!(r.headers().get("retry-after").is_some());
        let v: Value = json_body(r).await;
        assert_eq!(v["error"], "unavailable", "{v}");
    }
    let spooled = metric(&srv, "artstore_audit_spooled_total")
        .await
        .expect("spool metric");
    assert!(spooled >= refusals, "{spooled} audit events spooled");
    assert!(metric(&srv, "artstore_audit_spool_pending").await >= Some(refusals));

    heal(pg);
    // The same process serves again; the spool drains by itself.
    let ready = wait_until_async(Duration::from_secs(30), || async {
        srv.http()
            .get(format!("{}/health/ready", srv.admin_url()))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    assert!(ready, "not ready again after the database came back");
    let drained = wait_until_async(Duration::from_secs(30), || async {
        metric(&srv, "artstore_audit_spool_pending").await == Some(0)
    })
    .await;
    assert!(drained, "spooled audit events were not replayed");
    assert!(metric(&srv, "artstore_audit_replayed_total").await >= Some(refusals));
    let replayed = pg
        .count(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'token.issue' AND detail = 'HTTP 503 unavailable'",
        )
        .await;
    assert_eq!(replayed, i64::try_from(refusals).unwrap());
    assert!(pg.count("SELECT COUNT(*) FROM audit_events").await >= audit_before + 3);

    for (key, data) in &acked {
        let r = srv.raw(Method::GET, &key_path(bucket, key)).send().await;
        r.assert_status(200);
        assert_eq!(&r.body, data, "{key}");
    }
    srv.raw(Method::HEAD, &key_path(bucket, "during"))
        .send()
        .await
        .assert_status(404);
    put(&srv, bucket, "after", b"after the outage")
        .await
        .assert_status(200);
    assert_eq!(token_request(&srv).await.status().as_u16(), 200);
    assert_eq!(srv.pid(), pid, "served without a restart");
    srv.assert_no_temp_files(bucket);
}

/// Polls an async condition every 100 ms until it holds or `timeout` passes.
async fn wait_until_async<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped() {
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    // The default timeout (2 s).
    outage(
        &pg,
        artstore_metadata::DEFAULT_DB_TIMEOUT,
        |pg| pg.stop(),
        |pg| pg.start_again(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hangs() {
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    // A configured timeout: SIGSTOP keeps every connection open and silent.
    outage(
        &pg,
        Duration::from_millis(1000),
        |pg| pg.pause(),
        |pg| pg.resume(),
    )
    .await;
}
