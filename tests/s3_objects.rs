//! Objects (issue 2, items 2, 3, 5 and 8): put/get/head/delete, ranges, DeleteObjects, CopyObject,
//! conditional requests, awkward keys, attributes and attr.json on disk, listing (v1, v2,
//! versions), object stubs, durability across kill -9.

mod common;
use common::*;
use s3::primitives::DateTime;
use s3::types::{Delete, EncodingType, MetadataDirective, ObjectCannedAcl, ObjectIdentifier};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// The given key's sidecar, asserting the layout of DESIGN.md §3:
/// `YYYY/MM/DD/HH/{stem}_{owner}_{YYYYMMDDTHHMMSS}_{file_id}{ext}` (+ `.attr.json`).
fn check_layout(srv: &Server, bucket: &str, key: &str, stem: &str, ext: &str) -> DiskObject {
    let obj = srv.object_on_disk(bucket, key).unwrap_or_else(|| {
        panic!(
            "no attr.json for {bucket}/{key} under {}",
            srv.element_dir(bucket).display()
        )
    });
    let rel = obj
        .data
        .strip_prefix(srv.element_dir(bucket))
        .unwrap()
        .to_path_buf();
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 5, "data file not in YYYY/MM/DD/HH/: {rel:?}");
    let (yyyy, mm, dd, hh, name) = (&parts[0], &parts[1], &parts[2], &parts[3], &parts[4]);
    assert!(
        yyyy.len() == 4 && mm.len() == 2 && dd.len() == 2 && hh.len() == 2,
        "bad dirs {rel:?}"
    );
    assert!(
        obj.data.is_file(),
        "data file missing: {}",
        obj.data.display()
    );

    let created = obj.str_field("created_at").expect("created_at");
    // RFC 3339 UTC with a `T`
    assert!(
        created.len() >= 20 && created.as_bytes()[10] == b'T',
        "created_at not RFC 3339: {created}"
    );
    assert!(
        created.ends_with('Z') || created.ends_with("+00:00"),
        "created_at not UTC: {created}"
    );
    assert_eq!(
        &created[..13],
        format!("{yyyy}-{mm}-{dd}T{hh}"),
        "dirs {rel:?} do not match created_at {created}"
    );
    let ts: String = created[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();

    let file_id = obj.str_field("file_id").expect("file_id");
    assert_eq!(file_id.len(), 36, "file_id is not a UUID: {file_id}");
    assert!(
        file_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "file_id is not a UUID: {file_id}"
    );

    let prefix = format!("{stem}_");
    let suffix = format!("_{ts}_{file_id}{ext}");
    assert!(
        name.starts_with(&prefix)
            && name.ends_with(&suffix)
            && name.len() > prefix.len() + suffix.len(),
        "file name {name:?} does not match {stem}_<owner>{suffix}"
    );
    let owner = &name[prefix.len()..name.len() - suffix.len()];
    assert!(!owner.is_empty());
    if let Some(user) = obj.str_field("created_by_username")
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        assert_eq!(owner, user, "owner part of the file name");
    }
    assert_eq!(
        obj.str_field("storage_filename").as_deref(),
        Some(name.as_str()),
        "storage_filename"
    );
    let sp = obj.str_field("storage_path").expect("storage_path");
    assert!(
        sp.ends_with(name.as_str()),
        "storage_path {sp:?} does not end with the file name"
    );
    assert!(
        obj.attr
            .to_string_lossy()
            .ends_with(&format!("{name}.attr.json"))
    );
    obj
}

fn json_str<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

fn strip_quotes(s: &str) -> &str {
    s.trim_matches('"')
}

async fn head_etag(c: &s3::Client, b: &str, k: &str) -> String {
    c.head_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .expect("head")
        .e_tag()
        .unwrap()
        .to_string()
}

async fn last_modified(c: &s3::Client, b: &str, k: &str) -> DateTime {
    *c.head_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .expect("head")
        .last_modified()
        .expect("Last-Modified")
}

fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", uri_encode(key, false))
}

async fn put_many(c: &s3::Client, bucket: &str, keys: Vec<String>) {
    let mut set = tokio::task::JoinSet::new();
    let chunks: Vec<Vec<String>> = keys
        .chunks(keys.len().div_ceil(16).max(1))
        .map(|c| c.to_vec())
        .collect();
    for chunk in chunks {
        let c = c.clone();
        let bucket = bucket.to_string();
        set.spawn(async move {
            for k in chunk {
                put(&c, &bucket, &k, k.as_bytes().to_vec()).await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("put task");
    }
}

// ---------------------------------------------------------------------------------------------
// basic object operations
// ---------------------------------------------------------------------------------------------

storage_test!(put_get_head_delete, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "objs").await;
    let data = pattern(100_000, 1);
    let out = c
        .put_object()
        .bucket("objs")
        .key("docs/report.pdf")
        .content_type("application/pdf")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("put");
    assert_eq!(
        out.e_tag(),
        Some(quoted(&md5_hex(&data)).as_str()),
        "PUT ETag = quoted MD5"
    );

    let g = c
        .get_object()
        .bucket("objs")
        .key("docs/report.pdf")
        .send()
        .await
        .expect("get");
    assert_eq!(g.e_tag(), Some(quoted(&md5_hex(&data)).as_str()));
    assert_eq!(g.content_length(), Some(data.len() as i64));
    assert_eq!(g.content_type(), Some("application/pdf"));
    assert!(g.last_modified().is_some());
    let body = g.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == data.as_slice(), "GET body differs");

    let h = c
        .head_object()
        .bucket("objs")
        .key("docs/report.pdf")
        .send()
        .await
        .expect("head");
    assert_eq!(h.content_length(), Some(data.len() as i64));
    assert_eq!(h.e_tag(), Some(quoted(&md5_hex(&data)).as_str()));
    assert_eq!(h.content_type(), Some("application/pdf"));
    assert_eq!(h.accept_ranges(), Some("bytes"), "Accept-Ranges: bytes");

    // On disk: data file + sidecar in the layout.
    let obj = check_layout(&srv, "objs", "docs/report.pdf", "report", ".pdf");
    assert!(obj.data_bytes() == data);
    srv.assert_no_temp_files("objs");

    // Delete: 204, then 404 NoSuchKey, files gone.
    c.delete_object()
        .bucket("objs")
        .key("docs/report.pdf")
        .send()
        .await
        .expect("delete");
    sdk_err(
        c.get_object()
            .bucket("objs")
            .key("docs/report.pdf")
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
    sdk_err(
        c.head_object()
            .bucket("objs")
            .key("docs/report.pdf")
            .send()
            .await,
    )
    .assert(404, "");
    assert!(
        srv.object_on_disk("objs", "docs/report.pdf").is_none(),
        "sidecar left after delete"
    );
    assert!(!obj.data.exists(), "data file left after delete");
    // Deleting a missing key succeeds (204), like S3.
    c.delete_object()
        .bucket("objs")
        .key("never-existed")
        .send()
        .await
        .expect("delete missing key");
});

storage_test!(zero_byte_and_overwrite, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "zbk").await;
    let etag = put(&c, "zbk", "empty", Vec::new()).await;
    assert_eq!(etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    assert_eq!(get(&c, "zbk", "empty").await, Vec::<u8>::new());
    let h = c
        .head_object()
        .bucket("zbk")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_length(), Some(0));

    // "dir/" marker objects are ordinary keys.
    put(&c, "zbk", "dir/", Vec::new()).await;
    assert!(exists(&c, "zbk", "dir/").await);

    // Overwrite: the new content wins and the old files are gone.
    put(&c, "zbk", "over", b"version one".to_vec()).await;
    let first = srv
        .object_on_disk("zbk", "over")
        .expect("first version on disk");
    put(&c, "zbk", "over", b"version two, longer".to_vec()).await;
    assert_object(&srv, "zbk", "over", b"version two, longer").await;
    let second = srv
        .object_on_disk("zbk", "over")
        .expect("second version on disk");
    assert_ne!(
        first.data, second.data,
        "overwrite must write a new file (new file_id)"
    );
    assert!(
        !first.data.exists(),
        "old data file left after overwrite: {}",
        first.data.display()
    );
    assert!(!first.attr.exists(), "old attr.json left after overwrite");
    assert_eq!(list_keys(&c, "zbk").await, vec!["dir/", "empty", "over"]);
});

