use sqlx::Row;
use sqlx::any::AnyRow;

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
        let now = now_ms();
        let sealed = self.secrets.seal(&new.client_secret)?;
        let res = sqlx::query(concat!(
            "INSERT INTO service_accounts (",
            account_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, $10)"
        ))
        .bind(&id)
        .bind(&new.name)
        .bind(&new.description)
        .bind(&new.client_id)
        .bind(sealed)
        .bind(new.role.as_str())
        .bind(new.rate_limit)
        .bind(new.secret_expires_ms)
        .bind(i64::from(new.is_system))
        .bind(now)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(MetaError::AlreadyExists(format!(
                    "service account '{}' or client id '{}'",
                    new.name, new.client_id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.account_by_id(&id)
            .await?
            .ok_or_else(|| MetaError::NotFound(format!("service account '{id}'")))
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

    pub async fn update_account_secret(&self, id: &str, secret: &str) -> Result<(), MetaError> {
        let sealed = self.secrets.seal(secret)?;
        sqlx::query("UPDATE service_accounts SET secret_enc = $2, updated_ms = $3 WHERE id = $1")
            .bind(id)
            .bind(sealed)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
