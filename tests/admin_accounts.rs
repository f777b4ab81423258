//! Service accounts over the admin API, against the real binary: lifecycle, filters, the system
//! admin's protections, bad input (error code and nothing changed), roles on admin endpoints, audit.

mod common;
mod identity;

use common::*;
use identity::*;
use serde_json::{Value, json};

const ACCOUNTS: &str = "/api/v1/service-accounts";

/// Every account, deleted ones included, as the admin sees them (for "nothing changed" checks).
async fn snapshot(srv: &Server, admin: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for status in ["active", "suspended", "expired", "deleted"] {
        let r = call(
            srv,
            Method::GET,
            &format!("{ACCOUNTS}?status={status}&limit=1000"),
            As::Bearer(admin),
            None,
        )
        .await;
        all.extend(r.ok(200)["items"].as_array().unwrap().iter().cloned());
    }
    all.sort_by_key(|a| a["id"].as_str().unwrap().to_owned());
    all
}

storage_test!(create_list_get_and_filters, |srv| async move {
    let admin = admin_token(&srv).await;
    let body =
        json!({"name": "svc-ingest", "description": "scanner", "role": "user", "rate_limit": 600})
            .to_string();
    let r = call(
        &srv,
        Method::POST,
        ACCOUNTS,
        As::Bearer(&admin),
        Some(&body),
    )
    .await;
    let created = r.ok(201).clone();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);
    assert_eq!(created["role"], "user");
    assert_eq!(created["status"], "active");
    assert_eq!(created["rate_limit"], 600);
    assert_eq!(created["is_system"], false);
    assert!(created["secret_expires_at"].as_str().is_some());
    let id = created["id"].as_str().unwrap().to_owned();
    // The secret works for SigV4 at once, and is never shown again.
    let c = srv.client_with(created["client_id"].as_str().unwrap(), &secret);
    c.list_buckets()
        .send()
        .await
        .expect("SigV4 with the new account");
    let got = call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}/{id}"),
        As::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(got.ok(200)["name"], "svc-ingest");
    assert!(!got.text.contains(&secret) && got.json.get("client_secret").is_none());
    assert!(!srv.logs().contains(&secret), "secret leaked into the log");

    for (name, role) in [
        ("svc-a", "readonly"),
        ("svc-b", "auditor"),
        ("svc-c", "readonly"),
    ] {
        create_account(&srv, &admin, name, role).await;
    }
    let list = |q: &'static str| {
        let srv = &srv;
        let admin = admin.clone();
        async move {
            let r = call(
                srv,
                Method::GET,
                &format!("{ACCOUNTS}{q}"),
                As::Bearer(&admin),
                None,
            )
            .await;
            let j = r.ok(200).clone();
            assert!(!r.text.contains("client_secret"));
            let names: Vec<String> = j["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap().to_owned())
                .collect();
            (names, j["total"].as_i64().unwrap())
        }
    };
    assert_eq!(
        list("?role=readonly").await,
        (vec!["svc-a".into(), "svc-c".into()], 2)
    );
    assert_eq!(
        list("?name=SVC-&limit=2").await,
        (vec!["svc-a".into(), "svc-b".into()], 4)
    );
    assert_eq!(
        list("?name=svc-&limit=2&offset=2").await,
        (vec!["svc-c".into(), "svc-ingest".into()], 4)
    );
    assert_eq!(list("?status=suspended").await.1, 0);
    assert_eq!(list("").await.1, 5); // admin + 4

    // Bad filters: 400.
    call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}?role=root"),
        As::Bearer(&admin),
        None,
    )
    .await
    .assert_error(400, "bad_request");
    call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}?limit=0"),
        As::Bearer(&admin),
        None,
    )
    .await
    .assert_error(400, "bad_request");
    call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}?colour=red"),
        As::Bearer(&admin),
        None,
    )
    .await
    .assert_error(400, "bad_request");
    call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}/no-such-id"),
        As::Bearer(&admin),
        None,
    )
    .await
    .assert_error(404, "not_found");
});

