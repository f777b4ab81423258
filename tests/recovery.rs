//! The index is a cache of the sidecars (DESIGN.md §3): start-up recovery after a crash,
//! `artstore index rebuild` from the sidecars alone, and `artstore index verify`.

mod common;
use common::*;

use aws_sdk_s3::primitives::ByteStream;

/// Everything a client can observe about a bucket's objects.
async fn snapshot(c: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    let listed = c
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list");
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap_or_default().to_owned();
        let h = c
            .head_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("head");
        let mut meta: Vec<_> = h
            .metadata()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        meta.sort();
        out.push(format!(
            "{key} size={:?} etag={:?} type={:?} modified={:?} disposition={:?} meta={meta:?} list_etag={:?} list_modified={:?}",
            h.content_length(),
            h.e_tag(),
            h.content_type(),
            h.last_modified().map(|t| t.as_nanos()),
            h.content_disposition(),
            o.e_tag(),
            o.last_modified().map(|t| t.as_nanos()),
        ));
    }
    out
}

async fn fill(c: &aws_sdk_s3::Client, bucket: &str) {
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket");
    for (i, key) in ["a.txt", "dir/b.pdf", "dir/sub/c d+e.bin", "z"]
        .iter()
        .enumerate()
    {
        c.put_object()
            .bucket(bucket)
            .key(*key)
            .body(ByteStream::from(pattern(1000 * (i + 1), i as u64)))
            .content_type("application/x-test")
            .content_disposition("attachment")
            .metadata("doc-id", format!("{i}"))
            .metadata("owner", "records")
            .send()
            .await
            .expect("put");
    }
    // An overwrite leaves one current version on disk.
    c.put_object()
        .bucket(bucket)
        .key("z")
        .body(ByteStream::from_static(b"second version"))
        .send()
        .await
        .expect("overwrite");
    // A multipart object keeps its md5-of-md5s ETag through a rebuild.
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key("multi.bin")
        .metadata("kind", "multipart")
        .send()
        .await
        .expect("create mpu");
    let id = up.upload_id().unwrap_or_default().to_owned();
    let mut parts = Vec::new();
    for n in 1..=2 {
        let p = c
            .upload_part()
            .bucket(bucket)
            .key("multi.bin")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(pattern(
                if n == 1 { 5 << 20 } else { 1000 },
                9,
            )))
            .send()
            .await
            .expect("part");
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap_or_default())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key("multi.bin")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
}

storage_test!(index_rebuild_reproduces_every_object, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    fill(&c, "rebuild").await;
    let before = snapshot(&c, "rebuild").await;
    assert_eq!(before.len(), 5);
    let disk_before = srv.objects_on_disk("rebuild").len();

    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let (report, err) = srv.rebuild_lost_index().await;
    assert_eq!(report["elements_created"], 1, "{report}");
    assert_eq!(report["objects_indexed"], 5, "{report}");
    assert_eq!(
        report["broken"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    // The sidecars bring back the objects, not the accounts: the rebuild says so.
    let missing = report["control_data_missing"].as_str().unwrap_or_default();
    assert!(
        missing.contains("cannot be rebuilt from sidecars")
            && missing.contains("artstore restore --from FILE")
            && missing.contains("artstore backup --out FILE"),
        "{report}"
    );
    assert!(err.contains("cannot be rebuilt from sidecars"), "{err}");

    srv.restart().await;
    let c = srv.client();
    assert_eq!(
        snapshot(&c, "rebuild").await,
        before,
        "every object, ETag and attribute is back"
    );
    assert_eq!(srv.objects_on_disk("rebuild").len(), disk_before);
    // Data is intact, and verify agrees with the rebuilt index.
    assert_object(&srv, "rebuild", "dir/b.pdf", &pattern(2000, 1)).await;
    srv.stop();
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "verify after rebuild: {report} {err}");
    assert_eq!(report["objects_checked"], 5);
});

