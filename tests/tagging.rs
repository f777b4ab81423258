//! Tagging and unhonoured request fields (issue 8, item 4): object tags on PutObject,
//! CopyObject (both directives) and multipart uploads, Put/Get/DeleteObjectTagging,
//! `x-amz-tagging-count`, AWS's limits, the mode rules, attr.json and `index rebuild`, bucket
//! tagging; and every request field ArtStore does not honour answering 501 with nothing stored.

mod common;
use common::*;

use s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier, Tag,
    Tagging, TaggingDirective,
};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().expect("tag")
}

fn tagging(tags: &[(&str, &str)]) -> Tagging {
    let mut b = Tagging::builder();
    for (k, v) in tags {
        b = b.tag_set(tag(k, v));
    }
    b.build().expect("tagging")
}

fn map(tags: &[(&str, &str)]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The object's tags as GetObjectTagging returns them.
async fn tags_of(c: &s3::Client, b: &str, k: &str) -> BTreeMap<String, String> {
    c.get_object_tagging()
        .bucket(b)
        .key(k)
        .send()
        .await
        .expect("get_object_tagging")
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn bucket_tags_of(c: &s3::Client, b: &str) -> BTreeMap<String, String> {
    c.get_bucket_tagging()
        .bucket(b)
        .send()
        .await
        .expect("get_bucket_tagging")
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

/// The `tags` of the key's attr.json on disk (empty when the field is absent).
fn disk_tags(srv: &Server, b: &str, k: &str) -> BTreeMap<String, String> {
    let obj = srv
        .object_on_disk(b, k)
        .unwrap_or_else(|| panic!("no sidecar for {b}/{k}"));
    match obj.json.get("tags") {
        None => BTreeMap::new(),
        Some(t) => serde_json::from_value(t.clone()).expect("tags is a string map"),
    }
}

/// `x-amz-tagging-count` of a GET and of a HEAD of the key.
async fn tag_counts(srv: &Server, b: &str, k: &str) -> (Option<String>, Option<String>) {
    let path = format!("/{b}/{k}");
    let get = srv.raw(Method::GET, &path).send().await;
    get.assert_status(200);
    let head = srv.raw(Method::HEAD, &path).send().await;
    head.assert_status(200);
    (
        get.header("x-amz-tagging-count"),
        head.header("x-amz-tagging-count"),
    )
}

/// Runs `artstore element <args>`, which must succeed.
fn element(srv: &Server, args: &[&str]) {
    let (ok, out, err) = srv.cli(&[&["element"], args].concat());
    assert!(ok, "artstore element {args:?} failed: {err} {out}");
}

fn element_json(srv: &Server, b: &str) -> serde_json::Value {
    let path = srv.element_dir(b).join("element.json");
    serde_json::from_slice(&std::fs::read(&path).expect("element.json")).expect("JSON")
}

// ---------------------------------------------------------------------------------------------
// object tags
// ---------------------------------------------------------------------------------------------

storage_test!(object_tags_put_get_replace_delete, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "tags").await;
    c.put_object()
        .bucket("tags")
        .key("doc.pdf")
        .tagging("project=apollo&stage=flight%20ready")
        .body(ByteStream::from_static(b"moon"))
        .send()
        .await
        .expect("PutObject with x-amz-tagging");
    let want = map(&[("project", "apollo"), ("stage", "flight ready")]);
    assert_eq!(tags_of(&c, "tags", "doc.pdf").await, want);
    assert_eq!(
        disk_tags(&srv, "tags", "doc.pdf"),
        want,
        "tags in attr.json"
    );
    assert_eq!(
        tag_counts(&srv, "tags", "doc.pdf").await,
        (Some("2".into()), Some("2".into()))
    );
    let before = srv.object_on_disk("tags", "doc.pdf").expect("on disk");

    // PutObjectTagging replaces the whole set; the data file stays the same.
    c.put_object_tagging()
        .bucket("tags")
        .key("doc.pdf")
        .tagging(tagging(&[("owner", "nasa")]))
        .send()
        .await
        .expect("PutObjectTagging");
    assert_eq!(
        tags_of(&c, "tags", "doc.pdf").await,
        map(&[("owner", "nasa")])
    );
    assert_eq!(
        disk_tags(&srv, "tags", "doc.pdf"),
        map(&[("owner", "nasa")])
    );
    let after = srv.object_on_disk("tags", "doc.pdf").expect("on disk");
    assert_eq!(after.data, before.data, "same data file");
    assert_eq!(after.str_field("etag"), before.str_field("etag"));
    assert_eq!(srv.objects_on_disk("tags").len(), 1, "no second copy");
    assert_eq!(
        tag_counts(&srv, "tags", "doc.pdf").await,
        (Some("1".into()), Some("1".into()))
    );
    assert_object(&srv, "tags", "doc.pdf", b"moon").await;

    c.delete_object_tagging()
        .bucket("tags")
        .key("doc.pdf")
        .send()
        .await
        .expect("DeleteObjectTagging");
    assert!(tags_of(&c, "tags", "doc.pdf").await.is_empty());
    assert!(disk_tags(&srv, "tags", "doc.pdf").is_empty());
    assert_eq!(tag_counts(&srv, "tags", "doc.pdf").await, (None, None));
    assert_object(&srv, "tags", "doc.pdf", b"moon").await;

    // A missing key: NoSuchKey for all three, and nothing appears.
    sdk_err(
        c.get_object_tagging()
            .bucket("tags")
            .key("nope")
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
    sdk_err(
        c.put_object_tagging()
            .bucket("tags")
            .key("nope")
            .tagging(tagging(&[("a", "b")]))
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
    sdk_err(
        c.delete_object_tagging()
            .bucket("tags")
            .key("nope")
            .send()
            .await,
    )
    .assert(404, "NoSuchKey");
    assert_eq!(list_keys(&c, "tags").await, vec!["doc.pdf".to_string()]);
    srv.assert_no_temp_files("tags");

    // Tagging has its own policy actions: denying them leaves PutObject allowed.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["s3:PutObjectTagging", "s3:GetObjectTagging"],
            "Resource": "arn:aws:s3:::tags/*"
        }]
    });
    c.put_bucket_policy()
        .bucket("tags")
        .policy(policy.to_string())
        .send()
        .await
        .expect("PutBucketPolicy");
    sdk_err(
        c.put_object_tagging()
            .bucket("tags")
            .key("doc.pdf")
            .tagging(tagging(&[("a", "b")]))
            .send()
            .await,
    )
    .assert(403, "AccessDenied");
    sdk_err(
        c.get_object_tagging()
            .bucket("tags")
            .key("doc.pdf")
            .send()
            .await,
    )
    .assert(403, "AccessDenied");
    put(&c, "tags", "other", "still writable").await;
});

