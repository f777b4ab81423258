//! PostgreSQL: one `search_docs` row per object with the words as a `tsvector` (GIN, written
//! as a literal with each field's weight: see [`tsvector`]) for `q`, and attributes and tags as `JSONB` (GIN) for `attr.*` and
//! `tag.*` filters. Text comparisons use `COLLATE "C"` (byte order, as on SQLite).

use std::collections::BTreeMap;

use sqlx::{AnyConnection, AssertSqlSafe};

use super::parse::weight_letter;
use super::sql::{Arg, Sql};
use super::text::{Document, Field, document, number};
use super::{AttrCond, AttrFilter};
use crate::bulk::{placeholders, values_per_insert};
use crate::{MetaError, ObjectRecord};

pub(super) const COLLATE_C: &str = " COLLATE \"C\"";

pub(super) const FROM: &str = " FROM objects o JOIN storage_elements e ON e.name = o.bucket \
     JOIN search_docs d ON d.bucket = o.bucket AND d.key = o.key";

/// `p` is a `tsquery` literal (parse.rs): ArtStore cut the words, not the database's parser.
pub(super) fn text_match(p: &str) -> String {
    format!("d.doc @@ {p}::tsquery")
}

fn one(name: &str, value: &str) -> String {
    serde_json::json!({ name: value }).to_string()
}

pub(super) fn attr_cond(sql: &mut Sql, f: &AttrFilter) -> String {
    match &f.cond {
        AttrCond::Equals(values) => {
            let any: Vec<String> = values
                .iter()
                .map(|v| format!("d.attrs @> {}::jsonb", sql.text(one(&f.name, v))))
                .collect();
            format!("({})", any.join(" OR "))
        }
        AttrCond::Prefix(p) => {
            let n = sql.text(f.name.clone());
            format!("starts_with(d.attrs ->> {n}, {})", sql.text(p.clone()))
        }
        AttrCond::Gte(b) => range(sql, &f.name, b, ">="),
        AttrCond::Lte(b) => range(sql, &f.name, b, "<="),
        AttrCond::Exists(yes) => {
            let n = sql.text(f.name.clone());
            format!("{}(d.attrs ? {n})", if *yes { "" } else { "NOT " })
        }
    }
}

/// Numeric when both the bound and the stored value are numbers, else text (byte order).
fn range(sql: &mut Sql, name: &str, bound: &str, op: &str) -> String {
    let n = sql.text(name);
    let t = sql.text(bound);
    let text = format!("(d.attrs ->> {n}) COLLATE \"C\" {op} {t}");
    match number(bound) {
        Some(x) => {
            let x = sql.arg(Arg::Real(x));
            format!(
                "((d.attr_nums ->> {n})::float8 {op} {x} \
                 OR (NOT (d.attr_nums ? {n}) AND {text}))"
            )
        }
        None => text,
    }
}

pub(super) fn tag_cond(sql: &mut Sql, key: &str, value: &str) -> String {
    format!("d.tags @> {}::jsonb", sql.text(one(key, value)))
}

/// Counts per value of one attribute over the rows of `source` (with their `attrs`).
pub(super) fn attr_facet(sql: &mut Sql, source: &str, name: &str, top: i64) -> String {
    let n = sql.text(name);
    format!(
        "SELECT m.attrs ->> {n} AS v, COUNT(*) AS n FROM {source} m WHERE m.attrs ? {n} \
         GROUP BY m.attrs ->> {n} ORDER BY COUNT(*) DESC, (m.attrs ->> {n}) COLLATE \"C\" \
         LIMIT {top}"
    )
}

/// One object's `search_docs` values, the same for a single write and a bulk load.
struct DocRow {
    attrs: String,
    nums: String,
    tags: String,
    doc: String,
}

fn doc_row(
    key: &str,
    attrs: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> Result<DocRow, MetaError> {
    let nums: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), number(v)?.into())))
        .collect();
    Ok(DocRow {
        attrs: serde_json::to_string(attrs).map_err(MetaError::corrupt)?,
        nums: serde_json::Value::Object(nums).to_string(),
        tags: serde_json::to_string(tags).map_err(MetaError::corrupt)?,
        doc: tsvector(&document(key, attrs, tags)),
    })
}

