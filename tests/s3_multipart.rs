//! Multipart uploads (issue 2, item 4).

mod common;
use common::create_upload as create;
use common::*;
use s3::types::{
    ChecksumAlgorithm as Alg, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes,
};

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;

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

// --- Retries and the newer S3 surface (issue 8, item 5) --------------------------------

/// The value of `alg` an SDK output (or part) carries.
macro_rules! sum_of {
    ($o:expr, $alg:expr) => {
        match $alg {
            Alg::Crc32 => $o.checksum_crc32(),
            Alg::Crc32C => $o.checksum_crc32_c(),
            Alg::Crc64Nvme => $o.checksum_crc64_nvme(),
            Alg::Sha1 => $o.checksum_sha1(),
            Alg::Sha256 => $o.checksum_sha256(),
            _ => None,
        }
    };
}

fn checksum_b64(alg: &Alg, data: &[u8]) -> String {
    match alg {
        Alg::Crc32 => crc32_b64(data),
        Alg::Crc32C => crc32c_b64(data),
        Alg::Crc64Nvme => crc64nvme_b64(data),
        Alg::Sha1 => sha1_b64(data),
        Alg::Sha256 => sha256_b64(data),
        other => panic!("no test vector for {other:?}"),
    }
}

/// AWS's COMPOSITE value: the checksum of the concatenated raw part checksums, "-N".
fn composite(alg: &Alg, parts: &[&[u8]]) -> String {
    use base64::Engine;
    let mut raw = Vec::new();
    for p in parts {
        raw.extend(
            base64::engine::general_purpose::STANDARD
                .decode(checksum_b64(alg, p))
                .unwrap(),
        );
    }
    format!("{}-{}", checksum_b64(alg, &raw), parts.len())
}

fn with_checksum(
    b: s3::types::builders::CompletedPartBuilder,
    alg: &Alg,
    v: &str,
) -> s3::types::builders::CompletedPartBuilder {
    match alg {
        Alg::Crc32 => b.checksum_crc32(v),
        Alg::Crc32C => b.checksum_crc32_c(v),
        Alg::Crc64Nvme => b.checksum_crc64_nvme(v),
        Alg::Sha1 => b.checksum_sha1(v),
        Alg::Sha256 => b.checksum_sha256(v),
        other => panic!("{other:?}"),
    }
}