storage_test!(
    tag_limits_are_invalid_tag_and_change_nothing,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "lim").await;
        c.put_object()
            .bucket("lim")
            .key("k")
            .tagging("keep=me")
            .body(ByteStream::from_static(b"data"))
            .send()
            .await
            .expect("put");
        let sidecar = std::fs::read(&srv.object_on_disk("lim", "k").expect("disk").attr).unwrap();

        // Limits count characters, not bytes: 128 two-byte characters are a valid key.
        let wide_key = "é".repeat(128);
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let cases: Vec<(&str, Vec<(String, String)>)> = vec![
            ("11 tags", eleven),
            ("key of 129 characters", vec![("x".repeat(129), "v".into())]),
            (
                "value of 257 characters",
                vec![("k".into(), "v".repeat(257))],
            ),
            ("empty key", vec![(String::new(), "v".into())]),
            (
                "aws: prefix",
                vec![("aws:cloudformation".into(), "v".into())],
            ),
            (
                "duplicate keys",
                vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            ),
        ];
        for (what, tags) in &cases {
            let mut t = Tagging::builder();
            for (k, v) in tags {
                t = t.tag_set(tag(k, v));
            }
            let f = sdk_err(
                c.put_object_tagging()
                    .bucket("lim")
                    .key("k")
                    .tagging(t.build().unwrap())
                    .send()
                    .await,
            );
            assert_eq!(
                (f.status, f.code.as_str()),
                (400, "InvalidTag"),
                "{what}: {f:#?}"
            );
        }
        // The same limits on x-amz-tagging, for a new key and for an overwrite.
        for header in [
            "a=1&a=2",
            &(0..11)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join("&"),
        ] {
            for key in ["new", "k"] {
                let f = sdk_err(
                    c.put_object()
                        .bucket("lim")
                        .key(key)
                        .tagging(header)
                        .body(ByteStream::from_static(b"other"))
                        .send()
                        .await,
                );
                assert_eq!(
                    (f.status, f.code.as_str()),
                    (400, "InvalidTag"),
                    "{header}: {f:#?}"
                );
            }
        }
        // Ten tags of the longest kind would take attr.json past its 4 KB.
        let mut big = Tagging::builder();
        for i in 0..10 {
            big = big.tag_set(tag(&format!("{i:0>128}"), &"v".repeat(256)));
        }
        sdk_err(
            c.put_object_tagging()
                .bucket("lim")
                .key("k")
                .tagging(big.build().unwrap())
                .send()
                .await,
        )
        .assert(400, "MetadataTooLarge");
        // A tag set whose body does not match its Content-MD5.
        let xml = "<Tagging><TagSet><Tag><Key>x</Key><Value>y</Value></Tag></TagSet></Tagging>";
        srv.raw(Method::PUT, "/lim/k")
            .query("tagging", "")
            .header("content-md5", &md5_b64(b"something else"))
            .body(xml)
            .send()
            .await
            .assert_error(400, "BadDigest");
        assert_eq!(tags_of(&c, "lim", "k").await, map(&[("keep", "me")]));
        assert_eq!(
            std::fs::read(&srv.object_on_disk("lim", "k").expect("disk").attr).unwrap(),
            sidecar,
            "attr.json unchanged"
        );
        assert_eq!(list_keys(&c, "lim").await, vec!["k".to_string()]);
        assert_object(&srv, "lim", "k", b"data").await;
        srv.assert_no_temp_files("lim");

        // At the limits it is accepted.
        c.put_object_tagging()
            .bucket("lim")
            .key("k")
            .tagging(tagging(&[(wide_key.as_str(), &"v".repeat(256)), ("b", "")]))
            .send()
            .await
            .expect("keys of 128 characters, values of 256 and empty values are valid");
        assert_eq!(
            tags_of(&c, "lim", "k").await,
            map(&[(wide_key.as_str(), &"v".repeat(256)), ("b", "")])
        );
    }
);

