//! The `search` scenario: loads generated index rows for N objects straight into a fresh
//! database (through `Store::bulk_load`, so the rows are those ArtStore writes), then times
//! the searches of issue 9 one at a time, and a 1000-key ListObjectsV2 page through a real
//! `artstore serve` over the same database. Searches run through `Store::search`, the call
//! the admin API's search route makes.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use artstore_metadata::{
    AttrCond, AttrFilter, DbKind, FacetField, MasterKey, SearchQuery, SecretBox, Sort, SortField,
    Store,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::args::{Args, SearchDb};

use crate::client::S3Client;
use crate::dataset::{self, BUCKETS, DEPARTMENTS, DOC_TYPES, WORDS};
use crate::spawn::Server;
use crate::stats::{Latency, ms};

/// Objects per `bulk_load` call (one transaction).
const LOAD_BATCH: u64 = 5000;
/// Untimed runs of each query kind before timing it (warms caches and connections).
const WARMUP: usize = 10;
/// The targets of issue 9, for each query.
const TARGET_P50: Duration = Duration::from_millis(10);
const TARGET_P99: Duration = Duration::from_millis(50);

struct Kind {
    name: &'static str,
    what: &'static str,
    samples: Vec<Duration>,
    hits: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Kind {
    fn new(name: &'static str, what: &'static str) -> Kind {
        Kind {
            name,
            what,
            samples: Vec::new(),
            hits: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn record(&mut self, took: Duration, r: Result<u64>) {
        match r {
            Ok(n) => {
                self.samples.push(took);
                self.hits += n;
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

/// The PostgreSQL database of a run: created here, dropped at the end unless kept.
struct PgDb {
    admin_url: String,
    name: String,
}

impl PgDb {
    fn url(&self) -> Result<String> {
        let (head, _) = self
            .admin_url
            .rsplit_once('/')
            .context("--pg-url must end in /DATABASE")?;
        Ok(format!("{head}/{}", self.name))
    }

    async fn admin(&self) -> Result<sqlx::AnyConnection> {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.admin_url)
            .await
            .with_context(|| format!("connect to {}", self.admin_url))
    }

    /// Creates the database, or keeps an existing one with --keep-db.
    async fn create(&self, keep: bool) -> Result<()> {
        let mut c = self.admin().await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
            .bind(&self.name)
            .fetch_one(&mut c)
            .await?;
        if exists > 0 {
            if !keep {
                bail!(
                    "database {} exists: pass --keep-db to reuse its dataset, or drop it",
                    self.name
                );
            }
            return Ok(());
        }
        let sql = format!("CREATE DATABASE \"{}\"", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await?;
        Ok(())
    }

    async fn drop_db(&self) -> Result<()> {
        let mut c = self.admin().await?;
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut c)
            .await?;
        Ok(())
    }
}

/// Runs the scenario; prints its report and returns whether every query succeeded.
pub async fn run(args: &Args, command: &str) -> Result<bool> {
    let Some(bin) = args.spawn.as_deref() else {
        bail!("--scenario search needs --spawn PATH_TO_ARTSTORE (it serves the listing)");
    };
    let n = args.objects;
    let keep = args.keep_db;
    if keep && args.data_dir.is_none() {
        // The master key that encrypts the accounts' secrets lives there (and SQLite's index).
        bail!("--keep-db needs --data-dir, which keeps the store's master key with the database");
    }
    let pg = match args.db {
        SearchDb::Postgres => Some(PgDb {
            admin_url: args.pg_url.clone(),
            name: args
                .pg_db
                .clone()
                .unwrap_or_else(|| format!("artstore_bench_search_{n}")),
        }),
        SearchDb::Sqlite => None,
    };
    if let Some(p) = &pg
        && !p
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        bail!("--pg-db must be letters, digits and '_'");
    }
    if let Some(p) = &pg {
        p.create(keep).await?;
    }
    let result = run_on(args, command, bin, pg.as_ref()).await;
    if let Some(p) = &pg
        && !keep
    {
        p.drop_db().await?;
    }
    result
}

async fn run_on(args: &Args, command: &str, bin: &Path, pg: Option<&PgDb>) -> Result<bool> {
    let db_url = pg.map(PgDb::url).transpose()?;
    let server = Server::spawn(
        bin,
        args.data_dir.as_deref(),
        db_url.as_deref(),
        &args.access_key,
        &args.secret_key,
        &args.region,
    )
    .await?;
    eprintln!("server pid {} listening on {}", server.pid, server.s3_addr);
    let url = match &db_url {
        Some(u) => u.clone(),
        None => Store::sqlite_url(&server.data_dir),
    };
    let client = S3Client::new(
        &server.endpoint(),
        &args.access_key,
        &args.secret_key,
        &args.region,
        4,
        Duration::from_secs_f64(args.timeout_secs),
    )?;
    for b in BUCKETS {
        client.create_bucket(b).await?;
    }
    // The bulk loader writes no secrets: a throwaway key is enough to open the index.
    let store = Store::connect(&url, SecretBox::new(&MasterKey::generate())).await?;
    let raw = sqlx::AnyPool::connect(&url).await?;
    let out = measure(args, command, &server, &client, &store, &raw).await;
    raw.close().await;
    store.close().await;
    server.shutdown().await?;
    out
}

async fn measure(
    args: &Args,
    command: &str,
    server: &Server,
    client: &S3Client,
    store: &Store,
    raw: &sqlx::AnyPool,
) -> Result<bool> {
    let n = args.objects;
    let have = scalar(raw, "SELECT COUNT(*) FROM objects").await?;
    let load = if have == 0 {
        Some(load(store, n, args.loaders).await?)
    } else if have as u64 == n {
        eprintln!("reusing the {n} objects already loaded");
        None
    } else {
        bail!("the database holds {have} objects, not {n}: use a fresh one");
    };
    if store.kind() == DbKind::Postgres {
        // What autovacuum does after a large load: planner statistics and the visibility map.
        let t = Instant::now();
        sqlx::query("VACUUM ANALYZE").execute(raw).await?;
        eprintln!("VACUUM ANALYZE: {:.1} s", t.elapsed().as_secs_f64());
    }
    let sizes = sizes(store.kind(), raw, &server.data_dir).await?;
    let kinds = queries(store, client, args.queries as usize, n).await?;
    let ok = kinds.iter().all(|k| k.errors == 0);
    let report = text_report(command, args, n, load.as_ref(), &sizes, &kinds);
    if args.json {
        eprintln!("{report}");
        println!("{}", json_report(args, n, load.as_ref(), &sizes, &kinds));
    } else {
        println!("{report}");
    }
    Ok(ok)
}

async fn scalar(raw: &sqlx::AnyPool, sql: &'static str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(raw).await?)
}

struct Load {
    elapsed: Duration,
    objects: u64,
}

/// Loads objects 0..n with `loaders` transactions in flight.
async fn load(store: &Store, n: u64, loaders: usize) -> Result<Load> {
    eprintln!("loading {n} objects …");
    let t = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..loaders.max(1) {
        let (store, next) = (store.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let from = next.fetch_add(LOAD_BATCH, std::sync::atomic::Ordering::Relaxed);
                if from >= n {
                    return anyhow::Ok(());
                }
                let to = (from + LOAD_BATCH).min(n);
                let batch =
                    tokio::task::spawn_blocking(move || (from..to).map(dataset::object).collect())
                        .await?;
                let batch: Vec<_> = batch;
                store.bulk_load(&batch).await?;
                if to.is_multiple_of(100_000) || to == n {
                    eprintln!(
                        "  {to} objects, {:.0} objects/s",
                        to as f64 / t.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(Load {
        elapsed: t.elapsed(),
        objects: n,
    })
}

/// Bytes on disk: (what, bytes).
async fn sizes(kind: DbKind, raw: &sqlx::AnyPool, data_dir: &Path) -> Result<Vec<(String, u64)>> {
    match kind {
        DbKind::Postgres => {
            let mut out = Vec::new();
            for (what, sql) in [
                (
                    "objects (table + its indexes)",
                    "SELECT pg_total_relation_size('objects')",
                ),
                (
                    "search_docs (table + GIN indexes)",
                    "SELECT pg_total_relation_size('search_docs')",
                ),
            ] {
                out.push((what.to_owned(), scalar(raw, sql).await? as u64));
            }
            Ok(out)
        }
        DbKind::Sqlite => {
            let mut out = Vec::new();
            let file = data_dir.join("artstore.db");
            let total = std::fs::metadata(&file)
                .with_context(|| format!("stat {}", file.display()))?
                .len();
            out.push(("artstore.db file".to_owned(), total));
            // dbstat is compiled into the bundled SQLite only with SQLITE_ENABLE_DBSTAT_VTAB;
            // without it the file size stands alone.
            let per_table = sqlx::query(
                "SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY 2 DESC",
            )
            .fetch_all(raw)
            .await;
            if let Ok(rows) = per_table {
                use sqlx::Row;
                for r in rows.iter().take(12) {
                    out.push((r.try_get("name")?, r.try_get::<i64, _>("bytes")? as u64));
                }
            }
            Ok(out)
        }
    }
}

fn words_query(text: String) -> SearchQuery {
    SearchQuery {
        q: Some(text),
        ..Default::default()
    }
}

fn eq(name: &str, v: impl Into<String>) -> AttrFilter {
    AttrFilter {
        name: name.to_owned(),
        cond: AttrCond::Equals(vec![v.into()]),
    }
}

async fn timed_search(store: &Store, q: &SearchQuery) -> (Duration, Result<u64>) {
    let t = Instant::now();
    let r = store.search(q).await;
    let took = t.elapsed();
    (
        took,
        r.map(|p| {
            p.items.len() as u64 + p.facets.iter().map(|f| f.values.len() as u64).sum::<u64>()
        })
        .map_err(anyhow::Error::from),
    )
}

/// Times every query kind, `count` varied queries each, one at a time.
async fn queries(store: &Store, client: &S3Client, count: usize, n: u64) -> Result<Vec<Kind>> {
    let mut rng = StdRng::seed_from_u64(0x9e37_79b9);
    let year_ms = 365 * 86_400_000;
    let mut kinds = Vec::new();

    let mut gen_sets: Vec<(Kind, Vec<SearchQuery>)> = Vec::new();
    let mut k = |name, what, f: &mut dyn FnMut(&mut StdRng) -> SearchQuery| {
        let qs = (0..count + WARMUP).map(|_| f(&mut rng)).collect();
        gen_sets.push((Kind::new(name, what), qs));
    };
    k("word", "q=<one word>, by relevance", &mut |r| {
        words_query(WORDS[r.random_range(0..WORDS.len())].to_owned())
    });
    k(
        "word_rare",
        "q=<a customer's company name> (names repeat: ~0.1-0.2 % of documents), by relevance",
        &mut |r| {
            words_query(dataset::customer_name(
                r.random_range(0..dataset::CUSTOMERS),
            ))
        },
    );
    k("prefix", "q=<5 letters>*, by relevance", &mut |r| {
        let w: String = WORDS[r.random_range(0..WORDS.len())]
            .chars()
            .take(5)
            .collect();
        words_query(format!("{w}*"))
    });
    k(
        "two_attrs",
        "attr.department=D & attr.year=Y, by key",
        &mut |r| SearchQuery {
            attrs: vec![
                eq(
                    "department",
                    DEPARTMENTS[r.random_range(0..DEPARTMENTS.len())],
                ),
                eq(
                    "year",
                    (dataset::FIRST_YEAR + r.random_range(0..dataset::YEARS)).to_string(),
                ),
            ],
            ..Default::default()
        },
    );
    k(
        "text_attr_date",
        "q=<word> & attr.department=D & 1-year created range, by created desc",
        &mut |r| {
            let from = 1_420_070_400_000 + r.random_range(0..dataset::CREATED_SPAN_MS - year_ms);
            SearchQuery {
                q: Some(WORDS[r.random_range(0..WORDS.len())].to_owned()),
                attrs: vec![eq(
                    "department",
                    DEPARTMENTS[r.random_range(0..DEPARTMENTS.len())],
                )],
                created_from: Some(from),
                created_to: Some(from + year_ms),
                sort: Some(Sort {
                    field: SortField::Created,
                    desc: true,
                }),
                ..Default::default()
            }
        },
    );
    k(
        "facets",
        "q=<customer name> with facets bucket, content_type, attr.department, attr.doc_type",
        &mut |r| SearchQuery {
            q: Some(dataset::customer_name(
                r.random_range(0..dataset::CUSTOMERS),
            )),
            facets: vec![
                FacetField::Bucket,
                FacetField::ContentType,
                FacetField::Attr("department".into()),
                FacetField::Attr("doc_type".into()),
            ],
            limit: Some(20),
            ..Default::default()
        },
    );
    for (mut kind, qs) in gen_sets {
        eprintln!("timing {} ({count} queries) …", kind.name);
        for (i, q) in qs.iter().enumerate() {
            let (took, r) = timed_search(store, q).await;
            if i >= WARMUP {
                kind.record(took, r);
            }
        }
        eprintln!("  {}", summary(&kind));
        kinds.push(kind);
    }

    // The 50th page: 49 pages walked untimed with their cursors, the 50th timed.
    let mut page50 = Kind::new(
        "page_50",
        "bucket=B & attr.doc_type=T, by key, 100 a page: the 50th page via cursor",
    );
    eprintln!("timing page_50 ({count} queries) …");
    for i in 0..count + WARMUP {
        let mut q = SearchQuery {
            buckets: vec![BUCKETS[rng.random_range(0..BUCKETS.len())].to_owned()],
            attrs: vec![eq(
                "doc_type",
                DOC_TYPES[rng.random_range(0..DOC_TYPES.len())],
            )],
            limit: Some(100),
            ..Default::default()
        };
        // The cursor holds a position, not a page size: 4900 rows in 1000-row pages reach the
        // position the 49 pages of 100 reach.
        let mut reached = true;
        for limit in [1000, 1000, 1000, 1000, 900] {
            q.limit = Some(limit);
            let page = store.search(&q).await?;
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => {
                    reached = false;
                    break;
                }
            }
        }
        q.limit = Some(100);
        let (took, r) = timed_search(store, &q).await;
        let r = if reached {
            r
        } else {
            Err(anyhow::anyhow!(
                "fewer than 50 pages: the dataset ({n} objects) is too small"
            ))
        };
        if i >= WARMUP {
            page50.record(took, r);
        }
    }
    eprintln!("  {}", summary(&page50));
    kinds.push(page50);

    // ListObjectsV2 through the server: 1000 keys from a department prefix, after a key
    // picked inside it (so pages come from all over the key space).
    let mut list = Kind::new(
        "list_1000",
        "ListObjectsV2 max-keys=1000, prefix=<dept>/, start-after=<dept>/<year>/",
    );
    eprintln!("timing list_1000 ({count} requests) …");
    for i in 0..count + WARMUP {
        let bucket = BUCKETS[rng.random_range(0..BUCKETS.len())];
        let dept = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
        let year = dataset::FIRST_YEAR + rng.random_range(0..dataset::YEARS - 1);
        let t = Instant::now();
        let r = client
            .list_v2(
                bucket,
                &format!("{dept}/"),
                &format!("{dept}/{year}/"),
                1000,
            )
            .await;
        if i >= WARMUP {
            list.record(t.elapsed(), r);
        }
    }
    eprintln!("  {}", summary(&list));
    kinds.push(list);
    Ok(kinds)
}

/// One line of figures, printed as each kind finishes.
fn summary(k: &Kind) -> String {
    let mut samples = k.samples.clone();
    match Latency::from_samples(&mut samples) {
        Some(l) => format!(
            "{}: {} queries, {} errors, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            k.name,
            k.samples.len(),
            k.errors,
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        ),
        None => format!("{}: {} errors", k.name, k.errors),
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn text_report(
    command: &str,
    args: &Args,
    n: u64,
    load: Option<&Load>,
    sizes: &[(String, u64)],
    kinds: &[Kind],
) -> String {
    let mut s = String::new();
    let db = match args.db {
        SearchDb::Sqlite => "SQLite",
        SearchDb::Postgres => "PostgreSQL",
    };
    let _ = writeln!(s, "command: {command}");
    let _ = writeln!(s, "== search: {n} objects on {db} ==");
    match load {
        Some(l) => {
            let _ = writeln!(
                s,
                "load: {} objects in {:.1} s = {:.0} objects/s ({} loaders, {LOAD_BATCH} a transaction)",
                l.objects,
                l.elapsed.as_secs_f64(),
                l.objects as f64 / l.elapsed.as_secs_f64(),
                args.loaders
            );
        }
        None => {
            let _ = writeln!(s, "load: reused a kept dataset");
        }
    }
    for (what, bytes) in sizes {
        let _ = writeln!(
            s,
            "size: {what}: {:.1} MiB = {:.1} MiB per million objects",
            mib(*bytes),
            mib(*bytes) * 1e6 / n as f64
        );
    }
    let _ = writeln!(
        s,
        "{:<15} {:>7} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8}  what",
        "query", "queries", "errors", "rows/q", "p50_ms", "p99_ms", "max_ms", "target"
    );
    for k in kinds {
        let mut samples = k.samples.clone();
        let lat = Latency::from_samples(&mut samples);
        let cell = |f: fn(&Latency) -> Duration| {
            lat.as_ref()
                .map_or_else(|| "-".to_owned(), |l| format!("{:.2}", ms(f(l))))
        };
        let met = lat
            .as_ref()
            .is_some_and(|l| l.p50 < TARGET_P50 && l.p99 < TARGET_P99);
        let _ = writeln!(
            s,
            "{:<15} {:>7} {:>6} {:>9.1} {:>8} {:>8} {:>8} {:>8}  {}",
            k.name,
            k.samples.len(),
            k.errors,
            k.hits as f64 / k.samples.len().max(1) as f64,
            cell(|l| l.p50),
            cell(|l| l.p99),
            cell(|l| l.max),
            if met { "met" } else { "MISSED" },
            k.what
        );
    }
    for k in kinds {
        if let Some(e) = &k.first_error {
            let _ = writeln!(s, "{} first error: {e}", k.name);
        }
    }
    let _ = writeln!(
        s,
        "target: p50 < {} ms and p99 < {} ms; rows/q = items returned (+ facet values) per query",
        TARGET_P50.as_millis(),
        TARGET_P99.as_millis()
    );
    s
}

fn json_report(
    args: &Args,
    n: u64,
    load: Option<&Load>,
    sizes: &[(String, u64)],
    kinds: &[Kind],
) -> serde_json::Value {
    let queries: Vec<_> = kinds
        .iter()
        .map(|k| {
            let mut samples = k.samples.clone();
            let lat = Latency::from_samples(&mut samples);
            json!({
                "name": k.name,
                "what": k.what,
                "queries": k.samples.len(),
                "errors": k.errors,
                "rows_per_query": k.hits as f64 / k.samples.len().max(1) as f64,
                "p50_ms": lat.map(|l| ms(l.p50)),
                "p99_ms": lat.map(|l| ms(l.p99)),
                "max_ms": lat.map(|l| ms(l.max)),
            })
        })
        .collect();
    json!({
        "scenario": "search",
        "database": format!("{:?}", args.db).to_lowercase(),
        "objects": n,
        "load_s": load.map(|l| l.elapsed.as_secs_f64()),
        "sizes_bytes": sizes.iter().map(|(w, b)| json!({"what": w, "bytes": b})).collect::<Vec<_>>(),
        "queries": queries,
    })
}
