//! Authentication (issue 2, item 7) and conventions (item 8): anonymous and badly signed requests,
//! presigned URLs, chunked and unsigned payloads, request ids, addressing styles, health,
//! graceful shutdown, log levels.

mod common;
use common::*;
use std::time::{Duration, SystemTime};

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

async fn setup(srv: &Server) -> s3::Client {
    let c = srv.client();
    create_bucket(&c, "auth").await;
    put(&c, "auth", "existing", b"original".to_vec()).await;
    c
}

fn signature_of(headers: &[(String, String)]) -> String {
    let auth = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .expect("authorization")
        .1
        .clone();
    auth.rsplit("Signature=").next().unwrap().trim().to_string()
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    &headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

storage_test!(anonymous_requests_are_denied, |srv| async move {
    let c = setup(&srv).await;
    for (m, p) in [
        (Method::GET, "/"),
        (Method::GET, "/auth"),
        (Method::GET, "/auth/existing"),
        (Method::HEAD, "/auth/existing"),
        (Method::PUT, "/auth/existing"),
        (Method::PUT, "/auth/new-key"),
        (Method::DELETE, "/auth/existing"),
        (Method::PUT, "/anon-bucket"),
    ] {
        let r = srv
            .raw(m.clone(), p)
            .anonymous()
            .body(b"anonymous data".to_vec())
            .send()
            .await;
        assert_eq!(r.status, 403, "{m} {p}: {}", r.text());
        if m != Method::HEAD {
            assert_eq!(r.code(), "AccessDenied", "{m} {p}: {}", r.text());
        }
        assert!(
            r.header("x-amz-request-id").is_some_and(|s| !s.is_empty()),
            "{m} {p}: no x-amz-request-id"
        );
    }
    assert_object(&srv, "auth", "existing", b"original").await;
    assert!(!exists(&c, "auth", "new-key").await);
    sdk_err(c.head_bucket().bucket("anon-bucket").send().await).assert(404, "");
});

storage_test!(bad_signatures, |srv| async move {
    let c = setup(&srv).await;
    // tampered signature (header auth)
    let r = srv
        .raw(Method::GET, "/auth/existing")
        .bad_signature()
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    let r = srv
        .raw(Method::PUT, "/auth/existing")
        .body(b"evil".to_vec())
        .bad_signature()
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    let r = srv
        .raw(Method::PUT, "/auth/evil")
        .body(b"evil".to_vec())
        .bad_signature()
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    // right access key, wrong secret (SDK)
    let wrong = srv.client_with(srv.access_key(), "definitely-not-the-secret");
    sdk_err(wrong.list_buckets().send().await).assert(403, "SignatureDoesNotMatch");
    sdk_err(
        wrong
            .put_object()
            .bucket("auth")
            .key("existing")
            .body(ByteStream::from_static(b"evil"))
            .send()
            .await,
    )
    .assert(403, "SignatureDoesNotMatch");
    sdk_err(
        wrong
            .delete_object()
            .bucket("auth")
            .key("existing")
            .send()
            .await,
    )
    .assert(403, "SignatureDoesNotMatch");
    // unknown access key
    let unknown = srv.client_with("AKNOSUCHKEY00000000", "whatever");
    sdk_err(unknown.list_buckets().send().await).assert(403, "InvalidAccessKeyId");
    sdk_err(
        unknown
            .get_object()
            .bucket("auth")
            .key("existing")
            .send()
            .await,
    )
    .assert(403, "InvalidAccessKeyId");
    let r = srv
        .raw(Method::PUT, "/auth/evil")
        .creds("AKNOSUCHKEY00000000", "x")
        .body(b"evil".to_vec())
        .send()
        .await;
    r.assert_error(403, "InvalidAccessKeyId");
    // a signed header changed after signing
    let req = srv
        .raw(Method::PUT, "/auth/existing")
        .header("x-amz-meta-a", "1")
        .body(b"evil".to_vec());
    let (url, mut headers) = req.signed();
    for h in headers.iter_mut() {
        if h.0 == "x-amz-meta-a" {
            h.1 = "2".into();
        }
    }
    let mut rb = srv.http().put(&url).body(b"evil".to_vec());
    for (k, v) in &headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let r = RawResponse::from_reqwest(rb.send().await.unwrap()).await;
    r.assert_error(403, "SignatureDoesNotMatch");
    // clock skew beyond 15 minutes
    let r = srv
        .raw(Method::GET, "/auth/existing")
        .at(SystemTime::now() - Duration::from_secs(3600))
        .send()
        .await;
    r.assert_error(403, "RequestTimeTooSkewed");

    assert_object(&srv, "auth", "existing", b"original").await;
    assert!(!exists(&c, "auth", "evil").await);
    assert_eq!(list_keys(&c, "auth").await, vec!["existing"]);
});

storage_test!(presigned_urls, |srv| async move {
    let c = setup(&srv).await;
    use s3::presigning::PresigningConfig;
    let cfg = PresigningConfig::expires_in(Duration::from_secs(600)).unwrap();

    // SDK-presigned GET
    let p = c
        .get_object()
        .bucket("auth")
        .key("existing")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let r = RawResponse::from_reqwest(srv.http().get(p.uri()).send().await.unwrap()).await;
    r.assert_status(200);
    assert_eq!(r.body, b"original");

    // SDK-presigned PUT
    let p = c
        .put_object()
        .bucket("auth")
        .key("uploaded via url.txt")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let mut rb = srv.http().put(p.uri()).body(b"presigned body".to_vec());
    for (k, v) in p.headers() {
        rb = rb.header(k, v);
    }
    let r = RawResponse::from_reqwest(rb.send().await.unwrap()).await;
    r.assert_status(200);
    assert_eq!(
        r.header("etag").as_deref(),
        Some(quoted(&md5_hex(b"presigned body")).as_str())
    );
    assert_object(&srv, "auth", "uploaded via url.txt", b"presigned body").await;

    // harness-presigned GET (query auth) and HEAD
    let r = srv
        .raw(Method::GET, "/auth/existing")
        .presigned(Duration::from_secs(60))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body, b"original");

    // tampered presigned signature
    let r = srv
        .raw(Method::GET, "/auth/existing")
        .presigned(Duration::from_secs(60))
        .bad_signature()
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    let r = srv
        .raw(Method::PUT, "/auth/existing")
        .presigned(Duration::from_secs(60))
        .bad_signature()
        .body(b"evil".to_vec())
        .send()
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");

    // expired: signed two hours ago, valid for one minute
    let r = srv
        .raw(Method::GET, "/auth/existing")
        .at(SystemTime::now() - Duration::from_secs(7200))
        .presigned(Duration::from_secs(60))
        .send()
        .await;
    r.assert_error(403, "AccessDenied");

    // a presigned URL for one key does not work for another
    let p = c
        .get_object()
        .bucket("auth")
        .key("existing")
        .presigned(cfg)
        .await
        .unwrap();
    let other = p
        .uri()
        .replace("/auth/existing", "/auth/uploaded%20via%20url.txt");
    let r = RawResponse::from_reqwest(srv.http().get(&other).send().await.unwrap()).await;
    r.assert_error(403, "SignatureDoesNotMatch");

    assert_object(&srv, "auth", "existing", b"original").await;
});

