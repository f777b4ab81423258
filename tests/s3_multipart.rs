//! Multipart uploads (issue 2, item 4).

mod common;
use common::*;
use s3::types::{CompletedMultipartUpload, CompletedPart};

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;

async fn create(c: &s3::Client, b: &str, k: &str) -> String {
    c.create_multipart_upload()
        .bucket(b)
        .key(k)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create_multipart_upload {b}/{k}: {e:?}"))
        .upload_id()
        .expect("UploadId")
        .to_string()
}

async fn upload_part(c: &s3::Client, b: &str, k: &str, id: &str, n: i32, data: &[u8]) -> String {
    c.upload_part()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload_part {n}: {e:?}"))
        .e_tag()
        .expect("part ETag")
        .to_string()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

async fn complete(
    c: &s3::Client,
    b: &str,
    k: &str,
    id: &str,
    parts: &[(i32, &str)],
) -> Result<
    s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    s3::error::SdkError<
        s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
> {
    c.complete_multipart_upload()
        .bucket(b)
        .key(k)
        .upload_id(id)
        .multipart_upload(completed(parts))
        .send()
        .await
}

storage_test!(multipart_basic, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpb").await;
    let before = srv.files_snapshot();
    let p1 = pattern(PART, 1);
    let p2 = pattern(PART, 2);
    let p3 = pattern(1234, 3);
    let id = c
        .create_multipart_upload()
        .bucket("mpb")
        .key("big/file.bin")
        .content_type("application/x-parts")
        .metadata("origin", "multipart")
        .send()
        .await
        .expect("create")
        .upload_id()
        .unwrap()
        .to_string();
    assert!(!id.is_empty());
    let e1 = upload_part(&c, "mpb", "big/file.bin", &id, 1, &p1).await;
    let e2 = upload_part(&c, "mpb", "big/file.bin", &id, 2, &p2).await;
    let e3 = upload_part(&c, "mpb", "big/file.bin", &id, 3, &p3).await;
    assert_eq!(e1, quoted(&md5_hex(&p1)), "part ETag = MD5 of the part");
    assert_eq!(e3, quoted(&md5_hex(&p3)));
    // Not visible before completion.
    assert!(!exists(&c, "mpb", "big/file.bin").await);
    assert!(list_keys(&c, "mpb").await.is_empty());

    let out = complete(
        &c,
        "mpb",
        "big/file.bin",
        &id,
        &[(1, &e1), (2, &e2), (3, &e3)],
    )
    .await
    .expect("complete");
    let want_etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(
        out.e_tag(),
        Some(want_etag.as_str()),
        "ETag = md5(part md5s)-N"
    );
    assert_eq!(out.key(), Some("big/file.bin"));
    assert_eq!(out.bucket(), Some("mpb"));

    let whole: Vec<u8> = [p1.as_slice(), &p2, &p3].concat();
    let h = c
        .head_object()
        .bucket("mpb")
        .key("big/file.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(h.e_tag(), Some(want_etag.as_str()));
    assert_eq!(h.content_length(), Some(whole.len() as i64));
    assert_eq!(h.content_type(), Some("application/x-parts"));
    assert_eq!(
        h.metadata().unwrap().get("origin").map(String::as_str),
        Some("multipart")
    );
    assert_object(&srv, "mpb", "big/file.bin", &whole).await;

    let o = srv.object_on_disk("mpb", "big/file.bin").unwrap();
    assert_eq!(
        o.str_field("checksum").as_deref(),
        Some(sha256_hex(&whole).as_str()),
        "whole-object SHA-256"
    );
    assert_eq!(
        o.str_field("etag").as_deref().map(|s| s.trim_matches('"')),
        Some(want_etag.trim_matches('"'))
    );
    assert_eq!(
        o.json.get("file_size").and_then(|v| v.as_u64()),
        Some(whole.len() as u64)
    );
    assert_eq!(
        o.json["custom_attributes"]["origin"].as_str(),
        Some("multipart")
    );

    // listed with the multipart ETag and the full size
    let l = c.list_objects_v2().bucket("mpb").send().await.unwrap();
    assert_eq!(l.contents()[0].e_tag(), Some(want_etag.as_str()));
    assert_eq!(l.contents()[0].size(), Some(whole.len() as i64));

    // The upload is gone, and so are its parts.
    let u = c
        .list_multipart_uploads()
        .bucket("mpb")
        .send()
        .await
        .unwrap();
    assert!(u.uploads().is_empty(), "upload still listed after complete");
    sdk_err(
        c.list_parts()
            .bucket("mpb")
            .key("big/file.bin")
            .upload_id(&id)
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    let after = srv.files_snapshot();
    let added: Vec<_> = after.difference(&before).collect();
    assert_eq!(
        added.len(),
        2,
        "only the data file and its sidecar may remain: {added:?}"
    );
    srv.assert_no_temp_files("mpb");
});

storage_test!(
    multipart_part_overwrite_gaps_and_single_part,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "mp2").await;
        // re-uploading a part number replaces it; part numbers may have gaps
        let id = create(&c, "mp2", "gappy").await;
        let old = pattern(PART, 10);
        let p1 = pattern(PART, 11);
        let p5 = pattern(10, 15);
        upload_part(&c, "mp2", "gappy", &id, 1, &old).await;
        let e1 = upload_part(&c, "mp2", "gappy", &id, 1, &p1).await;
        let e5 = upload_part(&c, "mp2", "gappy", &id, 5, &p5).await;
        let out = complete(&c, "mp2", "gappy", &id, &[(1, &e1), (5, &e5)])
            .await
            .expect("complete with a gap");
        assert_eq!(out.e_tag(), Some(multipart_etag(&[&p1, &p5]).as_str()));
        assert_object(&srv, "mp2", "gappy", &[p1.as_slice(), &p5].concat()).await;

        // a single small part is fine (the last part may be small)
        let id = create(&c, "mp2", "single").await;
        let e = upload_part(&c, "mp2", "single", &id, 1, b"tiny").await;
        let out = complete(&c, "mp2", "single", &id, &[(1, &e)])
            .await
            .expect("complete single part");
        assert_eq!(out.e_tag(), Some(multipart_etag(&[b"tiny"]).as_str()));
        assert_object(&srv, "mp2", "single", b"tiny").await;

        // completing over an existing key replaces it; the old files go away
        put(&c, "mp2", "replace-me", b"old".to_vec()).await;
        let old_obj = srv.object_on_disk("mp2", "replace-me").unwrap();
        let id = create(&c, "mp2", "replace-me").await;
        let e = upload_part(&c, "mp2", "replace-me", &id, 1, b"new").await;
        assert_object(&srv, "mp2", "replace-me", b"old").await; // unchanged while in progress
        complete(&c, "mp2", "replace-me", &id, &[(1, &e)])
            .await
            .expect("complete over existing");
        assert_object(&srv, "mp2", "replace-me", b"new").await;
        assert!(!old_obj.data.exists(), "old data file left behind");
    }
);