storage_test!(ranges, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "rng").await;
    let data = pattern(1000, 7);
    put(&c, "rng", "r", data.clone()).await;

    let cases: [(&str, usize, usize); 5] = [
        ("bytes=0-99", 0, 99),
        ("bytes=100-100", 100, 100),
        ("bytes=-100", 900, 999),
        ("bytes=900-", 900, 999),
        ("bytes=990-5000", 990, 999), // last byte past the end is clamped
    ];
    for (range, first, last) in cases {
        let g = c
            .get_object()
            .bucket("rng")
            .key("r")
            .range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert_eq!(
            g.content_range(),
            Some(format!("bytes {first}-{last}/1000").as_str()),
            "{range}"
        );
        assert_eq!(
            g.content_length(),
            Some((last - first + 1) as i64),
            "{range}"
        );
        let body = g.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == &data[first..=last], "{range}: wrong bytes");
    }
    // Status 206 (raw, the SDK hides it).
    let r = srv
        .raw(Method::GET, "/rng/r")
        .header("range", "bytes=0-9")
        .send()
        .await;
    r.assert_status(206);
    assert_eq!(r.body, &data[..10]);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 0-9/1000"));

    // Past the end → 416 InvalidRange.
    for range in ["bytes=1000-", "bytes=5000-6000"] {
        let f = sdk_err(
            c.get_object()
                .bucket("rng")
                .key("r")
                .range(range)
                .send()
                .await,
        );
        f.assert(416, "InvalidRange");
        let r = srv
            .raw(Method::GET, "/rng/r")
            .header("range", range)
            .send()
            .await;
        r.assert_error(416, "InvalidRange");
    }
    assert_object(&srv, "rng", "r", &data).await;
});

storage_test!(delete_objects_quiet_and_verbose, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "del").await;
    for k in ["a", "b", "c", "d", "keep"] {
        put(&c, "del", k, k.as_bytes().to_vec()).await;
    }
    let ids = |keys: &[&str], quiet: bool| -> Delete {
        let objs: Vec<ObjectIdentifier> = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
            .collect();
        Delete::builder()
            .set_objects(Some(objs))
            .quiet(quiet)
            .build()
            .unwrap()
    };
    // verbose: every key (including a missing one) is reported as deleted
    let out = c
        .delete_objects()
        .bucket("del")
        .delete(ids(&["a", "b", "missing"], false))
        .send()
        .await
        .expect("delete_objects");
    let deleted: BTreeSet<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, BTreeSet::from(["a", "b", "missing"]));
    assert!(out.errors().is_empty(), "errors: {:?}", out.errors());

    // quiet: only errors are reported
    let d = ids(&["c", "d"], true);
    let out = c
        .delete_objects()
        .bucket("del")
        .delete(d)
        .send()
        .await
        .expect("delete_objects quiet");
    assert!(
        out.deleted().is_empty(),
        "quiet mode reported {:?}",
        out.deleted()
    );
    assert!(out.errors().is_empty());

    assert_eq!(list_keys(&c, "del").await, vec!["keep"]);
    for k in ["a", "b", "c", "d"] {
        assert!(!exists(&c, "del", k).await, "{k} still exists");
        assert!(srv.object_on_disk("del", k).is_none(), "{k} still on disk");
    }
    assert_object(&srv, "del", "keep", b"keep").await;
});

// ---------------------------------------------------------------------------------------------
// keys
// ---------------------------------------------------------------------------------------------

const AWKWARD_KEYS: &[&str] = &[
    "plain.txt",
    "with space.txt",
    "plus+sign+more",
    "percent%20not-an-escape%",
    "100% sure & <xml> \"quoted\" 'single'",
    "utf8/日本語/ファイル.txt",
    "emoji 😀/ü é ñ",
    "double//slash",
    "/leading-slash",
    "trailing-slash/",
    "../../etc/passwd",
    "a/./b/../c",
    "question?mark#hash=eq;semi",
    "tab\there",
    "foo/bar",
    "foo/bar/baz",
    "back\\slash:colon*star|pipe",
];

storage_test!(awkward_keys, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "keys").await;
    for k in AWKWARD_KEYS {
        put(&c, "keys", k, format!("content of {k}").into_bytes()).await;
    }
    for k in AWKWARD_KEYS {
        assert_eq!(
            get(&c, "keys", k).await,
            format!("content of {k}").into_bytes(),
            "GET {k:?}"
        );
        let h = c
            .head_object()
            .bucket("keys")
            .key(*k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD {k:?}: {e:?}"));
        assert_eq!(
            h.content_length(),
            Some(format!("content of {k}").len() as i64)
        );
    }
    // listed exactly once each, sorted by UTF-8 bytes
    let mut want: Vec<String> = AWKWARD_KEYS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(list_keys(&c, "keys").await, want);

    // On disk: every file lives under the element's YYYY/MM/DD/HH/ and no name carries path
    // syntax or forbidden characters.
    let root = srv.element_dir("keys");
    for k in AWKWARD_KEYS {
        let o = srv
            .object_on_disk("keys", k)
            .unwrap_or_else(|| panic!("no sidecar for {k:?}"));
        let rel = o.data.strip_prefix(&root).unwrap();
        assert_eq!(rel.iter().count(), 5, "{k:?} stored at {rel:?}");
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(".."),
            "{k:?}: file name {name:?} contains .."
        );
        assert!(
            !name
                .chars()
                .any(|c| "<>:\"/\\|?*".contains(c) || c.is_control()),
            "{k:?}: bad file name {name:?}"
        );
        assert!(name.len() <= 200, "{k:?}: file name longer than 200 bytes");
        assert!(o.data_bytes() == format!("content of {k}").into_bytes());
    }
    assert!(!srv.data_dir().join("etc").exists());

    // foo/bar and foo/bar/baz are independent
    c.delete_object()
        .bucket("keys")
        .key("foo/bar")
        .send()
        .await
        .unwrap();
    assert!(!exists(&c, "keys", "foo/bar").await);
    assert_eq!(
        get(&c, "keys", "foo/bar/baz").await,
        b"content of foo/bar/baz"
    );
});

// ---------------------------------------------------------------------------------------------
// attributes
// ---------------------------------------------------------------------------------------------

