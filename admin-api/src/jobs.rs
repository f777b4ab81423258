//! Maintenance jobs over the admin API (DESIGN.md §6): `verify`, `rebuild` and `import` run in
//! the background on the node that was asked; their row in the index carries the status, the
//! progress (written about once a second) and at the end the same JSON report the CLI prints,
//! so every node sharing the database answers `GET /api/v1/maintenance/jobs/{id}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use artstore_metadata::{Job, JobStartError, JobStatus, NewJob, now_ms};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AdminState;
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiError, body_rejection};
use crate::maintenance::Maintenance;
use crate::progress::{Snapshot, WorkProgress};

/// How often a running job writes its progress (and heartbeat) to its row.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A job whose heartbeat is older than this belongs to a node that stopped: it is failed by
/// whichever node notices (at start-up, when a job starts, when jobs are read).
pub const STALE_AFTER_MS: i64 = 30_000;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An import request, as `artstore element import` takes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ImportJobRequest)]
pub struct ImportRequest {
    /// The directory to adopt in place (absolute, on this node).
    pub path: String,
    /// The element (bucket) to import into.
    pub name: String,
    /// `edit`, `rw`, `ro` or `ar`; default `ro`.
    #[schema(value_type = Option<crate::openapi::ModeName>)]
    pub mode: Option<String>,
    /// Report what would be imported; change nothing.
    #[schema(required = false, default = false)]
    pub dry_run: bool,
    /// Key of each document (default `{dir}{original_filename}`).
    pub key_template: Option<String>,
    /// Re-hash every data file (false checks sizes only).
    #[schema(required = false, default = true)]
    pub verify_checksums: bool,
}

/// Runs imports; the binary provides it (the import lives with the CLI).
pub trait Importer: Send + Sync {
    /// Refuses an import that cannot start, before a job is made: (parameter, why).
    fn check<'a>(&'a self, req: &'a ImportRequest) -> BoxFuture<'a, Result<(), (String, String)>>;
    /// Runs the import, counting into `progress`: the JSON report, or why it failed.
    fn run(
        &self,
        req: ImportRequest,
        progress: Arc<WorkProgress>,
    ) -> BoxFuture<'_, Result<Value, String>>;
}

/// What the jobs of this node need besides the store.
pub struct Jobs {
    /// This process, as recorded with the jobs it runs.
    pub node: String,
    pub importer: Option<Arc<dyn Importer>>,
}

impl Jobs {
    pub fn new(importer: Option<Arc<dyn Importer>>) -> Jobs {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let id = uuid::Uuid::now_v7().simple().to_string();
        Jobs {
            node: if host.is_empty() {
                id
            } else {
                format!("{host}/{id}")
            },
            importer,
        }
    }
}

pub fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(start_verify))
        .routes(routes!(start_rebuild))
        .routes(routes!(start_import))
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
}

/// The work a job does.
enum Work {
    Verify(Option<String>),
    Rebuild(Option<String>),
    Import(ImportRequest),
}

impl Work {
    fn kind(&self) -> &'static str {
        match self {
            Work::Verify(_) => "verify",
            Work::Rebuild(_) => "rebuild",
            Work::Import(_) => "import",
        }
    }
}

// ------------------------------------------------------------------------------------------
// Views
// ------------------------------------------------------------------------------------------

/// A job's progress as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct JobProgress {
    /// What the job is doing now: `verifying`, `rebuilding`, `verifying` and `indexing`
    /// (import).
    pub phase: String,
    /// The element being worked on.
    pub element: Option<String>,
    pub items_done: u64,
    /// `null` while not known yet (a rebuild counts each element's sidecars as it reaches it).
    pub items_total: Option<u64>,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    /// When the progress was last written (about once a second while running).
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Seconds left at the rate so far; `null` when not known.
    pub eta_seconds: Option<u64>,
}

