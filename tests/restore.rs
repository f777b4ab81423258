//! Archive restore (issue 4, item 6): RestoreObject on an object of an `ar` element verifies
//! its data against the SHA-256 in attr.json in the background, then makes it readable for
//! the requested days, with S3's semantics (`202`, `x-amz-restore`, `409
//! RestoreAlreadyInProgress`, `200` on a repeat, expiry at midnight UTC), recorded in attr.json
//! and carried through `index rebuild`, restarts and crashes.

mod common;
use common::*;

use std::process::Command;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Generous: the machine may be busy building; nothing here depends on being fast.
const WAIT: Duration = Duration::from_secs(180);
/// Reads 3 MiB in about 6 s: long enough to see a restore in progress.
const SLOW_RATE: &str = "524288";
const BIG: usize = 3 << 20;

#[track_caller]
fn element(srv: &Server, args: &[&str]) {
    let mut all = vec!["element"];
    all.extend_from_slice(args);
    let (ok, _, err) = srv.cli(&all);
    assert!(ok, "artstore element {args:?} failed: {err}");
}

/// An `ar` element holding `objects` (written while it was rw).
async fn archive(srv: &Server, name: &str, objects: &[(&str, &[u8])]) {
    element(srv, &["create", name, "--mode", "rw"]);
    let c = srv.client();
    for (key, data) in objects {
        put(&c, name, key, data.to_vec()).await;
    }
    element(srv, &["mode", name, "ro", "--reason", "closed"]);
    element(srv, &["mode", name, "ar", "--reason", "archived"]);
}

fn restore_body(days: &str) -> String {
    format!(
        "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>{days}</Days></RestoreRequest>"
    )
}

async fn restore_raw(srv: &Server, bucket: &str, key: &str, body: &str) -> RawResponse {
    srv.raw(Method::POST, &key_path(bucket, key))
        .query("restore", "")
        .body(body.as_bytes().to_vec())
        .send()
        .await
}

async fn restore(srv: &Server, bucket: &str, key: &str, days: u32) -> RawResponse {
    restore_raw(srv, bucket, key, &restore_body(&days.to_string())).await
}

async fn head(srv: &Server, bucket: &str, key: &str) -> RawResponse {
    let r = srv.raw(Method::HEAD, &key_path(bucket, key)).send().await;
    r.assert_status(200);
    r
}

async fn get_raw(srv: &Server, bucket: &str, key: &str) -> RawResponse {
    srv.raw(Method::GET, &key_path(bucket, key)).send().await
}

