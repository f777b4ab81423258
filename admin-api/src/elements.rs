//! Storage elements over the admin API (DESIGN.md §6): create, list, read with usage, update
//! description/quota, delete (empty; in a mode other than `edit` only with `?confirm=true`),
//! mode transitions and their history, and an object's attr.json as stored.

use artstore_backends::{BackendConfig, BackendError, LocalConfig};
use artstore_metadata::{
    Element, ElementUpdateError, MetaError, Mode, ModeChangeError, NewElement, allowed_targets,
};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AdminState;
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson};

pub fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(change_mode))
        .routes(routes!(mode_history))
        .routes(routes!(attributes))
        .routes(routes!(effective_policy))
}

/// The effective policy of an element: its mode's Deny statements, then the stored bucket
/// policy's statements as they were set (a stored text that is not JSON adds none).
pub fn effective_policy_of(e: &Element, stored: Option<&str>) -> Value {
    let doc = stored.and_then(|s| {
        serde_json::from_str::<Value>(s)
            .inspect_err(|err| {
                tracing::error!(element = %e.name, error = %err, "stored bucket policy is not JSON");
            })
            .ok()
    });
    artstore_policy::effective_policy(&e.name, e.mode, doc.as_ref())
}

/// The element as the admin API and the CLI show it.
pub fn element_view(e: &Element) -> Value {
    // Whole percent is enough for a dashboard; exact numbers are next to it.
    let quota_used_percent = e
        .capacity_bytes
        .filter(|c| *c > 0)
        .map(|c| e.used_bytes.saturating_mul(100) / c);
    json!({
        "name": e.name,
        "mode": e.mode,
        "backend": BackendConfig::public_view(&e.backend),
        "capacity_bytes": e.capacity_bytes,
        "used_bytes": e.used_bytes,
        "object_count": e.object_count,
        "quota_used_percent": quota_used_percent,
        "description": e.description,
        "created_by": e.created_by,
        "created_ms": e.created_ms,
        "updated_ms": e.updated_ms,
        "mode_changed_ms": e.mode_changed_ms,
        "allowed_mode_targets": allowed_targets(e.mode),
    })
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request(e.body_text())
}

fn parse_mode(s: &str) -> Result<Mode, ApiError> {
    s.parse::<Mode>().map_err(ApiError::bad_request)
}

/// A backend configuration refused at creation: a client mistake, 400 naming the field.
fn backend_refused(e: BackendError) -> ApiError {
    match e {
        BackendError::Config(m) => ApiError::bad_request(m),
        BackendError::Unavailable(_) => ApiError::bad_request(e.to_string()),
        e => ApiError::bad_request(format!("backend: {e}")),
    }
}

/// S3 bucket naming rules (the element is reached as a bucket).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    if artstore_metadata::is_valid_bucket_name(name) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid element name '{name}': 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit, no '..', '.-' or '-.' (S3 bucket naming rules)"
        )))
    }
}

/// Mirrors the element and its mode history into `element.json`. The index is the authority
/// (the gateway reads it per request), so a failure here is logged, not returned.
async fn rewrite_element_json(st: &AdminState, el: &Element) {
    let history = match st.store.mode_history(&el.name).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(element = %el.name, error = %e, "cannot read the mode history; element.json not rewritten");
            return;
        }
    };
    let written = match st.backends.open(&el.name, &el.backend) {
        Ok(b) => b.write_element_json(&el.element_json(&history)).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        tracing::warn!(element = %el.name, error = %e, "cannot rewrite element.json");
    }
}

async fn element(st: &AdminState, name: &str) -> Result<Element, ApiError> {
    st.store
        .get_element(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("storage element '{name}' not found")))
}

/// Where the element's bytes live (documentation of the `backend` field; the body is parsed
/// and checked by `BackendConfig::from_request`, whose errors name the field at fault).
#[derive(ToSchema)]
#[allow(dead_code)]
struct BackendSpec {
    /// `local` or `s3`.
    kind: String,
    /// local: absolute directory for this element's files; default: `<data-dir>/elements/<name>`.
    path: Option<String>,
    /// s3: `http://host:port` or `https://host`.
    endpoint: Option<String>,
    /// s3: default `us-east-1`.
    region: Option<String>,
    /// s3: the remote bucket.
    bucket: Option<String>,
    /// s3: empty or ending with `/`; several elements may share a bucket under different prefixes.
    prefix: Option<String>,
    /// s3: path-style addressing; default true.
    path_style: Option<bool>,
    /// s3: the remote access key id.
    access_key_id: Option<String>,
    /// s3: the remote secret; stored encrypted under the master key, never returned.
    secret_access_key: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateStorageElement)]