storage_test!(metadata_round_trip_and_attr_json, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "meta").await;
    let data = pattern(4321, 3);
    let expires = DateTime::from_secs(4_102_444_800); // 2100-01-01
    c.put_object()
        .bucket("meta")
        .key("invoices/2024/INV-001.pdf")
        .body(ByteStream::from(data.clone()))
        .content_type("application/pdf")
        .content_disposition("attachment; filename=\"INV-001.pdf\"")
        .content_encoding("identity")
        .content_language("de-DE")
        .cache_control("max-age=3600")
        .expires(expires)
        .metadata("customer", "ACME Corp")
        .metadata("Invoice-Number", "INV-001")
        .metadata("empty", "")
        .send()
        .await
        .expect("put with metadata");

    let h = c
        .head_object()
        .bucket("meta")
        .key("invoices/2024/INV-001.pdf")
        .send()
        .await
        .unwrap();
    let m = h.metadata().cloned().unwrap_or_default();
    assert_eq!(m.get("customer").map(String::as_str), Some("ACME Corp"));
    assert_eq!(
        m.get("invoice-number").map(String::as_str),
        Some("INV-001"),
        "names are lower-cased: {m:?}"
    );
    assert_eq!(h.content_type(), Some("application/pdf"));
    assert_eq!(
        h.content_disposition(),
        Some("attachment; filename=\"INV-001.pdf\"")
    );
    assert_eq!(h.content_encoding(), Some("identity"));
    assert_eq!(h.content_language(), Some("de-DE"));
    assert_eq!(h.cache_control(), Some("max-age=3600"));
    assert!(
        h.expires_string().is_some_and(|e| e.contains("2100")),
        "Expires: {:?}",
        h.expires_string()
    );

    let g = c
        .get_object()
        .bucket("meta")
        .key("invoices/2024/INV-001.pdf")
        .send()
        .await
        .unwrap();
    let gm = g.metadata().cloned().unwrap_or_default();
    assert_eq!(gm.get("customer").map(String::as_str), Some("ACME Corp"));
    assert_eq!(
        gm.get("invoice-number").map(String::as_str),
        Some("INV-001")
    );
    assert_eq!(
        g.content_disposition(),
        Some("attachment; filename=\"INV-001.pdf\"")
    );
    assert_eq!(g.cache_control(), Some("max-age=3600"));

    // attr.json
    let obj = check_layout(&srv, "meta", "invoices/2024/INV-001.pdf", "INV-001", ".pdf");
    let j = &obj.json;
    let raw = std::fs::read(&obj.attr).unwrap();
    assert!(raw.len() <= 4096, "attr.json is {} bytes", raw.len());
    assert_eq!(json_str(j, &["schema_version"]), Some("2.0"));
    assert_eq!(json_str(j, &["bucket"]), Some("meta"));
    assert_eq!(json_str(j, &["key"]), Some("invoices/2024/INV-001.pdf"));
    assert_eq!(json_str(j, &["original_filename"]), Some("INV-001.pdf"));
    assert_eq!(
        j.get("file_size").and_then(|v| v.as_u64()),
        Some(data.len() as u64)
    );
    assert_eq!(json_str(j, &["content_type"]), Some("application/pdf"));
    assert_eq!(
        json_str(j, &["checksum"]),
        Some(sha256_hex(&data).as_str()),
        "checksum = SHA-256 hex"
    );
    assert_eq!(
        json_str(j, &["etag"]).map(strip_quotes),
        Some(md5_hex(&data).as_str())
    );
    assert!(json_str(j, &["updated_at"]).is_some(), "updated_at missing");
    assert!(j.get("created_by_id").is_some(), "created_by_id missing");
    assert!(json_str(j, &["created_by_username"]).is_some_and(|s| !s.is_empty()));
    let ca = j
        .get("custom_attributes")
        .and_then(|v| v.as_object())
        .expect("custom_attributes object");
    assert_eq!(
        ca.get("customer").and_then(|v| v.as_str()),
        Some("ACME Corp")
    );
    assert_eq!(
        ca.get("invoice-number").and_then(|v| v.as_str()),
        Some("INV-001")
    );
    let hh = j.get("http_headers").expect("http_headers");
    assert_eq!(
        json_str(hh, &["content-disposition"]),
        Some("attachment; filename=\"INV-001.pdf\"")
    );
    assert_eq!(json_str(hh, &["content-encoding"]), Some("identity"));
    assert_eq!(json_str(hh, &["content-language"]), Some("de-DE"));
    assert_eq!(json_str(hh, &["cache-control"]), Some("max-age=3600"));
    assert!(
        json_str(hh, &["expires"]).is_some_and(|e| e.contains("2100")),
        "expires in attr.json: {hh}"
    );
    assert!(obj.data_bytes() == data);
});

storage_test!(default_content_type_and_sanitised_names, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "names").await;
    // No Content-Type given → binary/octet-stream (S3's default) or application/octet-stream.
    let r = srv
        .raw(Method::PUT, "/names/noext")
        .body(b"x".to_vec())
        .send()
        .await;
    r.assert_status(200);
    let h = c
        .head_object()
        .bucket("names")
        .key("noext")
        .send()
        .await
        .unwrap();
    let ct = h.content_type().unwrap_or("");
    assert!(
        ct == "binary/octet-stream" || ct == "application/octet-stream",
        "default content type {ct:?}"
    );
    check_layout(&srv, "names", "noext", "noext", "");

    put(&c, "names", "dir/we<ir>d:na|me.txt", b"w".to_vec()).await;
    let o = srv
        .object_on_disk("names", "dir/we<ir>d:na|me.txt")
        .unwrap();
    let name = o.data.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("we_ir_d_na_me_"), "sanitised stem: {name}");
    assert!(name.ends_with(".txt"));

    // Trailing-slash key: empty last segment → stem "file".
    put(&c, "names", "folder/", Vec::new()).await;
    let o = srv.object_on_disk("names", "folder/").unwrap();
    let name = o.data.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("file_"),
        "empty stem must become `file`: {name}"
    );

    // Very long last segment: name ≤ 200 bytes.
    let long = format!("{}.bin", "L".repeat(600));
    put(&c, "names", &long, b"l".to_vec()).await;
    let o = srv.object_on_disk("names", &long).unwrap();
    let name = o.data.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.len() <= 200, "file name is {} bytes", name.len());
    assert!(name.ends_with(".bin"));
});

// ---------------------------------------------------------------------------------------------
// CopyObject
// ---------------------------------------------------------------------------------------------

