use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::cache::Change;
use crate::db::Once;
use crate::error::is_unique_violation;
use crate::{Account, AccountStatus, MetaError, NewAccount, Store, now_ms};

macro_rules! account_cols {
    () => {
        "id, name, description, client_id, secret_enc, role, status, rate_limit, secret_expires_ms, is_system, created_ms, updated_ms"
    };
}

impl Store {
    fn account_from_row(&self, row: &AnyRow) -> Result<Account, MetaError> {
        let sealed: String = row.try_get("secret_enc")?;
        let status: String = row.try_get("status")?;
        let is_system: i64 = row.try_get("is_system")?;
        Ok(Account {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            client_id: row.try_get("client_id")?,
            client_secret: self.secrets.open(&sealed)?,
            role: row.try_get("role")?,
            status: status
                .parse::<AccountStatus>()
                .map_err(MetaError::corrupt)?,
            rate_limit: row.try_get("rate_limit")?,
            secret_expires_ms: row.try_get("secret_expires_ms")?,
            is_system: is_system != 0,
            created_ms: row.try_get("created_ms")?,
            updated_ms: row.try_get("updated_ms")?,
        })
    }

    pub async fn create_account(&self, new: &NewAccount) -> Result<Account, MetaError> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut conn = self.pool.acquire().await?;
        self.insert_account(&mut conn, &id, new).await?;
        drop(conn);
        // A node may hold "unknown access key" for the client id.
        self.changed(Change::Accounts).await;
        self.account_by_id(&id)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("service account '{id}'")))
    }

    /// Creates the system admin account unless one exists, in one transaction that nodes
    /// starting at once on an empty index take in turns; `None` when it existed already.
    pub async fn create_system_account_once(
        &self,
        new: &NewAccount,
    ) -> Result<Option<Account>, MetaError> {
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.begin_write().await?;
        self.lock_once(&mut tx, Once::SystemAccount).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM service_accounts WHERE is_system = 1 LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        if existing.is_some() {
            return Ok(None);
        }
        self.insert_account(&mut tx, &id, new).await?;
        tx.commit().await?;
        self.changed(Change::Accounts).await;
        self.account_by_id(&id).await
    }

    async fn insert_account(
        &self,
        conn: &mut AnyConnection,
        id: &str,
        new: &NewAccount,
    ) -> Result<(), MetaError> {
        let now = now_ms();
        let sealed = self.secrets.seal(&new.client_secret)?;
        let res = sqlx::query(concat!(
            "INSERT INTO service_accounts (",
            account_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, $10)"
        ))
        .bind(id)
        .bind(&new.name)
        .bind(&new.description)
        .bind(&new.client_id)
        .bind(sealed)
        .bind(new.role.as_str())
        .bind(new.rate_limit)
        .bind(new.secret_expires_ms)
        .bind(i64::from(new.is_system))
        .bind(now)
        .execute(conn)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(MetaError::AlreadyExists(format!(
                "service account '{}' or client id '{}'",
                new.name, new.client_id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn account_by_id(&self, id: &str) -> Result<Option<Account>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM service_accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.account_from_row(r)).transpose()
    }

    pub async fn account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<Account>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM service_accounts WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.account_from_row(r)).transpose()
    }

    pub async fn system_account(&self) -> Result<Option<Account>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM service_accounts WHERE is_system = 1 ORDER BY created_ms LIMIT 1"
        ))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.account_from_row(r)).transpose()
    }

    /// How many accounts exist besides the system admin (deleted ones included): none means
    /// the control data is new or was lost with the index.
    pub async fn count_non_system_accounts(&self) -> Result<i64, MetaError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM service_accounts WHERE is_system = 0")
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    pub async fn update_account_secret(&self, id: &str, secret: &str) -> Result<(), MetaError> {
        let sealed = self.secrets.seal(secret)?;
        sqlx::query("UPDATE service_accounts SET secret_enc = $2, updated_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        self.changed(Change::Accounts).await;
        Ok(())
    }
}

/// Filters and page of an account listing.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    pub role: Option<String>,
    pub status: Option<String>,
    /// Substring of the name.
    pub name: Option<String>,
    /// Page size (1..=1000).
    pub limit: i64,
    pub offset: i64,
}

/// Fields of an account an update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub role: Option<String>,
    pub rate_limit: Option<Option<i64>>,
    pub status: Option<AccountStatus>,
    pub secret_expires_ms: Option<Option<i64>>,
}

