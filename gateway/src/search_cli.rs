//! `artstore search`: the search of the admin API, run by the local operator on the same
//! database (admin reach: no access filtering). A table on a terminal, the API's JSON otherwise.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use artstore_metadata::search_params::attr_filter;
use artstore_metadata::{SearchHit, SearchPage, SearchQuery, Sort, TagFilter, now_ms};

use crate::bootstrap;
use crate::config::{ServeArgs, Settings};

/// Attributes shown per row of the table.
const TABLE_ATTRS: usize = 3;
/// Widest key shown in the table (longer keys are cut with `…`).
const KEY_WIDTH: usize = 60;

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Full text: words (all must match), "a phrase", word*, -word, a OR b.
    pub query: Option<String>,
    /// Only this bucket; repeat for several (any of them).
    #[arg(long = "bucket")]
    pub buckets: Vec<String>,
    /// NAME=VALUE (exact; repeat a name for any of several values), or NAME.prefix=,
    /// NAME.gte=, NAME.lte=, NAME.exists=true|false.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    pub attrs: Vec<String>,
    /// KEY=VALUE: the object has this tag.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Key prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Exact, or type/*.
    #[arg(long)]
    pub content_type: Option<String>,
    /// relevance, key, created or size, optionally :asc or :desc.
    #[arg(long)]
    pub sort: Option<String>,
    /// 1 to 1000 (default 100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// The next-page cursor a previous search printed.
    #[arg(long)]
    pub cursor: Option<String>,
    /// JSON (the admin API's answer) even on a terminal.
    #[arg(long, conflicts_with = "table")]
    pub json: bool,
    /// A table even when stdout is not a terminal.
    #[arg(long)]
    pub table: bool,
    #[command(flatten)]
    pub common: ServeArgs,
}

fn split_pair<'a>(flag: &str, s: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    s.split_once('=')
        .with_context(|| format!("--{flag} takes NAME=VALUE, got '{s}'"))
}

/// The query the flags describe.
pub fn query(args: &SearchArgs) -> anyhow::Result<SearchQuery> {
    let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
    for a in &args.attrs {
        let (name, value) = split_pair("attr", a)?;
        let param = format!("attr.{name}");
        match attrs.iter_mut().find(|(p, _)| *p == param) {
            Some((_, vs)) => vs.push(value.to_owned()),
            None => attrs.push((param, vec![value.to_owned()])),
        }
    }
    let mut q = SearchQuery {
        q: args.query.clone(),
        buckets: args.buckets.clone(),
        prefix: args.prefix.clone(),
        content_type: args.content_type.clone(),
        limit: args.limit,
        cursor: args.cursor.clone(),
        ..SearchQuery::default()
    };
    for (param, values) in attrs {
        q.attrs.push(attr_filter(&param, values)?);
    }
    for t in &args.tags {
        let (key, value) = split_pair("tag", t)?;
        q.tags.push(TagFilter {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    if let Some(s) = &args.sort {
        q.sort = Some(
            s.parse::<Sort>()
                .map_err(|e| anyhow::anyhow!("--sort {s}: {e}"))?,
        );
    }
    Ok(q)
}

pub async fn run(args: SearchArgs, settings: &Settings) -> anyhow::Result<()> {
    let q = query(&args)?;
    let store = bootstrap::open_store(settings).await?;
    let page = store.search(&q).await?;
    let table = args.table || (!args.json && std::io::stdout().is_terminal());
    if table {
        print!("{}", render_table(&page));
    } else {
        let view = artstore_admin::search::page_view(&page, false, now_ms());
        println!("{}", serde_json::to_string_pretty(&view)?);
    }
    Ok(())
}

/// Bytes in a short human form (`1.5 MiB`).
fn human_size(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let head: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

fn row(h: &SearchHit) -> [String; 5] {
    let o = &h.object;
    let attrs: Vec<String> = o
        .custom_attributes
        .iter()
        .take(TABLE_ATTRS)
        .map(|(k, v)| format!("{k}={}", cut(v, 24)))
        .collect();
    let created = artstore_admin::rfc3339(o.created_ms);
    [
        cut(&o.key, KEY_WIDTH),
        o.bucket.clone(),
        human_size(o.size),
        created.get(..19).unwrap_or(&created).replace('T', " "),
        attrs.join(", "),
    ]
}

/// The page as an aligned table (key, bucket, size, created, first attributes), then the
/// count and the cursor of the next page, if any.
pub fn render_table(page: &SearchPage) -> String {
    let header = ["KEY", "BUCKET", "SIZE", "CREATED", "ATTRIBUTES"].map(str::to_owned);
    let rows: Vec<[String; 5]> = page.items.iter().map(row).collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |r: &[String; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in r.iter().zip(widths).enumerate() {
            if i == r.len() - 1 {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(r));
    }
    let n = rows.len();
    out.push_str(&format!("{n} object{}\n", if n == 1 { "" } else { "s" }));
    if let Some(c) = &page.next_cursor {
        out.push_str(&format!("more: --cursor {c}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cuts() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("абв", 3), "абв");
    }
}
