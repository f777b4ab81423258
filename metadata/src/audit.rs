//! The audit log: who did what, when, from where, with what outcome.

use sqlx::Row;

use crate::{MetaError, Store, now_ms};

/// One audit entry. `at_ms` and `id` are filled in by `record_audit` when left empty/zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub at_ms: i64,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    /// e.g. `account.create`, `token.issue`, `s3.denied`.
    pub action: String,
    pub target: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    /// Client address.
    pub source: Option<String>,
    pub request_id: Option<String>,
    /// Free text (never secrets).
    pub detail: Option<String>,
}

/// Filters of an audit listing; newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub outcome: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

impl Store {
    /// Records one event. With a spool (`with_audit_spool`), an event the index cannot take
    /// now (unavailable or full) is spooled to disk instead, and so is every event while
    /// spooled ones wait, which keeps them in order; `replay_audit_spool` writes them later.
    pub async fn record_audit(&self, ev: &AuditEvent) -> Result<(), MetaError> {
        let mut ev = ev.clone();
        if ev.id.is_empty() {
            ev.id = uuid::Uuid::now_v7().to_string();
        }
        if ev.at_ms == 0 {
            ev.at_ms = now_ms();
        }
        let Some(spool) = &self.spool else {
            return self.insert_audit(&ev, false).await.map(drop);
        };
        if spool.has_pending() {
            return spool.append(&ev).await;
        }
        match self.insert_audit(&ev, false).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_unavailable() || e.is_index_full() => {
                tracing::warn!(error = %e, action = %ev.action, "index cannot take the audit event; spooled to disk");
                spool.append(&ev).await
            }
            Err(e) => Err(e),
        }
    }

    /// Inserts an event with its id and time set; `replay` skips an id already present (an
    /// event replayed twice). Returns whether a row was added.
    pub(crate) async fn insert_audit(
        &self,
        ev: &AuditEvent,
        replay: bool,
    ) -> Result<bool, MetaError> {
        let sql = if replay {
            "INSERT INTO audit_events (id, at_ms, actor_id, actor_name, action, target, outcome, source, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
        } else {
            "INSERT INTO audit_events (id, at_ms, actor_id, actor_name, action, target, outcome, source, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        };
        let done = sqlx::query(sql)
            .bind(&ev.id)
            .bind(ev.at_ms)
            .bind(&ev.actor_id)
            .bind(&ev.actor_name)
            .bind(&ev.action)
            .bind(&ev.target)
            .bind(&ev.outcome)
            .bind(&ev.source)
            .bind(&ev.request_id)
            .bind(&ev.detail)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, MetaError> {
        let mut cond = String::from(" WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        for (col, val) in [
            ("action", &q.action),
            ("actor_id", &q.actor_id),
            ("outcome", &q.outcome),
        ] {
            if let Some(v) = val {
                binds.push(v.clone());
                cond.push_str(&format!(" AND {col} = ${}", binds.len()));
            }
        }
        let sql = format!(
            "SELECT id, at_ms, actor_id, actor_name, action, target, outcome, source, request_id, detail FROM audit_events{cond} ORDER BY at_ms DESC, id DESC LIMIT {} OFFSET {}",
            q.limit.clamp(1, 1000),
            q.offset.max(0)
        );
        let mut query = // Only fixed column names, `$N` placeholders and integers are spliced in; values are bound.
        sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at_ms: r.try_get("at_ms")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_name: r.try_get("actor_name")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    outcome: r.try_get("outcome")?,
                    source: r.try_get("source")?,
                    request_id: r.try_get("request_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
