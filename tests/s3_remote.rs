//! Storage elements whose bytes live in another S3 service (`S3Remote`): a `moto_server` of
//! the test's own, and a second ArtStore. Objects, sidecars and multipart uploads become
//! objects under the element's prefix; nothing lands on the gateway's disk; wrong remotes are
//! refused at creation with the remote's error; a remote that goes away is a 503 naming it,
//! and service resumes without a restart.

mod common;

use common::moto::{Moto, remote_client, remote_keys};
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// `POST /api/v1/storage-elements` with `backend`; the status and the JSON answer.
async fn create_element(srv: &Server, name: &str, backend: Value) -> (u16, Value) {
    let r = srv
        .http()
        .post(format!("{}/api/v1/storage-elements", srv.admin_url()))
        .bearer_auth(srv.root_token().await)
        .header("content-type", "application/json")
        .body(json!({"name": name, "mode": "edit", "backend": backend}).to_string())
        .send()
        .await
        .expect("create element");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn readiness(srv: &Server) -> Value {
    let r = srv
        .http()
        .get(format!("{}/health/ready", srv.admin_url()))
        .send()
        .await
        .expect("ready");
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("ready json")
}

fn s3_backend(endpoint: &str, bucket: &str, prefix: &str, ak: &str, sk: &str) -> Value {
    json!({"kind": "s3", "endpoint": endpoint, "region": "us-east-1", "bucket": bucket,
           "prefix": prefix, "path_style": true, "access_key_id": ak, "secret_access_key": sk})
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn get_bytes(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let o = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
    o.body.collect().await.expect("body").into_bytes().to_vec()
}

/// The object round trips an archive relies on, through `srv`, on an element `el` whose
/// backend is `remote` (bucket `bucket`, prefix `prefix`).
async fn exercise(srv: &Server, el: &str, remote: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
    let c = srv.client();
    // A small object with attributes.
    let small = data(10_000, 1);
    c.put_object()
        .bucket(el)
        .key("docs/contract.pdf")
        .metadata("customer", "ACME")
        .body(small.clone().into())
        .send()
        .await
        .expect("small PUT");
    let head = c
        .head_object()
        .bucket(el)
        .key("docs/contract.pdf")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.content_length(), Some(10_000));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("customer"))
            .map(String::as_str),
        Some("ACME")
    );
    assert_eq!(get_bytes(&c, el, "docs/contract.pdf").await, small);
    let ranged = c
        .get_object()
        .bucket(el)
        .key("docs/contract.pdf")
        .range("bytes=100-199")
        .send()
        .await
        .expect("ranged GET");
    let got = ranged.body.collect().await.expect("body").into_bytes();
    assert_eq!(&got[..], &small[100..200]);

    // A body larger than one remote part (sent as one PutObject by the client).
    let large = data(12 << 20, 7);
    c.put_object()
        .bucket(el)
        .key("big.bin")
        .body(large.clone().into())
        .send()
        .await
        .expect("large PUT");
    let back = get_bytes(&c, el, "big.bin").await;
    assert_eq!(Sha256::digest(&back), Sha256::digest(&large));

    // A multipart upload: the parts are remote objects until the upload completes.
    let id = create_upload(&c, el, "multi.bin").await;
    let p1 = data(5 << 20, 3);
    let p2 = data(1 << 20, 4);
    let parts = vec![
        (1, upload_part(&c, el, "multi.bin", &id, 1, &p1).await),
        (2, upload_part(&c, el, "multi.bin", &id, 2, &p2).await),
    ];
    let done = complete_upload(&c, el, "multi.bin", &id, &parts).await;
    assert!(done.e_tag().expect("etag").ends_with("-2\""), "{done:?}");
    let whole = [p1.clone(), p2.clone()].concat();
    assert_eq!(get_bytes(&c, el, "multi.bin").await, whole);

    // A copy, then a delete.
    c.copy_object()
        .bucket(el)
        .key("copy.pdf")
        .copy_source(format!("{el}/docs/contract.pdf"))
        .send()
        .await
        .expect("copy");
    assert_eq!(get_bytes(&c, el, "copy.pdf").await, small);
    c.delete_object()
        .bucket(el)
        .key("copy.pdf")
        .send()
        .await
        .expect("delete");
    let gone = c.get_object().bucket(el).key("copy.pdf").send().await;
    assert!(gone.is_err(), "deleted object still readable");
    let listed: Vec<String> = c
        .list_objects_v2()
        .bucket(el)
        .send()
        .await
        .expect("list")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(listed, ["big.bin", "docs/contract.pdf", "multi.bin"]);

    // On the remote: element.json and three objects with their sidecars, under the prefix;
    // no part, temp object or copy left.
    let keys = remote_keys(remote, bucket, prefix).await;
    let rel: Vec<&str> = keys.iter().map(|k| &k[prefix.len()..]).collect();
    assert!(rel.contains(&"element.json"), "{rel:?}");
    let sidecars = rel.iter().filter(|k| k.ends_with(".attr.json")).count();
    assert_eq!(sidecars, 3, "{rel:?}");
    assert_eq!(
        rel.len(),
        1 + 2 * 3,
        "only the objects and element.json: {rel:?}"
    );
    let contract = keys
        .iter()
        .find(|k| k.contains("contract") && k.ends_with(".attr.json"))
        .expect("the contract's sidecar");
    let sidecar = remote
        .get_object()
        .bucket(bucket)
        .key(contract)
        .send()
        .await
        .expect("sidecar")
        .body
        .collect()
        .await
        .expect("sidecar body")
        .into_bytes();
    let attr: Value = serde_json::from_slice(&sidecar).expect("attr.json");
    assert_eq!(attr["key"], "docs/contract.pdf");
    assert_eq!(attr["custom_attributes"]["customer"], "ACME");
    assert_eq!(attr["checksum"], hex::encode(Sha256::digest(&small)));

    // Nothing of the element on the gateway's own disk.
    let local = walk_files(&srv.element_dir(el));
    assert!(local.is_empty(), "files on the gateway's disk: {local:?}");
}

