//! Bucket policies with AWS semantics (issue 8): Resource matching, NotAction/NotResource/
//! NotPrincipal, wildcards, every Condition operator and key, MalformedPolicy naming what is
//! wrong, GetBucketPolicy as stored, and the effective policy over the admin API and the CLI.

mod common;
use common::*;

use s3::types::MetadataDirective;
use serde_json::{Value, json};

async fn admin_token(srv: &Server, id: &str, secret: &str) -> String {
    let r = srv
        .http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(json!({"client_id": id, "client_secret": secret}).to_string())
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status().as_u16(), 200, "token");
    let v: Value = serde_json::from_str(&r.text().await.expect("body")).expect("token json");
    v["access_token"].as_str().expect("access_token").to_owned()
}

/// An admin API call with the root account's token: (status, JSON body).
async fn api(srv: &Server, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let tok = admin_token(srv, srv.access_key(), srv.secret_key()).await;
    let mut rb = srv
        .http()
        .request(method, format!("{}{path}", srv.admin_url()))
        .bearer_auth(tok);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.expect("admin request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A service account with `role`; its S3 client.
async fn account(srv: &Server, name: &str, role: &str) -> s3::Client {
    let (st, v) = api(
        srv,
        Method::POST,
        "/api/v1/service-accounts",
        Some(json!({"name": name, "role": role})),
    )
    .await;
    assert!((200..300).contains(&st), "{st} {v}");
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    srv.client_with(&s("client_id"), &s("client_secret"))
}

async fn set_policy(c: &s3::Client, bucket: &str, doc: &Value) {
    c.put_bucket_policy()
        .bucket(bucket)
        .policy(doc.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put policy {doc}: {e:?}"));
}

fn doc(statements: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

async fn exists(c: &s3::Client, bucket: &str, key: &str) -> bool {
    c.head_object().bucket(bucket).key(key).send().await.is_ok()
}

storage_test!(
    resource_selects_objects_not_the_whole_bucket,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "docs").await;
        for k in ["public/a", "private/a", "locked/x", "open/x"] {
            put(&c, "docs", k, k).await;
        }
        let reader = account(&srv, "reader", "readonly").await;

        // An Allow on docs/public/* lets a readonly account write there, and nowhere else.
        set_policy(
            &c,
            "docs",
            &doc(json!([{"Effect": "Allow", "Principal": {"AWS": "reader"},
            "Action": "s3:PutObject", "Resource": "arn:aws:s3:::docs/public/*"}])),
        )
        .await;
        put(&reader, "docs", "public/new", "by reader").await;
        let f = sdk_err(
            reader
                .put_object()
                .bucket("docs")
                .key("private/a")
                .body(ByteStream::from_static(b"overwrite"))
                .send()
                .await,
        );
        f.assert(403, "AccessDenied");
        assert!(f.message.contains("not allowed to s3:PutObject"), "{f:#?}");
        assert_eq!(get(&c, "docs", "private/a").await, b"private/a");
        sdk_err(
            reader
                .put_object()
                .bucket("docs")
                .key("elsewhere")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        )
        .assert(403, "AccessDenied");
        assert!(!exists(&c, "docs", "elsewhere").await);

        // A Deny on docs/locked/* denies that prefix only, even to the admin.
        set_policy(
            &c,
            "docs",
            &doc(
                json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": ["arn:aws:s3:::docs/locked/*"]}]),
            ),
        )
        .await;
        let f = sdk_err(c.get_object().bucket("docs").key("locked/x").send().await);
        f.assert(403, "AccessDenied");
        assert!(
            f.message
                .starts_with("the bucket policy of storage element 'docs' denies s3:GetObject to"),
            "{f:#?}"
        );
        sdk_err(
            c.delete_object()
                .bucket("docs")
                .key("locked/x")
                .send()
                .await,
        )
        .assert(403, "AccessDenied");
        // Still stored (read from disk: the policy denies every access to it).
        let on_disk = srv
            .object_on_disk("docs", "locked/x")
            .expect("locked/x still stored");
        assert_eq!(on_disk.data_bytes(), b"locked/x");
        assert_eq!(get(&c, "docs", "open/x").await, b"open/x");
        put(&c, "docs", "open/y", "fine").await;
        let listed = c
            .list_objects_v2()
            .bucket("docs")
            .send()
            .await
            .expect("list is a bucket action: not denied");
        assert_eq!(listed.key_count(), Some(6));

        // The bucket ARN names the bucket: ListBucket is denied, object reads are not.
        set_policy(
            &c,
            "docs",
            &doc(
                json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::docs"}]),
            ),
        )
        .await;
        sdk_err(c.list_objects_v2().bucket("docs").send().await).assert(403, "AccessDenied");
        assert_eq!(get(&c, "docs", "locked/x").await, b"locked/x");
    }
);

storage_test!(
    not_action_not_resource_not_principal_and_wildcards,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "nots").await;
        put(&c, "nots", "open/a", "a").await;
        put(&c, "nots", "shut/a", "s").await;
        let alice = account(&srv, "alice", "user").await;

        // NotAction: everything but reads is denied.
        set_policy(
            &c,
            "nots",
            &doc(
                json!([{"Effect": "Deny", "Principal": "*", "NotAction": "s3:Get*",
            "Resource": "arn:aws:s3:::nots/*"}]),
            ),
        )
        .await;
        assert_eq!(get(&c, "nots", "open/a").await, b"a");
        sdk_err(
            c.put_object()
                .bucket("nots")
                .key("open/a")
                .body(ByteStream::from_static(b"changed"))
                .send()
                .await,
        )
        .assert(403, "AccessDenied");
        assert_eq!(get(&c, "nots", "open/a").await, b"a");

        // NotResource: reads outside open/ are denied.
        set_policy(
            &c,
            "nots",
            &doc(
                json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
            "NotResource": ["arn:aws:s3:::nots/open/*", "arn:aws:s3:::nots"]}]),
            ),
        )
        .await;
        assert_eq!(get(&c, "nots", "open/a").await, b"a");
        sdk_err(c.get_object().bucket("nots").key("shut/a").send().await)
            .assert(403, "AccessDenied");

        // NotPrincipal: everyone but alice is denied.
        set_policy(
        &c,
        "nots",
        &doc(json!([{"Effect": "Deny", "NotPrincipal": {"AWS": ["alice"]}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::nots/*"}])),
    )
    .await;
        sdk_err(c.get_object().bucket("nots").key("open/a").send().await)
            .assert(403, "AccessDenied");
        assert_eq!(get(&alice, "nots", "shut/a").await, b"s");

        // Action wildcards: `*`, `s3:*`, `s3:Get*`, `s3:?etObject`; tagging is an action too.
        for pattern in [
            "*",
            "s3:*",
            "s3:Get*",
            "s3:?etObject",
            "s3:GetObjectTagging",
        ] {
            set_policy(
            &c,
            "nots",
            &doc(json!([{"Effect": "Deny", "Principal": "*", "Action": pattern, "Resource": "arn:aws:s3:::nots/*"}])),
        )
        .await;
            let tagging = c
                .get_object_tagging()
                .bucket("nots")
                .key("open/a")
                .send()
                .await;
            let read = c.get_object().bucket("nots").key("open/a").send().await;
            if pattern == "s3:GetObjectTagging" {
                sdk_err(tagging).assert(403, "AccessDenied");
                assert!(read.is_ok(), "{pattern}");
            } else if pattern == "s3:?etObject" {
                assert!(tagging.is_ok(), "{pattern}");
                sdk_err(read).assert(403, "AccessDenied");
            } else {
                sdk_err(tagging).assert(403, "AccessDenied");
                sdk_err(read).assert(403, "AccessDenied");
            }
        }
        // A policy that denies everything still lets the admin remove it (as S3's root user).
        set_policy(
            &c,
            "nots",
            &doc(json!([{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}])),
        )
        .await;
        sdk_err(c.get_object().bucket("nots").key("open/a").send().await)
            .assert(403, "AccessDenied");
        sdk_err(c.get_bucket_policy().bucket("nots").send().await).assert(403, "AccessDenied");
        c.delete_bucket_policy()
            .bucket("nots")
            .send()
            .await
            .expect("the admin removes a lock-out policy");
        assert_eq!(get(&c, "nots", "open/a").await, b"a");
    }
);

/// The request a condition row is tried with.
#[derive(Clone, Copy, Debug)]
enum Req {
    /// GetObject of `k`.
    Get,
    /// ListObjectsV2 with prefix `home/`, delimiter `/`, max-keys 100.
    List,
    /// CopyObject of `cond/src` to a new key with `REPLACE`.
    Copy,
    /// PutObject of a new key with tags `team=blue&env=prod`.
    PutTagged,
}

impl Req {
    fn action(self) -> &'static str {
        match self {
            Req::Get => "s3:GetObject",
            Req::List => "s3:ListBucket",
            Req::Copy | Req::PutTagged => "s3:PutObject",
        }
    }
}

/// Runs the request; `Ok` or the S3 error code. Writes go to `target`.
async fn attempt(c: &s3::Client, req: Req, target: &str) -> Result<(), String> {
    let code = |e: SdkFail| Err(format!("{} {}", e.status, e.code));
    match req {
        Req::Get => match c.get_object().bucket("cond").key("k").send().await {
            Ok(_) => Ok(()),
            r @ Err(_) => code(sdk_err(r)),
        },
        Req::List => match c
            .list_objects_v2()
            .bucket("cond")
            .prefix("home/")
            .delimiter("/")
            .max_keys(100)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            r @ Err(_) => code(sdk_err(r)),
        },
        Req::Copy => match c
            .copy_object()
            .bucket("cond")
            .key(target)
            .copy_source("cond/src")
            .metadata_directive(MetadataDirective::Replace)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            r @ Err(_) => code(sdk_err(r)),
        },
        Req::PutTagged => match c
            .put_object()
            .bucket("cond")
            .key(target)
            .tagging("team=blue&env=prod")
            .body(ByteStream::from_static(b"tagged"))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            r @ Err(_) => code(sdk_err(r)),
        },
    }
}

storage_test!(
    every_condition_operator_and_key_allows_and_denies,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "cond").await;
        put(&c, "cond", "k", "value").await;
        put(&c, "cond", "src", "source").await;
        // (operator, key, a value for which the condition holds, one for which it does not, request)
        let rows: &[(&str, &str, Value, Value, Req)] = &[
            (
                "StringEquals",
                "aws:username",
                json!("admin"),
                json!("nobody"),
                Req::Get,
            ),
            (
                "StringNotEquals",
                "aws:username",
                json!("nobody"),
                json!("admin"),
                Req::Get,
            ),
            (
                "StringEqualsIgnoreCase",
                "aws:username",
                json!("ADMIN"),
                json!("nobody"),
                Req::Get,
            ),
            (
                "StringNotEqualsIgnoreCase",
                "aws:username",
                json!("NOBODY"),
                json!("Admin"),
                Req::Get,
            ),
            (
                "StringLike",
                "aws:username",
                json!("ad*"),
                json!("no*"),
                Req::Get,
            ),
            (
                "StringNotLike",
                "aws:username",
                json!("no?ody"),
                json!("?dmin"),
                Req::Get,
            ),
            (
                "StringLike",
                "aws:userid",
                json!("*"),
                json!("no-such-id"),
                Req::Get,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                json!("127.0.0.0/8"),
                json!("10.0.0.0/8"),
                Req::Get,
            ),
            (
                "NotIpAddress",
                "aws:SourceIp",
                json!(["10.0.0.0/8", "192.168.0.0/16"]),
                json!("127.0.0.1/32"),
                Req::Get,
            ),
            (
                "Bool",
                "aws:SecureTransport",
                json!("false"),
                json!("true"),
                Req::Get,
            ),
            (
                "DateGreaterThan",
                "aws:CurrentTime",
                json!("2020-01-01T00:00:00Z"),
                json!("2999-01-01T00:00:00Z"),
                Req::Get,
            ),
            (
                "DateGreaterThanEquals",
                "aws:CurrentTime",
                json!("2020-01-01"),
                json!("2999-01-01"),
                Req::Get,
            ),
            (
                "DateLessThan",
                "aws:CurrentTime",
                json!("2999-01-01T00:00:00Z"),
                json!("2020-01-01T00:00:00Z"),
                Req::Get,
            ),
            (
                "DateLessThanEquals",
                "aws:CurrentTime",
                json!("2999-01-01"),
                json!("2020-01-01"),
                Req::Get,
            ),
            (
                "DateNotEquals",
                "aws:CurrentTime",
                json!("2020-01-01T00:00:00Z"),
                json!([]),
                Req::Get,
            ),
            (
                "DateEquals",
                "aws:CurrentTime",
                json!([]),
                json!("2020-01-01T00:00:00Z"),
                Req::Get,
            ),
            (
                "Null",
                "s3:ExistingObjectTag/class",
                json!("true"),
                json!("false"),
                Req::Get,
            ),
            (
                "StringNotEquals",
                "s3:ExistingObjectTag/class",
                json!("secret"),
                json!([]),
                Req::Get,
            ),
            (
                "StringEquals",
                "s3:prefix",
                json!("home/"),
                json!("work/"),
                Req::List,
            ),
            (
                "StringEquals",
                "s3:delimiter",
                json!("/"),
                json!("-"),
                Req::List,
            ),
            (
                "NumericEquals",
                "s3:max-keys",
                json!("100"),
                json!("10"),
                Req::List,
            ),
            (
                "NumericNotEquals",
                "s3:max-keys",
                json!(10),
                json!(100),
                Req::List,
            ),
            (
                "NumericLessThan",
                "s3:max-keys",
                json!("101"),
                json!("100"),
                Req::List,
            ),
            (
                "NumericLessThanEquals",
                "s3:max-keys",
                json!("100"),
                json!("99"),
                Req::List,
            ),
            (
                "NumericGreaterThan",
                "s3:max-keys",
                json!("99"),
                json!("100"),
                Req::List,
            ),
            (
                "NumericGreaterThanEquals",
                "s3:max-keys",
                json!("100"),
                json!("101"),
                Req::List,
            ),
            (
                "StringLikeIfExists",
                "s3:prefix",
                json!("ho*"),
                json!("wo*"),
                Req::List,
            ),
            (
                "StringEquals",
                "s3:x-amz-metadata-directive",
                json!("REPLACE"),
                json!("COPY"),
                Req::Copy,
            ),
            (
                "StringEquals",
                "s3:x-amz-copy-source",
                json!("cond/src"),
                json!("cond/other"),
                Req::Copy,
            ),
            (
                "Null",
                "s3:x-amz-copy-source",
                json!(false),
                json!(true),
                Req::Copy,
            ),
            (
                "StringEquals",
                "s3:RequestObjectTag/team",
                json!("blue"),
                json!("red"),
                Req::PutTagged,
            ),
            (
                "ForAnyValue:StringEquals",
                "s3:RequestObjectTagKeys",
                json!(["env", "x"]),
                json!(["x"]),
                Req::PutTagged,
            ),
            (
                "ForAllValues:StringEquals",
                "s3:RequestObjectTagKeys",
                json!(["team", "env"]),
                json!(["team"]),
                Req::PutTagged,
            ),
            (
                "StringEqualsIfExists",
                "s3:RequestObjectTag/team",
                json!("blue"),
                json!("red"),
                Req::PutTagged,
            ),
        ];
        let mut n = 0;
        for (op, key, holds, fails, req) in rows {
            let statement = |v: &Value| {
                // An empty list stands for "no value can make it fail" and is skipped.
                doc(
                    json!([{"Effect": "Deny", "Principal": "*", "Action": req.action(), "Resource": "*",
                "Condition": {*op: {*key: v}}}]),
                )
            };
            let row = format!("{op} {key} ({req:?})");
            if holds != &json!([]) {
                n += 1;
                let target = format!("t{n}");
                set_policy(&c, "cond", &statement(holds)).await;
                assert_eq!(
                    attempt(&c, *req, &target).await,
                    Err("403 AccessDenied".to_owned()),
                    "denied: {row} {holds}"
                );
                assert!(!exists(&c, "cond", &target).await, "nothing written: {row}");
            }
            if fails != &json!([]) {
                n += 1;
                let target = format!("t{n}");
                set_policy(&c, "cond", &statement(fails)).await;
                assert_eq!(
                    attempt(&c, *req, &target).await,
                    Ok(()),
                    "allowed: {row} {fails}"
                );
            }
        }
        // An Allow with a condition: a readonly account may write only what is tagged team=blue.
        let reader = account(&srv, "reader", "readonly").await;
        set_policy(
            &c,
            "cond",
            &doc(
                json!([{"Effect": "Allow", "Principal": {"AWS": "reader"}, "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::cond/*",
            "Condition": {"StringEquals": {"s3:RequestObjectTag/team": "blue"}}}]),
            ),
        )
        .await;
        assert_eq!(attempt(&reader, Req::PutTagged, "by-reader").await, Ok(()));
        let f = sdk_err(
            reader
                .put_object()
                .bucket("cond")
                .key("untagged")
                .body(ByteStream::from_static(b"x"))
                .send()
                .await,
        );
        f.assert(403, "AccessDenied");
        assert!(!exists(&c, "cond", "untagged").await);
    }
);

storage_test!(
    malformed_policies_name_the_problem_and_change_nothing,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "strict").await;
        let stored = doc(json!([{"Sid": "Keep", "Effect": "Deny", "Principal": "*",
        "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::strict/*"}]));
        set_policy(&c, "strict", &stored).await;
        let stmt = |cond: Value| {
            doc(
                json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "*", "Condition": cond}]),
            )
        };
        let cases = [
            (
                stmt(json!({"StringSorta": {"aws:username": "x"}})),
                "'StringSorta'",
            ),
            (
                stmt(json!({"StringEquals": {"aws:shoeSize": "x"}})),
                "'aws:shoeSize'",
            ),
            (
                stmt(json!({"NumericLessThan": {"s3:max-keys": "many"}})),
                "'many'",
            ),
            (
                stmt(json!({"IpAddress": {"aws:SourceIp": "not-an-ip"}})),
                "'not-an-ip'",
            ),
            (
                doc(
                    json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:Launch*", "Resource": "*"}]),
                ),
                "'s3:Launch*'",
            ),
            (
                doc(json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}])),
                "Resource or NotResource",
            ),
            (
                doc(
                    json!([{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}]),
                ),
                "outside bucket",
            ),
        ];
        for (bad, needle) in cases {
            let f = sdk_err(
                c.put_bucket_policy()
                    .bucket("strict")
                    .policy(bad.to_string())
                    .send()
                    .await,
            );
            f.assert(400, "MalformedPolicy");
            assert!(f.message.contains(needle), "{needle}: {f:#?}");
            let now = c
                .get_bucket_policy()
                .bucket("strict")
                .send()
                .await
                .expect("policy");
            let v: Value = serde_json::from_str(now.policy().unwrap_or_default()).expect("json");
            assert_eq!(v, stored, "unchanged after {bad}");
        }
    }
);

storage_test!(
    get_bucket_policy_returns_the_stored_document,
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "kept").await;
        sdk_err(c.get_bucket_policy().bucket("kept").send().await)
            .assert(404, "NoSuchBucketPolicy");
        // Field order, a single statement object and a Condition survive as set.
        let text = r#"{"Statement":{"Resource":"arn:aws:s3:::kept/*","Action":["s3:GetObject"],"Principal":"*","Effect":"Deny","Condition":{"Bool":{"aws:SecureTransport":"true"}}},"Id":"mine","Version":"2012-10-17"}"#;
        c.put_bucket_policy()
            .bucket("kept")
            .policy(text)
            .send()
            .await
            .expect("put");
        let got = c
            .get_bucket_policy()
            .bucket("kept")
            .send()
            .await
            .expect("get");
        let got: Value = serde_json::from_str(got.policy().unwrap_or_default()).expect("json");
        let want: Value = serde_json::from_str(text).expect("json");
        assert_eq!(got, want);
        c.delete_bucket_policy()
            .bucket("kept")
            .send()
            .await
            .expect("delete");
        sdk_err(c.get_bucket_policy().bucket("kept").send().await)
            .assert(404, "NoSuchBucketPolicy");
    }
);

storage_test!(
    effective_policy_over_admin_api_and_cli_and_mode_wins,
    |srv| async move {
        let c = srv.client();
        let (st, v) = api(
            &srv,
            Method::POST,
            "/api/v1/storage-elements",
            Some(json!({"name": "sealed", "mode": "rw"})),
        )
        .await;
        assert_eq!(st, 201, "{v}");
        put(&c, "sealed", "a", "alpha").await;
        let (st, v) = api(
            &srv,
            Method::POST,
            "/api/v1/storage-elements/sealed/mode",
            Some(json!({"mode": "ro"})),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        // No stored policy: GetBucketPolicy says so, although the mode denies writes.
        sdk_err(c.get_bucket_policy().bucket("sealed").send().await)
            .assert(404, "NoSuchBucketPolicy");
        let stored = doc(
            json!([{"Sid": "Everything", "Effect": "Allow", "Principal": "*",
        "Action": "s3:*", "Resource": ["arn:aws:s3:::sealed", "arn:aws:s3:::sealed/*"]}]),
        );
        set_policy(&c, "sealed", &stored).await;
        // The Allow cannot override the mode's Deny.
        let f = sdk_err(
            c.put_object()
                .bucket("sealed")
                .key("a")
                .body(ByteStream::from_static(b"changed"))
                .send()
                .await,
        );
        f.assert(403, "AccessDenied");
        assert_eq!(
            f.message,
            "storage element 'sealed' is in mode ro: objects cannot be created or changed"
        );
        sdk_err(c.delete_object().bucket("sealed").key("a").send().await)
            .assert(403, "AccessDenied");
        assert_eq!(get(&c, "sealed", "a").await, b"alpha");

        let (st, eff) = api(
            &srv,
            Method::GET,
            "/api/v1/storage-elements/sealed/policy",
            None,
        )
        .await;
        assert_eq!(st, 200, "{eff}");
        let sids: Vec<&str> = eff["Statement"]
            .as_array()
            .expect("statements")
            .iter()
            .filter_map(|s| s["Sid"].as_str())
            .collect();
        assert_eq!(
            sids,
            vec!["ModeDenyWriteRO", "ModeDenyDeleteRO", "Everything"],
            "{eff}"
        );
        assert_eq!(eff["Statement"][2], stored["Statement"][0]);
        assert_eq!(eff["Statement"][0]["Effect"], "Deny");
        assert_eq!(
            eff["Statement"][0]["Action"],
            json!([
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:DeleteObjectTagging"
            ])
        );
        let (st, err) = api(
            &srv,
            Method::GET,
            "/api/v1/storage-elements/nothere/policy",
            None,
        )
        .await;
        assert_eq!(st, 404, "{err}");
        assert_eq!(err["error"], "not_found", "{err}");

        // An auditor may read it too; a user may not.
        let (st, v) = api(
            &srv,
            Method::POST,
            "/api/v1/service-accounts",
            Some(json!({"name": "aud", "role": "auditor"})),
        )
        .await;
        assert!((200..300).contains(&st), "{v}");
        let tok = admin_token(
            &srv,
            v["client_id"].as_str().expect("id"),
            v["client_secret"].as_str().expect("secret"),
        )
        .await;
        let r = srv
            .http()
            .get(format!(
                "{}/api/v1/storage-elements/sealed/policy",
                srv.admin_url()
            ))
            .bearer_auth(tok)
            .send()
            .await
            .expect("auditor request");
        assert_eq!(r.status().as_u16(), 200);
        let by_auditor: Value =
            serde_json::from_str(&r.text().await.unwrap_or_default()).expect("json");
        assert_eq!(by_auditor, eff);

        // `artstore element show` prints the same document.
        let (ok, out, err) = srv.cli(&["element", "show", "sealed"]);
        assert!(ok, "{err}");
        let shown: Value = serde_json::from_str(&out).expect("show output");
        assert_eq!(shown["policy"], eff);
    }
);

storage_test!(existing_object_tags_drive_conditions, |srv| async move {
    // s3:ExistingObjectTag/<k> reads the tags stored with the object, as they are when the
    // request is decided: a Deny on tagged objects bites, and lifting the tag lifts it.
    let c = srv.client();
    create_bucket(&c, "tagged").await;
    c.put_object()
        .bucket("tagged")
        .key("plan.pdf")
        .tagging("class=secret")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"plan"))
        .send()
        .await
        .expect("put tagged");
    put(&c, "tagged", "menu.pdf", "menu").await;
    let reader = account(&srv, "reader", "readonly").await;
    set_policy(
        &c,
        "tagged",
        &doc(json!([{
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::tagged/*",
            "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "secret"}}
        }])),
    )
    .await;
    sdk_err(
        reader
            .get_object()
            .bucket("tagged")
            .key("plan.pdf")
            .send()
            .await,
    )
    .assert(403, "AccessDenied");
    assert_eq!(get(&reader, "tagged", "menu.pdf").await, b"menu");
    c.delete_object_tagging()
        .bucket("tagged")
        .key("plan.pdf")
        .send()
        .await
        .expect("untag");
    assert_eq!(get(&reader, "tagged", "plan.pdf").await, b"plan");
});