storage_test!(create_bad_input_changes_nothing, |srv| async move {
    let admin = admin_token(&srv).await;
    create_account(&srv, &admin, "svc-taken", "user").await;
    let before = snapshot(&srv, &admin).await;
    let cases: Vec<(String, u16, &str)> = vec![
        (
            json!({"name": "x1", "role": "root"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "x2", "role": "ADMIN"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "svc-taken", "role": "user"}).to_string(),
            409,
            "conflict",
        ),
        (
            json!({"name": "x3", "role": "user", "is_system": true}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "x4", "role": "user", "client_secret": "mine"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "", "role": "user"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "bad name!", "role": "user"}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "x5", "role": "user", "rate_limit": 0}).to_string(),
            400,
            "bad_request",
        ),
        (
            json!({"name": "x6", "role": "user", "secret_expires_at": "tomorrow"}).to_string(),
            400,
            "bad_request",
        ),
        (json!({"role": "user"}).to_string(), 400, "bad_request"),
        ("{\"name\": \"x7\", ".into(), 400, "bad_request"),
        ("[]".into(), 400, "bad_request"),
        (
            format!(
                "{{\"name\": \"x8\", \"role\": \"user\", \"description\": \"{}\"}}",
                "a".repeat(2 * 1024 * 1024)
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in &cases {
        call(&srv, Method::POST, ACCOUNTS, As::Bearer(&admin), Some(body))
            .await
            .assert_error(*status, code);
    }
    // Unauthenticated and non-admin callers.
    let ok_body = json!({"name": "x9", "role": "user"}).to_string();
    call(&srv, Method::POST, ACCOUNTS, As::None, Some(&ok_body))
        .await
        .assert_error(401, "unauthorized");
    call(
        &srv,
        Method::POST,
        ACCOUNTS,
        As::Bearer("garbage"),
        Some(&ok_body),
    )
    .await
    .assert_error(401, "unauthorized");
    assert_eq!(snapshot(&srv, &admin).await, before);
    // Each refusal is in the audit log.
    let audit = call(
        &srv,
        Method::GET,
        "/api/v1/audit?limit=1000",
        As::Bearer(&admin),
        None,
    )
    .await;
    let items = audit.ok(200)["items"].as_array().unwrap().clone();
    let count = |action: &str, outcome: &str| {
        items
            .iter()
            .filter(|e| {
                e["action"] == action
                    && e["outcome"] == outcome
                    && e["target"] == format!("POST {ACCOUNTS}")
            })
            .count()
    };
    assert_eq!(
        count("admin.rejected", "failure"),
        cases.len(),
        "{}",
        audit.text
    );
    assert_eq!(count("admin.denied", "denied"), 2, "{}", audit.text);
    assert!(
        items
            .iter()
            .filter(|e| e["action"] == "admin.rejected")
            .all(|e| e["actor_name"] == "admin")
    );
});

storage_test!(roles_on_admin_endpoints, |srv| async move {
    let admin = admin_token(&srv).await;
    let mut tokens = Vec::new();
    for role in ["user", "auditor", "readonly"] {
        let a = create_account(&srv, &admin, &format!("svc-{role}"), role).await;
        tokens.push((
            role,
            a.id.clone(),
            token(&srv, &a.client_id, &a.secret).await,
        ));
    }
    let before = snapshot(&srv, &admin).await;
    for (role, id, t) in &tokens {
        let read_ok = *role == "auditor";
        let list = call(&srv, Method::GET, ACCOUNTS, As::Bearer(t), None).await;
        let get = call(
            &srv,
            Method::GET,
            &format!("{ACCOUNTS}/{id}"),
            As::Bearer(t),
            None,
        )
        .await;
        let audit = call(&srv, Method::GET, "/api/v1/audit", As::Bearer(t), None).await;
        for r in [&list, &get, &audit] {
            if read_ok {
                r.ok(200);
            } else {
                r.assert_error(403, "forbidden");
            }
        }
        let body = json!({"name": format!("made-by-{role}"), "role": "admin"}).to_string();
        call(&srv, Method::POST, ACCOUNTS, As::Bearer(t), Some(&body))
            .await
            .assert_error(403, "forbidden");
        call(
            &srv,
            Method::PATCH,
            &format!("{ACCOUNTS}/{id}"),
            As::Bearer(t),
            Some(r#"{"role":"admin"}"#),
        )
        .await
        .assert_error(403, "forbidden");
        call(
            &srv,
            Method::POST,
            &format!("{ACCOUNTS}/{id}/rotate-secret"),
            As::Bearer(t),
            None,
        )
        .await
        .assert_error(403, "forbidden");
        call(
            &srv,
            Method::DELETE,
            &format!("{ACCOUNTS}/{id}"),
            As::Bearer(t),
            None,
        )
        .await
        .assert_error(403, "forbidden");
    }
    assert_eq!(snapshot(&srv, &admin).await, before);
    // Every refusal is in the audit log.
    let audit = call(
        &srv,
        Method::GET,
        "/api/v1/audit?action=admin.denied&limit=1000",
        As::Bearer(&admin),
        None,
    )
    .await;
    let items = audit.ok(200)["items"].as_array().unwrap().clone();
    assert!(items.len() >= 14, "{}", audit.text);
    assert!(
        items
            .iter()
            .any(|e| e["actor_name"] == "svc-user" && e["target"] == format!("POST {ACCOUNTS}"))
    );
});

storage_test!(update_suspend_activate_delete, |srv| async move {
    let admin = admin_token(&srv).await;
    let a = create_account(&srv, &admin, "svc-upd", "user").await;
    let path = format!("{ACCOUNTS}/{}", a.id);
    let body = json!({"name": "svc-upd2", "description": "d", "role": "readonly", "rate_limit": 60,
        "secret_expires_at": "2099-01-01T00:00:00Z"})
    .to_string();
    let r = call(&srv, Method::PATCH, &path, As::Bearer(&admin), Some(&body)).await;
    let j = r.ok(200).clone();
    assert_eq!(
        (
            j["name"].as_str(),
            j["role"].as_str(),
            j["rate_limit"].as_i64()
        ),
        (Some("svc-upd2"), Some("readonly"), Some(60))
    );
    assert_eq!(j["secret_expires_at"], "2099-01-01T00:00:00Z");
    // null clears nullable fields.
    let r = call(
        &srv,
        Method::PATCH,
        &path,
        As::Bearer(&admin),
        Some(r#"{"rate_limit": null, "description": null}"#),
    )
    .await;
    assert!(r.ok(200)["rate_limit"].is_null() && r.json["description"].is_null());

    let before = snapshot(&srv, &admin).await;
    for (body, status, code) in [
        (r#"{"role": "superuser"}"#, 400, "bad_request"),
        (r#"{"status": "deleted"}"#, 400, "bad_request"),
        (r#"{"status": "sleeping"}"#, 400, "bad_request"),
        (r#"{"client_id": "X"}"#, 400, "bad_request"),
        (r#"{"name": "admin"}"#, 409, "conflict"),
        (r#"{"rate_limit": -1}"#, 400, "bad_request"),
        ("nope", 400, "bad_request"),
    ] {
        call(&srv, Method::PATCH, &path, As::Bearer(&admin), Some(body))
            .await
            .assert_error(status, code);
    }
    call(
        &srv,
        Method::PATCH,
        &format!("{ACCOUNTS}/nope"),
        As::Bearer(&admin),
        Some("{}"),
    )
    .await
    .assert_error(404, "not_found");
    assert_eq!(snapshot(&srv, &admin).await, before);

    let r = call(
        &srv,
        Method::POST,
        &format!("{path}/suspend"),
        As::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(r.ok(200)["status"], "suspended");
    let r = call(
        &srv,
        Method::POST,
        &format!("{path}/activate"),
        As::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(r.ok(200)["status"], "active");
    call(&srv, Method::DELETE, &path, As::Bearer(&admin), None)
        .await
        .ok(204);
    let r = call(&srv, Method::GET, &path, As::Bearer(&admin), None).await;
    assert_eq!(r.ok(200)["status"], "deleted");
    let names: Vec<String> = call(&srv, Method::GET, ACCOUNTS, As::Bearer(&admin), None)
        .await
        .json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"svc-upd2".to_owned()));
    // A deleted account stays deleted and cannot get tokens.
    let before = snapshot(&srv, &admin).await;
    call(
        &srv,
        Method::POST,
        &format!("{path}/activate"),
        As::Bearer(&admin),
        None,
    )
    .await
    .assert_error(409, "conflict");
    call(
        &srv,
        Method::PATCH,
        &path,
        As::Bearer(&admin),
        Some(r#"{"status":"active"}"#),
    )
    .await
    .assert_error(409, "conflict");
    assert_eq!(snapshot(&srv, &admin).await, before);
    let creds = json!({"client_id": a.client_id, "client_secret": a.secret}).to_string();
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds),
    )
    .await
    .assert_error(401, "invalid_client");
});

storage_test!(system_admin_is_protected, |srv| async move {
    let admin = admin_token(&srv).await;
    let list = call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}?role=admin"),
        As::Bearer(&admin),
        None,
    )
    .await;
    let sys = list.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["is_system"] == true)
        .unwrap()
        .clone();
    let path = format!("{ACCOUNTS}/{}", sys["id"].as_str().unwrap());
    let before = snapshot(&srv, &admin).await;
    call(&srv, Method::DELETE, &path, As::Bearer(&admin), None)
        .await
        .assert_error(409, "conflict");
    call(
        &srv,
        Method::POST,
        &format!("{path}/suspend"),
        As::Bearer(&admin),
        None,
    )
    .await
    .assert_error(409, "conflict");
    call(
        &srv,
        Method::PATCH,
        &path,
        As::Bearer(&admin),
        Some(r#"{"role":"user"}"#),
    )
    .await
    .assert_error(409, "conflict");
    call(
        &srv,
        Method::PATCH,
        &path,
        As::Bearer(&admin),
        Some(r#"{"status":"suspended"}"#),
    )
    .await
    .assert_error(409, "conflict");
    call(
        &srv,
        Method::PATCH,
        &path,
        As::Bearer(&admin),
        Some(r#"{"secret_expires_at":"2001-01-01T00:00:00Z"}"#),
    )
    .await
    .assert_error(409, "conflict");
    assert_eq!(snapshot(&srv, &admin).await, before);
    // Another admin cannot do it either, and the system admin still works.
    let other = create_account(&srv, &admin, "svc-admin2", "admin").await;
    let t2 = token(&srv, &other.client_id, &other.secret).await;
    call(&srv, Method::DELETE, &path, As::Bearer(&t2), None)
        .await
        .assert_error(409, "conflict");
    srv.client()
        .list_buckets()
        .send()
        .await
        .expect("system admin still works");
});

storage_test!(rotate_secret_stops_the_old_one, |srv| async move {
    let admin = admin_token(&srv).await;
    let a = create_account(&srv, &admin, "svc-rot", "user").await;
    let old = srv.client_with(&a.client_id, &a.secret);
    old.list_buckets()
        .send()
        .await
        .expect("old secret works before rotation");
    let r = call(
        &srv,
        Method::POST,
        &format!("{ACCOUNTS}/{}/rotate-secret", a.id),
        As::Bearer(&admin),
        None,
    )
    .await;
    let new_secret = r.ok(200)["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, a.secret);
    assert!(!srv.logs().contains(&new_secret));
    let creds = |s: &str| json!({"client_id": a.client_id, "client_secret": s}).to_string();
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds(&a.secret)),
    )
    .await
    .assert_error(401, "invalid_client");
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds(&new_secret)),
    )
    .await
    .ok(200);
    // SigV4: after the account cache (500 ms) the old secret no longer signs.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    sdk_err(old.list_buckets().send().await).assert(403, "SignatureDoesNotMatch");
    srv.client_with(&a.client_id, &new_secret)
        .list_buckets()
        .send()
        .await
        .expect("new secret works");
    let got = call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}/{}", a.id),
        As::Bearer(&admin),
        None,
    )
    .await;
    assert!(got.ok(200).get("client_secret").is_none());
});

storage_test!(grants_and_audit, |srv| async move {
    let admin = admin_token(&srv).await;
    let a = create_account(&srv, &admin, "svc-grants", "user").await;
    let path = format!("{ACCOUNTS}/{}/grants", a.id);
    let body = json!({"grants": [{"bucket": "docs", "access": "read"}, {"bucket": "inbox", "access": "write"}]}).to_string();
    let r = call(&srv, Method::PUT, &path, As::Bearer(&admin), Some(&body)).await;
    assert_eq!(
        r.ok(200)["grants"],
        json!([{"bucket": "docs", "access": "read"}, {"bucket": "inbox", "access": "write"}])
    );
    let before = call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}/{}", a.id),
        As::Bearer(&admin),
        None,
    )
    .await
    .json;
    for bad in [
        json!({"grants": [{"bucket": "docs", "access": "admin"}]}),
        json!({"grants": [{"bucket": "Bad_Bucket", "access": "read"}]}),
        json!({"grants": [{"bucket": "docs", "access": "read"}, {"bucket": "docs", "access": "write"}]}),
        json!({"grants": [{"bucket": "docs"}]}),
        json!({"grant": []}),
    ] {
        call(
            &srv,
            Method::PUT,
            &path,
            As::Bearer(&admin),
            Some(&bad.to_string()),
        )
        .await
        .assert_error(400, "bad_request");
    }
    let after = call(
        &srv,
        Method::GET,
        &format!("{ACCOUNTS}/{}", a.id),
        As::Bearer(&admin),
        None,
    )
    .await
    .json;
    assert_eq!(before, after);
    // Clearing.
    let r = call(
        &srv,
        Method::PUT,
        &path,
        As::Bearer(&admin),
        Some(r#"{"grants": []}"#),
    )
    .await;
    assert_eq!(r.ok(200)["grants"], json!([]));

    // The audit log has the admin actions with actor and target; auditors can read it.
    let aud = create_account(&srv, &admin, "svc-aud", "auditor").await;
    let at = token(&srv, &aud.client_id, &aud.secret).await;
    let r = call(
        &srv,
        Method::GET,
        "/api/v1/audit?limit=1000",
        As::Bearer(&at),
        None,
    )
    .await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    let has = |action: &str| {
        items.iter().any(|e| {
            e["action"] == action
                && e["actor_name"] == "admin"
                && e["target"] == a.id.as_str()
                && e["outcome"] == "success"
        })
    };
    assert!(has("account.create") && has("account.grants"), "{}", r.text);
    assert!(
        items
            .iter()
            .all(|e| e["at"].as_str().is_some() && e["request_id"].as_str().is_some())
    );
    assert!(!r.text.contains(&a.secret));
    call(
        &srv,
        Method::GET,
        "/api/v1/audit?limit=0",
        As::Bearer(&at),
        None,
    )
    .await
    .assert_error(400, "bad_request");
});

/// Runs `artstore <args>` on the server's data dir and database; (success, stdout JSON, stderr).
fn cli(srv: &Server, args: &[&str]) -> (bool, Value, String) {
    let bin = std::env::var("ARTSTORE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_artstore").to_string());
    let mut cmd = std::process::Command::new(bin);
    cmd.args(args).arg("--data-dir").arg(srv.data_dir());
    for k in [
        "ARTSTORE_DATABASE_URL",
        "ARTSTORE_MASTER_KEY",
        "ARTSTORE_CONFIG",
        "ARTSTORE_DATA_DIR",
    ] {
        cmd.env_remove(k);
    }
    if let Some(url) = srv.database_url() {
        cmd.env("ARTSTORE_DATABASE_URL", url);
    }
    let out = cmd.output().expect("run artstore");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

storage_test!(cli_accounts_and_keys_while_serving, |srv| async move {
    let (ok, created, err) = cli(
        &srv,
        &["account", "create", "svc-cli", "--role", "readonly"],
    );
    assert!(ok, "{err}");
    let (cid, secret) = (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    );
    assert_eq!(created["role"], "readonly");
    // The running server sees it at once.
    let t = token(&srv, &cid, &secret).await;
    assert_eq!(jwt_parts(&t).1["name"], "svc-cli");
    let (ok, list, _) = cli(&srv, &["account", "list", "--role", "readonly"]);
    assert!(
        ok && list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "svc-cli")
    );
    assert!(!list.to_string().contains(&secret));
    let (ok, shown, _) = cli(&srv, &["account", "show", "svc-cli"]);
    assert!(ok && shown["client_id"] == cid.as_str() && shown.get("client_secret").is_none());

    let creds = |s: &str| json!({"client_id": cid, "client_secret": s}).to_string();
    assert!(cli(&srv, &["account", "suspend", "svc-cli"]).0);
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds(&secret)),
    )
    .await
    .assert_error(403, "unauthorized_client");
    assert!(cli(&srv, &["account", "activate", &cid]).0);
    let (ok, rotated, _) = cli(&srv, &["account", "rotate", "svc-cli"]);
    assert!(ok);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds(&secret)),
    )
    .await
    .assert_error(401, "invalid_client");
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds(&new_secret)),
    )
    .await
    .ok(200);

    // Refusals: unknown role, the system admin, unknown account; nothing changes.
    let admin = admin_token(&srv).await;
    let before = snapshot(&srv, &admin).await;
    let (ok, _, err) = cli(&srv, &["account", "create", "svc-x", "--role", "root"]);
    assert!(!ok && err.contains("unknown role"), "{err}");
    let (ok, _, err) = cli(&srv, &["account", "delete", ROOT_ACCESS_KEY]);
    assert!(!ok && err.contains("system admin"), "{err}");
    let (ok, _, err) = cli(&srv, &["account", "suspend", "nobody"]);
    assert!(!ok && err.contains("nobody"), "{err}");
    assert_eq!(snapshot(&srv, &admin).await, before);

    // Key rotation from the CLI: the server signs with the new key, old tokens stay valid.
    let (ok, rotated, err) = cli(&srv, &["keys", "rotate"]);
    assert!(ok, "{err}");
    let kid = rotated["kid"].as_str().unwrap();
    let fresh = admin_token(&srv).await;
    assert_eq!(jwt_parts(&fresh).0["kid"], kid);
    call(&srv, Method::GET, ACCOUNTS, As::Bearer(&admin), None)
        .await
        .ok(200);
    call(&srv, Method::GET, ACCOUNTS, As::Bearer(&fresh), None)
        .await
        .ok(200);

    assert!(cli(&srv, &["account", "delete", "svc-cli"]).0);
    call(
        &srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&creds(&new_secret)),
    )
    .await
    .assert_error(401, "invalid_client");
});