storage_test!(upload_part_copy_with_ranges, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "upc").await;
    let src = pattern(PART + MIB + 321, 42);
    put(&c, "upc", "source object", src.clone()).await;
    let id = create(&c, "upc", "assembled").await;
    let cs = format!("upc/{}", uri_encode("source object", false));
    let r1 = c
        .upload_part_copy()
        .bucket("upc")
        .key("assembled")
        .upload_id(&id)
        .part_number(1)
        .copy_source(&cs)
        .copy_source_range(format!("bytes=0-{}", PART - 1))
        .send()
        .await
        .expect("upload_part_copy range 1");
    let e1 = r1
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("CopyPartResult ETag")
        .to_string();
    assert_eq!(e1, quoted(&md5_hex(&src[..PART])));
    let r2 = c
        .upload_part_copy()
        .bucket("upc")
        .key("assembled")
        .upload_id(&id)
        .part_number(4)
        .copy_source(&cs)
        .copy_source_range(format!("bytes={}-{}", PART, src.len() - 1))
        .send()
        .await
        .expect("upload_part_copy range 2");
    let e2 = r2
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    // a whole-object copy part (no range) and a normal part
    let r3 = c
        .upload_part_copy()
        .bucket("upc")
        .key("assembled")
        .upload_id(&id)
        .part_number(2)
        .copy_source(&cs)
        .send()
        .await
        .expect("upload_part_copy whole");
    let e3 = r3
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    let mid = pattern(PART, 43);
    let e_mid = upload_part(&c, "upc", "assembled", &id, 3, &mid).await;

    // a range past the end of the source is refused
    let f = sdk_err(
        c.upload_part_copy()
            .bucket("upc")
            .key("assembled")
            .upload_id(&id)
            .part_number(9)
            .copy_source(&cs)
            .copy_source_range(format!("bytes=0-{}", src.len() + 10))
            .send()
            .await,
    );
    // AWS answers 400 InvalidArgument ("Range specified is not valid for source object");
    // s3-tests accept 400 or 416 with InvalidRange.
    assert!(f.status == 400 || f.status == 416, "{f:#?}");
    assert!(
        f.code == "InvalidRange" || f.code == "InvalidArgument",
        "{f:#?}"
    );

    // parts: 1 = first 5 MiB of src (range), 2 = all of src (no range), 3 = uploaded, 4 = rest of src (range)
    let out = complete(
        &c,
        "upc",
        "assembled",
        &id,
        &[(1, &e1), (2, &e3), (3, &e_mid), (4, &e2)],
    )
    .await
    .expect("complete");
    let whole: Vec<u8> = [&src[..PART], src.as_slice(), mid.as_slice(), &src[PART..]].concat();
    assert_eq!(
        out.e_tag(),
        Some(multipart_etag(&[&src[..PART], &src, &mid, &src[PART..]]).as_str())
    );
    assert_object(&srv, "upc", "assembled", &whole).await;
    assert_object(&srv, "upc", "source object", &src).await;
});

