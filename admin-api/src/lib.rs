//! ArtStore's admin REST API. For now: the health probes; accounts, elements, tokens and
//! search follow (DESIGN.md §6).

pub mod maintenance;

use artstore_metadata::Store;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(state)
}

async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the index answers; the database is critical.
async fn ready(State(st): State<AdminState>) -> (StatusCode, Json<Value>) {
    match st.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "checks": {"database": "ok"}})),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "checks": {"database": "down"}})),
            )
        }
    }
}