storage_test!(copy_object_tagging_directives, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "cpy").await;
    c.put_object()
        .bucket("cpy")
        .key("src")
        .tagging("color=blue")
        .body(ByteStream::from_static(b"source"))
        .send()
        .await
        .expect("put src");
    // Default (COPY): the source's tags.
    c.copy_object()
        .bucket("cpy")
        .key("default")
        .copy_source("cpy/src")
        .send()
        .await
        .expect("copy");
    assert_eq!(
        tags_of(&c, "cpy", "default").await,
        map(&[("color", "blue")])
    );
    c.copy_object()
        .bucket("cpy")
        .key("copy")
        .copy_source("cpy/src")
        .tagging_directive(TaggingDirective::Copy)
        .send()
        .await
        .expect("copy COPY");
    assert_eq!(tags_of(&c, "cpy", "copy").await, map(&[("color", "blue")]));
    // REPLACE: x-amz-tagging, or none.
    c.copy_object()
        .bucket("cpy")
        .key("replace")
        .copy_source("cpy/src")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("size=xl&tier=gold")
        .send()
        .await
        .expect("copy REPLACE");
    assert_eq!(
        tags_of(&c, "cpy", "replace").await,
        map(&[("size", "xl"), ("tier", "gold")])
    );
    assert_eq!(
        disk_tags(&srv, "cpy", "replace"),
        map(&[("size", "xl"), ("tier", "gold")])
    );
    c.copy_object()
        .bucket("cpy")
        .key("cleared")
        .copy_source("cpy/src")
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await
        .expect("copy REPLACE without tags");
    assert!(tags_of(&c, "cpy", "cleared").await.is_empty());

    // x-amz-tagging that the COPY directive would drop is refused; nothing is created.
    let f = sdk_err(
        c.copy_object()
            .bucket("cpy")
            .key("dropped")
            .copy_source("cpy/src")
            .tagging("ignored=yes")
            .send()
            .await,
    );
    f.assert(400, "InvalidArgument");
    assert!(f.message.contains("x-amz-tagging"), "{f:#?}");
    let r = srv
        .raw(Method::PUT, "/cpy/odd")
        .header("x-amz-copy-source", "/cpy/src")
        .header("x-amz-tagging-directive", "MERGE")
        .send()
        .await;
    r.assert_error(400, "InvalidArgument");
    assert!(!exists(&c, "cpy", "dropped").await && !exists(&c, "cpy", "odd").await);

    // Onto itself with REPLACE: new tags, same data file.
    let before = srv.object_on_disk("cpy", "src").expect("disk");
    c.copy_object()
        .bucket("cpy")
        .key("src")
        .copy_source("cpy/src")
        .metadata_directive(MetadataDirective::Replace)
        .tagging_directive(TaggingDirective::Replace)
        .tagging("color=red")
        .send()
        .await
        .expect("self-copy");
    assert_eq!(tags_of(&c, "cpy", "src").await, map(&[("color", "red")]));
    assert_eq!(
        srv.object_on_disk("cpy", "src").expect("disk").data,
        before.data
    );
    assert_object(&srv, "cpy", "src", b"source").await;
    // The copies kept their own tags.
    assert_eq!(tags_of(&c, "cpy", "copy").await, map(&[("color", "blue")]));
});