storage_test!(copy_object_directives, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "src").await;
    create_bucket(&c, "dst").await;
    let data = pattern(20_000, 11);
    c.put_object()
        .bucket("src")
        .key("orig name.txt")
        .body(ByteStream::from(data.clone()))
        .content_type("text/plain")
        .metadata("color", "blue")
        .metadata("shape", "round")
        .send()
        .await
        .unwrap();
    let src_etag = head_etag(&c, "src", "orig name.txt").await;

    // COPY (default directive), across buckets
    let out = c
        .copy_object()
        .bucket("dst")
        .key("copy/one.txt")
        .copy_source(copy_source("src", "orig name.txt"))
        .send()
        .await
        .expect("copy COPY");
    let r = out.copy_object_result().expect("CopyObjectResult");
    assert_eq!(
        r.e_tag(),
        Some(src_etag.as_str()),
        "copy keeps the ETag of the content"
    );
    assert!(r.last_modified().is_some());
    let h = c
        .head_object()
        .bucket("dst")
        .key("copy/one.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));
    let m = h.metadata().cloned().unwrap_or_default();
    assert_eq!(m.get("color").map(String::as_str), Some("blue"));
    assert_eq!(m.get("shape").map(String::as_str), Some("round"));
    assert_object(&srv, "dst", "copy/one.txt", &data).await;
    let o = check_layout(&srv, "dst", "copy/one.txt", "one", ".txt");
    assert_eq!(
        json_str(&o.json, &["custom_attributes", "color"]),
        Some("blue")
    );
    assert_eq!(
        json_str(&o.json, &["checksum"]),
        Some(sha256_hex(&data).as_str())
    );

    // REPLACE
    c.copy_object()
        .bucket("dst")
        .key("copy/two.txt")
        .copy_source(copy_source("src", "orig name.txt"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-new")
        .metadata("color", "red")
        .send()
        .await
        .expect("copy REPLACE");
    let h = c
        .head_object()
        .bucket("dst")
        .key("copy/two.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/x-new"));
    let m = h.metadata().cloned().unwrap_or_default();
    assert_eq!(m.get("color").map(String::as_str), Some("red"));
    assert!(
        !m.contains_key("shape"),
        "REPLACE must drop old metadata: {m:?}"
    );
    let o = srv.object_on_disk("dst", "copy/two.txt").unwrap();
    assert_eq!(
        json_str(&o.json, &["custom_attributes", "color"]),
        Some("red")
    );
    assert!(
        o.json
            .get("custom_attributes")
            .unwrap()
            .get("shape")
            .is_none()
    );
    assert_object(&srv, "dst", "copy/two.txt", &data).await;

    // the source is unchanged
    let h = c
        .head_object()
        .bucket("src")
        .key("orig name.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata().unwrap().get("color").map(String::as_str),
        Some("blue")
    );
    assert_object(&srv, "src", "orig name.txt", &data).await;

    // missing source
    sdk_err(
        c.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source(copy_source("src", "nope"))
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
    sdk_err(
        c.copy_object()
            .bucket("dst")
            .key("x")
            .copy_source(copy_source("nobucket", "k"))
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
    assert!(!exists(&c, "dst", "x").await);
});

storage_test!(copy_onto_itself, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "self").await;
    let data = pattern(5000, 5);
    c.put_object()
        .bucket("self")
        .key("doc")
        .body(ByteStream::from(data.clone()))
        .metadata("mtime", "1000")
        .send()
        .await
        .unwrap();
    let etag = head_etag(&c, "self", "doc").await;

    // Without REPLACE: 400 InvalidRequest, nothing changes.
    let f = sdk_err(
        c.copy_object()
            .bucket("self")
            .key("doc")
            .copy_source(copy_source("self", "doc"))
            .send()
            .await,
    );
    f.assert(400, "InvalidRequest");
    let h = c
        .head_object()
        .bucket("self")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata().unwrap().get("mtime").map(String::as_str),
        Some("1000")
    );
    assert_object(&srv, "self", "doc", &data).await;

    // With REPLACE: metadata changes, data and ETag stay (what rclone touch does).
    c.copy_object()
        .bucket("self")
        .key("doc")
        .copy_source(copy_source("self", "doc"))
        .metadata_directive(MetadataDirective::Replace)
        .metadata("mtime", "2000")
        .content_type("text/x-changed")
        .send()
        .await
        .expect("self copy with REPLACE");
    let h = c
        .head_object()
        .bucket("self")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.metadata().unwrap().get("mtime").map(String::as_str),
        Some("2000")
    );
    assert_eq!(h.content_type(), Some("text/x-changed"));
    assert_eq!(h.e_tag(), Some(etag.as_str()));
    assert_object(&srv, "self", "doc", &data).await;
    let o = srv.object_on_disk("self", "doc").unwrap();
    assert_eq!(
        json_str(&o.json, &["custom_attributes", "mtime"]),
        Some("2000")
    );
    assert_eq!(json_str(&o.json, &["content_type"]), Some("text/x-changed"));
    assert_eq!(list_keys(&c, "self").await, vec!["doc"]);
});

storage_test!(copy_source_conditions, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "cond").await;
    put(&c, "cond", "src", b"source".to_vec()).await;
    let etag = head_etag(&c, "cond", "src").await;
    let lm = last_modified(&c, "cond", "src").await;
    let past = DateTime::from_secs(lm.secs() - 3600);
    let future = DateTime::from_secs(lm.secs() + 3600);
    let cp = |dst: &str| {
        c.copy_object()
            .bucket("cond")
            .key(dst)
            .copy_source(copy_source("cond", "src"))
    };

    cp("ok1")
        .copy_source_if_match(etag.clone())
        .send()
        .await
        .expect("if-match true");
    cp("ok2")
        .copy_source_if_none_match("\"0123\"")
        .send()
        .await
        .expect("if-none-match true");
    cp("ok3")
        .copy_source_if_modified_since(past)
        .send()
        .await
        .expect("if-modified-since true");
    cp("ok4")
        .copy_source_if_unmodified_since(future)
        .send()
        .await
        .expect("if-unmodified-since true");

    sdk_err(cp("no1").copy_source_if_match("\"0123\"").send().await)
        .assert(412, "PreconditionFailed");
    sdk_err(
        cp("no2")
            .copy_source_if_none_match(etag.clone())
            .send()
            .await,
    )
    .assert(412, "PreconditionFailed");
    sdk_err(cp("no3").copy_source_if_modified_since(lm).send().await)
        .assert(412, "PreconditionFailed");
    sdk_err(cp("no4").copy_source_if_unmodified_since(past).send().await)
        .assert(412, "PreconditionFailed");

    for k in ["ok1", "ok2", "ok3", "ok4"] {
        assert_eq!(get(&c, "cond", k).await, b"source");
    }
    for k in ["no1", "no2", "no3", "no4"] {
        assert!(!exists(&c, "cond", k).await, "{k} must not be created");
    }
    assert_object(&srv, "cond", "src", b"source").await;
});

// ---------------------------------------------------------------------------------------------
// conditional requests
// ---------------------------------------------------------------------------------------------

