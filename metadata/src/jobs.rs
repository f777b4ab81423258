//! Maintenance jobs (verify, rebuild, import started over the admin API) and the per-element
//! locks that keep two rebuilds or imports off one element. Both live in the index, so every
//! node sharing the database sees every job, and the locks hold across nodes.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{MetaError, Store};

/// A job as stored. Progress, params and report are JSON text the admin API gives meaning to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// The element the job is about; `None` = every element.
    pub element: Option<String>,
    pub params: String,
    pub status: JobStatus,
    pub node: String,
    pub created_by: String,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub heartbeat_ms: i64,
    pub progress: Option<String>,
    pub report: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<JobStatus, MetaError> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            other => return Err(MetaError::corrupt(format!("job status {other:?}"))),
        })
    }
}

/// What a new job is.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub kind: String,
    pub element: Option<String>,
    pub params: String,
    pub node: String,
    pub created_by: String,
    pub now_ms: i64,
}

/// Why a job could not be created.
#[derive(Debug, thiserror::Error)]
pub enum JobStartError {
    /// Another job holds one of the elements.
    #[error("storage element '{element}' is busy with job {job_id}")]
    Busy { element: String, job_id: String },
    #[error(transparent)]
    Index(#[from] MetaError),
}

/// Why a job failed when its node stopped heartbeating.
pub const STALE_JOB_ERROR: &str =
    "the node running this job stopped (crash or restart) before it finished";

const JOB_COLS: &str = "id, kind, element, params, status, node, created_by, created_ms, \
                        started_ms, finished_ms, heartbeat_ms, progress, report, error";

fn job_from_row(r: &AnyRow) -> Result<Job, MetaError> {
    let status: String = r.try_get("status")?;
    Ok(Job {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        element: r.try_get("element")?,
        params: r.try_get("params")?,
        status: JobStatus::parse(&status)?,
        node: r.try_get("node")?,
        created_by: r.try_get("created_by")?,
        created_ms: r.try_get("created_ms")?,
        started_ms: r.try_get("started_ms")?,
        finished_ms: r.try_get("finished_ms")?,
        heartbeat_ms: r.try_get("heartbeat_ms")?,
        progress: r.try_get("progress")?,
        report: r.try_get("report")?,
        error: r.try_get("error")?,
    })
}

impl Store {
    /// Creates a queued job holding `locks` (element names), all in one transaction: when
    /// another unfinished job holds one of them, nothing is written and `Busy` names it.
    /// Jobs whose heartbeat is older than `stale_before_ms` are failed first, in the same
    /// transaction, so a node that died never keeps an element locked.
    pub async fn start_job(
        &self,
        job: &NewJob,
        locks: &[String],
        stale_before_ms: i64,
    ) -> Result<Job, JobStartError> {
        let mut tx = self.begin_write().await?;
        fail_stale(&mut tx, stale_before_ms, job.now_ms).await?;
        sqlx::query(
            "INSERT INTO maintenance_jobs (id, kind, element, params, status, node, created_by, \
             created_ms, heartbeat_ms) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7)",
        )
        .bind(&job.id)
        .bind(&job.kind)
        .bind(&job.element)
        .bind(&job.params)
        .bind(&job.node)
        .bind(&job.created_by)
        .bind(job.now_ms)
        .execute(&mut *tx)
        .await
        .map_err(MetaError::from)?;
        for element in locks {
            // DO NOTHING keeps the transaction usable on PostgreSQL; a concurrent holder's
            // insert is waited for by the primary key, then seen here as no row added.
            let added = sqlx::query(
                "INSERT INTO maintenance_locks (element, job_id) VALUES ($1, $2) \
                 ON CONFLICT (element) DO NOTHING",
            )
            .bind(element)
            .bind(&job.id)
            .execute(&mut *tx)
            .await
            .map_err(MetaError::from)?;
            if added.rows_affected() == 0 {
                let holder: String =
                    sqlx::query_scalar("SELECT job_id FROM maintenance_locks WHERE element = $1")
                        .bind(element)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(MetaError::from)?;
                // Dropping the transaction rolls the job row back.
                return Err(JobStartError::Busy {
                    element: element.clone(),
                    job_id: holder,
                });
            }
        }
        tx.commit().await.map_err(MetaError::from)?;
        Ok(Job {
            id: job.id.clone(),
            kind: job.kind.clone(),
            element: job.element.clone(),
            params: job.params.clone(),
            status: JobStatus::Queued,
            node: job.node.clone(),
            created_by: job.created_by.clone(),
            created_ms: job.now_ms,
            started_ms: None,
            finished_ms: None,
            heartbeat_ms: job.now_ms,
            progress: None,
            report: None,
            error: None,
        })
    }

