//! Helpers of the identity tests (tokens.rs, admin_accounts.rs): admin API calls, tokens, and
//! forging tokens with the server's own signing key (read from the index like an attacker who
//! stole it would not be able to; used only to build expired/wrong-audience tokens).
#![allow(dead_code)]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::common::*;

/// Response of an admin API call.
#[derive(Debug)]
pub struct ApiResp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl ApiResp {
    /// Asserts status and JSON `error` code, and that the error body has a message and request id.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.json["error"].as_str().unwrap_or("")),
            (status, code),
            "unexpected answer: {}",
            self.text
        );
        assert!(
            self.json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert!(self.json.get("request_id").is_some(), "{}", self.text);
        self
    }
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        &self.json
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_string())
    }
}

pub enum As<'a> {
    None,
    Bearer(&'a str),
    SigV4(&'a str, &'a str),
}

/// One admin API request with an optional raw body (sent as JSON).
pub async fn call(
    srv: &Server,
    method: Method,
    path: &str,
    auth: As<'_>,
    body: Option<&str>,
) -> ApiResp {
    call_with(srv, method, path, auth, body, &[]).await
}

pub async fn call_with(
    srv: &Server,
    method: Method,
    path: &str,
    auth: As<'_>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> ApiResp {
    let url = format!("{}{}", srv.admin_url(), path);
    let mut headers: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if body.is_some() && !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    match auth {
        As::None => {}
        As::Bearer(t) => headers.push(("authorization".into(), format!("Bearer {t}"))),
        As::SigV4(ak, sk) => {
            headers.extend(sigv4_headers(
                method.as_str(),
                &url,
                &headers,
                body.unwrap_or("").as_bytes(),
                ak,
                sk,
            ));
        }
    }
    let mut req = srv.http().request(method, &url);
    for (k, v) in &headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(b) = body {
        req = req.body(b.to_owned());
    }
    let resp = req.send().await.expect("admin request");
    let status = resp.status().as_u16();
    let hdrs = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    ApiResp {
        status,
        headers: hdrs,
        json,
        text,
    }
}

/// SigV4 headers for an admin request (service "artstore-admin").
pub fn sigv4_headers(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    ak: &str,
    sk: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;
    let identity: aws_smithy_runtime_api::client::identity::Identity =
        aws_credential_types::Credentials::new(ak, sk, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params: aws_sigv4::http_request::SigningParams = v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("artstore-admin")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let (hs, _) = instructions.into_parts();
    hs.into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

/// Token for client credentials through the JSON form of the token endpoint.
pub async fn token(srv: &Server, client_id: &str, secret: &str) -> String {
    let body = json!({"client_id": client_id, "client_secret": secret}).to_string();
    let r = call(
        srv,
        Method::POST,
        "/api/v1/auth/token",
        As::None,
        Some(&body),
    )
    .await;
    r.ok(200)["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

pub async fn admin_token(srv: &Server) -> String {
    token(srv, ROOT_ACCESS_KEY, ROOT_SECRET_KEY).await
}

/// A created account: (id, client_id, client_secret).
pub struct Created {
    pub id: String,
    pub client_id: String,
    pub secret: String,
}

pub async fn create_account(srv: &Server, admin: &str, name: &str, role: &str) -> Created {
    create_account_from(srv, admin, &json!({"name": name, "role": role})).await
}

/// Creates an account from a full request body (rate limit, description, …).
pub async fn create_account_from(srv: &Server, admin: &str, body: &Value) -> Created {
    let body = body.to_string();
    let r = call(
        srv,
        Method::POST,
        "/api/v1/service-accounts",
        As::Bearer(admin),
        Some(&body),
    )
    .await;
    let j = r.ok(201);
    Created {
        id: j["id"].as_str().unwrap().to_owned(),
        client_id: j["client_id"].as_str().unwrap().to_owned(),
        secret: j["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// The decoded JSON header and payload of a JWT.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let p = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&p).unwrap(),
    )
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The server's newest signing key (kid, PEM), read from its index with its master key.
pub async fn server_signing_key(srv: &Server) -> (String, String) {
    use artstore_metadata::{MasterKey, SecretBox, Store};
    let key = std::fs::read_to_string(srv.data_dir().join("master.key")).expect("master.key");
    let url = srv
        .database_url()
        .unwrap_or_else(|| Store::sqlite_url(srv.data_dir()));
    let store = Store::connect(&url, SecretBox::new(&MasterKey::parse(&key).unwrap()))
        .await
        .expect("open index");
    let keys = store.signing_keys().await.expect("signing keys");
    store.close().await;
    let k = keys.into_iter().next().expect("a signing key");
    (k.kid, k.private_pem)
}

/// Signs `claims` RS256 with the given PEM and kid.
pub fn sign_rs256(kid: &str, pem: &str, claims: &Value) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &h,
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