storage_test!(conditional_get_and_head, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "cgb").await;
    put(&c, "cgb", "k", b"conditional".to_vec()).await;
    let etag = head_etag(&c, "cgb", "k").await;
    let lm = last_modified(&c, "cgb", "k").await;
    let past = DateTime::from_secs(lm.secs() - 3600);
    let future = DateTime::from_secs(lm.secs() + 3600);

    // GET
    let g = |_: ()| c.get_object().bucket("cgb").key("k");
    g(())
        .if_match(etag.clone())
        .send()
        .await
        .expect("If-Match matching → 200");
    sdk_err(g(()).if_match("\"deadbeef\"").send().await).assert(412, "PreconditionFailed");
    sdk_err(g(()).if_none_match(etag.clone()).send().await).assert(304, "");
    g(())
        .if_none_match("\"deadbeef\"")
        .send()
        .await
        .expect("If-None-Match other → 200");
    sdk_err(g(()).if_modified_since(lm).send().await).assert(304, "");
    g(())
        .if_modified_since(past)
        .send()
        .await
        .expect("If-Modified-Since past → 200");
    sdk_err(g(()).if_unmodified_since(past).send().await).assert(412, "PreconditionFailed");
    g(())
        .if_unmodified_since(lm)
        .send()
        .await
        .expect("If-Unmodified-Since = LM → 200");
    g(())
        .if_unmodified_since(future)
        .send()
        .await
        .expect("If-Unmodified-Since future → 200");
    // RFC 7232 precedence, as S3: If-Match true wins over If-Unmodified-Since false ...
    g(())
        .if_match(etag.clone())
        .if_unmodified_since(past)
        .send()
        .await
        .expect("If-Match true + IUS false → 200");
    // ... and If-None-Match false wins over If-Modified-Since true.
    sdk_err(
        g(())
            .if_none_match(etag.clone())
            .if_modified_since(past)
            .send()
            .await,
    )
    .assert(304, "");

    // HEAD
    let h = |_: ()| c.head_object().bucket("cgb").key("k");
    h(())
        .if_match(etag.clone())
        .send()
        .await
        .expect("HEAD If-Match → 200");
    sdk_err(h(()).if_match("\"deadbeef\"").send().await).assert(412, "");
    sdk_err(h(()).if_none_match(etag.clone()).send().await).assert(304, "");
    sdk_err(h(()).if_modified_since(lm).send().await).assert(304, "");
    sdk_err(h(()).if_unmodified_since(past).send().await).assert(412, "");

    // 304 carries the ETag and no body (raw).
    let r = srv
        .raw(Method::GET, "/cgb/k")
        .header("if-none-match", &etag)
        .send()
        .await;
    r.assert_status(304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag").as_deref(), Some(etag.as_str()));
    assert_object(&srv, "cgb", "k", b"conditional").await;
});

storage_test!(conditional_put, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "cpb").await;
    // If-None-Match: * on a new key → created
    c.put_object()
        .bucket("cpb")
        .key("k")
        .if_none_match("*")
        .body(ByteStream::from_static(b"first"))
        .send()
        .await
        .expect("If-None-Match * on a new key");
    // ... on an existing key → 412 and the data is unchanged
    let f = sdk_err(
        c.put_object()
            .bucket("cpb")
            .key("k")
            .if_none_match("*")
            .body(ByteStream::from_static(b"second"))
            .send()
            .await,
    );
    f.assert(412, "PreconditionFailed");
    assert_object(&srv, "cpb", "k", b"first").await;

    // If-Match
    let etag = head_etag(&c, "cpb", "k").await;
    sdk_err(
        c.put_object()
            .bucket("cpb")
            .key("k")
            .if_match("\"00000000000000000000000000000000\"")
            .body(ByteStream::from_static(b"nope"))
            .send()
            .await,
    )
    .assert(412, "PreconditionFailed");
    assert_object(&srv, "cpb", "k", b"first").await;
    c.put_object()
        .bucket("cpb")
        .key("k")
        .if_match(etag)
        .body(ByteStream::from_static(b"third"))
        .send()
        .await
        .expect("If-Match matching");
    assert_object(&srv, "cpb", "k", b"third").await;
    // If-Match on a missing key → 404 NoSuchKey
    let f = sdk_err(
        c.put_object()
            .bucket("cpb")
            .key("absent")
            .if_match("\"abc\"")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    );
    f.assert(404, "NoSuchKey");
    assert!(!exists(&c, "cpb", "absent").await);
    srv.assert_no_temp_files("cpb");
});

// ---------------------------------------------------------------------------------------------
// stubs, acl, durability
// ---------------------------------------------------------------------------------------------

storage_test!(object_stubs_and_acl, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "stub").await;
    c.put_object()
        .bucket("stub")
        .key("k")
        .acl(ObjectCannedAcl::Private)
        .body(ByteStream::from_static(b"acl"))
        .send()
        .await
        .expect("PutObject with x-amz-acl: private");
    assert_object(&srv, "stub", "k", b"acl").await;

    let t = c
        .get_object_tagging()
        .bucket("stub")
        .key("k")
        .send()
        .await
        .expect("get_object_tagging");
    assert!(t.tag_set().is_empty(), "tag set: {:?}", t.tag_set());
    sdk_err(
        c.get_object_tagging()
            .bucket("stub")
            .key("missing")
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");

    let acl = c
        .get_object_acl()
        .bucket("stub")
        .key("k")
        .send()
        .await
        .expect("get_object_acl");
    assert!(
        acl.owner().is_some_and(|o| o.id().is_some()),
        "owner: {:?}",
        acl.owner()
    );
    assert!(
        acl.grants()
            .iter()
            .any(|g| g.permission().map(|p| p.as_str()) == Some("FULL_CONTROL"))
    );
    sdk_err(
        c.get_object_acl()
            .bucket("stub")
            .key("missing")
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
});

storage_test!(acknowledged_writes_survive_kill9, |srv| async move {
    let mut srv = srv;
    let big = pattern(3 * 1024 * 1024 + 17, 99);
    {
        let c = srv.client();
        create_bucket(&c, "dur").await;
        c.put_object()
            .bucket("dur")
            .key("big.bin")
            .metadata("k", "v")
            .content_type("application/x-big")
            .body(ByteStream::from(big.clone()))
            .send()
            .await
            .expect("put big");
        put(&c, "dur", "small", b"small".to_vec()).await;
        put(&c, "dur", "over", b"old".to_vec()).await;
        put(&c, "dur", "over", b"new".to_vec()).await;
        put(&c, "dur", "deleted", b"x".to_vec()).await;
        c.delete_object()
            .bucket("dur")
            .key("deleted")
            .send()
            .await
            .unwrap();
    }
    srv.kill9();
    srv.restart().await;
    let c = srv.client();
    assert_object(&srv, "dur", "big.bin", &big).await;
    let h = c
        .head_object()
        .bucket("dur")
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(h.e_tag(), Some(quoted(&md5_hex(&big)).as_str()));
    assert_eq!(h.content_type(), Some("application/x-big"));
    assert_eq!(
        h.metadata().unwrap().get("k").map(String::as_str),
        Some("v")
    );
    assert_object(&srv, "dur", "small", b"small").await;
    assert_object(&srv, "dur", "over", b"new").await;
    assert!(!exists(&c, "dur", "deleted").await);
    assert_eq!(list_keys(&c, "dur").await, vec!["big.bin", "over", "small"]);
    srv.assert_no_temp_files("dur");
});

// ---------------------------------------------------------------------------------------------
// listing
// ---------------------------------------------------------------------------------------------

const TREE: &[&str] = &["a", "b/1", "b/2", "b/c/3", "c", "d/", "d/e", "e.txt"];

