//! Who is calling: SigV4 secrets come from service accounts in the index, and every
//! request must end up with an `Identity` in its extensions or be refused.

use std::sync::Arc;

use artstore_admin::ratelimit::RateLimiter;
use artstore_metadata::{Account, AccountStatus, Identity, Store};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use crate::s3::BodyCheck;

/// Account lookups through the node's cache (`Store::cached`), which every account change
/// invalidates: a request's signature check and access check cost no query when warm.
pub struct Accounts {
    store: Store,
    /// Per-account request limits, shared with the admin API.
    limiter: Arc<RateLimiter>,
}

impl Accounts {
    pub fn new(store: Store, limiter: Arc<RateLimiter>) -> Arc<Self> {
        Arc::new(Accounts { store, limiter })
    }

    pub async fn by_client_id(&self, client_id: &str) -> S3Result<Option<Account>> {
        self.store
            .cached()
            .account_by_client_id(client_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "account lookup failed");
                crate::s3::errors::unavailable()
            })
    }

    pub fn limiter(&self) -> Arc<RateLimiter> {
        self.limiter.clone()
    }

    /// Counts one request against the account's `rate_limit`: `SlowDown` (503) when exhausted.
    pub async fn limit(&self, acc: &Account) -> S3Result<()> {
        match acc.rate_limit {
            Some(per_min) => self.limiter.check(&acc.id, per_min).await.map_err(|wait| {
                s3_error!(
                    SlowDown,
                    "rate limit of {per_min} requests/minute exceeded; retry in {wait} s"
                )
            }),
            None => Ok(()),
        }
    }

    /// The account if it may act now, or the S3 error that says why not.
    pub async fn active(&self, client_id: &str) -> S3Result<Account> {
        let Some(acc) = self.by_client_id(client_id).await? else {
            return Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ));
        };
        if acc.status != AccountStatus::Active {
            return Err(s3_error!(
                AccessDenied,
                "service account '{}' is {}",
                acc.name,
                acc.status.as_str()
            ));
        }
        if acc
            .secret_expires_ms
            .is_some_and(|exp| exp <= artstore_metadata::now_ms())
        {
            return Err(s3_error!(
                AccessDenied,
                "the secret of service account '{}' has expired",
                acc.name
            ));
        }
        Ok(acc)
    }
}

/// SigV4/SigV2 secret lookup for s3s.
pub struct DbAuth(pub Arc<Accounts>);

#[async_trait::async_trait]
impl S3Auth for DbAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let acc = self.0.active(access_key).await?;
        Ok(SecretKey::from(acc.client_secret))
    }
}

/// Turns verified credentials into an `Identity`; anonymous requests are refused.
pub struct Access(pub Arc<Accounts>);

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        // Names the request in the metrics; SigV4 refusals never get here and stay "unknown".
        crate::metrics::set_operation(cx.s3_op().name());
        // s3s has not read the body yet: now is when its verification can be planned.
        if let Some(check) = cx.extensions_mut().get::<Arc<BodyCheck>>().cloned() {
            check.for_operation(cx.s3_op().name(), cx.headers())?;
        }
        if let Some(creds) = cx.credentials() {
            let acc = self.0.active(&creds.access_key).await?;
            self.0.limit(&acc).await?;
            cx.extensions_mut().insert(acc.identity());
        } else if cx.extensions_mut().get::<Identity>().is_none() {
            return Err(s3_error!(AccessDenied, "anonymous access is not allowed"));
        }
        // Before any body is read: nothing is stored for a request that cannot be honoured.
        crate::s3::check_honoured(cx.s3_op().name(), cx.method(), cx.uri(), cx.headers())
    }
}