storage_test!(unsigned_and_signed_payloads, |srv| async move {
    let c = setup(&srv).await;
    let data = pattern(300_000, 8);
    // UNSIGNED-PAYLOAD with Content-Length (what rclone sends)
    let r = srv
        .raw(Method::PUT, "/auth/unsigned")
        .unsigned_payload()
        .body(data.clone())
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(
        r.header("etag").as_deref(),
        Some(quoted(&md5_hex(&data)).as_str())
    );
    assert_object(&srv, "auth", "unsigned", &data).await;
    // signed hex payload
    let r = srv
        .raw(Method::PUT, "/auth/signed")
        .body(data.clone())
        .send()
        .await;
    r.assert_status(200);
    assert_object(&srv, "auth", "signed", &data).await;
    let _ = c;
});

/// Builds an `aws-chunked` body signed per chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and sends it.
async fn chunked_signed_put(
    srv: &Server,
    path: &str,
    chunks: &[Vec<u8>],
    tamper_chunk: Option<usize>,
    final_chunk: bool,
) -> RawResponse {
    let t = SystemTime::now();
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let req = srv
        .raw(Method::PUT, path)
        .at(t)
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &total.to_string())
        .payload(Payload::Hash("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()));
    let (url, headers) = req.signed();
    let amz_date = header_of(&headers, "x-amz-date").to_string();
    let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
    let key = aws_sigv4::sign::v4::generate_signing_key(srv.secret_key(), t, REGION, "s3");
    let mut prev = signature_of(&headers);
    let mut body = Vec::new();
    let mut all: Vec<&[u8]> = chunks.iter().map(|c| c.as_slice()).collect();
    if final_chunk {
        all.push(&[]);
    }
    for (i, chunk) in all.iter().enumerate() {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{}",
            sha256_hex(chunk)
        );
        let mut sig = aws_sigv4::sign::v4::calculate_signature(key.as_ref(), sts.as_bytes());
        prev = sig.clone();
        if tamper_chunk == Some(i) {
            sig = sig.replace(|c: char| c.is_ascii_digit(), "a");
        }
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    let mut rb = srv.http().put(&url).body(body);
    for (k, v) in &headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    RawResponse::from_reqwest(rb.send().await.unwrap()).await
}

storage_test!(chunked_signed_upload, |srv| async move {
    let c = setup(&srv).await;
    let chunks = vec![pattern(65536, 1), pattern(65536, 2), pattern(100, 3)];
    let whole: Vec<u8> = chunks.concat();
    let r = chunked_signed_put(&srv, "/auth/chunked", &chunks, None, true).await;
    r.assert_status(200);
    assert_eq!(
        r.header("etag").as_deref(),
        Some(quoted(&md5_hex(&whole)).as_str())
    );
    assert_object(&srv, "auth", "chunked", &whole).await;
    let h = c
        .head_object()
        .bucket("auth")
        .key("chunked")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(whole.len() as i64));
    assert!(
        h.content_encoding()
            .is_none_or(|e| !e.contains("aws-chunked")),
        "aws-chunked must not be stored as Content-Encoding: {:?}",
        h.content_encoding()
    );

    // a bad chunk signature: refused, nothing stored, existing object unchanged
    let r = chunked_signed_put(&srv, "/auth/chunked-bad", &chunks, Some(1), true).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code(), "SignatureDoesNotMatch", "{}", r.text());
    assert!(!exists(&c, "auth", "chunked-bad").await);
    let r = chunked_signed_put(&srv, "/auth/existing", &chunks, Some(0), true).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_object(&srv, "auth", "existing", b"original").await;
    // a stream without its final zero-length chunk is incomplete
    let r = chunked_signed_put(&srv, "/auth/chunked-cut", &chunks, None, false).await;
    r.assert_error(400, "IncompleteBody");
    assert!(!exists(&c, "auth", "chunked-cut").await);
    let r = chunked_signed_put(&srv, "/auth/existing", &chunks, None, false).await;
    r.assert_error(400, "IncompleteBody");
    assert_object(&srv, "auth", "existing", b"original").await;
    srv.assert_no_temp_files("auth");
});