/// A maintenance job.
#[derive(Serialize, ToSchema)]
#[schema(as = MaintenanceJob)]
pub struct JobView {
    pub id: String,
    /// `verify`, `rebuild` or `import`.
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// The element the job is about; `null` = every element.
    pub element: Option<String>,
    /// The request's parameters.
    #[schema(value_type = Object)]
    pub params: Value,
    pub created_by: String,
    /// The node running it.
    pub node: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    pub progress: JobProgress,
    /// When it succeeded: the JSON report the CLI prints for the same work.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Value>,
    /// When it failed: why.
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = MaintenanceJobList)]
pub struct JobList {
    /// Newest first.
    pub items: Vec<JobView>,
}

fn view(job: &Job) -> JobView {
    let snap: Snapshot = job
        .progress
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let eta_seconds = match job.status {
        JobStatus::Succeeded => Some(0),
        JobStatus::Failed | JobStatus::Queued => None,
        JobStatus::Running => job
            .started_ms
            .and_then(|s| snap.eta_seconds(job.heartbeat_ms - s)),
    };
    let json_of = |s: &Option<String>| s.as_deref().and_then(|t| serde_json::from_str(t).ok());
    JobView {
        id: job.id.clone(),
        kind: job.kind.clone(),
        status: job.status.as_str().to_owned(),
        element: job.element.clone(),
        params: json_of(&Some(job.params.clone())).unwrap_or(Value::Null),
        created_by: job.created_by.clone(),
        node: job.node.clone(),
        created_at: crate::rfc3339(job.created_ms),
        started_at: job.started_ms.map(crate::rfc3339),
        finished_at: job.finished_ms.map(crate::rfc3339),
        progress: JobProgress {
            phase: snap.phase,
            element: snap.element,
            items_done: snap.items_done,
            items_total: snap.items_total,
            bytes_done: snap.bytes_done,
            bytes_total: snap.bytes_total,
            updated_at: crate::rfc3339(job.heartbeat_ms),
            eta_seconds,
        },
        report: json_of(&job.report),
        error: job.error.clone(),
    }
}

fn accepted(job: &Job) -> Response {
    let mut resp = (StatusCode::ACCEPTED, Json(view(job))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/maintenance/jobs/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

// ------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------

/// The query string's parameters, each known, each once; else 400 naming it.
fn query_params(raw: Option<&str>, allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for pair in raw.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let (k, v) = (decode(k), decode(v));
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::invalid_parameter(
                &k,
                format!(
                    "unknown query parameter '{k}' (allowed: {})",
                    allowed.join(", ")
                ),
            ));
        }
        if out.insert(k.clone(), Value::String(v)).is_some() {
            return Err(ApiError::invalid_parameter(
                &k,
                format!("'{k}' is given more than once"),
            ));
        }
    }
    Ok(out)
}

/// The `element` parameter: a valid name of an element that exists (in the index, or for a
/// rebuild also as a directory on disk, which the rebuild indexes).
async fn element_param(
    st: &AdminState,
    raw: Option<&str>,
    on_disk_counts: bool,
) -> Result<Option<String>, ApiError> {
    let params = query_params(raw, &["element"])?;
    let Some(name) = params.get("element").and_then(Value::as_str) else {
        return Ok(None);
    };
    if !artstore_metadata::is_valid_bucket_name(name) {
        return Err(ApiError::invalid_parameter(
            "element",
            format!("'{name}' is not a valid storage element name"),
        ));
    }
    if st.store.get_element(name).await?.is_some() {
        return Ok(Some(name.to_owned()));
    }
    if on_disk_counts && disk_elements(st).await?.iter().any(|n| n == name) {
        return Ok(Some(name.to_owned()));
    }
    Err(ApiError::not_found(format!(
        "storage element '{name}' not found"
    )))
}

async fn disk_elements(st: &AdminState) -> Result<Vec<String>, ApiError> {
    st.backends.local_element_names().await.map_err(|e| {
        tracing::error!(error = %e, "cannot list the element directories");
        ApiError::internal("cannot list the element directories")
    })
}

const IMPORT_FIELDS: &[&str] = &[
    "path",
    "name",
    "mode",
    "dry_run",
    "key_template",
    "verify_checksums",
];

