//! Token endpoint, JWKS, key rotation and bearer tokens on the S3 endpoint, against the real binary.

mod common;
mod identity;

use common::*;
use identity::*;
use serde_json::{Value, json};

const TOKEN: &str = "/api/v1/auth/token";

async fn s3_with_token(
    srv: &Server,
    method: Method,
    path: &str,
    token: &str,
    body: &[u8],
) -> RawResponse {
    let resp = srv
        .http()
        .request(method, format!("{}{}", srv.s3_url(), path))
        .header("authorization", format!("Bearer {token}"))
        .body(body.to_vec())
        .send()
        .await
        .expect("s3 request");
    RawResponse::from_reqwest(resp).await
}

storage_test!(token_endpoint_json_form_and_basic, |srv| async move {
    let r = call(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(&json!({"client_id": ROOT_ACCESS_KEY, "client_secret": ROOT_SECRET_KEY}).to_string()),
    )
    .await;
    let j = r.ok(200).clone();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 1800);
    assert!(j["issued_at"].as_i64().is_some());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let token = j["access_token"].as_str().unwrap();
    let (h, c) = jwt_parts(token);
    assert_eq!(h["alg"], "RS256");
    let kid = h["kid"].as_str().expect("kid").to_owned();
    for claim in [
        "iss",
        "aud",
        "sub",
        "client_id",
        "name",
        "role",
        "jti",
        "iat",
        "nbf",
        "exp",
    ] {
        assert!(c.get(claim).is_some(), "claim {claim} missing: {c}");
    }
    assert_eq!(c["client_id"], ROOT_ACCESS_KEY);
    assert_eq!(c["role"], "admin");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        1800
    );

    // JWKS publishes the kid.
    let jwks = call(&srv, Method::GET, "/.well-known/jwks.json", As::None, None).await;
    let keys = jwks.ok(200)["keys"].as_array().unwrap().clone();
    assert!(
        keys.iter()
            .any(|k| k["kid"] == kid.as_str() && k["kty"] == "RSA" && k["alg"] == "RS256")
    );
    assert!(
        keys.iter().all(|k| k.get("d").is_none()),
        "private parts must not be published"
    );

    // RFC 6749 form with body credentials.
    let form = format!(
        "grant_type=client_credentials&client_id={ROOT_ACCESS_KEY}&client_secret={ROOT_SECRET_KEY}"
    );
    let r = call_with(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(&form),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert!(r.ok(200)["access_token"].as_str().is_some());
    // HTTP Basic.
    let b = basic(ROOT_ACCESS_KEY, ROOT_SECRET_KEY);
    let r = call_with(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some("grant_type=client_credentials"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &b),
        ],
    )
    .await;
    assert!(r.ok(200)["access_token"].as_str().is_some());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
});

