//! Storage element modes enforced as access policies (issue 4): mode × operation with exact S3
//! error codes and messages, stored data unchanged after every denial, transitions through the
//! `artstore element` CLI on the server's own database, and bucket policies.

mod common;
use common::*;

use s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier,
};

/// Runs `artstore element <args>` on the server's data dir and database.
fn cli(srv: &Server, args: &[&str]) -> (bool, String, String) {
    srv.cli(&[&["element"], args].concat())
}

#[track_caller]
fn cli_ok(srv: &Server, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = cli(srv, args);
    assert!(ok, "artstore element {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[track_caller]
fn cli_fails(srv: &Server, args: &[&str], needle: &str) {
    let (ok, out, err) = cli(srv, args);
    assert!(!ok, "artstore element {args:?} should fail: {out}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

/// An element in `mode` holding `a` = "alpha" (written while it was still rw).
async fn element_in(srv: &Server, name: &str, mode: &str) {
    cli_ok(srv, &["create", name, "--mode", "rw"]);
    put(&srv.client(), name, "a", "alpha").await;
    match mode {
        "rw" => {}
        "ro" => {
            cli_ok(srv, &["mode", name, "ro", "--reason", "closed"]);
        }
        "ar" => {
            cli_ok(srv, &["mode", name, "ro"]);
            cli_ok(srv, &["mode", name, "ar", "--reason", "archive"]);
        }
        other => panic!("{other}"),
    }
}

#[track_caller]
fn denied(f: &SdkFail, status: u16, code: &str, message: &str) {
    f.assert(status, code);
    assert_eq!(f.message, message, "{f:#?}");
}

async fn start_upload(c: &s3::Client, b: &str, k: &str) -> String {
    c.create_multipart_upload()
        .bucket(b)
        .key(k)
        .send()
        .await
        .expect("create upload")
        .upload_id()
        .expect("upload id")
        .to_owned()
}

async fn upload_part(c: &s3::Client, b: &str, k: &str, id: &str) -> String {
    c.upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"part-one"))
        .send()
        .await
        .expect("upload part")
        .e_tag()
        .unwrap_or_default()
        .to_owned()
}

fn completed(etag: &str) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
        .build()
}

fn delete_of(keys: &[&str]) -> Delete {
    let mut d = Delete::builder();
    for k in keys {
        d = d.objects(ObjectIdentifier::builder().key(*k).build().expect("id"));
    }
    d.build().expect("delete")
}

storage_test!(
    rw_allows_new_keys_denies_overwrite_and_delete,
    |srv| async move {
        let c = srv.client();
        element_in(&srv, "invoices", "rw").await;
        let msg_overwrite =
            "storage element 'invoices' is in mode rw: existing objects cannot be overwritten";
        let msg_delete = "storage element 'invoices' is in mode rw: objects cannot be deleted";

        put(&c, "invoices", "b", "bravo").await;
        assert_eq!(get(&c, "invoices", "b").await, b"bravo");

        let f = sdk_err(
            c.put_object()
                .bucket("invoices")
                .key("a")
                .body(ByteStream::from_static(b"changed"))
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg_overwrite);
        assert_object(&srv, "invoices", "a", b"alpha").await;

        let f = sdk_err(c.delete_object().bucket("invoices").key("a").send().await);
        denied(&f, 403, "AccessDenied", msg_delete);
        assert_object(&srv, "invoices", "a", b"alpha").await;

        // DeleteObjects: 200 with one error per key, nothing deleted.
        let out = c
            .delete_objects()
            .bucket("invoices")
            .delete(delete_of(&["a", "b"]))
            .send()
            .await
            .expect("delete_objects");
        assert!(out.deleted().is_empty(), "{out:?}");
        let errs = out.errors();
        assert_eq!(errs.len(), 2, "{out:?}");
        for e in errs {
            assert_eq!(e.code(), Some("AccessDenied"));
            assert_eq!(e.message(), Some(msg_delete));
        }
        assert_eq!(list_keys(&c, "invoices").await, vec!["a", "b"]);

        // Metadata-only copy onto itself is allowed in rw; the bytes stay.
        c.copy_object()
            .bucket("invoices")
            .key("a")
            .copy_source("invoices/a")
            .metadata_directive(MetadataDirective::Replace)
            .metadata("reviewed", "yes")
            .send()
            .await
            .expect("metadata-only copy in rw");
        let head = c
            .head_object()
            .bucket("invoices")
            .key("a")
            .send()
            .await
            .expect("head");
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("reviewed"))
                .map(String::as_str),
            Some("yes")
        );
        assert_object(&srv, "invoices", "a", b"alpha").await;

        // CopyObject to a new key: allowed; onto another existing key: an overwrite.
        c.copy_object()
            .bucket("invoices")
            .key("c")
            .copy_source("invoices/a")
            .send()
            .await
            .expect("copy to a new key");
        let f = sdk_err(
            c.copy_object()
                .bucket("invoices")
                .key("b")
                .copy_source("invoices/a")
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg_overwrite);
        assert_object(&srv, "invoices", "b", b"bravo").await;

        // Multipart onto an existing key is refused at once; onto a new key it works.
        let f = sdk_err(
            c.create_multipart_upload()
                .bucket("invoices")
                .key("a")
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg_overwrite);
        let id = start_upload(&c, "invoices", "d").await;
        let etag = upload_part(&c, "invoices", "d", &id).await;
        c.complete_multipart_upload()
            .bucket("invoices")
            .key("d")
            .upload_id(&id)
            .multipart_upload(completed(&etag))
            .send()
            .await
            .expect("complete in rw");
        assert_eq!(get(&c, "invoices", "d").await, b"part-one");

        // A bucket that is not edit cannot be deleted (even when it would be empty).
        let f = sdk_err(c.delete_bucket().bucket("invoices").send().await);
        denied(
            &f,
            403,
            "AccessDenied",
            "storage element 'invoices' is in mode rw: only an empty element in mode edit can be deleted",
        );
        assert_eq!(list_keys(&c, "invoices").await, vec!["a", "b", "c", "d"]);
        srv.assert_no_temp_files("invoices");
    }
);

