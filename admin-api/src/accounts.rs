//! `/api/v1/service-accounts`: create, list, read, update, soft delete, suspend/activate,
//! rotate-secret and bucket grants. Secrets are returned only by create and rotate-secret.

use artstore_metadata::{
    Account, AccountQuery, AccountStatus, AccountUpdate, Identity, NewAccount, Role, now_ms,
};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::record;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};
use crate::query::Params;
use crate::{AdminState, rfc3339};

/// Default secret lifetime (DESIGN.md §5).
pub const SECRET_LIFETIME_MS: i64 = 90 * 24 * 3600 * 1000;

pub fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(suspend))
        .routes(routes!(activate))
        .routes(routes!(set_grants))
}

/// A new access key id: `AS` + 18 upper-case letters/digits.
pub fn new_client_id() -> String {
    format!("AS{}", random(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
}

/// A new secret: 40 letters/digits (safe in forms, URLs and HTTP Basic without escaping).
pub fn new_secret() -> String {
    random(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    )
}

fn random(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

/// Account as JSON, without its secret.
pub fn account_json(a: &Account) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "client_id": a.client_id,
        "role": a.role,
        "status": a.status.as_str(),
        "rate_limit": a.rate_limit,
        "secret_expires_at": a.secret_expires_ms.map(rfc3339),
        "is_system": a.is_system,
        "created_at": rfc3339(a.created_ms),
        "updated_at": rfc3339(a.updated_ms),
    })
}

pub fn validate_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "name must be 1-64 characters of letters, digits, '-', '_', '.', '@'",
        ))
    }
}

pub fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse::<Role>().map_err(|_| {
        ApiError::bad_request(format!(
            "unknown role '{role}' (expected admin, user, auditor or readonly)"
        ))
    })
}

fn validate_rate(rate: Option<i64>) -> Result<(), ApiError> {
    match rate {
        Some(r) if r < 1 => Err(ApiError::bad_request(
            "rate_limit must be a positive number of requests per minute, or null",
        )),
        _ => Ok(()),
    }
}

fn parse_time(s: &str) -> Result<i64, ApiError> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "secret_expires_at must be an RFC 3339 time, got '{s}'"
            ))
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ApiError::bad_request("secret_expires_at out of range"))
}

/// `Some(None)` for an explicit JSON null, `None` for an absent field.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

async fn load(st: &AdminState, id: &str) -> Result<Account, ApiError> {
    st.store
        .account_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("service account '{id}' not found")))
}