/// PostgreSQL keeps at most this many positions per word, and none above this position.
const MAX_POSITIONS: usize = 255;
const MAX_POSITION: u32 = 16_383;

/// The document as a `tsvector` literal: every word at its position, weighted by its field
/// (A file name, B folders, D the rest) for relevance, with one free position between fields
/// so that a phrase never spans two (as on SQLite, where fields are FTS5 columns).
fn tsvector(d: &Document) -> String {
    let mut at: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut pos = 0u32;
    for f in Field::ALL {
        for w in d.field(f) {
            pos += 1;
            let p = at.entry(w.as_str()).or_default();
            if p.len() < MAX_POSITIONS && pos <= MAX_POSITION {
                let letter = if f == Field::Rest {
                    ""
                } else {
                    weight_letter(f)
                };
                p.push(format!("{pos}{letter}"));
            }
        }
        pos += 1;
    }
    at.iter()
        .map(|(w, p)| {
            if p.is_empty() {
                format!("'{w}'")
            } else {
                format!("'{w}':{}", p.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const DOC_COLS: usize = 8;
const DOC_INSERT: &str =
    "INSERT INTO search_docs (bucket, key, attrs, attr_nums, tags, doc, created_ms, size) VALUES";

/// `$f, $f+1` … as one `search_docs` row of `INSERT … VALUES`.
fn doc_values(f: usize) -> String {
    format!(
        "(${f}, ${}, ${}::jsonb, ${}::jsonb, ${}::jsonb, ${}::tsvector, ${}, ${})",
        f + 1,
        f + 2,
        f + 3,
        f + 4,
        f + 5,
        f + 6,
        f + 7
    )
}

/// Binds one object's search row as the next [`DOC_COLS`] values.
fn bind_doc<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    rec: &'q ObjectRecord,
    tags: &BTreeMap<String, String>,
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, MetaError> {
    let r = doc_row(&rec.key, &rec.custom_attributes, tags)?;
    Ok(q.bind(&rec.bucket)
        .bind(&rec.key)
        .bind(r.attrs)
        .bind(r.nums)
        .bind(r.tags)
        .bind(r.doc)
        .bind(rec.created_ms)
        .bind(rec.size))
}

/// Replaces the object's search row (inside the transaction that writes its objects row).
pub(super) async fn index(
    tx: &mut AnyConnection,
    rec: &ObjectRecord,
    tags: &BTreeMap<String, String>,
) -> Result<(), MetaError> {
    let q = sqlx::query(AssertSqlSafe(format!(
        "{DOC_INSERT} {} ON CONFLICT (bucket, key) DO UPDATE SET attrs = excluded.attrs, \
         attr_nums = excluded.attr_nums, tags = excluded.tags, doc = excluded.doc, \
         created_ms = excluded.created_ms, size = excluded.size",
        doc_values(1)
    )));
    bind_doc(q, rec, tags)?.execute(&mut *tx).await?;
    Ok(())
}

/// Inserts the search rows of new objects (with their own tags), many per statement.
pub(super) async fn bulk_index(
    tx: &mut AnyConnection,
    recs: &[ObjectRecord],
) -> Result<(), MetaError> {
    for chunk in recs.chunks(values_per_insert(crate::DbKind::Postgres) / DOC_COLS) {
        let text = format!(
            "{DOC_INSERT} {}",
            placeholders(chunk.len(), DOC_COLS, doc_values)
        );
        let mut q = sqlx::query(AssertSqlSafe(text));
        for rec in chunk {
            q = bind_doc(q, rec, &rec.tags)?;
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

pub(super) async fn unindex(
    tx: &mut AnyConnection,
    bucket: &str,
    key: &str,
) -> Result<(), MetaError> {
    sqlx::query("DELETE FROM search_docs WHERE bucket = $1 AND key = $2")
        .bind(bucket)
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
