//! `artstore serve`: binds the S3 and admin listeners and serves both until a signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;

use artstore_admin::ratelimit::RateLimiter;

use crate::auth::{Access, Accounts, DbAuth};
use crate::bearer::Bearer;
use crate::bootstrap;
use crate::config::Settings;
use crate::host::{ArtHost, BucketNames};
use crate::metrics::{self as s3_metrics, ReceivedBody, SentBody};
use crate::s3::{BodyCheck, CheckedBody, Gateway};
use artstore_admin::metrics::Metrics;

/// Moves audit events spooled while the index was unavailable into it, once it answers again.
async fn replay_audit_spool(store: artstore_metadata::Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match store.replay_audit_spool().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "spooled audit events written to the index"),
            Err(e) => {
                tracing::debug!(error = %e, "spooled audit events still wait for the index");
            }
        }
    }
}

/// Jobs whose node stopped heartbeating (this one before a restart, or another that died)
/// are failed now rather than left `running`.
async fn fail_stale_jobs(store: &artstore_metadata::Store) {
    let now = artstore_metadata::now_ms();
    match store
        .fail_stale_jobs(now - artstore_admin::jobs::STALE_AFTER_MS, now)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(jobs = n, "maintenance jobs of a stopped node marked failed"),
        Err(e) => tracing::warn!(error = %e, "cannot check for interrupted maintenance jobs"),
    }
}

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Held while serving: `artstore restore` refuses to replace the index under a live server.
    let _in_use = crate::index_backup::hold_in_use(&settings.data_dir)?;
    let store = bootstrap::create_store(&settings)
        .await?
        .with_audit_spool(&settings.data_dir)
        .await?;
    // Before anything is cached: changes made by other nodes and the CLI reach this node's cache.
    store.subscribe_invalidations();
    bootstrap::ensure_root_account(&store, &settings).await?;
    let backends = bootstrap::backends(&settings, &store);
    crate::recovery::recover(&store, &backends, &settings.data_dir).await?;
    fail_stale_jobs(&store).await;

    let gateway = Gateway::new(
        store.clone(),
        backends.clone(),
        settings.region.clone(),
        settings.restore_rate_bytes,
    );
    // Restores a stop interrupted start again, in the background: serving need not wait.
    let restorer = gateway.restorer.clone();
    tokio::spawn(async move {
        if let Err(e) = restorer.resume_all().await {
            tracing::error!(error = %e, "cannot resume interrupted restores");
        }
    });
    tokio::spawn(replay_audit_spool(store.clone()));
    let limiter = match &settings.redis_url {
        Some(url) => RateLimiter::with_redis(url, &store.deployment_id().await?)
            .context("ARTSTORE_REDIS_URL")?,
        None => RateLimiter::new(),
    };
    let accounts = Accounts::new(store.clone(), Arc::new(limiter));
    let keys = artstore_admin::keys::KeyRing::open(store.clone())
        .await
        .context("cannot load token signing keys")?;
    let bearer = Bearer::new(keys.clone(), accounts.clone(), store.clone());
    let mut builder = S3ServiceBuilder::new(gateway);
    builder.set_auth(DbAuth(accounts.clone()));
    builder.set_access(Access(accounts.clone()));
    builder.set_host(ArtHost::new(settings.s3_domain.as_deref()));
    builder.set_validation(BucketNames);
    let s3 = builder.build();

    let s3_listener = TcpListener::bind(&settings.s3_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.s3_addr))?;
    let admin_listener = TcpListener::bind(&settings.admin_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.admin_addr))?;
    tracing::info!(
        s3_addr = %s3_listener.local_addr()?,
        admin_addr = %admin_listener.local_addr()?,
        data_dir = %settings.data_dir.display(),
        "listening"
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let metrics = Arc::new(Metrics::new());
    tokio::spawn(
        crate::upload_expiry::UploadExpiry::new(
            store.clone(),
            backends.clone(),
            settings.multipart_expiry,
            metrics.uploads_expired(),
        )
        .run(settings.multipart_expiry_interval),
    );
    let scrub = settings.scrub_rate.map(|rate| {
        let scrubber = crate::scrub::Scrubber::new(store.clone(), backends.clone(), &metrics, rate);
        tokio::spawn(scrubber.run())
    });
    let admin = artstore_admin::router(artstore_admin::AdminState {
        store: store.clone(),
        keys: keys.clone(),
        limiter: accounts.limiter(),
        backends: backends.clone(),
        metrics: metrics.clone(),
        policies: Default::default(),
        jobs: Arc::new(artstore_admin::jobs::Jobs::new(Some(Arc::new(
            crate::import_job::ImportJobs::new(store.clone(), backends.clone()),
        )))),
    });
    let mut admin_stop = stop_rx.clone();
    let admin_task = tokio::spawn(async move {
        axum::serve(
            admin_listener,
            admin.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = admin_stop.wait_for(|s| *s).await;
        })
        .await
    });

    let front = Arc::new(Front {
        svc: s3,
        bearer,
        metrics,
        region: settings.region.clone(),
    });
    let s3_task = tokio::spawn(serve_s3(s3_listener, front, stop_rx));
    shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    let _ = s3_task.await;
    let _ = admin_task.await;
    if let Some(scrub) = scrub {
        scrub.abort();
    }
    store.close().await;
    crate::recovery::mark_clean(&settings.data_dir);
    tracing::info!("stopped");
    Ok(())
}

