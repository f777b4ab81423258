//! Buckets = storage elements (issue 2, item 1) and the bucket-level stubs (item 8).

mod common;
use common::*;

storage_test!(list_create_head_delete, |srv| async move {
    let c = srv.client();
    let before = c.list_buckets().send().await.expect("list_buckets");
    let before: Vec<String> = before
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect();
    assert!(!before.contains(&"beta".to_string()));

    for b in ["beta", "alpha", "gamma.with-dots"] {
        create_bucket(&c, b).await;
    }
    let out = c.list_buckets().send().await.expect("list_buckets");
    let names: Vec<String> = out
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect();
    for b in ["alpha", "beta", "gamma.with-dots"] {
        assert!(names.contains(&b.to_string()), "{b} missing from {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "ListBuckets must be sorted by name");
    for b in out.buckets() {
        assert!(
            b.creation_date().is_some(),
            "bucket {:?} without CreationDate",
            b.name()
        );
    }

    c.head_bucket()
        .bucket("alpha")
        .send()
        .await
        .expect("head existing bucket");
    sdk_err(c.head_bucket().bucket("nope-not-here").send().await).assert(404, "");

    // The index is where the harness put it.
    let sqlite_file = srv.data_dir().join("artstore.db");
    match srv.db() {
        Db::Sqlite => assert!(
            sqlite_file.exists(),
            "no SQLite index at {}",
            sqlite_file.display()
        ),
        Db::Postgres => assert!(
            !sqlite_file.exists(),
            "ARTSTORE_DATABASE_URL=postgres://… given, but a SQLite index was created"
        ),
    }

    // The element exists on disk.
    assert!(
        srv.element_dir("alpha").is_dir(),
        "no element dir for alpha"
    );

    c.delete_bucket()
        .bucket("alpha")
        .send()
        .await
        .expect("delete empty bucket");
    sdk_err(c.head_bucket().bucket("alpha").send().await).assert(404, "");
    let out = c.list_buckets().send().await.expect("list_buckets");
    let names: Vec<String> = out
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect();
    assert!(
        !names.contains(&"alpha".to_string()),
        "deleted bucket still listed: {names:?}"
    );
    assert!(names.contains(&"beta".to_string()));

    // Deleting it again: NoSuchBucket.
    sdk_err(c.delete_bucket().bucket("alpha").send().await).assert(404, "NoSuchBucket");
});

storage_test!(recreate_own_bucket_is_ok, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "mine").await;
    put(&c, "mine", "k", b"keep me".to_vec()).await;
    // AWS us-east-1: re-creating a bucket you own answers 200.
    c.create_bucket()
        .bucket("mine")
        .send()
        .await
        .expect("re-create own bucket → 200");
    // ... and does not wipe it.
    assert_eq!(get(&c, "mine", "k").await, b"keep me");
    let out = c.list_buckets().send().await.unwrap();
    let n = out
        .buckets()
        .iter()
        .filter(|b| b.name() == Some("mine"))
        .count();
    assert_eq!(n, 1, "bucket listed {n} times");
});

storage_test!(delete_non_empty_bucket, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "full").await;
    put(&c, "full", "a/b.txt", b"content".to_vec()).await;
    sdk_err(c.delete_bucket().bucket("full").send().await).assert(409, "BucketNotEmpty");
    // Nothing was removed.
    c.head_bucket()
        .bucket("full")
        .send()
        .await
        .expect("bucket still there");
    assert_object(&srv, "full", "a/b.txt", b"content").await;
    // Empty it, then it can go.
    c.delete_object()
        .bucket("full")
        .key("a/b.txt")
        .send()
        .await
        .unwrap();
    c.delete_bucket()
        .bucket("full")
        .send()
        .await
        .expect("delete now-empty bucket");
    sdk_err(c.head_bucket().bucket("full").send().await).assert(404, "");
});

storage_test!(bucket_location, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "where").await;
    let out = c
        .get_bucket_location()
        .bucket("where")
        .send()
        .await
        .expect("get_bucket_location");
    // AWS answers an empty LocationConstraint for us-east-1.
    let lc = out
        .location_constraint()
        .map(|l| l.as_str().to_string())
        .unwrap_or_default();
    assert!(
        lc.is_empty() || lc == "us-east-1",
        "unexpected LocationConstraint {lc:?}"
    );
    sdk_err(c.get_bucket_location().bucket("nowhere").send().await).assert(404, "NoSuchBucket");
});

storage_test!(invalid_bucket_names, |srv| async move {
    let c = srv.client();
    let long = "a".repeat(64);
    let bad = [
        "ab",
        long.as_str(),
        "UpperCase",
        "under_score",
        "-leading-hyphen",
        "trailing-hyphen-",
        "192.168.1.10",
        "double..dot",
        "xn--punycode",
        "dot.-dash",
        "dash-.dot",
        "sthree-reserved",
        "alias-s3alias",
    ];
    for b in bad {
        let f = sdk_err(c.create_bucket().bucket(b).send().await);
        assert_eq!(
            (f.status, f.code.as_str()),
            (400, "InvalidBucketName"),
            "bucket {b:?}: {f:#?}"
        );
    }
    let out = c.list_buckets().send().await.unwrap();
    let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
    for b in bad {
        assert!(
            !names.contains(&b),
            "invalid bucket {b:?} was created: {names:?}"
        );
    }
    assert!(!srv.data_dir().join("elements").join("UpperCase").exists());
    // The boundaries are valid.
    let max = "b".repeat(63);
    for b in ["abc", max.as_str(), "a-b.c1", "1numeric-start"] {
        create_bucket(&c, b).await;
    }
});

