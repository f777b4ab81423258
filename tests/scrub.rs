//! The background scrub (`scrub_rate`), `index verify` beside a running server, and `index
//! rebuild` refusing to run beside one, against the real binary on SQLite and PostgreSQL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3 as s3;
use common::*;
use sqlx::Row as _;

/// Fast enough that a pass over a few small objects takes well under a second.
const FAST: &str = "104857600";
/// Generous: a loaded CI machine may be slow, the scrub itself is not.
const DEADLINE: Duration = Duration::from_secs(90);

/// `name value` of an OpenMetrics sample without labels (0 when absent).
async fn metric(srv: &Server, name: &str) -> u64 {
    let text = srv
        .http()
        .get(format!("{}/metrics", srv.admin_url()))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Polls an async condition every 100 ms until it holds or `DEADLINE` passes.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The damage the index records on an object (None: unmarked or no row).
async fn damage(srv: &Server, bucket: &str, key: &str) -> Option<String> {
    let mut c = srv.index_conn().await;
    sqlx::query("SELECT damage FROM objects WHERE bucket = $1 AND key = $2")
        .bind(bucket)
        .bind(key)
        .fetch_optional(&mut c)
        .await
        .expect("read damage")
        .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten())
}

async fn audit_details(srv: &Server, action: &str) -> Vec<(String, String)> {
    let mut c = srv.index_conn().await;
    sqlx::query("SELECT target, detail FROM audit_events WHERE action = $1")
        .bind(action)
        .fetch_all(&mut c)
        .await
        .expect("read audit")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

async fn head_code(c: &s3::Client, bucket: &str, key: &str) -> u16 {
    match c.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => 200,
        Err(e) => e.raw_response().map_or(0, |r| r.status().as_u16()),
    }
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x5a]).unwrap();
    f.sync_all().unwrap();
}

fn file_id_of(o: &DiskObject) -> String {
    o.str_field("file_id").expect("file_id in attr.json")
}