/// What serves one S3 request: s3s and the layers in front of it.
struct Front {
    svc: s3s::service::S3Service,
    bearer: Arc<Bearer>,
    metrics: Arc<Metrics>,
    /// The endpoint's region, which credential scopes must name.
    region: String,
}

async fn serve_s3(
    listener: TcpListener,
    front: Arc<Front>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let conn = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    loop {
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // Without it a small response waits ~40 ms for the client's delayed ACK.
        let _ = sock.set_nodelay(true);
        let front = front.clone();
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let front = front.clone();
                async move { handle(&front, req, peer).await }
            });
        let c = conn
            .serve_connection(TokioIo::new(sock), service)
            .into_owned();
        tokio::spawn(graceful.watch(c));
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("in-flight requests still running after 30 s; stopping anyway");
        }
    }
}

/// Counts the request by S3 operation and status, times it (until the response headers are
/// ready), and counts the body bytes in and out as they stream.
async fn handle(
    front: &Front,
    req: http::Request<hyper::body::Incoming>,
    peer: std::net::SocketAddr,
) -> Result<http::Response<SentBody<s3s::Body>>, s3s::HttpError> {
    let start = Instant::now();
    let metrics = &front.metrics;
    let req = req.map(|b| s3s::Body::http_body(ReceivedBody::new(b, metrics.clone())));
    s3_metrics::scope(async {
        let resp = respond(front, req, peer).await;
        let operation = s3_metrics::operation();
        let status = resp.as_ref().map_or(500, |r| r.status().as_u16());
        metrics.s3_request(operation, status, start.elapsed());
        let sent = metrics.s3_sent(operation);
        resp.map(|r| r.map(|b| SentBody::new(b, sent)))
    })
    .await
}

