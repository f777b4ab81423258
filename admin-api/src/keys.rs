//! RS256 signing keys and access tokens: issue, verify, publish (JWKS), rotate.
//!
//! Keys live in the index (private half sealed under the master key), so every node and the CLI
//! share them; each node reads them through its cache (`Store::cached`), which a rotation
//! anywhere invalidates. The newest key signs; every stored key verifies, so rotation never
//! invalidates tokens that are still unexpired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use artstore_metadata::{Account, MetaError, SigningKey, Store};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `iss` and `aud` of every token; tokens for anything else are refused.
pub const ISSUER: &str = "artstore";
pub const AUDIENCE: &str = "artstore";
/// Token lifetime (DESIGN.md §5).
pub const TOKEN_LIFETIME_SECS: i64 = 1800;
/// Clock skew tolerated on `exp`/`nbf`.
const LEEWAY_SECS: u64 = 5;
/// Unknown `kid`s reload the key set from the index at most this often (another node or the CLI
/// may have rotated a moment ago, before its invalidation arrived).
const RELOAD_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("token algorithm must be RS256")]
    BadAlgorithm,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("token is invalid: {0}")]
    Invalid(String),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token is for another audience")]
    WrongAudience,
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("key error: {0}")]
    Key(String),
}

/// Claims of an ArtStore access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Account id.
    pub sub: String,
    pub client_id: String,
    pub name: String,
    pub role: String,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// A freshly issued token.
pub struct Issued {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: i64,
}

struct Loaded {
    enc: EncodingKey,
    dec: DecodingKey,
    n: String,
    e: String,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<String, Arc<Loaded>>,
    /// kids newest first.
    order: Vec<String>,
    /// The cached key list these were parsed from: parsing again only when it changed.
    source: Option<Arc<Vec<SigningKey>>>,
    /// When an unknown kid last made the keys be read from the index.
    forced_at: Option<Instant>,
}

pub struct KeyRing {
    store: Store,
    inner: RwLock<Inner>,
}

impl KeyRing {
    /// Loads the stored keys, generating the first one on an empty index.
    pub async fn open(store: Store) -> Result<Arc<KeyRing>, TokenError> {
        let ring = Arc::new(KeyRing {
            store,
            inner: RwLock::new(Inner::default()),
        });
        ring.sync().await?;
        if ring.order().is_empty() {
            ring.first_key().await?;
        }
        Ok(ring)
    }

    /// Stores a first signing key on an index that has none. Nodes starting at once on an
    /// empty index race here: one key is stored, the others load it.
    async fn first_key(&self) -> Result<(), TokenError> {
        let key = tokio::task::spawn_blocking(generate)
            .await
            .map_err(|e| TokenError::Key(e.to_string()))??;
        if self.store.insert_first_signing_key(&key).await? {
            tracing::info!(kid = %key.kid, "first token signing key");
        }
        self.reload().await
    }

    fn order(&self) -> Vec<String> {
        self.inner
            .read()
            .map(|i| i.order.clone())
            .unwrap_or_default()
    }

    fn get(&self, kid: &str) -> Option<Arc<Loaded>> {
        self.inner
            .read()
            .ok()
            .and_then(|i| i.keys.get(kid).cloned())
    }

    /// Brings the parsed keys in line with the node's cached key list (no index read when warm).
    async fn sync(&self) -> Result<(), TokenError> {
        let rows = self.store.cached().signing_keys().await?;
        let current = self
            .inner
            .read()
            .ok()
            .and_then(|i| i.source.as_ref().map(|s| Arc::ptr_eq(s, &rows)))
            .unwrap_or(false);
        if current {
            return Ok(());
        }
        let mut keys = HashMap::new();
        let mut order = Vec::new();
        for row in rows.iter() {
            let loaded = match self.get(&row.kid) {
                Some(l) => l,
                None => Arc::new(load(row)?),
            };
            order.push(row.kid.clone());
            keys.insert(row.kid.clone(), loaded);
        }
        if let Ok(mut inner) = self.inner.write() {
            let forced_at = inner.forced_at;
            *inner = Inner {
                keys,
                order,
                source: Some(rows),
                forced_at,
            };
        }
        Ok(())
    }

    /// Reads the keys from the index again, whatever the cache holds.
    pub async fn reload(&self) -> Result<(), TokenError> {
        self.store.cached().forget_signing_keys();
        self.sync().await
    }

