//! Each node's cache of the control data every request reads: storage elements with their
//! bucket policy, accounts (by id and by client id), bucket grants and signing keys. The
//! request path reads them here; the index only when an entry is missing or too old.
//!
//! Every change made through a `Store` drops the entry in this process once its transaction
//! has committed, moves the index's change counter on (`epoch`) and, with Redis configured, is
//! published to every other node (`pubsub`). While this node's subscription is alive, entries
//! are trusted until invalidated, for `SAFETY_TTL` (1 s) at most. Without Redis, or while it is
//! unreachable, every account lookup (the start of every request) first reads the change
//! counter, so a change made by another process on the same index (the CLI beside a server)
//! holds for the next request, and entries live `FALLBACK_TTL` (500 ms) at most. The TTLs bound
//! a change nobody announced (a node or CLI that could reach neither, a hand edit of the index). Rules that decide whether a write may happen are not taken from here:
//! they are evaluated inside the committing transaction.

mod epoch;
mod map;
mod pubsub;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::{Account, Element, MetaError, SigningKey, Store};
use map::Map;
pub(crate) use pubsub::Redis;

/// How long an entry is used when invalidations may be missed (no Redis, or Redis down).
pub(crate) const FALLBACK_TTL: Duration = Duration::from_millis(500);
/// How long an entry is used while invalidations arrive: bounds the staleness of a change that
/// was not published (DESIGN §2: every change holds on every node within 1 s). One index read
/// per entry and second is what a warm request path costs.
pub(crate) const SAFETY_TTL: Duration = Duration::from_secs(1);

/// How this node learns of changes made elsewhere, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coordination {
    /// No Redis configured: local invalidation plus the short TTL.
    NotConfigured,
    /// Subscribed to the invalidation channel and hearing from Redis.
    Ok,
    /// Redis configured but not answering: the short TTL until it does.
    Down,
}

impl Coordination {
    pub fn as_str(self) -> &'static str {
        match self {
            Coordination::NotConfigured => "not_configured",
            Coordination::Ok => "ok",
            Coordination::Down => "down",
        }
    }
}

/// What a committed change invalidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// An element's row or its bucket policy.
    Element(String),
    /// Any account (accounts are few and change rarely: all go).
    Accounts,
    /// One account's bucket grants, by account id.
    Grants(String),
    Keys,
    All,
}

impl Change {
    fn encode(&self) -> String {
        match self {
            Change::Element(name) => format!("element:{name}"),
            Change::Accounts => "accounts".into(),
            Change::Grants(id) => format!("grants:{id}"),
            Change::Keys => "keys".into(),
            Change::All => "all".into(),
        }
    }

    /// Anything unknown (a newer node's message) invalidates everything.
    fn decode(s: &str) -> Change {
        match s.split_once(':') {
            Some(("element", name)) => Change::Element(name.to_owned()),
            Some(("grants", id)) => Change::Grants(id.to_owned()),
            _ => match s {
                "accounts" => Change::Accounts,
                "keys" => Change::Keys,
                _ => Change::All,
            },
        }
    }
}

type ElementEntry = Option<(Element, Option<String>)>;

pub(crate) struct Caches {
    elements: Map<String, ElementEntry>,
    by_client_id: Map<String, Option<Account>>,
    by_id: Map<String, Option<Account>>,
    grants: Map<String, Arc<Vec<(String, String)>>>,
    keys: Map<(), Arc<Vec<SigningKey>>>,
    redis: OnceLock<Arc<Redis>>,
    epoch: epoch::Epoch,
}

impl Caches {
    pub(crate) fn new() -> Caches {
        Caches {
            elements: Map::new(),
            by_client_id: Map::new(),
            by_id: Map::new(),
            grants: Map::new(),
            keys: Map::new(),
            redis: OnceLock::new(),
            epoch: epoch::Epoch::new(),
        }
    }

    fn live(&self) -> bool {
        self.redis.get().is_some_and(|r| r.live())
    }

    fn max_age(&self) -> Duration {
        if self.live() {
            SAFETY_TTL
        } else {
            FALLBACK_TTL
        }
    }

    fn apply(&self, change: &Change) {
        match change {
            Change::Element(name) => self.elements.remove(name),
            Change::Accounts => {
                self.by_client_id.clear();
                self.by_id.clear();
            }
            Change::Grants(id) => self.grants.remove(id),
            Change::Keys => self.keys.clear(),
            Change::All => self.clear_all(),
        }
    }

    fn clear_all(&self) {
        self.elements.clear();
        self.by_client_id.clear();
        self.by_id.clear();
        self.grants.clear();
        self.keys.clear();
    }
}