storage_test!(token_endpoint_refusals, |srv| async move {
    let json_creds = |id: &str, s: &str| json!({"client_id": id, "client_secret": s}).to_string();
    let r = call(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(&json_creds(ROOT_ACCESS_KEY, "wrong")),
    )
    .await;
    r.assert_error(401, "invalid_client");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    call(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(&json_creds("NOSUCHCLIENT", "x")),
    )
    .await
    .assert_error(401, "invalid_client");
    let b = basic(ROOT_ACCESS_KEY, "wrong");
    call_with(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some("grant_type=client_credentials"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &b),
        ],
    )
    .await
    .assert_error(401, "invalid_client");
    call_with(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some("grant_type=password&username=a&password=b"),
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await
    .assert_error(400, "unsupported_grant_type");
    call(&srv, Method::POST, TOKEN, As::None, Some("{not json"))
        .await
        .assert_error(400, "bad_request");
    call(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(r#"{"client_id":"a","client_secret":"b","extra":1}"#),
    )
    .await
    .assert_error(400, "bad_request");

    // Suspended and expired accounts: 403.
    let admin = admin_token(&srv).await;
    let acc = create_account(&srv, &admin, "svc-tok", "user").await;
    call(
        &srv,
        Method::POST,
        &format!("/api/v1/service-accounts/{}/suspend", acc.id),
        As::Bearer(&admin),
        None,
    )
    .await
    .ok(200);
    call(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(&json_creds(&acc.client_id, &acc.secret)),
    )
    .await
    .assert_error(403, "unauthorized_client");
    call(
        &srv,
        Method::POST,
        &format!("/api/v1/service-accounts/{}/activate", acc.id),
        As::Bearer(&admin),
        None,
    )
    .await
    .ok(200);
    call(
        &srv,
        Method::PATCH,
        &format!("/api/v1/service-accounts/{}", acc.id),
        As::Bearer(&admin),
        Some(r#"{"secret_expires_at":"2001-01-01T00:00:00Z"}"#),
    )
    .await
    .ok(200);
    call(
        &srv,
        Method::POST,
        TOKEN,
        As::None,
        Some(&json_creds(&acc.client_id, &acc.secret)),
    )
    .await
    .assert_error(403, "unauthorized_client");

    // Refusals are audited: bad credentials and inactive accounts as denied, bad requests as failures.
    let failures = call(
        &srv,
        Method::GET,
        "/api/v1/audit?action=token.issue&outcome=failure",
        As::Bearer(&admin),
        None,
    )
    .await;
    assert_eq!(
        failures.ok(200)["items"].as_array().unwrap().len(),
        3,
        "{}",
        failures.text
    );
    let audit = call(
        &srv,
        Method::GET,
        "/api/v1/audit?action=token.issue&outcome=denied",
        As::Bearer(&admin),
        None,
    )
    .await;
    assert!(
        audit.ok(200)["items"].as_array().unwrap().len() >= 5,
        "{}",
        audit.text
    );
});

storage_test!(bearer_token_put_get_without_sigv4, |srv| async move {
    let admin = admin_token(&srv).await;
    s3_with_token(&srv, Method::PUT, "/tok-bucket", &admin, b"")
        .await
        .assert_status(200);
    let user = create_account(&srv, &admin, "svc-writer", "user").await;
    let t = token(&srv, &user.client_id, &user.secret).await;
    s3_with_token(&srv, Method::PUT, "/tok-bucket/doc.txt", &t, b"hello token")
        .await
        .assert_status(200);
    let got = s3_with_token(&srv, Method::GET, "/tok-bucket/doc.txt", &t, b"").await;
    got.assert_status(200);
    assert_eq!(got.body, b"hello token");
    assert_object(&srv, "tok-bucket", "doc.txt", b"hello token").await;
    // Lower-case scheme works too.
    let resp = srv
        .http()
        .get(format!("{}/tok-bucket/doc.txt", srv.s3_url()))
        .header("authorization", format!("bearer {t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // Bearer requests have no SignedHeaders: their x-amz-* headers count as sent.
    let resp = srv
        .http()
        .put(format!("{}/tok-bucket/meta.txt", srv.s3_url()))
        .header("authorization", format!("Bearer {t}"))
        .header("x-amz-meta-color", "red")
        .body(b"with metadata".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let head = srv
        .client()
        .head_object()
        .bucket("tok-bucket")
        .key("meta.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("red")
    );
    // and their bodies are checked like any other: a wrong Content-MD5 on DeleteObjects
    let resp = srv
        .http()
        .post(format!("{}/tok-bucket?delete=", srv.s3_url()))
        .header("authorization", format!("Bearer {t}"))
        .header("content-md5", md5_b64(b"something else"))
        .body("<Delete><Object><Key>doc.txt</Key></Object></Delete>")
        .send()
        .await
        .unwrap();
    RawResponse::from_reqwest(resp)
        .await
        .assert_error(400, "BadDigest");
    assert_object(&srv, "tok-bucket", "doc.txt", b"hello token").await;
});

storage_test!(bad_tokens_are_access_denied, |srv| async move {
    let admin = admin_token(&srv).await;
    s3_with_token(&srv, Method::PUT, "/bad-tok", &admin, b"")
        .await
        .assert_status(200);
    let (kid, pem) = server_signing_key(&srv).await;
    let (_, good) = jwt_parts(&admin);
    let now = now_secs();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let mut bad: Vec<(&str, String)> = vec![
        ("garbage", "not.a.jwt".into()),
        (
            "expired",
            sign_rs256(
                &kid,
                &pem,
                &with(&|c| {
                    c["exp"] = json!(now - 600);
                    c["iat"] = json!(now - 2400);
                    c["nbf"] = json!(now - 2400);
                }),
            ),
        ),
        (
            "not yet valid",
            sign_rs256(
                &kid,
                &pem,
                &with(&|c| {
                    c["nbf"] = json!(now + 600);
                }),
            ),
        ),
        (
            "wrong audience",
            sign_rs256(
                &kid,
                &pem,
                &with(&|c| {
                    c["aud"] = json!("someone-else");
                }),
            ),
        ),
        (
            "wrong issuer",
            sign_rs256(
                &kid,
                &pem,
                &with(&|c| {
                    c["iss"] = json!("evil");
                }),
            ),
        ),
        ("unknown kid", sign_rs256("no-such-kid", &pem, &good)),
    ];
    // alg=none: header says none, no signature.
    let none_header = b64url(
        json!({"alg": "none", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes(),
    );
    let payload = b64url(good.to_string().as_bytes());
    bad.push(("alg none", format!("{none_header}.{payload}.")));
    // HS256 confusion: HMAC keyed with the public key material.
    let jwks = call(&srv, Method::GET, "/.well-known/jwks.json", As::None, None).await;
    let n = jwks.json["keys"][0]["n"].as_str().unwrap().to_owned();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    bad.push((
        "hs256 confusion",
        jsonwebtoken::encode(
            &hs,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
        )
        .unwrap(),
    ));
    // Tampered payload: role changed after signing.
    let parts: Vec<&str> = admin.split('.').collect();
    let tampered = b64url(
        with(&|c| {
            c["name"] = json!("mallory");
        })
        .to_string()
        .as_bytes(),
    );
    bad.push((
        "tampered",
        format!("{}.{}.{}", parts[0], tampered, parts[2]),
    ));
    // Another key with the server's kid.
    let other = {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        let k = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        k.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    bad.push(("other key", sign_rs256(&kid, &other, &good)));

    for (what, t) in &bad {
        let key = format!("/bad-tok/{}", what.replace(' ', "-"));
        s3_with_token(&srv, Method::PUT, &key, t, b"x")
            .await
            .assert_error(403, "AccessDenied");
        s3_with_token(&srv, Method::GET, "/bad-tok", t, b"")
            .await
            .assert_error(403, "AccessDenied");
        // The admin API refuses them as well.
        call(
            &srv,
            Method::GET,
            "/api/v1/service-accounts",
            As::Bearer(t),
            None,
        )
        .await
        .assert_error(401, "unauthorized");
        assert!(
            !exists(&srv.client(), "bad-tok", &key[9..]).await,
            "{what}: object was written"
        );
    }
    assert!(list_keys(&srv.client(), "bad-tok").await.is_empty());
    // The good token still works; refusals are audited.
    s3_with_token(&srv, Method::GET, "/bad-tok", &admin, b"")
        .await
        .assert_status(200);
    let audit = call(
        &srv,
        Method::GET,
        "/api/v1/audit?action=s3.denied",
        As::Bearer(&admin),
        None,
    )
    .await;
    assert!(!audit.ok(200)["items"].as_array().unwrap().is_empty());
});

storage_test!(
    suspension_and_deletion_refuse_tokens_and_sigv4,
    |srv| async move {
        let admin = admin_token(&srv).await;
        s3_with_token(&srv, Method::PUT, "/susp", &admin, b"")
            .await
            .assert_status(200);
        let acc = create_account(&srv, &admin, "svc-susp", "user").await;
        let t = token(&srv, &acc.client_id, &acc.secret).await;
        let sig = srv.client_with(&acc.client_id, &acc.secret);
        put(&sig, "susp", "a", "1").await;
        s3_with_token(&srv, Method::PUT, "/susp/b", &t, b"2")
            .await
            .assert_status(200);

        let path = format!("/api/v1/service-accounts/{}", acc.id);
        call(
            &srv,
            Method::POST,
            &format!("{path}/suspend"),
            As::Bearer(&admin),
            None,
        )
        .await
        .ok(200);
        // The account cache lives 500 ms; after a second every request sees the suspension.
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        s3_with_token(&srv, Method::GET, "/susp/b", &t, b"")
            .await
            .assert_error(403, "AccessDenied");
        s3_with_token(&srv, Method::PUT, "/susp/c", &t, b"3")
            .await
            .assert_error(403, "AccessDenied");
        sdk_err(sig.get_object().bucket("susp").key("a").send().await).assert(403, "AccessDenied");
        assert!(!exists(&srv.client(), "susp", "c").await);

        call(
            &srv,
            Method::POST,
            &format!("{path}/activate"),
            As::Bearer(&admin),
            None,
        )
        .await
        .ok(200);
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        s3_with_token(&srv, Method::GET, "/susp/b", &t, b"")
            .await
            .assert_status(200);

        call(&srv, Method::DELETE, &path, As::Bearer(&admin), None)
            .await
            .ok(204);
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        s3_with_token(&srv, Method::GET, "/susp/b", &t, b"")
            .await
            .assert_error(403, "AccessDenied");
        sdk_err(sig.get_object().bucket("susp").key("a").send().await).assert(403, "AccessDenied");
    }
);

storage_test!(key_rotation_keeps_old_tokens_valid, |srv| async move {
    let admin = admin_token(&srv).await;
    let (h1, _) = jwt_parts(&admin);
    let r = call(
        &srv,
        Method::POST,
        "/api/v1/keys/rotate",
        As::Bearer(&admin),
        None,
    )
    .await;
    let kid2 = r.ok(201)["kid"].as_str().unwrap().to_owned();
    assert_ne!(h1["kid"].as_str().unwrap(), kid2);
    let admin2 = admin_token(&srv).await;
    assert_eq!(jwt_parts(&admin2).0["kid"], kid2.as_str());
    let jwks = call(&srv, Method::GET, "/.well-known/jwks.json", As::None, None).await;
    let kids: Vec<String> = jwks.ok(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kids.contains(&kid2) && kids.contains(&h1["kid"].as_str().unwrap().to_owned()),
        "{kids:?}"
    );
    // Both tokens work on S3 and on the admin API.
    s3_with_token(&srv, Method::PUT, "/rot-bucket", &admin, b"")
        .await
        .assert_status(200);
    s3_with_token(&srv, Method::GET, "/rot-bucket", &admin2, b"")
        .await
        .assert_status(200);
    call(
        &srv,
        Method::GET,
        "/api/v1/service-accounts",
        As::Bearer(&admin),
        None,
    )
    .await
    .ok(200);
    call(
        &srv,
        Method::GET,
        "/api/v1/service-accounts",
        As::Bearer(&admin2),
        None,
    )
    .await
    .ok(200);
    // Only admins rotate.
    let aud = create_account(&srv, &admin, "svc-auditor", "auditor").await;
    let at = token(&srv, &aud.client_id, &aud.secret).await;
    call(
        &srv,
        Method::POST,
        "/api/v1/keys/rotate",
        As::Bearer(&at),
        None,
    )
    .await
    .assert_error(403, "forbidden");
    let jwks2 = call(&srv, Method::GET, "/.well-known/jwks.json", As::None, None).await;
    assert_eq!(jwks2.json["keys"].as_array().unwrap().len(), kids.len());
});

storage_test!(sigv4_signed_admin_requests, |srv| async move {
    let r = call(
        &srv,
        Method::GET,
        "/api/v1/service-accounts?limit=5",
        As::SigV4(ROOT_ACCESS_KEY, ROOT_SECRET_KEY),
        None,
    )
    .await;
    assert!(!r.ok(200)["items"].as_array().unwrap().is_empty());
    let body = json!({"name": "svc-signed", "role": "readonly"}).to_string();
    let r = call(
        &srv,
        Method::POST,
        "/api/v1/service-accounts",
        As::SigV4(ROOT_ACCESS_KEY, ROOT_SECRET_KEY),
        Some(&body),
    )
    .await;
    r.ok(201);
    // Wrong secret → 401, nothing created.
    let body = json!({"name": "svc-signed-2", "role": "readonly"}).to_string();
    call(
        &srv,
        Method::POST,
        "/api/v1/service-accounts",
        As::SigV4(ROOT_ACCESS_KEY, "wrong-secret"),
        Some(&body),
    )
    .await
    .assert_error(401, "unauthorized");
    // A body swapped after signing → 401.
    let url = format!("{}/api/v1/service-accounts", srv.admin_url());
    let hs = sigv4_headers(
        "POST",
        &url,
        &[("content-type".into(), "application/json".into())],
        body.as_bytes(),
        ROOT_ACCESS_KEY,
        ROOT_SECRET_KEY,
    );
    let mut req = srv
        .http()
        .post(&url)
        .header("content-type", "application/json");
    for (k, v) in hs {
        req = req.header(k, v);
    }
    let resp = req
        .body(json!({"name": "svc-signed-3", "role": "admin"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let admin = admin_token(&srv).await;
    let list = call(
        &srv,
        Method::GET,
        "/api/v1/service-accounts?name=svc-signed",
        As::Bearer(&admin),
        None,
    )
    .await;
    let names: Vec<&str> = list.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["svc-signed"]);
});

storage_test!(
    rate_limits_per_account_and_token_endpoint,
    |srv| async move {
        let admin = admin_token(&srv).await;
        s3_with_token(&srv, Method::PUT, "/limited", &admin, b"")
            .await
            .assert_status(200);
        // 5 requests/minute: the allowance is shared by SigV4, bearer and admin requests.
        let limited = create_account_from(
            &srv,
            &admin,
            &json!({"name": "svc-limited", "role": "auditor", "rate_limit": 5}),
        )
        .await;
        let (cid, secret) = (limited.client_id, limited.secret);
        let t = token(&srv, &cid, &secret).await;
        let sig = srv.client_with(&cid, &secret);
        for _ in 0..3 {
            s3_with_token(&srv, Method::GET, "/limited", &t, b"")
                .await
                .assert_status(200);
        }
        sig.list_objects_v2()
            .bucket("limited")
            .send()
            .await
            .expect("4th request allowed");
        call(
            &srv,
            Method::GET,
            "/api/v1/service-accounts",
            As::Bearer(&t),
            None,
        )
        .await
        .ok(200);
        // Exhausted: S3 → 503 SlowDown, admin → 429 with Retry-After.
        s3_with_token(&srv, Method::GET, "/limited", &t, b"")
            .await
            .assert_error(503, "SlowDown");
        sdk_err(sig.list_objects_v2().bucket("limited").send().await).assert(503, "SlowDown");
        let r = call(
            &srv,
            Method::GET,
            "/api/v1/service-accounts",
            As::Bearer(&t),
            None,
        )
        .await;
        r.assert_error(429, "rate_limited");
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        // In process a token bucket (<= 60 s); with Redis a two-window sliding count, which can
        // ask for up to two windows when the allowance was used at the end of one.
        assert!((1..=120).contains(&wait), "{wait}");
        // Other accounts are not affected.
        s3_with_token(&srv, Method::GET, "/limited", &admin, b"")
            .await
            .assert_status(200);

        // Token endpoint: guessing one client's secret is cut off.
        let creds = json!({"client_id": ROOT_ACCESS_KEY, "client_secret": "guess"}).to_string();
        let mut limited = None;
        for i in 0..80 {
            let r = call(
                &srv,
                Method::POST,
                "/api/v1/auth/token",
                As::None,
                Some(&creds),
            )
            .await;
            if r.status == 429 {
                limited = Some((i, r));
                break;
            }
            r.assert_error(401, "invalid_client");
        }
        let (i, r) = limited.expect("token guessing was never limited");
        assert!(i >= 50, "limited too early: {i}");
        r.assert_error(429, "rate_limited");
        assert!(r.header("retry-after").is_some());
    }
);
