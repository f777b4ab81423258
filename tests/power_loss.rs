//! Power loss on SQLite (DESIGN.md §3, invariant 3). The index runs `synchronous=NORMAL`: a
//! commit reaches the disk at the next WAL sync, so a power cut can lose the last commits
//! even though their files were fsynced. These tests take a copy of the index before the
//! writes, let the writes be acknowledged, then put the copy back, which is exactly the index a
//! power cut leaves (the files written and removed, the commits gone), and check that start-up
//! recovery brings back every acknowledged write and keeps every acknowledged delete.
//!
//! PostgreSQL is not tested here: its commit returns only once the WAL is flushed
//! (`synchronous_commit=on`, which ArtStore never changes), so an acknowledged commit cannot
//! be lost by a power cut.

mod common;
use common::*;

const INDEX_FILES: [&str; 3] = ["artstore.db", "artstore.db-wal", "artstore.db-shm"];

/// Copies the SQLite index files of a stopped server (consistent: nothing writes them).
fn save_index(srv: &Server, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("copy dir");
    for f in INDEX_FILES {
        let from = srv.data_dir().join(f);
        if from.exists() {
            std::fs::copy(&from, to.join(f)).expect("copy index");
        }
    }
}

/// Puts the saved index back in place of the current one (server stopped or killed).
fn put_back_index(srv: &Server, from: &std::path::Path) {
    for f in INDEX_FILES {
        let _ = std::fs::remove_file(srv.data_dir().join(f));
        let saved = from.join(f);
        if saved.exists() {
            std::fs::copy(&saved, srv.data_dir().join(f)).expect("restore index");
        }
    }
}