/// The import body: a JSON object of the known fields with the right types, else 400 naming
/// the field.
fn import_request(body: &[u8]) -> Result<ImportRequest, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_parameter("body", format!("the body is not JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(ApiError::invalid_parameter(
            "body",
            "the body must be a JSON object",
        ));
    };
    if let Some(k) = o.keys().find(|k| !IMPORT_FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid_parameter(
            k,
            format!(
                "unknown field '{k}' (allowed: {})",
                IMPORT_FIELDS.join(", ")
            ),
        ));
    }
    let text = |k: &str, required: bool| -> Result<Option<String>, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) if !required => Ok(None),
            None | Some(Value::Null) => {
                Err(ApiError::invalid_parameter(k, format!("'{k}' is required")))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid_parameter(
                k,
                format!("'{k}' must be a string"),
            )),
        }
    };
    let flag = |k: &str, default: bool| -> Result<bool, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ApiError::invalid_parameter(
                k,
                format!("'{k}' must be true or false"),
            )),
        }
    };
    let req = ImportRequest {
        path: text("path", true)?.unwrap_or_default(),
        name: text("name", true)?.unwrap_or_default(),
        mode: text("mode", false)?,
        dry_run: flag("dry_run", false)?,
        key_template: text("key_template", false)?,
        verify_checksums: flag("verify_checksums", true)?,
    };
    if !artstore_metadata::is_valid_bucket_name(&req.name) {
        return Err(ApiError::invalid_parameter(
            "name",
            format!("'{}' is not a valid storage element name", req.name),
        ));
    }
    if let Some(m) = &req.mode {
        m.parse::<artstore_metadata::Mode>()
            .map_err(|e| ApiError::invalid_parameter("mode", e))?;
    }
    if let Some(t) = &req.key_template {
        artstore_backends::KeyTemplate::parse(t)
            .map_err(|e| ApiError::invalid_parameter("key_template", e.to_string()))?;
    }
    Ok(req)
}

// ------------------------------------------------------------------------------------------
// Handlers
// ------------------------------------------------------------------------------------------

#[utoipa::path(
    post,
    path = "/api/v1/maintenance/verify",
    operation_id = "startVerifyJob",
    tag = "maintenance",
    summary = "Start an index verify job",
    description = "Admins only. Re-hashes every object (of `element`, or of every element) and \
        looks for files the index does not know, as `artstore index verify` does, in the \
        background; read-only, so it runs beside live writes. Answers at once with the job \
        (also at `Location`).",
    params(("element" = Option<String>, Query, description = "Only this element")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 202, description = "The job, queued", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "Unknown parameter or invalid element name", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
    )
)]
async fn start_verify(
    State(st): State<AdminState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let element = element_param(&st, raw.as_deref(), false).await?;
    start(st, &caller, Work::Verify(element)).await
}

#[utoipa::path(
    post,
    path = "/api/v1/maintenance/rebuild",
    operation_id = "startRebuildJob",
    tag = "maintenance",
    summary = "Start an index rebuild job",
    description = "Admins only. Brings the index rows of `element` (or of every element) in \
        line with the sidecars, as `artstore index rebuild` does, in the background while the \
        server serves: sidecars of writes still committing are left to them (the report's \
        `left_to_writers`), and only files the index records as obsolete are removed. One \
        rebuild or import per element at a time, across every node: a second one answers 409 \
        with the first job's id in `job_id`.",
    params(("element" = Option<String>, Query, description = "Only this element (default: every element)")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 202, description = "The job, queued", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "Unknown parameter or invalid element name", body = crate::openapi::ErrorBody),
        (status = 404, description = "No such element", body = crate::openapi::ErrorBody),
        (status = 409, description = "Another job is rebuilding or importing the element (`job_id`)", body = crate::openapi::ErrorBody),
    )
)]
async fn start_rebuild(
    State(st): State<AdminState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let element = element_param(&st, raw.as_deref(), true).await?;
    start(st, &caller, Work::Rebuild(element)).await
}