storage_test!(multipart_tags_apply_at_completion, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mpt").await;
    let id = c
        .create_multipart_upload()
        .bucket("mpt")
        .key("big")
        .tagging("batch=42")
        .send()
        .await
        .expect("create upload")
        .upload_id()
        .expect("upload id")
        .to_string();
    let data = pattern(1000, 3);
    let part = c
        .upload_part()
        .bucket("mpt")
        .key("big")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .expect("part");
    c.complete_multipart_upload()
        .bucket("mpt")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    assert_eq!(tags_of(&c, "mpt", "big").await, map(&[("batch", "42")]));
    assert_eq!(disk_tags(&srv, "mpt", "big"), map(&[("batch", "42")]));
    assert_object(&srv, "mpt", "big", &data).await;

    // Invalid tags at CreateMultipartUpload: InvalidTag, and no upload exists.
    sdk_err(
        c.create_multipart_upload()
            .bucket("mpt")
            .key("bad")
            .tagging("a=1&a=2")
            .send()
            .await,
    )
    .assert(400, "InvalidTag");
    let uploads = c
        .list_multipart_uploads()
        .bucket("mpt")
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
});

storage_test!(tag_changes_follow_the_mode_rules, |srv| async move {
    let c = srv.client();
    element(&srv, &["create", "shelf", "--mode", "rw"]);
    c.put_object()
        .bucket("shelf")
        .key("a")
        .tagging("v=1")
        .body(ByteStream::from_static(b"alpha"))
        .send()
        .await
        .expect("put in rw");
    // rw: a tag change is a metadata update, allowed.
    c.put_object_tagging()
        .bucket("shelf")
        .key("a")
        .tagging(tagging(&[("v", "2")]))
        .send()
        .await
        .expect("PutObjectTagging in rw");
    assert_eq!(tags_of(&c, "shelf", "a").await, map(&[("v", "2")]));

    element(&srv, &["mode", "shelf", "ro", "--reason", "closed"]);
    for mode in ["ro", "ar"] {
        if mode == "ar" {
            element(&srv, &["mode", "shelf", "ar", "--reason", "archive"]);
        }
        let msg = format!(
            "storage element 'shelf' is in mode {mode}: objects cannot be created or changed"
        );
        let f = sdk_err(
            c.put_object_tagging()
                .bucket("shelf")
                .key("a")
                .tagging(tagging(&[("v", "3")]))
                .send()
                .await,
        );
        f.assert(403, "AccessDenied");
        assert_eq!(f.message, msg);
        let f = sdk_err(
            c.delete_object_tagging()
                .bucket("shelf")
                .key("a")
                .send()
                .await,
        );
        f.assert(403, "AccessDenied");
        assert_eq!(f.message, msg);
        // Reading tags is reading attributes: allowed in every mode.
        assert_eq!(
            tags_of(&c, "shelf", "a").await,
            map(&[("v", "2")]),
            "{mode}"
        );
        assert_eq!(disk_tags(&srv, "shelf", "a"), map(&[("v", "2")]), "{mode}");
    }
});

