//! Abandoned uploads expire (issue 10, item 5): Put/Get/DeleteBucketLifecycleConfiguration with
//! `AbortIncompleteMultipartUpload` rules (aws-sdk-s3 and aws-cli), every other rule and every
//! malformed document refused with nothing stored, who may change it, element.json and `index
//! rebuild`, and the background sweep: old uploads aborted with their parts, young ones and
//! completed objects untouched, rules overriding the default age, and a Complete racing the
//! sweep either winning entirely or getting NoSuchUpload.

mod common;
use common::*;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, CompletedMultipartUpload,
    CompletedPart, ExpirationStatus, LifecycleRule, LifecycleRuleFilter,
};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
/// Generous: the sweeps under test run every 100 ms or less.
const DEADLINE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn rule(id: &str, prefix: &str, days: i32, enabled: bool) -> LifecycleRule {
    LifecycleRule::builder()
        .id(id)
        .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
        .status(if enabled {
            ExpirationStatus::Enabled
        } else {
            ExpirationStatus::Disabled
        })
        .abort_incomplete_multipart_upload(
            AbortIncompleteMultipartUpload::builder()
                .days_after_initiation(days)
                .build(),
        )
        .build()
        .expect("rule")
}

async fn put_rules(c: &s3::Client, bucket: &str, rules: Vec<LifecycleRule>) {
    c.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("put lifecycle on {bucket}: {e:?}"));
}

/// The rules as GetBucketLifecycleConfiguration returns them: (id, prefix, days, enabled).
async fn rules_of(c: &s3::Client, bucket: &str) -> Vec<(String, String, i32, bool)> {
    let out = c
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get lifecycle of {bucket}: {e:?}"));
    out.rules()
        .iter()
        .map(|r| {
            let prefix = r
                .filter()
                .and_then(|f| f.prefix().map(str::to_owned))
                .or_else(|| rule_level_prefix(r))
                .unwrap_or_default();
            (
                r.id().unwrap_or_default().to_owned(),
                prefix,
                r.abort_incomplete_multipart_upload()
                    .and_then(|a| a.days_after_initiation())
                    .unwrap_or_default(),
                r.status() == &ExpirationStatus::Enabled,
            )
        })
        .collect()
}

/// The deprecated rule-level `<Prefix>`.
#[allow(deprecated)]
fn rule_level_prefix(r: &LifecycleRule) -> Option<String> {
    r.prefix().map(str::to_owned)
}

/// The lifecycle section of the element's element.json.
fn element_json_lifecycle(srv: &Server, bucket: &str) -> Value {
    let path = srv.element_dir(bucket).join("element.json");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("element.json")).expect("JSON");
    doc["lifecycle"].clone()
}

/// A PutBucketLifecycleConfiguration with a hand-written document.
async fn put_raw(srv: &Server, bucket: &str, xml: &str) -> RawResponse {
    srv.raw(Method::PUT, &format!("/{bucket}"))
        .query("lifecycle", "")
        .header("content-md5", &md5_b64(xml.as_bytes()))
        .body(xml.as_bytes().to_vec())
        .send()
        .await
}

fn xml_rule(body: &str) -> String {
    format!("<Rule>{body}</Rule>")
}

fn xml_doc(rules: &[String]) -> String {
    format!(
        r#"<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{}</LifecycleConfiguration>"#,
        rules.concat()
    )
}

const ABORT_7: &str = "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7</DaysAfterInitiation></AbortIncompleteMultipartUpload>";

fn completed(parts: &[(i32, String)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(e).build())
                .collect(),
        ))
        .build()
}

/// Upload ids ListMultipartUploads shows in `bucket`.
async fn upload_ids(c: &s3::Client, bucket: &str) -> Vec<String> {
    c.list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .expect("list_multipart_uploads")
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id().map(str::to_owned))
        .collect()
}

/// Part directories of the element's uploads (what Abort must remove).
fn upload_dirs(srv: &Server, bucket: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk_files(&srv.element_dir(bucket)) {
        if let Some(dir) = e.parent()
            && dir
                .parent()
                .and_then(|p| p.file_name())
                .is_some_and(|n| n.to_string_lossy().contains("multipart"))
            && !out.contains(&dir.to_path_buf())
        {
            out.push(dir.to_path_buf());
        }
    }
    out
}