storage_test!(request_ids_on_every_response, |srv| async move {
    let _c = setup(&srv).await;
    let mut ids = Vec::new();
    let cases = [
        (srv.raw(Method::GET, "/"), 200),
        (srv.raw(Method::PUT, "/auth/rid").body(b"x".to_vec()), 200),
        (srv.raw(Method::GET, "/auth/rid"), 200),
        (srv.raw(Method::HEAD, "/auth/rid"), 200),
        (srv.raw(Method::GET, "/auth/missing"), 404),
        (srv.raw(Method::HEAD, "/auth/missing"), 404),
        (srv.raw(Method::GET, "/no-such-bucket/k"), 404),
        (srv.raw(Method::GET, "/auth/rid").anonymous(), 403),
        (srv.raw(Method::GET, "/auth/rid").bad_signature(), 403),
        (srv.raw(Method::PUT, "/Bad_Bucket"), 400),
    ];
    for (req, status) in cases {
        let what = format!("{} {}", req.method, req.path);
        let is_head = req.method == Method::HEAD;
        let r = req.send().await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        let id = r.header("x-amz-request-id").unwrap_or_default();
        assert!(!id.is_empty(), "{what}: no x-amz-request-id");
        if status >= 400 && !is_head {
            assert!(
                r.header("content-type")
                    .is_some_and(|ct| ct.contains("xml")),
                "{what}: error is not XML"
            );
            assert!(!r.code().is_empty(), "{what}: no <Code>: {}", r.text());
            assert!(
                xml_first(&r.text(), "Message").is_some(),
                "{what}: no <Message>: {}",
                r.text()
            );
            assert_eq!(
                xml_first(&r.text(), "RequestId").as_deref(),
                Some(id.as_str()),
                "{what}: <RequestId> differs from the header"
            );
        }
        ids.push(id);
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "request ids are not unique: {ids:?}"
    );
    // error codes of the cases above
    let r = srv.raw(Method::GET, "/auth/missing").send().await;
    r.assert_error(404, "NoSuchKey");
    let r = srv.raw(Method::GET, "/no-such-bucket/k").send().await;
    r.assert_error(404, "NoSuchBucket");
});