#[utoipa::path(
    post,
    path = "/api/v1/maintenance/import",
    operation_id = "startImportJob",
    tag = "maintenance",
    summary = "Start an element import job",
    description = "Admins only. Adopts a storage-element directory of an earlier ArtStore in \
        place, as `artstore element import` does, in the background; the directory must be \
        readable by this node. Errors name the field at fault (`parameter`).",
    request_body = ImportRequest,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 202, description = "The job, queued", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "Malformed body, unknown field, bad value, or a path that is not an absolute existing directory", body = crate::openapi::ErrorBody),
        (status = 409, description = "Another job is importing or rebuilding the element (`job_id`)", body = crate::openapi::ErrorBody),
    )
)]
async fn start_import(
    State(st): State<AdminState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let body = body.map_err(body_rejection)?;
    let req = import_request(&body)?;
    let Some(importer) = st.jobs.importer.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "imports are not available on this node",
        ));
    };
    importer
        .check(&req)
        .await
        .map_err(|(p, why)| ApiError::invalid_parameter(p, why))?;
    start(st, &caller, Work::Import(req)).await
}

#[utoipa::path(
    get,
    path = "/api/v1/maintenance/jobs",
    operation_id = "listMaintenanceJobs",
    tag = "maintenance",
    summary = "List recent maintenance jobs, newest first",
    description = "Admins and auditors.",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "How many (default 50)")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The jobs", body = JobList),
        (status = 400, description = "Unknown parameter or bad value", body = crate::openapi::ErrorBody),
    )
)]
async fn list_jobs(
    State(st): State<AdminState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<JobList>, ApiError> {
    caller.require_read()?;
    let params = query_params(raw.as_deref(), &["limit"])?;
    let limit = match params.get("limit").and_then(Value::as_str) {
        None => 50,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_parameter(
                    "limit",
                    "'limit' must be an integer from 1 to 1000",
                ));
            }
        },
    };
    reap(&st).await?;
    let items = st.store.list_jobs(limit).await?.iter().map(view).collect();
    Ok(Json(JobList { items }))
}

#[utoipa::path(
    get,
    path = "/api/v1/maintenance/jobs/{id}",
    operation_id = "getMaintenanceJob",
    tag = "maintenance",
    summary = "Read a maintenance job: status, progress and report",
    description = "Admins and auditors, on any node sharing the index. A job whose node stopped \
        before it finished (no progress for 30 s) reads as `failed`.",
    params(("id" = String, Path, description = "Job id")),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = crate::openapi::ErrorBody),
    )
)]
async fn get_job(
    State(st): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    caller.require_read()?;
    reap(&st).await?;
    let job = st
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("maintenance job '{id}' not found")))?;
    Ok(Json(view(&job)))
}

