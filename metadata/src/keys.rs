//! Token signing keys: the private half sealed under the master key, the public half in the clear.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::Once;
use crate::{MetaError, Store, now_ms};

/// One RS256 signing key with its private key decrypted (never log it).
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    /// PKCS#8 PEM.
    pub private_pem: String,
    /// base64url modulus and exponent, as in a JWK.
    pub n: String,
    pub e: String,
    pub created_ms: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

impl Store {
    fn key_from_row(&self, row: &AnyRow) -> Result<SigningKey, MetaError> {
        let sealed: String = row.try_get("private_enc")?;
        Ok(SigningKey {
            kid: row.try_get("kid")?,
            alg: row.try_get("alg")?,
            private_pem: self.secrets.open(&sealed)?,
            n: row.try_get("n")?,
            e: row.try_get("e")?,
            created_ms: row.try_get("created_ms")?,
        })
    }

    /// Stores a new signing key; `created_ms` is set here (the newest key signs).
    pub async fn insert_signing_key(&self, key: &SigningKey) -> Result<SigningKey, MetaError> {
        let mut conn = self.pool.acquire().await?;
        let stored = self.insert_key(&mut conn, key).await?;
        drop(conn);
        self.changed(crate::cache::Change::Keys).await;
        Ok(stored)
    }

    /// Stores `key` as the first signing key unless there is one already, in one transaction
    /// that nodes starting at once on an empty index take in turns; whether it was stored.
    pub async fn insert_first_signing_key(&self, key: &SigningKey) -> Result<bool, MetaError> {
        let mut tx = self.begin_write().await?;
        self.lock_once(&mut tx, Once::FirstSigningKey).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?;
        if n > 0 {
            return Ok(false);
        }
        self.insert_key(&mut tx, key).await?;
        tx.commit().await?;
        // After the commit: announcing moves the change counter, a write of its own.
        self.changed(crate::cache::Change::Keys).await;
        Ok(true)
    }

    async fn insert_key(
        &self,
        conn: &mut AnyConnection,
        key: &SigningKey,
    ) -> Result<SigningKey, MetaError> {
        let sealed = self.secrets.seal(&key.private_pem)?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_enc, n, e, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(sealed)
        .bind(&key.n)
        .bind(&key.e)
        .bind(now)
        .execute(conn)
        .await?;
        Ok(SigningKey {
            created_ms: now,
            ..key.clone()
        })
    }

    /// All signing keys, newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, MetaError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_enc, n, e, created_ms FROM signing_keys ORDER BY created_ms DESC, kid DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.key_from_row(r)).collect()
    }

    /// The kid of the newest key, if any (cheap: no decryption).
    pub async fn newest_signing_kid(&self) -> Result<Option<String>, MetaError> {
        let row =
            sqlx::query("SELECT kid FROM signing_keys ORDER BY created_ms DESC, kid DESC LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("kid")).transpose()?)
    }
}