storage_test!(element_on_moto, |srv| async move {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let remote = moto.client();
    remote
        .create_bucket()
        .bucket("archive")
        .send()
        .await
        .expect("remote bucket");
    let (status, body) = create_element(
        &srv,
        "docs",
        s3_backend(
            &moto.endpoint(),
            "archive",
            "docs/",
            "testing",
            "sekret-testing",
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        !body.to_string().contains("sekret"),
        "the secret is never shown: {body}"
    );
    exercise(&srv, "docs", &remote, "archive", "docs/").await;

    // Readiness checks the remote.
    let ready = readiness(&srv).await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["backends"]["docs"]["status"], "ok", "{ready}");

    // verify re-hashes the remote objects beside the running server and finds them sound.
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "verify: {err} {report}");
    assert_eq!(report["objects_checked"], 3, "{report}");
    for finding in [
        "checksum_mismatch",
        "data_without_sidecar",
        "missing",
        "orphans",
        "sidecar_without_data",
        "size_mismatch",
        "temp_files",
    ] {
        assert_eq!(report[finding], json!([]), "{finding}: {report}");
    }
});

storage_test!(wrong_remote_is_refused_at_creation, |srv| async move {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let remote = moto.client();
    remote
        .create_bucket()
        .bucket("exists")
        .send()
        .await
        .expect("remote bucket");
    remote
        .put_object()
        .bucket("exists")
        .key("taken/file")
        .body(b"someone else's".to_vec().into())
        .send()
        .await
        .expect("foreign object");
    let closed = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    });
    for (backend, says) in [
        (
            s3_backend(&moto.endpoint(), "missing", "", "testing", "testing"),
            "NoSuchBucket",
        ),
        (
            s3_backend(&closed, "exists", "", "testing", "testing"),
            "unreachable",
        ),
        (
            s3_backend(&moto.endpoint(), "exists", "taken/", "testing", "testing"),
            "not empty",
        ),
    ] {
        let (status, body) = create_element(&srv, "nope", backend).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(says), "should say {says}: {body}");
        let r = srv
            .http()
            .get(format!("{}/api/v1/storage-elements/nope", srv.admin_url()))
            .bearer_auth(srv.root_token().await)
            .send()
            .await
            .expect("get element");
        assert_eq!(r.status().as_u16(), 404, "a refused element is not created");
    }
    assert_eq!(remote_keys(&remote, "exists", "").await, ["taken/file"]);
});

storage_test!(remote_outage_is_503_and_passes, |srv| async move {
    let Some(mut moto) = Moto::start().await else {
        return;
    };
    let make_bucket = |m: &Moto| {
        let c = m.client();
        async move {
            c.create_bucket()
                .bucket("outage")
                .send()
                .await
                .expect("remote bucket");
        }
    };
    make_bucket(&moto).await;
    let (status, body) = create_element(
        &srv,
        "flaky",
        s3_backend(&moto.endpoint(), "outage", "", "testing", "testing"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let port = moto.port();
    moto.stop();

    // Writes and reads answer 503 naming the backend, with Retry-After; nothing is indexed.
    let r = srv
        .raw(Method::PUT, &key_path("flaky", "new.txt"))
        .body(b"while down".to_vec())
        .send()
        .await;
    r.assert_error(503, "ServiceUnavailable");
    assert!(r.text().contains("remote S3 backend"), "{}", r.text());
    assert!(r.header("retry-after").is_some(), "Retry-After");
    srv.raw(Method::HEAD, &key_path("flaky", "new.txt"))
        .send()
        .await
        .assert_status(404);
    let ready = readiness(&srv).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["backends"]["flaky"]["status"], "down", "{ready}");

    // The remote is back (empty: moto keeps nothing): the same process writes again.
    let moto = Moto::start_on(port).await.expect("moto again");
    make_bucket(&moto).await;
    let r = srv
        .raw(Method::PUT, &key_path("flaky", "new.txt"))
        .body(b"after".to_vec())
        .send()
        .await;
    r.assert_status(200);
    let r = srv
        .raw(Method::GET, &key_path("flaky", "new.txt"))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body, b"after");
});

/// A second ArtStore is the remote S3 service of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_on_a_second_artstore() {
    let backing = Server::start(Db::Sqlite).await;
    let remote = remote_client(
        &backing.s3_url(),
        backing.access_key(),
        backing.secret_key(),
    );
    remote
        .create_bucket()
        .bucket("backing")
        .send()
        .await
        .expect("bucket on the second ArtStore");
    let srv = Server::start(Db::Sqlite).await;
    let (status, body) = create_element(
        &srv,
        "front",
        s3_backend(
            &backing.s3_url(),
            "backing",
            "front/",
            backing.access_key(),
            backing.secret_key(),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    exercise(&srv, "front", &remote, "backing", "front/").await;
}
