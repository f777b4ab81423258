//! Parsing, matching and evaluation, without a server.

use std::collections::BTreeMap;

use artstore_metadata::{Element, Identity, Mode, Role};

use crate::{Action, Context, Denial, Facts, Policy, Principal, evaluate};

fn element(mode: Mode) -> Element {
    Element {
        name: "invoices".into(),
        mode,
        backend: "{}".into(),
        capacity_bytes: None,
        used_bytes: 0,
        object_count: 0,
        description: None,
        created_by: "admin".into(),
        created_ms: 0,
        updated_ms: 0,
        mode_changed_ms: None,
        tags: Default::default(),
        lifecycle: None,
    }
}

fn who(role: Option<Role>, grants: &[(&str, &str)]) -> Principal {
    Principal::new(
        Identity {
            account_id: "id1".into(),
            name: "bob".into(),
            role,
        },
        grants
            .iter()
            .map(|(b, a)| ((*b).to_owned(), (*a).to_owned()))
            .collect(),
    )
}

fn code(r: Result<(), Denial>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(Denial::Mode {
            archived_read: true,
            ..
        }) => "InvalidObjectState",
        Err(_) => "AccessDenied",
    }
}

fn on(key: &str) -> Facts<'_> {
    Facts {
        key: Some(key),
        ..Facts::default()
    }
}

fn policy(statements: &str) -> Policy {
    Policy::parse(
        "invoices",
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
    )
    .expect("valid policy")
}

fn check(
    p: &Principal,
    mode: Mode,
    pol: &Policy,
    cx: &Context,
    a: Action,
    f: Facts<'_>,
) -> &'static str {
    code(evaluate(p, &element(mode), pol, cx, a, f))
}

#[test]
fn mode_table() {
    let admin = who(Some(Role::Admin), &[]);
    let none = Policy::default();
    let cx = Context::default();
    let exists = Facts {
        key_exists: true,
        ..on("k")
    };
    let new = on("k");
    let cases = [
        (Mode::Edit, Action::GetObject, new, "ok"),
        (Mode::Ar, Action::GetObject, new, "InvalidObjectState"),
        (Mode::Ar, Action::HeadObject, new, "ok"),
        (Mode::Ar, Action::ListBucket, Facts::default(), "ok"),
        (Mode::Rw, Action::PutObject, new, "ok"),
        (Mode::Rw, Action::PutObject, exists, "AccessDenied"),
        (Mode::Edit, Action::PutObject, exists, "ok"),
        (Mode::Ro, Action::PutObject, new, "AccessDenied"),
        (Mode::Rw, Action::UpdateObjectMetadata, exists, "ok"),
        (
            Mode::Ro,
            Action::UpdateObjectMetadata,
            exists,
            "AccessDenied",
        ),
        (Mode::Rw, Action::DeleteObject, exists, "AccessDenied"),
        (Mode::Edit, Action::DeleteObject, exists, "ok"),
        (
            Mode::Rw,
            Action::DeleteBucket,
            Facts::default(),
            "AccessDenied",
        ),
        (Mode::Edit, Action::DeleteBucket, Facts::default(), "ok"),
        (Mode::Ar, Action::RestoreObject, exists, "ok"),
        (Mode::Ar, Action::GetRestoredObject, exists, "ok"),
    ];
    for (mode, action, facts, want) in cases {
        assert_eq!(
            check(&admin, mode, &none, &cx, action, facts),
            want,
            "{mode} {action:?} {facts:?}"
        );
    }
    let msg = evaluate(
        &admin,
        &element(Mode::Rw),
        &none,
        &cx,
        Action::DeleteObject,
        exists,
    )
    .map_err(|e| e.to_string());
    assert_eq!(
        msg,
        Err("storage element 'invoices' is in mode rw: objects cannot be deleted".into())
    );
}