storage_test!(
    ro_denies_every_write_and_inflight_uploads_fail_at_completion,
    |srv| async move {
        let c = srv.client();
        element_in(&srv, "ledger", "rw").await;
        // Started while rw, finished after the switch to ro.
        let id = start_upload(&c, "ledger", "late").await;
        let etag = upload_part(&c, "ledger", "late", &id).await;
        cli_ok(&srv, &["mode", "ledger", "ro", "--reason", "year closed"]);
        let msg = "storage element 'ledger' is in mode ro: objects cannot be created or changed";

        let f = sdk_err(
            c.complete_multipart_upload()
                .bucket("ledger")
                .key("late")
                .upload_id(&id)
                .multipart_upload(completed(&etag))
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg);
        assert!(!exists(&c, "ledger", "late").await);

        let f = sdk_err(
            c.upload_part()
                .bucket("ledger")
                .key("late")
                .upload_id(&id)
                .part_number(2)
                .body(ByteStream::from_static(b"more"))
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg);
        let f = sdk_err(
            c.create_multipart_upload()
                .bucket("ledger")
                .key("new")
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg);
        // The leftover upload can still be aborted: that changes no object.
        c.abort_multipart_upload()
            .bucket("ledger")
            .key("late")
            .upload_id(&id)
            .send()
            .await
            .expect("abort in ro");

        let f = sdk_err(
            c.put_object()
                .bucket("ledger")
                .key("new")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg);
        let f = sdk_err(
            c.copy_object()
                .bucket("ledger")
                .key("a")
                .copy_source("ledger/a")
                .metadata_directive(MetadataDirective::Replace)
                .metadata("x", "y")
                .send()
                .await,
        );
        denied(&f, 403, "AccessDenied", msg);
        let f = sdk_err(c.delete_object().bucket("ledger").key("a").send().await);
        denied(
            &f,
            403,
            "AccessDenied",
            "storage element 'ledger' is in mode ro: objects cannot be deleted",
        );
        // Reads still work and nothing changed.
        assert_eq!(get(&c, "ledger", "a").await, b"alpha");
        let head = c
            .head_object()
            .bucket("ledger")
            .key("a")
            .send()
            .await
            .expect("head");
        assert!(head.metadata().is_none_or(|m| m.is_empty()));
        assert_object(&srv, "ledger", "a", b"alpha").await;
        assert_eq!(list_keys(&c, "ledger").await, vec!["a"]);

        // ro → rw needs --confirm; then writes work again on the next request.
        cli_fails(&srv, &["mode", "ledger", "rw"], "confirm");
        let f = sdk_err(
            c.put_object()
                .bucket("ledger")
                .key("new")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        f.assert(403, "AccessDenied");
        cli_ok(
            &srv,
            &[
                "mode",
                "ledger",
                "rw",
                "--confirm",
                "--reason",
                "correction",
            ],
        );
        put(&c, "ledger", "new", "x").await;
        srv.assert_no_temp_files("ledger");
    }
);

storage_test!(
    ar_reads_are_invalid_object_state_head_and_list_work,
    |srv| async move {
        let c = srv.client();
        element_in(&srv, "vault", "ar").await;
        create_bucket(&c, "work").await;
        let msg = "storage element 'vault' is in mode ar: objects are archived and cannot be read";

        let f = sdk_err(c.get_object().bucket("vault").key("a").send().await);
        denied(&f, 403, "InvalidObjectState", msg);
        let f = sdk_err(
            c.get_object()
                .bucket("vault")
                .key("a")
                .range("bytes=0-1")
                .send()
                .await,
        );
        f.assert(403, "InvalidObjectState");
        // Presigned GET: the same answer.
        let r = srv
            .raw(Method::GET, &key_path("vault", "a"))
            .presigned(std::time::Duration::from_secs(300))
            .send()
            .await;
        r.assert_error(403, "InvalidObjectState");

        let head = c
            .head_object()
            .bucket("vault")
            .key("a")
            .send()
            .await
            .expect("head in ar");
        assert_eq!(head.content_length(), Some(5));
        assert_eq!(list_keys(&c, "vault").await, vec!["a"]);

        // An archived object cannot be a copy source, whole or as a part.
        let f = sdk_err(
            c.copy_object()
                .bucket("work")
                .key("x")
                .copy_source("vault/a")
                .send()
                .await,
        );
        denied(&f, 403, "InvalidObjectState", msg);
        assert!(!exists(&c, "work", "x").await);
        let id = start_upload(&c, "work", "y").await;
        let f = sdk_err(
            c.upload_part_copy()
                .bucket("work")
                .key("y")
                .upload_id(&id)
                .part_number(1)
                .copy_source("vault/a")
                .send()
                .await,
        );
        denied(&f, 403, "InvalidObjectState", msg);

        // Writes are refused; data unchanged on disk.
        let f = sdk_err(
            c.put_object()
                .bucket("vault")
                .key("b")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        denied(
            &f,
            403,
            "AccessDenied",
            "storage element 'vault' is in mode ar: objects cannot be created or changed",
        );
        let f = sdk_err(c.delete_object().bucket("vault").key("a").send().await);
        f.assert(403, "AccessDenied");
        let disk = srv.object_on_disk("vault", "a").expect("object on disk");
        assert_eq!(disk.data_bytes(), b"alpha");

        // ar is terminal.
        for to in ["ro", "rw", "edit", "ar"] {
            cli_fails(&srv, &["mode", "vault", to], "mode ar is final");
        }
    }
);

storage_test!(transitions_are_checked_and_recorded, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "scratch").await;
    // edit never changes, nothing becomes edit.
    cli_fails(
        &srv,
        &["mode", "scratch", "ro"],
        "cannot change from mode edit to ro: mode edit is final",
    );
    cli_ok(
        &srv,
        &[
            "create",
            "books",
            "--mode",
            "rw",
            "--description",
            "ledgers",
        ],
    );
    cli_fails(
        &srv,
        &["mode", "books", "ar"],
        "cannot change from mode rw to ar: from rw the allowed targets are: ro",
    );
    cli_fails(&srv, &["mode", "books", "edit"], "allowed targets are: ro");
    cli_fails(&srv, &["mode", "books", "frozen"], "unknown mode 'frozen'");
    cli_fails(
        &srv,
        &["mode", "nosuch", "ro"],
        "storage element 'nosuch' not found",
    );
    let shown = cli_ok(&srv, &["show", "books"]);
    assert_eq!(shown["mode"], "rw");
    assert_eq!(shown["mode_history"], serde_json::json!([]));

    cli_ok(
        &srv,
        &["mode", "books", "ro", "--reason", "closed", "--by", "alice"],
    );
    cli_ok(
        &srv,
        &["mode", "books", "rw", "--confirm", "--reason", "fix"],
    );
    let shown = cli_ok(&srv, &["show", "books"]);
    assert_eq!(shown["mode"], "rw");
    let h = shown["mode_history"].as_array().expect("history");
    assert_eq!(h.len(), 2, "{shown}");
    assert_eq!(
        (h[0]["from"].as_str(), h[0]["to"].as_str()),
        (Some("rw"), Some("ro"))
    );
    assert_eq!(h[0]["changed_by"], "alice");
    assert_eq!(h[0]["reason"], "closed");
    assert!(h[0]["changed_ms"].as_i64().is_some());
    assert_eq!(
        (h[1]["from"].as_str(), h[1]["to"].as_str()),
        (Some("ro"), Some("rw"))
    );

    // element.json on disk follows the mode.
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(srv.element_dir("books").join("element.json")).expect("element.json"),
    )
    .expect("json");
    assert_eq!(doc["mode"], "rw");
    assert!(doc["last_mode_change"].is_string(), "{doc}");

    let listed = cli_ok(&srv, &["list"]);
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, vec!["books", "scratch"]);
    cli_fails(&srv, &["create", "books"], "already exists");
    cli_fails(
        &srv,
        &["create", "Bad_Name"],
        "invalid element name 'Bad_Name'",
    );
});