storage_test!(
    scrub_marks_damage_and_never_rewrites,
    Server::builder().env("ARTSTORE_SCRUB_RATE", FAST),
    |srv| async move {
        let mut srv = srv;
        let c = srv.client();
        create_bucket(&c, "scrub").await;
        let data = |seed| pattern(300 * 1024, seed);
        for (i, key) in ["flip", "trunc", "gone", "sidecar", "clean"]
            .iter()
            .enumerate()
        {
            put(&c, "scrub", key, data(i as u64)).await;
        }
        let flip = srv.object_on_disk("scrub", "flip").unwrap();
        let trunc = srv.object_on_disk("scrub", "trunc").unwrap();
        let gone = srv.object_on_disk("scrub", "gone").unwrap();
        let sidecar = srv.object_on_disk("scrub", "sidecar").unwrap();
        let clean = srv.object_on_disk("scrub", "clean").unwrap();
        flip_byte(&flip.data, 150 * 1024);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&trunc.data)
            .unwrap()
            .set_len(1000)
            .unwrap();
        std::fs::remove_file(&gone.data).unwrap();
        std::fs::write(&sidecar.attr, b"{ not json").unwrap();
        let flip_after = std::fs::read(&flip.data).unwrap();
        let trunc_after = std::fs::read(&trunc.data).unwrap();

        for key in ["flip", "trunc", "gone", "sidecar"] {
            eventually(&format!("{key} is marked"), || async {
                damage(&srv, "scrub", key).await.is_some()
            })
            .await;
        }
        assert!(
            damage(&srv, "scrub", "flip")
                .await
                .unwrap()
                .contains("SHA-256")
        );
        assert!(
            damage(&srv, "scrub", "trunc")
                .await
                .unwrap()
                .contains("1000 bytes")
        );
        assert!(
            damage(&srv, "scrub", "gone")
                .await
                .unwrap()
                .contains("missing")
        );
        assert!(
            damage(&srv, "scrub", "sidecar")
                .await
                .unwrap()
                .contains("sidecar")
        );

        // Reads answer the damage, never bytes.
        for (key, o) in [
            ("flip", &flip),
            ("trunc", &trunc),
            ("gone", &gone),
            ("sidecar", &sidecar),
        ] {
            let e = sdk_err(c.get_object().bucket("scrub").key(key).send().await);
            e.assert(503, "ObjectCorrupted");
            assert!(e.message.contains(&file_id_of(o)), "{}", e.message);
            assert_eq!(head_code(&c, "scrub", key).await, 503, "HEAD {key}");
            sdk_err(
                c.copy_object()
                    .bucket("scrub")
                    .key(format!("copy-of-{key}"))
                    .copy_source(format!("scrub/{key}"))
                    .send()
                    .await,
            )
            .assert(503, "ObjectCorrupted");
        }
        assert!(
            !exists(&c, "scrub", "copy-of-flip").await,
            "a failed copy stored nothing"
        );
        let up = c
            .create_multipart_upload()
            .bucket("scrub")
            .key("mp")
            .send()
            .await
            .unwrap();
        sdk_err(
            c.upload_part_copy()
                .bucket("scrub")
                .key("mp")
                .upload_id(up.upload_id().unwrap())
                .part_number(1)
                .copy_source("scrub/flip")
                .send()
                .await,
        )
        .assert(503, "ObjectCorrupted");
        assert_eq!(
            get(&c, "scrub", "clean").await,
            data(4),
            "clean objects stay readable"
        );

        // Counted, audited, and not one byte rewritten.
        assert!(metric(&srv, "artstore_scrub_corrupt_total").await >= 4);
        assert!(metric(&srv, "artstore_scrub_objects_total").await >= 5);
        assert!(metric(&srv, "artstore_scrub_bytes_total").await > 0);
        let audited = audit_details(&srv, "scrub.damaged").await;
        for (key, o) in [
            ("flip", &flip),
            ("trunc", &trunc),
            ("gone", &gone),
            ("sidecar", &sidecar),
        ] {
            assert!(
                audited
                    .iter()
                    .any(|(t, d)| t == &format!("scrub/{key}") && d.contains(&file_id_of(o))),
                "no audit event for {key}: {audited:?}"
            );
        }
        let logs = srv.logs();
        assert!(logs.contains("scrub: stored object is damaged"));
        // The damage is an ERROR once, when found; the refused reads are expected answers.
        let refused_at_error = logs
            .lines()
            .filter(|l| l.contains("ERROR") && l.contains("ObjectCorrupted"))
            .collect::<Vec<_>>();
        assert!(
            refused_at_error.is_empty(),
            "refused reads of a damaged object logged at ERROR: {refused_at_error:?}"
        );
        assert_eq!(std::fs::read(&flip.data).unwrap(), flip_after);
        assert_eq!(std::fs::read(&trunc.data).unwrap(), trunc_after);
        assert!(!gone.data.exists(), "the scrub never recreates a file");
        assert_eq!(std::fs::read(&sidecar.attr).unwrap(), b"{ not json");

        // An overwrite and a delete still work and leave no mark.
        put(&c, "scrub", "flip", b"new flip".to_vec()).await;
        assert_eq!(get(&c, "scrub", "flip").await, b"new flip");
        assert_eq!(damage(&srv, "scrub", "flip").await, None);
        c.delete_object()
            .bucket("scrub")
            .key("trunc")
            .send()
            .await
            .unwrap();
        assert!(!exists(&c, "scrub", "trunc").await);
        put(&c, "scrub", "trunc", b"new trunc".to_vec()).await;
        assert_eq!(get(&c, "scrub", "trunc").await, b"new trunc");
        // A file put back as it was (restored from a backup) reads sound again.
        let gone_data = data(2);
        std::fs::write(&gone.data, &gone_data).unwrap();
        eventually("the restored object is unmarked", || async {
            damage(&srv, "scrub", "gone").await.is_none()
        })
        .await;
        assert_eq!(get(&c, "scrub", "gone").await, gone_data);
        // Whole passes later the rewritten objects are still sound.
        let checked = metric(&srv, "artstore_scrub_objects_total").await;
        eventually("two more passes", || async {
            metric(&srv, "artstore_scrub_objects_total").await >= checked + 12
        })
        .await;
        for key in ["flip", "trunc", "gone", "clean"] {
            assert_eq!(head_code(&c, "scrub", key).await, 200, "{key}");
        }

        // A lost index is rebuilt from the sidecars, which know nothing of damage: the next
        // pass finds it again.
        flip_byte(&clean.data, 10);
        srv.stop();
        srv.rebuild_lost_index().await;
        srv.restart().await;
        let c = srv.client();
        eventually("the rebuilt index marks the damage again", || async {
            damage(&srv, "scrub", "clean").await.is_some()
        })
        .await;
        sdk_err(c.get_object().bucket("scrub").key("clean").send().await)
            .assert(503, "ObjectCorrupted");
    }
);