struct CreateBody {
    name: String,
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::ModeName>)]
    mode: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<BackendSpec>)]
    backend: Option<Value>,
    #[serde(default)]
    capacity_bytes: Option<i64>,
    #[serde(default)]
    description: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/storage-elements",
    operation_id = "createStorageElement",
    tag = "storage-elements",
    summary = "Create a storage element",
    description = "Admins only. Mode defaults to `edit`.",
    request_body = CreateBody,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 201, description = "The element", body = crate::openapi::StorageElement),
        (status = 400, description = "Malformed body, invalid name, mode or backend", body = crate::openapi::ErrorBody),
        (status = 409, description = "The name is taken", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(st): State<AdminState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin()?;
    check_name(&body.name)?;
    let mode = body
        .mode
        .as_deref()
        .map(parse_mode)
        .transpose()?
        .unwrap_or(Mode::Edit);
    if body.capacity_bytes.is_some_and(|c| c < 0) {
        return Err(ApiError::bad_request("capacity_bytes must be >= 0"));
    }
    let config = match body.backend {
        Some(v) => BackendConfig::from_request(v).map_err(backend_refused)?,
        None => BackendConfig::Local(LocalConfig::default()),
    };
    // Refused before the index row exists: a bad or unavailable backend creates nothing.
    let stored = st
        .backends
        .prepare(&body.name, &config)
        .map_err(backend_refused)?;
    let el = st
        .store
        .create_element(&NewElement {
            name: body.name.clone(),
            mode,
            backend: stored,
            capacity_bytes: body.capacity_bytes,
            description: body.description,
            created_by: caller.identity().name.clone(),
        })
        .await?;
    let made = st
        .backends
        .create(&el.name, &el.backend, &el.element_json(&[]))
        .await;
    if let Err(e) = made {
        // Without its storage the element is unusable: take the row back.
        if let Err(de) = st.store.delete_element(&el.name).await {
            tracing::error!(element = %el.name, error = %de, "cannot undo element creation");
        }
        return Err(match e {
            e @ (BackendError::Config(_) | BackendError::Unavailable(_)) => backend_refused(e),
            BackendError::Io(io) if io.kind() == std::io::ErrorKind::InvalidInput => {
                ApiError::bad_request(io.to_string())
            }
            // Wrong endpoint, bucket or credentials: the remote's own answer, nothing created.
            e @ (BackendError::Remote { .. } | BackendError::RemoteUnreachable { .. }) => {
                ApiError::bad_request(format!("backend: {e}"))
            }
            e => {
                tracing::error!(element = %el.name, error = %e, "cannot create the element's storage");
                ApiError::internal("cannot create the element's storage")
            }
        });
    }
    audit::record(
        &st,
        Some(caller.identity()),
        "element.create",
        Some(&el.name),
        "success",
        Some(format!("mode {}", el.mode)),
    )
    .await;
    Ok((StatusCode::CREATED, Json(element_view(&el))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    mode: Option<String>,
    backend: Option<String>,
    q: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/storage-elements",
    operation_id = "listStorageElements",
    tag = "storage-elements",
    summary = "List storage elements",
    description = "Admins and auditors.",
    params(
        ("mode" = Option<crate::openapi::ModeName>, Query, description = "Only this mode"),
        ("backend" = Option<String>, Query, description = "Only this backend kind, e.g. `local`"),
        ("q" = Option<String>, Query, description = "Name contains this"),
    ),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "Every matching element", body = crate::openapi::StorageElementList),
        (status = 400, description = "Unknown parameter or bad value", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(st): State<AdminState>,
    caller: Caller,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let Query(p) = q.map_err(query_error)?;
    let mode = p.mode.as_deref().map(parse_mode).transpose()?;
    let items: Vec<Value> = st
        .store
        .list_elements()
        .await?
        .iter()
        .filter(|e| mode.is_none_or(|m| e.mode == m))
        .filter(|e| {
            p.backend.as_deref().is_none_or(|k| {
                serde_json::from_str::<Value>(&e.backend)
                    .ok()
                    .and_then(|v| v["kind"].as_str().map(|s| s == k))
                    .unwrap_or(false)
            })
        })
        .filter(|e| p.q.as_deref().is_none_or(|q| e.name.contains(q)))
        .map(element_view)
        .collect();
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(
    get,
    path = "/api/v1/storage-elements/{name}",
    operation_id = "getStorageElement",
    tag = "storage-elements",
    summary = "Read a storage element with its usage",
    description = "Admins and auditors.",
    params(("name" = String, Path, description = "Element (bucket) name")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The element", body = crate::openapi::StorageElement),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
    )
)]
async fn show(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    Ok(Json(element_view(&element(&st, &name).await?)))
}

/// `null` clears a field; an absent field keeps it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateStorageElement)]
struct UpdateBody {
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    capacity_bytes: Option<Option<i64>>,
}

fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[utoipa::path(
    patch,
    path = "/api/v1/storage-elements/{name}",
    operation_id = "updateStorageElement",
    tag = "storage-elements",
    summary = "Update description and quota",
    description = "Admins only. `null` clears a field; a quota below the current usage is refused.",
    params(("name" = String, Path, description = "Element (bucket) name")),
    request_body = UpdateBody,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The element", body = crate::openapi::StorageElement),
        (status = 400, description = "Malformed body or nothing to update", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
        (status = 409, description = "Quota below usage", body = crate::openapi::ErrorBody),
    )
)]
async fn update(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    if body.description.is_none() && body.capacity_bytes.is_none() {
        return Err(ApiError::bad_request(
            "nothing to update: give description and/or capacity_bytes",
        ));
    }
    if body.capacity_bytes.flatten().is_some_and(|c| c < 0) {
        return Err(ApiError::bad_request("capacity_bytes must be >= 0"));
    }
    let el = st
        .store
        .update_element(&name, body.description, body.capacity_bytes)
        .await
        .map_err(|e| match e {
            ElementUpdateError::NotFound(w) => ApiError::not_found(format!("{w} not found")),
            q @ ElementUpdateError::QuotaBelowUsage { .. } => ApiError::conflict(q.to_string()),
            ElementUpdateError::Meta(m) => ApiError::from(m),
        })?;
    rewrite_element_json(&st, &el).await;
    audit::record(
        &st,
        Some(caller.identity()),
        "element.update",
        Some(&el.name),
        "success",
        None,
    )
    .await;
    Ok(Json(element_view(&el)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    #[serde(default)]
    confirm: bool,
}

#[utoipa::path(
    delete,
    path = "/api/v1/storage-elements/{name}",
    operation_id = "deleteStorageElement",
    tag = "storage-elements",
    summary = "Delete a storage element",
    description = "Admins only; only an empty element. One in a mode other than `edit` needs `confirm=true`.",
    params(
        ("name" = String, Path, description = "Element (bucket) name"),
        ("confirm" = Option<bool>, Query, description = "Required to delete an empty element in mode rw, ro or ar"),
    ),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Unknown parameter or bad value", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
        (status = 409, description = "Not empty, or not in mode edit and not confirmed", body = crate::openapi::ErrorBody),
    )
)]
async fn remove(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Result<Query<DeleteParams>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let Query(p) = q.map_err(query_error)?;
    let el = element(&st, &name).await?;
    check_deletable(&el, p.confirm).map_err(ApiError::conflict)?;
    match st.store.delete_element(&name).await {
        Ok(()) => {}
        Err(MetaError::NotEmpty(_)) => {
            return Err(ApiError::conflict(not_empty_message(&name)));
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = st.backends.remove(&name, &el.backend).await {
        tracing::warn!(element = %name, error = %e, "element removed from the index but its storage remains");
    }
    audit::record(
        &st,
        Some(caller.identity()),
        "element.delete",
        Some(&name),
        "success",
        Some(format!(
            "mode {}{}",
            el.mode,
            if p.confirm { ", confirmed" } else { "" }
        )),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The delete rule shared by the admin API and the CLI: an element in mode `edit` may go
/// without ceremony; any other mode only with an explicit confirmation. Emptiness is checked
/// by the index, in the transaction that deletes.
pub fn check_deletable(el: &Element, confirm: bool) -> Result<(), String> {
    if el.mode == Mode::Edit || confirm {
        Ok(())
    } else {
        Err(format!(
            "storage element '{}' is in mode {}: deleting it needs confirmation (confirm=true, or --confirm in the CLI); only an empty element can be deleted",
            el.name, el.mode
        ))
    }
}

pub fn not_empty_message(name: &str) -> String {
    format!("storage element '{name}' is not empty: delete its objects first")
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ChangeMode)]
struct ModeBody {
    #[schema(value_type = crate::openapi::ModeName)]
    mode: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    confirm: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/storage-elements/{name}/mode",
    operation_id = "changeStorageElementMode",
    tag = "storage-elements",
    summary = "Change the mode",
    description = "Admins only. Allowed: `rw → ro`, `ro → ar`, and `ro → rw` with `confirm: true`.",
    params(("name" = String, Path, description = "Element (bucket) name")),
    request_body = ModeBody,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The element in its new mode", body = crate::openapi::StorageElement),
        (status = 400, description = "Malformed body or unknown mode", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
        (status = 409, description = "Illegal transition (the message names the allowed targets) or confirmation missing", body = crate::openapi::ErrorBody),
    )
)]
async fn change_mode(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ModeBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin()?;
    let to = parse_mode(&body.mode)?;
    let who = caller.identity().name.clone();
    let res = st
        .store
        .change_mode(&name, to, &who, body.reason.as_deref(), body.confirm)
        .await;
    let (el, change) = match res {
        Ok(ok) => ok,
        Err(ModeChangeError::NotFound(w)) => {
            return Err(ApiError::not_found(format!("{w} not found")));
        }
        Err(e @ (ModeChangeError::Illegal { .. } | ModeChangeError::ConfirmRequired { .. })) => {
            audit::record(
                &st,
                Some(caller.identity()),
                "element.mode",
                Some(&name),
                "denied",
                Some(e.to_string()),
            )
            .await;
            return Err(ApiError::conflict(e.to_string()));
        }
        Err(ModeChangeError::Meta(m)) => return Err(m.into()),
    };
    rewrite_element_json(&st, &el).await;
    audit::record(
        &st,
        Some(caller.identity()),
        "element.mode",
        Some(&name),
        "success",
        Some(format!(
            "{} -> {}{}",
            change.from,
            change.to,
            change
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )),
    )
    .await;
    Ok(Json(element_view(&el)))
}

#[utoipa::path(
    get,
    path = "/api/v1/storage-elements/{name}/mode-history",
    operation_id = "getStorageElementModeHistory",
    tag = "storage-elements",
    summary = "Mode transitions",
    description = "Admins and auditors.",
    params(("name" = String, Path, description = "Element (bucket) name")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "Every recorded transition", body = crate::openapi::ModeHistory),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
    )
)]
async fn mode_history(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    element(&st, &name).await?;
    let items = st.store.mode_history(&name).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttrParams {
    key: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/storage-elements/{name}/attributes",
    operation_id = "getObjectAttributes",
    tag = "storage-elements",
    summary = "An object's attr.json",
    description = "Admins and auditors. The sidecar exactly as stored.",
    params(("name" = String, Path, description = "Element (bucket) name"), ("key" = String, Query, description = "Object key")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The attr.json document", body = Object),
        (status = 400, description = "Missing key parameter", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such element or object", body = crate::openapi::ErrorBody),
    )
)]
async fn attributes(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
    q: Result<Query<AttrParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let Query(p) = q.map_err(query_error)?;
    let el = element(&st, &name).await?;
    let rec =
        st.store.get_object(&name, &p.key).await?.ok_or_else(|| {
            ApiError::not_found(format!("object '{}' not found in '{name}'", p.key))
        })?;
    let attr_rel = format!("{}.attr.json", rec.storage_path);
    let read = match st.backends.open(&name, &el.backend) {
        Ok(b) => b.read_attr_bytes(&attr_rel).await,
        Err(e) => Err(e),
    };
    let bytes = read.map_err(|e| {
        tracing::error!(element = %name, path = %attr_rel, error = %e, "cannot read attr.json");
        ApiError::internal("the object's attr.json cannot be read")
    })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        tracing::error!(element = %name, path = %attr_rel, error = %e, "attr.json is not JSON");
        ApiError::internal("the object's attr.json is not valid JSON")
    })?;
    Ok(Json(v))
}

#[utoipa::path(
    get,
    path = "/api/v1/storage-elements/{name}/policy",
    operation_id = "getStorageElementPolicy",
    tag = "storage-elements",
    summary = "The effective access policy",
    description = "Admins and auditors. The mode's Deny statements followed by the statements of the stored bucket policy, as one policy document.",
    params(("name" = String, Path, description = "Element (bucket) name")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The effective policy document", body = Object),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
    )
)]
async fn effective_policy(
    State(st): State<AdminState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let el = element(&st, &name).await?;
    let stored = st.store.bucket_policy(&name).await?;
    Ok(Json(effective_policy_of(&el, stored.as_deref())))
}
