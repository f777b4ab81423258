//! Per-node caches of control data (elements, bucket policies, grants, accounts, signing keys)
//! invalidated through Redis pub/sub: a change made through one node, or through the CLI, holds
//! on every other node within 1 s (each propagation measured, p50/p99 printed); with Redis
//! stopped, changes still hold within a second (the nodes read the index's change counter per
//! request, and entries live 500 ms) and readiness says `degraded`; with Redis back, the
//! subscription resumes by itself.

mod common;
mod identity;

use std::time::{Duration, Instant};

use common::*;
use identity::*;
use serde_json::json;

/// One master key for every node and the CLI, so each can decrypt the secrets the others stored.
const MASTER_KEY: &str = "8f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// Every change must hold on the other nodes within this.
const BOUND: Duration = Duration::from_secs(1);
const ROUNDS: usize = 20;

async fn ready(srv: &Server) -> serde_json::Value {
    let r = srv
        .http()
        .get(format!("{}/health/ready", srv.admin_url()))
        .send()
        .await
        .expect("ready");
    serde_json::from_str(&r.text().await.expect("body")).expect("ready json")
}

/// Polls `holds` until it is true; the time it took, or a failure naming `what` after `BOUND`.
async fn within_bound<F, Fut>(what: &str, mut holds: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if holds().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < BOUND,
            "{what}: not enforced within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Propagation times of one kind of change.
#[derive(Default)]
struct Figures(Vec<Duration>);

impl Figures {
    fn report(&mut self, what: &str) {
        self.0.sort();
        let at = |q: f64| self.0[((self.0.len() - 1) as f64 * q).round() as usize];
        eprintln!(
            "propagation {what}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
            self.0.len(),
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            at(1.0).as_secs_f64() * 1e3,
        );
    }
}

async fn status_of(srv: &Server, method: Method, path: &str, ak: &str, sk: &str) -> u16 {
    let mut r = srv.raw(method.clone(), path).creds(ak, sk);
    if method == Method::PUT {
        r = r.body(b"x".to_vec());
    }
    r.send().await.status
}

/// The kid a node signs new tokens with: the first of its JWKS (newest first), which it
/// serves from its cache. (Polling the token endpoint itself would hit its per-client limit.)
async fn signing_kid(srv: &Server) -> String {
    let r = srv
        .http()
        .get(format!("{}/.well-known/jwks.json", srv.admin_url()))
        .send()
        .await
        .expect("jwks");
    let j: serde_json::Value = serde_json::from_str(&r.text().await.expect("body")).expect("json");
    j["keys"][0]["kid"].as_str().unwrap_or_default().to_owned()
}

fn deny_get_policy(bucket: &str, account_id: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Principal": {"AWS": [account_id]},
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        }]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_node_hold_on_the_others_within_a_second() {
    if !db_available(Db::Postgres) {
        return;
    }
    let Some(redis) = require_redis() else {
        return;
    };
    let nodes = cluster(MASTER_KEY, &redis, 3).await;
    let (a, others) = (&nodes[0], &nodes[1..]);
    for n in &nodes {
        let j = ready(n).await;
        assert_eq!(j["coordination"], "ok", "{j}");
    }
    let admin = admin_token(a).await;
    for name in ["shared", "other"] {
        call(
            a,
            Method::POST,
            "/api/v1/storage-elements",
            As::Bearer(&admin),
            Some(&json!({"name": name, "mode": "rw"}).to_string()),
        )
        .await
        .ok(201);
    }
    let svc = create_account(a, &admin, "svc-cache", "user").await;
    let (ak, sk) = (svc.client_id.as_str(), svc.secret.as_str());
    a.raw(Method::PUT, "/shared/doc")
        .body(b"v1".to_vec())
        .send()
        .await
        .assert_status(200);
    // Warm every node's cache with the rules as they are. (No shared disk: the other nodes
    // hold the object's index row, not its data, so the checks HEAD it.)
    for n in others {
        assert_eq!(status_of(n, Method::HEAD, "/shared/doc", ak, sk).await, 200);
    }

    // Mode: rw → ro refuses new keys everywhere; ro → rw (confirmed) allows them again.
    let mut mode = Figures::default();
    for round in 0..ROUNDS {
        let (to, confirm, want) = if round % 2 == 0 {
            ("ro", false, 403)
        } else {
            ("rw", true, 200)
        };
        call(
            a,
            Method::POST,
            "/api/v1/storage-elements/shared/mode",
            As::Bearer(&admin),
            Some(&json!({"mode": to, "reason": "cache test", "confirm": confirm}).to_string()),
        )
        .await
        .ok(200);
        for n in others {
            let path = format!("/shared/new-{round}-{}", n.s3_addr());
            mode.0.push(
                within_bound(&format!("mode {to}"), || async {
                    status_of(n, Method::PUT, &path, ak, sk).await == want
                })
                .await,
            );
        }
    }
    mode.report("mode change (admin API)");

    // Suspension: a suspended account is refused everywhere; activated, it is served again.
    let mut suspend = Figures::default();
    for round in 0..ROUNDS {
        let (action, want) = if round % 2 == 0 {
            ("suspend", 403)
        } else {
            ("activate", 200)
        };
        call(
            a,
            Method::POST,
            &format!("/api/v1/service-accounts/{}/{action}", svc.id),
            As::Bearer(&admin),
            None,
        )
        .await
        .ok(200);
        for n in others {
            suspend.0.push(
                within_bound(&format!("account {action}"), || async {
                    status_of(n, Method::HEAD, "/shared/doc", ak, sk).await == want
                })
                .await,
            );
        }
    }
    suspend.report("account suspension (admin API)");

    // Grants: granted only "other", the account loses "shared"; granted "shared", it has it.
    let mut grants = Figures::default();
    for round in 0..ROUNDS {
        let (bucket, want) = if round % 2 == 0 {
            ("other", 403)
        } else {
            ("shared", 200)
        };
        call(
            a,
            Method::PUT,
            &format!("/api/v1/service-accounts/{}/grants", svc.id),
            As::Bearer(&admin),
            Some(&json!({"grants": [{"bucket": bucket, "access": "read"}]}).to_string()),
        )
        .await
        .ok(200);
        for n in others {
            grants.0.push(
                within_bound(&format!("grant {bucket}"), || async {
                    status_of(n, Method::HEAD, "/shared/doc", ak, sk).await == want
                })
                .await,
            );
        }
    }
    grants.report("grant change (admin API)");

    // Bucket policy, set through node a's S3 endpoint: a Deny of GetObject, then removed.
    let mut policy = Figures::default();
    let doc = deny_get_policy("shared", &svc.id);
    for round in 0..ROUNDS {
        let want = if round % 2 == 0 {
            a.raw(Method::PUT, "/shared")
                .query("policy", "")
                .body(doc.clone().into_bytes())
                .send()
                .await
                .assert_status(204);
            403
        } else {
            a.raw(Method::DELETE, "/shared")
                .query("policy", "")
                .send()
                .await
                .assert_status(204);
            200
        };
        for n in others {
            policy.0.push(
                within_bound("bucket policy", || async {
                    status_of(n, Method::HEAD, "/shared/doc", ak, sk).await == want
                })
                .await,
            );
        }
    }
    policy.report("bucket policy change (S3 API)");

    // Signing key rotation: every node signs with the new key, and accepts tokens signed by it.
    let mut keys = Figures::default();
    for _ in 0..ROUNDS {
        let r = call(
            a,
            Method::POST,
            "/api/v1/keys/rotate",
            As::Bearer(&admin),
            None,
        )
        .await;
        let kid = r.ok(201)["kid"].as_str().expect("kid").to_owned();
        for n in others {
            keys.0
                .push(within_bound("key rotation", || async { signing_kid(n).await == kid }).await);
        }
        let fresh = admin_token(a).await;
        for n in others {
            let r = n
                .http()
                .head(format!("{}/shared/doc", n.s3_url()))
                .bearer_auth(&fresh)
                .send()
                .await
                .expect("bearer HEAD");
            assert_eq!(r.status().as_u16(), 200, "a token of the new key works");
        }
    }
    keys.report("signing key rotation (admin API)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_the_cli_hold_on_every_node_within_a_second() {
    if !db_available(Db::Postgres) {
        return;
    }
    let Some(redis) = require_redis() else {
        return;
    };
    let nodes = cluster(MASTER_KEY, &redis, 2).await;
    let admin = admin_token(&nodes[0]).await;
    call(
        &nodes[0],
        Method::POST,
        "/api/v1/storage-elements",
        As::Bearer(&admin),
        Some(&json!({"name": "clibucket", "mode": "rw"}).to_string()),
    )
    .await
    .ok(201);
    let svc = create_account(&nodes[0], &admin, "svc-cli", "user").await;
    let (ak, sk) = (svc.client_id.as_str(), svc.secret.as_str());
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--master-key", MASTER_KEY, "--redis-url", redis.as_str()]);
        let (ok, out, err) = nodes[0].cli(&all);
        assert!(ok, "artstore {args:?}: {err}");
        out
    };
    for n in &nodes {
        assert_eq!(status_of(n, Method::GET, "/clibucket", ak, sk).await, 200);
    }

    let mut mode = Figures::default();
    let mut suspend = Figures::default();
    let mut keys = Figures::default();
    for round in 0..ROUNDS {
        let (to, want) = if round % 2 == 0 {
            ("ro", 403)
        } else {
            ("rw", 200)
        };
        let mut args = vec!["element", "mode", "clibucket", to];
        if to == "rw" {
            args.push("--confirm");
        }
        cli(&args);
        for n in &nodes {
            let path = format!("/clibucket/k-{round}-{}", n.s3_addr());
            // As the admin: the service account is suspended in every other round.
            mode.0.push(
                within_bound(&format!("CLI mode {to}"), || async {
                    status_of(n, Method::PUT, &path, ROOT_ACCESS_KEY, ROOT_SECRET_KEY).await == want
                })
                .await,
            );
        }

        let (action, want) = if round % 2 == 0 {
            ("suspend", 403)
        } else {
            ("activate", 200)
        };
        cli(&["account", action, &svc.id]);
        for n in &nodes {
            suspend.0.push(
                within_bound(&format!("CLI account {action}"), || async {
                    status_of(n, Method::GET, "/clibucket", ak, sk).await == want
                })
                .await,
            );
        }

        let out = cli(&["keys", "rotate"]);
        let kid = serde_json::from_str::<serde_json::Value>(&out).expect("keys rotate JSON")["kid"]
            .as_str()
            .expect("kid")
            .to_owned();
        for n in &nodes {
            keys.0.push(
                within_bound("CLI key rotation", || async { signing_kid(n).await == kid }).await,
            );
        }
    }
    mode.report("mode change (CLI)");
    suspend.report("account suspension (CLI)");
    keys.report("signing key rotation (CLI)");
}

