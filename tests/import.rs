//! `artstore element import` (issue 10, item 7): storage-element directories written by the
//! earlier ArtStore implementations, generated here from the formats they wrote (Python
//! attr.json v1 in both datetime forms, the Python template v2.0, the flat Go layout), adopted
//! in place through the real binary, then read back over S3, searched in the index, rebuilt
//! from disk, and changed. Bad input is reported by file name and changes nothing on disk.

mod common;
use common::*;

use artstore_metadata::{AttrCond, AttrFilter, MasterKey, SearchQuery, SecretBox, Store};
use s3::types::{Tag, Tagging};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// legacy trees
// ---------------------------------------------------------------------------------------------

/// A directory as an earlier storage element left it.
struct Legacy {
    tmp: tempfile::TempDir,
}

/// One document written into a legacy tree.
struct Doc {
    /// Data file, relative to the tree.
    rel: String,
    data: Vec<u8>,
}

impl Doc {
    fn sidecar(&self) -> String {
        format!("{}.attr.json", self.rel)
    }
}

/// The Python stored name: `{stem}_{user}_{YYYYMMDDTHHMMSS}_{uuid}{ext}`.
fn py_name(original: &str, user: &str, stamp: &str, id: &str) -> String {
    let (stem, ext) = match original.rsplit_once('.') {
        Some((s, e)) => (s.to_owned(), format!(".{e}")),
        None => (original.to_owned(), String::new()),
    };
    format!("{stem}_{user}_{stamp}_{id}{ext}")
}