storage_test!(
    addressing_styles,
    Server::builder().env("ARTSTORE_S3_DOMAIN", "s3.artstore.test"),
    |srv| async move {
        let c = setup(&srv).await;
        let port = srv.s3_addr().rsplit(':').next().unwrap().to_string();

        // virtual-hosted style: bucket from the Host header (with a port)
        let host = format!("auth.s3.artstore.test:{port}");
        let r = srv
            .raw(Method::PUT, "/vhost/key.txt")
            .header("host", &host)
            .body(b"virtual".to_vec())
            .send()
            .await;
        r.assert_status(200);
        assert_object(&srv, "auth", "vhost/key.txt", b"virtual").await;
        let r = srv
            .raw(Method::GET, "/existing")
            .header("host", &host)
            .send()
            .await;
        r.assert_status(200);
        assert_eq!(r.body, b"original");
        let r = srv
            .raw(Method::GET, "/")
            .query("list-type", "2")
            .header("host", &host)
            .send()
            .await;
        r.assert_status(200);
        assert!(
            xml_all(&r.text(), "Key").contains(&"vhost/key.txt".to_string()),
            "{}",
            r.text()
        );

        // path style on the configured domain itself, on localhost and on the IP
        for h in [
            format!("s3.artstore.test:{port}"),
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
        ] {
            let r = srv
                .raw(Method::GET, "/auth/existing")
                .header("host", &h)
                .send()
                .await;
            assert_eq!(r.status, 200, "path style with Host {h}: {}", r.text());
            assert_eq!(r.body, b"original");
            let r = srv.raw(Method::GET, "/").header("host", &h).send().await;
            assert_eq!(r.status, 200, "ListBuckets with Host {h}: {}", r.text());
            assert!(xml_all(&r.text(), "Name").contains(&"auth".to_string()));
        }
        let _ = c;
    }
);