/// Creates an upload with `alg` (and `kind`, if given) and uploads `parts` with the SDK
/// computing each part's checksum; returns the id and the Complete body's parts.
async fn checksummed_upload(
    c: &s3::Client,
    b: &str,
    k: &str,
    alg: &Alg,
    kind: Option<ChecksumType>,
    parts: &[&[u8]],
) -> (String, Vec<CompletedPart>) {
    let out = c
        .create_multipart_upload()
        .bucket(b)
        .key(k)
        .checksum_algorithm(alg.clone())
        .set_checksum_type(kind.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {alg:?} {kind:?}: {e:?}"));
    assert_eq!(out.checksum_algorithm(), Some(alg));
    if let Some(k) = &kind {
        assert_eq!(out.checksum_type(), Some(k));
    }
    let id = out.upload_id().unwrap().to_string();
    let mut done = Vec::new();
    for (at, data) in parts.iter().enumerate() {
        let n = i32::try_from(at + 1).unwrap();
        let p = c
            .upload_part()
            .bucket(b)
            .key(k)
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(alg.clone())
            .body(ByteStream::from(data.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload_part {n} {alg:?}: {e:?}"));
        let sum = checksum_b64(alg, data);
        assert_eq!(sum_of!(p, alg), Some(sum.as_str()), "part {n} checksum");
        done.push(
            with_checksum(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(p.e_tag().unwrap()),
                alg,
                &sum,
            )
            .build(),
        );
    }
    (id, done)
}

/// HEAD and GET with x-amz-checksum-mode, GetObjectAttributes and attr.json all carry
/// `want` of type `kind`.
async fn assert_checksum(
    srv: &Server,
    b: &str,
    k: &str,
    alg: &Alg,
    want: &str,
    kind: ChecksumType,
    whole: &[u8],
) {
    let c = srv.client();
    let h = c
        .head_object()
        .bucket(b)
        .key(k)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(sum_of!(h, alg), Some(want), "HEAD {k}");
    assert_eq!(h.checksum_type(), Some(&kind), "HEAD {k}");
    // The SDK validates FULL_OBJECT values against the body it reads.
    let g = c
        .get_object()
        .bucket(b)
        .key(k)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(sum_of!(g, alg), Some(want), "GET {k}");
    assert_eq!(g.checksum_type(), Some(&kind));
    assert_eq!(g.body.collect().await.unwrap().into_bytes().as_ref(), whole);
    let a = c
        .get_object_attributes()
        .bucket(b)
        .key(k)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    let sum = a.checksum().expect("Checksum attribute");
    assert_eq!(sum_of!(sum, alg), Some(want), "GetObjectAttributes {k}");
    assert_eq!(sum.checksum_type(), Some(&kind));
    let o = srv.object_on_disk(b, k).unwrap();
    let name = alg.as_str().to_ascii_lowercase();
    assert_eq!(
        o.json["checksums"][name.as_str()].as_str(),
        Some(want),
        "attr.json keeps the checksum so a rebuild does: {:#}",
        o.json
    );
}

storage_test!(retried_complete_answers_as_the_first, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpr").await;
    let (p1, p2) = (pattern(PART, 21), pattern(100, 22));
    let id = create(&c, "mpr", "k").await;
    let e1 = upload_part(&c, "mpr", "k", &id, 1, &p1).await;
    let e2 = upload_part(&c, "mpr", "k", &id, 2, &p2).await;
    let parts = [(1, e1.as_str()), (2, e2.as_str())];
    let first = complete(&c, "mpr", "k", &id, &parts)
        .await
        .expect("complete");
    let want = multipart_etag(&[&p1, &p2]);
    assert_eq!(first.e_tag(), Some(want.as_str()));
    // A retry (the SDK timed out waiting for the first answer) gets the same answer.
    let again = complete(&c, "mpr", "k", &id, &parts)
        .await
        .expect("retried complete");
    assert_eq!(again.e_tag(), Some(want.as_str()));
    assert_eq!(again.key(), Some("k"));
    let whole = [p1.as_slice(), &p2].concat();
    assert_object(&srv, "mpr", "k", &whole).await;
    // The id names that upload of that key only.
    create_bucket(&c, "mpr2").await;
    sdk_err(complete(&c, "mpr", "other", &id, &parts).await).assert(404, "NoSuchUpload");
    sdk_err(complete(&c, "mpr2", "k", &id, &parts).await).assert(404, "NoSuchUpload");
    assert!(!exists(&c, "mpr", "other").await);
    // Once the key holds another object, the upload's result is gone: NoSuchUpload.
    put(&c, "mpr", "k", b"newer".to_vec()).await;
    sdk_err(complete(&c, "mpr", "k", &id, &parts).await).assert(404, "NoSuchUpload");
    assert_object(&srv, "mpr", "k", b"newer").await;
    srv.assert_no_temp_files("mpr");
});

storage_test!(composite_checksums, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpc").await;
    let (p1, p2) = (pattern(PART, 31), pattern(777, 32));
    let whole = [p1.as_slice(), &p2].concat();
    for alg in [Alg::Crc32, Alg::Crc32C, Alg::Sha1, Alg::Sha256] {
        let key = format!("composite-{}", alg.as_str());
        let (id, parts) = checksummed_upload(&c, "mpc", &key, &alg, None, &[&p1, &p2]).await;
        let listed = c
            .list_parts()
            .bucket("mpc")
            .key(&key)
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.checksum_algorithm(), Some(&alg));
        let done = c
            .complete_multipart_upload()
            .bucket("mpc")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("complete {alg:?}: {e:?}"));
        let want = composite(&alg, &[&p1, &p2]);
        assert_eq!(sum_of!(done, &alg), Some(want.as_str()), "{alg:?}");
        assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
        assert_checksum(
            &srv,
            "mpc",
            &key,
            &alg,
            &want,
            ChecksumType::Composite,
            &whole,
        )
        .await;
    }
});