storage_test!(index_verify_reports_damage, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    fill(&c, "verify").await;
    srv.stop();
    let (ok, report, _) = srv.index_cmd("verify");
    assert!(ok, "a healthy store verifies clean: {report}");

    // Bit rot in one file, another file lost, and a stray sidecar.
    let rotten = srv
        .object_on_disk("verify", "a.txt")
        .expect("a.txt on disk");
    let mut bytes = std::fs::read(&rotten.data).expect("read");
    bytes[10] ^= 0xff;
    std::fs::write(&rotten.data, &bytes).expect("write");
    let lost = srv
        .object_on_disk("verify", "dir/b.pdf")
        .expect("b on disk");
    std::fs::remove_file(&lost.data).expect("remove");
    let orphan = lost
        .attr
        .with_file_name("stray_admin_20260101T000000_x.txt.attr.json");
    std::fs::copy(&lost.attr, &orphan).expect("copy sidecar");

    let (ok, report, _) = srv.index_cmd("verify");
    assert!(!ok, "damage makes verify fail");
    assert_eq!(
        report["checksum_mismatch"],
        serde_json::json!(["verify/a.txt"])
    );
    assert_eq!(report["missing"], serde_json::json!(["verify/dir/b.pdf"]));
    // A sidecar whose data file is gone, by path.
    assert_eq!(
        report["sidecar_without_data"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
});

storage_test!(start_up_recovers_from_a_crash, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    c.create_bucket()
        .bucket("crash")
        .send()
        .await
        .expect("bucket");
    c.put_object()
        .bucket("crash")
        .key("kept.txt")
        .body(ByteStream::from_static(b"kept"))
        .send()
        .await
        .expect("put");
    let up = c
        .create_multipart_upload()
        .bucket("crash")
        .key("pending")
        .send()
        .await
        .expect("mpu");
    srv.kill9();

    // What a crash can leave: a temp file, a committed object whose index row was never
    // written, files of a version the index already replaced, parts of a forgotten upload.
    let kept = srv
        .object_on_disk("crash", "kept.txt")
        .expect("kept on disk");
    let dir = kept.data.parent().expect("hour dir").to_path_buf();
    std::fs::write(dir.join(".tmp-0000"), b"partial").expect("temp");
    let rolled_id = "ffffffff-ffff-7fff-bfff-ffffffffffff";
    let mut attr = kept.json.clone();
    let rolled_name = format!("lost_admin_20260101T000000_{rolled_id}.txt");
    attr["key"] = "lost-ack.txt".into();
    attr["file_id"] = rolled_id.into();
    attr["storage_filename"] = rolled_name.clone().into();
    std::fs::write(dir.join(&rolled_name), b"kept").expect("data");
    std::fs::write(
        dir.join(format!("{rolled_name}.attr.json")),
        serde_json::to_vec_pretty(&attr).expect("json"),
    )
    .expect("sidecar");
    let old_id = "00000000-0000-7000-8000-000000000000";
    let old_name = format!("kept_admin_20200101T000000_{old_id}.txt");
    let mut old = kept.json.clone();
    old["file_id"] = old_id.into();
    old["storage_filename"] = old_name.clone().into();
    std::fs::write(dir.join(&old_name), b"kept").expect("old data");
    std::fs::write(
        dir.join(format!("{old_name}.attr.json")),
        serde_json::to_vec_pretty(&old).expect("json"),
    )
    .expect("old sidecar");
    // A write that crashed after placing its data but before its sidecar (so before its
    // commit): never acknowledged, garbage.
    let half = dir.join(format!(
        "half_admin_20260101T000000_{}.txt",
        uuid::Uuid::now_v7()
    ));
    std::fs::write(&half, b"half").expect("half-committed data");
    // A file without sidecar that this server did not write (a legacy UUIDv4 name) stays.
    let foreign = dir.join(format!(
        "legacy_admin_20250101T000000_{}.txt",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&foreign, b"not ours").expect("foreign data");
    let parts = srv
        .data_dir()
        .join("elements/crash/.multipart/forgotten-upload");
    std::fs::create_dir_all(&parts).expect("parts dir");
    std::fs::write(parts.join("1"), b"part").expect("part");

    srv.restart().await;
    let c = srv.client();
    let got = c
        .get_object()
        .bucket("crash")
        .key("lost-ack.txt")
        .send()
        .await
        .expect("rolled forward");
    assert_eq!(got.body.collect().await.expect("body").to_vec(), b"kept");
    assert_object(&srv, "crash", "kept.txt", b"kept").await;
    assert!(!dir.join(&old_name).exists(), "superseded data removed");
    assert!(!dir.join(format!("{old_name}.attr.json")).exists());
    assert!(!dir.join(".tmp-0000").exists(), "temp file removed");
    assert!(!half.exists(), "data of an unfinished commit removed");
    assert_eq!(std::fs::read(&foreign).expect("kept"), b"not ours");
    assert!(!parts.exists(), "parts of an unknown upload removed");
    // The upload that is still in the index survives recovery.
    c.abort_multipart_upload()
        .bucket("crash")
        .key("pending")
        .upload_id(up.upload_id().unwrap_or_default())
        .send()
        .await
        .expect("pending upload still known");
    assert!(srv.logs().contains("recovered from an unclean stop"));
});

async fn pending_deletes(srv: &Server) -> i64 {
    let mut c = srv.index_conn().await;
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pending_deletes")
        .fetch_one(&mut c)
        .await
        .expect("count pending deletes")
}

storage_test!(a_crash_inside_delete_never_resurrects, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    create_bucket(&c, "del").await;
    for k in ["a", "b", "c", "gone"] {
        put(&c, "del", k, format!("content of {k}")).await;
    }
    // Normal deletes leave nothing behind: no files, no pending record.
    c.delete_object()
        .bucket("del")
        .key("a")
        .send()
        .await
        .expect("delete");
    sdk_err(c.get_object().bucket("del").key("a").send().await).assert(404, "NoSuchKey");
    assert!(srv.object_on_disk("del", "a").is_none());
    assert_eq!(pending_deletes(&srv).await, 0);

    // The state a crash leaves between a DELETE's index commit and the removal of its files:
    // the row and the usage gone, the pending record written, data and sidecar still on disk.
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let on_disk = srv.object_on_disk("del", "gone").expect("files of 'gone'");
    {
        let mut conn = srv.index_conn().await;
        let (path, size): (String, i64) = sqlx::query_as(
            "SELECT storage_path, size FROM objects WHERE bucket = 'del' AND key = 'gone'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("row of 'gone'");
        sqlx::query("DELETE FROM objects WHERE bucket = 'del' AND key = 'gone'")
            .execute(&mut conn)
            .await
            .expect("crash state: row");
        sqlx::query(
            "UPDATE storage_elements SET used_bytes = used_bytes - $1, \
             object_count = object_count - 1 WHERE name = 'del'",
        )
        .bind(size)
        .execute(&mut conn)
        .await
        .expect("crash state: usage");
        sqlx::query(
            "INSERT INTO pending_deletes (bucket, storage_path, created_ms) VALUES ('del', $1, 0)",
        )
        .bind(&path)
        .execute(&mut conn)
        .await
        .expect("pending record");
    }
    // A restart after the crash finishes the delete instead of rolling the sidecar forward.
    srv.restart().await;
    let c = srv.client();
    sdk_err(c.get_object().bucket("del").key("gone").send().await).assert(404, "NoSuchKey");
    assert!(srv.object_on_disk("del", "gone").is_none());
    assert!(!on_disk.data.exists(), "data file removed");
    assert_eq!(pending_deletes(&srv).await, 0);
    assert!(
        srv.logs().contains(r#"deletes_finished\":1"#),
        "recovery reports it"
    );
    // Everything else is as it was.
    for k in ["b", "c"] {
        assert_eq!(
            get(&c, "del", k).await,
            format!("content of {k}").into_bytes()
        );
    }
    let listed = c
        .list_objects_v2()
        .bucket("del")
        .send()
        .await
        .expect("list");
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec!["b", "c"]);
});

#[track_caller]
fn cli_json(srv: &Server, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = srv.cli(args);
    assert!(ok, "artstore {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The mode history as the CLI shows it, without the row ids.
fn history(srv: &Server, name: &str) -> Vec<serde_json::Value> {
    let shown = cli_json(srv, &["element", "show", name]);
    shown["mode_history"]
        .as_array()
        .expect("mode_history")
        .iter()
        .map(|h| {
            serde_json::json!([
                h["from"],
                h["to"],
                h["changed_by"],
                h["reason"],
                h["changed_ms"]
            ])
        })
        .collect()
}

storage_test!(
    rebuild_restores_history_and_never_loosens_a_mode,
    |srv| async move {
        let mut srv = srv;
        let c = srv.client();
        for name in ["ledger", "lostdoc", "garbled", "hollow", "spare"] {
            cli_json(&srv, &["element", "create", name, "--mode", "rw"]);
        }
        for name in ["ledger", "lostdoc", "garbled"] {
            put(&c, name, "doc", format!("kept in {name}")).await;
        }
        cli_json(
            &srv,
            &[
                "element", "mode", "ledger", "ro", "--reason", "closed", "--by", "alice",
            ],
        );
        cli_json(
            &srv,
            &[
                "element",
                "mode",
                "ledger",
                "rw",
                "--confirm",
                "--reason",
                "fix",
            ],
        );
        cli_json(
            &srv,
            &["element", "mode", "ledger", "ro", "--reason", "final"],
        );
        let before = history(&srv, "ledger");
        assert_eq!(before.len(), 3);
        let created = cli_json(&srv, &["element", "show", "ledger"])["created_ms"].clone();
        // element.json carries the whole history.
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(srv.element_dir("ledger").join("element.json")).expect("element.json"),
        )
        .expect("json");
        let h = doc["mode_history"]
            .as_array()
            .expect("mode_history in element.json");
        assert_eq!(h.len(), 3, "{doc}");
        assert_eq!(
            (
                h[0]["from"].as_str(),
                h[0]["to"].as_str(),
                h[0]["by"].as_str(),
                h[0]["reason"].as_str()
            ),
            (Some("rw"), Some("ro"), Some("alice"), Some("closed"))
        );
        assert!(h[0]["at"].is_string(), "{doc}");
        assert!(doc["created"].is_string(), "{doc}");

        // With accounts in the index, losing an element row is not a loss of control data.
        cli_json(&srv, &["account", "create", "keeper"]);
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        {
            let mut conn = srv.index_conn().await;
            sqlx::query("DELETE FROM storage_elements WHERE name = 'spare'")
                .execute(&mut conn)
                .await
                .expect("delete row");
        }
        let (ok, report, err) = srv.index_cmd("rebuild");
        assert!(ok, "rebuild: {err}");
        assert_eq!(report["elements_created"], 1, "{report}");
        assert_eq!(
            report["control_data_missing"],
            serde_json::Value::Null,
            "{report}"
        );
        assert_eq!(cli_json(&srv, &["element", "show", "spare"])["mode"], "rw");
        assert_eq!(
            cli_json(&srv, &["account", "show", "keeper"])["name"],
            "keeper",
            "rebuild leaves the accounts alone"
        );

        // Now lose the index, one element.json, another's contents, and an empty element's.
        std::fs::remove_file(srv.element_dir("lostdoc").join("element.json")).expect("rm");
        std::fs::write(
            srv.element_dir("garbled").join("element.json"),
            b"{\"name\": \"gar",
        )
        .expect("w");
        std::fs::remove_file(srv.element_dir("hollow").join("element.json")).expect("rm");
        let (report, err) = srv.rebuild_lost_index().await;
        assert_eq!(report["elements_created"], 4, "{report}");
        let mut restricted: Vec<&str> = report["elements_restricted"]
            .as_array()
            .expect("elements_restricted")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        restricted.sort();
        assert_eq!(restricted.len(), 2, "{report}");
        assert!(
            restricted[0].starts_with("garbled: element.json is unreadable (")
                && restricted[0].ends_with(
                    "; restored in mode ro (change it with `artstore element mode` if it was rw)"
                ),
            "{report}"
        );
        assert_eq!(
            restricted[1],
            "lostdoc: element.json is missing; restored in mode ro (change it with `artstore element mode` if it was rw)"
        );
        assert_eq!(
            report["elements_skipped"],
            serde_json::json!([
                "hollow: element.json is missing and the element holds no objects; not indexed (create it again to use it)"
            ])
        );
        assert!(err.contains("lostdoc: element.json is missing"), "{err}");

        // History and creation time come back from element.json.
        assert_eq!(history(&srv, "ledger"), before);
        let shown = cli_json(&srv, &["element", "show", "ledger"]);
        assert_eq!(shown["created_ms"], created);
        assert_eq!(shown["mode"], "ro");
        for name in ["lostdoc", "garbled"] {
            assert_eq!(
                cli_json(&srv, &["element", "show", name])["mode"],
                "ro",
                "{name}"
            );
        }
        let (ok, _, err) = srv.cli(&["element", "show", "hollow"]);
        assert!(
            !ok && err.contains("storage element 'hollow' not found"),
            "{err}"
        );

        // ro is enforced: objects read, writes refused, nothing changed.
        srv.restart().await;
        let c = srv.client();
        for name in ["lostdoc", "garbled"] {
            assert_eq!(
                get(&c, name, "doc").await,
                format!("kept in {name}").as_bytes()
            );
            sdk_err(
                c.put_object()
                    .bucket(name)
                    .key("doc")
                    .body(ByteStream::from_static(b"overwrite"))
                    .send()
                    .await,
            )
            .assert(403, "AccessDenied");
            assert_eq!(
                get(&c, name, "doc").await,
                format!("kept in {name}").as_bytes()
            );
        }
    }
);

storage_test!(
    start_up_on_a_lost_index_never_loosens_a_mode,
    |srv| async move {
        let mut srv = srv;
        cli_json(&srv, &["element", "create", "sealed", "--mode", "rw"]);
        put(&srv.client(), "sealed", "doc", "sealed text").await;
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        std::fs::remove_file(srv.element_dir("sealed").join("element.json")).expect("rm");
        srv.delete_index().await;
        // `serve` creates the empty index and recovery brings the element back, as ro.
        srv.restart().await;
        let logs = srv.logs();
        assert!(
            logs.contains("sealed: element.json is missing; restored in mode ro"),
            "{logs}"
        );
        assert!(logs.contains("cannot be rebuilt from sidecars"), "{logs}");
        assert_eq!(cli_json(&srv, &["element", "show", "sealed"])["mode"], "ro");
        let c = srv.client();
        sdk_err(
            c.put_object()
                .bucket("sealed")
                .key("new")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        )
        .assert(403, "AccessDenied");
        assert_eq!(get(&c, "sealed", "doc").await, b"sealed text");
        assert!(!exists(&c, "sealed", "new").await);
    }
);

storage_test!(
    a_crash_after_an_overwrite_commit_leaks_no_file,
    |srv| async move {
        let mut srv = srv;
        let c = srv.client();
        create_bucket(&c, "overwrite").await;
        put(&c, "overwrite", "doc", "first version").await;
        put(&c, "overwrite", "other", "untouched").await;
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        // The first version was written long before this run of the server started.
        let v1 = srv.age_object("overwrite", "doc").await;

        // Crash after the overwrite's index commit, before the replaced files are removed.
        srv.set_env("ARTSTORE_TEST_CRASH_AT", "replaced-committed");
        srv.restart().await;
        let c = srv.client();
        let res = c
            .put_object()
            .bucket("overwrite")
            .key("doc")
            .body(ByteStream::from_static(b"second version"))
            .send()
            .await;
        assert!(res.is_err(), "the process died before answering: {res:?}");
        assert!(srv.wait_exit(), "the crash point stopped the server");
        assert!(v1.data.exists() && v1.attr.exists(), "the crash left v1");

        srv.unset_env("ARTSTORE_TEST_CRASH_AT");
        srv.restart().await;
        let c = srv.client();
        // The overwrite committed, so it holds; the replaced version's files are gone.
        assert_object(&srv, "overwrite", "doc", b"second version").await;
        assert_object(&srv, "overwrite", "other", b"untouched").await;
        assert!(!v1.data.exists(), "replaced data file removed by recovery");
        assert!(!v1.attr.exists(), "replaced sidecar removed by recovery");
        assert_eq!(srv.obsolete_records().await, 0);
        assert_eq!(srv.objects_on_disk("overwrite").len(), 2);
        assert_eq!(list_keys(&c, "overwrite").await, ["doc", "other"]);
        srv.stop();
        let (ok, report, err) = srv.index_cmd("verify");
        assert!(ok, "verify clean after recovery: {report} {err}");
    }
);

storage_test!(
    a_crash_after_a_delete_commit_leaks_no_file,
    |srv| async move {
        let mut srv = srv;
        let c = srv.client();
        create_bucket(&c, "delcrash").await;
        put(&c, "delcrash", "gone", "to be deleted").await;
        put(&c, "delcrash", "kept", "kept").await;
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        let old = srv.age_object("delcrash", "gone").await;
        srv.set_env("ARTSTORE_TEST_CRASH_AT", "delete-committed");
        srv.restart().await;
        let res = srv
            .client()
            .delete_object()
            .bucket("delcrash")
            .key("gone")
            .send()
            .await;
        assert!(res.is_err(), "the process died before answering: {res:?}");
        assert!(srv.wait_exit(), "the crash point stopped the server");
        assert!(old.data.exists(), "the crash left the files");
        srv.unset_env("ARTSTORE_TEST_CRASH_AT");
        srv.restart().await;
        let c = srv.client();
        sdk_err(c.get_object().bucket("delcrash").key("gone").send().await)
            .assert(404, "NoSuchKey");
        assert!(!old.data.exists() && !old.attr.exists(), "files removed");
        assert_eq!(list_keys(&c, "delcrash").await, ["kept"]);
        assert_eq!(srv.obsolete_records().await, 0);
        srv.stop();
        let (ok, report, err) = srv.index_cmd("verify");
        assert!(ok, "verify clean after recovery: {report} {err}");
    }
);

/// Writes `name` (and, unless `sidecar` is None, its sidecar) into the object's hour dir.
fn plant(
    dir: &std::path::Path,
    name: &str,
    data: Option<&[u8]>,
    sidecar: Option<&serde_json::Value>,
) {
    if let Some(d) = data {
        std::fs::write(dir.join(name), d).expect("plant data");
    }
    if let Some(j) = sidecar {
        std::fs::write(
            dir.join(format!("{name}.attr.json")),
            serde_json::to_vec_pretty(j).expect("json"),
        )
        .expect("plant sidecar");
    }
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

storage_test!(
    index_verify_repair_removes_only_proven_garbage,
    |srv| async move {
        let mut srv = srv;
        let c = srv.client();
        create_bucket(&c, "rep").await;
        for k in ["a", "b", "lost"] {
            put(&c, "rep", k, format!("content of {k}")).await;
        }
        // While a server runs, its temp files are writes in flight: repair refuses to start.
        let live = srv
            .object_on_disk("rep", "b")
            .expect("b")
            .data
            .with_file_name(".tmp-in-flight");
        std::fs::write(&live, b"being written").expect("temp");
        let (ok, out, err) = srv.cli(&["index", "verify", "--repair"]);
        assert!(!ok && err.contains("a server is running on"), "{out} {err}");
        assert!(live.exists(), "nothing touched");
        std::fs::remove_file(&live).expect("rm");
        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        let a = srv.object_on_disk("rep", "a").expect("a on disk");
        let dir = a.data.parent().expect("hour dir").to_path_buf();
        let rel_dir = dir
            .strip_prefix(srv.element_dir("rep"))
            .expect("in element")
            .to_string_lossy()
            .into_owned();
        let at = |name: &str| format!("rep/{rel_dir}/{name}");

        // Every kind of garbage and doubt a crash, a lost commit or a hand can leave.
        plant(&dir, ".tmp-0000", Some(b"partial"), None);
        plant(
            &dir,
            "stray_admin_20260101T000000_1.bin",
            Some(b"no sidecar"),
            None,
        );
        let mut ghost = a.json.clone();
        ghost["key"] = "ghost".into();
        ghost["file_id"] = "00000000-0000-7000-8000-000000000001".into();
        plant(
            &dir,
            "ghost_admin_20260101T000000_2.bin",
            None,
            Some(&ghost),
        );
        let mut older = a.json.clone();
        older["file_id"] = "00000000-0000-7000-8000-000000000002".into();
        plant(
            &dir,
            "a_admin_20200101T000000_3.bin",
            Some(b"content of a"),
            Some(&older),
        );
        let mut unindexed = a.json.clone();
        unindexed["key"] = "never-indexed".into();
        unindexed["file_id"] = "00000000-0000-7000-8000-000000000004".into();
        plant(
            &dir,
            "ni_admin_20260101T000000_4.bin",
            Some(b"content of a"),
            Some(&unindexed),
        );
        let mut obsolete = a.json.clone();
        obsolete["file_id"] = "00000000-0000-7000-8000-000000000005".into();
        plant(
            &dir,
            "a_admin_20200101T000000_5.bin",
            Some(b"content of a"),
            Some(&obsolete),
        );
        {
            let mut conn = srv.index_conn().await;
            sqlx::query(
                "INSERT INTO pending_deletes (bucket, storage_path, created_ms) VALUES ('rep', $1, 0)",
            )
            .bind(format!("{rel_dir}/a_admin_20200101T000000_5.bin"))
            .execute(&mut conn)
            .await
            .expect("obsolete record");
        }
        // A delete whose commit was lost after its files were removed.
        let lost = srv.object_on_disk("rep", "lost").expect("lost on disk");
        std::fs::remove_file(&lost.data).expect("rm");
        std::fs::remove_file(&lost.attr).expect("rm");

        let (ok, report, _) = srv.index_cmd("verify");
        assert!(!ok, "verify fails on damage: {report}");
        assert_eq!(strs(&report["temp_files"]), [at(".tmp-0000")]);
        assert_eq!(
            strs(&report["data_without_sidecar"]),
            [at("stray_admin_20260101T000000_1.bin")]
        );
        assert_eq!(
            strs(&report["sidecar_without_data"]),
            [at("ghost_admin_20260101T000000_2.bin.attr.json")]
        );
        assert_eq!(
            strs(&report["orphans"]),
            [
                at("a_admin_20200101T000000_3.bin"),
                at("a_admin_20200101T000000_5.bin"),
                at("ni_admin_20260101T000000_4.bin"),
            ]
        );
        assert_eq!(
            strs(&report["obsolete"]),
            [at("a_admin_20200101T000000_5.bin")]
        );
        assert_eq!(strs(&report["missing"]), ["rep/lost"]);

        let (ok, out, err) = srv.cli(&["index", "verify", "--repair"]);
        let rep: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        assert!(
            !ok,
            "a document only a rebuild can index is left, so repair fails: {rep}"
        );
        assert_eq!(
            strs(&rep["removed"]),
            [
                at(".tmp-0000"),
                at("a_admin_20200101T000000_5.bin"),
                at("a_admin_20200101T000000_5.bin.attr.json"),
            ]
        );
        assert_eq!(strs(&rep["rows_dropped"]), ["rep/lost"]);
        let mut moved: Vec<(String, String)> = rep["quarantined"]
            .as_array()
            .expect("quarantined")
            .iter()
            .map(|q| {
                (
                    q["from"].as_str().unwrap_or_default().to_owned(),
                    q["to"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        moved.sort();
        let expect_moved = [
            "a_admin_20200101T000000_3.bin",
            "a_admin_20200101T000000_3.bin.attr.json",
            "ghost_admin_20260101T000000_2.bin.attr.json",
            "stray_admin_20260101T000000_1.bin",
        ];
        assert_eq!(moved.len(), expect_moved.len(), "{rep}");
        for ((from, to), name) in moved.iter().zip(expect_moved) {
            assert_eq!(from, &at(name));
            let q = to
                .strip_prefix("rep/.quarantine/")
                .unwrap_or_else(|| panic!("{to}"));
            let (date, rest) = q.split_once('/').expect("date folder");
            assert!(
                date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()),
                "{to}"
            );
            assert_eq!(rest, format!("{rel_dir}/{name}"));
            // Moved, not deleted: the bytes are all there.
            assert!(
                srv.element_dir("rep")
                    .join(to.trim_start_matches("rep/"))
                    .is_file(),
                "{to}"
            );
        }
        let left = strs(&rep["left"]);
        assert_eq!(left.len(), 1, "{rep}");
        assert!(
            left[0].starts_with(&at("ni_admin_20260101T000000_4.bin"))
                && left[0].contains("artstore index rebuild"),
            "{rep}"
        );
        assert!(
            dir.join("ni_admin_20260101T000000_4.bin").exists(),
            "never deleted"
        );
        assert_eq!(
            strs(&rep["after"]["orphans"]),
            [at("ni_admin_20260101T000000_4.bin")]
        );
        assert_eq!(srv.obsolete_records().await, 0);

        // The rebuild indexes the document it left and never looks into the quarantine.
        let (ok, report, err) = srv.index_cmd("rebuild");
        assert!(ok, "rebuild: {report} {err}");
        assert_eq!(report["objects_indexed"], 1, "{report}");
        let (ok, report, err) = srv.index_cmd("verify");
        assert!(ok, "verify clean after repair and rebuild: {report} {err}");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(list_keys(&c, "rep").await, ["a", "b", "never-indexed"]);
        assert_object(&srv, "rep", "a", b"content of a").await;
        assert_object(&srv, "rep", "b", b"content of b").await;
        sdk_err(c.get_object().bucket("rep").key("lost").send().await).assert(404, "NoSuchKey");
        sdk_err(c.head_object().bucket("rep").key("lost").send().await).assert(404, "");
    }
);