storage_test!(path_style_on_localhost_without_domain, |srv| async move {
    let _c = setup(&srv).await;
    let port = srv.s3_addr().rsplit(':').next().unwrap().to_string();
    let r = srv
        .raw(Method::GET, "/auth/existing")
        .header("host", &format!("localhost:{port}"))
        .send()
        .await;
    r.assert_status(200);
    assert_eq!(r.body, b"original");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_endpoints() {
    let srv = Server::start(Db::Sqlite).await;
    for p in ["/health/live", "/health/ready"] {
        let r = RawResponse::from_reqwest(
            srv.http()
                .get(format!("{}{p}", srv.admin_url()))
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_status(200);
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{p}: not JSON ({e}): {}", r.text()));
        let expected = if p == "/health/ready" { "ready" } else { "ok" };
        assert_eq!(v["status"], expected, "{p}: {v}");
    }
}

storage_test!(graceful_shutdown_and_restart, |srv| async move {
    let mut srv = srv;
    {
        let c = srv.client();
        create_bucket(&c, "gsd").await;
        put(&c, "gsd", "k", b"before shutdown".to_vec()).await;
    }
    let st = srv
        .stop()
        .expect("server did not exit within 20 s of SIGTERM");
    assert!(
        st.success(),
        "exit status after SIGTERM: {st:?}\n{}",
        srv.logs()
    );
    srv.restart().await;
    assert_object(&srv, "gsd", "k", b"before shutdown").await;
});

storage_test!(operation_errors_are_not_logged_as_error, |srv| async move {
    let c = setup(&srv).await;
    sdk_err(c.get_object().bucket("auth").key("missing").send().await).assert(404, "NoSuchKey");
    sdk_err(c.head_object().bucket("auth").key("missing").send().await).assert(404, "");
    sdk_err(c.get_object().bucket("nobucket").key("k").send().await).assert(404, "NoSuchBucket");
    sdk_err(c.delete_bucket().bucket("auth").send().await).assert(409, "BucketNotEmpty");
    srv.raw(Method::GET, "/auth/existing")
        .anonymous()
        .send()
        .await
        .assert_status(403);
    srv.raw(Method::GET, "/auth/existing")
        .bad_signature()
        .send()
        .await
        .assert_status(403);
    // each refused request logs one line with its id, operation, status and code
    let (cid, secret) = {
        let (ok, out, err) = srv.cli(&["account", "create", "slow", "--rate-limit", "1"]);
        assert!(ok, "{out}{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (
            v["client_id"].as_str().unwrap().to_string(),
            v["client_secret"].as_str().unwrap().to_string(),
        )
    };
    srv.raw(Method::GET, "/auth")
        .creds(&cid, &secret)
        .send()
        .await
        .assert_status(200);
    let mut expected = Vec::new();
    for (req, status, code, op) in [
        (
            srv.raw(Method::GET, "/auth/missing"),
            404,
            "NoSuchKey",
            "GetObject",
        ),
        (
            srv.raw(Method::GET, "/auth/existing").anonymous(),
            403,
            "AccessDenied",
            "GetObject",
        ),
        (
            srv.raw(Method::GET, "/auth").query("website", ""),
            501,
            "NotImplemented",
            "GetBucketWebsite",
        ),
        (
            srv.raw(Method::GET, "/auth").creds(&cid, &secret),
            503,
            "SlowDown",
            "ListObjects",
        ),
    ] {
        let r = req.send().await;
        r.assert_error(status, code);
        expected.push((r.header("x-amz-request-id").unwrap(), status, code, op));
    }
    let r = srv
        .http()
        .get(format!("{}/api/v1/service-accounts", srv.admin_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let admin_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    expected.push((
        admin_id,
        401,
        "unauthorized",
        "GET /api/v1/service-accounts",
    ));
    // one more successful request, so that the log lines of the errors above are flushed
    get(&c, "auth", "existing").await;
    let logs = srv.logs();
    for (id, status, code, op) in &expected {
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["request_id"].as_str() == Some(id.as_str()))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{id} ({code}): one log line expected:\n{lines:#?}"
        );
        let f = &lines[0]["fields"];
        let level = lines[0]["level"].as_str().unwrap_or_default();
        assert!(
            level == "INFO" || level == "DEBUG",
            "{code} logged at {level}: {}",
            lines[0]
        );
        assert_eq!(
            f["status"].as_u64(),
            Some(u64::from(*status)),
            "{}",
            lines[0]
        );
        assert_eq!(f["code"].as_str(), Some(*code), "{}", lines[0]);
        assert_eq!(f["operation"].as_str(), Some(*op), "{}", lines[0]);
    }
    let errors: Vec<&str> = logs
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| {
                    v.get("level")
                        .and_then(|x| x.as_str())
                        .map(|s| s.eq_ignore_ascii_case("error"))
                })
                .unwrap_or(false)
        })
        .collect();
    assert!(
        errors.is_empty(),
        "client errors logged at ERROR:\n{}",
        errors.join("\n")
    );
    // and the log is JSON (ARTSTORE_LOG_FORMAT=json)
    let first = logs.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "log line is not JSON: {first}"
    );
});