async fn audit_ok(st: &AdminState, who: &Identity, action: &str, target: &Account) {
    record(
        st,
        Some(who),
        action,
        Some(&target.id),
        "success",
        Some(format!("account '{}'", target.name)),
    )
    .await;
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateServiceAccount)]
struct CreateBody {
    /// 1-64 letters, digits, `-`, `_`, `.`, `@`; unique.
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[schema(value_type = crate::openapi::RoleName)]
    role: String,
    /// Requests per minute (S3 and admin together); absent or `null` = unlimited.
    #[serde(default)]
    rate_limit: Option<i64>,
    /// RFC 3339; default 90 days from now.
    #[schema(format = DateTime)]
    #[serde(default)]
    secret_expires_at: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts",
    operation_id = "createServiceAccount",
    tag = "service-accounts",
    summary = "Create a service account",
    description = "Admins only. The answer is the only place the `client_secret` is ever shown.",
    request_body = CreateBody,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 201, description = "The account with its client_secret", body = crate::openapi::ServiceAccountWithSecret),
        (status = 400, description = "Malformed body, unknown field, invalid name or role", body = crate::openapi::ErrorBody),
        (status = 409, description = "The name is taken", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(st): State<AdminState>,
    caller: Caller,
    ApiJson(b): ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    validate_name(&b.name)?;
    let role = parse_role(&b.role)?;
    validate_rate(b.rate_limit)?;
    let expires = match &b.secret_expires_at {
        Some(s) => parse_time(s)?,
        None => now_ms() + SECRET_LIFETIME_MS,
    };
    let secret = new_secret();
    let acc = st
        .store
        .create_account(&NewAccount {
            name: b.name,
            description: b.description,
            client_id: new_client_id(),
            client_secret: secret.clone(),
            role,
            rate_limit: b.rate_limit,
            secret_expires_ms: Some(expires),
            is_system: false,
        })
        .await?;
    audit_ok(&st, caller.identity(), "account.create", &acc).await;
    let mut body = account_json(&acc);
    body["client_secret"] = Value::String(secret);
    body["grants"] = json!([]);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/service-accounts",
    operation_id = "listServiceAccounts",
    tag = "service-accounts",
    summary = "List service accounts",
    description = "Admins and auditors. Deleted accounts appear only with `status=deleted`.",
    params(
        ("role" = Option<crate::openapi::RoleName>, Query, description = "Only this role"),
        ("status" = Option<crate::openapi::AccountStatusName>, Query, description = "Only this status (default: all but deleted)"),
        ("name" = Option<String>, Query, description = "Name contains this"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Items to skip"),
    ),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "One page", body = crate::openapi::ServiceAccountList),
        (status = 400, description = "Unknown parameter or bad value", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(st): State<AdminState>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let p = Params::parse(q.as_deref(), &["role", "status", "name", "limit", "offset"])?;
    if let Some(r) = p.str("role") {
        parse_role(&r)?;
    }
    if let Some(s) = p.str("status") {
        s.parse::<AccountStatus>().map_err(ApiError::bad_request)?;
    }
    let limit = p.int("limit", 100, 1, 1000)?;
    let offset = p.int("offset", 0, 0, i64::MAX)?;
    let (items, total) = st
        .store
        .list_accounts(&AccountQuery {
            role: p.str("role"),
            status: p.str("status"),
            name: p.str("name"),
            limit,
            offset,
        })
        .await?;
    let items: Vec<Value> = items.iter().map(account_json).collect();
    Ok(Json(json!({
        "items": items, "total": total, "limit": limit, "offset": offset,
    })))
}

async fn with_grants(st: &AdminState, acc: &Account) -> Result<Value, ApiError> {
    let grants: Vec<Value> = st
        .store
        .grants_for(&acc.id)
        .await?
        .into_iter()
        .map(|(bucket, access)| json!({"bucket": bucket, "access": access}))
        .collect();
    let mut body = account_json(acc);
    body["grants"] = Value::Array(grants);
    Ok(body)
}

#[utoipa::path(
    get,
    path = "/api/v1/service-accounts/{id}",
    operation_id = "getServiceAccount",
    tag = "service-accounts",
    summary = "Read a service account",
    description = "Admins and auditors; with its grants, never its secret.",
    params(("id" = String, Path, description = "Account id")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The account", body = crate::openapi::ServiceAccount),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
    )
)]
async fn show(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let acc = load(&st, &id).await?;
    Ok(Json(with_grants(&st, &acc).await?))
}

/// Absent fields are kept; `null` clears a nullable field.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateServiceAccount)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::RoleName>)]
    role: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit: Option<Option<i64>>,
    /// `active`, `suspended` or `expired` (use DELETE to delete).
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::AccountStatusName>)]
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = DateTime)]
    secret_expires_at: Option<Option<String>>,
}

/// Refuses changes that would lock the system out: the system admin stays an active admin.
pub fn guard_system(
    acc: &Account,
    role: Option<Role>,
    status: Option<AccountStatus>,
) -> Result<(), ApiError> {
    if !acc.is_system {
        return Ok(());
    }
    if role.is_some_and(|r| r != Role::Admin) {
        return Err(ApiError::conflict(format!(
            "'{}' is the system admin account; its role cannot be changed",
            acc.name
        )));
    }
    if status.is_some_and(|s| s != AccountStatus::Active) {
        return Err(ApiError::conflict(format!(
            "'{}' is the system admin account; it cannot be suspended, expired or deleted",
            acc.name
        )));
    }
    Ok(())
}