// ---------------------------------------------------------------------------------------------
// bucket tags
// ---------------------------------------------------------------------------------------------

storage_test!(bucket_tagging_put_get_delete, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "btag").await;
    sdk_err(c.get_bucket_tagging().bucket("btag").send().await).assert(404, "NoSuchTagSet");

    c.put_bucket_tagging()
        .bucket("btag")
        .tagging(tagging(&[("dept", "finance"), ("cost-center", "42")]))
        .send()
        .await
        .expect("PutBucketTagging");
    let want = map(&[("dept", "finance"), ("cost-center", "42")]);
    assert_eq!(bucket_tags_of(&c, "btag").await, want);
    let on_disk: BTreeMap<String, String> =
        serde_json::from_value(element_json(&srv, "btag")["tags"].clone()).expect("tags");
    assert_eq!(on_disk, want, "element.json holds the tags");

    // Invalid sets are refused and change nothing.
    let fifty_one: Vec<(String, String)> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
    let mut t = Tagging::builder();
    for (k, v) in &fifty_one {
        t = t.tag_set(tag(k, v));
    }
    sdk_err(
        c.put_bucket_tagging()
            .bucket("btag")
            .tagging(t.build().unwrap())
            .send()
            .await,
    )
    .assert(400, "InvalidTag");
    sdk_err(
        c.put_bucket_tagging()
            .bucket("btag")
            .tagging(tagging(&[("a", "1"), ("a", "2")]))
            .send()
            .await,
    )
    .assert(400, "InvalidTag");
    assert_eq!(bucket_tags_of(&c, "btag").await, want);

    c.delete_bucket_tagging()
        .bucket("btag")
        .send()
        .await
        .expect("DeleteBucketTagging");
    sdk_err(c.get_bucket_tagging().bucket("btag").send().await).assert(404, "NoSuchTagSet");
    assert!(element_json(&srv, "btag")["tags"].is_null());
    sdk_err(c.get_bucket_tagging().bucket("nosuch").send().await).assert(404, "NoSuchBucket");
    sdk_err(
        c.put_bucket_tagging()
            .bucket("nosuch")
            .tagging(tagging(&[("a", "1")]))
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
});

