//! SQLite: an FTS5 table (`search_fts`, rowid = `search_docs.id`) for `q`, and an indexed
//! side table `search_attrs` (one row per attribute or tag) for `attr.*` and `tag.*` filters,
//! which the object rows join on (bucket, key).

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::sql::{Arg, Sql};
use super::text::{document, number};
use super::{AttrCond, AttrFilter};
use crate::bulk::{placeholders, plain_row, values_per_insert};
use crate::{MetaError, ObjectRecord};

pub(super) const COLLATE_C: &str = "";

pub(super) fn joins(text: bool) -> &'static str {
    if text {
        " JOIN search_docs d ON d.bucket = o.bucket AND d.key = o.key \
         JOIN search_fts ON search_fts.rowid = d.id"
    } else {
        ""
    }
}

pub(super) fn text_match(p: &str) -> String {
    format!("search_fts MATCH {p}")
}

/// bm25 is negative, better matches lower: negated so that higher means more relevant.
pub(super) fn score(_p: &str) -> String {
    "(-search_fts.rank)".to_owned()
}

fn attr_rows(kind: &str, name: &str, sql: &mut Sql, cond: &str) -> String {
    let n = sql.text(name);
    format!(
        "(o.bucket, o.key) IN (SELECT bucket, key FROM search_attrs \
         WHERE kind = '{kind}' AND name = {n}{cond})"
    )
}

pub(super) fn attr_cond(sql: &mut Sql, f: &AttrFilter) -> String {
    let cond = match &f.cond {
        AttrCond::Equals(values) => format!(" AND value IN ({})", sql.list(values)),
        AttrCond::Prefix(p) => {
            let from = sql.text(p.clone());
            match crate::list::prefix_successor(p) {
                Some(s) => format!(" AND value >= {from} AND value < {}", sql.text(s)),
                None => format!(" AND value >= {from}"),
            }
        }
        AttrCond::Gte(b) => range(sql, b, ">="),
        AttrCond::Lte(b) => range(sql, b, "<="),
        AttrCond::Exists(true) => String::new(),
        AttrCond::Exists(false) => return format!("NOT {}", attr_rows("a", &f.name, sql, "")),
    };
    attr_rows("a", &f.name, sql, &cond)
}

/// Numeric when both the bound and the stored value are numbers, else text (byte order).
fn range(sql: &mut Sql, bound: &str, op: &str) -> String {
    let t = sql.text(bound);
    match number(bound) {
        Some(n) => {
            let n = sql.arg(Arg::Real(n));
            format!(
                " AND ((num_value IS NOT NULL AND num_value {op} {n}) \
                 OR (num_value IS NULL AND value {op} {t}))"
            )
        }
        None => format!(" AND value {op} {t}"),
    }
}

pub(super) fn tag_cond(sql: &mut Sql, key: &str, value: &str) -> String {
    let v = sql.text(value);
    attr_rows("t", key, sql, &format!(" AND value = {v}"))
}

/// Counts per value of one attribute over the rows of `matched` (columns b, k).
pub(super) fn attr_facet(sql: &mut Sql, matched: &str, name: &str, top: i64) -> String {
    let n = sql.text(name);
    format!(
        // CROSS JOIN keeps the matches as the outer loop (SQLite does not reorder it): one
        // primary-key lookup per match, instead of a pass over every value of the name.
        "SELECT a.value AS v, COUNT(*) AS n FROM ({matched}) m \
         CROSS JOIN search_attrs a ON a.bucket = m.b AND a.key = m.k \
         WHERE a.kind = 'a' AND a.name = {n} \
         GROUP BY a.value ORDER BY COUNT(*) DESC, a.value LIMIT {top}"
    )
}

/// The `search_attrs` rows of one object: (kind, name, value, number).
fn attr_rows_of<'a>(
    attrs: &'a BTreeMap<String, String>,
    tags: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = (&'static str, &'a str, &'a str, Option<f64>)> {
    attrs
        .iter()
        .map(|a| ("a", a))
        .chain(tags.iter().map(|t| ("t", t)))
        .map(|(kind, (name, value))| (kind, name.as_str(), value.as_str(), number(value)))
}