/// The classes of S3 operation the roles of DESIGN.md §5 tell apart.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    List,
    Get,
    Head,
    Put,
    Delete,
    GetPolicy,
    DeletePolicy,
    CreateBucket,
}

/// (name, role, grants as (bucket, access)).
type MatrixAccount = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// What the spec allows: admin everything; user reads and writes objects (and reads bucket
/// policies) in its granted buckets, or all when it has no grants, a `read` grant allowing reads
/// only; auditor reads everywhere; readonly reads objects; unknown role nothing.
fn allowed(role: &str, grants: &[(&str, &str)], op: Op, bucket: &str) -> bool {
    use Op::*;
    let granted = |write: bool| {
        grants.is_empty()
            || grants
                .iter()
                .any(|(b, a)| *b == bucket && (!write || *a == "write"))
    };
    match role {
        "admin" => true,
        "user" => match op {
            List | Get | Head | GetPolicy => granted(false),
            Put | Delete => granted(true),
            DeletePolicy | CreateBucket => false,
        },
        "auditor" => matches!(op, List | Get | Head | GetPolicy),
        "readonly" => matches!(op, List | Get | Head) && granted(false),
        _ => false,
    }
}

storage_test!(s3_role_matrix_over_sigv4_and_bearer, |srv| async move {
    let admin = admin_token(&srv).await;
    let c = srv.client();
    for b in ["granted", "other"] {
        create_bucket(&c, b).await;
        put(&c, b, "doc", format!("{b} original")).await;
    }
    let accounts: Vec<MatrixAccount> = vec![
        ("m-admin", "admin", vec![]),
        ("m-user-all", "user", vec![]),
        ("m-user-write", "user", vec![("granted", "write")]),
        ("m-user-read", "user", vec![("granted", "read")]),
        ("m-auditor", "auditor", vec![]),
        ("m-readonly-all", "readonly", vec![]),
        ("m-readonly-granted", "readonly", vec![("granted", "read")]),
        ("m-unknown", "user", vec![]),
    ];
    let mut made = Vec::new();
    for (name, role, grants) in &accounts {
        let acc = create_account(&srv, &admin, name, role).await;
        if !grants.is_empty() {
            let body = json!({"grants": grants.iter()
                .map(|(b, a)| json!({"bucket": b, "access": a})).collect::<Vec<_>>()});
            call(
                &srv,
                Method::PUT,
                &format!("{ACCOUNTS}/{}/grants", acc.id),
                As::Bearer(&admin),
                Some(&body.to_string()),
            )
            .await
            .ok(200);
        }
        let t = token(&srv, &acc.client_id, &acc.secret).await;
        made.push((acc, t));
    }
    // A role this version does not know (as a newer node or a hand edit could leave it): denied.
    set_role_in_index(&srv, "m-unknown", "superuser").await;
    // A hand edit is no change made through ArtStore: nobody invalidates it, and the nodes see
    // it when their cached entry expires (1 s at most).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut effective = accounts.clone();
    effective[7].1 = "superuser";

    let mut n = 0;
    let mut cells = 0;
    for ((name, role, grants), (acc, tok)) in effective.iter().zip(&made) {
        for bearer in [false, true] {
            for bucket in ["granted", "other"] {
                for op in [
                    Op::List,
                    Op::Get,
                    Op::Head,
                    Op::Put,
                    Op::Delete,
                    Op::GetPolicy,
                    Op::DeletePolicy,
                    Op::CreateBucket,
                ] {
                    n += 1;
                    let (method, path, query): (Method, String, Option<&str>) = match op {
                        Op::List => (Method::GET, format!("/{bucket}"), None),
                        Op::Get => (Method::GET, format!("/{bucket}/doc"), None),
                        Op::Head => (Method::HEAD, format!("/{bucket}/doc"), None),
                        Op::Put => (Method::PUT, format!("/{bucket}/new-{n}"), None),
                        Op::Delete => (Method::DELETE, format!("/{bucket}/absent-{n}"), None),
                        Op::GetPolicy => (Method::GET, format!("/{bucket}"), Some("policy")),
                        Op::DeletePolicy => (Method::DELETE, format!("/{bucket}"), Some("policy")),
                        Op::CreateBucket => (Method::PUT, format!("/made-{n}"), None),
                    };
                    let r = if bearer {
                        let url = match query {
                            Some(q) => format!("{}{path}?{q}", srv.s3_url()),
                            None => format!("{}{path}", srv.s3_url()),
                        };
                        let mut rb = srv.http().request(method, url).bearer_auth(tok);
                        if op == Op::Put {
                            rb = rb.body("x");
                        }
                        RawResponse::from_reqwest(rb.send().await.expect("bearer request")).await
                    } else {
                        let mut rq = srv.raw(method, &path).creds(&acc.client_id, &acc.secret);
                        if let Some(q) = query {
                            rq = rq.query(q, "");
                        }
                        if op == Op::Put {
                            rq = rq.body("x");
                        }
                        rq.send().await
                    };
                    let want = allowed(role, grants, op, bucket);
                    let cell = format!(
                        "{name} ({role}, grants {grants:?}) {op:?} on {bucket} via {}: {} {}",
                        if bearer { "bearer" } else { "sigv4" },
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    );
                    if want {
                        // An `edit` element has no mode statements, so no effective policy.
                        let no_policy = op == Op::GetPolicy && r.code() == "NoSuchBucketPolicy";
                        assert!(r.status < 300 || no_policy, "expected allowed: {cell}");
                    } else {
                        assert_eq!(r.status, 403, "expected denied: {cell}");
                        if op != Op::Head {
                            assert_eq!(r.code(), "AccessDenied", "{cell}");
                        }
                    }
                    cells += 1;
                }
            }
        }
    }
    assert_eq!(cells, 8 * 2 * 2 * 8);
    // Denied writes changed nothing.
    for b in ["granted", "other"] {
        assert_eq!(
            get(&c, b, "doc").await,
            format!("{b} original").into_bytes()
        );
    }
    let listed = c.list_buckets().send().await.expect("list buckets");
    let made_buckets = listed
        .buckets()
        .iter()
        .filter(|b| b.name().unwrap_or_default().starts_with("made-"))
        .count();
    // Only the admin's CreateBucket calls succeeded: 2 transports × 2 "buckets" of the loop.
    assert_eq!(made_buckets, 4);
});

/// Writes a role straight into the index, as only a foreign writer could.
async fn set_role_in_index(srv: &Server, name: &str, role: &str) {
    let mut conn = srv.index_conn().await;
    let done = sqlx::query("UPDATE service_accounts SET role = $1 WHERE name = $2")
        .bind(role)
        .bind(name)
        .execute(&mut conn)
        .await
        .expect("update role");
    assert_eq!(done.rows_affected(), 1);
    // Past the gateway's 500 ms account cache.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
}