storage_test!(
    generated_root_credentials_are_logged_once,
    Server::builder().no_root_keys(),
    |srv| async move {
        let mut srv = srv;
        let logs = srv.logs();
        let creds = logs.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let f = v.get("fields")?;
            Some((
                f.get("access_key")?.as_str()?.to_string(),
                f.get("secret_key")?.as_str()?.to_string(),
            ))
        });
        let (ak, sk) = creds
            .unwrap_or_else(|| panic!("no generated access_key/secret_key in the log:\n{logs}"));
        assert!(
            !ak.is_empty() && sk.len() >= 20,
            "weak generated credentials: {ak} / {} chars",
            sk.len()
        );
        let c = srv.client_with(&ak, &sk);
        create_bucket(&c, "gen").await;
        put(&c, "gen", "k", b"v".to_vec()).await;
        // the default test keys do not work on this server
        sdk_err(srv.client().list_buckets().send().await).assert(403, "InvalidAccessKeyId");

        srv.restart().await;
        let c = srv.client_with(&ak, &sk);
        assert_eq!(get(&c, "gen", "k").await, b"v");
        let logs = srv.logs();
        assert_eq!(
            logs.matches(sk.as_str()).count(),
            1,
            "the generated secret must be logged exactly once"
        );
    }
);

storage_test!(configured_secret_is_never_logged, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    create_bucket(&c, "quiet").await;
    put(&c, "quiet", "k", b"v".to_vec()).await;
    srv.raw(Method::GET, "/quiet/k")
        .bad_signature()
        .send()
        .await
        .assert_status(403);
    srv.restart().await;
    get(&srv.client(), "quiet", "k").await;
    assert!(
        !srv.logs().contains(ROOT_SECRET_KEY),
        "the root secret key appears in the log"
    );
});

/// Signs `req`, then sends it with `extra` headers added after signing (so they are unsigned).
async fn send_with_unsigned(srv: &Server, req: RawRequest, extra: &[(&str, &str)]) -> RawResponse {
    let (url, headers) = req.signed();
    let mut rb = srv
        .http()
        .request(req.method.clone(), &url)
        .body(req.body.clone());
    for (k, v) in headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(extra.iter().copied())
    {
        rb = rb.header(k, v);
    }
    RawResponse::from_reqwest(rb.send().await.unwrap()).await
}

storage_test!(unsigned_headers_are_refused, |srv| async move {
    let c = setup(&srv).await;
    let unsigned: [&[(&str, &str)]; 3] = [
        &[("x-amz-meta-color", "red")],
        &[("x-amz-tagging", "a=b")],
        &[("x-amz-storage-class", "GLACIER")],
    ];
    // header auth: any x-amz-* header outside SignedHeaders
    for extra in unsigned {
        for key in ["existing", "fresh"] {
            let req = srv
                .raw(Method::PUT, &format!("/auth/{key}"))
                .body(b"evil".to_vec());
            let r = send_with_unsigned(&srv, req, extra).await;
            r.assert_error(403, "AccessDenied");
            assert!(
                r.text()
                    .contains("headers present in the request which were not signed"),
                "{extra:?}: {}",
                r.text()
            );
        }
    }
    // presigned: x-amz-* and headers that become stored attributes must be signed too
    let presigned_unsigned: [&[(&str, &str)]; 5] = [
        &[("x-amz-meta-color", "red")],
        &[("x-amz-tagging", "a=b")],
        &[("content-type", "text/evil")],
        &[("cache-control", "no-cache")],
        &[("content-disposition", "attachment")],
    ];
    for extra in presigned_unsigned {
        for key in ["existing", "fresh"] {
            let req = srv
                .raw(Method::PUT, &format!("/auth/{key}"))
                .body(b"evil".to_vec())
                .presigned(Duration::from_secs(300));
            let r = send_with_unsigned(&srv, req, extra).await;
            r.assert_error(403, "AccessDenied");
        }
    }
    assert_object(&srv, "auth", "existing", b"original").await;
    assert!(!exists(&c, "auth", "fresh").await);
    let h = c
        .head_object()
        .bucket("auth")
        .key("existing")
        .send()
        .await
        .unwrap();
    assert!(h.metadata().is_none_or(|m| m.is_empty()), "{h:?}");

    // the same headers, signed, work (presigned and header auth)
    let r = srv
        .raw(Method::PUT, "/auth/signed-meta")
        .header("x-amz-meta-color", "blue")
        .header("content-type", "text/plain")
        .body(b"fine".to_vec())
        .presigned(Duration::from_secs(300))
        .send()
        .await;
    r.assert_status(200);
    let r = srv
        .raw(Method::PUT, "/auth/header-meta")
        .header("x-amz-meta-color", "green")
        .body(b"fine".to_vec())
        .send()
        .await;
    r.assert_status(200);
    let h = c
        .head_object()
        .bucket("auth")
        .key("signed-meta")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(h.content_type(), Some("text/plain"));
    // a presigned GET may carry ordinary unsigned headers (Range, user agents)
    let req = srv
        .raw(Method::GET, "/auth/existing")
        .presigned(Duration::from_secs(300));
    let r = send_with_unsigned(
        &srv,
        req,
        &[("range", "bytes=0-3"), ("user-agent", "curl/8")],
    )
    .await;
    r.assert_status(206);
    assert_eq!(r.body, b"orig");
});