storage_test!(delete_bucket_only_empty_and_edit, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "tmp").await;
    put(&c, "tmp", "k", "v").await;
    sdk_err(c.delete_bucket().bucket("tmp").send().await).assert(409, "BucketNotEmpty");
    assert_eq!(get(&c, "tmp", "k").await, b"v");
    c.delete_object()
        .bucket("tmp")
        .key("k")
        .send()
        .await
        .expect("delete in edit");
    c.delete_bucket()
        .bucket("tmp")
        .send()
        .await
        .expect("delete empty edit");
    cli_ok(&srv, &["create", "kept", "--mode", "rw"]);
    sdk_err(c.delete_bucket().bucket("kept").send().await).assert(403, "AccessDenied");
    c.head_bucket()
        .bucket("kept")
        .send()
        .await
        .expect("still there");
});

storage_test!(cli_creates_an_element_on_its_own_path, |srv| async move {
    let outside = tempfile::tempdir().expect("tempdir");
    let root = outside.path().join("vault");
    let el = cli_ok(
        &srv,
        &["create", "placed", "--path", root.to_str().unwrap()],
    );
    assert_eq!(el["backend"]["path"], root.to_str().unwrap(), "{el}");
    let c = srv.client();
    put(&c, "placed", "a.txt", "on its own disk").await;
    assert!(root.join("element.json").is_file());
    assert_eq!(
        walk_files(&root)
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".attr.json"))
            .count(),
        1
    );
    // A path in use: a clear error, and no element.
    let (ok, _, err) = cli(&srv, &["create", "again", "--path", root.to_str().unwrap()]);
    assert!(!ok && err.contains("not empty"), "{err}");
    let (ok, _, _) = cli(&srv, &["show", "again"]);
    assert!(!ok, "no element was left behind");
    assert_eq!(get(&c, "placed", "a.txt").await, b"on its own disk");
});