#[test]
fn roles_and_grants() {
    let none = Policy::default();
    let cx = Context::default();
    let f = on("k");
    let cases = [
        (who(None, &[]), Action::HeadObject, "AccessDenied"),
        (who(Some(Role::User), &[]), Action::PutObject, "ok"),
        (
            who(Some(Role::User), &[("other", "write")]),
            Action::GetObject,
            "AccessDenied",
        ),
        (
            who(Some(Role::User), &[("invoices", "read")]),
            Action::PutObject,
            "AccessDenied",
        ),
        (
            who(Some(Role::User), &[("invoices", "read")]),
            Action::GetObject,
            "ok",
        ),
        (
            who(Some(Role::User), &[("invoices", "read")]),
            Action::RestoreObject,
            "AccessDenied",
        ),
        (
            who(Some(Role::Auditor), &[]),
            Action::PutObject,
            "AccessDenied",
        ),
        (who(Some(Role::Readonly), &[]), Action::GetObject, "ok"),
        (
            who(Some(Role::Readonly), &[]),
            Action::DeleteObject,
            "AccessDenied",
        ),
        (
            who(Some(Role::Readonly), &[]),
            Action::GetRestoredObject,
            "ok",
        ),
        (
            who(Some(Role::User), &[]),
            Action::DeleteBucket,
            "AccessDenied",
        ),
    ];
    for (p, a, want) in cases {
        assert_eq!(check(&p, Mode::Edit, &none, &cx, a, f), want, "{p:?} {a:?}");
    }
}

