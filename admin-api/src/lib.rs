//! ArtStore's admin REST API (DESIGN.md §6): probes, tokens, accounts, elements, audit,
//! maintenance jobs and search.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod elements;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod maintenance;
pub mod metrics;
pub mod openapi;
pub mod progress;
mod query;
pub mod ratelimit;
pub mod search;
pub mod sigv4;
pub mod tokens;

use std::sync::Arc;

use artstore_metadata::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    /// Token signing keys (issue, verify, JWKS).
    pub keys: Arc<keys::KeyRing>,
    /// Per-account request limits (shared with the S3 endpoint) and token-endpoint limits.
    pub limiter: Arc<ratelimit::RateLimiter>,
    /// The local backend: element directories, element.json and sidecars.
    pub fs: artstore_backends::LocalFs,
    /// Request counters and histograms of both endpoints, served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// Parsed bucket policies, for search's access checks.
    pub policies: Arc<artstore_policy::PolicyCache>,
    /// Maintenance jobs started on this node (the jobs themselves live in the index).
    pub jobs: Arc<jobs::Jobs>,
}

/// Every admin route with its OpenAPI description: the router and the document come from here.
fn api() -> OpenApiRouter<AdminState> {
    OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(live))
        // Documented in openapi.rs (`ready_doc`).
        .route("/health/ready", get(ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_json))
        .merge(tokens::routes())
        .merge(accounts::routes())
        .merge(audit::routes())
        .merge(elements::routes())
        .merge(search::routes())
        .merge(jobs::routes())
}

/// The OpenAPI document of the admin API (what `GET /api/v1/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    openapi::finish(&mut doc);
    doc
}

pub fn router(state: AdminState) -> Router {
    api()
        .split_for_parts()
        .0
        .with_state(state.clone())
        // Outermost last: request id for every response (errors carry it in their body).
        .layer(axum::middleware::from_fn(sigv4::body_digest))
        .layer(axum::extract::DefaultBodyLimit::max(sigv4::MAX_SIGNED_BODY))
        .layer(axum::middleware::from_fn_with_state(state, request_ctx))
}

#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "live",
    tag = "operations",
    summary = "Liveness probe",
    description = "200 while the process serves requests. No authentication.",
    responses((status = 200, description = "Alive", body = openapi::Live))
)]
async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// How long each readiness check may take: the probe answers within about a second even when
/// the database or Redis hangs.
const READY_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// Ready when the index answers; the database is critical. Redis is optional: without it rate
/// limits count per node and cached control data expires after a short TTL instead of being
/// invalidated (`coordination`), so the node serves but reports `degraded`.
async fn ready(State(st): State<AdminState>) -> (StatusCode, Json<Value>) {
    // Both checks run at once, each bounded, so the probe never waits for a pool timeout.
    let (db, redis) = tokio::join!(
        tokio::time::timeout(READY_CHECK_TIMEOUT, st.store.ping()),
        tokio::time::timeout(READY_CHECK_TIMEOUT, st.limiter.redis_ok()),
    );
    let database = match db {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed: database");
            "down"
        }
        Err(_) => {
            tracing::warn!("readiness check failed: database did not answer in time");
            "down"
        }
    };
    let redis = match redis {
        Ok(None) => "not_configured",
        Ok(Some(true)) => "ok",
        Ok(Some(false)) | Err(_) => "down",
    };
    let coordination = st.store.coordination().as_str();
    let (code, status) = match (database, redis, coordination) {
        ("down", _, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (_, "down", _) | (_, _, "down") => (StatusCode::OK, "degraded"),
        _ => (StatusCode::OK, "ok"),
    };
    (
        code,
        Json(json!({
            "status": status,
            "checks": {"database": database, "redis": redis, "coordination": coordination},
        })),
    )
}

/// Gives every admin request an id (in `x-request-id` and in JSON error bodies) and its
/// client address, records refused requests (401/403) in the audit log, and counts the request
/// in the metrics by its route template.
async fn request_ctx(
    State(st): State<AdminState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let start = std::time::Instant::now();
    let method = req.method().clone();
    // Set by the router before route layers run; absent when no route matched.
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let target = format!("{} {}", req.method(), req.uri().path());
    let req_path = req.uri().path().to_owned();
    let operation = match &matched {
        Some(m) => format!("{method} {}", m.as_str()),
        None => format!("{method} {}", req.uri().path()),
    };
    let ctx = Arc::new(error::RequestCtx {
        id: id.clone(),
        operation,
        source,
        actor: std::sync::Mutex::new(None),
    });
    let mut resp = error::REQUEST_CTX
        .scope(ctx.clone(), async {
            let resp = next.run(req).await;
            let status = resp.status();
            // The token endpoint audits its own refusals, with the client id. Refused and failed
            // admin requests are audited here; handlers audit their successful actions. Probes
            // are not admin requests: a failing readiness check during an outage would flood the
            // log (and wait for the index it reports as down).
            let probe = req_path.starts_with("/health/") || req_path == "/metrics";
            if status.as_u16() >= 400 && !target.ends_with("/api/v1/auth/token") && !probe {
                let denied = matches!(status.as_u16(), 401 | 403 | 429);
                let actor = ctx.actor.lock().ok().and_then(|a| a.clone());
                audit::record(
                    &st,
                    actor.as_ref(),
                    if denied {
                        "admin.denied"
                    } else {
                        "admin.rejected"
                    },
                    Some(&target),
                    if denied { "denied" } else { "failure" },
                    Some(format!("HTTP {}", status.as_u16())),
                )
                .await;
            }
            resp
        })
        .await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    st.metrics.admin_request(
        &method,
        matched.as_ref().map(|m| m.as_str()),
        resp.status().as_u16(),
        start.elapsed(),
    );
    resp
}

/// Milliseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