storage_test!(complete_errors, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "bad").await;
    put(&c, "bad", "k", b"existing".to_vec()).await;
    let id = create(&c, "bad", "k").await;
    let p1 = pattern(PART, 1);
    let p2 = pattern(PART, 2);
    let e1 = upload_part(&c, "bad", "k", &id, 1, &p1).await;
    let e2 = upload_part(&c, "bad", "k", &id, 2, &p2).await;

    // wrong ETag → InvalidPart
    sdk_err(
        complete(
            &c,
            "bad",
            "k",
            &id,
            &[(1, &e1), (2, "\"0123456789abcdef0123456789abcdef\"")],
        )
        .await,
    )
    .assert(400, "InvalidPart");
    // part never uploaded → InvalidPart
    sdk_err(complete(&c, "bad", "k", &id, &[(1, &e1), (2, &e2), (3, &e2)]).await)
        .assert(400, "InvalidPart");
    // wrong order → InvalidPartOrder
    sdk_err(complete(&c, "bad", "k", &id, &[(2, &e2), (1, &e1)]).await)
        .assert(400, "InvalidPartOrder");
    // duplicate part number → InvalidPartOrder
    sdk_err(complete(&c, "bad", "k", &id, &[(1, &e1), (1, &e1)]).await)
        .assert(400, "InvalidPartOrder");
    assert_object(&srv, "bad", "k", b"existing").await;

    // the upload survives failed completions
    let parts = c
        .list_parts()
        .bucket("bad")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .expect("list_parts");
    assert_eq!(parts.parts().len(), 2);
    complete(&c, "bad", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .expect("complete after failures");
    assert_object(&srv, "bad", "k", &[p1.as_slice(), &p2].concat()).await;

    // EntityTooSmall: a part other than the last is < 5 MiB
    put(&c, "bad", "small", b"keep".to_vec()).await;
    let id = create(&c, "bad", "small").await;
    let s1 = upload_part(&c, "bad", "small", &id, 1, &pattern(MIB, 5)).await;
    let s2 = upload_part(&c, "bad", "small", &id, 2, &pattern(MIB, 6)).await;
    sdk_err(complete(&c, "bad", "small", &id, &[(1, &s1), (2, &s2)]).await)
        .assert(400, "EntityTooSmall");
    assert_object(&srv, "bad", "small", b"keep").await;

    // If-None-Match: * on an existing key
    let id = create(&c, "bad", "small").await;
    let e = upload_part(&c, "bad", "small", &id, 1, b"other").await;
    let f = sdk_err(
        c.complete_multipart_upload()
            .bucket("bad")
            .key("small")
            .upload_id(&id)
            .if_none_match("*")
            .multipart_upload(completed(&[(1, &e)]))
            .send()
            .await,
    );
    f.assert(412, "PreconditionFailed");
    assert_object(&srv, "bad", "small", b"keep").await;
    srv.assert_no_temp_files("bad");
});

storage_test!(abort_leaves_nothing, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "abt").await;
    put(&c, "abt", "k", b"existing".to_vec()).await;
    let before = srv.files_snapshot();
    let id = create(&c, "abt", "k").await;
    upload_part(&c, "abt", "k", &id, 1, &pattern(PART, 1)).await;
    upload_part(&c, "abt", "k", &id, 2, &pattern(777, 2)).await;
    c.abort_multipart_upload()
        .bucket("abt")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .expect("abort");

    let after = srv.files_snapshot();
    assert_eq!(
        after, before,
        "abort must leave no files behind (parts, temp files)"
    );
    assert_object(&srv, "abt", "k", b"existing").await;
    sdk_err(
        c.list_parts()
            .bucket("abt")
            .key("k")
            .upload_id(&id)
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    sdk_err(
        c.upload_part()
            .bucket("abt")
            .key("k")
            .upload_id(&id)
            .part_number(3)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    sdk_err(complete(&c, "abt", "k", &id, &[(1, "\"x\"")]).await).assert(404, "NoSuchUpload");
    let u = c
        .list_multipart_uploads()
        .bucket("abt")
        .send()
        .await
        .unwrap();
    assert!(u.uploads().is_empty());
    assert_eq!(srv.files_snapshot(), before);
});