    /// Marks a queued job running.
    pub async fn job_started(&self, id: &str, now_ms: i64) -> Result<bool, MetaError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE maintenance_jobs SET status = 'running', started_ms = $2, heartbeat_ms = $2 \
             WHERE id = $1 AND status = 'queued'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a running job's progress and heartbeat. False when the job is no longer
    /// running (failed as stale by another node).
    pub async fn job_progress(
        &self,
        id: &str,
        progress: &str,
        now_ms: i64,
    ) -> Result<bool, MetaError> {
        // A write transaction like any other, so SQLite writers of this process take turns.
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE maintenance_jobs SET progress = $2, heartbeat_ms = $3 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(progress)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends a job with its outcome and releases its element locks, in one transaction.
    pub async fn finish_job(
        &self,
        id: &str,
        succeeded: bool,
        progress: &str,
        report: Option<&str>,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError> {
        let status = if succeeded {
            JobStatus::Succeeded
        } else {
            JobStatus::Failed
        };
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE maintenance_jobs SET status = $2, progress = $3, report = $4, error = $5, \
             finished_ms = $6, heartbeat_ms = $6 WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(progress)
        .bind(report)
        .bind(error)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM maintenance_locks WHERE job_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_job(&self, id: &str) -> Result<Option<Job>, MetaError> {
        let sql = format!("SELECT {JOB_COLS} FROM maintenance_jobs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// The most recent jobs, newest first.
    pub async fn list_jobs(&self, limit: i64) -> Result<Vec<Job>, MetaError> {
        let sql = format!(
            "SELECT {JOB_COLS} FROM maintenance_jobs ORDER BY created_ms DESC, id DESC LIMIT {}",
            limit.clamp(1, 1000)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from_row).collect()
    }

    /// Fails every unfinished job whose heartbeat is older than `stale_before_ms` and
    /// releases its locks. Returns how many.
    pub async fn fail_stale_jobs(
        &self,
        stale_before_ms: i64,
        now_ms: i64,
    ) -> Result<u64, MetaError> {
        // Readers call this on every read: a write transaction only when there is work.
        let stale: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM maintenance_jobs \
             WHERE status IN ('queued', 'running') AND heartbeat_ms < $1",
        )
        .bind(stale_before_ms)
        .fetch_one(&self.pool)
        .await?;
        if stale == 0 {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let n = fail_stale(&mut tx, stale_before_ms, now_ms).await?;
        tx.commit().await?;
        Ok(n)
    }
}

async fn fail_stale(
    tx: &mut crate::db::WriteTx,
    stale_before_ms: i64,
    now_ms: i64,
) -> Result<u64, MetaError> {
    let done = sqlx::query(
        "UPDATE maintenance_jobs SET status = 'failed', error = $1, finished_ms = $2 \
         WHERE status IN ('queued', 'running') AND heartbeat_ms < $3",
    )
    .bind(STALE_JOB_ERROR)
    .bind(now_ms)
    .bind(stale_before_ms)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM maintenance_locks WHERE job_id IN \
         (SELECT id FROM maintenance_jobs WHERE status IN ('succeeded', 'failed'))",
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