storage_test!(
    get_never_serves_a_file_of_the_wrong_size,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "size").await;
        put(&c, "size", "grown", pattern(1000, 1)).await;
        put(&c, "size", "short", pattern(1000, 2)).await;
        let grown = srv.object_on_disk("size", "grown").unwrap();
        let short = srv.object_on_disk("size", "short").unwrap();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&grown.data)
                .unwrap();
            f.write_all(b"appended").unwrap();
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&short.data)
            .unwrap()
            .set_len(10)
            .unwrap();
        for (key, size) in [("grown", "1008 bytes"), ("short", "10 bytes")] {
            let e = sdk_err(c.get_object().bucket("size").key(key).send().await);
            e.assert(503, "ObjectCorrupted");
            assert!(e.message.contains(size), "{}", e.message);
            // A range inside the recorded size is refused too: the file is not the object's.
            sdk_err(
                c.get_object()
                    .bucket("size")
                    .key(key)
                    .range("bytes=0-4")
                    .send()
                    .await,
            )
            .assert(503, "ObjectCorrupted");
        }
        assert_eq!(std::fs::metadata(&grown.data).unwrap().len(), 1008);
    }
);

storage_test!(scrub_is_off_by_default, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "off").await;
    put(&c, "off", "a", pattern(4096, 1)).await;
    let a = srv.object_on_disk("off", "a").unwrap();
    flip_byte(&a.data, 100);
    // Nothing can happen without a scrub; this only gives a wrongly started one the chance.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in [
        "artstore_scrub_bytes_total",
        "artstore_scrub_objects_total",
        "artstore_scrub_corrupt_total",
    ] {
        assert_eq!(metric(&srv, name).await, 0, "{name}");
    }
    assert_eq!(damage(&srv, "off", "a").await, None);
    assert!(!srv.logs().contains("background scrub started"));
});

storage_test!(
    scrub_keeps_to_its_rate,
    Server::builder().env("ARTSTORE_SCRUB_RATE", "2097152"),
    |srv| async move {
        const RATE: f64 = 2_097_152.0;
        // The bucket holds one second of reading (2 MiB) and one 1 MiB chunk may be read
        // before its tokens are taken.
        const BURST: f64 = 2_097_152.0 + 1_048_576.0;
        let c = srv.client();
        create_bucket(&c, "rate").await;
        for i in 0..4 {
            put(&c, "rate", &format!("o{i}"), pattern(1 << 20, i)).await;
        }
        let (b0, t0) = (
            metric(&srv, "artstore_scrub_bytes_total").await,
            Instant::now(),
        );
        let want = 8u64 << 20;
        eventually("8 MiB scrubbed", || async {
            metric(&srv, "artstore_scrub_bytes_total").await >= b0 + want
        })
        .await;
        let (b1, took) = (
            metric(&srv, "artstore_scrub_bytes_total").await,
            t0.elapsed(),
        );
        let floor = ((b1 - b0) as f64 - BURST) / RATE;
        println!(
            "scrubbed {} bytes in {:.2} s ({:.0} bytes/s; rate {RATE}, floor {floor:.2} s)",
            b1 - b0,
            took.as_secs_f64(),
            (b1 - b0) as f64 / took.as_secs_f64()
        );
        assert!(
            took.as_secs_f64() >= floor,
            "{} bytes in {took:?}: faster than {RATE} bytes/s allows",
            b1 - b0
        );
    }
);