/// Polls HEAD until the restore is no longer ongoing; returns that HEAD.
async fn wait_restored(srv: &Server, bucket: &str, key: &str) -> RawResponse {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let h = head(srv, bucket, key).await;
        if h.header("x-artstore-restore-status").as_deref() != Some("ongoing") {
            return h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restore of {bucket}/{key} still ongoing after {WAIT:?}; logs:\n{}",
            srv.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `restore` record of the object's attr.json.
fn restore_record(srv: &Server, bucket: &str, key: &str) -> serde_json::Value {
    let o = srv.object_on_disk(bucket, key).expect("object on disk");
    o.json["restore"].clone()
}

fn parse_rfc3339(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// S3's expiry: `from` + days, rounded up to the next midnight UTC.
fn expiry_after(from: OffsetDateTime, days: i64) -> OffsetDateTime {
    let t = from + time::Duration::days(days);
    t.date().midnight().assume_utc() + time::Duration::days(1)
}

fn http_date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&f).expect("format")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

fn index_rebuild(srv: &Server) -> serde_json::Value {
    let (ok, report, err) = srv.index_cmd("rebuild");
    assert!(ok, "index rebuild failed: {err}");
    report
}

// ---------------------------------------------------------------------------------------------

storage_test!(
    restore_in_progress_then_readable_then_extended,
    Server::builder().env("ARTSTORE_RESTORE_RATE", SLOW_RATE),
    |srv| async move {
        let big = pattern(BIG, 7);
        archive(
            &srv,
            "vault",
            &[("scans/big.bin", &big), ("other", b"kept")],
        )
        .await;

        // Archived, never restored: HEAD works without a restore header, GET is refused.
        let h = head(&srv, "vault", "scans/big.bin").await;
        assert_eq!(h.header("x-amz-restore"), None);
        assert_eq!(h.header("x-artstore-restore-status"), None);
        get_raw(&srv, "vault", "scans/big.bin")
            .await
            .assert_error(403, "InvalidObjectState");

        let before = OffsetDateTime::now_utc();
        restore(&srv, "vault", "scans/big.bin", 2)
            .await
            .assert_status(202);
        // 3 MiB at 512 KiB/s: the verification is still running.
        let h = head(&srv, "vault", "scans/big.bin").await;
        assert_eq!(
            h.header("x-amz-restore").as_deref(),
            Some(r#"ongoing-request="true""#)
        );
        assert_eq!(
            h.header("x-artstore-restore-status").as_deref(),
            Some("ongoing")
        );
        let again = restore(&srv, "vault", "scans/big.bin", 2).await;
        again.assert_error(409, "RestoreAlreadyInProgress");
        let r = get_raw(&srv, "vault", "scans/big.bin").await;
        r.assert_error(403, "InvalidObjectState");
        assert!(r.text().contains("in progress"), "{}", r.text());
        let rec = restore_record(&srv, "vault", "scans/big.bin");
        assert_eq!(rec["status"], "ongoing", "{rec}");
        assert_eq!(rec["days"], 2, "{rec}");
        assert_eq!(rec["requested_by"], "admin", "{rec}");
        assert!(rec.get("expires_at").is_none(), "{rec}");
        let requested = parse_rfc3339(rec["requested_at"].as_str().unwrap_or_default());
        assert!(requested >= before - time::Duration::seconds(1), "{rec}");

        // Done: readable, with the expiry S3 would compute.
        let h = wait_restored(&srv, "vault", "scans/big.bin").await;
        assert_eq!(
            h.header("x-artstore-restore-status").as_deref(),
            Some("completed")
        );
        let rec = restore_record(&srv, "vault", "scans/big.bin");
        assert_eq!(rec["status"], "completed", "{rec}");
        let completed = parse_rfc3339(rec["completed_at"].as_str().unwrap_or_default());
        let expires = expiry_after(completed, 2);
        assert_eq!(rec["expires_at"], rfc3339(expires), "{rec}");
        assert!(
            completed >= requested + time::Duration::seconds(3),
            "the verification was throttled: {rec}"
        );
        let header = format!(
            r#"ongoing-request="false", expiry-date="{}""#,
            http_date(expires)
        );
        assert_eq!(h.header("x-amz-restore").as_deref(), Some(header.as_str()));
        let g = get_raw(&srv, "vault", "scans/big.bin").await;
        g.assert_status(200);
        assert!(g.body == big, "restored bytes differ");
        assert_eq!(g.header("x-amz-restore").as_deref(), Some(header.as_str()));
        // Ranges and the SDK work too.
        let c = srv.client();
        let part = c
            .get_object()
            .bucket("vault")
            .key("scans/big.bin")
            .range("bytes=10-19")
            .send()
            .await
            .expect("ranged get of a restored object");
        assert_eq!(
            part.restore(),
            Some(header.as_str()),
            "GetObject reports the restore"
        );
        let bytes = part.body.collect().await.expect("body").into_bytes();
        assert_eq!(&bytes[..], &big[10..20]);
        // The other object was not restored.
        get_raw(&srv, "vault", "other")
            .await
            .assert_error(403, "InvalidObjectState");
        assert_eq!(
            head(&srv, "vault", "other").await.header("x-amz-restore"),
            None
        );
        // A restored object can be copied out, as in S3; an unrestored one cannot.
        create_bucket(&c, "copies").await;
        c.copy_object()
            .bucket("copies")
            .key("big.bin")
            .copy_source("vault/scans/big.bin")
            .send()
            .await
            .expect("copy of a restored object");
        assert!(
            get(&c, "copies", "big.bin").await == big,
            "copied bytes differ"
        );
        sdk_err(
            c.copy_object()
                .bucket("copies")
                .key("other")
                .copy_source("vault/other")
                .send()
                .await,
        )
        .assert(403, "InvalidObjectState");

        // A repeat on a restored object: 200, expiry counted again from now.
        let t0 = OffsetDateTime::now_utc();
        restore(&srv, "vault", "scans/big.bin", 5)
            .await
            .assert_status(200);
        let t1 = OffsetDateTime::now_utc();
        let rec = restore_record(&srv, "vault", "scans/big.bin");
        assert_eq!(rec["status"], "completed", "{rec}");
        assert_eq!(rec["days"], 5, "{rec}");
        let new_expiry = parse_rfc3339(rec["expires_at"].as_str().unwrap_or_default());
        assert!(
            new_expiry == expiry_after(t0, 5) || new_expiry == expiry_after(t1, 5),
            "{rec}"
        );
        // The same instant (its text may drop trailing zeros of the milliseconds).
        assert_eq!(
            parse_rfc3339(rec["completed_at"].as_str().unwrap_or_default()),
            completed,
            "{rec}"
        );
        let h = head(&srv, "vault", "scans/big.bin").await;
        let header = format!(
            r#"ongoing-request="false", expiry-date="{}""#,
            http_date(new_expiry)
        );
        assert_eq!(h.header("x-amz-restore").as_deref(), Some(header.as_str()));
        // The SDK sees the same.
        let h = c
            .head_object()
            .bucket("vault")
            .key("scans/big.bin")
            .send()
            .await
            .expect("head");
        assert_eq!(h.restore(), Some(header.as_str()));
        assert_eq!(h.content_length(), Some(BIG as i64));
        srv.assert_no_temp_files("vault");
    }
);

storage_test!(bad_requests_change_nothing, |srv| async move {
    archive(&srv, "vault", &[("a", b"alpha")]).await;
    element(&srv, &["create", "open", "--mode", "rw"]);
    let c = srv.client();
    put(&c, "open", "b", "beta").await;
    create_bucket(&c, "scratch").await;
    put(&c, "scratch", "e", "edit").await;
    let before = srv.files_snapshot();
    let attr_before = std::fs::read(srv.object_on_disk("vault", "a").expect("a").attr).unwrap();

    for days in ["0", "-3", "3651", "2147483647"] {
        restore_raw(&srv, "vault", "a", &restore_body(days))
            .await
            .assert_error(400, "InvalidArgument");
    }
    for body in [
        "",
        "<RestoreRequest/>",
        "<RestoreRequest><Days>soon</Days></RestoreRequest>",
        "<RestoreRequest><Days>3</Days>",
        "not xml at all",
    ] {
        restore_raw(&srv, "vault", "a", body)
            .await
            .assert_error(400, "MalformedXML");
    }
    restore_raw(
        &srv,
        "vault",
        "a",
        "<RestoreRequest><Days>1</Days><GlacierJobParameters><Tier>Warp</Tier></GlacierJobParameters></RestoreRequest>",
    )
    .await
    .assert_error(400, "InvalidArgument");

    // Missing keys are NoSuchKey, for RestoreObject and for GET in an ar element.
    restore(&srv, "vault", "nope", 1)
        .await
        .assert_error(404, "NoSuchKey");
    get_raw(&srv, "vault", "nope")
        .await
        .assert_error(404, "NoSuchKey");
    sdk_err(c.get_object().bucket("vault").key("nope").send().await).assert(404, "NoSuchKey");
    restore(&srv, "open", "nope", 1)
        .await
        .assert_error(404, "NoSuchKey");
    restore(&srv, "nosuchbucket", "a", 1)
        .await
        .assert_error(404, "NoSuchBucket");

    // Objects that are not archived cannot be restored (S3: not an archive storage class).
    for (bucket, key) in [("open", "b"), ("scratch", "e")] {
        let r = restore(&srv, bucket, key, 1).await;
        r.assert_error(403, "InvalidObjectState");
        assert!(r.text().contains("only objects in mode ar"), "{}", r.text());
    }

    // Nothing changed: no file, no sidecar byte, no header.
    assert_eq!(srv.files_snapshot(), before);
    let attr_after = std::fs::read(srv.object_on_disk("vault", "a").expect("a").attr).unwrap();
    assert_eq!(attr_before, attr_after);
    assert_eq!(head(&srv, "vault", "a").await.header("x-amz-restore"), None);
    assert_eq!(head(&srv, "open", "b").await.header("x-amz-restore"), None);
    get_raw(&srv, "vault", "a")
        .await
        .assert_error(403, "InvalidObjectState");
    assert_eq!(get(&c, "open", "b").await, b"beta");
});

/// Admin API JSON call with the root admin's token.
async fn admin_call(
    srv: &Server,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let r = srv
        .http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"client_id": srv.access_key(), "client_secret": srv.secret_key()})
                .to_string(),
        )
        .send()
        .await
        .expect("token");
    let v: serde_json::Value =
        serde_json::from_str(&r.text().await.unwrap_or_default()).expect("token json");
    let tok = v["access_token"].as_str().expect("access_token").to_owned();
    let r = srv
        .http()
        .request(method, format!("{}{path}", srv.admin_url()))
        .bearer_auth(tok)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("admin call");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// A service account with `grants`; returns (client_id, client_secret).
async fn account(
    srv: &Server,
    name: &str,
    role: &str,
    grants: serde_json::Value,
) -> (String, String) {
    let v = admin_call(
        srv,
        Method::POST,
        "/api/v1/service-accounts",
        serde_json::json!({"name": name, "role": role}),
    )
    .await;
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    if grants.as_array().is_some_and(|g| !g.is_empty()) {
        admin_call(
            srv,
            Method::PUT,
            &format!("/api/v1/service-accounts/{}/grants", s("id")),
            serde_json::json!({ "grants": grants }),
        )
        .await;
    }
    (s("client_id"), s("client_secret"))
}

storage_test!(restore_is_a_write_permission, |srv| async move {
    archive(&srv, "vault", &[("a", b"alpha")]).await;
    archive(&srv, "closet", &[("x", b"x")]).await;
    let (rak, rsk) = account(&srv, "reader", "readonly", serde_json::json!([])).await;
    let (gak, gsk) = account(
        &srv,
        "granted-read",
        "user",
        serde_json::json!([{"bucket": "vault", "access": "read"}]),
    )
    .await;
    let (oak, osk) = account(
        &srv,
        "elsewhere",
        "user",
        serde_json::json!([{"bucket": "closet", "access": "write"}]),
    )
    .await;
    let (wak, wsk) = account(
        &srv,
        "writer",
        "user",
        serde_json::json!([{"bucket": "vault", "access": "write"}]),
    )
    .await;
    let as_ = |ak: &str, sk: &str, key: &str, days: u32| {
        srv.raw(Method::POST, &key_path("vault", key))
            .query("restore", "")
            .creds(ak, sk)
            .body(restore_body(&days.to_string()).into_bytes())
    };
    for (ak, sk) in [(&rak, &rsk), (&gak, &gsk), (&oak, &osk)] {
        as_(ak, sk, "a", 1)
            .send()
            .await
            .assert_error(403, "AccessDenied");
        // Missing keys do not leak to callers without access to the bucket.
        as_(ak, sk, "nope", 1)
            .send()
            .await
            .assert_error(403, "AccessDenied");
    }
    // Without read access to the bucket, a missing key is AccessDenied too, not NoSuchKey.
    srv.raw(Method::GET, &key_path("vault", "nope"))
        .creds(&oak, &osk)
        .send()
        .await
        .assert_error(403, "AccessDenied");
    assert_eq!(restore_record(&srv, "vault", "a"), serde_json::Value::Null);

    as_(&wak, &wsk, "a", 1).send().await.assert_status(202);
    wait_restored(&srv, "vault", "a").await;
    assert_eq!(restore_record(&srv, "vault", "a")["requested_by"], "writer");
    // Reading the restored copy is an ordinary read: the readonly account may.
    let g = srv
        .raw(Method::GET, &key_path("vault", "a"))
        .creds(&rak, &rsk)
        .send()
        .await;
    g.assert_status(200);
    assert_eq!(g.body, b"alpha");
    // …but not an account whose grants do not cover the bucket.
    srv.raw(Method::GET, &key_path("vault", "a"))
        .creds(&oak, &osk)
        .send()
        .await
        .assert_error(403, "AccessDenied");
});

storage_test!(bit_rot_fails_the_restore, |srv| async move {
    let data = pattern(200_000, 3);
    archive(
        &srv,
        "vault",
        &[("doc.pdf", &data), ("gone.pdf", b"soon gone")],
    )
    .await;
    let disk = srv.object_on_disk("vault", "doc.pdf").expect("on disk");
    // Flip one byte in the middle: same size, different SHA-256.
    let mut rotten = data.clone();
    rotten[100_000] ^= 0x40;
    std::fs::write(&disk.data, &rotten).expect("corrupt");

    restore(&srv, "vault", "doc.pdf", 3)
        .await
        .assert_status(202);
    let h = wait_restored(&srv, "vault", "doc.pdf").await;
    assert_eq!(
        h.header("x-artstore-restore-status").as_deref(),
        Some("failed")
    );
    assert_eq!(
        h.header("x-amz-restore").as_deref(),
        Some(r#"ongoing-request="false""#),
        "no expiry date: nothing is readable"
    );
    let r = get_raw(&srv, "vault", "doc.pdf").await;
    r.assert_error(403, "InvalidObjectState");
    assert!(r.text().contains("last restore failed"), "{}", r.text());
    let rec = restore_record(&srv, "vault", "doc.pdf");
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(rec.get("expires_at").is_none(), "{rec}");
    assert!(rec["completed_at"].is_string(), "{rec}");
    let err = rec["error"].as_str().unwrap_or_default();
    assert!(err.contains("SHA-256"), "{rec}");
    assert!(err.contains(&sha256_hex(&rotten)), "{rec}");
    assert!(
        srv.logs().contains("restore failed"),
        "the failure is logged: {}",
        srv.logs()
    );
    // The sidecar still describes the original data; only `restore` changed.
    assert_eq!(
        srv.object_on_disk("vault", "doc.pdf").unwrap().json["checksum"],
        sha256_hex(&data)
    );

    // Another request verifies again; once the file is repaired, the restore succeeds.
    std::fs::write(&disk.data, &data).expect("repair");
    restore(&srv, "vault", "doc.pdf", 3)
        .await
        .assert_status(202);
    let h = wait_restored(&srv, "vault", "doc.pdf").await;
    assert_eq!(
        h.header("x-artstore-restore-status").as_deref(),
        Some("completed")
    );
    let g = get_raw(&srv, "vault", "doc.pdf").await;
    g.assert_status(200);
    assert!(g.body == data);
    let rec = restore_record(&srv, "vault", "doc.pdf");
    assert_eq!(rec["status"], "completed", "{rec}");
    assert!(rec.get("error").is_none(), "{rec}");

    // A missing data file fails a restore the same way.
    let gone = srv.object_on_disk("vault", "gone.pdf").expect("on disk");
    std::fs::remove_file(&gone.data).expect("remove");
    // (through the SDK: a 202 is a success for it)
    srv.client()
        .restore_object()
        .bucket("vault")
        .key("gone.pdf")
        .restore_request(s3::types::RestoreRequest::builder().days(1).build())
        .send()
        .await
        .expect("restore-object through the SDK");
    let h = wait_restored(&srv, "vault", "gone.pdf").await;
    assert_eq!(
        h.header("x-artstore-restore-status").as_deref(),
        Some("failed")
    );
    let rec = restore_record(&srv, "vault", "gone.pdf");
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap_or_default()
            .contains("missing"),
        "{rec}"
    );
    get_raw(&srv, "vault", "gone.pdf")
        .await
        .assert_error(403, "InvalidObjectState");
});

storage_test!(
    restore_survives_rebuild_and_restart_and_expires,
    |srv| async move {
        let mut srv = srv;
        let data = pattern(50_000, 11);
        archive(&srv, "vault", &[("a/doc.txt", &data)]).await;
        restore(&srv, "vault", "a/doc.txt", 1)
            .await
            .assert_status(202);
        let restored = wait_restored(&srv, "vault", "a/doc.txt").await;
        let header = restored.header("x-amz-restore").expect("x-amz-restore");
        assert!(header.contains("expiry-date"), "{header}");
        let rec = restore_record(&srv, "vault", "a/doc.txt");

        // The index is only a cache: throw it away, rebuild it from the sidecars.
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        srv.delete_index().await;
        // Only serve and migrate create an index; rebuild fills an empty one.
        let (ok, _, err) = srv.cli(&["migrate"]);
        assert!(ok, "migrate: {err}");
        let report = index_rebuild(&srv);
        assert_eq!(report["objects_indexed"], 1, "{report}");
        srv.restart().await;
        let h = head(&srv, "vault", "a/doc.txt").await;
        assert_eq!(h.header("x-amz-restore"), Some(header.clone()));
        let g = get_raw(&srv, "vault", "a/doc.txt").await;
        g.assert_status(200);
        assert!(g.body == data);
        assert_eq!(restore_record(&srv, "vault", "a/doc.txt"), rec);

        // A crash and a restart keep it too.
        srv.kill9();
        srv.restart().await;
        assert_eq!(
            head(&srv, "vault", "a/doc.txt")
                .await
                .header("x-amz-restore"),
            Some(header.clone())
        );
        get_raw(&srv, "vault", "a/doc.txt").await.assert_status(200);

        // Expiry: the sidecar says the period ended (as it will once the date passes); a rebuild
        // carries that into the index, and the object is archived again.
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        let disk = srv.object_on_disk("vault", "a/doc.txt").expect("on disk");
        let mut json = disk.json.clone();
        json["restore"]["expires_at"] = serde_json::json!("2020-01-02T00:00:00Z");
        std::fs::write(&disk.attr, serde_json::to_vec_pretty(&json).unwrap()).expect("rewrite");
        let report = index_rebuild(&srv);
        assert_eq!(report["rows_repaired"], 1, "{report}");
        srv.restart().await;
        let h = head(&srv, "vault", "a/doc.txt").await;
        assert_eq!(h.header("x-amz-restore"), None, "expired: no restored copy");
        assert_eq!(
            h.header("x-artstore-restore-status").as_deref(),
            Some("expired")
        );
        let r = get_raw(&srv, "vault", "a/doc.txt").await;
        r.assert_error(403, "InvalidObjectState");
        assert_eq!(
            xml_first(&r.text(), "Message").as_deref(),
            Some("storage element 'vault' is in mode ar: objects are archived and cannot be read"),
            "the plain archive answer again"
        );
        // An expired restore can be requested again: a new verification.
        restore(&srv, "vault", "a/doc.txt", 1)
            .await
            .assert_status(202);
        let h = wait_restored(&srv, "vault", "a/doc.txt").await;
        assert_eq!(
            h.header("x-artstore-restore-status").as_deref(),
            Some("completed")
        );
        get_raw(&srv, "vault", "a/doc.txt").await.assert_status(200);
        assert_ne!(
            restore_record(&srv, "vault", "a/doc.txt")["requested_at"],
            rec["requested_at"]
        );
    }
);

storage_test!(
    ongoing_restore_resumes_after_a_crash,
    Server::builder().env("ARTSTORE_RESTORE_RATE", SLOW_RATE),
    |srv| async move {
        let mut srv = srv;
        let big = pattern(BIG, 5);
        archive(&srv, "vault", &[("big", &big)]).await;
        restore(&srv, "vault", "big", 4).await.assert_status(202);
        assert_eq!(
            head(&srv, "vault", "big")
                .await
                .header("x-amz-restore")
                .as_deref(),
            Some(r#"ongoing-request="true""#)
        );
        // kill -9 in the middle of the verification: the task dies with the process.
        srv.kill9();
        assert_eq!(restore_record(&srv, "vault", "big")["status"], "ongoing");
        srv.restart().await;
        let h = wait_restored(&srv, "vault", "big").await;
        assert_eq!(
            h.header("x-artstore-restore-status").as_deref(),
            Some("completed")
        );
        assert!(
            srv.logs().contains("resuming an interrupted restore"),
            "{}",
            srv.logs()
        );
        let rec = restore_record(&srv, "vault", "big");
        assert_eq!(rec["status"], "completed", "{rec}");
        assert_eq!(rec["days"], 4, "{rec}");
        let g = get_raw(&srv, "vault", "big").await;
        g.assert_status(200);
        assert!(g.body == big);
    }
);

storage_test!(aws_cli_restore_object, |srv| async move {
    if !require_tool("aws") {
        return;
    }
    archive(&srv, "vault", &[("report.pdf", b"%PDF-1.7 archived")]).await;
    let home = tempfile::tempdir().expect("tempdir");
    let aws = |args: &[&str]| {
        let mut cmd = Command::new("aws");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .envs(srv.tool_env())
            .arg("--endpoint-url")
            .arg(srv.s3_url())
            .args(args)
            .args(["--output", "json"]);
        let out = cmd.output().expect("run aws");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = aws(&[
        "s3api",
        "restore-object",
        "--bucket",
        "vault",
        "--key",
        "report.pdf",
        "--restore-request",
        "Days=2",
    ]);
    assert!(ok, "restore-object: {err}");
    let deadline = std::time::Instant::now() + WAIT;
    let restore = loop {
        let (ok, out, err) = aws(&[
            "s3api",
            "head-object",
            "--bucket",
            "vault",
            "--key",
            "report.pdf",
        ]);
        assert!(ok, "head-object: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        let r = v["Restore"].as_str().unwrap_or_default().to_owned();
        if r.contains(r#"ongoing-request="false""#) {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "head-object: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(restore.contains("expiry-date=\""), "{restore}");
    let target = home.path().join("copy.pdf");
    let (ok, _, err) = aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "vault",
        "--key",
        "report.pdf",
        target.to_str().unwrap_or_default(),
    ]);
    assert!(ok, "get-object: {err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"%PDF-1.7 archived");
    // A second request on the restored object succeeds (200) and is not an error for aws-cli.
    let (ok, _, err) = aws(&[
        "s3api",
        "restore-object",
        "--bucket",
        "vault",
        "--key",
        "report.pdf",
        "--restore-request",
        "Days=3",
    ]);
    assert!(ok, "second restore-object: {err}");
    assert_eq!(restore_record(&srv, "vault", "report.pdf")["days"], 3);
});

#[test]
fn restore_rate_is_a_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("artstore.toml");
    std::fs::write(&cfg, "restore_rate_bytes = 1048576\n").expect("write config");
    for extra in [
        vec!["--config", cfg.to_str().unwrap_or_default()],
        vec!["--restore-rate-bytes", "2097152"],
    ] {
        let out = Command::new(artstore_bin())
            .arg("migrate")
            .args(&extra)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env_remove("ARTSTORE_DATABASE_URL")
            .env_remove("ARTSTORE_RESTORE_RATE")
            .output()
            .expect("run artstore migrate");
        assert!(
            out.status.success(),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(artstore_bin())
        .arg("migrate")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("ARTSTORE_DATABASE_URL")
        .env("ARTSTORE_RESTORE_RATE", "fast")
        .output()
        .expect("run artstore migrate");
    assert!(!out.status.success(), "a rate must be a number of bytes");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("restore-rate-bytes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
