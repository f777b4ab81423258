//! SQLite: an FTS5 table (`search_fts`, rowid = `search_docs.id`, one column per field of the
//! document) for `q`, and an indexed side table `search_attrs` (one row per attribute or tag,
//! by `search_docs.id`) for `attr.*` and `tag.*` filters.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::sql::{Arg, Sql};
use super::text::{document, number};
use super::{AttrCond, AttrFilter};
use crate::bulk::{placeholders, plain_row, values_per_insert};
use crate::{MetaError, ObjectRecord};

pub(super) const COLLATE_C: &str = "";

/// With text, the FTS match drives (CROSS JOIN fixes SQLite's join order): otherwise SQLite
/// may start from an attribute's rows and probe the FTS index once per row, which costs far
/// more than reading the match once (300 ms instead of a few at 100k objects).
pub(super) fn from(text: bool) -> &'static str {
    if text {
        " FROM search_fts CROSS JOIN search_docs d ON d.id = search_fts.rowid \
         CROSS JOIN objects o ON o.bucket = d.bucket AND o.key = d.key \
         JOIN storage_elements e ON e.name = o.bucket"
    } else {
        " FROM objects o JOIN storage_elements e ON e.name = o.bucket \
         JOIN search_docs d ON d.bucket = o.bucket AND d.key = o.key"
    }
}

pub(super) fn text_match(p: &str) -> String {
    format!("search_fts MATCH {p}")
}

/// Whether the row's document matches `p` (an FTS5 expression), outside the statement's own
/// MATCH: SQLite evaluates the sub-select once and looks each row up in its result.
pub(super) fn matches(p: &str) -> String {
    format!("d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH {p})")
}

fn attr_rows(kind: &str, name: &str, sql: &mut Sql, cond: &str) -> String {
    let n = sql.text(name);
    format!(
        "d.id IN (SELECT doc_id FROM search_attrs \
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

/// Counts per value of one attribute over the rows of `source` (with their search row `id`).
pub(super) fn attr_facet(sql: &mut Sql, source: &str, name: &str, top: i64) -> String {
    let n = sql.text(name);
    format!(
        // CROSS JOIN keeps the matches as the outer loop (SQLite does not reorder it): one
        // primary-key lookup per match, instead of a pass over every value of the name.
        "SELECT a.value AS v, COUNT(*) AS n FROM {source} m \
         CROSS JOIN search_attrs a ON a.doc_id = m.id \
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
    let doc = document(key, attrs, tags);
    sqlx::query("INSERT INTO search_fts (rowid, name, path, rest) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(doc.name.join(" "))
        .bind(doc.path.join(" "))
        .bind(doc.rest.join(" "))
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM search_attrs WHERE doc_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for (kind, name, value, num) in attr_rows_of(attrs, tags) {
        sqlx::query(
            "INSERT INTO search_attrs (doc_id, kind, name, value, num_value) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
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
        let id_of = |rec: &ObjectRecord| {
            ids.get(&(rec.bucket.clone(), rec.key.clone()))
                .copied()
                .ok_or_else(|| MetaError::corrupt("search_docs row not returned"))
        };
        let text = format!(
            "INSERT INTO search_fts (rowid, name, path, rest) VALUES {}",
            placeholders(chunk.len(), 4, |f| plain_row(f, 4))
        );
        let mut q = sqlx::query(AssertSqlSafe(text));
        for rec in chunk {
            let doc = document(&rec.key, &rec.custom_attributes, &rec.tags);
            q = q
                .bind(id_of(rec)?)
                .bind(doc.name.join(" "))
                .bind(doc.path.join(" "))
                .bind(doc.rest.join(" "));
        }
        q.execute(&mut *tx).await?;
        let mut attrs = Vec::new();
        for rec in chunk {
            let id = id_of(rec)?;
            attrs.extend(attr_rows_of(&rec.custom_attributes, &rec.tags).map(|row| (id, row)));
        }
        for part in attrs.chunks(rows) {
            let text = format!(
                "INSERT INTO search_attrs (doc_id, kind, name, value, num_value) VALUES {}",
                placeholders(part.len(), 5, |f| plain_row(f, 5))
            );
            let mut q = sqlx::query(AssertSqlSafe(text));
            for (id, (kind, name, value, num)) in part {
                q = q.bind(*id).bind(*kind).bind(*name).bind(*value).bind(*num);
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
    let id: Option<i64> =
        sqlx::query_scalar("DELETE FROM search_docs WHERE bucket = $1 AND key = $2 RETURNING id")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(id) = id {
        for sql in [
            "DELETE FROM search_fts WHERE rowid = $1",
            "DELETE FROM search_attrs WHERE doc_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
    }
    Ok(())
}