/// Fails the jobs of nodes that stopped heartbeating.
async fn reap(st: &AdminState) -> Result<(), ApiError> {
    let now = now_ms();
    st.store.fail_stale_jobs(now - STALE_AFTER_MS, now).await?;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Running
// ------------------------------------------------------------------------------------------

/// Records the job (with its element locks), then runs it in the background.
async fn start(st: AdminState, caller: &Caller, work: Work) -> Result<Response, ApiError> {
    let (element, params, locks) = match &work {
        Work::Verify(e) => (e.clone(), json!({"element": e}), Vec::new()),
        Work::Rebuild(e) => {
            let locks = match e {
                Some(e) => vec![e.clone()],
                None => {
                    let mut all: Vec<String> = st
                        .store
                        .list_elements()
                        .await?
                        .into_iter()
                        .map(|e| e.name)
                        .collect();
                    all.extend(disk_elements(&st).await?);
                    all.sort();
                    all.dedup();
                    all
                }
            };
            (e.clone(), json!({"element": e}), locks)
        }
        Work::Import(r) => (
            Some(r.name.clone()),
            serde_json::to_value(r).unwrap_or(Value::Null),
            vec![r.name.clone()],
        ),
    };
    let now = now_ms();
    let new = NewJob {
        id: uuid::Uuid::now_v7().to_string(),
        kind: work.kind().to_owned(),
        element,
        params: params.to_string(),
        node: st.jobs.node.clone(),
        created_by: caller.identity().name.clone(),
        now_ms: now,
    };
    let job = match st.store.start_job(&new, &locks, now - STALE_AFTER_MS).await {
        Ok(job) => job,
        Err(JobStartError::Busy { element, job_id }) => {
            let mut e = ApiError::conflict(format!(
                "storage element '{element}' is busy with maintenance job {job_id}; wait for it to finish"
            ));
            e.job_id = Some(job_id);
            return Err(e);
        }
        Err(JobStartError::Index(e)) => return Err(e.into()),
    };
    audit::record(
        &st,
        Some(caller.identity()),
        &format!("maintenance.{}", job.kind),
        Some(&format!("job {}", job.id)),
        "success",
        Some(params.to_string()),
    )
    .await;
    tracing::info!(job = %job.id, kind = %job.kind, element = ?job.element, "maintenance job started");
    tokio::spawn(run(st, job.id.clone(), work));
    Ok(accepted(&job))
}

async fn run(st: AdminState, id: String, work: Work) {
    let progress = Arc::new(WorkProgress::new());
    let started = now_ms();
    if let Err(e) = st.store.job_started(&id, started).await {
        tracing::warn!(job = %id, error = %e, "cannot mark the job running");
    }
    let beat = {
        let (store, id, progress) = (st.store.clone(), id.clone(), progress.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            tick.tick().await;
            loop {
                tick.tick().await;
                let snap = serde_json::to_string(&progress.snapshot()).unwrap_or_default();
                match store.job_progress(&id, &snap, now_ms()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(job = %id, "the job was marked failed meanwhile (no heartbeat); it finishes anyway");
                    }
                    Err(e) => tracing::warn!(job = %id, error = %e, "cannot record job progress"),
                }
            }
        })
    };
    let outcome = perform(&st, work, progress.clone(), started).await;
    beat.abort();
    let snap = serde_json::to_string(&progress.snapshot()).unwrap_or_default();
    let (ok, report, error) = match &outcome {
        Ok(r) => (true, Some(r.to_string()), None),
        Err(e) => (false, None, Some(e.as_str())),
    };
    match &outcome {
        Ok(_) => tracing::info!(job = %id, "maintenance job succeeded"),
        Err(e) => tracing::warn!(job = %id, error = %e, "maintenance job failed"),
    }
    if let Err(e) = st
        .store
        .finish_job(&id, ok, &snap, report.as_deref(), error, now_ms())
        .await
    {
        // Without a heartbeat it reads as failed after STALE_AFTER_MS.
        tracing::error!(job = %id, error = %e, "cannot record the end of the job");
    }
}

async fn perform(
    st: &AdminState,
    work: Work,
    progress: Arc<WorkProgress>,
    started: i64,
) -> Result<Value, String> {
    let m = Maintenance::new(st.store.clone(), st.backends.clone()).with_progress(progress.clone());
    let to_json = |r: Result<Value, serde_json::Error>| r.map_err(|e| e.to_string());
    match work {
        Work::Verify(element) => {
            let report = m
                .only_element(element)
                .verify()
                .await
                .map_err(|e| e.to_string())?;
            to_json(serde_json::to_value(&report))
        }
        Work::Rebuild(element) => {
            let report = m
                .only_element(element)
                .while_serving(started)
                .reconcile(None)
                .await
                .map_err(|e| e.to_string())?;
            // Every row it writes gets its search rows in the same transaction; unlike the
            // CLI's rebuild it does not wipe and refill the whole search index, which would
            // hold up every write meanwhile.
            for what in report.warnings() {
                tracing::warn!("{what}");
            }
            to_json(serde_json::to_value(&report))
        }
        Work::Import(req) => match &st.jobs.importer {
            Some(i) => i.run(req, progress).await,
            None => Err("imports are not available on this node".into()),
        },
    }
}