storage_test!(list_v2_prefix_delimiter, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "tree").await;
    for k in TREE {
        put(&c, "tree", k, format!("data-{k}").into_bytes()).await;
    }

    // no delimiter: everything, with ETag, size, LastModified, StorageClass
    let out = c.list_objects_v2().bucket("tree").send().await.unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, TREE);
    assert_eq!(out.key_count(), Some(TREE.len() as i32));
    assert_eq!(out.is_truncated(), Some(false));
    for o in out.contents() {
        let k = o.key().unwrap();
        let body = format!("data-{k}");
        assert_eq!(
            o.e_tag(),
            Some(quoted(&md5_hex(body.as_bytes())).as_str()),
            "ETag of {k}"
        );
        assert_eq!(o.size(), Some(body.len() as i64), "Size of {k}");
        assert!(o.last_modified().is_some());
        assert!(o.storage_class().is_some(), "StorageClass of {k}");
        assert!(
            o.owner().is_none(),
            "V2 without fetch-owner must not return Owner"
        );
    }

    // delimiter /
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["a", "c", "e.txt"]);
    assert_eq!(prefixes, ["b/", "d/"]);
    assert_eq!(
        out.key_count(),
        Some(5),
        "KeyCount counts keys and prefixes"
    );
    assert_eq!(out.delimiter(), Some("/"));

    // prefix + delimiter
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .prefix("b/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["b/1", "b/2"]);
    assert_eq!(prefixes, ["b/c/"]);
    assert_eq!(out.prefix(), Some("b/"));

    // "d/" itself is listed under prefix d/
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .prefix("d/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["d/", "d/e"]);

    // prefix only
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .prefix("b")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b/1", "b/2", "b/c/3"]);

    // a prefix matching nothing
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .prefix("zzz")
        .send()
        .await
        .unwrap();
    assert!(out.contents().is_empty());
    assert_eq!(out.key_count(), Some(0));

    // other delimiters
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .delimiter(".")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["e."]);

    // empty delimiter = no delimiter (raw, so that `delimiter=` is really sent)
    for list_type in ["2", "1"] {
        let mut req = srv.raw(Method::GET, "/tree").query("delimiter", "");
        if list_type == "2" {
            req = req.query("list-type", "2");
        }
        let r = req.send().await;
        r.assert_status(200);
        let keys = xml_all(&r.text(), "Key");
        assert_eq!(
            keys,
            TREE,
            "list-type {list_type} with delimiter= : {}",
            r.text()
        );
        assert!(
            !r.text().contains("<CommonPrefixes>"),
            "empty delimiter produced prefixes"
        );
    }

    // start-after
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .start_after("b/2")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["b/c/3", "c", "d/", "d/e", "e.txt"]);
    assert_eq!(out.start_after(), Some("b/2"));

    // fetch-owner
    let out = c
        .list_objects_v2()
        .bucket("tree")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    for o in out.contents() {
        assert!(
            o.owner().is_some_and(|ow| ow.id().is_some()),
            "fetch-owner: no Owner for {:?}",
            o.key()
        );
    }
});

storage_test!(list_pagination_small_pages, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "pages").await;
    let mut keys = Vec::new();
    for d in 0..5 {
        for f in 0..6 {
            keys.push(format!("dir{d}/f{f}"));
        }
        keys.push(format!("top{d}"));
    }
    put_many(&c, "pages", keys.clone()).await;
    keys.sort();

    // V2, delimiter, max-keys=3: keys + prefixes per page ≤ 3, union = expected, no duplicates
    let mut seen_keys = Vec::new();
    let mut seen_prefixes = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = c
            .list_objects_v2()
            .bucket("pages")
            .delimiter("/")
            .max_keys(3)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(pages < 50, "pagination does not terminate");
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(n <= 3, "page has {n} entries");
        assert_eq!(out.max_keys(), Some(3));
        seen_keys.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
        seen_prefixes.extend(
            out.common_prefixes()
                .iter()
                .map(|p| p.prefix().unwrap().to_string()),
        );
        if out.is_truncated() == Some(true) {
            assert!(n > 0, "empty truncated page");
            token = Some(
                out.next_continuation_token()
                    .expect("NextContinuationToken")
                    .to_string(),
            );
            assert_eq!(out.key_count(), Some(n as i32));
        } else {
            assert!(out.next_continuation_token().is_none());
            break;
        }
    }
    assert_eq!(
        seen_keys,
        (0..5).map(|d| format!("top{d}")).collect::<Vec<_>>()
    );
    assert_eq!(
        seen_prefixes,
        (0..5).map(|d| format!("dir{d}/")).collect::<Vec<_>>()
    );
    assert_eq!(pages, 4, "10 entries in pages of 3");

    // V1 with delimiter: NextMarker is returned when truncated
    let mut marker: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let out = c
            .list_objects()
            .bucket("pages")
            .delimiter("/")
            .max_keys(4)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        for o in out.contents() {
            all.push(o.key().unwrap().to_string());
        }
        for p in out.common_prefixes() {
            all.push(p.prefix().unwrap().to_string());
        }
        if out.is_truncated() == Some(true) {
            marker = Some(
                out.next_marker()
                    .expect("V1 NextMarker with a delimiter")
                    .to_string(),
            );
        } else {
            break;
        }
    }
    all.sort();
    let mut want: Vec<String> = (0..5)
        .map(|d| format!("top{d}"))
        .chain((0..5).map(|d| format!("dir{d}/")))
        .collect();
    want.sort();
    assert_eq!(all, want);

    // V2 without delimiter in pages of 7, with prefix
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = c
            .list_objects_v2()
            .bucket("pages")
            .prefix("dir")
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        got.extend(out.contents().iter().map(|o| o.key().unwrap().to_string()));
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    let want: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with("dir"))
        .cloned()
        .collect();
    assert_eq!(got, want);
});

storage_test!(list_more_than_1000_keys, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "many").await;
    let keys: Vec<String> = (0..1100).map(|i| format!("k/{i:05}")).collect();
    put_many(&c, "many", keys.clone()).await;

    // V2: default max-keys 1000
    let p1 = c.list_objects_v2().bucket("many").send().await.unwrap();
    assert_eq!(p1.contents().len(), 1000);
    assert_eq!(p1.is_truncated(), Some(true));
    assert_eq!(p1.max_keys(), Some(1000));
    let tok = p1.next_continuation_token().expect("token").to_string();
    let p2 = c
        .list_objects_v2()
        .bucket("many")
        .continuation_token(tok.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(p2.contents().len(), 100);
    assert_eq!(p2.is_truncated(), Some(false));
    assert_eq!(p2.continuation_token(), Some(tok.as_str()));
    let all: Vec<String> = p1
        .contents()
        .iter()
        .chain(p2.contents())
        .map(|o| o.key().unwrap().to_string())
        .collect();
    assert_eq!(all, keys);

    // max-keys above 1000 is capped at 1000
    let p = c
        .list_objects_v2()
        .bucket("many")
        .max_keys(5000)
        .send()
        .await
        .unwrap();
    assert_eq!(p.contents().len(), 1000);
    assert_eq!(p.is_truncated(), Some(true));

    // V1: marker = last key of the previous page
    let v1 = c.list_objects().bucket("many").send().await.unwrap();
    assert_eq!(v1.contents().len(), 1000);
    assert_eq!(v1.is_truncated(), Some(true));
    let last = v1.contents().last().unwrap().key().unwrap().to_string();
    assert_eq!(last, "k/00999");
    let v1b = c
        .list_objects()
        .bucket("many")
        .marker(last.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(v1b.contents().len(), 100);
    assert_eq!(v1b.is_truncated(), Some(false));
    assert_eq!(v1b.marker(), Some(last.as_str()));
    assert_eq!(v1b.contents()[0].key(), Some("k/01000"));

    // delimiter collapses all 1100 into one prefix
    let p = c
        .list_objects_v2()
        .bucket("many")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert!(p.contents().is_empty());
    let prefixes: Vec<&str> = p
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["k/"]);
    assert_eq!(p.is_truncated(), Some(false));

    // full walk with the helper
    assert_eq!(list_keys(&c, "many").await, keys);
});