storage_test!(list_parts_and_uploads, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "lpb").await;
    let id = create(&c, "lpb", "doc").await;
    let mut etags = Vec::new();
    for n in 1..=5 {
        let d = pattern(1000 * n as usize, n as u64);
        etags.push((n, upload_part(&c, "lpb", "doc", &id, n, &d).await, d.len()));
    }
    let out = c
        .list_parts()
        .bucket("lpb")
        .key("doc")
        .upload_id(&id)
        .send()
        .await
        .expect("list_parts");
    assert_eq!(out.upload_id(), Some(id.as_str()));
    assert_eq!(out.key(), Some("doc"));
    let got: Vec<(i32, String, i64)> = out
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.e_tag().unwrap().to_string(),
                p.size().unwrap(),
            )
        })
        .collect();
    let want: Vec<(i32, String, i64)> = etags
        .iter()
        .map(|(n, e, l)| (*n, e.clone(), *l as i64))
        .collect();
    assert_eq!(got, want);
    for p in out.parts() {
        assert!(p.last_modified().is_some());
    }
    assert_eq!(out.is_truncated(), Some(false));

    // pagination
    let p1 = c
        .list_parts()
        .bucket("lpb")
        .key("doc")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        p1.parts()
            .iter()
            .map(|p| p.part_number().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(p1.is_truncated(), Some(true));
    assert_eq!(p1.next_part_number_marker(), Some("2"));
    let p2 = c
        .list_parts()
        .bucket("lpb")
        .key("doc")
        .upload_id(&id)
        .part_number_marker("2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        p2.parts()
            .iter()
            .map(|p| p.part_number().unwrap())
            .collect::<Vec<_>>(),
        [3, 4, 5]
    );

    // ListMultipartUploads
    let id2 = create(&c, "lpb", "doc").await;
    let id3 = create(&c, "lpb", "other/x").await;
    let u = c
        .list_multipart_uploads()
        .bucket("lpb")
        .send()
        .await
        .expect("list_multipart_uploads");
    let mut got: Vec<(String, String)> = u
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap().to_string(),
                u.upload_id().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        ("doc".to_string(), id.clone()),
        ("doc".to_string(), id2.clone()),
        ("other/x".to_string(), id3.clone()),
    ];
    want.sort();
    assert_eq!(got, want);
    for up in u.uploads() {
        assert!(up.initiated().is_some());
    }
    let u = c
        .list_multipart_uploads()
        .bucket("lpb")
        .prefix("other/")
        .send()
        .await
        .unwrap();
    assert_eq!(u.uploads().len(), 1);
    assert_eq!(u.uploads()[0].upload_id(), Some(id3.as_str()));
    let u = c
        .list_multipart_uploads()
        .bucket("lpb")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.uploads()
            .iter()
            .filter_map(|u| u.key())
            .collect::<Vec<_>>(),
        ["doc", "doc"]
    );
    assert_eq!(
        u.common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .collect::<Vec<_>>(),
        ["other/"]
    );

    // uploads survive a restart (state in the index)
    let mut srv = srv;
    srv.restart().await;
    let c = srv.client();
    let out = c
        .list_parts()
        .bucket("lpb")
        .key("doc")
        .upload_id(&id)
        .send()
        .await
        .expect("list_parts after restart");
    assert_eq!(out.parts().len(), 5);
    let parts: Vec<(i32, &str)> = etags.iter().map(|(n, e, _)| (*n, e.as_str())).collect();
    // parts below 5 MiB → EntityTooSmall; finish with only the last part instead
    sdk_err(complete(&c, "lpb", "doc", &id, &parts).await).assert(400, "EntityTooSmall");
    complete(&c, "lpb", "doc", &id, &parts[4..])
        .await
        .expect("complete with the last part only");
    assert_object(&srv, "lpb", "doc", &pattern(5000, 5)).await;
});