storage_test!(
    object_and_bucket_tags_survive_index_rebuild,
    |srv| async move {
        let mut srv = srv;
        let c = srv.client();
        create_bucket(&c, "reb").await;
        c.put_object()
            .bucket("reb")
            .key("x")
            .tagging("a=1&b=two")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
        put(&c, "reb", "plain", "p").await;
        c.put_object_tagging()
            .bucket("reb")
            .key("plain")
            .tagging(tagging(&[("later", "yes")]))
            .send()
            .await
            .expect("tag later");
        c.put_bucket_tagging()
            .bucket("reb")
            .tagging(tagging(&[("team", "ops")]))
            .send()
            .await
            .expect("bucket tags");

        assert!(srv.stop().is_some_and(|s| s.success()), "clean stop");
        let (report, _) = srv.rebuild_lost_index().await;
        assert_eq!(report["objects_indexed"], 2, "{report}");
        srv.restart().await;
        let c = srv.client();
        assert_eq!(
            tags_of(&c, "reb", "x").await,
            map(&[("a", "1"), ("b", "two")])
        );
        assert_eq!(tags_of(&c, "reb", "plain").await, map(&[("later", "yes")]));
        assert_eq!(bucket_tags_of(&c, "reb").await, map(&[("team", "ops")]));
        assert_eq!(
            tag_counts(&srv, "reb", "x").await,
            (Some("2".into()), Some("2".into()))
        );
    }
);

// ---------------------------------------------------------------------------------------------
// request fields ArtStore does not honour
// ---------------------------------------------------------------------------------------------