/// Replaces the object's search rows (inside the transaction that writes its objects row).
pub(super) async fn index(
    tx: &mut AnyConnection,
    bucket: &str,
    key: &str,
    attrs: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> Result<(), MetaError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO search_docs (bucket, key) VALUES ($1, $2) \
         ON CONFLICT (bucket, key) DO UPDATE SET bucket = excluded.bucket RETURNING id",
    )
    .bind(bucket)
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM search_fts WHERE rowid = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO search_fts (rowid, doc) VALUES ($1, $2)")
        .bind(id)
        .bind(document(key, attrs, tags))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM search_attrs WHERE bucket = $1 AND key = $2")
        .bind(bucket)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    for (kind, name, value, num) in attr_rows_of(attrs, tags) {
        sqlx::query(
            "INSERT INTO search_attrs (bucket, key, kind, name, value, num_value) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(bucket)
        .bind(key)
        .bind(kind)
        .bind(name)
        .bind(value)
        .bind(num)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Inserts the search rows of new objects, many per statement.
pub(super) async fn bulk_index(
    tx: &mut AnyConnection,
    recs: &[ObjectRecord],
) -> Result<(), MetaError> {
    let rows = values_per_insert(crate::DbKind::Sqlite) / 6;
    for chunk in recs.chunks(rows) {
        // RETURNING order is unspecified in SQLite: ids are matched back by key.
        let text = format!(
            "INSERT INTO search_docs (bucket, key) VALUES {} RETURNING id, bucket, key",
            placeholders(chunk.len(), 2, |f| plain_row(f, 2))
        );
        let mut q = sqlx::query(AssertSqlSafe(text));
        for rec in chunk {
            q = q.bind(rec.bucket.as_str()).bind(rec.key.as_str());
        }
        let mut ids = BTreeMap::new();
        for row in q.fetch_all(&mut *tx).await? {
            let (b, k): (String, String) = (row.try_get("bucket")?, row.try_get("key")?);
            ids.insert((b, k), row.try_get::<i64, _>("id")?);
        }
        let text = format!(
            "INSERT INTO search_fts (rowid, doc) VALUES {}",
            placeholders(chunk.len(), 2, |f| plain_row(f, 2))
        );
        let mut q = sqlx::query(AssertSqlSafe(text));
        for rec in chunk {
            let id = ids
                .get(&(rec.bucket.clone(), rec.key.clone()))
                .copied()
                .ok_or_else(|| MetaError::corrupt("search_docs row not returned"))?;
            q = q
                .bind(id)
                .bind(document(&rec.key, &rec.custom_attributes, &rec.tags));
        }
        q.execute(&mut *tx).await?;
        let attrs: Vec<(&ObjectRecord, _)> = chunk
            .iter()
            .flat_map(|rec| {
                attr_rows_of(&rec.custom_attributes, &rec.tags).map(move |row| (rec, row))
            })
            .collect();
        for part in attrs.chunks(rows) {
            let text = format!(
                "INSERT INTO search_attrs (bucket, key, kind, name, value, num_value) VALUES {}",
                placeholders(part.len(), 6, |f| plain_row(f, 6))
            );
            let mut q = sqlx::query(AssertSqlSafe(text));
            for (rec, (kind, name, value, num)) in part {
                q = q
                    .bind(rec.bucket.as_str())
                    .bind(rec.key.as_str())
                    .bind(*kind)
                    .bind(*name)
                    .bind(*value)
                    .bind(*num);
            }
            q.execute(&mut *tx).await?;
        }
    }
    Ok(())
}

pub(super) async fn unindex(
    tx: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<(), MetaError> {
    sqlx::query(
        "DELETE FROM search_fts WHERE rowid = \
         (SELECT id FROM search_docs WHERE bucket = $1 AND key = $2)",
    )
    .bind(bucket)
    .bind(key)
    .execute(&mut *tx)
    .await?;
    for table in ["search_docs", "search_attrs"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE bucket = $1 AND key = $2"
        )))
        .bind(bucket)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