fn has_upload_files(srv: &Server, bucket: &str, upload_id: &str) -> bool {
    upload_dirs(srv, bucket).iter().any(|d| {
        d.file_name()
            .is_some_and(|n| n.to_string_lossy() == upload_id)
    })
}

/// Sets an upload's initiation time `age` into the past, as if it had been begun then.
async fn age_upload(srv: &Server, upload_id: &str, age: Duration) {
    let mut conn = srv.index_conn().await;
    let when = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .saturating_sub(age)
            .as_millis(),
    )
    .unwrap();
    let res = sqlx::query("UPDATE multipart_uploads SET created_ms = $1 WHERE upload_id = $2")
        .bind(when)
        .bind(upload_id)
        .execute(&mut conn)
        .await
        .expect("age upload");
    assert_eq!(
        res.rows_affected(),
        1,
        "upload {upload_id} not in the index"
    );
}

/// `artstore_multipart_uploads_expired_total` from /metrics.
async fn expired_metric(srv: &Server) -> u64 {
    let text = srv
        .http()
        .get(format!("{}/metrics", srv.admin_url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix("artstore_multipart_uploads_expired_total "))
        .unwrap_or_else(|| panic!("no expiry counter in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("counter value")
}

async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admin_api(srv: &Server, method: Method, path: &str, body: Value) -> (u16, Value) {
    let r = srv
        .http()
        .post(format!("{}/api/v1/auth/token", srv.admin_url()))
        .header("content-type", "application/json")
        .body(json!({"client_id": srv.access_key(), "client_secret": srv.secret_key()}).to_string())
        .send()
        .await
        .expect("token request");
    let v: Value = serde_json::from_str(&r.text().await.expect("body")).expect("token json");
    let tok = v["access_token"].as_str().expect("access_token").to_owned();
    let r = srv
        .http()
        .request(method, format!("{}{path}", srv.admin_url()))
        .bearer_auth(tok)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("admin request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn account(srv: &Server, name: &str, role: &str) -> s3::Client {
    let (st, v) = admin_api(
        srv,
        Method::POST,
        "/api/v1/service-accounts",
        json!({"name": name, "role": role}),
    )
    .await;
    assert!((200..300).contains(&st), "{st} {v}");
    srv.client_with(
        v["client_id"].as_str().expect("client_id"),
        v["client_secret"].as_str().expect("client_secret"),
    )
}

// ---------------------------------------------------------------------------------------------
// the configuration
// ---------------------------------------------------------------------------------------------

storage_test!(put_get_delete_round_trip, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "lcyc").await;
    sdk_err(
        c.get_bucket_lifecycle_configuration()
            .bucket("lcyc")
            .send()
            .await,
    )
    .assert(404, "NoSuchLifecycleConfiguration");
    assert_eq!(element_json_lifecycle(&srv, "lcyc"), Value::Null);

    put_rules(
        &c,
        "lcyc",
        vec![rule("tmp", "tmp/", 1, true), rule("all", "", 30, false)],
    )
    .await;
    assert_eq!(
        rules_of(&c, "lcyc").await,
        vec![
            ("tmp".into(), "tmp/".into(), 1, true),
            ("all".into(), "".into(), 30, false),
        ]
    );
    // Kept with the element on disk too.
    let on_disk = element_json_lifecycle(&srv, "lcyc");
    assert_eq!(on_disk["rules"][0]["prefix"], "tmp/", "{on_disk}");
    assert_eq!(on_disk["rules"][1]["enabled"], false, "{on_disk}");

    // A new configuration replaces the old one whole.
    put_rules(&c, "lcyc", vec![rule("logs", "logs/", 3, true)]).await;
    assert_eq!(
        rules_of(&c, "lcyc").await,
        vec![("logs".into(), "logs/".into(), 3, true)]
    );

    // The deprecated rule-level Prefix and the And filter come back in the form given.
    let xml = xml_doc(&[
        xml_rule(&format!(
            "<ID>old</ID><Prefix>a/</Prefix><Status>Enabled</Status>{ABORT_7}"
        )),
        xml_rule(&format!(
            "<ID>and</ID><Filter><And><Prefix>b/</Prefix></And></Filter><Status>Enabled</Status>{ABORT_7}"
        )),
    ]);
    put_raw(&srv, "lcyc", &xml).await.assert_status(200);
    let r = srv
        .raw(Method::GET, "/lcyc")
        .query("lifecycle", "")
        .send()
        .await;
    r.assert_status(200);
    let body = r.text();
    assert!(body.contains("<ID>old</ID><Prefix>a/</Prefix>"), "{body}");
    assert!(body.contains("<And><Prefix>b/</Prefix></And>"), "{body}");
    assert_eq!(
        xml_all(&body, "DaysAfterInitiation"),
        vec!["7", "7"],
        "{body}"
    );

    let out = c
        .delete_bucket_lifecycle()
        .bucket("lcyc")
        .send()
        .await
        .expect("delete lifecycle");
    drop(out);
    sdk_err(
        c.get_bucket_lifecycle_configuration()
            .bucket("lcyc")
            .send()
            .await,
    )
    .assert(404, "NoSuchLifecycleConfiguration");
    assert_eq!(element_json_lifecycle(&srv, "lcyc"), Value::Null);
    // Deleting what is not there is fine, as in S3.
    c.delete_bucket_lifecycle()
        .bucket("lcyc")
        .send()
        .await
        .expect("delete again");

    // No bucket, no configuration.
    sdk_err(
        c.get_bucket_lifecycle_configuration()
            .bucket("nope")
            .send()
            .await,
    )
    .assert(404, "NoSuchBucket");
    let r = put_raw(
        &srv,
        "nope",
        &xml_doc(&[xml_rule(&format!(
            "<Filter><Prefix></Prefix></Filter><Status>Enabled</Status>{ABORT_7}"
        ))]),
    )
    .await;
    r.assert_error(404, "NoSuchBucket");
});

storage_test!(round_trip_with_aws_cli, |srv| async move {
    if !require_tool("aws") {
        return;
    }
    let c = srv.client();
    create_bucket(&c, "cli").await;
    let home = tempfile::tempdir().expect("tempdir");
    let doc = json!({"Rules": [{
        "ID": "abandoned",
        "Filter": {"Prefix": "uploads/"},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}
    }]});
    let file = home.path().join("lifecycle.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let aws = |args: Vec<String>| {
        let mut cmd = std::process::Command::new("aws");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", home.path())
            .env("AWS_CONFIG_FILE", home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                home.path().join("credentials"),
            )
            .envs(srv.tool_env())
            .arg("--endpoint-url")
            .arg(srv.s3_url())
            .args(args)
            .output()
            .expect("run aws")
    };
    let out = aws(vec![
        "s3api".into(),
        "put-bucket-lifecycle-configuration".into(),
        "--bucket".into(),
        "cli".into(),
        "--lifecycle-configuration".into(),
        format!("file://{}", file.display()),
    ]);
    assert!(
        out.status.success(),
        "put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = aws(vec![
        "s3api".into(),
        "get-bucket-lifecycle-configuration".into(),
        "--bucket".into(),
        "cli".into(),
        "--output".into(),
        "json".into(),
    ]);
    assert!(
        out.status.success(),
        "get: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("aws JSON");
    assert_eq!(got["Rules"][0]["ID"], "abandoned", "{got}");
    assert_eq!(got["Rules"][0]["Filter"]["Prefix"], "uploads/", "{got}");
    assert_eq!(got["Rules"][0]["Status"], "Enabled", "{got}");
    assert_eq!(
        got["Rules"][0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"], 2,
        "{got}"
    );
    let out = aws(vec![
        "s3api".into(),
        "delete-bucket-lifecycle".into(),
        "--bucket".into(),
        "cli".into(),
    ]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = aws(vec![
        "s3api".into(),
        "get-bucket-lifecycle-configuration".into(),
        "--bucket".into(),
        "cli".into(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NoSuchLifecycleConfiguration"), "{err}");
});

storage_test!(other_rules_are_not_implemented, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "nimpl").await;
    put_rules(&c, "nimpl", vec![rule("keep", "k/", 5, true)]).await;
    let before = rules_of(&c, "nimpl").await;
    let json_before = element_json_lifecycle(&srv, "nimpl");
    let filter = "<Filter><Prefix>x/</Prefix></Filter><Status>Enabled</Status>";
    for action in [
        "<Expiration><Days>30</Days></Expiration>",
        "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>",
        "<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays></NoncurrentVersionExpiration>",
        "<NoncurrentVersionTransition><NoncurrentDays>3</NoncurrentDays><StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>",
    ] {
        // Alone, and next to a supported action in the same rule or another rule.
        for doc in [
            xml_doc(&[xml_rule(&format!("{filter}{action}"))]),
            xml_doc(&[xml_rule(&format!("{filter}{ABORT_7}{action}"))]),
            xml_doc(&[
                xml_rule(&format!("<ID>a</ID>{filter}{ABORT_7}")),
                xml_rule(&format!("<ID>b</ID>{filter}{action}")),
            ]),
        ] {
            let r = put_raw(&srv, "nimpl", &doc).await;
            r.assert_error(501, "NotImplemented");
            assert!(
                r.text().contains("AbortIncompleteMultipartUpload"),
                "{}",
                r.text()
            );
        }
    }
    let r = srv
        .raw(Method::PUT, "/nimpl")
        .query("lifecycle", "")
        .header(
            "x-amz-transition-default-minimum-object-size",
            "all_storage_classes_128K",
        )
        .body(xml_doc(&[xml_rule(&format!("{filter}{ABORT_7}"))]).into_bytes())
        .send()
        .await;
    r.assert_error(501, "NotImplemented");
    assert_eq!(rules_of(&c, "nimpl").await, before, "nothing stored");
    assert_eq!(element_json_lifecycle(&srv, "nimpl"), json_before);
});

storage_test!(malformed_documents_are_refused, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "bad").await;
    put_rules(&c, "bad", vec![rule("keep", "k/", 5, true)]).await;
    let before = rules_of(&c, "bad").await;
    let json_before = element_json_lifecycle(&srv, "bad");
    let filter = "<Filter><Prefix>x/</Prefix></Filter>";
    let days = |d: &str| {
        format!(
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>{d}</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        )
    };
    let many: Vec<String> = (0..1001)
        .map(|i| {
            xml_rule(&format!(
                "<ID>r{i}</ID>{filter}<Status>Enabled</Status>{ABORT_7}"
            ))
        })
        .collect();
    let cases: Vec<(String, u16, &str)> = vec![
        (
            xml_doc(&[xml_rule(&format!(
                "{filter}<Status>Enabled</Status>{}",
                days("0")
            ))]),
            400,
            "InvalidArgument",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "{filter}<Status>Enabled</Status>{}",
                days("-3")
            ))]),
            400,
            "InvalidArgument",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "{filter}<Status>Enabled</Status>{}",
                days("seven")
            ))]),
            400,
            "MalformedXML",
        ),
        (
            xml_doc(&[xml_rule(&format!("{filter}{ABORT_7}"))]),
            400,
            "MalformedXML",
        ),
        (
            xml_doc(&[xml_rule(&format!("{filter}<Status>On</Status>{ABORT_7}"))]),
            400,
            "MalformedXML",
        ),
        (xml_doc(&many), 400, "MalformedXML"),
        (xml_doc(&[]), 400, "MalformedXML"),
        (
            xml_doc(&[
                xml_rule(&format!(
                    "<ID>same</ID>{filter}<Status>Enabled</Status>{ABORT_7}"
                )),
                xml_rule(&format!(
                    "<ID>same</ID><Filter><Prefix>y/</Prefix></Filter><Status>Enabled</Status>{ABORT_7}"
                )),
            ]),
            400,
            "InvalidArgument",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "<ID>{}</ID>{filter}<Status>Enabled</Status>{ABORT_7}",
                "i".repeat(256)
            ))]),
            400,
            "InvalidArgument",
        ),
        (
            xml_doc(&[xml_rule(&format!("{filter}<Status>Enabled</Status>"))]),
            400,
            "InvalidRequest",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "{filter}<Status>Enabled</Status><AbortIncompleteMultipartUpload></AbortIncompleteMultipartUpload>"
            ))]),
            400,
            "MalformedXML",
        ),
        (
            xml_doc(&[xml_rule(&format!("<Status>Enabled</Status>{ABORT_7}"))]),
            400,
            "MalformedXML",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "<Prefix>a/</Prefix>{filter}<Status>Enabled</Status>{ABORT_7}"
            ))]),
            400,
            "MalformedXML",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>{ABORT_7}"
            ))]),
            400,
            "InvalidRequest",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "<Filter><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan></Filter><Status>Enabled</Status>{ABORT_7}"
            ))]),
            400,
            "InvalidRequest",
        ),
        (
            xml_doc(&[xml_rule(&format!(
                "<Filter><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>{ABORT_7}"
            ))]),
            400,
            "MalformedXML",
        ),
        (
            "<LifecycleConfiguration><Rule>".to_owned(),
            400,
            "MalformedXML",
        ),
        ("not xml at all".to_owned(), 400, "MalformedXML"),
    ];
    for (doc, status, code) in &cases {
        let r = put_raw(&srv, "bad", doc).await;
        assert_eq!(
            (r.status, r.code()),
            (*status, code.to_string()),
            "{}: {}",
            &doc[..doc.len().min(300)],
            r.text()
        );
        assert!(!r.text().contains("<Message></Message>"), "{}", r.text());
    }
    // No body at all.
    let r = srv
        .raw(Method::PUT, "/bad")
        .query("lifecycle", "")
        .send()
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(rules_of(&c, "bad").await, before, "nothing stored");
    assert_eq!(element_json_lifecycle(&srv, "bad"), json_before);
});

