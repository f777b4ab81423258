//! Loading many new objects at once (generated benchmark datasets, imports): many rows per
//! statement and one transaction per call, writing exactly the rows `put_object` writes.

use std::collections::BTreeMap;

use sqlx::AssertSqlSafe;

use crate::objects::{OBJECT_COLS, adjust_usage, bind_object, object_cols};
use crate::{MetaError, ObjectRecord, Store};

/// Bound values per INSERT. sqlx binds SQLite values by name, looking each one up among all of
/// the statement's (quadratic in their number), so SQLite statements stay small; PostgreSQL's
/// limit is 65535.
pub(crate) fn values_per_insert(kind: crate::DbKind) -> usize {
    match kind {
        crate::DbKind::Sqlite => 250,
        crate::DbKind::Postgres => 12_000,
    }
}

/// `($1, …, $n), (…)` for `rows` rows of `cols` values; `row(first)` renders one row whose
/// first placeholder is `$first`.
pub(crate) fn placeholders(rows: usize, cols: usize, row: impl Fn(usize) -> String) -> String {
    (0..rows)
        .map(|r| row(r * cols + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($first, …, $first+cols-1)`.
pub(crate) fn plain_row(first: usize, cols: usize) -> String {
    let p: Vec<String> = (first..first + cols).map(|i| format!("${i}")).collect();
    format!("({})", p.join(", "))
}

impl Store {
    /// Inserts new objects, their search rows and the element counters in one transaction.
    /// The keys must not exist yet (a duplicate fails the whole call and writes nothing), and
    /// no write rule is checked: this is for filling a store, not for serving clients.
    pub async fn bulk_load(&self, recs: &[ObjectRecord]) -> Result<(), MetaError> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let sqlite = self.kind() == crate::DbKind::Sqlite;
        if sqlite {
            // A load touches pages all over the B-trees: 256 MiB of page cache for this
            // transaction instead of the default 2 MiB (set back before the commit, on this
            // connection, which the pool reuses).
            sqlx::query("PRAGMA cache_size = -262144")
                .execute(&mut *tx)
                .await?;
        }
        for chunk in recs.chunks(values_per_insert(self.kind()) / OBJECT_COLS) {
            let text = format!(
                concat!("INSERT INTO objects (", object_cols!(), ") VALUES {}"),
                placeholders(chunk.len(), OBJECT_COLS, |f| plain_row(f, OBJECT_COLS))
            );
            let mut q = sqlx::query(AssertSqlSafe(text));
            for rec in chunk {
                q = bind_object(q, rec);
            }
            q.execute(&mut *tx).await?;
        }
        self.bulk_index_search(&mut tx, recs).await?;
        let mut usage: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for rec in recs {
            let u = usage.entry(&rec.bucket).or_default();
            u.0 += rec.size;
            u.1 += 1;
        }
        let now = crate::now_ms();
        for (bucket, (bytes, count)) in usage {
            adjust_usage(&mut tx, bucket, bytes, count, now).await?;
        }
        if sqlite {
            sqlx::query("PRAGMA cache_size = -2000")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