    /// Generates and stores a new signing key, which signs from now on; returns its kid.
    pub async fn rotate(&self) -> Result<String, TokenError> {
        let key = tokio::task::spawn_blocking(generate)
            .await
            .map_err(|e| TokenError::Key(e.to_string()))??;
        // Storing it invalidates the cached keys here and on every node.
        let key = self.store.insert_signing_key(&key).await?;
        self.sync().await?;
        tracing::info!(kid = %key.kid, "new token signing key");
        Ok(key.kid)
    }

    /// Signs a token for the account with the newest key as stored (one cheap read: a rotation
    /// by the CLI or another node signs from the next token on, here too).
    pub async fn issue(&self, acc: &Account) -> Result<Issued, TokenError> {
        let kid = match self.store.newest_signing_kid().await? {
            Some(kid) => kid,
            None => {
                self.first_key().await?;
                self.order()
                    .first()
                    .cloned()
                    .ok_or(TokenError::UnknownKey)?
            }
        };
        self.sync().await?;
        if self.get(&kid).is_none() {
            self.reload().await?;
        }
        let key = self.get(&kid).ok_or(TokenError::UnknownKey)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: acc.id.clone(),
            client_id: acc.client_id.clone(),
            name: acc.name.clone(),
            role: acc.role.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: now + TOKEN_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(&header, &claims, &key.enc)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(Issued {
            token,
            expires_in: TOKEN_LIFETIME_SECS,
            issued_at: now,
        })
    }

    /// Verifies signature, algorithm (RS256 only: no `none`, no HMAC confusion), `kid`, `iss`,
    /// `aud`, `exp` and `nbf`. The account's current status is the caller's business.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::BadAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        self.sync().await?;
        let key = match self.get(&kid) {
            Some(k) => k,
            None => {
                // Bounded, so tokens with made-up kids cannot make every request read the index.
                let due = self.inner.write().ok().is_some_and(|mut i| {
                    let due = i.forced_at.is_none_or(|at| at.elapsed() >= RELOAD_EVERY);
                    if due {
                        i.forced_at = Some(Instant::now());
                    }
                    due
                });
                if due {
                    self.reload().await?;
                }
                self.get(&kid).ok_or(TokenError::UnknownKey)?
            }
        };
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "nbf", "iat", "aud", "iss", "sub"]);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &key.dec, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAudience => TokenError::WrongAudience,
                K::InvalidAlgorithm => TokenError::BadAlgorithm,
                other => TokenError::Invalid(format!("{other:?}")),
            }
        })?;
        Ok(data.claims)
    }

    /// The public keys as a JWK set.
    pub async fn jwks(&self) -> Result<Value, TokenError> {
        self.sync().await?;
        let inner = self
            .inner
            .read()
            .map_err(|_| TokenError::Key("key ring lock poisoned".into()))?;
        let keys: Vec<Value> = inner
            .order
            .iter()
            .filter_map(|kid| inner.keys.get(kid).map(|k| (kid, k)))
            .map(|(kid, k)| {
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": k.n, "e": k.e})
            })
            .collect();
        Ok(json!({ "keys": keys }))
    }
}

fn load(row: &SigningKey) -> Result<Loaded, TokenError> {
    if row.alg != "RS256" {
        return Err(TokenError::Key(format!(
            "key {} has unsupported alg {}",
            row.kid, row.alg
        )));
    }
    let enc = EncodingKey::from_rsa_pem(row.private_pem.as_bytes())
        .map_err(|e| TokenError::Key(format!("key {}: {e}", row.kid)))?;
    let dec = DecodingKey::from_rsa_components(&row.n, &row.e)
        .map_err(|e| TokenError::Key(format!("key {}: {e}", row.kid)))?;
    Ok(Loaded {
        enc,
        dec,
        n: row.n.clone(),
        e: row.e.clone(),
    })
}

/// A new 2048-bit RSA key (CPU-heavy: run it off the async threads).
fn generate() -> Result<SigningKey, TokenError> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    let pem = key
        .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    Ok(SigningKey {
        kid: uuid::Uuid::now_v7().simple().to_string(),
        alg: "RS256".into(),
        private_pem: pem.to_string(),
        n: B64URL.encode(key.n().to_bytes_be()),
        e: B64URL.encode(key.e().to_bytes_be()),
        created_ms: 0,
    })
}