storage_test!(full_object_checksums, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpf").await;
    let (p1, p2, p3) = (pattern(PART, 41), pattern(PART, 42), pattern(4321, 43));
    let whole = [p1.as_slice(), &p2, &p3].concat();
    for alg in [Alg::Crc32, Alg::Crc32C, Alg::Crc64Nvme] {
        let key = format!("full-{}", alg.as_str());
        let (id, parts) = checksummed_upload(
            &c,
            "mpf",
            &key,
            &alg,
            Some(ChecksumType::FullObject),
            &[&p1, &p2, &p3],
        )
        .await;
        let want = checksum_b64(&alg, &whole);
        // The client may name the whole object's checksum; it is checked.
        let mut req = c
            .complete_multipart_upload()
            .bucket("mpf")
            .key(&key)
            .upload_id(&id)
            .checksum_type(ChecksumType::FullObject)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        req = match alg {
            Alg::Crc32 => req.checksum_crc32(&want),
            Alg::Crc32C => req.checksum_crc32_c(&want),
            _ => req.checksum_crc64_nvme(&want),
        };
        let done = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("complete {alg:?}: {e:?}"));
        assert_eq!(sum_of!(done, &alg), Some(want.as_str()), "{alg:?}");
        assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
        assert_checksum(
            &srv,
            "mpf",
            &key,
            &alg,
            &want,
            ChecksumType::FullObject,
            &whole,
        )
        .await;
    }
    // CRC64NVME uploads are FULL_OBJECT by default.
    let (id, parts) = checksummed_upload(&c, "mpf", "dflt", &Alg::Crc64Nvme, None, &[&p3]).await;
    let done = c
        .complete_multipart_upload()
        .bucket("mpf")
        .key("dflt")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(
        done.checksum_crc64_nvme(),
        Some(crc64nvme_b64(&p3).as_str())
    );
});

storage_test!(multipart_checksum_errors, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpe").await;
    put(&c, "mpe", "k", b"original".to_vec()).await;
    // Combinations AWS does not define.
    for (alg, kind) in [
        (Alg::Sha256, ChecksumType::FullObject),
        (Alg::Sha1, ChecksumType::FullObject),
        (Alg::Crc64Nvme, ChecksumType::Composite),
    ] {
        sdk_err(
            c.create_multipart_upload()
                .bucket("mpe")
                .key("k")
                .checksum_algorithm(alg)
                .checksum_type(kind)
                .send()
                .await,
        )
        .assert(400, "InvalidRequest");
    }
    let p1 = pattern(PART, 51);
    let (id, good) = checksummed_upload(&c, "mpe", "k", &Alg::Crc32, None, &[&p1]).await;
    // A part whose data does not match its declared checksum is refused and not kept.
    srv.raw(Method::PUT, "/mpe/k")
        .query("uploadId", &id)
        .query("partNumber", "2")
        .header("x-amz-checksum-crc32", &crc32_b64(b"something else"))
        .body(b"tail".to_vec())
        .send()
        .await
        .assert_error(400, "BadDigest");
    // A part checksummed with another algorithm than the upload's.
    srv.raw(Method::PUT, "/mpe/k")
        .query("uploadId", &id)
        .query("partNumber", "2")
        .header("x-amz-checksum-crc32c", &crc32c_b64(b"tail"))
        .body(b"tail".to_vec())
        .send()
        .await
        .assert_error(400, "InvalidRequest");
    let listed = c
        .list_parts()
        .bucket("mpe")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.parts().len(), 1, "refused parts must not be kept");

    let complete_with = |parts: Vec<CompletedPart>| {
        c.complete_multipart_upload()
            .bucket("mpe")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
    };
    // A part checksum in the Complete body that is not the stored one.
    let wrong = with_checksum(
        CompletedPart::builder()
            .part_number(1)
            .e_tag(good[0].e_tag().unwrap()),
        &Alg::Crc32,
        &crc32_b64(b"not the part"),
    )
    .build();
    sdk_err(complete_with(vec![wrong]).send().await).assert(400, "InvalidPart");
    // COMPOSITE needs every part's checksum.
    let bare = CompletedPart::builder()
        .part_number(1)
        .e_tag(good[0].e_tag().unwrap())
        .build();
    sdk_err(complete_with(vec![bare]).send().await).assert(400, "InvalidRequest");
    // A whole-object checksum that does not match.
    sdk_err(
        complete_with(good.clone())
            .checksum_crc32(crc32_b64(b"not the object"))
            .send()
            .await,
    )
    .assert(400, "BadDigest");
    // A size or checksum type other than the upload's.
    sdk_err(complete_with(good.clone()).mpu_object_size(1).send().await)
        .assert(400, "InvalidRequest");
    sdk_err(
        complete_with(good.clone())
            .checksum_type(ChecksumType::FullObject)
            .send()
            .await,
    )
    .assert(400, "InvalidRequest");
    // Nothing changed: the old object is there, the upload can still complete.
    assert_object(&srv, "mpe", "k", b"original").await;
    let done = complete_with(good)
        .mpu_object_size(PART as i64)
        .send()
        .await
        .expect("complete");
    assert_eq!(
        done.checksum_crc32(),
        Some(composite(&Alg::Crc32, &[&p1]).as_str())
    );
    assert_object(&srv, "mpe", "k", &p1).await;
    srv.assert_no_temp_files("mpe");
});