#[test]
fn resources_are_matched() {
    let ro = who(Some(Role::Readonly), &[("invoices", "read")]);
    let admin = who(Some(Role::Admin), &[]);
    let cx = Context::default();
    let allow = policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::invoices/public/*"}"#,
    );
    assert_eq!(
        check(
            &ro,
            Mode::Edit,
            &allow,
            &cx,
            Action::PutObject,
            on("public/a")
        ),
        "ok"
    );
    assert_eq!(
        check(
            &ro,
            Mode::Edit,
            &allow,
            &cx,
            Action::PutObject,
            on("private/a")
        ),
        "AccessDenied"
    );
    assert_eq!(
        check(
            &ro,
            Mode::Edit,
            &allow,
            &cx,
            Action::PutObject,
            on("public")
        ),
        "AccessDenied"
    );
    let deny = policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::invoices/locked/*"]}"#,
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny,
            &cx,
            Action::GetObject,
            on("locked/x")
        ),
        "AccessDenied"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny,
            &cx,
            Action::GetObject,
            on("open/x")
        ),
        "ok"
    );
    // The bucket ARN is not an object ARN: listing is untouched.
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny,
            &cx,
            Action::ListBucket,
            Facts::default()
        ),
        "ok"
    );
    let deny_bucket = policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::invoices"}"#,
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny_bucket,
            &cx,
            Action::ListBucket,
            Facts::default()
        ),
        "AccessDenied"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny_bucket,
            &cx,
            Action::GetObject,
            on("a")
        ),
        "ok"
    );
    let question = policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/202?.csv"}"#,
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &question,
            &cx,
            Action::GetObject,
            on("2024.csv")
        ),
        "AccessDenied"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &question,
            &cx,
            Action::GetObject,
            on("20245.csv")
        ),
        "ok"
    );
}

#[test]
fn not_fields_and_action_wildcards() {
    let admin = who(Some(Role::Admin), &[]);
    let cx = Context::default();
    let not_action =
        policy(r#"{"Effect":"Deny","Principal":"*","NotAction":"s3:Get*","Resource":"*"}"#);
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &not_action,
            &cx,
            Action::GetObject,
            on("a")
        ),
        "ok"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &not_action,
            &cx,
            Action::PutObject,
            on("a")
        ),
        "AccessDenied"
    );
    let not_resource = policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::invoices/open/*"}"#,
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &not_resource,
            &cx,
            Action::GetObject,
            on("open/a")
        ),
        "ok"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &not_resource,
            &cx,
            Action::GetObject,
            on("shut/a")
        ),
        "AccessDenied"
    );
    let not_principal =
        policy(r#"{"Effect":"Deny","NotPrincipal":{"AWS":"alice"},"Action":"*","Resource":"*"}"#);
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &not_principal,
            &cx,
            Action::GetObject,
            on("a")
        ),
        "AccessDenied"
    );
    let alice = Principal::new(
        Identity {
            account_id: "id2".into(),
            name: "alice".into(),
            role: Some(Role::Admin),
        },
        vec![],
    );
    assert_eq!(
        check(
            &alice,
            Mode::Edit,
            &not_principal,
            &cx,
            Action::GetObject,
            on("a")
        ),
        "ok"
    );
    let star = policy(r#"{"Effect":"Deny","Principal":"*","Action":"s3:*Tagging","Resource":"*"}"#);
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &star,
            &cx,
            Action::PutObjectTagging,
            on("a")
        ),
        "AccessDenied"
    );
    assert_eq!(
        check(&admin, Mode::Edit, &star, &cx, Action::PutObject, on("a")),
        "ok"
    );
}

#[test]
fn an_allow_never_overrides_the_mode() {
    let ro = who(Some(Role::Readonly), &[]);
    let cx = Context::default();
    let all = policy(r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}"#);
    assert_eq!(
        check(&ro, Mode::Edit, &all, &cx, Action::PutObject, on("a")),
        "ok"
    );
    assert_eq!(
        check(&ro, Mode::Ro, &all, &cx, Action::PutObject, on("a")),
        "AccessDenied"
    );
    assert_eq!(
        check(&ro, Mode::Ar, &all, &cx, Action::GetObject, on("a")),
        "InvalidObjectState"
    );
    // Nor bucket administration.
    assert_eq!(
        check(
            &ro,
            Mode::Edit,
            &all,
            &cx,
            Action::PutBucketPolicy,
            Facts::default()
        ),
        "AccessDenied"
    );
}

/// Each operator and key: a condition that holds (the Deny bites) and one that does not.
#[test]
fn conditions_table() {
    let admin = who(Some(Role::Admin), &[]);
    let tags: BTreeMap<String, String> = [("class".to_owned(), "secret".to_owned())].into();
    let cx = Context {
        source_ip: "127.0.0.1".parse().ok(),
        current_time: time::macros::datetime!(2026-06-01 12:00 UTC),
        prefix: Some("home/bob/".into()),
        delimiter: Some("/".into()),
        max_keys: Some("100".into()),
        metadata_directive: Some("REPLACE".into()),
        copy_source: Some("invoices/src.txt".into()),
        request_tags: Some(
            [
                ("team".to_owned(), "blue".to_owned()),
                ("env".to_owned(), "prod".to_owned()),
            ]
            .into(),
        ),
        ..Context::default()
    };
    let f = Facts {
        key: Some("k"),
        key_exists: true,
        existing_tags: Some(&tags),
    };
    let cases: &[(&str, &str, &str, &str)] = &[
        // (operator, key, value that holds, value that does not)
        ("StringEquals", "aws:username", r#""bob""#, r#""alice""#),
        ("StringNotEquals", "aws:username", r#""alice""#, r#""bob""#),
        (
            "StringEqualsIgnoreCase",
            "aws:username",
            r#""BOB""#,
            r#""alice""#,
        ),
        (
            "StringNotEqualsIgnoreCase",
            "aws:username",
            r#""ALICE""#,
            r#""Bob""#,
        ),
        ("StringLike", "s3:prefix", r#""home/*""#, r#""work/*""#),
        (
            "StringNotLike",
            "s3:prefix",
            r#""work/*""#,
            r#""home/?ob/""#,
        ),
        ("StringEquals", "aws:userid", r#""id1""#, r#""id9""#),
        ("StringEquals", "s3:delimiter", r#""/""#, r#""-""#),
        ("NumericEquals", "s3:max-keys", r#""100""#, r#""10""#),
        ("NumericNotEquals", "s3:max-keys", "10", "100"),
        ("NumericLessThan", "s3:max-keys", r#""101""#, r#""100""#),
        (
            "NumericLessThanEquals",
            "s3:max-keys",
            r#""100""#,
            r#""99""#,
        ),
        ("NumericGreaterThan", "s3:max-keys", r#""99""#, r#""100""#),
        (
            "NumericGreaterThanEquals",
            "s3:max-keys",
            r#""100""#,
            r#""101""#,
        ),
        (
            "DateEquals",
            "aws:CurrentTime",
            r#""2026-06-01T12:00:00Z""#,
            r#""2026-06-01T12:00:01Z""#,
        ),
        (
            "DateNotEquals",
            "aws:CurrentTime",
            r#""2020-01-01""#,
            r#""2026-06-01T12:00:00Z""#,
        ),
        (
            "DateLessThan",
            "aws:CurrentTime",
            r#""2027-01-01T00:00:00Z""#,
            r#""2026-01-01T00:00:00Z""#,
        ),
        (
            "DateLessThanEquals",
            "aws:CurrentTime",
            r#""2026-06-01T12:00:00Z""#,
            r#""2026-06-01""#,
        ),
        (
            "DateGreaterThan",
            "aws:CurrentTime",
            r#""2026-01-01""#,
            r#""2027-01-01""#,
        ),
        (
            "DateGreaterThanEquals",
            "aws:CurrentTime",
            r#""2026-06-01T12:00:00Z""#,
            r#""2027-01-01""#,
        ),
        ("Bool", "aws:SecureTransport", r#""false""#, "true"),
        (
            "IpAddress",
            "aws:SourceIp",
            r#""127.0.0.0/8""#,
            r#""10.0.0.0/8""#,
        ),
        (
            "NotIpAddress",
            "aws:SourceIp",
            r#""10.0.0.0/8""#,
            r#""127.0.0.1""#,
        ),
        (
            "Null",
            "s3:RequestObjectTag/absent",
            r#""true""#,
            r#""false""#,
        ),
        ("Null", "s3:x-amz-copy-source", r#""false""#, r#""true""#),
        (
            "StringEquals",
            "s3:x-amz-metadata-directive",
            r#""REPLACE""#,
            r#""COPY""#,
        ),
        (
            "StringEquals",
            "s3:x-amz-copy-source",
            r#""invoices/src.txt""#,
            r#""invoices/other""#,
        ),
        (
            "StringEquals",
            "s3:ExistingObjectTag/class",
            r#""secret""#,
            r#""public""#,
        ),
        (
            "StringEquals",
            "s3:RequestObjectTag/team",
            r#""blue""#,
            r#""red""#,
        ),
        (
            "ForAnyValue:StringEquals",
            "s3:RequestObjectTagKeys",
            r#"["team","x"]"#,
            r#"["x"]"#,
        ),
        (
            "ForAllValues:StringEquals",
            "s3:RequestObjectTagKeys",
            r#"["team","env"]"#,
            r#"["team"]"#,
        ),
        (
            "StringEqualsIfExists",
            "s3:RequestObjectTag/absent",
            r#""x""#,
            r#""x""#,
        ),
        (
            "StringEqualsIfExists",
            "aws:username",
            r#""bob""#,
            r#""alice""#,
        ),
    ];
    for (op, key, holds, fails) in cases {
        let doc = |v: &str| {
            policy(&format!(
                r#"{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{{"{op}":{{"{key}":{v}}}}}}}"#
            ))
        };
        assert_eq!(
            check(&admin, Mode::Edit, &doc(holds), &cx, Action::GetObject, f),
            "AccessDenied",
            "{op} {key} {holds}"
        );
        // `…IfExists` on an absent key holds whatever the value: only the present key can fail.
        if *key != "s3:RequestObjectTag/absent" {
            assert_eq!(
                check(&admin, Mode::Edit, &doc(fails), &cx, Action::GetObject, f),
                "ok",
                "{op} {key} {fails}"
            );
        }
    }
    // A missing key fails a positive operator and passes a negated one.
    let bare = Context::default();
    let missing = |op: &str| {
        policy(&format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{{"{op}":{{"s3:prefix":"x"}}}}}}"#
        ))
    };
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &missing("StringEquals"),
            &bare,
            Action::GetObject,
            on("k")
        ),
        "ok"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &missing("StringNotEquals"),
            &bare,
            Action::GetObject,
            on("k")
        ),
        "AccessDenied"
    );
}

#[test]
fn malformed_documents_name_the_problem() {
    let bad = |doc: &str| Policy::parse("invoices", doc).expect_err(doc).to_string();
    let stmt = |cond: &str| {
        format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{cond}}}]}}"#
        )
    };
    assert!(bad(&stmt(r#"{"StringSorta":{"aws:username":"x"}}"#)).contains("'StringSorta'"));
    assert!(bad(&stmt(r#"{"StringEquals":{"aws:shoeSize":"x"}}"#)).contains("'aws:shoeSize'"));
    assert!(bad(&stmt(r#"{"NumericLessThan":{"s3:max-keys":"many"}}"#)).contains("'many'"));
    assert!(bad(&stmt(r#"{"IpAddress":{"aws:SourceIp":"300.1.1.1"}}"#)).contains("300.1.1.1"));
    assert!(bad(&stmt(r#"{"NullIfExists":{"s3:prefix":"true"}}"#)).contains("NullIfExists"));
    assert!(bad(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:Launch*","Resource":"*"}]}"#).contains("s3:Launch*"));
    assert!(bad(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#).contains("outside"));
    assert!(
        bad(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#)
            .contains("Resource or NotResource")
    );
    assert!(bad(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"*"}]}"#).contains("not both"));
    // Bucket wildcards that can name this bucket are accepted.
    for ok in [
        "arn:aws:s3:::*/*",
        "arn:aws:s3:::invoice?/*",
        "arn:aws:s3:::inv*",
    ] {
        Policy::parse(
            "invoices",
            &format!(r#"{{"Statement":{{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"{ok}"}}}}"#),
        )
        .expect(ok);
    }
}