/// A redis-server of this test's own on a free port, stopped and started at will.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start() -> Option<OwnRedis> {
        if !require_tool("redis-server") {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let mut r = OwnRedis {
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
        };
        r.up();
        Some(r)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn up(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.down();
    }
}

async fn coordination(srv: &Server) -> (String, String) {
    let j = ready(srv).await;
    (
        j["status"].as_str().unwrap_or_default().to_owned(),
        j["coordination"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Six rounds of suspending and re-activating account `id` through node `a`, each timed until
/// node `b` enforces it (`when` names the circumstances in failures).
async fn suspension_rounds(
    a: &Server,
    b: &Server,
    admin: &str,
    id: &str,
    (ak, sk): (&str, &str),
    when: &str,
) -> Figures {
    let mut figures = Figures::default();
    for round in 0..6 {
        let (action, want) = if round % 2 == 0 {
            ("suspend", 403)
        } else {
            ("activate", 200)
        };
        call(
            a,
            Method::POST,
            &format!("/api/v1/service-accounts/{id}/{action}"),
            As::Bearer(admin),
            None,
        )
        .await
        .ok(200);
        figures.0.push(
            within_bound(&format!("{action} {when}"), || async {
                status_of(b, Method::GET, "/outage", ak, sk).await == want
            })
            .await,
        );
    }
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_to_the_index_and_resumes_by_itself() {
    if !db_available(Db::Postgres) {
        return;
    }
    let Some(mut redis) = OwnRedis::start() else {
        return;
    };
    let nodes = cluster(MASTER_KEY, &redis.url(), 2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let admin = admin_token(a).await;
    call(
        a,
        Method::POST,
        "/api/v1/storage-elements",
        As::Bearer(&admin),
        Some(&json!({"name": "outage", "mode": "rw"}).to_string()),
    )
    .await
    .ok(201);
    let svc = create_account(a, &admin, "svc-outage", "user").await;
    let (ak, sk) = (svc.client_id.as_str(), svc.secret.as_str());
    assert_eq!(status_of(b, Method::GET, "/outage", ak, sk).await, 200);
    assert_eq!(coordination(b).await.1, "ok");

    redis.down();
    for n in &nodes {
        within_bound("readiness reports the lost subscription", || async {
            coordination(n).await == ("degraded".to_owned(), "down".to_owned())
        })
        .await;
    }
    // Changes still hold on the other node within a second: it reads the change counter per
    // request while its subscription is down.
    let mut fallback =
        suspension_rounds(a, b, &admin, &svc.id, (ak, sk), "while Redis is down").await;
    fallback.report("account suspension, Redis down (change counter fallback)");
    assert!(
        b.logs().contains("cache invalidations from Redis lost"),
        "the fallback is logged"
    );

    // Redis back: both nodes subscribe again without a restart and changes are pushed again.
    redis.up();
    let resumed = Duration::from_secs(10);
    let start = Instant::now();
    loop {
        let mut all = true;
        for n in &nodes {
            all &= coordination(n).await == ("ready".to_owned(), "ok".to_owned());
        }
        if all {
            break;
        }
        assert!(start.elapsed() < resumed, "the subscription did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut pushed =
        suspension_rounds(a, b, &admin, &svc.id, (ak, sk), "after Redis is back").await;
    pushed.report("account suspension, Redis back (pub/sub)");
}

/// The cached usage of an element can be older than its objects: a PUT that fits the quota
/// now is not refused because of bytes that were deleted since the entry was loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_precheck_does_not_refuse_on_stale_cached_usage() {
    if !db_available(Db::Postgres) {
        return;
    }
    let Some(redis) = require_redis() else {
        return;
    };
    let nodes = cluster(MASTER_KEY, &redis, 1).await;
    let a = &nodes[0];
    let admin = admin_token(a).await;
    call(
        a,
        Method::POST,
        "/api/v1/storage-elements",
        As::Bearer(&admin),
        Some(&json!({"name": "quota", "mode": "edit", "capacity_bytes": 10}).to_string()),
    )
    .await
    .ok(201);
    a.raw(Method::PUT, "/quota/a")
        .body(vec![b'a'; 8])
        .send()
        .await
        .assert_status(200);
    // Reload the entry while 8 of the 10 bytes are used (a change invalidates it; HEAD loads it).
    call(
        a,
        Method::PATCH,
        "/api/v1/storage-elements/quota",
        As::Bearer(&admin),
        Some(&json!({"description": "reload"}).to_string()),
    )
    .await
    .ok(200);
    a.raw(Method::HEAD, "/quota")
        .send()
        .await
        .assert_status(200);
    a.raw(Method::DELETE, "/quota/a")
        .send()
        .await
        .assert_status(204);
    // 8 bytes fit now (0 used); the cached entry still says 8 used.
    a.raw(Method::PUT, "/quota/b")
        .body(vec![b'b'; 8])
        .send()
        .await
        .assert_status(200);
    // And a write that does not fit is still refused.
    let r = a
        .raw(Method::PUT, "/quota/c")
        .body(vec![b'c'; 8])
        .send()
        .await;
    r.assert_error(507, "QuotaExceeded");
}
