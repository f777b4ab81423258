//! Search over the index (issue 9): one typed [`SearchQuery`], checked here, turned into SQL by
//! one dialect module per database (`sqlite.rs`, `postgres.rs`), with the same result sets.
//!
//! Schema (migration 0011). The search rows are side tables written by the transaction that
//! writes the objects row ([`Store::index_search`], [`Store::unindex_search`]), so a document is
//! findable the moment its write commits. ArtStore cuts the text into lower-cased words itself
//! (`text.rs`): both engines then index the same words, case-insensitively in every script and
//! whatever the database locale, with no stemming.
//! - PostgreSQL: `search_docs` holds a `tsvector` (`simple`, GIN) and the attributes and tags
//!   as `JSONB` (GIN). A side table rather than generated columns on `objects`: the document
//!   includes tags, which are not in the objects row, and listing keeps reading a narrow row.
//! - SQLite: a contentless FTS5 table keyed by `search_docs.id`, and `search_attrs`, one row
//!   per attribute or tag, indexed by (kind, name, value) and (kind, name, number).
//!   Migration 0012 copies the object's `created_ms` and `size` into the search row, with
//!   b-tree indexes (created_ms, bucket, key), (size, bucket, key) and (key, bucket): filters
//!   and sorts read the search row alone, and objects rows are read for the returned page only.
//! - SQLite: b-tree indexes on `objects` (bucket, created_ms, key) and (bucket, size, key) serve
//!   the sorts within a bucket; the primary key serves the key order.
//!
//! Pages use keyset pagination over (sort value, bucket, key), never OFFSET.
//!
//! Relevance is where the words match, the same on both databases (migration 0016): each group
//! of `q` (a word, phrase or prefix, or several joined by OR) adds 4 when it matches in the
//! file name (the key's last segment), else 2 in the folders of the key, else 1 (attribute
//! values and tags). A score depends on the document and the query only, never on other rows,
//! so a relevance cursor stays valid while objects are written; ties are broken by bucket and
//! key. With one group the score takes three values, and [`Store::search`] reads them level
//! by level, a page at a time (see `page_rows`).

mod cursor;
pub mod params;
mod parse;
mod postgres;
mod sql;
mod sqlite;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use sqlx::Row;

pub use cursor::CursorError;
pub use parse::{MAX_QUERY_CHARS, MAX_TERMS, QueryError};

use crate::db::{DbKind, WriteTx};
use crate::objects::{object_cols, object_from_row};
use crate::{MetaError, Mode, ObjectRecord, Store};
use cursor::Position;
use parse::TextQuery;
use sql::{Arg, Sql};
use text::Field;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// Values reported per facet.
pub const FACET_TOP: i64 = 20;
/// Most values in one list-valued filter (buckets, values of one attribute, facets).
pub const MAX_VALUES: usize = 100;
const MAX_NAME: usize = 128;
const MAX_VALUE: usize = 1024;

