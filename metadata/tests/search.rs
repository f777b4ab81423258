//! Search against real databases: every test runs on SQLite (temp dir) and on PostgreSQL (a
//! fresh database from ARTSTORE_TEST_DATABASE_URL; skipped with a message when unset, unless
//! ARTSTORE_TEST_REQUIRE_ALL=1).

use artstore_metadata::{
    AttrCond, AttrFilter, CursorError, FacetField, FacetValue, MasterKey, Mode, NewElement,
    ObjectRecord, QueryError, SearchError, SearchPage, SearchQuery, SecretBox, Sort, SortField,
    Store, TagFilter,
};

mod common;
use common::{TestDb, open};

/// Runs the async fn of the same name on both databases.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                let db = super::open("sqlite").await.unwrap();
                super::$name(&db).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(db) = super::open("postgres").await {
                    super::$name(&db).await;
                }
            }
        }
    };
}

async fn element(store: &Store, name: &str, mode: Mode) {
    store
        .create_element(&NewElement {
            name: name.into(),
            mode,
            backend: r#"{"kind":"local"}"#.into(),
            capacity_bytes: None,
            description: None,
            created_by: "root".into(),
        })
        .await
        .unwrap();
}

fn rec(
    bucket: &str,
    key: &str,
    ct: &str,
    size: i64,
    created: i64,
    attrs: &[(&str, &str)],
) -> ObjectRecord {
    ObjectRecord {
        bucket: bucket.into(),
        key: key.into(),
        file_id: uuid::Uuid::now_v7().to_string(),
        storage_path: format!("2026/01/01/00/{}", uuid::Uuid::new_v4()),
        size,
        etag: "d41d8cd98f00b204e9800998ecf8427e".into(),
        sha256: "e3b0".into(),
        content_type: ct.into(),
        custom_attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        owner_id: "id-alice".into(),
        owner_name: "alice".into(),
        created_ms: created,
        updated_ms: created,
        ..Default::default()
    }
}

const CONTRACT: &str = "docs/contracts/2024/Договор поставки 2024.pdf";
const SUPPLY: &str = "docs/contracts/2023/Supply agreement.docx";
const REPORT: &str = "docs/reports/annual report 2023.pdf";
const SCAN: &str = "docs/images/scan-001.png";
const README: &str = "other/notes/readme.txt";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Five documents in two buckets: `docs` (edit) and `other` (ar).
async fn corpus(store: &Store) {
    element(store, "docs", Mode::Edit).await;
    // Objects are put with no write rule, so an archive element can be filled directly.
    element(store, "other", Mode::Ar).await;
    let objects = [
        rec(
            "docs",
            &CONTRACT[5..],
            "application/pdf",
            1000,
            1000,
            &[
                ("description", "Договор с ООО Ромашка"),
                ("department", "sales"),
                ("year", "2024"),
                ("amount", "1500"),
            ],
        ),
        rec(
            "docs",
            &SUPPLY[5..],
            DOCX,
            500,
            2000,
            &[
                ("description", "Annual supply agreement"),
                ("department", "legal"),
                ("year", "2023"),
                ("amount", "900"),
                ("signed", "2023-05-01"),
            ],
        ),
        rec(
            "docs",
            &REPORT[5..],
            "application/pdf",
            3000,
            3000,
            &[
                ("department", "finance"),
                ("year", "2023"),
                ("signed", "2023-12-31"),
            ],
        ),
        ObjectRecord {
            owner_id: "id-bob".into(),
            owner_name: "bob".into(),
            ..rec(
                "docs",
                &SCAN[5..],
                "image/png",
                200,
                4000,
                &[("department", "sales")],
            )
        },
        rec(
            "other",
            &README[6..],
            "text/plain",
            50,
            5000,
            &[("amount", "10000")],
        ),
    ];
    for o in &objects {
        store.put_object(o).await.unwrap();
    }
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        q: Some(text.into()),
        ..Default::default()
    }
}

fn attr(name: &str, cond: AttrCond) -> AttrFilter {
    AttrFilter {
        name: name.into(),
        cond,
    }
}

/// `bucket/key` of every hit, in the order returned.
async fn found(store: &Store, query: SearchQuery) -> Vec<String> {
    let page = store.search(&query).await.unwrap();
    page.items
        .iter()
        .map(|h| format!("{}/{}", h.object.bucket, h.object.key))
        .collect()
}