pub fn guard_deleted(acc: &Account) -> Result<(), ApiError> {
    if acc.status == AccountStatus::Deleted {
        return Err(ApiError::conflict(format!(
            "service account '{}' is deleted",
            acc.name
        )));
    }
    Ok(())
}

#[utoipa::path(
    patch,
    path = "/api/v1/service-accounts/{id}",
    operation_id = "updateServiceAccount",
    tag = "service-accounts",
    summary = "Update a service account",
    description = "Admins only. The system admin cannot be demoted, suspended or given a secret expiry (409).",
    params(("id" = String, Path, description = "Account id")),
    request_body = UpdateBody,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The updated account", body = crate::openapi::ServiceAccount),
        (status = 400, description = "Malformed body or invalid value", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
        (status = 409, description = "Name taken, deleted account, or a change to the system admin", body = crate::openapi::ErrorBody),
    )
)]
async fn update(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let acc = load(&st, &id).await?;
    guard_deleted(&acc)?;
    if let Some(n) = &b.name {
        validate_name(n)?;
    }
    let role = b.role.as_deref().map(parse_role).transpose()?;
    let status = match b.status.as_deref() {
        None => None,
        Some("deleted") => {
            return Err(ApiError::bad_request(
                "use DELETE to delete a service account",
            ));
        }
        Some(s) => Some(s.parse::<AccountStatus>().map_err(|_| {
            ApiError::bad_request(format!(
                "unknown status '{s}' (expected active, suspended or expired)"
            ))
        })?),
    };
    if let Some(r) = b.rate_limit {
        validate_rate(r)?;
    }
    let expires = match &b.secret_expires_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => Some(Some(parse_time(s)?)),
    };
    guard_system(&acc, role, status)?;
    if acc.is_system && expires.is_some() {
        // An expiry would lock the system admin out once it passes.
        return Err(ApiError::conflict(format!(
            "'{}' is the system admin account; its secret does not expire",
            acc.name
        )));
    }
    let updated = st
        .store
        .update_account(
            &id,
            &AccountUpdate {
                name: b.name,
                description: b.description,
                role: role.map(|r| r.as_str().to_owned()),
                rate_limit: b.rate_limit,
                status,
                secret_expires_ms: expires,
            },
        )
        .await?;
    audit_ok(&st, caller.identity(), "account.update", &updated).await;
    Ok(Json(with_grants(&st, &updated).await?))
}

async fn set_status(
    st: &AdminState,
    caller: &Caller,
    id: &str,
    status: AccountStatus,
    action: &str,
) -> Result<Account, ApiError> {
    caller.require_admin()?;
    let acc = load(st, id).await?;
    guard_deleted(&acc)?;
    guard_system(&acc, None, Some(status))?;
    let updated = st
        .store
        .update_account(
            id,
            &AccountUpdate {
                status: Some(status),
                ..AccountUpdate::default()
            },
        )
        .await?;
    audit_ok(st, caller.identity(), action, &updated).await;
    Ok(updated)
}

#[utoipa::path(
    delete,
    path = "/api/v1/service-accounts/{id}",
    operation_id = "deleteServiceAccount",
    tag = "service-accounts",
    summary = "Delete a service account (soft)",
    description = "Admins only. The account can no longer sign, get tokens or use old tokens.",
    params(("id" = String, Path, description = "Account id")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
        (status = 409, description = "Already deleted, or the system admin", body = crate::openapi::ErrorBody),
    )
)]
async fn remove(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_status(&st, &caller, &id, AccountStatus::Deleted, "account.delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{id}/suspend",
    operation_id = "suspendServiceAccount",
    tag = "service-accounts",
    summary = "Suspend a service account",
    description = "Admins only. Its SigV4 requests and tokens are refused from now on.",
    params(("id" = String, Path, description = "Account id")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The suspended account", body = crate::openapi::ServiceAccount),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
        (status = 409, description = "Deleted account, or the system admin", body = crate::openapi::ErrorBody),
    )
)]
async fn suspend(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let acc = set_status(
        &st,
        &caller,
        &id,
        AccountStatus::Suspended,
        "account.suspend",
    )
    .await?;
    Ok(Json(account_json(&acc)))
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{id}/activate",
    operation_id = "activateServiceAccount",
    tag = "service-accounts",
    summary = "Activate a service account",
    description = "Admins only.",
    params(("id" = String, Path, description = "Account id")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The active account", body = crate::openapi::ServiceAccount),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
        (status = 409, description = "Deleted account", body = crate::openapi::ErrorBody),
    )
)]
async fn activate(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let acc = set_status(&st, &caller, &id, AccountStatus::Active, "account.activate").await?;
    Ok(Json(account_json(&acc)))
}