/// botocore decodes listings with `unquote_plus`: a literal `+` must come back as `%2B`.
fn unquote_plus(s: &str) -> String {
    url_decode(&s.replace('+', " "))
}

storage_test!(list_encoding_type_url, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "enc").await;
    let keys = [
        "dir a/x+y 100%.txt",
        "dir a/plain",
        "dir+b/é ñ",
        "dir+b/&<>\"'",
        "tab\tand",
        "z/😀",
    ];
    for k in keys {
        put(&c, "enc", k, b"x".to_vec()).await;
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();

    // V2 without delimiter
    let out = c
        .list_objects_v2()
        .bucket("enc")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.encoding_type().map(|e| e.as_str()), Some("url"));
    let raw: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    for r in &raw {
        assert!(
            !r.contains(' ') && !r.contains('\t') && !r.contains('&') && !r.contains('<'),
            "not encoded: {r:?}"
        );
        assert!(r.is_ascii(), "not encoded: {r:?}");
    }
    let decoded: Vec<String> = raw.iter().map(|k| unquote_plus(k)).collect();
    assert_eq!(decoded, sorted);

    // V2 with prefix + delimiter: Prefix, Delimiter, CommonPrefixes, StartAfter are encoded too
    let out = c
        .list_objects_v2()
        .bucket("enc")
        .encoding_type(EncodingType::Url)
        .delimiter("/")
        .start_after("dir a")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<String> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .map(unquote_plus)
        .collect();
    assert_eq!(prefixes, ["dir a/", "dir+b/", "z/"]);
    let keys: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(unquote_plus)
        .collect();
    assert_eq!(keys, ["tab\tand"]);
    assert_eq!(out.delimiter(), Some("/"));
    for p in out.common_prefixes() {
        assert!(
            !p.prefix().unwrap().contains(' ') && !p.prefix().unwrap().contains('+'),
            "prefix not encoded: {:?}",
            p.prefix()
        );
    }
    assert_eq!(
        out.start_after().map(unquote_plus).as_deref(),
        Some("dir a")
    );

    let out = c
        .list_objects_v2()
        .bucket("enc")
        .encoding_type(EncodingType::Url)
        .prefix("dir+b/")
        .send()
        .await
        .unwrap();
    assert_eq!(out.prefix().map(unquote_plus).as_deref(), Some("dir+b/"));
    let got: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(unquote_plus)
        .collect();
    assert_eq!(got, ["dir+b/&<>\"'", "dir+b/é ñ"]);

    // V1 with marker and delimiter
    let out = c
        .list_objects()
        .bucket("enc")
        .encoding_type(EncodingType::Url)
        .marker("dir a/plain")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    let got: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(unquote_plus)
        .collect();
    assert_eq!(got, ["dir a/x+y 100%.txt"]);
    assert_eq!(
        out.marker().map(unquote_plus).as_deref(),
        Some("dir a/plain")
    );

    // Without encoding-type the keys come back verbatim (XML-escaped only).
    let out = c.list_objects_v2().bucket("enc").send().await.unwrap();
    let got: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, sorted);
});

storage_test!(list_object_versions_unversioned, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "ver").await;
    for k in ["x/1", "x/2", "y"] {
        put(&c, "ver", k, k.as_bytes().to_vec()).await;
    }
    put(&c, "ver", "y", b"y again".to_vec()).await;
    let out = c
        .list_object_versions()
        .bucket("ver")
        .send()
        .await
        .expect("list_object_versions");
    let v: Vec<(String, String, bool)> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap().to_string(),
                v.version_id().unwrap_or("").to_string(),
                v.is_latest().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        v,
        vec![
            ("x/1".to_string(), "null".to_string(), true),
            ("x/2".to_string(), "null".to_string(), true),
            ("y".to_string(), "null".to_string(), true),
        ]
    );
    for ver in out.versions() {
        let k = ver.key().unwrap();
        let body: &[u8] = if k == "y" { b"y again" } else { k.as_bytes() };
        assert_eq!(ver.e_tag(), Some(quoted(&md5_hex(body)).as_str()));
        assert_eq!(ver.size(), Some(body.len() as i64));
    }
    assert!(out.delete_markers().is_empty());
    assert_eq!(out.is_truncated(), Some(false));

    let out = c
        .list_object_versions()
        .bucket("ver")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.versions().iter().filter_map(|v| v.key()).collect();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(keys, ["y"]);
    assert_eq!(prefixes, ["x/"]);

    let out = c
        .list_object_versions()
        .bucket("ver")
        .prefix("x/")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.versions().len(), 1);
    assert_eq!(out.is_truncated(), Some(true));
    assert_eq!(out.next_key_marker(), Some("x/1"));
    let out = c
        .list_object_versions()
        .bucket("ver")
        .prefix("x/")
        .key_marker("x/1")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.versions().iter().filter_map(|v| v.key()).collect();
    assert_eq!(keys, ["x/2"]);

    // GetObject with versionId=null works like a plain GET
    let g = c
        .get_object()
        .bucket("ver")
        .key("y")
        .version_id("null")
        .send()
        .await
        .expect("versionId=null");
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        b"y again"
    );
});

storage_test!(listing_comes_from_the_index, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "idx").await;
    put(&c, "idx", "real", b"real".to_vec()).await;
    // A stray file (and sidecar-looking file) dropped into the element dir is not an object.
    let dir = srv.element_dir("idx").join("2001/01/01/00");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("stray_x_20010101T000000_00000000-0000-0000-0000-000000000000.txt"),
        b"stray",
    )
    .unwrap();
    std::fs::write(srv.element_dir("idx").join("loose-file"), b"loose").unwrap();
    assert_eq!(list_keys(&c, "idx").await, vec!["real"]);
    let v1 = c.list_objects().bucket("idx").send().await.unwrap();
    let keys: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["real"]);
    assert!(!exists(&c, "idx", "loose-file").await);
});

storage_test!(
    metadata_on_many_objects_listing_consistent,
    |srv| async move {
        // Listing, HEAD and disk agree after a mix of puts, overwrites, copies and deletes.
        let c = srv.client();
        create_bucket(&c, "mix").await;
        let mut expect: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for i in 0..20 {
            let k = format!("m/{i:02}");
            let d = pattern(100 + i * 37, i as u64);
            put(&c, "mix", &k, d.clone()).await;
            expect.insert(k, d);
        }
        for i in (0..20).step_by(3) {
            let k = format!("m/{i:02}");
            c.delete_object()
                .bucket("mix")
                .key(&k)
                .send()
                .await
                .unwrap();
            expect.remove(&k);
        }
        for i in (1..20).step_by(4) {
            let k = format!("m/{i:02}");
            let d = pattern(999, 1000 + i as u64);
            put(&c, "mix", &k, d.clone()).await;
            expect.insert(k, d);
        }
        c.copy_object()
            .bucket("mix")
            .key("m/copy")
            .copy_source("mix/m/01")
            .send()
            .await
            .unwrap();
        expect.insert("m/copy".into(), expect["m/01"].clone());

        let out = c.list_objects_v2().bucket("mix").send().await.unwrap();
        let listed: BTreeMap<String, (String, i64)> = out
            .contents()
            .iter()
            .map(|o| {
                (
                    o.key().unwrap().to_string(),
                    (o.e_tag().unwrap().to_string(), o.size().unwrap()),
                )
            })
            .collect();
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            expect.keys().collect::<Vec<_>>()
        );
        for (k, d) in &expect {
            assert_eq!(listed[k], (quoted(&md5_hex(d)), d.len() as i64), "{k}");
            assert_object(&srv, "mix", k, d).await;
        }
        assert_eq!(
            srv.objects_on_disk("mix").len(),
            expect.len(),
            "sidecars on disk vs objects"
        );
    }
);