#[test]
fn admins_can_always_replace_a_policy() {
    let deny_all = policy(r#"{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}"#);
    let cx = Context::default();
    let admin = who(Some(Role::Admin), &[]);
    for a in [Action::PutBucketPolicy, Action::DeleteBucketPolicy] {
        assert_eq!(
            check(&admin, Mode::Edit, &deny_all, &cx, a, Facts::default()),
            "ok",
            "{a:?}"
        );
    }
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny_all,
            &cx,
            Action::GetBucketPolicy,
            Facts::default()
        ),
        "AccessDenied"
    );
    assert_eq!(
        check(
            &admin,
            Mode::Edit,
            &deny_all,
            &cx,
            Action::GetObject,
            on("k")
        ),
        "AccessDenied"
    );
}

mod reach {
    use super::*;
    use crate::{Reach, reach};

    const KEYS: &[&str] = &[
        "a.txt",
        "secret/x.pdf",
        "secret/",
        "secretary.txt",
        "public/y",
        "invoices/z",
        "x*?",
    ];

    fn tag_sets() -> Vec<BTreeMap<String, String>> {
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        vec![
            BTreeMap::new(),
            one("class", "secret"),
            one("class", "public"),
        ]
    }

    fn principals() -> Vec<Principal> {
        vec![
            who(Some(Role::Admin), &[]),
            who(Some(Role::Auditor), &[]),
            who(Some(Role::User), &[]),
            who(Some(Role::User), &[("invoices", "read")]),
            who(Some(Role::User), &[("other", "write")]),
            who(Some(Role::Readonly), &[]),
            who(Some(Role::Readonly), &[("other", "read")]),
            who(None, &[]),
        ]
    }

