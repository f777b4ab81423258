//! Probes: liveness, and readiness with a bounded, timed check of every dependency.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use artstore_backends::BackendConfig;
use artstore_metadata::DbKind;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::AdminState;

/// How long each readiness check may take: the probe answers within about a second even when
/// the database, Redis or a backend hangs.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// The node as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    /// Every dependency answers.
    Ready,
    /// The index answers, so the node serves (HTTP 200), but Redis or a remote backend does
    /// not.
    Degraded,
    /// The index does not answer (HTTP 503): take the node out of the load balancer.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Down,
}

/// One dependency's check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Check {
    pub status: CheckStatus,
    /// How long the check took, in milliseconds.
    #[schema(example = 0.42)]
    pub latency_ms: f64,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The index database's check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IndexCheck {
    /// `sqlite` or `postgres`.
    #[schema(example = "postgres")]
    pub kind: String,
    #[serde(flatten)]
    pub check: Check,
}

/// Body of `GET /health/ready`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    pub status: Readiness,
    pub index: IndexCheck,
    /// Present when Redis is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<Check>,
    /// Whether this node receives the cache invalidations through Redis: `ok`, `down` (cached
    /// control data then expires after a short TTL) or `not_configured` (no Redis).
    #[schema(example = "ok")]
    pub coordination: &'static str,
    /// Remote backends of storage elements, by element name (local directories are not
    /// listed).
    pub backends: BTreeMap<String, Check>,
}

#[utoipa::path(
    get,
    path = "/health/live",
    operation_id = "live",
    tag = "operations",
    summary = "Liveness probe",
    description = "200 while the process serves requests. No authentication.",
    responses((status = 200, description = "Alive", body = crate::openapi::Live))
)]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready while the index answers: it is critical. Redis is optional (without it rate limits
/// count per node) and a remote backend serves only its own elements, so either being down
/// makes the node `degraded`, still in service.
pub async fn ready(State(st): State<AdminState>) -> (StatusCode, Json<Ready>) {
    // The checks run at once, each bounded, so the probe never waits for a pool timeout.
    let (index, redis, backends) = tokio::join!(
        timed(async { st.store.ping().await.map_err(|e| e.to_string()) }),
        redis_check(&st),
        backend_checks(&st),
    );
    if let Some(e) = &index.error {
        tracing::warn!(error = %e, "readiness check failed: index database");
    }
    if let Some(e) = redis.as_ref().and_then(|c| c.error.as_ref()) {
        tracing::warn!(error = %e, "readiness check failed: redis");
    }
    let down = |c: &Check| c.status == CheckStatus::Down;
    let coordination = st.store.coordination();
    if coordination == artstore_metadata::Coordination::Down {
        tracing::warn!("readiness: cache invalidations through Redis are not arriving");
    }
    let status = if down(&index) {
        Readiness::Unavailable
    } else if redis.as_ref().is_some_and(down)
        || coordination == artstore_metadata::Coordination::Down
        || backends.values().any(down)
    {
        Readiness::Degraded
    } else {
        Readiness::Ready
    };
    let code = match status {
        Readiness::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Readiness::Ready | Readiness::Degraded => StatusCode::OK,
    };
    let kind = match st.store.kind() {
        DbKind::Sqlite => "sqlite",
        DbKind::Postgres => "postgres",
    };
    (
        code,
        Json(Ready {
            status,
            index: IndexCheck {
                kind: kind.into(),
                check: index,
            },
            redis,
            coordination: coordination.as_str(),
            backends,
        }),
    )
}

/// Redis, when configured.
async fn redis_check(st: &AdminState) -> Option<Check> {
    let start = Instant::now();
    let ok = tokio::time::timeout(CHECK_TIMEOUT, st.limiter.redis_ok()).await;
    let (status, error) = match ok {
        Ok(None) => return None,
        Ok(Some(true)) => (CheckStatus::Ok, None),
        Ok(Some(false)) => (CheckStatus::Down, Some("no answer to PING".to_owned())),
        Err(_) => (CheckStatus::Down, Some(too_slow())),
    };
    Some(Check {
        status,
        latency_ms: millis(start.elapsed()),
        error,
    })
}

/// One check per element whose bytes live on another service, keyed by element name; the
/// list and the checks together take at most `CHECK_TIMEOUT` (`timed`). Local directories
/// need none; with the index down (reported by its own check) there is no list.
async fn backend_checks(st: &AdminState) -> BTreeMap<String, Check> {
    let start = Instant::now();
    let Ok(Ok(elements)) = tokio::time::timeout(CHECK_TIMEOUT, st.store.list_elements()).await
    else {
        return BTreeMap::new();
    };
    let left = CHECK_TIMEOUT.saturating_sub(start.elapsed());
    let checks = elements
        .into_iter()
        .filter(|e| BackendConfig::stored_kind(&e.backend).is_some_and(|k| k != "local"))
        .map(|e| async move {
            let check = timed_within(left, async {
                let backend = st
                    .backends
                    .open(&e.name, &e.backend)
                    .map_err(|x| x.to_string())?;
                backend.check().await.map_err(|x| x.to_string())
            })
            .await;
            if let Some(err) = &check.error {
                tracing::warn!(element = %e.name, error = %err, "readiness check failed: storage element backend");
            }
            (e.name, check)
        });
    futures::future::join_all(checks)
        .await
        .into_iter()
        .collect()
}

/// Runs one check within `CHECK_TIMEOUT` and times it.
async fn timed(check: impl Future<Output = Result<(), String>>) -> Check {
    timed_within(CHECK_TIMEOUT, check).await
}

/// Runs one check within `limit` and times it.
async fn timed_within(limit: Duration, check: impl Future<Output = Result<(), String>>) -> Check {
    let start = Instant::now();
    let outcome = tokio::time::timeout(limit, check).await;
    let (status, error) = match outcome {
        Ok(Ok(())) => (CheckStatus::Ok, None),
        Ok(Err(e)) => (CheckStatus::Down, Some(e)),
        Err(_) => (CheckStatus::Down, Some(too_slow())),
    };
    Check {
        status,
        latency_ms: millis(start.elapsed()),
        error,
    }
}

fn too_slow() -> String {
    format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}