/// A search. Every filter that is set must hold (AND).
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Full text, in the syntax of [`parse`](self) (see `parse.rs`).
    pub q: Option<String>,
    /// Any of these buckets (empty = all).
    pub buckets: Vec<String>,
    pub prefix: Option<String>,
    /// Exact, or `type/*` for every subtype.
    pub content_type: Option<String>,
    /// Owner account id or name.
    pub owner: Option<String>,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    /// Inclusive bounds, ms since the Unix epoch.
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub attrs: Vec<AttrFilter>,
    pub tags: Vec<TagFilter>,
    pub mode: Option<Mode>,
    /// Default: relevance with `q`, else key ascending.
    pub sort: Option<Sort>,
    /// 1–1000, default 100.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page of the same search.
    pub cursor: Option<String>,
    pub facets: Vec<FacetField>,
    /// Only these buckets, whatever `buckets` asks: what the caller may read, computed by the
    /// caller from its access rules. `None` = no restriction.
    pub allowed_buckets: Option<Vec<String>>,
    /// Buckets (among the allowed) where whether the caller may read an object depends on the
    /// object (a bucket policy naming keys or tags): their matches are passed one by one to the
    /// `visible` check of [`Store::search_visible`], and only those it accepts are returned or
    /// counted.
    pub checked_buckets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrFilter {
    pub name: String,
    pub cond: AttrCond,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrCond {
    /// Equal to one of the values.
    Equals(Vec<String>),
    Prefix(String),
    /// Numeric when both sides are decimal numbers, else text in byte order (ISO dates work).
    Gte(String),
    Lte(String),
    Exists(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFilter {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Relevance,
    Key,
    Created,
    Size,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub desc: bool,
}

impl Sort {
    fn token(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            SortField::Relevance => "relevance",
            SortField::Key => "key",
            SortField::Created => "created",
            SortField::Size => "size",
        };
        write!(f, "{field}:{}", if self.desc { "desc" } else { "asc" })
    }
}

/// `field` or `field:asc|desc`; relevance defaults to descending, the others to ascending.
impl FromStr for Sort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (field, dir) = s.split_once(':').unwrap_or((s, ""));
        let field = match field {
            "relevance" => SortField::Relevance,
            "key" => SortField::Key,
            "created" => SortField::Created,
            "size" => SortField::Size,
            _ => return Err("expected relevance, key, created or size".into()),
        };
        let desc = match dir {
            "" => field == SortField::Relevance,
            "asc" => false,
            "desc" => true,
            _ => return Err("direction must be asc or desc".into()),
        };
        Ok(Sort { field, desc })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FacetField {
    ContentType,
    Bucket,
    Attr(String),
}

impl FromStr for FacetField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "content_type" => Ok(FacetField::ContentType),
            "bucket" => Ok(FacetField::Bucket),
            _ => match s.strip_prefix("attr.") {
                Some(name) if valid_name(name) => Ok(FacetField::Attr(name.to_owned())),
                _ => Err("expected content_type, bucket or attr.<name>".into()),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub object: ObjectRecord,
    /// The mode of the object's storage element.
    pub mode: Mode,
    /// With `q`: higher is more relevant.
    pub score: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetValue {
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facet {
    pub field: FacetField,
    /// Most frequent first (then by value), at most [`FACET_TOP`].
    pub values: Vec<FacetValue>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    pub next_cursor: Option<String>,
    pub facets: Vec<Facet>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("q {0}")]
    Query(#[from] QueryError),
    #[error("cursor {0}")]
    Cursor(#[from] CursorError),
    #[error("{param}: {reason}")]
    Invalid { param: String, reason: String },
    /// The index failed: not the caller's fault, and its text is not for the caller.
    #[error(transparent)]
    Index(#[from] MetaError),
}

impl SearchError {
    /// The request parameter at fault, for the client's error; `None` for index failures.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            SearchError::Query(_) => Some("q"),
            SearchError::Cursor(_) => Some("cursor"),
            SearchError::Invalid { param, .. } => Some(param),
            SearchError::Index(_) => None,
        }
    }
}

fn invalid(param: impl Into<String>, reason: impl Into<String>) -> SearchError {
    SearchError::Invalid {
        param: param.into(),
        reason: reason.into(),
    }
}

/// Attribute names as S3 user metadata allows them, and as a parameter name can carry.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_value(param: &str, v: &str) -> Result<(), SearchError> {
    if v.len() > MAX_VALUE {
        return Err(invalid(param, format!("longer than {MAX_VALUE} bytes")));
    }
    if v.contains('\0') {
        return Err(invalid(param, "contains a NUL character"));
    }
    Ok(())
}

/// A query that passed every check.
struct Valid<'a> {
    q: &'a SearchQuery,
    text: Option<TextQuery>,
    /// `type/` of a `type/*` content-type filter.
    content_prefix: Option<String>,
    sort: Sort,
    limit: u32,
    after: Option<Position>,
}

impl<'a> Valid<'a> {
    fn new(q: &'a SearchQuery) -> Result<Self, SearchError> {
        let text = match q.q.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(parse::parse(s)?),
        };
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid("limit", format!("must be 1 to {MAX_LIMIT}")));
        }
        let sort = q.sort.unwrap_or(Sort {
            field: if text.is_some() {
                SortField::Relevance
            } else {
                SortField::Key
            },
            desc: text.is_some(),
        });
        if sort.field == SortField::Relevance && text.is_none() {
            return Err(invalid("sort", "relevance needs q"));
        }
        for (param, n) in [
            ("bucket", q.buckets.len()),
            ("facets", q.facets.len()),
            ("attr", q.attrs.len()),
            ("tag", q.tags.len()),
        ] {
            if n > MAX_VALUES {
                return Err(invalid(param, format!("more than {MAX_VALUES} values")));
            }
        }
        for b in &q.buckets {
            check_value("bucket", b)?;
        }
        for f in &q.facets {
            if let FacetField::Attr(name) = f
                && !valid_name(name)
            {
                return Err(invalid(
                    "facets",
                    "expected content_type, bucket or attr.<name>",
                ));
            }
        }
        for (param, v) in [
            ("prefix", &q.prefix),
            ("owner", &q.owner),
            ("content_type", &q.content_type),
        ] {
            if let Some(v) = v {
                check_value(param, v)?;
            }
        }
        let content_prefix = match q.content_type.as_deref() {
            Some(ct) if ct.contains('*') => match ct.strip_suffix("/*") {
                Some(ty) if !ty.is_empty() && !ty.contains(['*', '/']) => Some(format!("{ty}/")),
                _ => return Err(invalid("content_type", "expected type/subtype or type/*")),
            },
            _ => None,
        };
        for f in &q.attrs {
            let param = format!("attr.{}", f.name.chars().take(MAX_NAME).collect::<String>());
            if !valid_name(&f.name) {
                return Err(invalid(
                    param,
                    "attribute names are letters, digits, '-', '_' and '.'",
                ));
            }
            match &f.cond {
                AttrCond::Equals(vs) if vs.is_empty() => {
                    return Err(invalid(param, "needs a value"));
                }
                AttrCond::Equals(vs) if vs.len() > MAX_VALUES => {
                    return Err(invalid(param, format!("more than {MAX_VALUES} values")));
                }
                AttrCond::Equals(vs) => vs.iter().try_for_each(|v| check_value(&param, v))?,
                AttrCond::Prefix(v) | AttrCond::Gte(v) | AttrCond::Lte(v) => {
                    check_value(&param, v)?
                }
                AttrCond::Exists(_) => {}
            }
        }
        for t in &q.tags {
            let param = format!("tag.{}", t.key.chars().take(MAX_NAME).collect::<String>());
            if t.key.is_empty() || t.key.len() > MAX_NAME || t.key.chars().any(char::is_control) {
                return Err(invalid(param, "tag keys are 1 to 128 printable characters"));
            }
            check_value(&param, &t.value)?;
        }
        let after = q
            .cursor
            .as_deref()
            .map(|c| cursor::decode(c, sort))
            .transpose()?;
        Ok(Valid {
            q,
            text,
            content_prefix,
            sort,
            limit,
            after,
        })
    }
}