storage_test!(only_admins_change_it_in_every_mode, |srv| async move {
    let c = srv.client();
    create_bucket(&c, "own").await;
    let user = account(&srv, "lc-user", "user").await;
    let reader = account(&srv, "lc-reader", "readonly").await;
    let auditor = account(&srv, "lc-auditor", "auditor").await;
    put_rules(&c, "own", vec![rule("r", "", 4, true)]).await;
    let cfg = BucketLifecycleConfiguration::builder()
        .rules(rule("mine", "", 1, true))
        .build()
        .unwrap();
    for who in [&user, &reader, &auditor] {
        sdk_err(
            who.put_bucket_lifecycle_configuration()
                .bucket("own")
                .lifecycle_configuration(cfg.clone())
                .send()
                .await,
        )
        .assert(403, "AccessDenied");
        sdk_err(who.delete_bucket_lifecycle().bucket("own").send().await)
            .assert(403, "AccessDenied");
    }
    // Reading bucket configuration is for the roles that may read bucket policies.
    assert_eq!(rules_of(&user, "own").await.len(), 1);
    assert_eq!(rules_of(&auditor, "own").await.len(), 1);
    sdk_err(
        reader
            .get_bucket_lifecycle_configuration()
            .bucket("own")
            .send()
            .await,
    )
    .assert(403, "AccessDenied");
    assert_eq!(
        rules_of(&c, "own").await,
        vec![("r".into(), "".into(), 4, true)]
    );

    // An element in ro or ar may still have its abandoned uploads expire: no document is
    // touched, and such uploads can never be completed there anyway.
    let (st, v) = admin_api(
        &srv,
        Method::POST,
        "/api/v1/storage-elements",
        json!({"name": "frozen", "mode": "rw"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    for mode in ["ro", "ar"] {
        let (st, v) = admin_api(
            &srv,
            Method::POST,
            "/api/v1/storage-elements/frozen/mode",
            json!({"mode": mode, "reason": "lifecycle test"}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        put_rules(&c, "frozen", vec![rule(mode, "", 2, true)]).await;
        assert_eq!(
            rules_of(&c, "frozen").await,
            vec![(mode.to_string(), "".into(), 2, true)]
        );
    }
});

storage_test!(index_rebuild_restores_the_configuration, |srv| async move {
    let mut srv = srv;
    let c = srv.client();
    create_bucket(&c, "rbld").await;
    put_rules(
        &c,
        "rbld",
        vec![rule("a", "a/", 2, true), rule("b", "b/", 9, false)],
    )
    .await;
    let before = rules_of(&c, "rbld").await;
    srv.stop();
    srv.rebuild_lost_index().await;
    srv.restart().await;
    assert_eq!(rules_of(&srv.client(), "rbld").await, before);
});

// ---------------------------------------------------------------------------------------------
// the sweep
// ---------------------------------------------------------------------------------------------

storage_test!(
    sweep_aborts_old_uploads_only,
    Server::builder()
        .env("ARTSTORE_MULTIPART_EXPIRY", "2s")
        .env("ARTSTORE_MULTIPART_EXPIRY_INTERVAL", "100ms"),
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "sweep").await;
        // Uploads under keep/ have a day; the rest the server's two seconds.
        put_rules(&c, "sweep", vec![rule("keep", "keep/", 1, true)]).await;
        let p1 = pattern(5 * MIB, 1);
        let p2 = pattern(1000, 2);
        // Begun first, so the sweep that removes `old` has already passed over it.
        let kept = create_upload(&c, "sweep", "keep/big").await;
        upload_part(&c, "sweep", "keep/big", &kept, 1, &p2).await;
        // A finished multipart object under keep/ (its upload had a day to complete).
        let done = create_upload(&c, "sweep", "keep/done").await;
        let e1 = upload_part(&c, "sweep", "keep/done", &done, 1, &p1).await;
        let e2 = upload_part(&c, "sweep", "keep/done", &done, 2, &p2).await;
        c.complete_multipart_upload()
            .bucket("sweep")
            .key("keep/done")
            .upload_id(&done)
            .multipart_upload(completed(&[(1, e1), (2, e2)]))
            .send()
            .await
            .expect("complete");
        let old = create_upload(&c, "sweep", "tmp/abandoned").await;
        let e_old = upload_part(&c, "sweep", "tmp/abandoned", &old, 1, &p1).await;
        assert!(has_upload_files(&srv, "sweep", &old));

        wait_for("the old upload to expire", || {
            let c = c.clone();
            let old = old.clone();
            async move { !upload_ids(&c, "sweep").await.contains(&old) }
        })
        .await;
        // Gone as after AbortMultipartUpload: index rows and part files.
        assert!(
            !has_upload_files(&srv, "sweep", &old),
            "{:?}",
            upload_dirs(&srv, "sweep")
        );
        sdk_err(
            c.list_parts()
                .bucket("sweep")
                .key("tmp/abandoned")
                .upload_id(&old)
                .send()
                .await,
        )
        .assert(404, "NoSuchUpload");
        sdk_err(
            c.upload_part()
                .bucket("sweep")
                .key("tmp/abandoned")
                .upload_id(&old)
                .part_number(2)
                .body(ByteStream::from(p2.clone()))
                .send()
                .await,
        )
        .assert(404, "NoSuchUpload");
        sdk_err(
            c.complete_multipart_upload()
                .bucket("sweep")
                .key("tmp/abandoned")
                .upload_id(&old)
                .multipart_upload(completed(&[(1, e_old)]))
                .send()
                .await,
        )
        .assert(404, "NoSuchUpload");
        assert!(
            !has_upload_files(&srv, "sweep", &old),
            "a refused part left files"
        );
        assert!(!exists(&c, "sweep", "tmp/abandoned").await);

        // The rule's upload and the completed object are untouched.
        assert_eq!(upload_ids(&c, "sweep").await, vec![kept.clone()]);
        let parts = c
            .list_parts()
            .bucket("sweep")
            .key("keep/big")
            .upload_id(&kept)
            .send()
            .await
            .expect("list_parts");
        assert_eq!(parts.parts().len(), 1);
        assert!(has_upload_files(&srv, "sweep", &kept));
        let mut whole = p1.clone();
        whole.extend_from_slice(&p2);
        assert_object(&srv, "sweep", "keep/done", &whole).await;
        srv.assert_no_temp_files("sweep");
        assert_eq!(expired_metric(&srv).await, 1);
        assert!(srv.logs().contains("incomplete multipart upload expired"));
    }
);

storage_test!(
    rules_override_the_default_age,
    Server::builder()
        .env("ARTSTORE_MULTIPART_EXPIRY", "1h")
        .env("ARTSTORE_MULTIPART_EXPIRY_INTERVAL", "100ms"),
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "over").await;
        create_bucket(&c, "plain").await;
        put_rules(
            &c,
            "over",
            vec![
                rule("long", "long/", 30, true),
                rule("short", "short/", 1, true),
                rule("off", "off/", 1, false),
            ],
        )
        .await;
        let part = pattern(100, 7);
        let mut ids = std::collections::BTreeMap::new();
        for (bucket, key) in [
            ("over", "long/a"),
            ("over", "off/b"),
            ("plain", "young"),
            ("over", "other/c"),
            ("over", "short/d"),
        ] {
            let id = create_upload(&c, bucket, key).await;
            upload_part(&c, bucket, key, &id, 1, &part).await;
            ids.insert(key, (bucket, id));
        }
        // Oldest first: the upload that must stay is older than those that must go, so the
        // sweep that removes the last of them has passed over it.
        age_upload(&srv, &ids["long/a"].1, Duration::from_secs(3 * 86400)).await; // rule: 30 days
        // A disabled rule is ignored: the default hour applies, not its day.
        age_upload(&srv, &ids["off/b"].1, Duration::from_secs(2 * 3600)).await;
        age_upload(&srv, &ids["young"].1, Duration::from_secs(30 * 60)).await; // default 1 h
        age_upload(&srv, &ids["other/c"].1, Duration::from_secs(2 * 3600)).await; // default: goes
        age_upload(&srv, &ids["short/d"].1, Duration::from_secs(2 * 86400)).await; // rule 1 day: goes
        let ov = ids["short/d"].1.clone();
        wait_for("the expired uploads to go", || {
            let c = c.clone();
            let ov = ov.clone();
            async move { !upload_ids(&c, "over").await.contains(&ov) }
        })
        .await;
        let long = ids["long/a"].1.clone();
        wait_for("the default-aged uploads to go", || {
            let c = c.clone();
            let long = long.clone();
            async move { upload_ids(&c, "over").await == vec![long] }
        })
        .await;
        assert_eq!(upload_ids(&c, "plain").await, vec![ids["young"].1.clone()]);
        for (key, (bucket, id)) in &ids {
            let gone = matches!(*key, "off/b" | "other/c" | "short/d");
            assert_eq!(has_upload_files(&srv, bucket, id), !gone, "{key}");
        }
        assert_eq!(expired_metric(&srv).await, 3);
    }
);

storage_test!(
    no_expiry_when_turned_off,
    Server::builder()
        .env("ARTSTORE_MULTIPART_EXPIRY", "off")
        .env("ARTSTORE_MULTIPART_EXPIRY_INTERVAL", "100ms"),
    |srv| async move {
        let c = srv.client();
        create_bucket(&c, "off").await;
        put_rules(&c, "off", vec![rule("r", "ruled/", 1, true)]).await;
        let kept = create_upload(&c, "off", "free/a").await;
        let ruled = create_upload(&c, "off", "ruled/b").await;
        // Older than the ruled one, so the sweep that removes it has passed over `kept`.
        age_upload(&srv, &kept, Duration::from_secs(400 * 86400)).await;
        age_upload(&srv, &ruled, Duration::from_secs(2 * 86400)).await;
        wait_for("the ruled upload to go", || {
            let c = c.clone();
            let ruled = ruled.clone();
            async move { !upload_ids(&c, "off").await.contains(&ruled) }
        })
        .await;
        assert_eq!(upload_ids(&c, "off").await, vec![kept]);
        assert_eq!(expired_metric(&srv).await, 1);
    }
);

storage_test!(
    complete_racing_the_sweep_wins_whole_or_not_at_all,
    Server::builder()
        .env("ARTSTORE_MULTIPART_EXPIRY", "1s")
        .env("ARTSTORE_MULTIPART_EXPIRY_INTERVAL", "10ms"),
    |srv| async move {
        const ROUNDS: usize = 24;
        let c = srv.client();
        create_bucket(&c, "race").await;
        let p1 = pattern(5 * MIB, 11);
        let p2 = pattern(64 * 1024, 12);
        let mut whole = p1.clone();
        whole.extend_from_slice(&p2);
        let (mut completed_wins, mut sweep_wins, mut late_parts) = (0u64, 0u64, 0u64);
        for round in 0..ROUNDS {
            let key = format!("r/{round}");
            let begun = Instant::now();
            let id = create_upload(&c, "race", &key).await;
            let e1 = upload_part(&c, "race", &key, &id, 1, &p1).await;
            let e2 = upload_part(&c, "race", &key, &id, 2, &p2).await;
            // Complete around the moment the upload turns one second old (from 0.7 to 1.3 s):
            // some rounds before the sweep, some after, many while it runs.
            let at = Duration::from_millis(700 + (round as u64 * 600) / ROUNDS as u64);
            if let Some(wait) = at.checked_sub(begun.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            // A late part races both: it must be recorded whole or refused, never left over.
            let (res, late) = tokio::join!(
                c.complete_multipart_upload()
                    .bucket("race")
                    .key(&key)
                    .upload_id(&id)
                    .multipart_upload(completed(&[(1, e1), (2, e2)]))
                    .send(),
                c.upload_part()
                    .bucket("race")
                    .key(&key)
                    .upload_id(&id)
                    .part_number(3)
                    .body(ByteStream::from(p2.clone()))
                    .send(),
            );
            match late {
                Ok(_) => late_parts += 1,
                Err(e) => {
                    sdk_err::<(), _>(Err(e)).assert(404, "NoSuchUpload");
                }
            }
            match res {
                Ok(_) => {
                    completed_wins += 1;
                    assert_object(&srv, "race", &key, &whole).await;
                }
                Err(e) => {
                    sdk_err::<(), _>(Err(e)).assert(404, "NoSuchUpload");
                    sweep_wins += 1;
                    assert!(!exists(&c, "race", &key).await, "{key} half there");
                }
            }
            assert!(!upload_ids(&c, "race").await.contains(&id));
        }
        eprintln!(
            "{ROUNDS} rounds: Complete won {completed_wins}, the sweep won {sweep_wins}; {late_parts} late parts recorded before the upload ended"
        );
        assert_eq!(completed_wins + sweep_wins, ROUNDS as u64);
        // Exactly one side won each round: the sweep counted only the rounds it won.
        wait_for("the expiry counter", || {
            let srv = &srv;
            async move { expired_metric(srv).await >= sweep_wins }
        })
        .await;
        assert_eq!(expired_metric(&srv).await, sweep_wins);
        // Nothing left over: no part files, no temp files, only the completed objects.
        wait_for("the expired uploads' files to go", || {
            let srv = &srv;
            async move { upload_dirs(srv, "race").is_empty() }
        })
        .await;
        srv.assert_no_temp_files("race");
        // No part row outlived its upload.
        let mut conn = srv.index_conn().await;
        let orphans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM multipart_parts p WHERE NOT EXISTS \
             (SELECT 1 FROM multipart_uploads u WHERE u.upload_id = p.upload_id)",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count orphan parts");
        assert_eq!(orphans, 0, "part rows without their upload");
        assert_eq!(
            list_keys(&c, "race").await.len(),
            usize::try_from(completed_wins).unwrap()
        );
        assert_eq!(
            srv.objects_on_disk("race").len(),
            usize::try_from(completed_wins).unwrap()
        );
    }
);

#[test]
fn invalid_expiry_settings_stop_the_server_with_a_clear_error() {
    for (flag, value) in [
        ("--multipart-expiry", "soon"),
        ("--multipart-expiry", "-3d"),
        ("--multipart-expiry-interval", "0s"),
        ("--multipart-expiry-interval", "often"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = std::process::Command::new(artstore_bin())
            .args(["serve", "--data-dir"])
            .arg(dir.path())
            .args(["--s3-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"])
            .arg(format!("{flag}={value}"))
            .env_remove("ARTSTORE_DATABASE_URL")
            .env_remove("ARTSTORE_CONFIG")
            .output()
            .expect("run artstore serve");
        let err = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(err.contains("multipart_expiry"), "{flag} {value}: {err}");
    }
}