fn sorted_meta(h: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> Vec<(String, String)> {
    let mut m: Vec<_> = h
        .metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    m.sort();
    m
}

async fn tags(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = c
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("tagging");
    let mut t: Vec<_> = out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_put_commits_are_rolled_forward() {
    let mut srv = Server::start(Db::Sqlite).await;
    let c = srv.client();
    create_bucket(&c, "lostput").await;
    put(&c, "lostput", "base", "base v1").await;
    put(&c, "lostput", "old-tagged", "tag me").await;
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    // Objects from an earlier run, in an hour directory recovery only reads if touched.
    srv.age_object("lostput", "old-tagged").await;
    let saved = tempfile::tempdir().expect("tmp");
    save_index(&srv, saved.path());

    srv.restart().await;
    let c = srv.client();
    let big = pattern(6 << 20, 7);
    c.put_object()
        .bucket("lostput")
        .key("new")
        .body(ByteStream::from(big.clone()))
        .content_type("application/x-new")
        .metadata("doc-id", "42")
        .tagging("state=fresh")
        .send()
        .await
        .expect("put new");
    // An overwrite: the replaced version's files are removed once it commits.
    c.put_object()
        .bucket("lostput")
        .key("base")
        .body(ByteStream::from_static(b"base v2"))
        .metadata("rev", "2")
        .send()
        .await
        .expect("overwrite");
    c.copy_object()
        .bucket("lostput")
        .key("copied")
        .copy_source("lostput/base")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("rev", "copy")
        .content_type("text/x-copy")
        .send()
        .await
        .expect("copy replace");
    // An in-place sidecar rewrite of an old object.
    c.put_object_tagging()
        .bucket("lostput")
        .key("old-tagged")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("k")
                        .value("v")
                        .build()
                        .expect("tag"),
                )
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("tagging");
    // Power cut: every commit since the copy is lost, the files stay as they were.
    srv.kill9();
    put_back_index(&srv, saved.path());
    srv.restart().await;
    let c = srv.client();

    assert_object(&srv, "lostput", "new", &big).await;
    let h = c
        .head_object()
        .bucket("lostput")
        .key("new")
        .send()
        .await
        .expect("head");
    assert_eq!(h.content_type(), Some("application/x-new"));
    assert_eq!(sorted_meta(&h), [("doc-id".to_owned(), "42".to_owned())]);
    assert_eq!(
        tags(&c, "lostput", "new").await,
        [("state".to_owned(), "fresh".to_owned())]
    );
    assert_object(&srv, "lostput", "base", b"base v2").await;
    let h = c
        .head_object()
        .bucket("lostput")
        .key("base")
        .send()
        .await
        .expect("head");
    assert_eq!(sorted_meta(&h), [("rev".to_owned(), "2".to_owned())]);
    assert_object(&srv, "lostput", "copied", b"base v2").await;
    let h = c
        .head_object()
        .bucket("lostput")
        .key("copied")
        .send()
        .await
        .expect("head");
    assert_eq!(h.content_type(), Some("text/x-copy"));
    assert_eq!(sorted_meta(&h), [("rev".to_owned(), "copy".to_owned())]);
    assert_eq!(
        tags(&c, "lostput", "old-tagged").await,
        [("k".to_owned(), "v".to_owned())]
    );
    assert_eq!(
        list_keys(&c, "lostput").await,
        ["base", "copied", "new", "old-tagged"]
    );
    srv.stop();
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "verify clean: {report} {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_delete_commits_stay_deleted() {
    let mut srv = Server::start(Db::Sqlite).await;
    let c = srv.client();
    create_bucket(&c, "lostdel").await;
    for k in ["old", "recent", "kept"] {
        put(&c, "lostdel", k, format!("content of {k}")).await;
    }
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let old = srv.age_object("lostdel", "old").await;
    let saved = tempfile::tempdir().expect("tmp");
    save_index(&srv, saved.path());

    srv.restart().await;
    let c = srv.client();
    for k in ["old", "recent"] {
        c.delete_object()
            .bucket("lostdel")
            .key(k)
            .send()
            .await
            .expect("delete");
    }
    assert!(!old.data.exists(), "the delete removed the files");
    srv.kill9();
    put_back_index(&srv, saved.path());
    srv.restart().await;
    let c = srv.client();
    for k in ["old", "recent"] {
        sdk_err(c.get_object().bucket("lostdel").key(k).send().await).assert(404, "NoSuchKey");
        sdk_err(c.head_object().bucket("lostdel").key(k).send().await).assert(404, "");
    }
    assert_eq!(list_keys(&c, "lostdel").await, ["kept"]);
    assert_object(&srv, "lostdel", "kept", b"content of kept").await;
    assert!(
        srv.logs().contains(r#"lost_rows_dropped\":2"#),
        "recovery says so"
    );
    // The element's counters follow the rows.
    let (ok, out, err) = srv.cli(&["element", "show", "lostdel"]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(shown["object_count"], 1, "{shown}");
    srv.stop();
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "verify clean: {report} {err}");
}

async fn start_upload(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> (String, String) {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .metadata("kind", "multipart")
        .send()
        .await
        .expect("create upload");
    let id = up.upload_id().unwrap_or_default().to_owned();
    let part = c
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .expect("part");
    (id, part.e_tag().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_complete_and_abort_commits_leave_no_upload_behind() {
    let mut srv = Server::start(Db::Sqlite).await;
    let c = srv.client();
    create_bucket(&c, "lostmpu").await;
    let data = pattern(300_000, 3);
    let (done, etag) = start_upload(&c, "lostmpu", "done.bin", &data).await;
    let (aborted, _) = start_upload(&c, "lostmpu", "aborted.bin", b"never").await;
    let (open, _) = start_upload(&c, "lostmpu", "open.bin", b"still going").await;
    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    let saved = tempfile::tempdir().expect("tmp");
    save_index(&srv, saved.path());

    srv.restart().await;
    let c = srv.client();
    c.complete_multipart_upload()
        .bucket("lostmpu")
        .key("done.bin")
        .upload_id(&done)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(etag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    c.abort_multipart_upload()
        .bucket("lostmpu")
        .key("aborted.bin")
        .upload_id(&aborted)
        .send()
        .await
        .expect("abort");
    srv.kill9();
    put_back_index(&srv, saved.path());
    srv.restart().await;
    let c = srv.client();

    assert_object(&srv, "lostmpu", "done.bin", &data).await;
    let h = c
        .head_object()
        .bucket("lostmpu")
        .key("done.bin")
        .send()
        .await
        .expect("head");
    assert_eq!(
        sorted_meta(&h),
        [("kind".to_owned(), "multipart".to_owned())]
    );
    let uploads = c
        .list_multipart_uploads()
        .bucket("lostmpu")
        .send()
        .await
        .expect("list uploads");
    let ids: Vec<_> = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(
        ids,
        [open.as_str()],
        "only the upload nobody finished is left"
    );
    for (key, id) in [("done.bin", &done), ("aborted.bin", &aborted)] {
        sdk_err(
            c.abort_multipart_upload()
                .bucket("lostmpu")
                .key(key)
                .upload_id(id)
                .send()
                .await,
        )
        .assert(404, "NoSuchUpload");
    }
    assert!(
        srv.logs().contains(r#"lost_uploads_dropped\":2"#),
        "recovery says so"
    );
    assert_eq!(list_keys(&c, "lostmpu").await, ["done.bin"]);
    srv.stop();
    let (ok, report, err) = srv.index_cmd("verify");
    assert!(ok, "verify clean: {report} {err}");
}