/// The SQL of one database, behind one set of names.
#[derive(Clone, Copy)]
struct Dialect(DbKind);

impl Dialect {
    /// `FROM …` of a search: objects `o`, their elements `e`, search rows `d`.
    fn from(self, text: bool) -> &'static str {
        match self.0 {
            DbKind::Sqlite => sqlite::from(text),
            DbKind::Postgres => postgres::FROM,
        }
    }
    fn text_match(self, p: &str) -> String {
        match self.0 {
            DbKind::Sqlite => sqlite::text_match(p),
            DbKind::Postgres => postgres::text_match(p),
        }
    }
    /// The engine's text of the whole query, or of a one-group query at one level.
    fn text_arg(self, t: &TextQuery, level: Option<Field>) -> String {
        match (self.0, level) {
            (DbKind::Sqlite, None) => t.to_fts5(),
            (DbKind::Sqlite, Some(l)) => t.fts5_level(l),
            (DbKind::Postgres, None) => t.to_tsquery(),
            (DbKind::Postgres, Some(l)) => t.tsquery_level(l),
        }
    }
    /// Whether group `g` of `t` matches the row's document in `field`.
    fn group_in(self, sql: &mut Sql, t: &TextQuery, g: usize, field: Field) -> String {
        match self.0 {
            DbKind::Sqlite => sqlite::matches(&sql.text(t.fts5_group_in(g, field))),
            DbKind::Postgres => postgres::text_match(&sql.text(t.tsquery_group_in(g, field))),
        }
    }
    /// The relevance score of a row that matches `t`: for each group, the weight of the best
    /// field it matches in (see [`Field`]), added up.
    fn score(self, sql: &mut Sql, t: &TextQuery) -> String {
        let groups: Vec<String> = (0..t.all.len())
            .map(|g| {
                let name = self.group_in(sql, t, g, Field::Name);
                let path = self.group_in(sql, t, g, Field::Path);
                format!(
                    "CASE WHEN {name} THEN {} WHEN {path} THEN {} ELSE {} END",
                    Field::Name.weight(),
                    Field::Path.weight(),
                    Field::Rest.weight()
                )
            })
            .collect();
        format!("CAST({} AS DOUBLE PRECISION)", groups.join(" + "))
    }
    /// Columns the facet statements need besides bucket, key and content type.
    fn facet_cols(self) -> &'static str {
        match self.0 {
            DbKind::Sqlite => ", d.id AS id",
            DbKind::Postgres => ", d.attrs AS attrs",
        }
    }
    fn attr_cond(self, sql: &mut Sql, f: &AttrFilter) -> String {
        match self.0 {
            DbKind::Sqlite => sqlite::attr_cond(sql, f),
            DbKind::Postgres => postgres::attr_cond(sql, f),
        }
    }
    fn tag_cond(self, sql: &mut Sql, t: &TagFilter) -> String {
        match self.0 {
            DbKind::Sqlite => sqlite::tag_cond(sql, &t.key, &t.value),
            DbKind::Postgres => postgres::tag_cond(sql, &t.key, &t.value),
        }
    }
    /// Counts per value of one attribute over the rows of `source` (a CTE of the matches).
    fn attr_facet(self, sql: &mut Sql, source: &str, name: &str, top: i64) -> String {
        match self.0 {
            DbKind::Sqlite => sqlite::attr_facet(sql, source, name, top),
            DbKind::Postgres => postgres::attr_facet(sql, source, name, top),
        }
    }
    /// The table whose bucket, key, created_ms and size columns the filters and sorts read:
    /// on PostgreSQL the search row carries copies (migration 0012), so a page is sorted and
    /// cut before any objects row is read.
    fn sort_table(self) -> &'static str {
        match self.0 {
            DbKind::Sqlite => "o",
            DbKind::Postgres => "d",
        }
    }
    fn collate_c(self) -> &'static str {
        match self.0 {
            DbKind::Sqlite => sqlite::COLLATE_C,
            DbKind::Postgres => postgres::COLLATE_C,
        }
    }
}