/// `artstore index verify` on the server's data dir and index, as an operator runs it.
fn verify(
    data_dir: &Path,
    db_url: Option<&str>,
    extra: &[&str],
) -> (bool, serde_json::Value, String) {
    let mut cmd = Command::new(artstore_bin());
    cmd.args(["index", "verify"])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("ARTSTORE_DATABASE_URL")
        .env_remove("ARTSTORE_MASTER_KEY")
        .env_remove("ARTSTORE_CONFIG")
        .env("ARTSTORE_LOG_FORMAT", "json");
    if let Some(url) = db_url {
        cmd.arg("--database-url").arg(url);
    }
    let out = cmd.output().expect("run artstore");
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

storage_test!(verify_beside_a_busy_server, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "busy").await;
    put(&c, "busy", "stable", pattern(200 * 1024, 7)).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (c, stop, writes) = (c.clone(), stop.clone(), writes.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("w{w}/k{}", i % 5);
                let body = pattern(64 * 1024 + (i as usize % 7) * 1000, w * 1000 + i);
                c.put_object()
                    .bucket("busy")
                    .key(&key)
                    .body(body.into())
                    .send()
                    .await
                    .expect("put");
                if i % 3 == 2 {
                    c.delete_object()
                        .bucket("busy")
                        .key(&key)
                        .send()
                        .await
                        .expect("delete");
                }
                writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    let data_dir: PathBuf = srv.data_dir().to_path_buf();
    let url = srv.database_url();
    for round in 0..6 {
        let (d, u) = (data_dir.clone(), url.clone());
        let (ok, report, err) = tokio::task::spawn_blocking(move || verify(&d, u.as_deref(), &[]))
            .await
            .unwrap();
        assert!(
            ok,
            "round {round}: verify beside the writers reported damage: {report:#} {err}"
        );
        assert!(report["objects_checked"].as_u64().unwrap() >= 1);
    }
    // Still read-only: --repair refuses while the server runs.
    let (d, u) = (data_dir.clone(), url.clone());
    let (ok, _, err) = tokio::task::spawn_blocking(move || verify(&d, u.as_deref(), &["--repair"]))
        .await
        .unwrap();
    assert!(!ok && err.contains("a server is running"), "{err}");
    // Genuine damage is still found while the writers go on.
    let stable = srv.object_on_disk("busy", "stable").unwrap();
    flip_byte(&stable.data, 1234);
    let (d, u) = (data_dir.clone(), url.clone());
    let (ok, report, _) = tokio::task::spawn_blocking(move || verify(&d, u.as_deref(), &[]))
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(!ok, "{report:#}");
    assert_eq!(
        report["checksum_mismatch"],
        serde_json::json!(["busy/stable"]),
        "{report:#}"
    );
    assert!(
        writes.load(std::sync::atomic::Ordering::Relaxed) >= 10,
        "the writers wrote while verify ran"
    );
});

storage_test!(rebuild_refuses_beside_a_server, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    create_bucket(&c, "lock").await;
    put(&c, "lock", "kept", b"kept".to_vec()).await;
    put(&c, "lock", "lost", b"lost".to_vec()).await;
    // A row lost from the index (as after restoring an old backup): only a rebuild brings it back.
    let mut conn = srv.index_conn().await;
    sqlx::query("DELETE FROM objects WHERE bucket = 'lock' AND key = 'lost'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let (ok, report, err) = srv.index_cmd("rebuild");
    assert!(!ok, "rebuild ran beside a server: {report}");
    assert!(
        err.contains("artstore index rebuild refused") && err.contains("a server is running"),
        "{err}"
    );
    assert!(
        !exists(&c, "lock", "lost").await,
        "the refused rebuild changed the index"
    );
    assert_eq!(get(&c, "lock", "kept").await, b"kept");
    srv.stop();
    let (ok, report, err) = srv.index_cmd("rebuild");
    assert!(ok, "rebuild after the stop: {err}");
    assert!(report["objects_indexed"].as_u64().unwrap() >= 1, "{report}");
    srv.restart().await;
    assert_eq!(get(&srv.client(), "lock", "lost").await, b"lost");
});

storage_test!(
    a_damaged_archive_is_not_restored,
    Server::builder().env("ARTSTORE_SCRUB_RATE", FAST),
    |srv| async move {
        let cli = |args: &[&str]| {
            let mut all = vec!["element"];
            all.extend_from_slice(args);
            let (ok, _, err) = srv.cli(&all);
            assert!(ok, "artstore element {args:?} failed: {err}");
        };
        cli(&["create", "vault", "--mode", "rw"]);
        let c = srv.client();
        put(&c, "vault", "doc", pattern(50_000, 3)).await;
        cli(&["mode", "vault", "ro", "--reason", "closed"]);
        cli(&["mode", "vault", "ar", "--reason", "archived"]);
        let doc = srv.object_on_disk("vault", "doc").unwrap();
        flip_byte(&doc.data, 20_000);
        eventually("the archived object is marked", || async {
            damage(&srv, "vault", "doc").await.is_some()
        })
        .await;
        let body = "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>1</Days></RestoreRequest>";
        let r = srv
            .raw(Method::POST, &key_path("vault", "doc"))
            .query("restore", "")
            .body(body.as_bytes().to_vec())
            .send()
            .await;
        r.assert_error(503, "ObjectCorrupted");
        assert!(r.text().contains(&file_id_of(&doc)), "{}", r.text());
        // Nothing started: the object has no restore state.
        let mut conn = srv.index_conn().await;
        let status: Option<String> = sqlx::query(
            "SELECT restore_status FROM objects WHERE bucket = 'vault' AND key = 'doc'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
        assert_eq!(status, None);
    }
);