impl Store {
    /// Accounts matching the filters (deleted ones only when asked for by status), by name.
    /// Returns the page and the total count.
    pub async fn list_accounts(&self, q: &AccountQuery) -> Result<(Vec<Account>, i64), MetaError> {
        let mut cond = String::from(" WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(role) = &q.role {
            binds.push(role.clone());
            cond.push_str(&format!(" AND role = ${}", binds.len()));
        }
        match &q.status {
            Some(status) => {
                binds.push(status.clone());
                cond.push_str(&format!(" AND status = ${}", binds.len()));
            }
            None => cond.push_str(" AND status <> 'deleted'"),
        }
        if let Some(name) = &q.name {
            binds.push(format!("%{}%", name.to_lowercase()));
            cond.push_str(&format!(" AND LOWER(name) LIKE ${}", binds.len()));
        }
        let count_sql = format!("SELECT COUNT(*) AS n FROM service_accounts{cond}");
        let mut count = // Only fixed column names, `$N` placeholders and integers are spliced in; values are bound.
        sqlx::query(sqlx::AssertSqlSafe(count_sql));
        for b in &binds {
            count = count.bind(b.clone());
        }
        let total: i64 = count.fetch_one(&self.pool).await?.try_get("n")?;
        let sql = format!(
            "SELECT {} FROM service_accounts{cond} ORDER BY name LIMIT {} OFFSET {}",
            account_cols!(),
            q.limit.clamp(1, 1000),
            q.offset.max(0)
        );
        let mut query = // Only fixed column names, `$N` placeholders and integers are spliced in; values are bound.
        sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.clone());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let items = rows
            .iter()
            .map(|r| self.account_from_row(r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    }

    /// Applies an update; `NotFound` for unknown ids, `AlreadyExists` for a taken name.
    pub async fn update_account(&self, id: &str, u: &AccountUpdate) -> Result<Account, MetaError> {
        let Some(cur) = self.account_by_id(id).await? else {
            return Err(MetaError::NotFound(format!("service account '{id}'")));
        };
        let name = u.name.clone().unwrap_or(cur.name);
        let description = u.description.clone().unwrap_or(cur.description);
        let role = u.role.clone().unwrap_or(cur.role);
        let rate_limit = u.rate_limit.unwrap_or(cur.rate_limit);
        let status = u.status.unwrap_or(cur.status);
        let expires = u.secret_expires_ms.unwrap_or(cur.secret_expires_ms);
        let res = sqlx::query(
            "UPDATE service_accounts SET name = $2, description = $3, role = $4, rate_limit = $5, status = $6, secret_expires_ms = $7, updated_ms = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(&name)
        .bind(description)
        .bind(role)
        .bind(rate_limit)
        .bind(status.as_str())
        .bind(expires)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(MetaError::AlreadyExists(format!(
                    "service account '{name}'"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.changed(Change::Accounts).await;
        self.account_by_id(id)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("service account '{id}'")))
    }

    /// Replaces the secret and its expiry.
    pub async fn rotate_account_secret(
        &self,
        id: &str,
        secret: &str,
        expires_ms: Option<i64>,
    ) -> Result<(), MetaError> {
        let sealed = self.secrets.seal(secret)?;
        let res = sqlx::query(
            "UPDATE service_accounts SET secret_enc = $2, secret_expires_ms = $3, updated_ms = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(sealed)
        .bind(expires_ms)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 0 {
            return Err(MetaError::NotFound(format!("service account '{id}'")));
        }
        self.changed(Change::Accounts).await;
        Ok(())
    }

    /// The account's bucket grants as (bucket, access), by bucket. No grants = every bucket.
    pub async fn grants_for(&self, account_id: &str) -> Result<Vec<(String, String)>, MetaError> {
        let rows = sqlx::query(
            "SELECT bucket, access FROM bucket_grants WHERE account_id = $1 ORDER BY bucket",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("bucket")?, r.try_get("access")?)))
            .collect()
    }

    /// Replaces all of the account's grants at once.
    pub async fn set_grants(
        &self,
        account_id: &str,
        grants: &[(String, String)],
    ) -> Result<(), MetaError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM bucket_grants WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        for (bucket, access) in grants {
            sqlx::query(
                "INSERT INTO bucket_grants (account_id, bucket, access) VALUES ($1, $2, $3)",
            )
            .bind(account_id)
            .bind(bucket)
            .bind(access)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.changed(Change::Grants(account_id.to_owned())).await;
        Ok(())
    }
}

impl Store {
    pub async fn account_by_name(&self, name: &str) -> Result<Option<Account>, MetaError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM service_accounts WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(|r| self.account_from_row(r)).transpose()
    }
}