/// Which of the matched buckets a statement reads: facets count the checked buckets apart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    Checked,
    Unchecked,
}

/// What a statement over the matches says of relevance.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rank {
    /// Nothing: the statement counts or lists, in no relevance order.
    None,
    /// Each row's score, computed from the row's document.
    Score,
    /// Only the rows whose one group matches best in this field, all with its weight.
    Level(Field),
}

/// Appends `SELECT <select> FROM … WHERE <every filter>` to `sql`; returns the score
/// expression when there is a `q` and `rank` asks for it.
fn matched(
    d: Dialect,
    c: &Valid<'_>,
    sql: &mut Sql,
    select: &str,
    part: Part,
    rank: Rank,
) -> Option<String> {
    let q = c.q;
    let level = match rank {
        Rank::Level(l) => Some(l),
        _ => None,
    };
    let text = c.text.as_ref().map(|t| sql.text(d.text_arg(t, level)));
    let score = match (&c.text, rank) {
        (Some(t), Rank::Score) => Some(d.score(sql, t)),
        (Some(_), Rank::Level(l)) => Some(format!("CAST({} AS DOUBLE PRECISION)", l.weight())),
        _ => None,
    };
    sql.push("SELECT ").push(select);
    if let Some(s) = &score {
        sql.push(", ").push(s).push(" AS search_score");
    }
    sql.push(d.from(text.is_some())).push(" WHERE 1 = 1");
    if let Some(p) = &text {
        and(sql, d.text_match(p));
    }
    let t = d.sort_table();
    if !q.buckets.is_empty() {
        let l = sql.list(&q.buckets);
        and(sql, format!("{t}.bucket IN ({l})"));
    }
    if let Some(allowed) = &q.allowed_buckets {
        let l = sql.list(allowed);
        and(sql, format!("{t}.bucket IN ({l})"));
    }
    if !q.checked_buckets.is_empty() && part != Part::All {
        let l = sql.list(&q.checked_buckets);
        let op = if part == Part::Checked {
            "IN"
        } else {
            "NOT IN"
        };
        and(sql, format!("{t}.bucket {op} ({l})"));
    }
    if let Some(p) = q.prefix.as_deref().filter(|p| !p.is_empty()) {
        let from = sql.text(p);
        and(sql, format!("{t}.key >= {from}"));
        if let Some(s) = crate::list::prefix_successor(p) {
            let to = sql.text(s);
            and(sql, format!("{t}.key < {to}"));
        }
    }
    match (&c.content_prefix, &q.content_type) {
        (Some(p), _) => {
            let len = sql.arg(Arg::Int(p.chars().count() as i64));
            let p = sql.text(p.clone());
            and(
                sql,
                format!("substr(o.content_type, 1, CAST({len} AS INTEGER)) = {p}"),
            );
        }
        (None, Some(ct)) => {
            let ct = sql.text(ct.clone());
            and(sql, format!("o.content_type = {ct}"));
        }
        (None, None) => {}
    }
    if let Some(owner) = &q.owner {
        let p = sql.text(owner.clone());
        and(sql, format!("(o.owner_id = {p} OR o.owner_name = {p})"));
    }
    for (bound, col, op) in [
        (q.size_min, "size", ">="),
        (q.size_max, "size", "<="),
        (q.created_from, "created_ms", ">="),
        (q.created_to, "created_ms", "<="),
    ] {
        if let Some(b) = bound {
            let p = sql.arg(Arg::Int(b));
            and(sql, format!("{t}.{col} {op} {p}"));
        }
    }
    if let Some(mode) = q.mode {
        let p = sql.text(mode.as_str());
        and(sql, format!("e.mode = {p}"));
    }
    for f in &q.attrs {
        let cond = d.attr_cond(sql, f);
        and(sql, cond);
    }
    for t in &q.tags {
        let cond = d.tag_cond(sql, t);
        and(sql, cond);
    }
    score
}