storage_test!(
    bucket_policy_shows_mode_denies_and_cannot_override_them,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "open").await;
        sdk_err(c.get_bucket_policy().bucket("open").send().await)
            .assert(404, "NoSuchBucketPolicy");

        element_in(&srv, "closed", "ro").await;
        // GetBucketPolicy answers the stored document only; the mode's Deny statements are
        // in the effective policy of the admin API.
        sdk_err(c.get_bucket_policy().bucket("closed").send().await)
            .assert(404, "NoSuchBucketPolicy");
        let v = admin_call(
            &srv,
            Method::GET,
            "/api/v1/storage-elements/closed/policy",
            serde_json::Value::Null,
        )
        .await;
        let doc = v.to_string();
        assert_eq!(v["Version"], "2012-10-17");
        let stmts = v["Statement"].as_array().expect("statements");
        let denied_actions: Vec<String> = stmts
            .iter()
            .filter(|s| s["Effect"] == "Deny")
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        assert!(denied_actions.contains(&"s3:PutObject".to_owned()), "{doc}");
        assert!(
            denied_actions.contains(&"s3:DeleteObject".to_owned()),
            "{doc}"
        );
        assert!(
            stmts
                .iter()
                .all(|s| s["Resource"] == "arn:aws:s3:::closed/*"),
            "{doc}"
        );

        // Bad documents: MalformedPolicy, nothing stored.
        for bad in [
            "{not json",
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:LaunchRocket"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
        ] {
            sdk_err(
                c.put_bucket_policy()
                    .bucket("closed")
                    .policy(bad)
                    .send()
                    .await,
            )
            .assert(400, "MalformedPolicy");
        }
        sdk_err(c.get_bucket_policy().bucket("closed").send().await)
            .assert(404, "NoSuchBucketPolicy");

        // An Allow for everything cannot override the mode's Deny.
        let allow_all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::closed/*"}]}"#;
        c.put_bucket_policy()
            .bucket("closed")
            .policy(allow_all)
            .send()
            .await
            .expect("put policy");
        let f = sdk_err(
            c.put_object()
                .bucket("closed")
                .key("b")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        denied(
            &f,
            403,
            "AccessDenied",
            "storage element 'closed' is in mode ro: objects cannot be created or changed",
        );
        let with_stored = c
            .get_bucket_policy()
            .bucket("closed")
            .send()
            .await
            .expect("policy");
        let v: serde_json::Value =
            serde_json::from_str(with_stored.policy().unwrap_or_default()).expect("json");
        assert!(
            v["Statement"]
                .as_array()
                .expect("stmts")
                .iter()
                .any(|s| s["Effect"] == "Allow"),
            "{v}"
        );

        // A Deny statement binds even the admin, in an edit element.
        let deny_get = r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::open/*"}]}"#;
        put(&c, "open", "k", "v").await;
        c.put_bucket_policy()
            .bucket("open")
            .policy(deny_get)
            .send()
            .await
            .expect("put deny");
        sdk_err(c.get_object().bucket("open").key("k").send().await).assert(403, "AccessDenied");
        c.delete_bucket_policy()
            .bucket("open")
            .send()
            .await
            .expect("delete policy");
        assert_eq!(get(&c, "open", "k").await, b"v");
        sdk_err(c.get_bucket_policy().bucket("open").send().await)
            .assert(404, "NoSuchBucketPolicy");

        // aws-cli reads the stored policy.
        if require_tool("aws") {
            let out = std::process::Command::new("aws")
                .envs(srv.tool_env())
                .env_remove("AWS_CA_BUNDLE")
                .args([
                    "s3api",
                    "get-bucket-policy",
                    "--bucket",
                    "closed",
                    "--output",
                    "json",
                ])
                .output()
                .expect("aws");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("aws output");
            let inner: serde_json::Value =
                serde_json::from_str(v["Policy"].as_str().expect("Policy")).expect("policy json");
            assert_eq!(inner["Version"], "2012-10-17");
        }
    }
);

fn usage(srv: &Server, name: &str) -> (i64, i64) {
    let v = cli_ok(srv, &["show", name]);
    (
        v["used_bytes"].as_i64().expect("used_bytes"),
        v["object_count"].as_i64().expect("object_count"),
    )
}

storage_test!(
    quota_refuses_puts_parts_and_completions_with_507,
    |srv| async move {
        let c = srv.client();
        cli_ok(&srv, &["create", "small", "--capacity", "10"]);
        put(&c, "small", "a", "123456").await;
        let f = sdk_err(
            c.put_object()
                .bucket("small")
                .key("b")
                .body(ByteStream::from_static(b"123456"))
                .send()
                .await,
        );
        f.assert(507, "QuotaExceeded");
        assert_eq!(
            f.message,
            "storage element 'small' is full: 6 of 10 bytes used, 6 more needed"
        );
        assert!(!exists(&c, "small", "b").await);
        assert_eq!(usage(&srv, "small"), (6, 1));
        // An overwrite only needs the difference.
        put(&c, "small", "a", "12345678").await;
        assert_eq!(usage(&srv, "small"), (8, 1));

        let id = start_upload(&c, "small", "big").await;
        let f = sdk_err(
            c.upload_part()
                .bucket("small")
                .key("big")
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from_static(b"12345"))
                .send()
                .await,
        );
        f.assert(507, "QuotaExceeded");
        // A part that fits alone, but not once another object took the room: refused at completion.
        let etag = c
            .upload_part()
            .bucket("small")
            .key("big")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"12"))
            .send()
            .await
            .expect("part")
            .e_tag()
            .unwrap_or_default()
            .to_owned();
        put(&c, "small", "c", "1").await;
        let f = sdk_err(
            c.complete_multipart_upload()
                .bucket("small")
                .key("big")
                .upload_id(&id)
                .multipart_upload(completed(&etag))
                .send()
                .await,
        );
        f.assert(507, "QuotaExceeded");
        assert!(!exists(&c, "small", "big").await);
        assert_eq!(usage(&srv, "small"), (9, 2));
        let f = sdk_err(
            c.copy_object()
                .bucket("small")
                .key("d")
                .copy_source("small/a")
                .send()
                .await,
        );
        f.assert(507, "QuotaExceeded");
        assert!(!exists(&c, "small", "d").await);
        assert_eq!(srv.objects_on_disk("small").len(), 2);
        srv.assert_no_temp_files("small");
    }
);

storage_test!(quota_counters_exact_under_concurrency, |srv| async move {
    let c = srv.client();
    cli_ok(&srv, &["create", "race", "--capacity", "100"]);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.put_object()
                .bucket("race")
                .key(format!("k{i:02}"))
                .body(ByteStream::from_static(b"0123456789"))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.raw_response().map(|r| r.status().as_u16()))
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(()) => ok += 1,
            Err(status) => assert_eq!(status, Some(507)),
        }
    }
    assert_eq!(ok, 10, "exactly the quota's worth of objects is stored");
    assert_eq!(usage(&srv, "race"), (100, 10));
    let keys = list_keys(&c, "race").await;
    assert_eq!(keys.len(), 10);
    let mut tasks = Vec::new();
    for k in keys {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.delete_object()
                .bucket("race")
                .key(k)
                .send()
                .await
                .expect("delete");
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(usage(&srv, "race"), (0, 0));
    srv.assert_no_temp_files("race");
});

/// Admin API JSON call with the root admin's token.
async fn admin_call(
    srv: &Server,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let tok = bearer_token(srv, srv.access_key(), srv.secret_key()).await;
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

async fn bearer_token(srv: &Server, id: &str, secret: &str) -> String {
    let r = srv
        .http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(serde_json::json!({"client_id": id, "client_secret": secret}).to_string())
        .send()
        .await
        .expect("token");
    let v: serde_json::Value =
        serde_json::from_str(&r.text().await.unwrap_or_default()).expect("token json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// Creates a service account; returns (id, client_id, client_secret).
async fn account(srv: &Server, name: &str, role: &str) -> (String, String, String) {
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
    (s("id"), s("client_id"), s("client_secret"))
}

storage_test!(
    roles_grants_and_bearer_tokens_go_through_the_evaluator,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "granted").await;
        create_bucket(&c, "other").await;
        put(&c, "granted", "a", "alpha").await;
        put(&c, "other", "a", "secret").await;

        let (uid, uak, usk) = account(&srv, "u1", "user").await;
        admin_call(
            &srv,
            Method::PUT,
            &format!("/api/v1/service-accounts/{uid}/grants"),
            serde_json::json!({"grants": [{"bucket": "granted", "access": "write"}]}),
        )
        .await;
        let u = srv.client_with(&uak, &usk);
        put(&u, "granted", "x", "by u1").await;
        let f = sdk_err(u.get_object().bucket("other").key("a").send().await);
        denied(
            &f,
            403,
            "AccessDenied",
            "service account 'u1' (role user) is not allowed to s3:GetObject on storage element 'other'",
        );
        let listed = u.list_buckets().send().await.expect("list buckets");
        let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
        assert_eq!(names, vec!["granted"]);
        sdk_err(u.create_bucket().bucket("mine").send().await).assert(403, "AccessDenied");
        sdk_err(u.delete_bucket().bucket("other").send().await).assert(403, "AccessDenied");
        sdk_err(
            u.put_bucket_policy()
                .bucket("granted")
                .policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*"}]}"#)
                .send()
                .await,
        )
        .assert(403, "AccessDenied");

        let (_, rak, rsk) = account(&srv, "r1", "readonly").await;
        let r = srv.client_with(&rak, &rsk);
        assert_eq!(get(&r, "other", "a").await, b"secret");
        sdk_err(
            r.put_object()
                .bucket("granted")
                .key("y")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        )
        .assert(403, "AccessDenied");
        assert!(!exists(&c, "granted", "y").await);

        let (_, aak, ask) = account(&srv, "au", "auditor").await;
        let au = srv.client_with(&aak, &ask);
        assert_eq!(list_keys(&au, "granted").await, vec!["a", "x"]);
        sdk_err(au.delete_object().bucket("granted").key("a").send().await)
            .assert(403, "AccessDenied");
        assert_eq!(get(&c, "granted", "a").await, b"alpha");

        // Bearer tokens on the S3 endpoint meet the same evaluator.
        let tok = bearer_token(&srv, &uak, &usk).await;
        let get_with = |path: String| {
            let http = srv.http();
            let url = format!("{}{path}", srv.s3_url());
            let tok = tok.clone();
            async move {
                RawResponse::from_reqwest(
                    http.get(url)
                        .bearer_auth(tok)
                        .send()
                        .await
                        .expect("bearer get"),
                )
                .await
            }
        };
        let ok = get_with(key_path("granted", "x")).await;
        ok.assert_status(200);
        assert_eq!(ok.body, b"by u1");
        get_with(key_path("other", "a"))
            .await
            .assert_error(403, "AccessDenied");
        cli_ok(&srv, &["create", "vault", "--mode", "rw"]);
        put(&c, "vault", "v", "kept").await;
        cli_ok(&srv, &["mode", "vault", "ro"]);
        cli_ok(&srv, &["mode", "vault", "ar"]);
        let tok_admin = bearer_token(&srv, srv.access_key(), srv.secret_key()).await;
        let r = RawResponse::from_reqwest(
            srv.http()
                .get(format!("{}{}", srv.s3_url(), key_path("vault", "v")))
                .bearer_auth(tok_admin)
                .send()
                .await
                .expect("bearer get"),
        )
        .await;
        r.assert_error(403, "InvalidObjectState");
    }
);

storage_test!(cli_updates_and_deletes_elements, |srv| async move {
    let c = srv.client();
    cli_ok(
        &srv,
        &[
            "create",
            "ledger",
            "--mode",
            "rw",
            "--capacity",
            "100",
            "--description",
            "a",
        ],
    );
    put(&c, "ledger", "k", "0123456789").await;
    let el = cli_ok(
        &srv,
        &["update", "ledger", "--description", "b", "--capacity", "50"],
    );
    assert_eq!(
        (el["description"].as_str(), el["capacity_bytes"].as_i64()),
        (Some("b"), Some(50))
    );
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(srv.element_dir("ledger").join("element.json")).expect("element.json"),
    )
    .expect("json");
    assert_eq!(
        (doc["description"].as_str(), doc["capacity_bytes"].as_i64()),
        (Some("b"), Some(50))
    );

    // Refusals name the reason and change nothing.
    cli_fails(
        &srv,
        &["update", "ledger", "--capacity", "5"],
        "capacity_bytes 5 is below the 10 bytes storage element 'ledger' already holds",
    );
    cli_fails(
        &srv,
        &["update", "ledger"],
        "nothing to update: give --description",
    );
    cli_fails(
        &srv,
        &["update", "ledger", "--capacity=-1"],
        "--capacity must be a number of bytes >= 0",
    );
    cli_fails(
        &srv,
        &["update", "nosuch", "--capacity", "1"],
        "storage element 'nosuch' not found",
    );
    let shown = cli_ok(&srv, &["show", "ledger"]);
    assert_eq!(
        (
            shown["description"].as_str(),
            shown["capacity_bytes"].as_i64()
        ),
        (Some("b"), Some(50))
    );
    let el = cli_ok(
        &srv,
        &["update", "ledger", "--no-capacity", "--clear-description"],
    );
    assert_eq!(
        (&el["description"], &el["capacity_bytes"]),
        (&serde_json::Value::Null, &serde_json::Value::Null)
    );

    // Delete: an element not in edit needs --confirm, and only an empty one goes.
    cli_ok(&srv, &["mode", "ledger", "ro"]);
    cli_fails(
        &srv,
        &["delete", "ledger"],
        "storage element 'ledger' is in mode ro: deleting it needs confirmation",
    );
    cli_fails(
        &srv,
        &["delete", "ledger", "--confirm"],
        "storage element 'ledger' is not empty: delete its objects first",
    );
    assert_eq!(get(&c, "ledger", "k").await, b"0123456789");
    assert_eq!(cli_ok(&srv, &["show", "ledger"])["object_count"], 1);

    cli_ok(&srv, &["create", "mistake", "--mode", "rw"]);
    cli_ok(&srv, &["mode", "mistake", "ro", "--reason", "wrong one"]);
    cli_fails(
        &srv,
        &["delete", "mistake"],
        "deleting it needs confirmation",
    );
    assert!(srv.element_dir("mistake").join("element.json").is_file());
    let out = cli_ok(&srv, &["delete", "mistake", "--confirm"]);
    assert_eq!(out, serde_json::json!({"deleted": "mistake"}));
    cli_fails(
        &srv,
        &["show", "mistake"],
        "storage element 'mistake' not found",
    );
    assert!(!srv.element_dir("mistake").exists());
    sdk_err(c.head_bucket().bucket("mistake").send().await).assert(404, "NotFound");
    cli_fails(
        &srv,
        &["delete", "mistake", "--confirm"],
        "storage element 'mistake' not found",
    );
});

storage_test!(cli_shows_and_sets_account_grants, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "books").await;
    create_bucket(&c, "other").await;
    let acc = srv.cli(&["account", "create", "u2"]);
    assert!(acc.0, "{}", acc.2);
    let acc: serde_json::Value = serde_json::from_str(&acc.1).expect("json");
    let (ak, sk) = (
        acc["client_id"].as_str().expect("id").to_owned(),
        acc["client_secret"].as_str().expect("secret").to_owned(),
    );
    let grants = |args: &[&str]| srv.cli(&[&["account", "grants", "u2"], args].concat());
    let (ok, out, err) = grants(&[]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(shown["grants"], serde_json::json!([]));
    assert!(shown.get("client_secret").is_none(), "{shown}");

    let (ok, out, err) = grants(&["--grant", "books=write"]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        shown["grants"],
        serde_json::json!([{"bucket": "books", "access": "write"}])
    );
    let u = srv.client_with(&ak, &sk);
    put(&u, "books", "by-u2", "granted").await;
    sdk_err(
        u.put_object()
            .bucket("other")
            .key("x")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .assert(403, "AccessDenied");
    assert!(!exists(&c, "other", "x").await);

    // Bad grants are refused with the admin API's wording; the grants stay as they were.
    for (args, needle) in [
        (
            &["--grant", "books=admin"][..],
            "access must be 'read' or 'write', got 'admin'",
        ),
        (
            &["--grant", "books"][..],
            "--grant 'books' must be BUCKET=read or BUCKET=write",
        ),
        (
            &["--grant", "B_ad=read"][..],
            "'B_ad' is not a valid bucket name",
        ),
        (
            &["--grant", "abc=read", "--grant", "abc=write"][..],
            "bucket 'abc' is listed twice",
        ),
    ] {
        let (ok, _, err) = grants(args);
        assert!(!ok && err.contains(needle), "{args:?}: {err}");
    }
    let (_, out, _) = grants(&[]);
    let shown: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        shown["grants"],
        serde_json::json!([{"bucket": "books", "access": "write"}])
    );

    let (ok, out, err) = grants(&["--clear"]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(shown["grants"], serde_json::json!([]));
    let (ok, _, err) = srv.cli(&["account", "grants", "nobody"]);
    assert!(
        !ok && err.contains("no service account with id, name or client id 'nobody'"),
        "{err}"
    );
});
