//! A cluster with no shared disk: three `artstore serve` nodes on one PostgreSQL and one Redis,
//! the storage element on a remote S3 service (a `moto_server` of the test's own). An object
//! written through one node is read and listed through the others at once, a multipart
//! upload whose parts go to different nodes completes, and a node killed with SIGKILL in the
//! middle of uploads loses nothing it acknowledged while the others keep serving.

mod common;

use std::sync::{Arc, Mutex};

use common::moto::{Moto, remote_keys};
use common::*;
use serde_json::json;

const MASTER_KEY: &str = "2f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f9";

/// The body written under `key`, so any read can be checked against its key alone.
fn body_of(key: &str, len: usize) -> Vec<u8> {
    key.bytes().cycle().take(len).collect()
}

async fn get(c: &aws_sdk_s3::Client, key: &str) -> Option<Vec<u8>> {
    let o = c.get_object().bucket("shared").key(key).send().await.ok()?;
    Some(o.body.collect().await.ok()?.into_bytes().to_vec())
}

async fn list(c: &aws_sdk_s3::Client) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2()
            .bucket("shared")
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_without_a_shared_disk() {
    if !db_available(Db::Postgres) {
        return;
    }
    let Some(redis) = require_redis() else {
        return;
    };
    let Some(moto) = Moto::start().await else {
        return;
    };
    moto.client()
        .create_bucket()
        .bucket("cluster")
        .send()
        .await
        .expect("remote bucket");
    let mut nodes = cluster(MASTER_KEY, &redis, 3).await;
    let r = nodes[0]
        .http()
        .post(format!("{}/api/v1/storage-elements", nodes[0].admin_url()))
        .bearer_auth(nodes[0].root_token().await)
        .header("content-type", "application/json")
        .body(
            json!({"name": "shared", "mode": "edit", "backend": {
                "kind": "s3", "endpoint": moto.endpoint(), "bucket": "cluster",
                "prefix": "shared/", "access_key_id": "testing", "secret_access_key": "testing"}})
            .to_string(),
        )
        .send()
        .await
        .expect("create element");
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let clients: Vec<_> = nodes.iter().map(Server::client).collect();

    // Written through one node, read and listed through every other at once.
    for (i, writer) in clients.iter().enumerate() {
        let key = format!("from-node-{i}.txt");
        writer
            .put_object()
            .bucket("shared")
            .key(&key)
            .body(body_of(&key, 3_000).into())
            .send()
            .await
            .expect("PUT");
        for reader in &clients {
            assert_eq!(get(reader, &key).await, Some(body_of(&key, 3_000)), "{key}");
            assert!(list(reader).await.contains(&key), "{key} listed");
        }
    }

    // One multipart upload, its parts through different nodes.
    let id = create_upload(&clients[1], "shared", "spread.bin").await;
    let p1 = body_of("part-one", 5 << 20);
    let p2 = body_of("part-two", 100_000);
    let parts = vec![
        (
            1,
            upload_part(&clients[2], "shared", "spread.bin", &id, 1, &p1).await,
        ),
        (
            2,
            upload_part(&clients[0], "shared", "spread.bin", &id, 2, &p2).await,
        ),
    ];
    // Completed on a third node.
    complete_upload(&clients[1], "shared", "spread.bin", &id, &parts).await;
    assert_eq!(
        get(&clients[2], "spread.bin").await,
        Some([p1, p2].concat())
    );

    // Writers through every node; node 2 is killed with SIGKILL while they run.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for (w, c) in clients.iter().enumerate() {
        for t in 0..2 {
            let (c, acked) = (c.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                for i in 0..25 {
                    let key = format!("load/n{w}-t{t}-{i:02}.bin");
                    let len = if i % 5 == 0 { 9 << 20 } else { 40_000 };
                    let sent = c
                        .put_object()
                        .bucket("shared")
                        .key(&key)
                        .body(body_of(&key, len).into())
                        .send()
                        .await;
                    if sent.is_ok() {
                        acked.lock().expect("acked").push(key);
                    }
                }
            }));
        }
    }
    loop {
        let by_victim = acked
            .lock()
            .expect("acked")
            .iter()
            .filter(|k| k.starts_with("load/n2-"))
            .count();
        if by_victim >= 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    nodes[2].kill9();
    for w in writers {
        w.await.expect("writer task");
    }
    let acked = acked.lock().expect("acked").clone();
    let survivors = acked.iter().filter(|k| !k.starts_with("load/n2-")).count();
    assert_eq!(
        survivors,
        2 * 2 * 25,
        "writes through the live nodes all succeeded"
    );

    // Every acknowledged write reads back whole through the survivors; every listed object
    // is whole (no index row without its data, no partial object).
    for reader in &clients[..2] {
        let listed = list(reader).await;
        for key in &acked {
            assert!(listed.contains(key), "acknowledged {key} not listed");
        }
        for key in listed.iter().filter(|k| k.starts_with("load/")) {
            let len = if key.ends_with("0.bin") || key.ends_with("5.bin") {
                9 << 20
            } else {
                40_000
            };
            assert_eq!(
                get(reader, key).await.map(|b| b == body_of(key, len)),
                Some(true),
                "{key} reads back whole"
            );
        }
    }
    // On the remote, nothing but element.json and objects with their sidecars may be left by
    // the survivors; the victim may have left at most data without a sidecar, which verify
    // reports (and no sidecar without its data).
    let keys = remote_keys(&moto.client(), "cluster", "shared/").await;
    for k in keys.iter().filter(|k| k.ends_with(".attr.json")) {
        let data = k.trim_end_matches(".attr.json");
        assert!(keys.iter().any(|d| d == data), "sidecar without data: {k}");
    }
}
