//! The audit log: recording (best effort: a failed write is logged, never fails the request)
//! and `GET /api/v1/audit` for admins and auditors.

use artstore_metadata::{AuditEvent, AuditQuery, Identity};
use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AdminState;
use crate::auth::Caller;
use crate::error::{ApiError, request_id, request_source};
use crate::query::Params;

pub fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Records one event for the current request.
pub async fn record(
    st: &AdminState,
    actor: Option<&Identity>,
    action: &str,
    target: Option<&str>,
    outcome: &str,
    detail: Option<String>,
) {
    let ev = AuditEvent {
        actor_id: actor.map(|a| a.account_id.clone()),
        actor_name: actor.map(|a| a.name.clone()),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        outcome: outcome.to_owned(),
        source: request_source(),
        request_id: Some(request_id()).filter(|s| !s.is_empty()),
        detail,
        ..AuditEvent::default()
    };
    if let Err(e) = st.store.record_audit(&ev).await {
        tracing::error!(error = %e, action, "cannot write audit event");
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "listAuditEvents",
    tag = "audit",
    summary = "List audit events, newest first",
    description = "Admins and auditors. Admin actions, token issues and refusals, refused admin \
        and S3 requests.",
    params(
        ("action" = Option<String>, Query, description = "e.g. `account.create`, `s3.denied`"),
        ("actor_id" = Option<String>, Query, description = "Account id of the actor"),
        ("outcome" = Option<String>, Query, description = "`success`, `denied` or `failure`"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("offset" = Option<i64>, Query, minimum = 0, description = "Items to skip"),
    ),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "One page", body = crate::openapi::AuditList),
        (status = 400, description = "Unknown parameter or bad value", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(st): State<AdminState>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require_read()?;
    let p = Params::parse(
        q.as_deref(),
        &["action", "actor_id", "outcome", "limit", "offset"],
    )?;
    let limit = p.int("limit", 100, 1, 1000)?;
    let offset = p.int("offset", 0, 0, i64::MAX)?;
    let items = st
        .store
        .list_audit(&AuditQuery {
            action: p.str("action"),
            actor_id: p.str("actor_id"),
            outcome: p.str("outcome"),
            limit,
            offset,
        })
        .await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id, "at": crate::rfc3339(e.at_ms), "actor_id": e.actor_id,
                "actor_name": e.actor_name, "action": e.action, "target": e.target,
                "outcome": e.outcome, "source": e.source, "request_id": e.request_id,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(
        json!({"items": items, "limit": limit, "offset": offset}),
    ))
}