storage_test!(part_numbers_and_object_attributes, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpn").await;
    let (p1, p2, p3) = (pattern(PART, 61), pattern(PART, 62), pattern(999, 63));
    let id = create(&c, "mpn", "m").await;
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2), (3, &p3)] {
        parts.push(upload_part(&c, "mpn", "m", &id, n, p).await);
    }
    let refs: Vec<(i32, &str)> = parts
        .iter()
        .enumerate()
        .map(|(i, e)| (i as i32 + 1, e.as_str()))
        .collect();
    complete(&c, "mpn", "m", &id, &refs)
        .await
        .expect("complete");
    let total = (2 * PART + 999) as i64;

    // GET and HEAD by part number read exactly that part.
    for (n, data, start) in [(1, &p1, 0), (2, &p2, PART), (3, &p3, 2 * PART)] {
        let g = c
            .get_object()
            .bucket("mpn")
            .key("m")
            .part_number(n)
            .send()
            .await
            .unwrap();
        assert_eq!(g.parts_count(), Some(3));
        let range = format!("bytes {}-{}/{}", start, start + data.len() - 1, total);
        assert_eq!(g.content_range(), Some(range.as_str()));
        assert_eq!(g.content_length(), Some(data.len() as i64));
        assert_eq!(
            g.body.collect().await.unwrap().into_bytes().as_ref(),
            &data[..]
        );
        let h = c
            .head_object()
            .bucket("mpn")
            .key("m")
            .part_number(n)
            .send()
            .await
            .unwrap();
        assert_eq!(h.content_length(), Some(data.len() as i64));
        assert_eq!(h.parts_count(), Some(3));
    }
    sdk_err(
        c.get_object()
            .bucket("mpn")
            .key("m")
            .part_number(4)
            .send()
            .await,
    )
    .assert(416, "InvalidPartNumber");
    srv.raw(Method::GET, "/mpn/m")
        .query("partNumber", "1")
        .header("range", "bytes=0-9")
        .send()
        .await
        .assert_error(400, "InvalidRequest");

    // GetObjectAttributes: every attribute, parts paginated.
    let a = c
        .get_object_attributes()
        .bucket("mpn")
        .key("m")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .max_parts(2)
        .send()
        .await
        .expect("get_object_attributes");
    let etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(
        a.e_tag().map(|e| e.trim_matches('"')),
        Some(etag.trim_matches('"'))
    );
    assert_eq!(a.object_size(), Some(total));
    assert_eq!(a.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    let op = a.object_parts().expect("ObjectParts");
    assert_eq!(op.total_parts_count(), Some(3));
    assert_eq!(op.is_truncated(), Some(true));
    let got: Vec<(Option<i32>, Option<i64>)> = op
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size()))
        .collect();
    assert_eq!(
        got,
        [(Some(1), Some(PART as i64)), (Some(2), Some(PART as i64))]
    );
    let next = op.next_part_number_marker().expect("NextPartNumberMarker");
    let a = c
        .get_object_attributes()
        .bucket("mpn")
        .key("m")
        .object_attributes(ObjectAttributes::ObjectParts)
        .part_number_marker(next)
        .send()
        .await
        .unwrap();
    let op = a.object_parts().unwrap();
    assert_eq!(op.is_truncated(), Some(false));
    let got: Vec<(Option<i32>, Option<i64>)> = op
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size()))
        .collect();
    assert_eq!(got, [(Some(3), Some(999))]);
    assert!(a.e_tag().is_none(), "only the attributes asked for");

    // The part sizes live in attr.json too, so a rebuild keeps them.
    let o = srv.object_on_disk("mpn", "m").unwrap();
    assert_eq!(
        o.json["part_sizes"],
        serde_json::json!([[PART, 2], [999, 1]]),
        "{:#}",
        o.json
    );

    // A single-part object is its own part 1, and has no ObjectParts.
    put(&c, "mpn", "single", b"0123456789".to_vec()).await;
    let g = c
        .get_object()
        .bucket("mpn")
        .key("single")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        b"0123456789"
    );
    sdk_err(
        c.head_object()
            .bucket("mpn")
            .key("single")
            .part_number(2)
            .send()
            .await,
    )
    .assert(416, "");
    let a = c
        .get_object_attributes()
        .bucket("mpn")
        .key("single")
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap();
    assert!(a.object_parts().is_none());
    assert_eq!(a.object_size(), Some(10));
    sdk_err(
        c.get_object_attributes()
            .bucket("mpn")
            .key("missing")
            .object_attributes(ObjectAttributes::ObjectSize)
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
});