fn and(sql: &mut Sql, cond: String) {
    sql.push(" AND ").push(&cond);
}

/// Where `hit` stands in the sort's order, for a cursor.
fn position(c: &Valid<'_>, hit: &SearchHit) -> Position {
    Position {
        sort: c.sort.token(),
        int: match c.sort.field {
            SortField::Created => Some(hit.object.created_ms),
            SortField::Size => Some(hit.object.size),
            _ => None,
        },
        real: hit.score.filter(|_| c.sort.field == SortField::Relevance),
        bucket: hit.object.bucket.clone(),
        key: hit.object.key.clone(),
    }
}

/// The sort's columns, most significant first (bucket and key break ties).
fn order_exprs(d: Dialect, sort: Sort, score: Option<&str>) -> Vec<String> {
    let t = d.sort_table();
    let (bucket, key) = (format!("{t}.bucket"), format!("{t}.key"));
    let first = match sort.field {
        SortField::Key => return vec![key, bucket],
        SortField::Created => format!("{t}.created_ms"),
        SortField::Size => format!("{t}.size"),
        SortField::Relevance => score.unwrap_or("0").to_owned(),
    };
    vec![first, bucket, key]
}

impl Store {
    /// Runs a search: one page of matches in the requested order, and the facets asked for.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        self.search_visible(query, &|_| true).await
    }

    /// As [`Store::search`], returning and counting only the matches in
    /// `query.checked_buckets` that `visible` accepts (every match elsewhere is visible).
    /// A page that loses rows to the check is filled from the rows after them, so a page is
    /// short only at the end.
    pub async fn search_visible(
        &self,
        query: &SearchQuery,
        visible: &(dyn Fn(&ObjectRecord) -> bool + Send + Sync),
    ) -> Result<SearchPage, SearchError> {
        let c = Valid::new(query)?;
        if query.allowed_buckets.as_ref().is_some_and(Vec::is_empty) {
            let facets = query
                .facets
                .iter()
                .map(|f| Facet {
                    field: f.clone(),
                    values: Vec::new(),
                })
                .collect();
            return Ok(SearchPage {
                facets,
                ..SearchPage::default()
            });
        }
        let d = Dialect(self.kind());
        let want = c.limit as usize;
        let mut items: Vec<SearchHit> = Vec::with_capacity(want.min(64));
        let mut after = c.after.clone();
        let mut more = false;
        loop {
            let (rows, full) = self.page_rows(d, &c, after.as_ref()).await?;
            after = rows.last().map(|h| position(&c, h));
            for hit in rows {
                let shown =
                    !query.checked_buckets.contains(&hit.object.bucket) || visible(&hit.object);
                if !shown {
                    continue;
                }
                if items.len() == want {
                    more = true;
                    break;
                }
                items.push(hit);
            }
            if more || !full {
                break;
            }
        }
        let next_cursor = match items.last() {
            Some(last) if more => Some(cursor::encode(&position(&c, last))),
            _ => None,
        };
        let facets = self.facets(d, &c, visible).await?;
        Ok(SearchPage {
            items,
            next_cursor,
            facets,
        })
    }

    /// The next `limit + 1` matches after `after`, in the sort's order, and whether there
    /// were that many (more may follow).
    ///
    /// A relevance sort of a one-group `q` reads the levels one after the other, best first:
    /// every row of a level has the same score, so each level is a plain (bucket, key) order
    /// that the database reads from an index and stops after a page, instead of scoring and
    /// sorting every match. Other relevance sorts score every match.
    async fn page_rows(
        &self,
        d: Dialect,
        c: &Valid<'_>,
        after: Option<&Position>,
    ) -> Result<(Vec<SearchHit>, bool), SearchError> {
        let fetch = c.limit as usize + 1;
        let one_group = c.text.as_ref().is_some_and(|t| t.all.len() == 1);
        if c.sort.field != SortField::Relevance || !one_group {
            let hits = self.rows(d, c, after, Rank::Score, fetch).await?;
            let full = hits.len() == fetch;
            return Ok((hits, full));
        }
        let mut levels = Field::ALL.to_vec();
        if !c.sort.desc {
            levels.reverse();
        }
        let mut hits = Vec::with_capacity(fetch.min(64));
        for level in levels {
            let w = level.weight();
            let bound = match after {
                Some(p) => {
                    let at = p.real.unwrap_or_default();
                    // Levels before the cursor's are done; the cursor's continues after it.
                    if (c.sort.desc && w > at) || (!c.sort.desc && w < at) {
                        continue;
                    }
                    (w == at).then_some(p)
                }
                None => None,
            };
            let rows = self
                .rows(d, c, bound, Rank::Level(level), fetch - hits.len())
                .await?;
            hits.extend(rows);
            if hits.len() == fetch {
                break;
            }
        }
        let full = hits.len() == fetch;
        Ok((hits, full))
    }

    /// At most `fetch` matches after `after` in the sort's order; with [`Rank::Level`] only
    /// the level's, in (bucket, key) order.
    async fn rows(
        &self,
        d: Dialect,
        c: &Valid<'_>,
        after: Option<&Position>,
        rank: Rank,
        fetch: usize,
    ) -> Result<Vec<SearchHit>, SearchError> {
        let mut sql = Sql::default();
        let select = format!(
            "{}, e.mode AS search_mode",
            object_cols!()
                .split(", ")
                .map(|col| format!("o.{col}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let score = matched(d, c, &mut sql, &select, Part::All, rank);
        let level = matches!(rank, Rank::Level(_));
        let t = d.sort_table();
        let exprs = if level {
            vec![format!("{t}.bucket"), format!("{t}.key")]
        } else {
            order_exprs(d, c.sort, score.as_deref())
        };
        if let Some(p) = after {
            let mut vals = Vec::new();
            match c.sort.field {
                _ if level => {}
                SortField::Key => {}
                SortField::Created | SortField::Size => {
                    vals.push(sql.arg(Arg::Int(p.int.unwrap_or_default())))
                }
                SortField::Relevance => vals.push(sql.arg(Arg::Real(p.real.unwrap_or_default()))),
            }
            let (b, k) = (sql.text(p.bucket.clone()), sql.text(p.key.clone()));
            if c.sort.field == SortField::Key {
                vals.extend([k, b]);
            } else {
                vals.extend([b, k]);
            }
            let op = if c.sort.desc { "<" } else { ">" };
            sql.push(&format!(
                " AND ({}) {op} ({})",
                exprs.join(", "),
                vals.join(", ")
            ));
            // The same bound on the objects row when the sort reads the search row: the join's
            // equality does not carry an inequality across, and without it PostgreSQL may
            // merge-join against objects read from the start of the bucket.
            if d.sort_table() != "o" {
                if c.sort.field == SortField::Key {
                    sql.push(&format!(
                        " AND (o.key, o.bucket) {op} ({})",
                        vals.join(", ")
                    ));
                } else if level {
                    sql.push(&format!(
                        " AND (o.bucket, o.key) {op} ({})",
                        vals.join(", ")
                    ));
                }
            }
        }
        let dir = if c.sort.desc { " DESC" } else { " ASC" };
        let order: Vec<String> = exprs.iter().map(|e| format!("{e}{dir}")).collect();
        sql.push(&format!(" ORDER BY {} LIMIT {fetch}", order.join(", ")));
        let rows = sql
            .query()
            .fetch_all(&self.pool)
            .await
            .map_err(MetaError::from)?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in &rows {
            let mode: String = row.try_get("search_mode").map_err(MetaError::from)?;
            let score = match score {
                Some(_) => Some(
                    row.try_get::<f64, _>("search_score")
                        .map_err(MetaError::from)?,
                ),
                None => None,
            };
            hits.push(SearchHit {
                object: object_from_row(row)?,
                mode: mode.parse().map_err(MetaError::corrupt)?,
                score,
            });
        }
        Ok(hits)
    }

    /// Counts per value over the whole match, for every facet asked. The checked buckets'
    /// matches are read and counted here, one batch at a time, so only visible objects count.
    async fn facets(
        &self,
        d: Dialect,
        c: &Valid<'_>,
        visible: &(dyn Fn(&ObjectRecord) -> bool + Send + Sync),
    ) -> Result<Vec<Facet>, SearchError> {
        let fields = &c.q.facets;
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let checked = !c.q.checked_buckets.is_empty();
        let part = if checked { Part::Unchecked } else { Part::All };
        let mut all = self.facet_sql(d, c, part, !checked).await?;
        let mut out = Vec::with_capacity(fields.len());
        for (field, counts) in fields.iter().zip(all.iter_mut()) {
            if checked {
                self.count_checked(d, c, field, visible, counts).await?;
            }
            let mut values: Vec<FacetValue> = std::mem::take(counts)
                .into_iter()
                .map(|(value, count)| FacetValue { value, count })
                .collect();
            // Byte order breaks ties, as `COLLATE "C"` does in SQL.
            values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            values.truncate(FACET_TOP as usize);
            out.push(Facet {
                field: field.clone(),
                values,
            });
        }
        Ok(out)
    }

    /// Every facet counted by the database over `part` of the match, in one statement that
    /// finds the matches once; the top values only when `top` (else every value, to be added
    /// to). One map per facet, in the order asked.
    async fn facet_sql(
        &self,
        d: Dialect,
        c: &Valid<'_>,
        part: Part,
        top: bool,
    ) -> Result<Vec<BTreeMap<String, i64>>, SearchError> {
        let fields = &c.q.facets;
        let mut sql = Sql::default();
        sql.push("WITH m AS MATERIALIZED (");
        matched(
            d,
            c,
            &mut sql,
            &format!("o.bucket AS b, o.content_type AS ct{}", d.facet_cols()),
            part,
            Rank::None,
        );
        sql.push(")");
        let limit = if top { FACET_TOP } else { i64::MAX };
        let mut parts = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            let one = match field {
                FacetField::ContentType | FacetField::Bucket => {
                    let col = if *field == FacetField::Bucket {
                        "b"
                    } else {
                        "ct"
                    };
                    format!(
                        "SELECT m.{col} AS v, COUNT(*) AS n FROM m GROUP BY m.{col} \
                         ORDER BY COUNT(*) DESC, m.{col}{} LIMIT {limit}",
                        d.collate_c()
                    )
                }
                FacetField::Attr(name) => d.attr_facet(&mut sql, "m", name, limit),
            };
            parts.push(format!(
                "SELECT CAST({i} AS BIGINT) AS f, x{i}.v AS v, x{i}.n AS n FROM ({one}) x{i}"
            ));
        }
        sql.push(" ").push(&parts.join(" UNION ALL "));
        let rows = sql
            .query()
            .fetch_all(&self.pool)
            .await
            .map_err(MetaError::from)?;
        let mut out = vec![BTreeMap::new(); fields.len()];
        for r in &rows {
            let (f, v, n): (i64, String, i64) =
                (|| Ok::<_, sqlx::Error>((r.try_get("f")?, r.try_get("v")?, r.try_get("n")?)))()
                    .map_err(MetaError::from)?;
            if let Some(m) = usize::try_from(f).ok().and_then(|f| out.get_mut(f)) {
                m.insert(v, n);
            }
        }
        Ok(out)
    }

    /// Adds the visible matches of the checked buckets to `counts`, reading them in key order
    /// a batch at a time.
    async fn count_checked(
        &self,
        d: Dialect,
        c: &Valid<'_>,
        field: &FacetField,
        visible: &(dyn Fn(&ObjectRecord) -> bool + Send + Sync),
        counts: &mut BTreeMap<String, i64>,
    ) -> Result<(), SearchError> {
        const BATCH: usize = 1000;
        let mut after: Option<(String, String)> = None;
        loop {
            let mut sql = Sql::default();
            let select = object_cols!()
                .split(", ")
                .map(|col| format!("o.{col}"))
                .collect::<Vec<_>>()
                .join(", ");
            matched(d, c, &mut sql, &select, Part::Checked, Rank::None);
            if let Some((b, k)) = &after {
                let (b, k) = (sql.text(b.clone()), sql.text(k.clone()));
                sql.push(&format!(" AND (o.bucket, o.key) > ({b}, {k})"));
            }
            sql.push(&format!(" ORDER BY o.bucket, o.key LIMIT {BATCH}"));
            let rows = sql
                .query()
                .fetch_all(&self.pool)
                .await
                .map_err(MetaError::from)?;
            for row in &rows {
                let rec = object_from_row(row)?;
                if visible(&rec) {
                    let value = match field {
                        FacetField::Bucket => Some(rec.bucket.clone()),
                        FacetField::ContentType => Some(rec.content_type.clone()),
                        FacetField::Attr(name) => rec.custom_attributes.get(name).cloned(),
                    };
                    if let Some(v) = value {
                        *counts.entry(v).or_default() += 1;
                    }
                }
                after = Some((rec.bucket, rec.key));
            }
            if rows.len() < BATCH {
                return Ok(());
            }
        }
    }

    /// Writes the object's search rows in the transaction that writes its objects row.
    /// `tags` are separate because the objects row does not carry tags yet.
    pub(crate) async fn index_search(
        &self,
        tx: &mut WriteTx,
        rec: &ObjectRecord,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), MetaError> {
        // Benchmark-only build: measures what keeping search current costs a write.
        if cfg!(feature = "bench-no-search-writes") {
            return Ok(());
        }
        match self.kind() {
            DbKind::Sqlite => {
                let (b, k, a) = (&rec.bucket, &rec.key, &rec.custom_attributes);
                sqlite::index(tx, b, k, a, tags).await
            }
            DbKind::Postgres => postgres::index(tx, rec, tags).await,
        }
    }

    /// Writes the search rows of new objects (their own tags), many rows per statement: the
    /// same rows [`Store::index_search`] writes, for [`Store::bulk_load`].
    pub(crate) async fn bulk_index_search(
        &self,
        tx: &mut WriteTx,
        recs: &[ObjectRecord],
    ) -> Result<(), MetaError> {
        match self.kind() {
            DbKind::Sqlite => sqlite::bulk_index(tx, recs).await,
            DbKind::Postgres => postgres::bulk_index(tx, recs).await,
        }
    }

    /// Removes the object's search rows in the transaction that deletes its objects row.
    pub(crate) async fn unindex_search(
        &self,
        tx: &mut WriteTx,
        bucket: &str,
        key: &str,
    ) -> Result<(), MetaError> {
        if cfg!(feature = "bench-no-search-writes") {
            return Ok(());
        }
        match self.kind() {
            DbKind::Sqlite => sqlite::unindex(tx, bucket, key).await,
            DbKind::Postgres => postgres::unindex(tx, bucket, key).await,
        }
    }

    /// Rebuilds every search row from the objects rows (after `index rebuild` has made those
    /// match the sidecars). The wipe and the pending mark commit together, so an interrupted
    /// rebuild is finished by the next `migrate`.
    pub async fn reindex_search(&self) -> Result<(), MetaError> {
        let wipe: &[&str] = match self.kind() {
            DbKind::Sqlite => &[
                "INSERT INTO search_fts (search_fts) VALUES ('delete-all')",
                "DELETE FROM search_docs",
                "DELETE FROM search_attrs",
            ],
            DbKind::Postgres => &["DELETE FROM search_docs"],
        };
        let mut tx = self.begin_write().await?;
        for sql in wipe {
            sqlx::query(*sql).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('search_backfill', 'pending') \
             ON CONFLICT (name) DO NOTHING",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.backfill_search().await
    }

    /// Indexes the objects that existed before migration 0011, once (the migration leaves a
    /// `search_backfill` setting for it). Batches lock their rows, so a concurrent write to
    /// one of them waits and then indexes its own, newer state.
    pub(crate) async fn backfill_search(&self) -> Result<(), MetaError> {
        const BATCH: i64 = 500;
        let pending: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'search_backfill'")
                .fetch_optional(&self.pool)
                .await?;
        if pending.is_none() {
            return Ok(());
        }
        let lock = if self.kind() == DbKind::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let mut after: Option<(String, String)> = None;
        let mut total = 0usize;
        loop {
            let mut tx = self.begin_write().await?;
            let mut sql = Sql::default();
            sql.push(concat!("SELECT ", object_cols!(), " FROM objects"));
            if let Some((b, k)) = &after {
                let (b, k) = (sql.text(b.clone()), sql.text(k.clone()));
                sql.push(&format!(" WHERE (bucket, key) > ({b}, {k})"));
            }
            sql.push(&format!(" ORDER BY bucket, key LIMIT {BATCH}{lock}"));
            let rows = sql.query().fetch_all(&mut *tx).await?;
            for row in &rows {
                let rec = object_from_row(row)?;
                self.index_search(&mut tx, &rec, &rec.tags).await?;
                after = Some((rec.bucket, rec.key));
            }
            tx.commit().await?;
            total += rows.len();
            if (rows.len() as i64) < BATCH {
                break;
            }
        }
        sqlx::query("DELETE FROM settings WHERE name = 'search_backfill'")
            .execute(&self.pool)
            .await?;
        if total > 0 {
            tracing::info!(objects = total, "search index filled for existing objects");
        }
        Ok(())
    }
}