/// The same, as a sorted set.
async fn set(store: &Store, query: SearchQuery) -> Vec<String> {
    let mut v = found(store, query).await;
    v.sort();
    v
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn full_text(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let cases: &[(&str, &[&str])] = &[
        // Cyrillic, any case, from the file name and from the description.
        ("поставки", &[CONTRACT]),
        ("ПОСТАВКИ", &[CONTRACT]),
        ("ромашка", &[CONTRACT]),
        ("annual", &[SUPPLY, REPORT]),
        ("ANNUAL Report", &[REPORT]),
        ("\"annual report\"", &[REPORT]),
        ("\"report annual\"", &[]),
        ("agree*", &[SUPPLY]),
        ("пост*", &[CONTRACT]),
        ("annual -report", &[SUPPLY]),
        ("ромашка OR readme", &[CONTRACT, README]),
        ("contracts ромашка OR readme", &[CONTRACT]),
        ("2023.pdf", &[REPORT]),
        // Attribute values are words too (department = legal).
        ("legal", &[SUPPLY]),
        ("nothing-like-this", &[]),
    ];
    for (text, want) in cases {
        assert_eq!(set(s, q(text)).await, sorted(want), "q = {text}");
    }
    let page = s.search(&q("annual")).await.unwrap();
    assert!(page.items.iter().all(|h| h.score.is_some_and(|x| x > 0.0)));
    let scores: Vec<f64> = page.items.iter().map(|h| h.score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    // Without q there is no score.
    let page = s.search(&SearchQuery::default()).await.unwrap();
    assert_eq!(page.items.len(), 5);
    assert!(page.items.iter().all(|h| h.score.is_none()));
}
both!(full_text);

async fn filters(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let all = || SearchQuery::default();
    let cases: Vec<(&str, SearchQuery, &[&str])> = vec![
        (
            "bucket",
            SearchQuery {
                buckets: vec!["other".into()],
                ..all()
            },
            &[README],
        ),
        (
            "buckets",
            SearchQuery {
                buckets: vec!["other".into(), "docs".into()],
                ..all()
            },
            &[CONTRACT, SUPPLY, REPORT, SCAN, README],
        ),
        (
            "prefix",
            SearchQuery {
                prefix: Some("contracts/".into()),
                ..all()
            },
            &[CONTRACT, SUPPLY],
        ),
        (
            "content_type",
            SearchQuery {
                content_type: Some("application/pdf".into()),
                ..all()
            },
            &[CONTRACT, REPORT],
        ),
        (
            "content_type/*",
            SearchQuery {
                content_type: Some("image/*".into()),
                ..all()
            },
            &[SCAN],
        ),
        (
            "owner name",
            SearchQuery {
                owner: Some("bob".into()),
                ..all()
            },
            &[SCAN],
        ),
        (
            "owner id",
            SearchQuery {
                owner: Some("id-bob".into()),
                ..all()
            },
            &[SCAN],
        ),
        (
            "size",
            SearchQuery {
                size_min: Some(200),
                size_max: Some(1000),
                ..all()
            },
            &[CONTRACT, SUPPLY, SCAN],
        ),
        (
            "created",
            SearchQuery {
                created_from: Some(2000),
                created_to: Some(4000),
                ..all()
            },
            &[SUPPLY, REPORT, SCAN],
        ),
        (
            "mode",
            SearchQuery {
                mode: Some(Mode::Ar),
                ..all()
            },
            &[README],
        ),
        (
            "allowed",
            SearchQuery {
                allowed_buckets: Some(vec!["docs".into()]),
                ..q("ромашка OR readme")
            },
            &[CONTRACT],
        ),
        (
            "allowed and bucket",
            SearchQuery {
                buckets: vec!["other".into()],
                allowed_buckets: Some(vec!["docs".into()]),
                ..all()
            },
            &[],
        ),
        (
            "allowed none",
            SearchQuery {
                allowed_buckets: Some(vec![]),
                ..all()
            },
            &[],
        ),
        (
            "q and filters",
            SearchQuery {
                content_type: Some("application/*".into()),
                size_max: Some(999),
                ..q("annual")
            },
            &[SUPPLY],
        ),
        // No object of the corpus has tags (see `tags`).
        (
            "tag",
            SearchQuery {
                tags: vec![TagFilter {
                    key: "k".into(),
                    value: "v".into(),
                }],
                ..all()
            },
            &[],
        ),
    ];
    for (what, query, want) in cases {
        assert_eq!(set(s, query).await, sorted(want), "{what}");
    }
    // Hits carry the whole row and the element's mode.
    let page = s.search(&q("readme")).await.unwrap();
    let hit = &page.items[0];
    assert_eq!(hit.mode, Mode::Ar);
    assert_eq!(hit.object.size, 50);
    assert_eq!(hit.object.content_type, "text/plain");
    assert_eq!(hit.object.owner_name, "alice");
    assert_eq!(hit.object.created_ms, 5000);
    assert_eq!(hit.object.custom_attributes["amount"], "10000");
}
both!(filters);

async fn attributes(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let eq = |v: &[&str]| AttrCond::Equals(v.iter().map(|s| s.to_string()).collect());
    let cases: Vec<(&str, Vec<AttrFilter>, &[&str])> = vec![
        (
            "equals",
            vec![attr("department", eq(&["sales"]))],
            &[CONTRACT, SCAN],
        ),
        (
            "several values",
            vec![attr("department", eq(&["legal", "finance"]))],
            &[SUPPLY, REPORT],
        ),
        (
            "exact, not a word",
            vec![attr("description", eq(&["Annual"]))],
            &[],
        ),
        (
            "two attributes",
            vec![
                attr("department", eq(&["sales"])),
                attr("year", eq(&["2024"])),
            ],
            &[CONTRACT],
        ),
        (
            "prefix",
            vec![attr("signed", AttrCond::Prefix("2023-1".into()))],
            &[REPORT],
        ),
        // 900 < 1000 as numbers, though "900" > "1000" as text.
        (
            "numeric gte",
            vec![attr("amount", AttrCond::Gte("1000".into()))],
            &[CONTRACT, README],
        ),
        (
            "numeric lte",
            vec![attr("amount", AttrCond::Lte("1500".into()))],
            &[CONTRACT, SUPPLY],
        ),
        (
            "iso dates",
            vec![attr("signed", AttrCond::Gte("2023-06-01".into()))],
            &[REPORT],
        ),
        (
            "date range",
            vec![
                attr("signed", AttrCond::Gte("2023-01-01".into())),
                attr("signed", AttrCond::Lte("2023-06-30".into())),
            ],
            &[SUPPLY],
        ),
        // Text bound, numeric values: compared as text.
        (
            "text bound",
            vec![attr("amount", AttrCond::Gte("8z".into()))],
            &[SUPPLY],
        ),
        (
            "exists",
            vec![attr("signed", AttrCond::Exists(true))],
            &[SUPPLY, REPORT],
        ),
        (
            "absent",
            vec![attr("amount", AttrCond::Exists(false))],
            &[REPORT, SCAN],
        ),
        (
            "injection",
            vec![attr("department", eq(&["' OR 1=1 --"]))],
            &[],
        ),
    ];
    for (what, attrs, want) in cases {
        let query = SearchQuery {
            attrs,
            ..Default::default()
        };
        assert_eq!(set(s, query).await, sorted(want), "{what}");
    }
}
both!(attributes);

async fn sorts(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let by = |field, desc| SearchQuery {
        sort: Some(Sort { field, desc }),
        ..Default::default()
    };
    assert_eq!(
        found(s, by(SortField::Key, false)).await,
        [SUPPLY, CONTRACT, SCAN, README, REPORT],
        "keys in byte order across buckets"
    );
    assert_eq!(
        found(s, by(SortField::Key, true)).await,
        [REPORT, README, SCAN, CONTRACT, SUPPLY]
    );
    assert_eq!(
        found(s, by(SortField::Created, true)).await,
        [README, SCAN, REPORT, SUPPLY, CONTRACT]
    );
    assert_eq!(
        found(s, by(SortField::Size, false)).await,
        [README, SCAN, SUPPLY, CONTRACT, REPORT]
    );
    assert_eq!(
        found(
            s,
            SearchQuery {
                sort: Some("size:desc".parse().unwrap()),
                ..q("pdf OR docx OR png")
            }
        )
        .await,
        [REPORT, CONTRACT, SUPPLY, SCAN]
    );
}
both!(sorts);

/// Walks every page; returns the hits in order.
async fn walk(
    s: &Store,
    mut query: SearchQuery,
    between: &mut dyn FnMut(usize) -> Vec<Change>,
) -> Vec<String> {
    let mut seen = Vec::new();
    for page_no in 0.. {
        let page = s.search(&query).await.unwrap();
        seen.extend(page.items.iter().map(|h| h.object.key.clone()));
        let Some(next) = page.next_cursor else { break };
        for change in between(page_no) {
            match change {
                Change::Put(r) => {
                    s.put_object(&r).await.unwrap();
                }
                Change::Delete(k) => {
                    s.delete_object("docs", &k).await.unwrap();
                }
            }
        }
        query.cursor = Some(next);
        assert!(page_no < 100, "pagination does not end");
    }
    seen
}

enum Change {
    Put(Box<ObjectRecord>),
    Delete(String),
}

fn put(r: ObjectRecord) -> Change {
    Change::Put(Box::new(r))
}

async fn pagination(db: &TestDb) {
    let s = &db.store;
    element(s, "docs", Mode::Edit).await;
    // Keys k00..k29, created 0..29, sizes in reverse, every one matching "batch".
    for i in 0..30 {
        let r = rec(
            "docs",
            &format!("k{i:02}"),
            "text/plain",
            1000 - i,
            i,
            &[("description", "batch")],
        );
        s.put_object(&r).await.unwrap();
    }
    for (sort, text) in [
        ("key", None),
        ("created:desc", None),
        ("size", None),
        ("relevance", Some("batch")),
    ] {
        let query = SearchQuery {
            q: text.map(str::to_owned),
            sort: Some(sort.parse().unwrap()),
            limit: Some(7),
            ..Default::default()
        };
        // No writes: every object once.
        let seen = walk(s, query.clone(), &mut |_| vec![]).await;
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 30, "{sort}: {seen:?}");
        assert_eq!(seen.len(), 30, "{sort}: no duplicates");
    }
    // Key order while writing: after the first page, delete an unseen key, add one before the
    // cursor (never returned) and one after it (returned).
    let query = SearchQuery {
        limit: Some(7),
        ..q("batch")
    };
    let query = SearchQuery {
        sort: Some("key".parse().unwrap()),
        ..query
    };
    let seen = walk(s, query, &mut |page| {
        if page != 0 {
            return vec![];
        }
        vec![
            Change::Delete("k20".into()),
            put(rec(
                "docs",
                "k03a",
                "text/plain",
                1,
                100,
                &[("description", "batch")],
            )),
            put(rec(
                "docs",
                "k25a",
                "text/plain",
                1,
                101,
                &[("description", "batch")],
            )),
        ]
    })
    .await;
    let mut want: Vec<String> = (0..30)
        .filter(|i| *i != 20)
        .map(|i| format!("k{i:02}"))
        .collect();
    want.push("k25a".into());
    want.sort();
    assert_eq!(seen, want);
    // Created order, descending, with writes: new objects are newer than the cursor (never
    // returned); a deleted unseen one is gone; an overwrite keeps its creation time.
    let query = SearchQuery {
        sort: Some("created:desc".parse().unwrap()),
        limit: Some(5),
        ..Default::default()
    };
    let seen = walk(s, query, &mut |page| match page {
        0 => vec![
            Change::Delete("k05".into()),
            put(rec("docs", "new", "text/plain", 1, 200, &[])),
            put(rec("docs", "k10", "text/plain", 1, 10, &[("v", "2")])),
        ],
        _ => vec![],
    })
    .await;
    // Present at the start, in created-descending order: k03a (100) and k25a (101) first.
    let mut want: Vec<String> = vec!["k25a".into(), "k03a".into()];
    want.extend(
        (0..30)
            .rev()
            .filter(|i| *i != 20 && *i != 5)
            .map(|i| format!("k{i:02}")),
    );
    assert_eq!(seen, want);
}
both!(pagination);

async fn facets(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let query = SearchQuery {
        limit: Some(1),
        facets: vec![
            FacetField::ContentType,
            FacetField::Bucket,
            FacetField::Attr("department".into()),
        ],
        ..Default::default()
    };
    let page = s.search(&query).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let fv = |v: &[(&str, i64)]| -> Vec<FacetValue> {
        v.iter()
            .map(|(v, n)| FacetValue {
                value: v.to_string(),
                count: *n,
            })
            .collect()
    };
    assert_eq!(page.facets.len(), 3);
    assert_eq!(page.facets[0].field, FacetField::ContentType);
    assert_eq!(
        page.facets[0].values,
        fv(&[
            ("application/pdf", 2),
            (DOCX, 1),
            ("image/png", 1),
            ("text/plain", 1)
        ])
    );
    assert_eq!(page.facets[1].values, fv(&[("docs", 4), ("other", 1)]));
    assert_eq!(
        page.facets[2].values,
        fv(&[("sales", 2), ("finance", 1), ("legal", 1)])
    );
    // Over the match only, and never beyond the allowed buckets.
    let query = SearchQuery {
        allowed_buckets: Some(vec!["other".into()]),
        ..SearchQuery {
            q: Some("ромашка OR readme".into()),
            ..query
        }
    };
    let page = s.search(&query).await.unwrap();
    assert_eq!(page.facets[0].values, fv(&[("text/plain", 1)]));
    assert_eq!(page.facets[1].values, fv(&[("other", 1)]));
    assert_eq!(page.facets[2].values, fv(&[]));
    // Top 20 per facet.
    for i in 0..25 {
        s.put_object(&rec(
            "docs",
            &format!("many/{i}"),
            "text/plain",
            1,
            1,
            &[("n", &format!("v{i:02}"))],
        ))
        .await
        .unwrap();
    }
    let page = s
        .search(&SearchQuery {
            facets: vec![FacetField::Attr("n".into())],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.facets[0].values.len(), 20);
    assert_eq!(
        page.facets[0].values[0],
        FacetValue {
            value: "v00".into(),
            count: 1
        }
    );
}
both!(facets);

async fn consistency(db: &TestDb) {
    let s = &db.store;
    element(s, "docs", Mode::Edit).await;
    let by_attr = |v: &str| SearchQuery {
        attrs: vec![attr("customer", AttrCond::Equals(vec![v.into()]))],
        ..Default::default()
    };
    let first = rec(
        "docs",
        "a/Счёт.pdf",
        "application/pdf",
        10,
        1,
        &[("customer", "Альфа")],
    );
    s.put_object(&first).await.unwrap();
    assert_eq!(found(s, q("альфа")).await, ["docs/a/Счёт.pdf"]);
    assert_eq!(found(s, q("счёт")).await, ["docs/a/Счёт.pdf"]);
    assert_eq!(found(s, by_attr("Альфа")).await, ["docs/a/Счёт.pdf"]);
    // Overwrite: the new attributes are found, the old ones no longer.
    let second = rec(
        "docs",
        "a/Счёт.pdf",
        "application/pdf",
        20,
        2,
        &[("customer", "Бета")],
    );
    s.put_object(&second).await.unwrap();
    assert_eq!(found(s, q("бета")).await, ["docs/a/Счёт.pdf"]);
    assert!(found(s, q("альфа")).await.is_empty());
    assert!(found(s, by_attr("Альфа")).await.is_empty());
    assert_eq!(found(s, by_attr("Бета")).await, ["docs/a/Счёт.pdf"]);
    let page = s.search(&q("бета")).await.unwrap();
    assert_eq!(page.items[0].object.size, 20);
    // Delete: gone from every path.
    s.delete_object("docs", "a/Счёт.pdf").await.unwrap();
    assert!(found(s, q("бета")).await.is_empty());
    assert!(found(s, by_attr("Бета")).await.is_empty());
    assert!(found(s, SearchQuery::default()).await.is_empty());
    // A put again after the delete is found again.
    s.put_object(&first).await.unwrap();
    assert_eq!(found(s, q("альфа")).await, ["docs/a/Счёт.pdf"]);
}
both!(consistency);

/// Objects written before migration 0011 are indexed by the next `migrate`.
async fn backfill(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    use sqlx::Connection;
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let wipe: &[&str] = if db.url.starts_with("sqlite:") {
        &[
            "INSERT INTO search_fts (search_fts) VALUES ('delete-all')",
            "DELETE FROM search_docs",
            "DELETE FROM search_attrs",
        ]
    } else {
        &["DELETE FROM search_docs"]
    };
    for sql in wipe {
        sqlx::query(*sql).execute(&mut c).await.unwrap();
    }
    sqlx::query("INSERT INTO settings (name, value) VALUES ('search_backfill', 'pending')")
        .execute(&mut c)
        .await
        .unwrap();
    assert!(found(s, q("поставки")).await.is_empty());
    s.migrate().await.unwrap();
    assert_eq!(found(s, q("поставки")).await, [CONTRACT]);
    let sales = SearchQuery {
        attrs: vec![attr("department", AttrCond::Equals(vec!["sales".into()]))],
        ..Default::default()
    };
    assert_eq!(set(s, sales.clone()).await, sorted(&[CONTRACT, SCAN]));
    let left: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE name = 'search_backfill'")
            .fetch_optional(&mut c)
            .await
            .unwrap();
    assert_eq!(left, None);
    // A rebuild replaces stale and stray rows: drop one object's rows and leave a stray one.
    let stray: &[&str] = if db.url.starts_with("sqlite:") {
        &[
            "DELETE FROM search_attrs WHERE doc_id IN \
             (SELECT id FROM search_docs WHERE key LIKE 'contracts/2024/%')",
            "INSERT INTO search_attrs (doc_id, kind, name, value) \
             VALUES (999999, 'a', 'department', 'sales')",
        ]
    } else {
        &[
            "DELETE FROM search_docs WHERE key LIKE 'contracts/2024/%'",
            "INSERT INTO search_docs (bucket, key, attrs, attr_nums, tags, doc, created_ms, size) \
             VALUES ('docs', 'gone', '{\"department\": \"sales\"}', '{}', '{}', '', 0, 0)",
        ]
    };
    for sql in stray {
        sqlx::query(*sql).execute(&mut c).await.unwrap();
    }
    s.reindex_search().await.unwrap();
    assert_eq!(set(s, sales.clone()).await, sorted(&[CONTRACT, SCAN]));
    assert_eq!(found(s, q("поставки")).await, [CONTRACT]);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_docs")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(rows, 5);
}
both!(backfill);

async fn bad_input(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let check =
        |what: &str, r: Result<artstore_metadata::SearchPage, SearchError>, param: &str| match r {
            Err(e) => {
                assert_eq!(e.parameter(), Some(param), "{what}: {e}");
                let text = e.to_string().to_lowercase();
                assert!(
                    !text.contains("sql") && !text.contains("syntax error"),
                    "{what}: {e}"
                );
            }
            Ok(p) => panic!("{what}: accepted, {} hits", p.items.len()),
        };
    let queries: &[(&str, QueryError)] = &[
        ("\"unbalanced", QueryError::UnbalancedQuote),
        ("*", QueryError::MisplacedWildcard),
        ("a\0b", QueryError::Nul),
        ("-only", QueryError::OnlyNegative),
        ("OR", QueryError::DanglingOr),
        ("&&&", QueryError::NoTerms),
    ];
    for (text, want) in queries {
        let r = s.search(&q(text)).await;
        assert!(
            matches!(&r, Err(SearchError::Query(e)) if e == want),
            "{text:?}: {r:?}"
        );
        check(text, r, "q");
    }
    check("long q", s.search(&q(&"x".repeat(10_000))).await, "q");
    // 900 characters, but 2,700 bytes in one word: over what PostgreSQL accepts in a query.
    let r = s.search(&q(&"語".repeat(900))).await;
    assert!(
        matches!(&r, Err(SearchError::Query(QueryError::WordTooLong))),
        "{r:?}"
    );
    for limit in [0, 1001, u32::MAX] {
        check(
            "limit",
            s.search(&SearchQuery {
                limit: Some(limit),
                ..Default::default()
            })
            .await,
            "limit",
        );
    }
    check(
        "relevance without q",
        s.search(&SearchQuery {
            sort: Some("relevance".parse().unwrap()),
            ..Default::default()
        })
        .await,
        "sort",
    );
    for name in ["a b", "x;DROP TABLE objects", "", "ü", &"n".repeat(129)] {
        let query = SearchQuery {
            attrs: vec![attr(name, AttrCond::Exists(true))],
            ..Default::default()
        };
        let r = s.search(&query).await;
        let want = format!("attr.{}", name.chars().take(128).collect::<String>());
        check(name, r, &want);
    }
    check(
        "facet name",
        s.search(&SearchQuery {
            facets: vec![FacetField::Attr("a'b".into())],
            ..Default::default()
        })
        .await,
        "facets",
    );
    check(
        "no values",
        s.search(&SearchQuery {
            attrs: vec![attr("a", AttrCond::Equals(vec![]))],
            ..Default::default()
        })
        .await,
        "attr.a",
    );
    check(
        "nul value",
        s.search(&SearchQuery {
            prefix: Some("a\0".into()),
            ..Default::default()
        })
        .await,
        "prefix",
    );
    for ct in ["*/*", "image/*/x", "/*", "*"] {
        check(
            ct,
            s.search(&SearchQuery {
                content_type: Some(ct.into()),
                ..Default::default()
            })
            .await,
            "content_type",
        );
    }
    // Cursors: garbage, well-formed base64 of something else, one from another sort, and a
    // well-formed position whose key holds a NUL (PostgreSQL refuses such text).
    for forged in [
        "garbage!",
        "e30",
        "eyJzb3J0Ijoia2V5OmFzYyJ9",
        "eyJzb3J0Ijoia2V5OmFzYyIsImJ1Y2tldCI6ImIiLCJrZXkiOiJhXHUwMDAweiJ9",
    ] {
        let r = s
            .search(&SearchQuery {
                cursor: Some(forged.into()),
                ..Default::default()
            })
            .await;
        assert!(
            matches!(r, Err(SearchError::Cursor(CursorError::Malformed))),
            "{forged}: {r:?}"
        );
    }
    let page = s
        .search(&SearchQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();
    let r = s
        .search(&SearchQuery {
            cursor: Some(cursor.clone()),
            sort: Some("size".parse().unwrap()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(r, Err(SearchError::Cursor(CursorError::OtherSort))),
        "{r:?}"
    );
    // Engine syntax and SQL in q are only words: nothing breaks, nothing is dropped.
    for text in [
        "'; DROP TABLE objects; --",
        "a:* & !b | (c",
        "NEAR(a b)",
        "col:word ^x",
    ] {
        assert!(found(s, q(text)).await.is_empty(), "{text}");
    }
    // Nothing changed.
    assert_eq!(found(s, SearchQuery::default()).await.len(), 5);
    assert_eq!(found(s, q("поставки")).await, [CONTRACT]);
    // Parsing helpers name what they accept.
    assert!("sideways".parse::<Sort>().is_err());
    assert!("key:up".parse::<Sort>().is_err());
    assert!("attr.a b".parse::<FacetField>().is_err());
}
both!(bad_input);

/// Every write path of the index keeps search in step, and a refused write changes nothing.
async fn write_paths(db: &TestDb) {
    let s = &db.store;
    element(s, "docs", Mode::Edit).await;
    let customer = |v: &str| SearchQuery {
        attrs: vec![attr("customer", AttrCond::Equals(vec![v.into()]))],
        ..Default::default()
    };
    let first = rec(
        "docs",
        "inv/1.pdf",
        "application/pdf",
        10,
        1,
        &[("customer", "alpha")],
    );
    s.put_object(&first).await.unwrap();
    // Attributes changed in place (same data file).
    let edited = ObjectRecord {
        custom_attributes: [("customer".to_string(), "gamma".to_string())].into(),
        updated_ms: 2,
        ..first.clone()
    };
    s.update_object_with(
        "docs",
        "inv/1.pdf",
        |_| Ok::<_, ()>(edited.clone()),
        |r| async { Ok(r) },
    )
    .await
    .unwrap();
    assert_eq!(found(s, customer("gamma")).await, ["docs/inv/1.pdf"]);
    assert!(found(s, customer("alpha")).await.is_empty());
    // A write its rule refuses leaves search as it was.
    let refused = rec(
        "docs",
        "inv/1.pdf",
        "application/pdf",
        10,
        3,
        &[("customer", "delta")],
    );
    let r = s.put_object_if(&refused, |_| Err::<(), _>("no")).await;
    assert!(matches!(r, Err(artstore_metadata::Checked::Refused("no"))));
    assert!(found(s, customer("delta")).await.is_empty());
    assert!(found(s, q("delta")).await.is_empty());
    assert_eq!(found(s, q("gamma")).await, ["docs/inv/1.pdf"]);
    // Multipart completion.
    let upload = artstore_metadata::Upload {
        upload_id: "u1".into(),
        bucket: "docs".into(),
        key: "inv/2.pdf".into(),
        owner_id: "id-alice".into(),
        owner_name: "alice".into(),
        content_type: "application/pdf".into(),
        created_ms: 4,
        ..Default::default()
    };
    s.create_upload(&upload).await.unwrap();
    assert!(found(s, customer("epsilon")).await.is_empty());
    let done = rec(
        "docs",
        "inv/2.pdf",
        "application/pdf",
        99,
        5,
        &[("customer", "epsilon")],
    );
    s.complete_upload("u1", &done, |_| Ok::<(), ()>(()))
        .await
        .unwrap();
    assert_eq!(found(s, customer("epsilon")).await, ["docs/inv/2.pdf"]);
    assert_eq!(found(s, q("epsilon")).await, ["docs/inv/2.pdf"]);
}
both!(write_paths);

/// Two index handles (two gateway nodes) overwrite one key concurrently: search always
/// agrees with the object row that won.
async fn two_nodes(db: &TestDb) {
    let a = &db.store;
    element(a, "docs", Mode::Edit).await;
    let b = Store::connect(&db.url, SecretBox::new(&MasterKey::generate()))
        .await
        .unwrap();
    let mut writes = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let r = rec(
            "docs",
            "shared.pdf",
            "application/pdf",
            i,
            i,
            &[("v", &format!("w{i}"))],
        );
        writes.push(tokio::spawn(
            async move { store.put_object(&r).await.unwrap() },
        ));
    }
    for w in writes {
        w.await.unwrap();
    }
    let row = a.get_object("docs", "shared.pdf").await.unwrap().unwrap();
    let winner = row.custom_attributes["v"].clone();
    assert_eq!(found(a, q("shared")).await, ["docs/shared.pdf"]);
    assert_eq!(found(&b, q(&winner)).await, ["docs/shared.pdf"]);
    for i in 0..20 {
        let v = format!("w{i}");
        let hits = found(a, q(&v)).await.len();
        assert_eq!(hits, usize::from(v == winner), "{v}, winner {winner}");
        let by_attr = SearchQuery {
            attrs: vec![attr("v", AttrCond::Equals(vec![v.clone()]))],
            ..Default::default()
        };
        assert_eq!(
            found(&b, by_attr).await.len(),
            usize::from(v == winner),
            "{v}"
        );
    }
    b.close().await;
}
both!(two_nodes);

/// Object tags are filters and full-text words, and a tag change re-indexes in place.
async fn tags(db: &TestDb) {
    let s = &db.store;
    element(s, "docs", Mode::Edit).await;
    let mut tagged = rec("docs", "a.pdf", "application/pdf", 1, 1, &[]);
    tagged.tags = [("project".to_string(), "Северный".to_string())].into();
    s.put_object(&tagged).await.unwrap();
    s.put_object(&rec("docs", "b.pdf", "application/pdf", 1, 1, &[]))
        .await
        .unwrap();
    let by_tag = |v: &str| SearchQuery {
        tags: vec![TagFilter {
            key: "project".into(),
            value: v.into(),
        }],
        ..Default::default()
    };
    assert_eq!(found(s, by_tag("Северный")).await, ["docs/a.pdf"]);
    assert_eq!(found(s, q("северный")).await, ["docs/a.pdf"]);
    s.update_object_with(
        "docs",
        "a.pdf",
        |v| {
            let mut r = v.current.cloned().ok_or(())?;
            r.tags = [("project".to_string(), "south".to_string())].into();
            Ok::<_, ()>(r)
        },
        |r| async { Ok(r) },
    )
    .await
    .unwrap();
    assert!(found(s, by_tag("Северный")).await.is_empty());
    assert_eq!(found(s, by_tag("south")).await, ["docs/a.pdf"]);
}
both!(tags);

/// Per-object visibility (a bucket policy naming keys): hidden matches are neither returned nor
/// counted, and pages stay full until the end.
async fn visibility(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    for i in 0..30 {
        let key = if i % 3 == 0 {
            format!("secret/{i:02}")
        } else {
            format!("open/{i:02}")
        };
        s.put_object(&rec("docs", &key, "text/csv", 1, 1, &[("dept", "x")]))
            .await
            .unwrap();
    }
    let hide = |o: &ObjectRecord| !o.key.starts_with("secret/");
    let mut query = SearchQuery {
        checked_buckets: vec!["docs".into()],
        content_type: Some("text/csv".into()),
        limit: Some(4),
        facets: vec![FacetField::Bucket, FacetField::Attr("dept".into())],
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = s.search_visible(&query, &hide).await.unwrap();
        assert_eq!(
            page.facets[0].values[0].count, 20,
            "only visible objects count"
        );
        assert_eq!(page.facets[1].values[0].count, 20);
        let n = page.items.len();
        seen.extend(page.items.into_iter().map(|h| h.object.key));
        match page.next_cursor {
            Some(c) => {
                assert_eq!(n, 4, "a page before the last is full");
                query.cursor = Some(c);
            }
            None => break,
        }
    }
    let want: Vec<String> = (0..30)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("open/{i:02}"))
        .collect();
    assert_eq!(seen, want);
    // Buckets outside the checked ones are not asked about.
    let page = s
        .search_visible(
            &SearchQuery {
                checked_buckets: vec!["other".into()],
                content_type: Some("text/csv".into()),
                facets: vec![FacetField::ContentType],
                ..Default::default()
            },
            &|_| false,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 30);
    assert_eq!(page.facets[0].values[0].count, 30);
    // A checked bucket whose every match is hidden yields nothing, facets included.
    let page = s
        .search_visible(
            &SearchQuery {
                checked_buckets: vec!["docs".into(), "other".into()],
                facets: vec![FacetField::ContentType, FacetField::Attr("amount".into())],
                ..Default::default()
            },
            &|_| false,
        )
        .await
        .unwrap();
    assert!(page.items.is_empty() && page.next_cursor.is_none());
    assert!(page.facets.iter().all(|f| f.values.is_empty()));
}
both!(visibility);

/// The search rows of one bucket's objects, by key, as text: what a bulk load and a write
/// must both produce.
async fn search_rows(db: &TestDb, bucket: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let mut out = Vec::new();
    if db.url.starts_with("sqlite:") {
        let rows = sqlx::query(
            "SELECT d.key, a.kind, a.name, a.value, COALESCE(CAST(a.num_value AS TEXT), '-') \
             FROM search_attrs a JOIN search_docs d ON d.id = a.doc_id WHERE d.bucket = $1 \
             ORDER BY d.key, a.kind, a.name",
        )
        .bind(bucket)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in rows {
            let cols: Vec<String> = (0..5).map(|i| r.get::<String, _>(i)).collect();
            out.push(cols.join("|"));
        }
        // The indexed words themselves, read back from the FTS index.
        sqlx::query(
            "CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, 'search_fts', 'instance')",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let rows = sqlx::query(
            "SELECT d.key, w.term, w.col || ':' || CAST(w.offset AS TEXT) FROM temp.words w \
             JOIN search_docs d ON d.id = w.doc WHERE d.bucket = $1 \
             ORDER BY d.key, w.col, w.offset",
        )
        .bind(bucket)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in rows {
            let cols: Vec<String> = (0..3).map(|i| r.get::<String, _>(i)).collect();
            out.push(cols.join("|"));
        }
    } else {
        let rows = sqlx::query(
            "SELECT key, attrs::text, attr_nums::text, tags::text, doc::text FROM search_docs \
             WHERE bucket = $1 ORDER BY key",
        )
        .bind(bucket)
        .fetch_all(&mut c)
        .await
        .unwrap();
        for r in rows {
            let cols: Vec<String> = (0..5).map(|i| r.get::<String, _>(i)).collect();
            out.push(cols.join("|"));
        }
    }
    out
}

/// A bulk-loaded object has the objects row, search rows and counters a written one has.
async fn bulk_load(db: &TestDb) {
    let s = &db.store;
    element(s, "put", Mode::Edit).await;
    element(s, "bulk", Mode::Edit).await;
    let objects: Vec<ObjectRecord> = (0..1200)
        .map(|i| {
            let mut r = rec(
                "put",
                &format!("sales/2024/c{:04}/Договор поставки №{i}.pdf", i % 37),
                if i % 3 == 0 {
                    "application/pdf"
                } else {
                    "text/plain"
                },
                100 + i,
                1_700_000_000_000 + i,
                &[
                    ("department", if i % 2 == 0 { "sales" } else { "legal" }),
                    ("amount", &format!("{}.5", i * 10)),
                    ("signed", "2024-03-01"),
                    ("description", "Annual supply agreement with ООО Ромашка"),
                ],
            );
            if i % 5 == 0 {
                r.tags.insert("status".into(), "final".into());
            }
            r
        })
        .collect();
    for o in &objects {
        s.put_object(o).await.unwrap();
    }
    let bulk: Vec<ObjectRecord> = objects
        .iter()
        .map(|o| ObjectRecord {
            bucket: "bulk".into(),
            ..o.clone()
        })
        .collect();
    // More than one INSERT's worth of rows, so the statement splitting is exercised.
    s.bulk_load(&bulk).await.unwrap();

    let (put_rows, bulk_rows) = (search_rows(db, "put").await, search_rows(db, "bulk").await);
    assert!(put_rows.len() >= objects.len(), "{}", put_rows.len());
    assert_eq!(put_rows, bulk_rows);
    for o in objects.iter().step_by(97) {
        let b = s.get_object("bulk", &o.key).await.unwrap().unwrap();
        assert_eq!(
            ObjectRecord {
                bucket: "put".into(),
                ..b
            },
            *o
        );
    }
    let (p, b) = (
        s.get_element("put").await.unwrap().unwrap(),
        s.get_element("bulk").await.unwrap().unwrap(),
    );
    assert_eq!(
        (p.object_count, p.used_bytes),
        (b.object_count, b.used_bytes)
    );
    assert_eq!(b.object_count, objects.len() as i64);
    let query = SearchQuery {
        q: Some("поставки ромашка".into()),
        attrs: vec![attr("department", AttrCond::Equals(vec!["sales".into()]))],
        tags: vec![TagFilter {
            key: "status".into(),
            value: "final".into(),
        }],
        limit: Some(1000),
        sort: Some(Sort {
            field: SortField::Key,
            desc: false,
        }),
        ..Default::default()
    };
    let hits = found(s, query).await;
    let in_bulk = hits.iter().filter(|h| h.starts_with("bulk/")).count();
    assert_eq!(in_bulk, objects.len() / 10);
    assert_eq!(hits.len(), 2 * in_bulk);

    // A key that exists already fails the whole load and leaves every row as it was.
    let again = vec![
        ObjectRecord {
            key: "new/one.txt".into(),
            ..bulk[0].clone()
        },
        bulk[1].clone(),
    ];
    assert!(s.bulk_load(&again).await.is_err());
    assert!(s.get_object("bulk", "new/one.txt").await.unwrap().is_none());
    assert_eq!(search_rows(db, "bulk").await, bulk_rows);
    let after = s.get_element("bulk").await.unwrap().unwrap();
    assert_eq!(
        (after.object_count, after.used_bytes),
        (b.object_count, b.used_bytes)
    );
}
both!(bulk_load);

/// Created time and size filters and sorts follow an overwrite that changes them (PostgreSQL
/// reads the copies in the search row; SQLite the objects row).
async fn overwrite_moves_sort_columns(db: &TestDb) {
    let s = &db.store;
    corpus(s).await;
    let by_size = SearchQuery {
        sort: Some(Sort {
            field: SortField::Size,
            desc: true,
        }),
        ..Default::default()
    };
    assert_eq!(found(s, by_size.clone()).await[0], REPORT);
    let newer = SearchQuery {
        created_from: Some(6000),
        ..Default::default()
    };
    assert!(found(s, newer.clone()).await.is_empty());
    let mut scan = s.get_object("docs", &SCAN[5..]).await.unwrap().unwrap();
    scan.size = 9000;
    scan.created_ms = 7000;
    s.put_object(&scan).await.unwrap();
    assert_eq!(found(s, by_size.clone()).await[..2], [SCAN, REPORT]);
    assert_eq!(found(s, newer).await, [SCAN]);
    let big_sales = SearchQuery {
        size_min: Some(5000),
        attrs: vec![attr("department", AttrCond::Equals(vec!["sales".into()]))],
        ..Default::default()
    };
    assert_eq!(found(s, big_sales).await, [SCAN]);
    // Page by page by created time, newest first: every object once, in order.
    let mut q = SearchQuery {
        limit: Some(2),
        sort: Some(Sort {
            field: SortField::Created,
            desc: true,
        }),
        ..Default::default()
    };
    let mut all = Vec::new();
    loop {
        let page = s.search(&q).await.unwrap();
        all.extend(
            page.items
                .iter()
                .map(|h| format!("{}/{}", h.object.bucket, h.object.key)),
        );
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(all, [SCAN, README, REPORT, SUPPLY, CONTRACT]);
}
both!(overwrite_moves_sort_columns);

/// Migration 0012 on PostgreSQL fills the copied columns of the search rows that exist when
/// it runs: reverted by hand, then applied again by `migrate`.
#[tokio::test]
async fn migration_0012_fills_existing_rows() {
    let Some(db) = open("postgres").await else {
        return;
    };
    let s = &db.store;
    corpus(s).await;
    use sqlx::Connection;
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for sql in [
        "DROP INDEX search_docs_created",
        "DROP INDEX search_docs_size",
        "DROP INDEX search_docs_key",
        "ALTER TABLE search_docs DROP COLUMN created_ms",
        "ALTER TABLE search_docs DROP COLUMN size",
        "CREATE INDEX objects_bucket_created ON objects (bucket, created_ms, key)",
        "CREATE INDEX objects_bucket_size ON objects (bucket, size, key)",
        "DELETE FROM _sqlx_migrations WHERE version = 12",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    s.migrate().await.unwrap();
    let wrong: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM search_docs d JOIN objects o ON o.bucket = d.bucket AND o.key = d.key \
         WHERE d.created_ms <> o.created_ms OR d.size <> o.size",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM search_docs")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!((wrong, rows), (0, 5));
    let q = SearchQuery {
        created_from: Some(2000),
        created_to: Some(4000),
        sort: Some(Sort {
            field: SortField::Created,
            desc: false,
        }),
        ..Default::default()
    };
    assert_eq!(found(s, q).await, [SUPPLY, REPORT, SCAN]);
}

/// Every page of `query`, `limit` rows a page, following the cursors to the end.
async fn every_page(s: &Store, query: SearchQuery, limit: u32) -> Vec<SearchPage> {
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .search(&SearchQuery {
                limit: Some(limit),
                cursor,
                ..query.clone()
            })
            .await
            .unwrap();
        cursor = page.next_cursor.clone();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
    }
}

/// Relevance is where the words match: 4 in the file name, 2 in the folders, 1 elsewhere,
/// added up over the groups of `q`; ties by bucket then key, all descending. The order is
/// spelled out, so both databases are held to the same one.
async fn relevance(db: &TestDb) {
    let s = &db.store;
    element(s, "a", Mode::Edit).await;
    element(s, "b", Mode::Edit).await;
    type Doc<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let docs: &[Doc] = &[
        ("a", "alpha/x/plain.txt", &[]),
        ("a", "misc/notes.txt", &[("description", "alpha beta")]),
        ("a", "misc/alpha report.txt", &[]),
        ("b", "misc/alpha.txt", &[("description", "beta")]),
        ("b", "alpha/beta.txt", &[]),
        ("b", "zeta/other.txt", &[("status", "alphabet")]),
        ("b", "misc/alpha beta.txt", &[]),
    ];
    for (b, k, attrs) in docs {
        s.put_object(&rec(b, k, "text/plain", 1, 1, attrs))
            .await
            .unwrap();
    }
    let scored = |page: &SearchPage| -> Vec<(String, f64)> {
        page.items
            .iter()
            .map(|h| {
                let o = &h.object;
                (format!("{}/{}", o.bucket, o.key), h.score.unwrap())
            })
            .collect()
    };
    let want_alpha = [
        ("b/misc/alpha.txt", 4.0),
        ("b/misc/alpha beta.txt", 4.0),
        ("a/misc/alpha report.txt", 4.0),
        ("b/alpha/beta.txt", 2.0),
        ("a/alpha/x/plain.txt", 2.0),
        ("a/misc/notes.txt", 1.0),
    ];
    let want: Vec<(String, f64)> = want_alpha
        .iter()
        .map(|(k, s)| (k.to_string(), *s))
        .collect();
    let page = s.search(&q("alpha")).await.unwrap();
    assert_eq!(scored(&page), want);
    // Page by page through the levels, one row at a time, and ascending: the same rows.
    for limit in [1, 2, 4] {
        let got: Vec<(String, f64)> = every_page(s, q("alpha"), limit)
            .await
            .iter()
            .flat_map(scored)
            .collect();
        assert_eq!(got, want, "limit {limit}");
    }
    let asc = s
        .search(&SearchQuery {
            sort: Some("relevance:asc".parse().unwrap()),
            ..q("alpha")
        })
        .await
        .unwrap();
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(scored(&asc), rev);
    // A prefix matches `alphabet` in an attribute too; OR takes the best atom of the group.
    let page = s.search(&q("alph*")).await.unwrap();
    assert_eq!(page.items.len(), 7);
    assert!(scored(&page).contains(&("b/zeta/other.txt".to_owned(), 1.0)));
    let page = s.search(&q("plain OR alpha")).await.unwrap();
    assert!(scored(&page).contains(&("a/alpha/x/plain.txt".to_owned(), 4.0)));
    // Two groups add up: alpha (name 4, folder 2, elsewhere 1) + beta (likewise).
    let page = s.search(&q("alpha beta")).await.unwrap();
    assert_eq!(
        scored(&page),
        [
            ("b/misc/alpha beta.txt".to_owned(), 8.0),
            ("b/alpha/beta.txt".to_owned(), 6.0),
            ("b/misc/alpha.txt".to_owned(), 5.0),
            ("a/misc/notes.txt".to_owned(), 2.0),
        ]
    );
    let pages = every_page(s, q("alpha beta"), 1).await;
    assert_eq!(pages.iter().map(|p| p.items.len()).sum::<usize>(), 4);
    // Negation and filters apply at every level.
    let page = s
        .search(&SearchQuery {
            buckets: vec!["a".into()],
            ..q("alpha -report")
        })
        .await
        .unwrap();
    assert_eq!(
        scored(&page),
        [
            ("a/alpha/x/plain.txt".to_owned(), 2.0),
            ("a/misc/notes.txt".to_owned(), 1.0),
        ]
    );
    // A phrase never spans two fields: `x plain` is folder then file name.
    assert!(s.search(&q("\"x plain\"")).await.unwrap().items.is_empty());
    assert_eq!(
        s.search(&q("\"alpha report\"")).await.unwrap().items.len(),
        1
    );
}
both!(relevance);
