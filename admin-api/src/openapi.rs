//! The OpenAPI 3 document of the admin API, served at `GET /api/v1/openapi.json`.
//!
//! The paths come from the router itself (`utoipa_axum::routes!` registers a handler and its
//! `#[utoipa::path]` together), so a route cannot exist without being documented. This module
//! adds what is common to all of them: the error shape, the security schemes, the standard
//! refusals of authenticated operations, and the response schemas of handlers that build JSON.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Security scheme names used by `security(...)` on the operations.
pub const BEARER: &str = "bearer";
pub const SIGV4: &str = "sigv4";
pub const CLIENT_BASIC: &str = "client_basic";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ArtStore admin API",
        description = "Service accounts, tokens, storage elements, audit log, search, maintenance jobs, probes and metrics of \
            an ArtStore node. Every error is JSON `{error, message, request_id}`; the request id is \
            also in the `x-request-id` header. Authenticated operations accept an admin (or, for \
            reads, auditor) bearer JWT from `POST /api/v1/auth/token`, or a SigV4-signed request; \
            search is open to every active account.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(ready_doc),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Tokens and signing keys"),
        (name = "service-accounts", description = "Machine identities: S3 keys, roles, grants"),
        (name = "storage-elements", description = "Buckets with lifecycle modes and quotas"),
        (name = "audit", description = "Who did what"),
        (name = "search", description = "Find objects by text, attributes and tags"),
        (name = "maintenance", description = "Background verify, rebuild and import jobs with progress"),
        (name = "operations", description = "Probes, metrics and this document (no authentication)"),
    )
)]
pub struct ApiDoc;

/// The document, built once from the router (the same routes the server serves).
static DOCUMENT: LazyLock<String> = LazyLock::new(|| match crate::openapi().to_pretty_json() {
    Ok(s) => s,
    Err(e) => {
        tracing::error!(error = %e, "cannot serialise the OpenAPI document");
        String::from("{}")
    }
});

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = "operations",
    summary = "This OpenAPI 3 document",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> Response {
    let mut resp = DOCUMENT.as_str().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `GET /health/ready`: documented here because its handler (health.rs) is routed outside
/// `routes!`.
#[utoipa::path(
    get,
    path = "/health/ready",
    operation_id = "ready",
    tag = "operations",
    summary = "Readiness probe",
    description = "Each dependency with its own check and latency: the index database, Redis \
        (when configured), `coordination` (whether this node receives the cache invalidations through \
        Redis; `down`: cached control data expires after a short TTL) and the remote backends of storage elements (by element name). 200 while \
        the index answers: `status` is `ready`, or `degraded` when Redis, coordination or a remote backend is down \
        (the node still serves). 503 `unavailable` when the index is down. Each check is bounded \
        (0.8 s), so the probe answers within about a second even when a dependency hangs. No \
        authentication.",
    responses(
        (status = 200, description = "Ready or degraded", body = crate::health::Ready),
        (status = 503, description = "The index database is down", body = crate::health::Ready),
    )
)]
#[allow(dead_code)]
fn ready_doc() {}

/// Completes the document once the router has added every path: the security schemes, and for
/// every operation that requires one, the refusals any authenticated endpoint can give (401,
/// 403, 429), all with the JSON error body.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    Common.modify(doc);
}

struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "RS256 access token from `POST /api/v1/auth/token` (public keys at \
                         `/.well-known/jwks.json`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLIENT_BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Token endpoint only: client_id and client_secret as HTTP Basic \
                         (RFC 6749 §2.3.1)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SIGV4,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS Signature Version 4 (`AWS4-HMAC-SHA256 Credential=<client_id>/…, \
                 SignedHeaders=…, Signature=…`), any service name, with `x-amz-date` and \
                 `x-amz-content-sha256` (the real body hash) signed; the secret is the \
                 account's client_secret",
            ))),
        );
        let refusals = [
            (
                "401",
                "Missing, invalid or expired credentials, or an account that is not active",
            ),
            ("403", "The caller's role may not do this"),
            (
                "429",
                "The account's rate limit is used up (see `Retry-After`)",
            ),
        ];
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                // Operations with a required scheme; the token endpoint's Basic is optional
                // and documents its own refusals.
                let required = op.security.as_ref().is_some_and(|reqs| {
                    !reqs.is_empty()
                        && reqs.iter().all(|r| {
                            serde_json::to_value(r).is_ok_and(|v| v != serde_json::json!({}))
                        })
                });
                if !required {
                    continue;
                }
                for (code, description) in refusals {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| RefOr::T(error_response(description)));
                }
            }
        }
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