storage_test!(checksums_and_part_sizes_survive_rebuild, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    create_bucket(&c, "mpx").await;
    let (p1, p2) = (pattern(PART, 71), pattern(321, 72));
    let whole = [p1.as_slice(), &p2].concat();
    let (id, parts) = checksummed_upload(
        &c,
        "mpx",
        "k",
        &Alg::Crc32C,
        Some(ChecksumType::FullObject),
        &[&p1, &p2],
    )
    .await;
    c.complete_multipart_upload()
        .bucket("mpx")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");

    assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
    srv.rebuild_lost_index().await;
    srv.restart().await;
    let c = srv.client();
    assert_checksum(
        &srv,
        "mpx",
        "k",
        &Alg::Crc32C,
        &crc32c_b64(&whole),
        ChecksumType::FullObject,
        &whole,
    )
    .await;
    let a = c
        .get_object_attributes()
        .bucket("mpx")
        .key("k")
        .object_attributes(ObjectAttributes::ObjectParts)
        .send()
        .await
        .unwrap();
    let sizes: Vec<Option<i64>> = a
        .object_parts()
        .expect("ObjectParts after a rebuild")
        .parts()
        .iter()
        .map(|p| p.size())
        .collect();
    assert_eq!(sizes, [Some(PART as i64), Some(321)]);
    let g = c
        .get_object()
        .bucket("mpx")
        .key("k")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        g.body.collect().await.unwrap().into_bytes().as_ref(),
        &p2[..]
    );
});

storage_test!(concurrent_completes_answer_alike, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpcc").await;
    let p1 = pattern(PART, 91);
    let p2 = pattern(10, 92);
    let id = create(&c, "mpcc", "k").await;
    let e1 = upload_part(&c, "mpcc", "k", &id, 1, &p1).await;
    let e2 = upload_part(&c, "mpcc", "k", &id, 2, &p2).await;
    let parts = [(1, e1.as_str()), (2, e2.as_str())];
    // Whichever commits first, both (a Complete and its retry racing it) answer 200 alike.
    let (a, b) = tokio::join!(
        complete(&c, "mpcc", "k", &id, &parts),
        complete(&c, "mpcc", "k", &id, &parts)
    );
    let want = multipart_etag(&[&p1, &p2]);
    assert_eq!(a.expect("first").e_tag(), Some(want.as_str()));
    assert_eq!(b.expect("second").e_tag(), Some(want.as_str()));
    assert_object(&srv, "mpcc", "k", &[p1.as_slice(), &p2].concat()).await;
    assert_eq!(
        srv.objects_on_disk("mpcc").len(),
        1,
        "the loser's file is removed"
    );
    srv.assert_no_temp_files("mpcc");
});