impl Store {
    /// Reads through this node's cache (see the module docs): what the request path uses.
    pub fn cached(&self) -> Cached<'_> {
        Cached(self)
    }

    /// How changes made elsewhere reach this node's cache.
    pub fn coordination(&self) -> Coordination {
        match self.cache.redis.get() {
            None => Coordination::NotConfigured,
            Some(r) if r.live() => Coordination::Ok,
            Some(_) => Coordination::Down,
        }
    }

    /// Publishes this store's changes on the deployment's invalidation channel in Redis at
    /// `url`. Connects on first use, so this succeeds while Redis is down.
    pub async fn with_redis(self, url: &str) -> Result<Store, MetaError> {
        let deployment = self.deployment_id().await?;
        let redis = Redis::new(url, &deployment).map_err(|e| MetaError::Redis(e.to_string()))?;
        // Set once, before the store is shared; a second call keeps the first.
        let _ = self.cache.redis.set(Arc::new(redis));
        Ok(self)
    }

    /// Subscribes this node to the other nodes' invalidations, in the background, for as long
    /// as the process runs (a serving node; the CLI only publishes). No-op without Redis.
    pub fn subscribe_invalidations(&self) {
        if let Some(redis) = self.cache.redis.get() {
            tokio::spawn(pubsub::subscribe_forever(self.cache.clone(), redis.clone()));
        }
    }

    /// After a change committed: drops the entry here, then tells the other nodes and
    /// processes (the change counter for those without Redis, and Redis).
    pub(crate) async fn changed(&self, change: Change) {
        self.cache.apply(&change);
        if let Err(e) = self.bump_epoch().await {
            tracing::warn!(error = %e, "cannot move the cache change counter on; other processes see the change when their cached entry expires");
        }
        if let Some(redis) = self.cache.redis.get() {
            redis.publish(&change).await;
        }
    }
}

/// The cached reads of a `Store`, named as the index reads they stand for.
pub struct Cached<'a>(&'a Store);

impl Cached<'_> {
    /// As `Store::element_with_policy`. The usage counters (`used_bytes`, `object_count`) are
    /// as of when the entry was loaded: decisions on them belong to the committing transaction.
    pub async fn element_with_policy(
        &self,
        name: &str,
    ) -> Result<Option<(Element, Option<String>)>, MetaError> {
        let c = &self.0.cache;
        let key = name.to_owned();
        match c.elements.get(&key, c.max_age()) {
            Ok(v) => Ok(v),
            Err(ticket) => {
                let v = self.0.element_with_policy(name).await?;
                c.elements.put(ticket, key, v.clone());
                Ok(v)
            }
        }
    }

    pub async fn account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Account>, MetaError> {
        let c = &self.0.cache;
        self.check_epoch().await?;
        let key = client_id.to_owned();
        match c.by_client_id.get(&key, c.max_age()) {
            Ok(v) => Ok(v),
            Err(ticket) => {
                let v = self.0.account_by_client_id(client_id).await?;
                c.by_client_id.put(ticket, key, v.clone());
                Ok(v)
            }
        }
    }

    pub async fn account_by_id(&self, id: &str) -> Result<Option<Account>, MetaError> {
        let c = &self.0.cache;
        self.check_epoch().await?;
        let key = id.to_owned();
        match c.by_id.get(&key, c.max_age()) {
            Ok(v) => Ok(v),
            Err(ticket) => {
                let v = self.0.account_by_id(id).await?;
                c.by_id.put(ticket, key, v.clone());
                Ok(v)
            }
        }
    }

    pub async fn grants_for(&self, account_id: &str) -> Result<Vec<(String, String)>, MetaError> {
        let c = &self.0.cache;
        let key = account_id.to_owned();
        match c.grants.get(&key, c.max_age()) {
            Ok(v) => Ok(v.as_ref().clone()),
            Err(ticket) => {
                let v = self.0.grants_for(account_id).await?;
                c.grants.put(ticket, key, Arc::new(v.clone()));
                Ok(v)
            }
        }
    }

    /// As `Store::signing_keys`, newest first.
    pub async fn signing_keys(&self) -> Result<Arc<Vec<SigningKey>>, MetaError> {
        let c = &self.0.cache;
        match c.keys.get(&(), c.max_age()) {
            Ok(v) => Ok(v),
            Err(ticket) => {
                let v = Arc::new(self.0.signing_keys().await?);
                c.keys.put(ticket, (), v.clone());
                Ok(v)
            }
        }
    }

    /// Every request starts with an account lookup: without live invalidations, that is when
    /// the change counter is read.
    async fn check_epoch(&self) -> Result<(), MetaError> {
        if self.0.cache.live() {
            return Ok(());
        }
        self.0.check_epoch().await
    }

    /// Drops the cached signing keys (a token names a key this node has not seen yet: another
    /// node may have just rotated).
    pub fn forget_signing_keys(&self) {
        self.0.cache.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Change;

    #[test]
    fn changes_round_trip_and_unknown_means_all() {
        for c in [
            Change::Element("invoices".into()),
            Change::Accounts,
            Change::Grants("0192-id".into()),
            Change::Keys,
            Change::All,
        ] {
            assert_eq!(Change::decode(&c.encode()), c);
        }
        assert_eq!(Change::decode("something-new:x"), Change::All);
    }
}
