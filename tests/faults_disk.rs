//! A full disk is an answer, not an outage: writes get `507 InsufficientStorage` naming what is
//! full, nothing partial stays behind, reads and deletes keep working, and once space is freed
//! writes succeed again without a restart. The disks are real small filesystems (tmpfs; the
//! tests need root to mount them and skip otherwise, failing under ARTSTORE_TEST_REQUIRE_ALL=1);
//! a full SQLite index is also reached without root, through SQLite's `max_page_count`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::faults::SmallDisk;
use common::*;
use serde_json::json;

/// Creates an element in mode `edit` whose files live under `path`.
async fn create_element_at(srv: &Server, name: &str, path: &std::path::Path) {
    let token = srv.root_token().await;
    let r = srv
        .http()
        .post(format!("{}/api/v1/storage-elements", srv.admin_url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(
            json!({"name": name, "mode": "edit",
                   "backend": {"kind": "local", "path": path.display().to_string()}})
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
}

async fn put(srv: &Server, bucket: &str, key: &str, data: &[u8]) -> RawResponse {
    srv.raw(Method::PUT, &key_path(bucket, key))
        .body(data.to_vec())
        .send()
        .await
}

async fn get(srv: &Server, bucket: &str, key: &str) -> RawResponse {
    srv.raw(Method::GET, &key_path(bucket, key)).send().await
}

async fn list_keys(srv: &Server, bucket: &str) -> Vec<String> {
    let r = srv
        .raw(Method::GET, &format!("/{bucket}"))
        .query("list-type", "2")
        .send()
        .await;
    r.assert_status(200);
    xml_all(&r.text(), "Key")
}

/// Every file under the element's directory (data, sidecars, parts, temp files).
fn element_files(srv: &Server, bucket: &str) -> BTreeSet<PathBuf> {
    walk_files(&srv.element_dir(bucket)).into_iter().collect()
}

#[track_caller]
fn assert_full(r: &RawResponse, what: &str) {
    r.assert_error(507, "InsufficientStorage");
    let msg = xml_first(&r.text(), "Message").unwrap_or_default();
    assert!(
        msg.contains(what),
        "the message should name what is full ({what}): {msg}"
    );
}

/// The index knows nothing of `key`: HEAD is 404.
async fn assert_not_indexed(srv: &Server, bucket: &str, key: &str) {
    srv.raw(Method::HEAD, &key_path(bucket, key))
        .send()
        .await
        .assert_status(404);
}

storage_test!(data_disk_full, |srv| async move {
    let Some(disk) = SmallDisk::mount(4 << 20) else {
        return;
    };
    let bucket = "full-disk";
    create_element_at(&srv, bucket, &disk.path().join("element")).await;
    let keep = vec![b'k'; 20_000];
    put(&srv, bucket, "keep.bin", &keep)
        .await
        .assert_status(200);
    put(&srv, bucket, "gone.bin", &[b'g'; 20_000])
        .await
        .assert_status(200);
    let filler = disk.fill();
    let before = element_files(&srv, bucket);

    // New key, overwrite, multipart part: each 507 naming the element's data disk.
    let what = format!("data disk of storage element '{bucket}'");
    let new = vec![b'n'; 100_000];
    assert_full(&put(&srv, bucket, "new.bin", &new).await, &what);
    assert_full(&put(&srv, bucket, "new.bin", b"").await, &what);
    assert_full(&put(&srv, bucket, "keep.bin", &new).await, &what);
    let c = srv.client();
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key("multi.bin")
        .send()
        .await
        .expect("create multipart upload needs no data disk");
    let upload_id = up.upload_id().expect("upload id").to_owned();
    let part = srv
        .raw(Method::PUT, &key_path(bucket, "multi.bin"))
        .query("partNumber", "1")
        .query("uploadId", &upload_id)
        .body(vec![b'p'; 200_000])
        .send()
        .await;
    assert_full(&part, &what);

    // Nothing partial: not a file more under the element, no index row, no listed part.
    assert_eq!(element_files(&srv, bucket), before, "files left behind");
    srv.assert_no_temp_files(bucket);
    assert!(srv.object_on_disk(bucket, "new.bin").is_none());
    assert_not_indexed(&srv, bucket, "new.bin").await;
    let parts = c
        .list_parts()
        .bucket(bucket)
        .key("multi.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .expect("list parts");
    assert!(parts.parts().is_empty(), "a refused part is not listed");

    // Reads and deletes keep working while the disk is full.
    let r = get(&srv, bucket, "keep.bin").await;
    r.assert_status(200);
    assert_eq!(
        r.body, keep,
        "the overwrite refused for lack of space changed nothing"
    );
    srv.raw(Method::HEAD, &key_path(bucket, "keep.bin"))
        .send()
        .await
        .assert_status(200);
    assert_eq!(list_keys(&srv, bucket).await, ["gone.bin", "keep.bin"]);
    srv.raw(Method::DELETE, &key_path(bucket, "gone.bin"))
        .send()
        .await
        .assert_status(204);
    get(&srv, bucket, "gone.bin")
        .await
        .assert_error(404, "NoSuchKey");
    c.abort_multipart_upload()
        .bucket(bucket)
        .key("multi.bin")
        .upload_id(&upload_id)
        .send()
        .await
        .expect("abort while full");

    // Space back: the same process writes again.
    disk.free(&filler);
    put(&srv, bucket, "new.bin", &new).await.assert_status(200);
    assert_eq!(get(&srv, bucket, "new.bin").await.body, new);
    put(&srv, bucket, "keep.bin", &new).await.assert_status(200);
    assert_eq!(get(&srv, bucket, "keep.bin").await.body, new);
    assert_eq!(list_keys(&srv, bucket).await, ["keep.bin", "new.bin"]);
    srv.assert_no_temp_files(bucket);
});

/// The SQLite index on a small disk: `SQLITE_FULL` is a 507 naming the index, for every write
/// while the disk is full (a failed commit must leave the pooled connection clean, or every
/// later write fails until a restart), and writes work again once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_disk_full_sqlite() {
    let Some(disk) = SmallDisk::mount(16 << 20) else {
        return;
    };
    let url = format!("sqlite://{}/artstore.db?mode=rwc", disk.path().display());
    let srv = Server::builder()
        .env("ARTSTORE_DATABASE_URL", url)
        .start(Db::Sqlite)
        .await;
    let bucket = "index-full";
    srv.raw(Method::PUT, &format!("/{bucket}"))
        .send()
        .await
        .assert_status(200);
    let keep = vec![b'k'; 5_000];
    put(&srv, bucket, "keep.txt", &keep)
        .await
        .assert_status(200);
    let filler = disk.fill();
    let before = element_files(&srv, bucket);

    // More writes than the pool has connections: each one must meet a clean connection.
    for i in 0..12 {
        let key = format!("new-{i}.txt");
        assert_full(&put(&srv, bucket, &key, b"new data").await, "index");
        assert_not_indexed(&srv, bucket, &key).await;
    }
    assert_eq!(element_files(&srv, bucket), before, "files left behind");
    srv.assert_no_temp_files(bucket);

    // Reads keep working.
    let r = get(&srv, bucket, "keep.txt").await;
    r.assert_status(200);
    assert_eq!(r.body, keep);
    assert_eq!(list_keys(&srv, bucket).await, ["keep.txt"]);

    disk.free(&filler);
    for i in 0..12 {
        let key = format!("after-{i}.txt");
        put(&srv, bucket, &key, key.as_bytes())
            .await
            .assert_status(200);
        assert_eq!(get(&srv, bucket, &key).await.body, key.as_bytes());
    }
    srv.raw(Method::DELETE, &key_path(bucket, "keep.txt"))
        .send()
        .await
        .assert_status(204);
    assert_eq!(list_keys(&srv, bucket).await.len(), 12);
    let logs = srv.logs();
    assert!(
        !logs.contains("non-zero transaction depth"),
        "a failed transaction left a connection inside it"
    );
}

/// A full SQLite index without a small filesystem (no root needed): the index is capped at its
/// size through SQLite's `max_page_count`, with a ballast table that the test's own (uncapped)
/// connection drops later to give pages back, as removing a file frees a disk. Each write while
/// the index is full is a 507 naming it and leaves nothing; reads keep working; a DELETE that
/// finds no page for its search rows is a 507 that deletes nothing; once pages are free again,
/// writes and deletes succeed in the same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_pages_full_sqlite() {
    let mut srv = Server::start(Db::Sqlite).await;
    let bucket = "index-pages";
    srv.raw(Method::PUT, &format!("/{bucket}"))
        .send()
        .await
        .assert_status(200);
    let keep = vec![b'k'; 3_000];
    put(&srv, bucket, "keep.txt", &keep)
        .await
        .assert_status(200);
    srv.stop();
    let pages: i64 = {
        let mut c = srv.index_conn().await;
        sqlx::query("CREATE TABLE test_ballast (b BLOB)")
            .execute(&mut c)
            .await
            .expect("ballast table");
        sqlx::query("INSERT INTO test_ballast VALUES (zeroblob(400000))")
            .execute(&mut c)
            .await
            .expect("ballast");
        sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut c)
            .await
            .expect("page count")
    };
    srv.set_env("ARTSTORE_TEST_SQLITE_MAX_PAGES", &(pages + 30).to_string());
    srv.restart().await;

    // Objects with long, varied attributes until the index has no page left.
    let put_attrs = |i: usize| {
        let note: String = (0..40).map(|w| format!("word{i}x{w} ")).collect();
        srv.raw(Method::PUT, &key_path(bucket, &format!("fill-{i:04}.txt")))
            .header("x-amz-meta-note", &note)
            .header("x-amz-meta-serial", &i.to_string())
            .body(format!("fill {i}").into_bytes())
            .send()
    };
    let mut stored = Vec::new();
    let mut full = None;
    for i in 0..2_000 {
        let r = put_attrs(i).await;
        if r.status == 200 {
            stored.push(format!("fill-{i:04}.txt"));
            continue;
        }
        full = Some((i, r));
        break;
    }
    let (first_refused, r) = full.expect("the capped index never filled up");
    assert_full(&r, "index");
    assert!(
        stored.len() >= 3,
        "the cap left room for only {} writes",
        stored.len()
    );
    assert_not_indexed(&srv, bucket, &format!("fill-{first_refused:04}.txt")).await;
    let before = element_files(&srv, bucket);

    // More refused writes than the pool has connections: each meets a clean connection.
    for i in 0..12 {
        let key = format!("new-{i}.txt");
        let r = srv
            .raw(Method::PUT, &key_path(bucket, &key))
            .header("x-amz-meta-note", &"n".repeat(1_500))
            .body(b"new data".to_vec())
            .send()
            .await;
        assert_full(&r, "index");
        assert_not_indexed(&srv, bucket, &key).await;
    }
    assert_eq!(element_files(&srv, bucket), before, "files left behind");
    srv.assert_no_temp_files(bucket);

    // Reads and listings keep working on the full index.
    let r = get(&srv, bucket, "keep.txt").await;
    r.assert_status(200);
    assert_eq!(r.body, keep);
    srv.raw(Method::HEAD, &key_path(bucket, &stored[0]))
        .send()
        .await
        .assert_status(200);
    let mut listed = stored.clone();
    listed.push("keep.txt".to_owned());
    listed.sort();
    assert_eq!(list_keys(&srv, bucket).await, listed);
    // A DELETE either happens or is a 507 that changed nothing.
    let r = srv
        .raw(Method::DELETE, &key_path(bucket, &stored[0]))
        .send()
        .await;
    if r.status == 204 {
        get(&srv, bucket, &stored[0])
            .await
            .assert_error(404, "NoSuchKey");
        stored.remove(0);
    } else {
        assert_full(&r, "index");
        get(&srv, bucket, &stored[0]).await.assert_status(200);
        assert_eq!(
            element_files(&srv, bucket),
            before,
            "a refused DELETE removed files"
        );
    }

    // Pages given back (by another connection, as another process frees a disk): the same
    // server process writes and deletes again.
    {
        let mut c = srv.index_conn().await;
        sqlx::query("DROP TABLE test_ballast")
            .execute(&mut c)
            .await
            .expect("drop ballast");
    }
    for key in &stored[..2] {
        srv.raw(Method::DELETE, &key_path(bucket, key))
            .send()
            .await
            .assert_status(204);
        get(&srv, bucket, key).await.assert_error(404, "NoSuchKey");
    }
    for i in 0..12 {
        let key = format!("after-{i}.txt");
        put(&srv, bucket, &key, key.as_bytes())
            .await
            .assert_status(200);
        assert_eq!(get(&srv, bucket, &key).await.body, key.as_bytes());
    }
    assert_eq!(get(&srv, bucket, "keep.txt").await.body, keep);
    let logs = srv.logs();
    assert!(
        !logs.contains("non-zero transaction depth"),
        "a failed transaction left a connection inside it"
    );
}
