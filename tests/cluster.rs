//! The distributed setup (DESIGN.md §7): nodes sharing one PostgreSQL and one Redis count rate
//! limits together and see each other's suspensions and mode changes within 1 s; readiness
//! reports Redis, and a node without it keeps serving with per-node limits.

mod common;
mod identity;

use std::time::Duration;

use common::*;
use identity::*;
use serde_json::json;

/// One master key for every node, so each can decrypt the secrets the others stored.
const MASTER_KEY: &str = "8f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

async fn ready(srv: &Server) -> (u16, serde_json::Value) {
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

async fn list_status(srv: &Server, ak: &str, sk: &str, bucket: &str) -> u16 {
    srv.raw(Method::GET, &format!("/{bucket}"))
        .creds(ak, sk)
        .send()
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_limits_suspensions_and_modes() {
    if !db_available(Db::Postgres) {
        return;
    }
    let Some(redis) = require_redis() else {
        return;
    };
    let a = Server::builder()
        .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
        .start(Db::Postgres)
        .await;
    let url = a.database_url().expect("node a uses PostgreSQL");
    // Node b: same database and Redis, its own process and ports.
    let b = Server::builder()
        .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
        .env("ARTSTORE_DATABASE_URL", &url)
        .env("ARTSTORE_REDIS_URL", &redis)
        .start(Db::Sqlite)
        .await;
    for node in [&a, &b] {
        let (st, j) = ready(node).await;
        assert_eq!((st, &j["redis"]["status"]), (200, &json!("ok")), "{j}");
    }

    let admin = admin_token(&a).await;
    call(
        &a,
        Method::POST,
        "/api/v1/storage-elements",
        As::Bearer(&admin),
        Some(&json!({"name": "shared", "mode": "rw"}).to_string()),
    )
    .await
    .ok(201);
    let limited = create_account_from(
        &a,
        &admin,
        &json!({"name": "svc-both", "role": "user", "rate_limit": 6}),
    )
    .await;
    let (ak, sk) = (limited.client_id, limited.secret);

    // 6 requests/minute for the whole cluster: 3 on each node, then both refuse.
    for node in [&a, &b, &a, &b, &a, &b] {
        assert_eq!(list_status(node, &ak, &sk, "shared").await, 200);
    }
    for node in [&a, &b] {
        node.raw(Method::GET, "/shared")
            .creds(&ak, &sk)
            .send()
            .await
            .assert_error(503, "SlowDown");
    }

    // A suspension made through node a is refused by node b within 1 s (tokens too).
    let other = create_account(&a, &admin, "svc-other", "user").await;
    let t = token(&b, &other.client_id, &other.secret).await;
    assert_eq!(
        list_status(&b, &other.client_id, &other.secret, "shared").await,
        200
    );
    call(
        &a,
        Method::POST,
        &format!("/api/v1/service-accounts/{}/suspend", other.id),
        As::Bearer(&admin),
        None,
    )
    .await
    .ok(200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    b.raw(Method::GET, "/shared")
        .creds(&other.client_id, &other.secret)
        .send()
        .await
        .assert_error(403, "AccessDenied");
    let r = b
        .http()
        .get(format!("{}/shared", b.s3_url()))
        .bearer_auth(&t)
        .send()
        .await
        .expect("bearer request");
    assert_eq!(r.status().as_u16(), 403);

    // A mode change made through node b holds on node a within 1 s.
    let c = a.client();
    put(&c, "shared", "doc", "v1").await;
    call(
        &b,
        Method::POST,
        "/api/v1/storage-elements/shared/mode",
        As::Bearer(&admin),
        Some(&json!({"mode": "ro", "reason": "cluster test"}).to_string()),
    )
    .await
    .ok(200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let err = c
        .put_object()
        .bucket("shared")
        .key("new")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect_err("ro refuses new keys");
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));
    assert_eq!(get(&c, "shared", "doc").await, b"v1");
}

storage_test!(
    readiness_reports_redis_and_limits_degrade_per_node,
    |srv| async move {
        // Without Redis configured (SQLite variant) or with it (PostgreSQL variant, when set).
        let (st, j) = ready(&srv).await;
        assert_eq!((st, j["status"].as_str()), (200, Some("ready")), "{j}");
        assert_eq!(j["index"]["status"], "ok", "{j}");
        let kind = if srv.database_url().is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        assert_eq!(j["index"]["kind"], kind, "{j}");
        assert!(j["index"]["latency_ms"].as_f64().is_some(), "{j}");
        // The hook for remote backends: none yet.
        assert_eq!(j["backends"], json!({}), "{j}");
        if srv.database_url().is_some() && test_redis_url().is_some() {
            assert_eq!(j["redis"]["status"], "ok", "{j}");
            assert!(j["redis"]["latency_ms"].as_f64().is_some(), "{j}");
        } else {
            assert!(j.get("redis").is_none(), "Redis not configured: {j}");
        }

        // Redis configured but not answering: the node serves, reports degraded and still limits.
        let down = Server::builder()
            .env("ARTSTORE_REDIS_URL", "redis://127.0.0.1:1/")
            .start(srv.db())
            .await;
        let (st, j) = ready(&down).await;
        assert_eq!(
            (st, j["status"].as_str(), j["redis"]["status"].as_str()),
            (200, Some("degraded"), Some("down")),
            "{j}"
        );
        assert!(j["redis"]["error"].as_str().is_some(), "{j}");
        assert_eq!(j["index"]["status"], "ok", "{j}");
        let admin = admin_token(&down).await;
        down.raw(Method::PUT, "/lim")
            .send()
            .await
            .assert_status(200);
        let limited = create_account_from(
            &down,
            &admin,
            &json!({"name": "svc-lim", "role": "user", "rate_limit": 2}),
        )
        .await;
        let (ak, sk) = (limited.client_id, limited.secret);
        for _ in 0..2 {
            assert_eq!(list_status(&down, &ak, &sk, "lim").await, 200);
        }
        down.raw(Method::GET, "/lim")
            .creds(&ak, &sk)
            .send()
            .await
            .assert_error(503, "SlowDown");
        assert!(
            down.logs().contains("rate limits count in process"),
            "the fallback is logged"
        );
    }
);

#[test]
fn invalid_redis_url_fails_start_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(artstore_bin())
        .args([
            "serve",
            "--s3-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("ARTSTORE_REDIS_URL", "http://not-redis")
        .env("ARTSTORE_LOG_FORMAT", "json")
        .env_remove("ARTSTORE_DATABASE_URL")
        .output()
        .expect("run artstore");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ARTSTORE_REDIS_URL"), "{err}");
}