#[utoipa::path(
    post,
    path = "/api/v1/service-accounts/{id}/rotate-secret",
    operation_id = "rotateServiceAccountSecret",
    tag = "service-accounts",
    summary = "Rotate the secret",
    description = "Admins only. The old secret stops working at once; the new one is shown only in this answer.",
    params(("id" = String, Path, description = "Account id")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The account with its new client_secret", body = crate::openapi::ServiceAccountWithSecret),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
        (status = 409, description = "Deleted account", body = crate::openapi::ErrorBody),
    )
)]
async fn rotate_secret(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let acc = load(&st, &id).await?;
    guard_deleted(&acc)?;
    let secret = new_secret();
    let expires = if acc.is_system {
        acc.secret_expires_ms
    } else {
        Some(now_ms() + SECRET_LIFETIME_MS)
    };
    st.store
        .rotate_account_secret(&id, &secret, expires)
        .await?;
    let acc = load(&st, &id).await?;
    audit_ok(&st, caller.identity(), "account.rotate_secret", &acc).await;
    let mut body = account_json(&acc);
    body["client_secret"] = Value::String(secret);
    Ok(Json(body))
}

/// Validates a full set of grants (bucket, access): the rule shared by the admin API and the
/// CLI.
pub fn check_grants(
    items: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut grants: Vec<(String, String)> = Vec::new();
    for (bucket, access) in items {
        if !artstore_metadata::is_valid_bucket_name(&bucket) {
            return Err(ApiError::bad_request(format!(
                "'{bucket}' is not a valid bucket name"
            )));
        }
        if access != "read" && access != "write" {
            return Err(ApiError::bad_request(format!(
                "access must be 'read' or 'write', got '{access}'"
            )));
        }
        if grants.iter().any(|(b, _)| *b == bucket) {
            return Err(ApiError::bad_request(format!(
                "bucket '{bucket}' is listed twice"
            )));
        }
        grants.push((bucket, access));
    }
    Ok(grants)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Grant {
    /// A bucket (storage element) name.
    bucket: String,
    #[schema(value_type = crate::openapi::AccessName)]
    access: String,
}

/// Replaces all of the account's grants; an empty list removes them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SetGrants)]
struct GrantsBody {
    grants: Vec<Grant>,
}

#[utoipa::path(
    put,
    path = "/api/v1/service-accounts/{id}/grants",
    operation_id = "setServiceAccountGrants",
    tag = "service-accounts",
    summary = "Replace the bucket grants",
    description = "Admins only. `user` and `readonly` accounts reach every bucket while they have no grants, and only the granted ones once they have any.",
    params(("id" = String, Path, description = "Account id")),
    request_body = GrantsBody,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The account with its grants", body = crate::openapi::ServiceAccount),
        (status = 400, description = "Malformed body, invalid bucket or access, a bucket twice", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such account", body = crate::openapi::ErrorBody),
        (status = 409, description = "Deleted account", body = crate::openapi::ErrorBody),
    )
)]
async fn set_grants(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<GrantsBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let acc = load(&st, &id).await?;
    guard_deleted(&acc)?;
    let grants = check_grants(b.grants.into_iter().map(|g| (g.bucket, g.access)))?;
    st.store.set_grants(&id, &grants).await?;
    audit_ok(&st, caller.identity(), "account.grants", &acc).await;
    Ok(Json(with_grants(&st, &acc).await?))
}