// ------------------------------------------------------------------------------------------
// Response shapes. The handlers build these objects with `json!`; the tests check real answers
// against the field names given here.
// ------------------------------------------------------------------------------------------

/// Every admin API error.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "not_found", "message": "service account 'x' not found", "request_id": "9F1C2B7A4D3E5F60"}))]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `rate_limited`, `invalid_client`, `invalid_parameter`,
    /// `unavailable`, `internal`.
    pub error: String,
    /// What is wrong, for people.
    pub message: String,
    /// The request's id (also in `x-request-id`).
    pub request_id: String,
    /// With `invalid_parameter`: the parameter at fault (e.g. `limit`, `attr.year.gte`).
    pub parameter: Option<String>,
    /// With a `conflict` of a maintenance job: the job that holds the element.
    pub job_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleName {
    Admin,
    User,
    Auditor,
    Readonly,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatusName {
    Active,
    Suspended,
    Expired,
    Deleted,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Edit,
    Rw,
    Ro,
    Ar,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessName {
    Read,
    Write,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// RS256 JWT (header `kid`; claims `iss aud sub client_id name role jti iat nbf exp`).
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Lifetime in seconds.
    #[schema(example = 1800)]
    pub expires_in: i64,
    /// Unix time (seconds).
    pub issued_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "RSA")]
    pub kty: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
    #[schema(example = "RS256")]
    pub alg: String,
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    /// Id of the new signing key.
    pub kid: String,
    #[schema(example = "RS256")]
    pub alg: String,
}

#[derive(Serialize, ToSchema)]
pub struct GrantView {
    pub bucket: String,
    #[schema(value_type = AccessName)]
    pub access: String,
}

/// A service account (never with its secret).
#[derive(Serialize, ToSchema)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The S3 access key id.
    pub client_id: String,
    #[schema(value_type = RoleName)]
    pub role: String,
    #[schema(value_type = AccountStatusName)]
    pub status: String,
    /// Requests per minute; `null` = unlimited.
    pub rate_limit: Option<i64>,
    #[schema(format = DateTime)]
    pub secret_expires_at: Option<String>,
    /// The initial admin: cannot be deleted, suspended or demoted.
    pub is_system: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Bucket grants (in single-account answers).
    pub grants: Option<Vec<GrantView>>,
}

/// A service account with its secret: only the answers of create and rotate-secret.
#[derive(Serialize, ToSchema)]
pub struct ServiceAccountWithSecret {
    #[serde(flatten)]
    pub account: ServiceAccount,
    /// The S3 secret key; shown only in this answer.
    pub client_secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceAccountList {
    pub items: Vec<ServiceAccount>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StorageElement {
    pub name: String,
    #[schema(value_type = ModeName)]
    pub mode: String,
    /// Where the bytes live, e.g. `{"kind": "local"}`, or an `s3` configuration without its
    /// `secret_access_key` (never returned).
    #[schema(value_type = Object)]
    pub backend: serde_json::Value,
    pub capacity_bytes: Option<i64>,
    pub used_bytes: i64,
    pub object_count: i64,
    /// Whole percent of the quota in use.
    pub quota_used_percent: Option<i64>,
    pub description: Option<String>,
    pub created_by: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    pub updated_ms: i64,
    pub mode_changed_ms: Option<i64>,
    #[schema(value_type = Vec<ModeName>)]
    pub allowed_mode_targets: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StorageElementList {
    pub items: Vec<StorageElement>,
}

#[derive(Serialize, ToSchema)]
pub struct ModeChangeView {
    pub id: String,
    pub element: String,
    #[schema(value_type = ModeName)]
    pub from: String,
    #[schema(value_type = ModeName)]
    pub to: String,
    pub changed_by: String,
    pub reason: Option<String>,
    pub changed_ms: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ModeHistory {
    pub items: Vec<ModeChangeView>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    /// e.g. `account.create`, `token.issue`, `admin.denied`, `s3.denied`.
    pub action: String,
    pub target: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Client address.
    pub source: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub limit: i64,
    pub offset: i64,
}