storage_test!(unknown_upload_ids, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "nub").await;
    put(&c, "nub", "k", b"data".to_vec()).await;
    let bogus = "bm90LWFuLXVwbG9hZC1pZA";
    sdk_err(
        c.upload_part()
            .bucket("nub")
            .key("k")
            .upload_id(bogus)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    sdk_err(
        c.list_parts()
            .bucket("nub")
            .key("k")
            .upload_id(bogus)
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    sdk_err(complete(&c, "nub", "k", bogus, &[(1, "\"abc\"")]).await).assert(404, "NoSuchUpload");
    sdk_err(
        c.abort_multipart_upload()
            .bucket("nub")
            .key("k")
            .upload_id(bogus)
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    sdk_err(
        c.upload_part_copy()
            .bucket("nub")
            .key("k")
            .upload_id(bogus)
            .part_number(1)
            .copy_source("nub/k")
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    // an upload id used with another key is unknown for that key
    let id = create(&c, "nub", "real").await;
    sdk_err(
        c.upload_part()
            .bucket("nub")
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .assert(404, "NoSuchUpload");
    assert_object(&srv, "nub", "k", b"data").await;
    assert!(!exists(&c, "nub", "real").await);
});

storage_test!(part_number_limits_and_upload_pagination, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "pnl").await;
    let id = create(&c, "pnl", "k").await;
    for n in [0, 10001] {
        let f = sdk_err(
            c.upload_part()
                .bucket("pnl")
                .key("k")
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        f.assert(400, "InvalidArgument");
    }
    upload_part(&c, "pnl", "k", &id, 10000, b"last possible part").await;
    let parts = c
        .list_parts()
        .bucket("pnl")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        parts
            .parts()
            .iter()
            .map(|p| p.part_number().unwrap())
            .collect::<Vec<_>>(),
        [10000]
    );

    // ListMultipartUploads pagination with max-uploads, key-marker and upload-id-marker
    let id_b1 = create(&c, "pnl", "b").await;
    let id_b2 = create(&c, "pnl", "b").await;
    let id_c = create(&c, "pnl", "c").await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut key_marker: Option<String> = None;
    let mut id_marker: Option<String> = None;
    for _ in 0..10 {
        let out = c
            .list_multipart_uploads()
            .bucket("pnl")
            .max_uploads(1)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .expect("list_multipart_uploads page");
        assert!(out.uploads().len() <= 1);
        seen.extend(out.uploads().iter().map(|u| {
            (
                u.key().unwrap().to_string(),
                u.upload_id().unwrap().to_string(),
            )
        }));
        if out.is_truncated() != Some(true) {
            break;
        }
        key_marker = out.next_key_marker().map(String::from);
        id_marker = out.next_upload_id_marker().map(String::from);
        assert!(key_marker.is_some(), "truncated without NextKeyMarker");
    }
    let mut want_b = vec![id_b1.clone(), id_b2.clone()];
    want_b.sort();
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["b", "b", "c", "k"],
        "uploads sorted by key: {seen:?}"
    );
    let mut got_b: Vec<String> = seen
        .iter()
        .filter(|(k, _)| k == "b")
        .map(|(_, i)| i.clone())
        .collect();
    got_b.sort();
    assert_eq!(got_b, want_b);
    assert_eq!(seen[2].1, id_c);
    assert_eq!(seen[3].1, id);
});

storage_test!(completed_multipart_survives_kill9, |srv| async move {
    let mut srv = srv;
    let p1 = pattern(PART, 21);
    let p2 = pattern(4096, 22);
    let etag;
    {
        let c = srv.client();
        create_bucket(&c, "mpdur").await;
        let id = create(&c, "mpdur", "obj").await;
        let e1 = upload_part(&c, "mpdur", "obj", &id, 1, &p1).await;
        let e2 = upload_part(&c, "mpdur", "obj", &id, 2, &p2).await;
        etag = complete(&c, "mpdur", "obj", &id, &[(1, &e1), (2, &e2)])
            .await
            .expect("complete")
            .e_tag()
            .unwrap()
            .to_string();
        // and one upload left in progress
        let id2 = create(&c, "mpdur", "pending").await;
        upload_part(&c, "mpdur", "pending", &id2, 1, &p2).await;
    }
    srv.kill9();
    srv.restart().await;
    let c = srv.client();
    assert_object(&srv, "mpdur", "obj", &[p1.as_slice(), &p2].concat()).await;
    assert_eq!(
        c.head_object()
            .bucket("mpdur")
            .key("obj")
            .send()
            .await
            .unwrap()
            .e_tag(),
        Some(etag.as_str())
    );
    let u = c
        .list_multipart_uploads()
        .bucket("mpdur")
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.uploads()
            .iter()
            .filter_map(|u| u.key())
            .collect::<Vec<_>>(),
        ["pending"]
    );
    srv.assert_no_temp_files("mpdur");
});
