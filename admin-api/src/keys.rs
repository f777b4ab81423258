//! RS256 signing keys and access tokens: issue, verify, publish (JWKS), rotate.
//!
//! Keys live in the index (private half sealed under the master key), so every node and the CLI
//! share them. The newest key signs; every stored key verifies, so rotation never invalidates
//! tokens that are still unexpired.

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
/// Unknown `kid`s reload the key set at most this often (another node or the CLI may have rotated).
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
    loaded_at: Option<Instant>,
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
        ring.reload().await?;
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

    pub async fn reload(&self) -> Result<(), TokenError> {
        let rows = self.store.signing_keys().await?;
        let mut keys = HashMap::new();
        let mut order = Vec::new();
        for row in rows {
            let loaded = match self.get(&row.kid) {
                Some(l) => l,
                None => Arc::new(load(&row)?),
            };
            order.push(row.kid.clone());
            keys.insert(row.kid, loaded);
        }
        if let Ok(mut inner) = self.inner.write() {
            *inner = Inner {
                keys,
                order,
                loaded_at: Some(Instant::now()),
            };
        }
        Ok(())
    }

    /// Generates and stores a new signing key, which signs from now on; returns its kid.
    pub async fn rotate(&self) -> Result<String, TokenError> {
        let key = tokio::task::spawn_blocking(generate)
            .await
            .map_err(|e| TokenError::Key(e.to_string()))??;
        let key = self.store.insert_signing_key(&key).await?;
        self.reload().await?;
        tracing::info!(kid = %key.kid, "new token signing key");
        Ok(key.kid)
    }

    /// Signs a token for the account with the newest key (as stored, so a rotation by the CLI
    /// or another node takes effect here too).
    pub async fn issue(&self, acc: &Account) -> Result<Issued, TokenError> {
        let newest = self.store.newest_signing_kid().await?;
        let kid = match newest {
            Some(kid) => kid,
            None => {
                self.first_key().await?;
                self.order()
                    .first()
                    .cloned()
                    .ok_or(TokenError::UnknownKey)?
            }
        };
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
        let key = match self.get(&kid) {
            Some(k) => k,
            None => {
                let stale = self
                    .inner
                    .read()
                    .ok()
                    .and_then(|i| i.loaded_at)
                    .is_none_or(|at| at.elapsed() >= RELOAD_EVERY);
                if stale {
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
        self.reload().await?;
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