storage_test!(object_ops_on_missing_bucket, |srv| async move {
    let c = srv.client();
    sdk_err(
        c.put_object()
            .bucket("ghost")
            .key("k")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
    sdk_err(c.get_object().bucket("ghost").key("k").send().await).assert(404, "NoSuchBucket");
    sdk_err(c.list_objects_v2().bucket("ghost").send().await).assert(404, "NoSuchBucket");
    sdk_err(c.list_objects().bucket("ghost").send().await).assert(404, "NoSuchBucket");
    sdk_err(c.head_object().bucket("ghost").key("k").send().await).assert(404, "");
    sdk_err(c.delete_object().bucket("ghost").key("k").send().await).assert(404, "NoSuchBucket");
    let del = s3::types::Delete::builder()
        .objects(
            s3::types::ObjectIdentifier::builder()
                .key("k")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    sdk_err(c.delete_objects().bucket("ghost").delete(del).send().await)
        .assert(404, "NoSuchBucket");
    sdk_err(
        c.create_multipart_upload()
            .bucket("ghost")
            .key("k")
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
    sdk_err(c.list_multipart_uploads().bucket("ghost").send().await).assert(404, "NoSuchBucket");
    sdk_err(c.list_object_versions().bucket("ghost").send().await).assert(404, "NoSuchBucket");
    // copy into a missing bucket, and from one
    create_bucket(&c, "real").await;
    put(&c, "real", "src", b"src".to_vec()).await;
    sdk_err(
        c.copy_object()
            .bucket("ghost")
            .key("k")
            .copy_source("real/src")
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
    sdk_err(
        c.copy_object()
            .bucket("real")
            .key("k")
            .copy_source("ghost/src")
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
    assert_eq!(list_keys(&c, "real").await, vec!["src"]);
    assert!(
        !srv.element_dir("ghost").exists(),
        "PUT into a missing bucket created its dir"
    );
});

storage_test!(bucket_stubs, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "stubs").await;

    // GetBucketVersioning: never enabled → empty configuration (no Status).
    let v = c
        .get_bucket_versioning()
        .bucket("stubs")
        .send()
        .await
        .expect("get_bucket_versioning");
    assert!(
        v.status().is_none(),
        "unversioned bucket reports status {:?}",
        v.status()
    );
    assert!(v.mfa_delete().is_none());

    // GetBucketAcl: the owner with FULL_CONTROL.
    let acl = c
        .get_bucket_acl()
        .bucket("stubs")
        .send()
        .await
        .expect("get_bucket_acl");
    let owner = acl.owner().expect("acl owner");
    assert!(
        owner.id().is_some_and(|s| !s.is_empty()),
        "owner without ID: {owner:?}"
    );
    assert!(
        acl.grants()
            .iter()
            .any(|g| g.permission().map(|p| p.as_str()) == Some("FULL_CONTROL")),
        "no FULL_CONTROL grant: {:?}",
        acl.grants()
    );

    // Stubs also answer NoSuchBucket for missing buckets.
    sdk_err(c.get_bucket_versioning().bucket("nobucket").send().await).assert(404, "NoSuchBucket");
    sdk_err(c.get_bucket_acl().bucket("nobucket").send().await).assert(404, "NoSuchBucket");

    // CreateBucket with a canned private ACL is accepted.
    c.create_bucket()
        .bucket("private-one")
        .acl(s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .expect("create_bucket with x-amz-acl: private");
    c.head_bucket().bucket("private-one").send().await.unwrap();
});

storage_test!(buckets_survive_restart, |srv| async move {
    let mut srv = srv;
    {
        let c = srv.client();
        create_bucket(&c, "persist").await;
        create_bucket(&c, "gone").await;
        c.delete_bucket().bucket("gone").send().await.unwrap();
    }
    srv.restart().await;
    let c = srv.client();
    c.head_bucket()
        .bucket("persist")
        .send()
        .await
        .expect("bucket survives restart");
    sdk_err(c.head_bucket().bucket("gone").send().await).assert(404, "");
});

// ListBuckets pages with `max-buckets` and `continuation-token`, filtered by `prefix`
// (issue 8, item 5).
storage_test!(list_buckets_pages, |srv| async move {
    let c = srv.client();
    let want = ["pg-a", "pg-b", "pg-c", "pg-d", "pg-e"];
    for b in want.iter().chain(&["other-x"]) {
        create_bucket(&c, b).await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = c
            .list_buckets()
            .prefix("pg-")
            .max_buckets(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("list_buckets page");
        pages += 1;
        assert!(out.buckets().len() <= 2, "page of {}", out.buckets().len());
        assert_eq!(out.prefix(), Some("pg-"));
        names.extend(
            out.buckets()
                .iter()
                .filter_map(|b| b.name().map(String::from)),
        );
        token = out.continuation_token().map(String::from);
        if token.is_none() || pages > 5 {
            break;
        }
    }
    assert_eq!(names, want);
    assert_eq!(pages, 3);
    // Without parameters: everything in one page, no token.
    let all = c.list_buckets().send().await.unwrap();
    assert!(all.continuation_token().is_none());
    assert_eq!(all.buckets().len(), 6);
    for bad in ["0", "10001", "many"] {
        srv.raw(Method::GET, "/")
            .query("max-buckets", bad)
            .send()
            .await
            .assert_error(400, "InvalidArgument");
    }
});