storage_test!(
    unhonoured_fields_answer_501_and_store_nothing,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "strict").await;
        put(&c, "strict", "existing", "kept").await;
        let upload = c
            .create_multipart_upload()
            .bucket("strict")
            .key("mpt")
            .send()
            .await
            .expect("upload")
            .upload_id()
            .unwrap()
            .to_string();
        let before = srv.files_snapshot();

        let headers: &[(&str, &str)] = &[
            ("x-amz-object-lock-mode", "GOVERNANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2030-01-01T00:00:00Z",
            ),
            ("x-amz-object-lock-legal-hold", "ON"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-server-side-encryption", "aws:kms"),
            ("x-amz-server-side-encryption-aws-kms-key-id", "key-1"),
            ("x-amz-server-side-encryption-context", "e30="),
            ("x-amz-server-side-encryption-bucket-key-enabled", "true"),
            ("x-amz-server-side-encryption-customer-algorithm", "AES256"),
            ("x-amz-server-side-encryption-customer-key", "a2V5"),
            ("x-amz-server-side-encryption-customer-key-MD5", "bWQ1"),
            ("x-amz-storage-class", "GLACIER"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-website-redirect-location", "/elsewhere"),
            ("x-amz-grant-full-control", "id=123"),
            (
                "x-amz-grant-read",
                "uri=http://acs.amazonaws.com/groups/global/AllUsers",
            ),
            ("x-amz-grant-read-acp", "id=123"),
            ("x-amz-grant-write-acp", "id=123"),
            ("x-amz-write-offset-bytes", "4"),
        ];
        // (operation, method, path, `?uploads`)
        let object_ops = [
            ("PutObject", Method::PUT, "/strict/new", false),
            (
                "PutObject over a key",
                Method::PUT,
                "/strict/existing",
                false,
            ),
            ("CreateMultipartUpload", Method::POST, "/strict/new", true),
        ];
        for (op, method, path, uploads) in &object_ops {
            for (h, v) in headers {
                let mut r = srv.raw(method.clone(), path).header(h, v).body("new bytes");
                if *uploads {
                    r = r.query("uploads", "");
                }
                let resp = r.send().await;
                resp.assert_error(501, "NotImplemented");
                assert!(
                    resp.text()
                        .to_ascii_lowercase()
                        .contains(&h.to_ascii_lowercase()),
                    "{op} {h}: the message names the header: {}",
                    resp.text()
                );
            }
        }
        // CopyObject, UploadPart and UploadPartCopy with a sample of them.
        for (h, v) in [
            ("x-amz-storage-class", "GLACIER"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-object-lock-legal-hold", "ON"),
            (
                "x-amz-copy-source-server-side-encryption-customer-algorithm",
                "AES256",
            ),
        ] {
            srv.raw(Method::PUT, "/strict/copied")
                .header("x-amz-copy-source", "/strict/existing")
                .header(h, v)
                .send()
                .await
                .assert_error(501, "NotImplemented");
            srv.raw(Method::PUT, "/strict/mp")
                .query("partNumber", "1")
                .query("uploadId", &upload)
                .header("x-amz-copy-source", "/strict/existing")
                .header(h, v)
                .send()
                .await
                .assert_error(501, "NotImplemented");
        }
        srv.raw(Method::PUT, "/strict/mp")
            .query("partNumber", "1")
            .query("uploadId", &upload)
            .header("x-amz-server-side-encryption-customer-algorithm", "AES256")
            .body("part")
            .send()
            .await
            .assert_error(501, "NotImplemented");
        // CreateBucket with object lock or ACL grants or directory-bucket configuration.
        for (h, v) in [
            ("x-amz-bucket-object-lock-enabled", "true"),
            ("x-amz-grant-write", "id=123"),
            ("x-amz-object-ownership", "ObjectWriter"),
        ] {
            srv.raw(Method::PUT, "/locked")
                .header(h, v)
                .send()
                .await
                .assert_error(501, "NotImplemented");
        }
        srv.raw(Method::PUT, "/locked")
        .body(
            "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Location><Type>AvailabilityZone</Type><Name>use1-az4</Name></Location>\
             <Bucket><Type>Directory</Type><DataRedundancy>SingleAvailabilityZone</DataRedundancy></Bucket>\
             </CreateBucketConfiguration>",
        )
        .send()
        .await
        .assert_error(501, "NotImplemented");
        sdk_err(c.head_bucket().bucket("locked").send().await).assert(404, "");
        // DeleteObject with MFA, or naming a version (buckets are unversioned).
        srv.raw(Method::DELETE, "/strict/existing")
            .header("x-amz-mfa", "SERIAL 123456")
            .send()
            .await
            .assert_error(501, "NotImplemented");
        srv.raw(Method::DELETE, "/strict/existing")
            .query("versionId", "3HL4kqtJlcpXroDTDmJ")
            .send()
            .await
            .assert_error(404, "NoSuchVersion");
        srv.raw(Method::GET, "/strict/existing")
            .query("versionId", "3HL4kqtJlcpXroDTDmJ")
            .send()
            .await
            .assert_error(404, "NoSuchVersion");
        let got = srv
            .raw(Method::GET, "/strict/existing")
            .query("versionId", "null")
            .send()
            .await;
        got.assert_status(200);
        assert_eq!(got.body, b"kept");
        let res = c
            .delete_objects()
            .bucket("strict")
            .delete(
                Delete::builder()
                    .objects(
                        ObjectIdentifier::builder()
                            .key("existing")
                            .version_id("3HL4kqtJlcpXroDTDmJ")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("DeleteObjects answers per key");
        assert!(res.deleted().is_empty(), "{res:?}");
        assert_eq!(res.errors().len(), 1, "{res:?}");
        assert_eq!(res.errors()[0].code(), Some("NoSuchVersion"));

        // Nothing was stored, changed or left behind.
        assert_eq!(srv.files_snapshot(), before, "no file changed");
        assert_eq!(list_keys(&c, "strict").await, vec!["existing".to_string()]);
        assert_object(&srv, "strict", "existing", b"kept").await;
        let parts = c
            .list_parts()
            .bucket("strict")
            .key("mpt")
            .upload_id(&upload)
            .send()
            .await
            .expect("list parts");
        assert!(parts.parts().is_empty(), "{parts:?}");

        // Values that ask for what ArtStore does anyway are accepted.
        for (h, v) in [
            ("x-amz-storage-class", "STANDARD"),
            ("x-amz-server-side-encryption-bucket-key-enabled", "false"),
        ] {
            srv.raw(Method::PUT, "/strict/fine")
                .header(h, v)
                .body("fine")
                .send()
                .await
                .assert_status(200);
        }
        srv.raw(Method::PUT, "/owned")
            .header("x-amz-object-ownership", "BucketOwnerEnforced")
            .header("x-amz-bucket-object-lock-enabled", "false")
            .send()
            .await
            .assert_status(200);
        assert_object(&srv, "strict", "fine", b"fine").await;
    }
);