storage_test!(presigned_expiry_limits, |srv| async move {
    let c = setup(&srv).await;
    // more than seven days
    for m in [Method::GET, Method::PUT, Method::DELETE] {
        let r = srv
            .raw(m.clone(), "/auth/existing")
            .body(if m == Method::PUT {
                b"evil".to_vec()
            } else {
                Vec::new()
            })
            .presigned(Duration::from_secs(604_801))
            .send()
            .await;
        r.assert_error(400, "AuthorizationQueryParametersError");
    }
    // exactly seven days is allowed
    srv.raw(Method::GET, "/auth/existing")
        .presigned(Duration::from_secs(604_800))
        .send()
        .await
        .assert_status(200);
    // expired: 403 AccessDenied whatever the method
    for (m, key) in [
        (Method::GET, "existing"),
        (Method::PUT, "existing"),
        (Method::PUT, "expired-new"),
        (Method::DELETE, "existing"),
        (Method::POST, "expired-new"),
    ] {
        let mut req = srv.raw(m.clone(), &format!("/auth/{key}"));
        if m == Method::POST {
            req = req.query("uploads", "");
        }
        let r = req
            .at(SystemTime::now() - Duration::from_secs(7200))
            .body(if m == Method::PUT {
                b"evil".to_vec()
            } else {
                Vec::new()
            })
            .presigned(Duration::from_secs(60))
            .send()
            .await;
        assert_eq!(r.status, 403, "{m} {key}: {}", r.text());
        assert_eq!(r.code(), "AccessDenied", "{m} {key}: {}", r.text());
    }
    let r = srv
        .raw(Method::HEAD, "/auth/existing")
        .at(SystemTime::now() - Duration::from_secs(7200))
        .presigned(Duration::from_secs(60))
        .send()
        .await;
    assert_eq!(r.status, 403);
    assert_object(&srv, "auth", "existing", b"original").await;
    assert!(!exists(&c, "auth", "expired-new").await);
    let uploads = c
        .list_multipart_uploads()
        .bucket("auth")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
});

storage_test!(credential_scope_must_match_the_endpoint, |srv| async move {
    let c = setup(&srv).await;
    for (region, service) in [
        ("eu-west-1", "s3"),
        (REGION, "sts"),
        (REGION, "s3-object-lambda"),
    ] {
        let r = srv
            .raw(Method::PUT, "/auth/existing")
            .scope(region, service)
            .body(b"evil".to_vec())
            .send()
            .await;
        r.assert_error(400, "AuthorizationHeaderMalformed");
        let r = srv
            .raw(Method::PUT, "/auth/scoped")
            .scope(region, service)
            .body(b"evil".to_vec())
            .presigned(Duration::from_secs(60))
            .send()
            .await;
        r.assert_error(400, "AuthorizationQueryParametersError");
        let r = srv
            .raw(Method::DELETE, "/auth/existing")
            .scope(region, service)
            .send()
            .await;
        r.assert_error(400, "AuthorizationHeaderMalformed");
    }
    assert_object(&srv, "auth", "existing", b"original").await;
    assert!(!exists(&c, "auth", "scoped").await);
});
