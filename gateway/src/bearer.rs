//! `Authorization: Bearer <JWT>` on the S3 endpoint. s3s refuses bearer headers, so this layer
//! runs first: it verifies the token, re-checks the account (through the node's cache, which
//! every account change invalidates, so suspension and deletion bite within a second), strips the header and hands s3s an `Identity`
//! in the request extensions, which `auth::Access::check` accepts.

use std::sync::Arc;

use artstore_admin::keys::KeyRing;
use artstore_metadata::{AuditEvent, Identity, Store};
use s3s::{S3Error, s3_error};

use crate::auth::Accounts;

pub struct Bearer {
    keys: Arc<KeyRing>,
    accounts: Arc<Accounts>,
    store: Store,
}

impl Bearer {
    pub fn new(keys: Arc<KeyRing>, accounts: Arc<Accounts>, store: Store) -> Arc<Self> {
        Arc::new(Bearer {
            keys,
            accounts,
            store,
        })
    }

    /// Requests without a bearer token pass unchanged (SigV4 is s3s's business); a valid token
    /// becomes an `Identity`; anything else is `AccessDenied`.
    pub async fn apply<B>(&self, mut req: http::Request<B>) -> Result<http::Request<B>, S3Error> {
        let Some(token) = bearer_token(req.headers()) else {
            return Ok(req);
        };
        let identity = self.identity(&token).await?;
        req.headers_mut().remove(http::header::AUTHORIZATION);
        req.extensions_mut().insert(identity);
        Ok(req)
    }

    async fn identity(&self, token: &str) -> Result<Identity, S3Error> {
        let claims = self.keys.verify(token).await.map_err(|e| {
            tracing::info!(error = %e, "bearer token refused");
            s3_error!(AccessDenied, "invalid bearer token: {e}")
        })?;
        let acc = self.accounts.active(&claims.client_id).await.map_err(|e| {
            if *e.code() == s3s::S3ErrorCode::ServiceUnavailable {
                return e;
            }
            s3_error!(
                AccessDenied,
                "the token's service account may not act: {}",
                e.message().unwrap_or("refused")
            )
        })?;
        // A client id re-used by another account must not inherit old tokens.
        if acc.id != claims.sub {
            return Err(s3_error!(AccessDenied, "invalid bearer token"));
        }
        self.accounts.limit(&acc).await?;
        Ok(acc.identity())
    }

    /// Records a refused S3 request in the audit log, off the request path.
    pub fn audit_denied(&self, event: AuditEvent) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_audit(&event).await {
                tracing::error!(error = %e, "cannot write audit event");
            }
        });
    }
}

fn bearer_token(h: &http::HeaderMap) -> Option<String> {
    let v = h.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let prefix = v.get(..7)?;
    prefix
        .eq_ignore_ascii_case("bearer ")
        .then(|| v[7..].trim().to_owned())
}