/// Every response carries a request id, and every request is logged once, at a level
/// that fits its outcome (client errors are not server errors).
async fn respond(
    front: &Front,
    mut req: http::Request<s3s::Body>,
    peer: std::net::SocketAddr,
) -> Result<http::Response<s3s::Body>, s3s::HttpError> {
    // `aws:SourceIp` for the policy evaluator.
    req.extensions_mut().insert(crate::s3::ClientIp(peer.ip()));
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let (expects_continue, empty_body) = expect_continue(req.headers());
    let who = caller_hint(req.headers());
    let bearer = &front.bearer;
    let body_check = Arc::new(BodyCheck::default());
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(body_check.clone());
    let body = CheckedBody::new(body, body_check.clone(), &parts.headers);
    let req = http::Request::from_parts(parts, s3s::Body::http_body(body));
    let checked = match crate::signed::check(req.uri(), req.headers(), &front.region) {
        Ok(()) => match bearer.apply(req).await {
            Ok(req) => body_check.verify_unread(req).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let mut resp = match checked {
        Ok(req) => front.svc.call(crate::s3::allow_unsized_body(req)).await?,
        Err(e) => e
            .to_http_response()
            .map_err(|e| s3s::HttpError::new(Box::new(e)))?,
    };
    // A body refused by its check: s3s may have made a 500 of it, or another error.
    if !resp.status().is_success()
        && let Some(e) = body_check.take_fault()
    {
        resp = e
            .to_http_response()
            .map_err(|e| s3s::HttpError::new(Box::new(e)))?;
    }
    // s3s answers every RestoreObject with 200; the handler asks for 202 when it starts one.
    crate::s3::apply_status(&mut resp);
    if !resp.status().is_success() {
        with_request_id(&mut resp, &id);
    }
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    // botocore remembers a final answer to `Expect: 100-continue` on the pooled connection
    // and misreads the next response on it; hyper sends no `100 Continue` for an empty or
    // unread body, so such connections must not be reused.
    if expects_continue && (empty_body || !resp.status().is_success()) {
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    let status = resp.status().as_u16();
    if status == 401 || status == 403 {
        bearer.audit_denied(artstore_metadata::AuditEvent {
            actor_name: who,
            action: "s3.denied".into(),
            target: Some(format!("{method} {path}")),
            outcome: "denied".into(),
            source: Some(peer.ip().to_string()),
            request_id: Some(id.clone()),
            detail: Some(format!("HTTP {status}")),
            ..Default::default()
        });
    }
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let operation = s3_metrics::operation();
    if status < 400 {
        tracing::debug!(request_id = %id, operation, %method, %path, status, ms, "request");
        return Ok(resp);
    }
    let code = error_code(&resp);
    if is_server_fault(status, &code) {
        tracing::error!(request_id = %id, operation, %method, %path, status, code, ms, %peer, "request failed");
    } else {
        tracing::info!(request_id = %id, operation, %method, %path, status, code, ms, %peer, "request refused");
    }
    Ok(resp)
}

/// 5xx answers are faults of the server, except what it does not implement (501), the
/// rate limit it enforces on a client (503 SlowDown) and a read of an object the scrub already
/// found damaged (503 ObjectCorrupted: reported once, at ERROR, when it was found).
fn is_server_fault(status: u16, code: &str) -> bool {
    status >= 500
        && status != 501
        && !(status == 503 && (code == "SlowDown" || code == crate::s3::damage::CODE))
}

/// The `<Code>` of an S3 error response ("" for HEAD and other bodiless answers).
fn error_code(resp: &http::Response<s3s::Body>) -> String {
    resp.body()
        .bytes()
        .and_then(|b| {
            let text = std::str::from_utf8(&b).ok()?;
            let (_, rest) = text.split_once("<Code>")?;
            Some(rest.split_once("</Code>")?.0.to_owned())
        })
        .unwrap_or_default()
}

/// Who a request claims to be, for the audit log: the SigV4 access key or "bearer".
fn caller_hint(h: &http::HeaderMap) -> Option<String> {
    let v = h.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some((_, rest)) = v.split_once("Credential=") {
        return rest.split('/').next().map(str::to_owned);
    }
    v.get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .map(|_| "bearer token".to_owned())
}

/// s3s writes no `<RequestId>` into error documents, and no `<Message>` for some codes;
/// clients log both from there.
fn with_request_id(resp: &mut http::Response<s3s::Body>, id: &str) {
    let Some(bytes) = resp.body().bytes() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return;
    };
    let Some(at) = text.rfind("</Error>") else {
        return;
    };
    let mut extra = String::new();
    if !text.contains("<Message>") {
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("", |(c, _)| c);
        extra.push_str(&format!("<Message>{}</Message>", default_message(code)));
    }
    if !text.contains("<RequestId>") {
        extra.push_str(&format!("<RequestId>{id}</RequestId>"));
    }
    let body = format!("{}{extra}{}", &text[..at], &text[at..]);
    resp.headers_mut().remove(http::header::CONTENT_LENGTH);
    *resp.body_mut() = s3s::Body::from(body);
}

/// AWS's wording for errors s3s raises without a message.
fn default_message(code: &str) -> &'static str {
    match code {
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "AccessDenied" => "Access Denied",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "RequestTimeTooSkewed" => {
            "The difference between the request time and the current time is too large."
        }
        "NoSuchBucket" => "The specified bucket does not exist",
        "NoSuchKey" => "The specified key does not exist.",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "KeyTooLongError" => "Your key is too long",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "MalformedXML" => {
            "The XML you provided was not well-formed or did not validate against our published schema"
        }
        "NotImplemented" => "A header you provided implies functionality that is not implemented",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        _ => "The request could not be completed",
    }
}

/// Whether the request waits for `100 Continue`, and whether it declares an empty body.
fn expect_continue(h: &http::HeaderMap) -> (bool, bool) {
    let expects = h
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let empty = h
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == "0");
    (expects, empty)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