    /// Statements covering each way a policy can depend on the object, or not.
    const POLICIES: &[&str] = &[
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/secret/*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::invoices"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::inv*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/x?*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/a.txt"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::invoices/public/*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::invoices/*"}"#,
        r#"{"Effect":"Deny","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":{"AWS":"carol"},"Action":"s3:GetObject","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","Resource":"*"}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"secret"}}}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"Null":{"s3:ExistingObjectTag/class":"true"}}}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/public/*"}"#,
        r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/*"}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/class":"public"}}}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::invoices/secret/*"}"#,
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::invoices/secret/*"}"#,
    ];

    fn cx() -> Context {
        Context {
            source_ip: Some("10.1.2.3".parse().expect("ip")),
            ..Context::default()
        }
    }

    /// What `evaluate` says for each sample object: (some allowed, some denied).
    fn outcomes(p: &Principal, el: &Element, pol: &Policy, a: Action) -> (bool, bool) {
        let (mut allowed, mut denied) = (false, false);
        for key in KEYS {
            for tags in tag_sets() {
                let f = Facts {
                    key: Some(key),
                    key_exists: true,
                    existing_tags: Some(&tags),
                };
                match evaluate(p, el, pol, &cx(), a, f) {
                    Ok(()) => allowed = true,
                    Err(_) => denied = true,
                }
            }
        }
        (allowed, denied)
    }

    #[test]
    fn never_all_when_one_is_denied_never_none_when_one_is_allowed() {
        let mut policies: Vec<Policy> = vec![Policy::default()];
        policies.extend(POLICIES.iter().map(|s| policy(s)));
        let mut seen = BTreeMap::new();
        for pol in &policies {
            for mode in [Mode::Edit, Mode::Rw, Mode::Ro, Mode::Ar] {
                let el = element(mode);
                for p in principals() {
                    for a in [Action::HeadObject, Action::GetObject] {
                        let r = reach(&p, &el, pol, &cx(), a);
                        let (allowed, denied) = outcomes(&p, &el, pol, a);
                        match r {
                            Reach::All => assert!(
                                !denied,
                                "All, but one is denied: {pol:?} {p:?} {mode} {a:?}"
                            ),
                            Reach::None => assert!(
                                !allowed,
                                "None, but one is allowed: {pol:?} {p:?} {mode} {a:?}"
                            ),
                            Reach::Depends => {}
                        }
                        *seen.entry(format!("{r:?}")).or_insert(0) += 1;
                    }
                }
            }
        }
        // Not everything falls back to asking per object.
        assert!(seen.get("All").copied().unwrap_or(0) > 50, "{seen:?}");
        assert!(seen.get("None").copied().unwrap_or(0) > 50, "{seen:?}");
        assert!(seen.get("Depends").copied().unwrap_or(0) > 10, "{seen:?}");
    }

    #[test]
    fn classifies_the_common_cases_exactly() {
        let user = who(Some(Role::User), &[]);
        let granted = who(Some(Role::User), &[("invoices", "read")]);
        let elsewhere = who(Some(Role::User), &[("other", "write")]);
        let el = element(Mode::Edit);
        let none = Policy::default();
        let cases: &[(&Principal, &Policy, Reach)] = &[
            (&user, &none, Reach::All),
            (&granted, &none, Reach::All),
            (&elsewhere, &none, Reach::None),
        ];
        for (p, pol, want) in cases {
            assert_eq!(
                reach(p, &el, pol, &cx(), Action::HeadObject),
                *want,
                "{p:?}"
            );
        }
        let at = |i: usize| policy(POLICIES[i]);
        let head = |p: &Principal, pol: &Policy| reach(p, &el, pol, &cx(), Action::HeadObject);
        // A Deny on `secret/*`: per object.
        assert_eq!(head(&user, &at(0)), Reach::Depends);
        // A Deny on the whole bucket's objects, or by a resource like `inv*`: nothing.
        assert_eq!(head(&user, &at(1)), Reach::None);
        assert_eq!(head(&user, &at(3)), Reach::None);
        // A Deny on the bucket itself (not its objects) leaves HEAD alone.
        assert_eq!(head(&user, &at(2)), Reach::All);
        // NotResource covering every object denies none.
        assert_eq!(head(&user, &at(7)), Reach::All);
        assert_eq!(head(&user, &at(6)), Reach::Depends);
        // Principal and request conditions are decided once.
        assert_eq!(head(&user, &at(8)), Reach::None);
        assert_eq!(head(&user, &at(9)), Reach::All);
        assert_eq!(head(&user, &at(13)), Reach::None);
        assert_eq!(head(&user, &at(14)), Reach::All);
        // Tags: per object.
        assert_eq!(head(&user, &at(11)), Reach::Depends);
        // A policy Allow for an account the grants leave out.
        assert_eq!(head(&elsewhere, &at(15)), Reach::Depends);
        assert_eq!(head(&elsewhere, &at(16)), Reach::All);
        assert_eq!(head(&elsewhere, &none), Reach::None);
        // The archive mode keeps HEAD and denies reading the bytes.
        let ar = element(Mode::Ar);
        assert_eq!(
            reach(&user, &ar, &none, &cx(), Action::HeadObject),
            Reach::All
        );
        assert_eq!(
            reach(&user, &ar, &none, &cx(), Action::GetObject),
            Reach::None
        );
        assert_eq!(
            reach(&who(None, &[]), &el, &none, &cx(), Action::HeadObject),
            Reach::None
        );
    }
}