impl Legacy {
    fn new() -> Legacy {
        Legacy {
            tmp: tempfile::Builder::new()
                .prefix("artstore-legacy-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// The tree's own directory (a child of the temp dir, so its parent never shows in it).
    fn root(&self) -> PathBuf {
        let root = self.tmp.path().join("se01");
        std::fs::create_dir_all(&root).expect("mkdir");
        root
    }

    fn path(&self) -> String {
        self.root().to_string_lossy().into_owned()
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }

    fn write_json(&self, rel: &str, v: &Value) {
        // As the Python writers did: indent 2, non-ASCII kept.
        self.write(
            rel,
            serde_json::to_string_pretty(v).expect("json").as_bytes(),
        );
    }

    /// A document of the Python storage element. `space_dates`: the S3 backend's
    /// `str(datetime)` form; otherwise pydantic's ISO form. `v2`: the template schema 2.0.
    #[allow(clippy::too_many_arguments)]
    fn python(
        &self,
        hour_dir: &str,
        original: &str,
        user: &str,
        data: &[u8],
        metadata: Value,
        space_dates: bool,
        v2: Option<Value>,
    ) -> Doc {
        let id = uuid::Uuid::new_v4().to_string();
        let compact = hour_dir.replace('/', "");
        let stamp = format!("{}T{}3045", &compact[..8], &compact[8..]);
        let name = py_name(original, user, &stamp, &id);
        let (y, m, d, h) = (
            &hour_dir[0..4],
            &hour_dir[5..7],
            &hour_dir[8..10],
            &hour_dir[11..13],
        );
        let (created, updated) = if space_dates {
            (
                format!("{y}-{m}-{d} {h}:30:45.123456+00:00"),
                format!("{y}-{m}-{d} {h}:31:00.500000+00:00"),
            )
        } else {
            (
                format!("{y}-{m}-{d}T{h}:30:45.123456Z"),
                format!("{y}-{m}-{d}T{h}:31:00Z"),
            )
        };
        let mut attr = json!({
            "file_id": id,
            "original_filename": original,
            "storage_filename": name,
            "file_size": data.len(),
            "content_type": "application/pdf",
            "created_at": created,
            "updated_at": updated,
            "created_by_id": "b9c1d3e0-0000-4000-8000-000000000042",
            "created_by_username": user,
            "created_by_fullname": null,
            "description": "Годовой отчёт",
            "version": null,
            "storage_path": format!("{hour_dir}/"),
            "checksum": sha256_hex(data),
            "metadata": metadata,
        });
        if let Some(custom) = v2 {
            attr["schema_version"] = json!("2.0");
            attr["custom_attributes"] = custom;
        }
        let rel = format!("{hour_dir}/{name}");
        self.write(&rel, data);
        self.write_json(&format!("{rel}.attr.json"), &attr);
        Doc {
            rel,
            data: data.to_vec(),
        }
    }

    /// A document of the Go storage element: flat layout, `size`, `uploaded_*`, tag list.
    fn go(&self, original: &str, user: &str, data: &[u8], tags: &[&str]) -> Doc {
        let id = uuid::Uuid::new_v4().to_string();
        let (stem, ext) = original.rsplit_once('.').unwrap_or((original, ""));
        let name = format!("{stem}_{user}_20240301120000_{}.{ext}", &id[..8]);
        let attr = json!({
            "file_id": id,
            "original_filename": original,
            "storage_path": name,
            "content_type": "image/tiff",
            "size": data.len(),
            "checksum": sha256_hex(data),
            "uploaded_by": "sa-scanner",
            "uploaded_at": "2024-03-01T12:00:00Z",
            "status": "active",
            "retention_policy": "permanent",
            "tags": tags,
        });
        self.write(&name, data);
        self.write_json(&format!("{name}.attr.json"), &attr);
        Doc {
            rel: name,
            data: data.to_vec(),
        }
    }

    /// Every file (not directory) and its SHA-256, symlinks included by target text.
    fn snapshot(&self) -> BTreeMap<String, String> {
        let root = self.root();
        walk_files(&root)
            .into_iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(&root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                (rel, sha256_hex(&std::fs::read(&p).expect("read")))
            })
            .collect()
    }
}

/// The usual mixed archive: Python v1 in both datetime forms, Python v2.0, Go flat.
fn archive(l: &Legacy) -> Vec<(String, Doc)> {
    let report = l.python(
        "2025/01/10/15",
        "Отчёт за 2024.pdf",
        "ivanov",
        &pattern(300_000, 1),
        json!({"Отдел": "бухгалтерия", "project": "apollo"}),
        false,
        None,
    );
    let contract = l.python(
        "2025/02/03/04",
        "Договор №17.pdf",
        "petrova",
        b"contract body",
        json!({"Project": "apollo", "year": 2025}),
        true,
        None,
    );
    let memo = l.python(
        "2025/02/03/04",
        "memo.txt",
        "svc-ingest",
        b"memo text",
        json!({"project": "legacy"}),
        false,
        Some(json!({"project": "gemini", "reviewer": "Сидоров"})),
    );
    let scan = l.go(
        "скан_паспорта.tiff",
        "sidorov",
        b"TIFF scan",
        &["scan", "2024"],
    );
    vec![
        ("2025/01/10/15/Отчёт за 2024.pdf".to_owned(), report),
        ("2025/02/03/04/Договор №17.pdf".to_owned(), contract),
        ("2025/02/03/04/memo.txt".to_owned(), memo),
        ("скан_паспорта.tiff".to_owned(), scan),
    ]
}

// ---------------------------------------------------------------------------------------------
// running the import
// ---------------------------------------------------------------------------------------------

/// `artstore element import …` as an operator runs it: (success, JSON report, stderr).
fn import(srv: &Server, l: &Legacy, name: &str, extra: &[&str]) -> (bool, Value, String) {
    let path = l.path();
    let mut args = vec!["element", "import", "--path", &path, "--name", name];
    args.extend_from_slice(extra);
    let (ok, out, err) = srv.cli(&args);
    let report = serde_json::from_str(&out).unwrap_or(Value::Null);
    (ok, report, err)
}

fn skipped(report: &Value) -> BTreeMap<String, String> {
    report["skipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["file"].as_str().unwrap_or_default().to_owned(),
                        s["reason"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn imported_keys(report: &Value) -> Vec<String> {
    let mut keys: Vec<String> = report["imported"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

/// The server's index, opened as the binary opens it.
async fn store(srv: &Server) -> Store {
    let url = srv
        .database_url()
        .unwrap_or_else(|| Store::sqlite_url(srv.data_dir()));
    Store::connect(&url, SecretBox::new(&MasterKey::generate()))
        .await
        .expect("connect to the index")
}

async fn object_count(srv: &Server) -> i64 {
    use sqlx::Row as _;
    let mut c = srv.index_conn().await;
    sqlx::query("SELECT COUNT(*) AS n FROM objects")
        .fetch_one(&mut c)
        .await
        .expect("count")
        .try_get::<i64, _>("n")
        .expect("n")
}

async fn head_meta(c: &s3::Client, bucket: &str, key: &str) -> BTreeMap<String, String> {
    let h = c
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
    h.metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn only_element_json_added(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) {
    let mut after = after.clone();
    assert!(
        after.remove("element.json").is_some(),
        "element.json is written"
    );
    assert_eq!(
        &after, before,
        "no file of the archive is changed, moved or added"
    );
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

storage_test!(
    an_archive_is_adopted_in_place_and_served_like_any_element,
    |srv| async move {
        let l = Legacy::new();
        let docs = archive(&l);
        l.write("2025/02/03/04/.tmp_attr_k2j3.json", b"{\"partial\":");
        let before = l.snapshot();

        // Dry run: the report, and nothing else.
        let (ok, dry, err) = import(&srv, &l, "archive", &["--dry-run"]);
        assert!(ok, "dry run: {err} {dry}");
        assert_eq!(dry["dry_run"], true);
        assert_eq!(
            imported_keys(&dry),
            sorted(docs.iter().map(|(k, _)| k.clone()).collect())
        );
        assert_eq!(
            dry["ignored"][0]["file"], "2025/02/03/04/.tmp_attr_k2j3.json",
            "{dry}"
        );
        assert_eq!(l.snapshot(), before, "a dry run changes nothing on disk");
        let c = srv.client();
        sdk_err(c.head_bucket().bucket("archive").send().await).assert(404, "NotFound");
        assert_eq!(object_count(&srv).await, 0, "a dry run writes no rows");
        assert!(!srv.element_dir("archive").exists());

        // The import.
        let (ok, report, err) = import(&srv, &l, "archive", &[]);
        assert!(ok, "import: {err} {report}");
        assert_eq!(report["element_created"], true);
        assert_eq!(report["mode"], "ro", "an archive's mode is not known: ro");
        assert_eq!(imported_keys(&report), imported_keys(&dry));
        assert!(skipped(&report).is_empty(), "{report}");
        let total: u64 = docs.iter().map(|(_, d)| d.data.len() as u64).sum();
        assert_eq!(report["bytes_hashed"], total);
        only_element_json_added(&before, &l.snapshot());

        // Readable (bytes and SHA-256), listable, with the legacy attributes.
        for (key, doc) in &docs {
            let got = get(&c, "archive", key).await;
            assert_eq!(sha256_hex(&got), sha256_hex(&doc.data), "{key}");
        }
        assert_eq!(
            list_keys(&c, "archive").await,
            sorted(docs.iter().map(|(k, _)| k.clone()).collect())
        );
        let prefixed = c
            .list_objects_v2()
            .bucket("archive")
            .prefix("2025/02/")
            .send()
            .await
            .expect("list prefix");
        assert_eq!(prefixed.contents().len(), 2);
        let h = c
            .head_object()
            .bucket("archive")
            .key("2025/02/03/04/memo.txt")
            .send()
            .await
            .expect("head");
        assert_eq!(h.content_length(), Some(9));
        assert_eq!(
            h.e_tag(),
            Some(quoted(&sha256_hex(b"memo text")).as_str()),
            "ETag of an imported document is its SHA-256"
        );
        let meta = head_meta(&c, "archive", "2025/02/03/04/memo.txt").await;
        // custom_attributes win the name; metadata's other value is kept beside it.
        assert_eq!(meta.get("project").map(String::as_str), Some("gemini"));
        assert_eq!(meta.get("project-2").map(String::as_str), Some("legacy"));
        let meta = head_meta(&c, "archive", "скан_паспорта.tiff").await;
        assert_eq!(meta.get("tags").map(String::as_str), Some("scan,2024"));
        assert_eq!(
            meta.get("retention_policy").map(String::as_str),
            Some("permanent")
        );
        let h = c
            .head_object()
            .bucket("archive")
            .key("2025/02/03/04/Договор №17.pdf")
            .send()
            .await
            .expect("head contract");
        assert_eq!(h.content_type(), Some("application/pdf"));
        // The space-separated datetime of the S3 writer, read as UTC.
        assert_eq!(
            h.last_modified().map(|t| t.secs()),
            Some(time::macros::datetime!(2025-02-03 04:31:00.5 UTC).unix_timestamp())
        );

        // Searchable like any other object, Cyrillic attribute names and values included.
        let st = store(&srv).await;
        let page = st
            .search(&SearchQuery {
                attrs: vec![AttrFilter {
                    name: "project".into(),
                    cond: AttrCond::Equals(vec!["apollo".into()]),
                }],
                ..Default::default()
            })
            .await
            .expect("search");
        let found: Vec<String> = page.items.iter().map(|h| h.object.key.clone()).collect();
        assert_eq!(
            sorted(found),
            [
                "2025/01/10/15/Отчёт за 2024.pdf",
                "2025/02/03/04/Договор №17.pdf"
            ]
        );
        let page = st
            .search(&SearchQuery {
                attrs: vec![AttrFilter {
                    name: "otdel".into(),
                    cond: AttrCond::Equals(vec!["бухгалтерия".into()]),
                }],
                ..Default::default()
            })
            .await
            .expect("search cyrillic");
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].object.key, "2025/01/10/15/Отчёт за 2024.pdf");
        let page = st
            .search(&SearchQuery {
                q: Some("Сидоров".into()),
                ..Default::default()
            })
            .await
            .expect("search text");
        assert_eq!(page.items.len(), 1, "full text finds attribute values");
        assert_eq!(page.items[0].object.key, "2025/02/03/04/memo.txt");
        st.close().await;

        // A second run imports nothing new; a document added since is picked up.
        let (ok, again, err) = import(&srv, &l, "archive", &[]);
        assert!(ok, "{err} {again}");
        assert_eq!(again["already_imported"], 4);
        assert!(imported_keys(&again).is_empty(), "{again}");
        let late = l.go("late.tiff", "sidorov", b"late scan", &[]);
        let (ok, third, err) = import(&srv, &l, "archive", &[]);
        assert!(ok, "{err} {third}");
        assert_eq!(imported_keys(&third), ["late.tiff"]);
        assert_eq!(third["already_imported"], 4);
        assert_eq!(get(&c, "archive", "late.tiff").await, late.data);

        // The index is a cache of the disk: a lost one is rebuilt with the same objects.
        let listing = list_keys(&c, "archive").await;
        let etag = |out: s3::operation::head_object::HeadObjectOutput| {
            out.e_tag().unwrap_or_default().to_owned()
        };
        let etag_before = etag(
            c.head_object()
                .bucket("archive")
                .key("скан_паспорта.tiff")
                .send()
                .await
                .expect("head"),
        );
        let mut srv = srv;
        srv.stop();
        let (rebuilt, _) = srv.rebuild_lost_index().await;
        assert_eq!(rebuilt["broken"], json!([]), "{rebuilt}");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(list_keys(&c, "archive").await, listing);
        let etag_after = etag(
            c.head_object()
                .bucket("archive")
                .key("скан_паспорта.tiff")
                .send()
                .await
                .expect("head"),
        );
        assert_eq!(etag_after, etag_before);
        let (ok, verify, err) = srv.index_cmd("verify");
        assert!(ok, "verify after rebuild: {err} {verify}");
        let mut after = l.snapshot();
        after.remove("element.json");
        let mut expected = before.clone();
        expected.insert(late.rel.clone(), sha256_hex(&late.data));
        expected.insert(late.sidecar(), after[&late.sidecar()].clone());
        assert_eq!(after, expected, "rebuild and restart changed no file");
    }
);

storage_test!(
    a_legacy_sidecar_becomes_v2_only_when_its_document_changes,
    |srv| async move {
        let l = Legacy::new();
        let docs = archive(&l);
        let (ok, report, err) = import(&srv, &l, "live", &["--mode", "rw"]);
        assert!(ok, "{err} {report}");
        let (key, doc) = &docs[0];
        let sidecar = l.root().join(doc.sidecar());
        let legacy_bytes = std::fs::read(&sidecar).expect("sidecar");
        let c = srv.client();
        assert_eq!(get(&c, "live", key).await, doc.data);
        head_meta(&c, "live", key).await;
        assert_eq!(
            std::fs::read(&sidecar).expect("sidecar"),
            legacy_bytes,
            "reads leave the legacy attr.json byte for byte"
        );

        c.put_object_tagging()
            .bucket("live")
            .key(key)
            .tagging(
                Tagging::builder()
                    .tag_set(
                        Tag::builder()
                            .key("case")
                            .value("A-17")
                            .build()
                            .expect("tag"),
                    )
                    .build()
                    .expect("tagging"),
            )
            .send()
            .await
            .expect("put tagging");
        let v2: Value =
            serde_json::from_slice(&std::fs::read(&sidecar).expect("sidecar")).expect("json");
        assert_eq!(v2["schema_version"], "2.0", "{v2}");
        assert_eq!(v2["bucket"], "live");
        assert_eq!(v2["key"], key.as_str());
        assert_eq!(v2["tags"]["case"], "A-17");
        assert_eq!(v2["checksum"], sha256_hex(&doc.data));
        assert_eq!(v2["custom_attributes"]["project"], "apollo");
        assert_eq!(v2["created_at"], "2025-01-10T15:30:45.123Z");
        // The other documents' sidecars are untouched.
        for (_, other) in &docs[1..] {
            let text = std::fs::read_to_string(l.root().join(other.sidecar())).expect("read");
            assert!(!text.contains("\"bucket\""), "{text}");
        }
        assert_eq!(get(&c, "live", key).await, doc.data);
        let tags = c
            .get_object_tagging()
            .bucket("live")
            .key(key)
            .send()
            .await
            .expect("get tagging");
        assert_eq!(tags.tag_set().len(), 1);

        // Rebuilt from disk: the upgraded sidecar and the legacy ones give the same objects.
        let listing = list_keys(&c, "live").await;
        let mut srv = srv;
        srv.stop();
        let (rebuilt, _) = srv.rebuild_lost_index().await;
        assert_eq!(rebuilt["broken"], json!([]), "{rebuilt}");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(list_keys(&c, "live").await, listing);
        let tags = c
            .get_object_tagging()
            .bucket("live")
            .key(key)
            .send()
            .await
            .expect("get tagging");
        assert_eq!(tags.tag_set()[0].value(), "A-17");
    }
);

storage_test!(
    bad_input_is_reported_by_name_and_changes_nothing,
    |srv| async move {
        let l = Legacy::new();
        let good = l.python(
            "2025/03/01/09",
            "good.pdf",
            "ivanov",
            b"good",
            json!({}),
            false,
            None,
        );
        // Corrupt JSON.
        let corrupt = l.python(
            "2025/03/01/09",
            "corrupt.pdf",
            "ivanov",
            b"c",
            json!({}),
            false,
            None,
        );
        l.write(&corrupt.sidecar(), b"{\"file_id\": \"x\", ");
        // Over 4096 bytes.
        let big = l.python(
            "2025/03/01/09",
            "big.pdf",
            "ivanov",
            b"b",
            json!({"notes": "x".repeat(5000)}),
            false,
            None,
        );
        // The same document twice (a copy of data and sidecar).
        let dup_rel = good.rel.replace("/good_", "/копия_good_");
        l.write(&dup_rel, b"good");
        std::fs::copy(
            l.root().join(good.sidecar()),
            l.root().join(format!("{dup_rel}.attr.json")),
        )
        .expect("copy");
        // Two documents with one key.
        let first = l.python(
            "2025/03/01/09",
            "same.txt",
            "aaa",
            b"first",
            json!({}),
            false,
            None,
        );
        let second = l.python(
            "2025/03/01/09",
            "same.txt",
            "bbb",
            b"second",
            json!({}),
            false,
            None,
        );
        let (winner, loser) = if first.rel < second.rel {
            (first, second)
        } else {
            (second, first)
        };
        // A data file without sidecar, a sidecar without data file.
        l.write("2025/03/01/09/stray.bin", b"stray");
        let lost = l.python(
            "2025/03/01/09",
            "lost.pdf",
            "ivanov",
            b"lost",
            json!({}),
            false,
            None,
        );
        std::fs::remove_file(l.root().join(&lost.rel)).expect("rm");
        // Wrong size, wrong checksum.
        let short = l.python(
            "2025/03/01/09",
            "short.pdf",
            "ivanov",
            b"12345",
            json!({}),
            false,
            None,
        );
        l.write(&short.rel, b"1234");
        let rotten = l.python(
            "2025/03/01/09",
            "rotten.pdf",
            "ivanov",
            b"12345",
            json!({}),
            false,
            None,
        );
        l.write(&rotten.rel, b"12X45");
        // A document the Go storage element had deleted.
        let deleted = l.go("gone.tiff", "x", b"gone", &[]);
        let text = std::fs::read_to_string(l.root().join(deleted.sidecar())).expect("read");
        l.write(
            &deleted.sidecar(),
            text.replace("\"active\"", "\"deleted\"").as_bytes(),
        );
        // A sidecar where no scan of ArtStore would find it again.
        l.write("misc/old.pdf", b"old");
        let misplaced_attr = std::fs::read(l.root().join(good.sidecar())).expect("read");
        l.write("misc/old.pdf.attr.json", &misplaced_attr);

        let before = l.snapshot();
        let (ok, dry, _) = import(&srv, &l, "mixed", &["--dry-run"]);
        assert!(!ok, "a dry run with bad input fails too");
        assert_eq!(l.snapshot(), before);
        assert_eq!(object_count(&srv).await, 0);

        let (ok, report, err) = import(&srv, &l, "mixed", &[]);
        assert!(!ok, "documents were left out: the command fails");
        assert!(err.contains("not imported"), "{err}");
        assert_eq!(skipped(&report), skipped(&dry), "the dry run told the same");
        let s = skipped(&report);
        let reason = |file: &str| {
            s.get(file)
                .unwrap_or_else(|| panic!("{file} not reported: {report}"))
                .clone()
        };
        assert!(reason(&corrupt.sidecar()).contains("corrupt attr.json"));
        assert!(reason(&big.sidecar()).contains("more than the 4096"));
        assert!(reason(&format!("{dup_rel}.attr.json")).contains("duplicate"));
        assert!(reason(&loser.sidecar()).contains(&winner.sidecar()));
        assert!(reason("2025/03/01/09/stray.bin").contains("without a sidecar"));
        assert!(reason(&lost.sidecar()).contains("missing"));
        assert!(reason(&short.sidecar()).contains("4 bytes"));
        assert!(reason(&rotten.sidecar()).contains("SHA-256"));
        assert!(reason(&deleted.sidecar()).contains("deleted"));
        assert!(reason("misc/old.pdf.attr.json").contains("layouts"));
        assert_eq!(s.len(), 10, "{report}");
        assert_eq!(
            imported_keys(&report),
            ["2025/03/01/09/good.pdf", "2025/03/01/09/same.txt"]
        );
        only_element_json_added(&before, &l.snapshot());

        let c = srv.client();
        assert_eq!(
            list_keys(&c, "mixed").await,
            ["2025/03/01/09/good.pdf", "2025/03/01/09/same.txt"]
        );
        assert_eq!(
            get(&c, "mixed", "2025/03/01/09/same.txt").await,
            winner.data
        );
        assert_eq!(object_count(&srv).await, 2, "nothing imported half");

        // A rebuild keeps the same choice and removes nothing.
        let mut srv = srv;
        srv.stop();
        let (rebuilt, _) = srv.rebuild_lost_index().await;
        assert_eq!(rebuilt["superseded_removed"], 0, "{rebuilt}");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(
            get(&c, "mixed", "2025/03/01/09/same.txt").await,
            winner.data
        );
        // Rebuild reads what the import refused only for its checksum (rebuild checks sizes,
        // not hashes); `index verify` names it.
        assert_eq!(
            list_keys(&c, "mixed").await,
            [
                "2025/03/01/09/good.pdf",
                "2025/03/01/09/rotten.pdf",
                "2025/03/01/09/same.txt",
            ]
        );
        let (ok, verify, _) = srv.index_cmd("verify");
        assert!(!ok);
        assert_eq!(
            verify["checksum_mismatch"],
            json!(["mixed/2025/03/01/09/rotten.pdf"])
        );
        only_element_json_added(&before, &l.snapshot());
    }
);

storage_test!(
    an_archive_with_nothing_importable_creates_nothing,
    |srv| async move {
        let l = Legacy::new();
        l.write("2025/03/01/09/a.bin", b"data without sidecar");
        l.write("2025/03/01/09/b.pdf.attr.json", b"not json");
        let before = l.snapshot();
        let (ok, report, _) = import(&srv, &l, "empty", &[]);
        assert!(!ok);
        assert_eq!(skipped(&report).len(), 2, "{report}");
        assert_eq!(report["element_created"], false);
        assert_eq!(l.snapshot(), before, "not even element.json");
        sdk_err(srv.client().head_bucket().bucket("empty").send().await).assert(404, "NotFound");
    }
);

storage_test!(checksums_can_be_skipped_and_keys_chosen, |srv| async move {
    let l = Legacy::new();
    let a = l.python(
        "2025/04/01/00",
        "a.pdf",
        "u",
        b"aaaa",
        json!({}),
        false,
        None,
    );
    let rotten = l.python(
        "2025/04/01/00",
        "b.pdf",
        "u",
        b"bbbb",
        json!({}),
        false,
        None,
    );
    l.write(&rotten.rel, b"bXbb");
    let before = l.snapshot();

    // Refusals: a bad template, a relative path, a name taken.
    let (ok, _, err) = import(&srv, &l, "keyed", &["--key-template", "{dir}{nope}"]);
    assert!(!ok && err.contains("unknown placeholder {nope}"), "{err}");
    let (ok, _, err) = srv.cli(&["element", "import", "--path", "rel/dir", "--name", "keyed"]);
    assert!(!ok && err.contains("absolute"), "{err}");
    create_bucket(&srv.client(), "taken").await;
    let (ok, _, err) = import(&srv, &l, "taken", &[]);
    assert!(!ok && err.contains("was not imported"), "{err}");
    assert_eq!(l.snapshot(), before);

    let t = "by-id/{file_id}{ext}";
    let (ok, report, err) = import(
        &srv,
        &l,
        "keyed",
        &["--key-template", t, "--no-verify-checksums", "--mode", "ar"],
    );
    assert!(ok, "{err} {report}");
    assert_eq!(report["bytes_hashed"], 0);
    assert_eq!(report["checksums_verified"], false);
    let attr = |d: &Doc| -> Value {
        serde_json::from_slice(&std::fs::read(l.root().join(d.sidecar())).expect("read"))
            .expect("json")
    };
    let ka = format!("by-id/{}.pdf", attr(&a)["file_id"].as_str().expect("id"));
    let kb = format!(
        "by-id/{}.pdf",
        attr(&rotten)["file_id"].as_str().expect("id")
    );
    assert_eq!(imported_keys(&report), sorted(vec![ka.clone(), kb.clone()]));
    let c = srv.client();
    assert_eq!(list_keys(&c, "keyed").await, sorted(vec![ka.clone(), kb]));
    // Mode ar: listable, not readable.
    sdk_err(c.get_object().bucket("keyed").key(&ka).send().await).assert(403, "InvalidObjectState");
    // What was not verified on import, `index verify` finds.
    let (ok, verify, _) = srv.index_cmd("verify");
    assert!(!ok);
    assert_eq!(
        verify["checksum_mismatch"].as_array().map(Vec::len),
        Some(1)
    );

    // The keys of an imported element cannot change on a later run.
    let (ok, _, err) = import(&srv, &l, "keyed", &["--key-template", "{file_id}"]);
    assert!(!ok && err.contains("keys cannot change"), "{err}");
    let (ok, again, err) = import(&srv, &l, "keyed", &["--no-verify-checksums"]);
    assert!(ok, "{err}");
    assert_eq!(again["already_imported"], 2);
    // Another name for the same directory: it already holds an element.json.
    let (ok, _, err) = import(&srv, &l, "twice", &[]);
    assert!(!ok && err.contains("element.json"), "{err}");
    only_element_json_added(&before, &l.snapshot());
});

storage_test!(
    restoring_an_imported_archived_document_keeps_its_key,
    |srv| async move {
        let l = Legacy::new();
        let docs = archive(&l);
        let (ok, report, err) = import(&srv, &l, "vault", &["--mode", "ar"]);
        assert!(ok, "{err} {report}");
        let (key, doc) = &docs[0];
        let c = srv.client();
        sdk_err(c.get_object().bucket("vault").key(key).send().await)
            .assert(403, "InvalidObjectState");
        c.restore_object()
            .bucket("vault")
            .key(key)
            .restore_request(s3::types::RestoreRequest::builder().days(1).build())
            .send()
            .await
            .expect("restore");
        // The restore verifies in the background; its end is visible in HEAD.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            let h = c
                .head_object()
                .bucket("vault")
                .key(key)
                .send()
                .await
                .expect("head");
            if h.restore()
                .is_some_and(|r| r.contains("ongoing-request=\"false\""))
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "restore never ended");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(get(&c, "vault", key).await, doc.data);
        let v2: Value =
            serde_json::from_slice(&std::fs::read(l.root().join(doc.sidecar())).expect("sidecar"))
                .expect("json");
        assert_eq!(v2["restore"]["status"], "completed", "{v2}");
        assert_eq!(v2["bucket"], "vault", "{v2}");
        assert_eq!(v2["key"], key.as_str(), "{v2}");
        assert_eq!(v2["etag"], sha256_hex(&doc.data), "{v2}");

        let listing = list_keys(&c, "vault").await;
        let mut srv = srv;
        srv.stop();
        let (rebuilt, _) = srv.rebuild_lost_index().await;
        assert_eq!(rebuilt["broken"], json!([]), "{rebuilt}");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(list_keys(&c, "vault").await, listing);
        assert_eq!(get(&c, "vault", key).await, doc.data, "still restored");
    }
);
