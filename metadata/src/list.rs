//! Listing from the index: each step is a range seek on the (bucket, key) primary key; keys
//! rolled up under a common prefix are skipped with one seek past the prefix, never read.

use crate::objects::{object_cols, object_from_row};
use crate::{MetaError, ObjectRecord, Store};

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    /// `None` or an empty delimiter both mean no grouping.
    pub delimiter: Option<String>,
    /// Exclusive lower bound (ListObjects v1 marker, v2 start-after or continuation point).
    pub after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    Object(Box<ObjectRecord>),
    CommonPrefix(String),
}

impl ListEntry {
    /// The position a following page resumes after.
    pub fn position(&self) -> &str {
        match self {
            ListEntry::Object(o) => &o.key,
            ListEntry::CommonPrefix(p) => p,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    pub truncated: bool,
}

impl ListPage {
    pub fn last_position(&self) -> Option<&str> {
        self.entries.last().map(ListEntry::position)
    }
}

/// The smallest string greater than every string that starts with `s`, if one exists.
pub fn prefix_successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match c as u32 {
            0xD7FF => Some('\u{E000}'),
            n => char::from_u32(n + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Where `key` rolls up under `delimiter`, if it does.
fn common_prefix<'a>(key: &'a str, prefix: &str, delimiter: Option<&str>) -> Option<&'a str> {
    let d = delimiter?;
    let rest = key.get(prefix.len()..)?;
    rest.find(d).map(|i| &key[..prefix.len() + i + d.len()])
}

enum Bound {
    /// key >= value
    From(String),
    /// key > value
    After(String),
}

impl Store {
    pub async fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, MetaError> {
        let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let upper = if q.prefix.is_empty() {
            None
        } else {
            prefix_successor(&q.prefix)
        };
        let mut bound = match &q.after {
            // A marker that is itself a rolled-up prefix resumes past everything under it.
            Some(a) if common_prefix(a, &q.prefix, delimiter) == Some(a.as_str()) => {
                match prefix_successor(a) {
                    Some(s) => Bound::From(s),
                    None => return Ok(ListPage::default()),
                }
            }
            Some(a) if a.as_str() >= q.prefix.as_str() => Bound::After(a.clone()),
            _ => Bound::From(q.prefix.clone()),
        };
        let mut page = ListPage::default();
        if q.max_keys == 0 {
            return Ok(page);
        }
        loop {
            let want = (q.max_keys - page.entries.len() + 1).min(1001);
            let limit = i64::try_from(want).unwrap_or(1001);
            let (op, value) = match &bound {
                Bound::From(v) => (">=", v.clone()),
                Bound::After(v) => (">", v.clone()),
            };
            let rows = match (&upper, op) {
                (Some(u), ">=") => sqlx::query(concat!("SELECT ", object_cols!(), " FROM objects WHERE bucket = $1 AND key >= $2 AND key < $3 ORDER BY key LIMIT $4"))
                    .bind(bucket).bind(value).bind(u.clone()).bind(limit).fetch_all(&self.pool).await?,
                (Some(u), _) => sqlx::query(concat!("SELECT ", object_cols!(), " FROM objects WHERE bucket = $1 AND key > $2 AND key < $3 ORDER BY key LIMIT $4"))
                    .bind(bucket).bind(value).bind(u.clone()).bind(limit).fetch_all(&self.pool).await?,
                (None, ">=") => sqlx::query(concat!("SELECT ", object_cols!(), " FROM objects WHERE bucket = $1 AND key >= $2 ORDER BY key LIMIT $3"))
                    .bind(bucket).bind(value).bind(limit).fetch_all(&self.pool).await?,
                (None, _) => sqlx::query(concat!("SELECT ", object_cols!(), " FROM objects WHERE bucket = $1 AND key > $2 ORDER BY key LIMIT $3"))
                    .bind(bucket).bind(value).bind(limit).fetch_all(&self.pool).await?,
            };
            let fetched = rows.len();
            let mut reseek = None;
            for row in &rows {
                let rec = object_from_row(row)?;
                if !rec.key.starts_with(&q.prefix) {
                    return Ok(page);
                }
                if page.entries.len() == q.max_keys {
                    page.truncated = true;
                    return Ok(page);
                }
                if let Some(cp) = common_prefix(&rec.key, &q.prefix, delimiter) {
                    let cp = cp.to_owned();
                    reseek = Some(prefix_successor(&cp));
                    // A marker inside a prefix means that prefix was already returned.
                    if q.after.as_deref().is_none_or(|a| cp.as_str() > a) {
                        page.entries.push(ListEntry::CommonPrefix(cp));
                    }
                    break;
                }
                bound = Bound::After(rec.key.clone());
                page.entries.push(ListEntry::Object(Box::new(rec)));
            }
            match reseek {
                Some(Some(next)) => bound = Bound::From(next),
                // Nothing sorts after this prefix: the listing is complete.
                Some(None) => return Ok(page),
                None if fetched < want => return Ok(page),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_skips_exactly_the_prefix() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("").as_deref(), None);
        assert_eq!(
            prefix_successor("a\u{10FFFF}").as_deref(),
            Some("b"),
            "max char carries into the previous one"
        );
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn common_prefix_rolls_up_after_the_prefix() {
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "", None), None);
        assert_eq!(common_prefix("x--y--z", "", Some("--")), Some("x--"));
    }
}