storage_test!(concurrent_overwrites_are_atomic, |srv| async move {
    // Writers overwrite one key while readers read it: every read sees one complete version
    // (body matching its ETag), and in the end exactly one version is stored, once.
    let c = srv.client();
    create_bucket(&c, "race").await;
    let versions: Vec<Vec<u8>> = (0..6)
        .map(|i| pattern(300_000 + i * 1000, 500 + i as u64))
        .collect();
    put(&c, "race", "k", versions[0].clone()).await;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..3 {
        let c = c.clone();
        let versions = versions.clone();
        set.spawn(async move {
            for round in 0..4 {
                let v = &versions[(w * 2 + round) % versions.len()];
                put(&c, "race", "k", v.clone()).await;
            }
        });
    }
    for _ in 0..3 {
        let c = c.clone();
        let versions = versions.clone();
        set.spawn(async move {
            for _ in 0..8 {
                let g = c
                    .get_object()
                    .bucket("race")
                    .key("k")
                    .send()
                    .await
                    .expect("GET during overwrites");
                let etag = g.e_tag().unwrap().to_string();
                let body = g.body.collect().await.expect("body").into_bytes();
                assert!(
                    versions.iter().any(|v| v.as_slice() == body.as_ref()),
                    "a reader saw a partial or mixed object"
                );
                assert_eq!(
                    etag,
                    quoted(&md5_hex(&body)),
                    "ETag does not match the body read"
                );
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    let body = get(&c, "race", "k").await;
    assert!(versions.contains(&body));
    assert_object(&srv, "race", "k", &body).await; // exactly one sidecar for the key
    assert_eq!(
        srv.objects_on_disk("race").len(),
        1,
        "stale versions left on disk"
    );
    assert_eq!(list_keys(&c, "race").await, vec!["k"]);
    srv.assert_no_temp_files("race");
});

// Conditional DeleteObject and DeleteObjects entries (issue 8, item 5): every condition
// must hold at the moment of the delete, or nothing is deleted.
storage_test!(conditional_deletes, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "cdel").await;
    let etag = put(&c, "cdel", "k", b"v1".to_vec()).await;
    let modified = c
        .head_object()
        .bucket("cdel")
        .key("k")
        .send()
        .await
        .unwrap()
        .last_modified()
        .cloned()
        .unwrap();
    let earlier = DateTime::from_secs(modified.secs() - 3600);
    sdk_err(
        c.delete_object()
            .bucket("cdel")
            .key("k")
            .if_match("\"00000000000000000000000000000000\"")
            .send()
            .await,
    )
    .assert(412, "PreconditionFailed");
    sdk_err(
        c.delete_object()
            .bucket("cdel")
            .key("k")
            .if_match_size(3)
            .send()
            .await,
    )
    .assert(412, "PreconditionFailed");
    sdk_err(
        c.delete_object()
            .bucket("cdel")
            .key("k")
            .if_match(&etag)
            .if_match_last_modified_time(earlier)
            .send()
            .await,
    )
    .assert(412, "PreconditionFailed");
    assert_object(&srv, "cdel", "k", b"v1").await;
    // A condition on a key that does not exist: NoSuchKey, nothing else happens.
    sdk_err(
        c.delete_object()
            .bucket("cdel")
            .key("absent")
            .if_match("*")
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
    // All of them holding: deleted.
    c.delete_object()
        .bucket("cdel")
        .key("k")
        .if_match(&etag)
        .if_match_size(2)
        .if_match_last_modified_time(modified)
        .send()
        .await
        .expect("conditional delete that holds");
    assert!(!exists(&c, "cdel", "k").await);
    put(&c, "cdel", "star", b"x".to_vec()).await;
    c.delete_object()
        .bucket("cdel")
        .key("star")
        .if_match("*")
        .send()
        .await
        .expect("If-Match: * on an existing key");
    assert!(!exists(&c, "cdel", "star").await);

    // DeleteObjects: each entry's ETag / Size / LastModifiedTime decides for that key.
    let ea = put(&c, "cdel", "a", b"aa".to_vec()).await;
    put(&c, "cdel", "b", b"bbb".to_vec()).await;
    put(&c, "cdel", "c", b"c".to_vec()).await;
    let entry = |k: &str| ObjectIdentifier::builder().key(k);
    let out = c
        .delete_objects()
        .bucket("cdel")
        .delete(
            Delete::builder()
                .objects(entry("a").e_tag(&ea).size(2).build().unwrap())
                .objects(entry("b").size(99).build().unwrap())
                .objects(
                    entry("c")
                        .e_tag("\"ffffffffffffffffffffffffffffffff\"")
                        .build()
                        .unwrap(),
                )
                .objects(entry("gone").e_tag(&ea).build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("delete_objects");
    let deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["a"]);
    let mut failed: Vec<(&str, &str)> = out
        .errors()
        .iter()
        .map(|e| (e.key().unwrap(), e.code().unwrap()))
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            ("b", "PreconditionFailed"),
            ("c", "PreconditionFailed"),
            ("gone", "NoSuchKey")
        ]
    );
    assert!(!exists(&c, "cdel", "a").await);
    assert_object(&srv, "cdel", "b", b"bbb").await;
    assert_object(&srv, "cdel", "c", b"c").await;
});

/// A signed UNSIGNED-PAYLOAD PUT whose body streams with `Transfer-Encoding: chunked` and no
/// Content-Length.
async fn put_chunked(
    srv: &Server,
    path: &str,
    query: &[(&str, &str)],
    data: &[u8],
) -> reqwest::Response {
    let mut raw = srv.raw(Method::PUT, path).unsigned_payload();
    for (k, v) in query {
        raw = raw.query(k, v);
    }
    let (url, headers) = raw.signed();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let mut req = srv
        .http()
        .put(url)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    req.send().await.expect("chunked PUT")
}

// PutObject and UploadPart stream a chunked body of unknown length (issue 8, item 5).
storage_test!(put_chunked_without_content_length, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "chunky").await;
    let data = pattern(3 * 1024 * 1024 + 17, 81);
    let r = put_chunked(&srv, "/chunky/streamed", &[], &data).await;
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    assert_eq!(etag, Some(quoted(&md5_hex(&data))));
    assert_object(&srv, "chunky", "streamed", &data).await;
    srv.assert_no_temp_files("chunky");

    // The same for a part of a multipart upload.
    let id = c
        .create_multipart_upload()
        .bucket("chunky")
        .key("mp")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let part = pattern(1000, 82);
    let r = put_chunked(
        &srv,
        "/chunky/mp",
        &[("partNumber", "1"), ("uploadId", &id)],
        &part,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let parts = c
        .list_parts()
        .bucket("chunky")
        .key("mp")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts().len(), 1);
    assert_eq!(parts.parts()[0].size(), Some(1000));
    assert_eq!(
        parts.parts()[0].e_tag(),
        Some(quoted(&md5_hex(&part)).as_str())
    );
});
