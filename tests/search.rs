//! Search through the real binary (issue 9, items 1, 2, 3, 5 and the bad input): the admin
//! API's GET and POST with every filter, sort, cursor and facet; the result fields; every S3
//! write reflected at once, also across two nodes; access decided as for HeadObject (grants,
//! roles, bucket policies, modes); every bad parameter a 400 naming it with the data unchanged;
//! and the `artstore search` CLI.

mod common;
mod identity;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use identity::*;
use s3::primitives::ByteStream;
use s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective, Tag, Tagging};
use serde_json::{Value, json};

const SEARCH: &str = "/api/v1/search";
const WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn query_string(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn get_search(srv: &Server, auth: As<'_>, params: &[(&str, &str)]) -> ApiResp {
    let path = format!("{SEARCH}?{}", query_string(params));
    call(srv, Method::GET, &path, auth, None).await
}

async fn post_search(srv: &Server, auth: As<'_>, body: &Value) -> ApiResp {
    call(srv, Method::POST, SEARCH, auth, Some(&body.to_string())).await
}

/// `bucket/key` of every item, in order.
fn found(r: &ApiResp) -> Vec<String> {
    let j = r.ok(200);
    j["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", r.text))
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["bucket"].as_str().unwrap(),
                i["key"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(v: Vec<String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every page of a GET search, following `next_cursor`; asserts every page but the last is full.
async fn walk(srv: &Server, auth: &As<'_>, params: &[(&str, &str)], limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let lim = limit.to_string();
    loop {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        p.push(("limit", &lim));
        if let Some(c) = &cursor {
            p.push(("cursor", c));
        }
        let r = get_search(srv, auth.clone_as(), &p).await;
        let page = found(&r);
        let next = r.json["next_cursor"].as_str().map(str::to_owned);
        if next.is_some() {
            assert_eq!(
                page.len(),
                limit,
                "a page before the last is short: {}",
                r.text
            );
        }
        all.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

trait CloneAs {
    fn clone_as(&self) -> As<'_>;
}

impl CloneAs for As<'_> {
    fn clone_as(&self) -> As<'_> {
        match self {
            As::None => As::None,
            As::Bearer(t) => As::Bearer(t),
            As::SigV4(a, s) => As::SigV4(a, s),
        }
    }
}

struct Doc<'a> {
    bucket: &'a str,
    key: &'a str,
    content_type: &'a str,
    meta: &'a [(&'a str, &'a str)],
    tags: &'a str,
    body: Vec<u8>,
}

async fn put_doc(c: &s3::Client, d: &Doc<'_>) {
    let mut req = c
        .put_object()
        .bucket(d.bucket)
        .key(d.key)
        .content_type(d.content_type)
        .body(ByteStream::from(d.body.clone()));
    for (k, v) in d.meta {
        req = req.metadata(*k, *v);
    }
    if !d.tags.is_empty() {
        req = req.tagging(d.tags);
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("put {}/{}: {e:?}", d.bucket, d.key));
}

/// Two buckets of documents with attributes and tags.
async fn corpus(srv: &Server) {
    let c = srv.client();
    create_bucket(&c, "docs").await;
    create_bucket(&c, "other").await;
    let docs: Vec<Doc> = vec![
        Doc {
            bucket: "docs",
            key: "contracts/2024/Договор поставки 2024.pdf",
            content_type: "application/pdf",
            meta: &[
                ("dept", "sales"),
                ("year", "2024"),
                ("amount", "1500"),
                ("signed", "2024-03-01"),
            ],
            tags: "class=public",
            body: pattern(1000, 1),
        },
        Doc {
            bucket: "docs",
            key: "contracts/2023/Supply agreement.docx",
            content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            meta: &[
                ("dept", "legal"),
                ("year", "2023"),
                ("amount", "900"),
                ("signed", "2023-05-01"),
            ],
            tags: "class=internal",
            body: pattern(500, 2),
        },
        Doc {
            bucket: "docs",
            key: "reports/annual report 2023.pdf",
            content_type: "application/pdf",
            meta: &[("dept", "finance"), ("year", "2023"), ("a.b", "dotted")],
            tags: "",
            body: pattern(3000, 3),
        },
        Doc {
            bucket: "docs",
            key: "images/scan-001.png",
            content_type: "image/png",
            meta: &[("dept", "sales")],
            tags: "",
            body: pattern(200, 4),
        },
        Doc {
            bucket: "other",
            key: "notes/readme.txt",
            content_type: "text/plain",
            meta: &[("amount", "10000")],
            tags: "class=public",
            body: pattern(50, 5),
        },
    ];
    for d in &docs {
        put_doc(&c, d).await;
    }
}

const PDF_RU: &str = "docs/contracts/2024/Договор поставки 2024.pdf";
const DOCX: &str = "docs/contracts/2023/Supply agreement.docx";
const REPORT: &str = "docs/reports/annual report 2023.pdf";
const SCAN: &str = "docs/images/scan-001.png";
const NOTE: &str = "other/notes/readme.txt";

/// GET and POST of the same search give the same answer; returns the GET answer.
async fn both(srv: &Server, tok: &str, get: &[(&str, &str)], post: Value) -> ApiResp {
    let g = get_search(srv, As::Bearer(tok), get).await;
    let p = post_search(srv, As::Bearer(tok), &post).await;
    g.ok(200);
    let strip = |mut v: Value| {
        // Scores are the same numbers; compare everything.
        v.as_object_mut().map(|o| o.remove("request_id"));
        v
    };
    assert_eq!(
        strip(g.json.clone()),
        strip(p.json.clone()),
        "GET {get:?} vs POST {post}"
    );
    g
}

fn element_cli(srv: &Server, args: &[&str]) {
    let mut all = vec!["element"];
    all.extend_from_slice(args);
    let (ok, _, err) = srv.cli(&all);
    assert!(ok, "artstore element {args:?} failed: {err}");
}

async fn set_policy(c: &s3::Client, bucket: &str, statements: Value) {
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    c.put_bucket_policy()
        .bucket(bucket)
        .policy(doc.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put policy {doc}: {e:?}"));
}

async fn set_grants(srv: &Server, admin: &str, id: &str, grants: Value) {
    call(
        srv,
        Method::PUT,
        &format!("/api/v1/service-accounts/{id}/grants"),
        As::Bearer(admin),
        Some(&json!({ "grants": grants }).to_string()),
    )
    .await
    .ok(200);
}

fn facet(r: &ApiResp, name: &str) -> Vec<(String, i64)> {
    r.ok(200)["facets"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no facet {name}: {}", r.text))
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap().to_owned(),
                v["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

// ---------------------------------------------------------------------------------------------
// the API
// ---------------------------------------------------------------------------------------------

storage_test!(filters_sorts_cursors_and_facets, |srv| async move {
    corpus(&srv).await;
    let tok = admin_token(&srv).await;
    let t = tok.as_str();

    // Full text, Unicode and case-insensitive, GET = POST.
    let r = both(&srv, t, &[("q", "поставки")], json!({"q": "поставки"})).await;
    assert_eq!(found(&r), [PDF_RU]);
    assert!(r.json["items"][0]["score"].is_number(), "{}", r.text);
    let r = both(&srv, t, &[("q", "ПОСТАВКИ")], json!({"q": "ПОСТАВКИ"})).await;
    assert_eq!(found(&r), [PDF_RU]);
    let r = both(
        &srv,
        t,
        &[("q", "annual OR supply")],
        json!({"q": "annual OR supply"}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[DOCX, REPORT]));
    let r = both(
        &srv,
        t,
        &[("q", "\"annual report\"")],
        json!({"q": "\"annual report\""}),
    )
    .await;
    assert_eq!(found(&r), [REPORT]);
    let r = both(&srv, t, &[("q", "agree*")], json!({"q": "agree*"})).await;
    assert_eq!(found(&r), [DOCX]);
    let r = both(
        &srv,
        t,
        &[("q", "2023 -annual")],
        json!({"q": "2023 -annual"}),
    )
    .await;
    assert_eq!(found(&r), [DOCX]);
    // Attribute values and tags are in the text too.
    let r = both(&srv, t, &[("q", "finance")], json!({"q": "finance"})).await;
    assert_eq!(found(&r), [REPORT]);
    assert!(
        found(&get_search(&srv, As::Bearer(t), &[("q", "public")]).await)
            .contains(&NOTE.to_owned())
    );

    // Buckets: repeated = any of them.
    let r = both(&srv, t, &[("bucket", "other")], json!({"bucket": "other"})).await;
    assert_eq!(found(&r), [NOTE]);
    let r = both(
        &srv,
        t,
        &[("bucket", "other"), ("bucket", "docs")],
        json!({"bucket": ["other", "docs"]}),
    )
    .await;
    assert_eq!(found(&r).len(), 5);
    let r = both(
        &srv,
        t,
        &[("prefix", "contracts/")],
        json!({"prefix": "contracts/"}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, DOCX]));
    let r = both(
        &srv,
        t,
        &[("content_type", "application/pdf")],
        json!({"content_type": "application/pdf"}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, REPORT]));
    let r = both(
        &srv,
        t,
        &[("content_type", "image/*")],
        json!({"content_type": "image/*"}),
    )
    .await;
    assert_eq!(found(&r), [SCAN]);
    let r = both(
        &srv,
        t,
        &[("size_min", "500"), ("size_max", "1000")],
        json!({"size_min": 500, "size_max": 1000}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, DOCX]));
    let r = both(
        &srv,
        t,
        &[("mode", "edit"), ("bucket", "other")],
        json!({"mode": "edit", "bucket": "other"}),
    )
    .await;
    assert_eq!(found(&r), [NOTE]);
    let r = both(&srv, t, &[("mode", "ar")], json!({"mode": "ar"})).await;
    assert!(found(&r).is_empty());

    // Owner: the root account wrote everything.
    let all = get_search(&srv, As::Bearer(t), &[]).await;
    let owner = all.json["items"][0]["owner"].clone();
    let (oid, oname) = (
        owner["id"].as_str().unwrap(),
        owner["name"].as_str().unwrap(),
    );
    for who in [oid, oname] {
        let r = both(&srv, t, &[("owner", who)], json!({"owner": who})).await;
        assert_eq!(found(&r).len(), 5);
    }
    let r = both(&srv, t, &[("owner", "nobody")], json!({"owner": "nobody"})).await;
    assert!(found(&r).is_empty());

    // Created: bounds taken from the items themselves (inclusive).
    let by_created = get_search(&srv, As::Bearer(t), &[("sort", "created:asc")]).await;
    let created: Vec<String> = by_created.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["created"].as_str().unwrap().to_owned())
        .collect();
    let order = found(&by_created);
    let r = both(
        &srv,
        t,
        &[("created_from", &created[4])],
        json!({"created_from": created[4]}),
    )
    .await;
    assert!(found(&r).contains(&order[4]), "{}", r.text);
    let r = both(
        &srv,
        t,
        &[("created_to", &created[0])],
        json!({"created_to": created[0]}),
    )
    .await;
    assert!(found(&r).contains(&order[0]), "{}", r.text);
    let r = both(
        &srv,
        t,
        &[("created_from", "2999-01-01T00:00:00Z")],
        json!({"created_from": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert!(found(&r).is_empty());
    let r = both(
        &srv,
        t,
        &[("created_to", "2000-01-01T00:00:00+03:00")],
        json!({"created_to": "2000-01-01T00:00:00+03:00"}),
    )
    .await;
    assert!(found(&r).is_empty());

    // Attributes: exact (several = any), prefix, ranges numeric and ISO dates, exists.
    let r = both(
        &srv,
        t,
        &[("attr.dept", "sales")],
        json!({"attr.dept": "sales"}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, SCAN]));
    let r = both(
        &srv,
        t,
        &[("attr.dept", "legal"), ("attr.dept", "finance")],
        json!({"attr.dept": ["legal", "finance"]}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[DOCX, REPORT]));
    let r = both(
        &srv,
        t,
        &[("attr.dept.prefix", "fin")],
        json!({"attr.dept.prefix": "fin"}),
    )
    .await;
    assert_eq!(found(&r), [REPORT]);
    // 900 < 1500 < 10000 numerically (not as text).
    let r = both(
        &srv,
        t,
        &[("attr.amount.gte", "1000")],
        json!({"attr.amount.gte": "1000"}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, NOTE]));
    let r = both(
        &srv,
        t,
        &[("attr.amount.lte", "1500")],
        json!({"attr.amount.lte": 1500}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, DOCX]));
    let r = both(
        &srv,
        t,
        &[
            ("attr.signed.gte", "2024-01-01"),
            ("attr.signed.lte", "2024-12-31"),
        ],
        json!({"attr.signed.gte": "2024-01-01", "attr.signed.lte": "2024-12-31"}),
    )
    .await;
    assert_eq!(found(&r), [PDF_RU]);
    let r = both(
        &srv,
        t,
        &[("attr.amount.exists", "true")],
        json!({"attr.amount.exists": true}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, DOCX, NOTE]));
    let r = both(
        &srv,
        t,
        &[("attr.amount.exists", "false")],
        json!({"attr.amount.exists": false}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[REPORT, SCAN]));
    // A dotted name: the last segment is an operator only when it is one.
    let r = both(
        &srv,
        t,
        &[("attr.a.b", "dotted")],
        json!({"attr.a.b": "dotted"}),
    )
    .await;
    assert_eq!(found(&r), [REPORT]);
    let r = both(
        &srv,
        t,
        &[("attr.a.b.eq", "dotted")],
        json!({"attr.a.b.eq": "dotted"}),
    )
    .await;
    assert_eq!(found(&r), [REPORT]);
    let r = both(
        &srv,
        t,
        &[("attr.a.b.exists", "true")],
        json!({"attr.a.b.exists": "true"}),
    )
    .await;
    assert_eq!(found(&r), [REPORT]);
    // Tags.
    let r = both(
        &srv,
        t,
        &[("tag.class", "public")],
        json!({"tag.class": "public"}),
    )
    .await;
    assert_eq!(set(found(&r)), names(&[PDF_RU, NOTE]));
    // Everything at once (AND).
    let r = both(&srv, t, &[("q", "2024"), ("bucket", "docs"), ("attr.dept", "sales"), ("tag.class", "public"), ("content_type", "application/*")], json!({"q": "2024", "bucket": ["docs"], "attr.dept": ["sales"], "tag.class": "public", "content_type": "application/*"})).await;
    assert_eq!(found(&r), [PDF_RU]);

    // Sorts.
    let r = both(&srv, t, &[("sort", "key")], json!({"sort": "key"})).await;
    let keys: Vec<String> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let r = both(
        &srv,
        t,
        &[("sort", "key:desc")],
        json!({"sort": "key:desc"}),
    )
    .await;
    let mut rev: Vec<String> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_owned())
        .collect();
    rev.reverse();
    assert_eq!(rev, sorted);
    let r = both(
        &srv,
        t,
        &[("sort", "size:desc")],
        json!({"sort": "size:desc"}),
    )
    .await;
    let sizes: Vec<i64> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["size"].as_i64().unwrap())
        .collect();
    assert_eq!(sizes, [3000, 1000, 500, 200, 50]);
    let r = both(&srv, t, &[("sort", "size")], json!({"sort": "size:asc"})).await;
    assert_eq!(found(&r).first().map(String::as_str), Some(NOTE));
    let r = both(
        &srv,
        t,
        &[("sort", "created:desc")],
        json!({"sort": "created:desc"}),
    )
    .await;
    let mut desc = found(&r);
    desc.reverse();
    assert_eq!(desc, order);
    let r = both(
        &srv,
        t,
        &[("q", "2023 OR 2024"), ("sort", "relevance")],
        json!({"q": "2023 OR 2024", "sort": "relevance:desc"}),
    )
    .await;
    let scores: Vec<f64> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Cursor paging, every sort: the pages add up to the whole answer.
    for sort in [
        "key",
        "key:desc",
        "created",
        "created:desc",
        "size",
        "size:desc",
    ] {
        let whole = found(&get_search(&srv, As::Bearer(t), &[("sort", sort)]).await);
        assert_eq!(
            walk(&srv, &As::Bearer(t), &[("sort", sort)], 2).await,
            whole,
            "{sort}"
        );
    }
    let whole = found(&get_search(&srv, As::Bearer(t), &[("q", "2023 OR 2024 OR public")]).await);
    assert_eq!(
        walk(&srv, &As::Bearer(t), &[("q", "2023 OR 2024 OR public")], 1).await,
        whole
    );
    // The cursor through POST too.
    let p1 = post_search(&srv, As::Bearer(t), &json!({"sort": "key", "limit": 3})).await;
    let c = p1.ok(200)["next_cursor"].as_str().expect("more").to_owned();
    let p2 = post_search(
        &srv,
        As::Bearer(t),
        &json!({"sort": "key", "limit": 3, "cursor": c}),
    )
    .await;
    let mut paged = found(&p1);
    paged.extend(found(&p2));
    assert!(p2.json["next_cursor"].is_null());
    assert_eq!(
        paged,
        found(&get_search(&srv, As::Bearer(t), &[("sort", "key")]).await)
    );

    // Facets: over the whole match, not the page; comma list or JSON list.
    let r = both(
        &srv,
        t,
        &[("facets", "content_type,bucket,attr.dept"), ("limit", "1")],
        json!({"facets": ["content_type", "bucket", "attr.dept"], "limit": 1}),
    )
    .await;
    assert_eq!(found(&r).len(), 1);
    assert_eq!(facet(&r, "bucket"), pairs(&[("docs", 4), ("other", 1)]));
    assert_eq!(
        facet(&r, "content_type")[0],
        ("application/pdf".to_owned(), 2)
    );
    assert_eq!(facet(&r, "content_type").len(), 4);
    assert_eq!(
        facet(&r, "attr.dept"),
        pairs(&[("sales", 2), ("finance", 1), ("legal", 1)])
    );
    let p = post_search(
        &srv,
        As::Bearer(t),
        &json!({"facets": "bucket", "q": "2023"}),
    )
    .await;
    assert_eq!(facet(&p, "bucket"), pairs(&[("docs", 2)]));
    // No facets asked: none in the answer.
    assert!(all.json.get("facets").is_none(), "{}", all.text);

    // A stale cursor (the object it ends on was deleted since) still continues right after it.
    let whole = found(&get_search(&srv, As::Bearer(t), &[("sort", "key")]).await);
    let p1 = get_search(&srv, As::Bearer(t), &[("sort", "key"), ("limit", "2")]).await;
    let c = p1.json["next_cursor"].as_str().expect("more").to_owned();
    let last = &found(&p1)[1];
    let (b, k) = last.split_once('/').unwrap();
    srv.client()
        .delete_object()
        .bucket(b)
        .key(k)
        .send()
        .await
        .expect("delete");
    let p2 = get_search(&srv, As::Bearer(t), &[("sort", "key"), ("cursor", &c)]).await;
    assert_eq!(found(&p2), whole[2..].to_vec());
});

storage_test!(item_fields, |srv| async move {
    let admin = admin_token(&srv).await;
    let writer = create_account(&srv, &admin, "svc-writer", "user").await;
    let c = srv.client_with(&writer.client_id, &writer.secret);
    srv.client()
        .create_bucket()
        .bucket("fields")
        .send()
        .await
        .expect("create bucket");
    let data = pattern(4321, 9);
    put_doc(
        &c,
        &Doc {
            bucket: "fields",
            key: "a/Договор поставки 2024.pdf",
            content_type: "application/pdf",
            meta: &[("customer", "C-17"), ("description", "Годовой договор")],
            tags: "class=public&year=2024",
            body: data.clone(),
        },
    )
    .await;
    let head = c
        .head_object()
        .bucket("fields")
        .key("a/Договор поставки 2024.pdf")
        .send()
        .await
        .expect("head");
    let r = get_search(&srv, As::Bearer(&admin), &[("q", "поставки")]).await;
    let items = r.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{}", r.text);
    let i = &items[0];
    assert_eq!(i["bucket"], "fields");
    assert_eq!(i["key"], "a/Договор поставки 2024.pdf");
    assert_eq!(i["size"], 4321);
    assert_eq!(
        format!("\"{}\"", i["etag"].as_str().unwrap()),
        head.e_tag().unwrap()
    );
    assert_eq!(i["etag"], md5_hex(&data));
    assert_eq!(i["checksum_sha256"], sha256_hex(&data));
    assert_eq!(i["content_type"], "application/pdf");
    let created = time::OffsetDateTime::parse(
        i["created"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("created is RFC 3339");
    let updated = time::OffsetDateTime::parse(
        i["updated"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("updated is RFC 3339");
    let modified = head.last_modified().unwrap().secs();
    assert!(
        (updated.unix_timestamp() - modified).abs() <= 1,
        "{updated} vs {modified}"
    );
    assert!(created <= updated);
    assert_eq!(i["owner"], json!({"id": writer.id, "name": "svc-writer"}));
    assert_eq!(
        i["attributes"],
        json!({"customer": "C-17", "description": "Годовой договор"})
    );
    assert_eq!(i["tags"], json!({"class": "public", "year": "2024"}));
    assert_eq!(i["mode"], "edit");
    assert!(i["restore"].is_null());
    assert!(i["score"].as_f64().is_some_and(f64::is_finite));
    // The description is searchable, in any case.
    let r = get_search(&srv, As::Bearer(&admin), &[("q", "ГОДОВОЙ")]).await;
    assert_eq!(found(&r), ["fields/a/Договор поставки 2024.pdf"]);
    // Without q there is no score.
    let r = get_search(&srv, As::Bearer(&admin), &[("bucket", "fields")]).await;
    assert!(r.json["items"][0].get("score").is_none(), "{}", r.text);
});

// ---------------------------------------------------------------------------------------------
// consistency with every write
// ---------------------------------------------------------------------------------------------

storage_test!(every_write_is_found_at_once, |srv| async move {
    let tok = admin_token(&srv).await;
    let t = tok.as_str();
    let c = srv.client();
    create_bucket(&c, "live").await;
    let by_attr = |v: &'static str| [("attr.state", v), ("bucket", "live")];

    // PUT.
    put_doc(
        &c,
        &Doc {
            bucket: "live",
            key: "k1",
            content_type: "text/plain",
            meta: &[("state", "draft")],
            tags: "",
            body: b"one".to_vec(),
        },
    )
    .await;
    assert_eq!(
        found(&get_search(&srv, As::Bearer(t), &by_attr("draft")).await),
        ["live/k1"]
    );
    // Overwrite: the old state is gone, the new one is there.
    put_doc(
        &c,
        &Doc {
            bucket: "live",
            key: "k1",
            content_type: "text/plain",
            meta: &[("state", "final")],
            tags: "",
            body: b"two!".to_vec(),
        },
    )
    .await;
    assert!(found(&get_search(&srv, As::Bearer(t), &by_attr("draft")).await).is_empty());
    let r = get_search(&srv, As::Bearer(t), &by_attr("final")).await;
    assert_eq!(found(&r), ["live/k1"]);
    assert_eq!(r.json["items"][0]["size"], 4);
    // CopyObject onto itself with REPLACE: new metadata.
    c.copy_object()
        .bucket("live")
        .key("k1")
        .copy_source("live/k1")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("state", "approved")
        .content_type("text/markdown")
        .send()
        .await
        .expect("copy replace");
    assert!(found(&get_search(&srv, As::Bearer(t), &by_attr("final")).await).is_empty());
    let r = get_search(&srv, As::Bearer(t), &by_attr("approved")).await;
    assert_eq!(found(&r), ["live/k1"]);
    assert_eq!(r.json["items"][0]["content_type"], "text/markdown");
    // CopyObject to a new key.
    c.copy_object()
        .bucket("live")
        .key("k2")
        .copy_source("live/k1")
        .send()
        .await
        .expect("copy");
    assert_eq!(
        set(found(
            &get_search(&srv, As::Bearer(t), &by_attr("approved")).await
        )),
        names(&["live/k1", "live/k2"])
    );
    // Tagging.
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("hold").value("legal").build().unwrap())
        .build()
        .unwrap();
    c.put_object_tagging()
        .bucket("live")
        .key("k1")
        .tagging(tagging)
        .send()
        .await
        .expect("tag");
    assert_eq!(
        found(&get_search(&srv, As::Bearer(t), &[("tag.hold", "legal")]).await),
        ["live/k1"]
    );
    assert_eq!(
        found(&get_search(&srv, As::Bearer(t), &[("q", "legal")]).await),
        ["live/k1"]
    );
    c.delete_object_tagging()
        .bucket("live")
        .key("k1")
        .send()
        .await
        .expect("untag");
    assert!(found(&get_search(&srv, As::Bearer(t), &[("tag.hold", "legal")]).await).is_empty());
    assert!(found(&get_search(&srv, As::Bearer(t), &[("q", "legal")]).await).is_empty());
    // Multipart: found when Complete returns, not before.
    let up = c
        .create_multipart_upload()
        .bucket("live")
        .key("big")
        .metadata("state", "assembled")
        .send()
        .await
        .expect("create upload");
    let id = up.upload_id().unwrap().to_owned();
    let part = pattern(5 << 20, 7);
    let p1 = c
        .upload_part()
        .bucket("live")
        .key("big")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .expect("part 1");
    let p2 = c
        .upload_part()
        .bucket("live")
        .key("big")
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(b"tail".to_vec()))
        .send()
        .await
        .expect("part 2");
    assert!(found(&get_search(&srv, As::Bearer(t), &by_attr("assembled")).await).is_empty());
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(p1.e_tag().unwrap())
                .build(),
        )
        .parts(
            CompletedPart::builder()
                .part_number(2)
                .e_tag(p2.e_tag().unwrap())
                .build(),
        )
        .build();
    c.complete_multipart_upload()
        .bucket("live")
        .key("big")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .expect("complete");
    let r = get_search(&srv, As::Bearer(t), &by_attr("assembled")).await;
    assert_eq!(found(&r), ["live/big"]);
    assert_eq!(r.json["items"][0]["size"], (5 << 20) + 4);
    assert_eq!(
        r.json["items"][0]["etag"],
        multipart_etag(&[&part, b"tail"]).trim_matches('"')
    );
    // DELETE.
    c.delete_object()
        .bucket("live")
        .key("k2")
        .send()
        .await
        .expect("delete");
    assert_eq!(
        found(&get_search(&srv, As::Bearer(t), &by_attr("approved")).await),
        ["live/k1"]
    );
    c.delete_object()
        .bucket("live")
        .key("big")
        .send()
        .await
        .expect("delete");
    assert!(found(&get_search(&srv, As::Bearer(t), &[("q", "assembled")]).await).is_empty());

    // Restore of an archived object: the state HEAD shows is the state search shows.
    element_cli(&srv, &["create", "vault", "--mode", "rw"]);
    put_doc(
        &c,
        &Doc {
            bucket: "vault",
            key: "old.pdf",
            content_type: "application/pdf",
            meta: &[("state", "archived")],
            tags: "",
            body: pattern(2048, 3),
        },
    )
    .await;
    element_cli(&srv, &["mode", "vault", "ro", "--reason", "closed"]);
    element_cli(&srv, &["mode", "vault", "ar", "--reason", "archived"]);
    let r = get_search(&srv, As::Bearer(t), &[("bucket", "vault")]).await;
    assert_eq!(found(&r), ["vault/old.pdf"], "ar objects are found");
    assert_eq!(r.json["items"][0]["mode"], "ar");
    assert!(r.json["items"][0]["restore"].is_null());
    let body = "<RestoreRequest xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Days>2</Days></RestoreRequest>";
    let resp = srv
        .raw(Method::POST, &key_path("vault", "old.pdf"))
        .query("restore", "")
        .body(body.as_bytes().to_vec())
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let r = get_search(&srv, As::Bearer(t), &[("bucket", "vault")]).await;
    let restore = &r.json["items"][0]["restore"];
    assert!(
        matches!(restore["status"].as_str(), Some("ongoing" | "completed")),
        "{}",
        r.text
    );
    assert_eq!(restore["days"], 2);
    // Once HEAD shows the restore done, search shows the same expiry.
    let deadline = std::time::Instant::now() + WAIT;
    let header = loop {
        let h = srv
            .raw(Method::HEAD, &key_path("vault", "old.pdf"))
            .send()
            .await;
        if h.header("x-artstore-restore-status").as_deref() == Some("completed") {
            break h.header("x-amz-restore").expect("x-amz-restore");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "restore not done: {}",
            srv.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let r = get_search(&srv, As::Bearer(t), &[("bucket", "vault")]).await;
    let restore = &r.json["items"][0]["restore"];
    assert_eq!(restore["status"], "completed", "{}", r.text);
    let expires = time::OffsetDateTime::parse(
        restore["expires"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("expires");
    let http_date = expires
        .format(time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .expect("format");
    assert!(
        header.contains(&http_date),
        "HEAD {header} vs search {http_date}"
    );
    assert!(expires - time::OffsetDateTime::now_utc() > time::Duration::hours(47));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_see_each_others_writes_at_once() {
    if !db_available(Db::Postgres) {
        return;
    }
    const MASTER_KEY: &str = "8f3c1d2e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let a = Server::builder()
        .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
        .start(Db::Postgres)
        .await;
    let url = a.database_url().expect("node a uses PostgreSQL");
    let b = Server::builder()
        .env("ARTSTORE_MASTER_KEY", MASTER_KEY)
        .env("ARTSTORE_DATABASE_URL", &url)
        .start(Db::Sqlite)
        .await;
    let tok_b = admin_token(&b).await;
    let ca = a.client();
    create_bucket(&ca, "shared").await;
    for i in 0..5 {
        let key = format!("doc-{i}");
        let value = format!("v{i}");
        put_doc(
            &ca,
            &Doc {
                bucket: "shared",
                key: &key,
                content_type: "text/plain",
                meta: &[("n", &value)],
                tags: "",
                body: b"x".to_vec(),
            },
        )
        .await;
        let r = get_search(&b, As::Bearer(&tok_b), &[("attr.n", &value)]).await;
        assert_eq!(
            found(&r),
            [format!("shared/{key}")],
            "write {i} through node a, searched on node b"
        );
        ca.delete_object()
            .bucket("shared")
            .key(&key)
            .send()
            .await
            .expect("delete");
        let r = get_search(&b, As::Bearer(&tok_b), &[("attr.n", &value)]).await;
        assert!(
            found(&r).is_empty(),
            "delete {i} not seen on node b: {}",
            r.text
        );
    }
}

// ---------------------------------------------------------------------------------------------
// access
// ---------------------------------------------------------------------------------------------

storage_test!(grants_roles_and_refusals, |srv| async move {
    corpus(&srv).await;
    let admin = admin_token(&srv).await;
    let granted = create_account(&srv, &admin, "svc-docs", "user").await;
    set_grants(
        &srv,
        &admin,
        &granted.id,
        json!([{"bucket": "other", "access": "read"}]),
    )
    .await;
    let g = token(&srv, &granted.client_id, &granted.secret).await;
    // Only the granted bucket's keys, counts and facets; also when naming the other bucket.
    for auth in [
        As::Bearer(&g),
        As::SigV4(&granted.client_id, &granted.secret),
    ] {
        let r = get_search(&srv, auth, &[("facets", "bucket,content_type,attr.dept")]).await;
        assert_eq!(found(&r), [NOTE]);
        assert_eq!(facet(&r, "bucket"), pairs(&[("other", 1)]));
        assert_eq!(facet(&r, "content_type"), pairs(&[("text/plain", 1)]));
        assert!(facet(&r, "attr.dept").is_empty());
    }
    let r = get_search(
        &srv,
        As::Bearer(&g),
        &[("bucket", "docs"), ("facets", "bucket,attr.dept")],
    )
    .await;
    assert!(found(&r).is_empty());
    assert!(facet(&r, "bucket").is_empty() && facet(&r, "attr.dept").is_empty());
    // A bucket that does not exist answers the same as one that is not readable.
    let missing = get_search(
        &srv,
        As::Bearer(&g),
        &[("bucket", "nosuch"), ("facets", "bucket,attr.dept")],
    )
    .await;
    assert_eq!(missing.json["items"], r.json["items"]);
    assert_eq!(missing.json["facets"], r.json["facets"]);
    let r = post_search(&srv, As::Bearer(&g), &json!({"q": "поставки OR readme"})).await;
    assert_eq!(found(&r), [NOTE]);
    // A readonly account without grants reads every bucket; with a grant, that one only.
    let ro = create_account(&srv, &admin, "svc-ro", "readonly").await;
    let rt = token(&srv, &ro.client_id, &ro.secret).await;
    assert_eq!(
        found(&get_search(&srv, As::Bearer(&rt), &[]).await).len(),
        5
    );
    set_grants(
        &srv,
        &admin,
        &ro.id,
        json!([{"bucket": "docs", "access": "read"}]),
    )
    .await;
    let r = get_search(&srv, As::Bearer(&rt), &[("facets", "bucket")]).await;
    assert_eq!(found(&r).len(), 4);
    assert_eq!(facet(&r, "bucket"), pairs(&[("docs", 4)]));
    // The S3 side agrees: the granted account cannot HEAD what search hides from it.
    let cg = srv.client_with(&granted.client_id, &granted.secret);
    assert!(
        cg.head_object()
            .bucket("docs")
            .key("images/scan-001.png")
            .send()
            .await
            .is_err()
    );
    assert!(
        cg.head_object()
            .bucket("other")
            .key("notes/readme.txt")
            .send()
            .await
            .is_ok()
    );
    // Auditors see everything, as they may HEAD everything.
    let au = create_account(&srv, &admin, "svc-audit", "auditor").await;
    let at = token(&srv, &au.client_id, &au.secret).await;
    assert_eq!(
        found(&get_search(&srv, As::Bearer(&at), &[]).await).len(),
        5
    );

    // Refusals: no credentials, a bad token, a suspended account, an unknown key.
    get_search(&srv, As::None, &[])
        .await
        .assert_error(401, "unauthorized");
    get_search(&srv, As::Bearer("not-a-token"), &[])
        .await
        .assert_error(401, "unauthorized");
    call(
        &srv,
        Method::POST,
        &format!("/api/v1/service-accounts/{}/suspend", granted.id),
        As::Bearer(&admin),
        None,
    )
    .await
    .ok(200);
    get_search(&srv, As::Bearer(&g), &[])
        .await
        .assert_error(401, "unauthorized");
    post_search(
        &srv,
        As::SigV4(&granted.client_id, &granted.secret),
        &json!({}),
    )
    .await
    .assert_error(401, "unauthorized");
    get_search(
        &srv,
        As::SigV4("AKUNKNOWN000000000", "whatever-secret"),
        &[],
    )
    .await
    .assert_error(401, "unauthorized");
});

storage_test!(bucket_policies_decide_per_object, |srv| async move {
    let admin = admin_token(&srv).await;
    let c = srv.client();
    create_bucket(&c, "vault").await;
    create_bucket(&c, "docs").await;
    // 6 open objects with 5 secret ones and a secret-tagged one between them in key order.
    let mut open = Vec::new();
    for prefix in ["a0", "a1", "a2", "t0", "t1", "t2"] {
        let key = format!("{prefix}/open.txt");
        put_doc(
            &c,
            &Doc {
                bucket: "vault",
                key: &key,
                content_type: "text/plain",
                meta: &[("kind", "open")],
                tags: "",
                body: b"o".to_vec(),
            },
        )
        .await;
        open.push(format!("vault/{key}"));
    }
    for i in 0..5 {
        let key = format!("secret/k{i}.txt");
        put_doc(
            &c,
            &Doc {
                bucket: "vault",
                key: &key,
                content_type: "text/secret",
                meta: &[("kind", "secret")],
                tags: "",
                body: b"s".to_vec(),
            },
        )
        .await;
    }
    put_doc(
        &c,
        &Doc {
            bucket: "vault",
            key: "k9/tagged.txt",
            content_type: "text/plain",
            meta: &[("kind", "tagged")],
            tags: "class=secret",
            body: b"t".to_vec(),
        },
    )
    .await;
    put_doc(
        &c,
        &Doc {
            bucket: "docs",
            key: "plain.txt",
            content_type: "text/plain",
            meta: &[],
            tags: "",
            body: b"p".to_vec(),
        },
    )
    .await;
    set_policy(&c, "vault", json!([
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/secret/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/class": "secret"}}}
    ])).await;
    // Even the admin cannot HEAD them, so search does not show them either.
    assert!(
        c.head_object()
            .bucket("vault")
            .key("secret/k0.txt")
            .send()
            .await
            .is_err()
    );
    assert!(
        c.head_object()
            .bucket("vault")
            .key("k9/tagged.txt")
            .send()
            .await
            .is_err()
    );
    let u = create_account(&srv, &admin, "svc-user", "user").await;
    let ut = token(&srv, &u.client_id, &u.secret).await;
    for tok in [&admin, &ut] {
        let r = get_search(
            &srv,
            As::Bearer(tok),
            &[
                ("bucket", "vault"),
                ("facets", "content_type,attr.kind,bucket"),
            ],
        )
        .await;
        assert_eq!(found(&r), open, "{}", r.text);
        assert_eq!(facet(&r, "content_type"), pairs(&[("text/plain", 6)]));
        assert_eq!(facet(&r, "attr.kind"), pairs(&[("open", 6)]));
        assert_eq!(facet(&r, "bucket"), pairs(&[("vault", 6)]));
        // Pages stay full past the hidden rows.
        assert_eq!(
            walk(&srv, &As::Bearer(tok), &[("bucket", "vault")], 2).await,
            open
        );
        assert_eq!(
            walk(&srv, &As::Bearer(tok), &[("sort", "created:desc")], 4)
                .await
                .len(),
            7
        );
        assert!(found(&get_search(&srv, As::Bearer(tok), &[("q", "secret")]).await).is_empty());
        assert!(
            found(&get_search(&srv, As::Bearer(tok), &[("attr.kind", "tagged")]).await).is_empty()
        );
    }

    // An Allow by policy for an account whose grants do not cover the bucket.
    let outsider = create_account(&srv, &admin, "svc-outsider", "user").await;
    set_grants(
        &srv,
        &admin,
        &outsider.id,
        json!([{"bucket": "docs", "access": "read"}]),
    )
    .await;
    let ot = token(&srv, &outsider.client_id, &outsider.secret).await;
    assert_eq!(
        found(&get_search(&srv, As::Bearer(&ot), &[]).await),
        ["docs/plain.txt"]
    );
    set_policy(&c, "vault", json!([
        {"Effect": "Allow", "Principal": {"AWS": "svc-outsider"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/a1/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/secret/*"}
    ])).await;
    let r = get_search(&srv, As::Bearer(&ot), &[("facets", "bucket")]).await;
    assert_eq!(
        set(found(&r)),
        names(&["docs/plain.txt", "vault/a1/open.txt"])
    );
    assert_eq!(facet(&r, "bucket"), pairs(&[("docs", 1), ("vault", 1)]));
    let co = srv.client_with(&outsider.client_id, &outsider.secret);
    assert!(
        co.head_object()
            .bucket("vault")
            .key("a1/open.txt")
            .send()
            .await
            .is_ok()
    );
    assert!(
        co.head_object()
            .bucket("vault")
            .key("a2/open.txt")
            .send()
            .await
            .is_err()
    );
    // Allowed everywhere in the bucket by policy: every object but the denied ones.
    set_policy(&c, "vault", json!([
        {"Effect": "Allow", "Principal": {"AWS": "svc-outsider"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/secret/*"}
    ])).await;
    let r = get_search(&srv, As::Bearer(&ot), &[("bucket", "vault")]).await;
    assert_eq!(found(&r).len(), 7);

    // Conditions see the admin request's source address (the test client is on loopback).
    set_policy(
        &c,
        "vault",
        json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]),
    )
    .await;
    assert!(
        c.head_object()
            .bucket("vault")
            .key("a0/open.txt")
            .send()
            .await
            .is_err()
    );
    let r = get_search(&srv, As::Bearer(&admin), &[("facets", "bucket")]).await;
    assert_eq!(found(&r), ["docs/plain.txt"]);
    assert_eq!(facet(&r, "bucket"), pairs(&[("docs", 1)]));
    set_policy(
        &c,
        "vault",
        json!([{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::vault/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]),
    )
    .await;
    let r = get_search(&srv, As::Bearer(&admin), &[("bucket", "vault")]).await;
    assert_eq!(found(&r).len(), 12);

    // ar elements: metadata is readable, so objects are found.
    element_cli(&srv, &["create", "attic", "--mode", "rw"]);
    put_doc(
        &c,
        &Doc {
            bucket: "attic",
            key: "old.txt",
            content_type: "text/plain",
            meta: &[("era", "past")],
            tags: "",
            body: b"a".to_vec(),
        },
    )
    .await;
    element_cli(&srv, &["mode", "attic", "ro"]);
    element_cli(&srv, &["mode", "attic", "ar"]);
    let r = get_search(&srv, As::Bearer(&ut), &[("attr.era", "past")]).await;
    assert_eq!(found(&r), ["attic/old.txt"]);
    assert_eq!(r.json["items"][0]["mode"], "ar");
});

// ---------------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------------

storage_test!(
    bad_input_names_the_parameter_and_changes_nothing,
    |srv| async move {
        corpus(&srv).await;
        let tok = admin_token(&srv).await;
        let t = tok.as_str();
        let baseline = get_search(&srv, As::Bearer(t), &[("facets", "bucket")]).await;
        baseline.ok(200);
        let listed = list_keys(&srv.client(), "docs").await;
        let long_q = "a".repeat(10_000);
        let long_name = format!("attr.{}", "n".repeat(200));
        // Named as far as names may go (128 characters).
        let long_shown = format!("attr.{}", "n".repeat(128));
        let key_cursor = get_search(&srv, As::Bearer(t), &[("sort", "key"), ("limit", "1")])
            .await
            .json["next_cursor"]
            .as_str()
            .unwrap()
            .to_owned();
        let nul_cursor = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sort":"key:asc","bucket":"docs","key":"a\u0000b"}"#,
        );
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sort":"created:asc","bucket":"docs","key":"x"}"#,
        );
        let get_cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("q", "\"unbalanced")], "q"),
            (vec![("q", "OR")], "q"),
            (vec![("q", "- OR -")], "q"),
            (vec![("q", "*")], "q"),
            (vec![("q", "a\0b")], "q"),
            (vec![("q", &long_q)], "q"),
            (vec![("q", "-only")], "q"),
            (vec![("q", "a"), ("q", "b")], "q"),
            (vec![("attr.bad name!", "x")], "attr.bad name!"),
            (vec![("attr.", "x")], "attr."),
            (vec![(&long_name, "x")], &long_shown),
            (
                vec![("attr.year.gte", "1"), ("attr.year.gte", "2")],
                "attr.year.gte",
            ),
            (vec![("attr.year.exists", "maybe")], "attr.year.exists"),
            (vec![("attr.dept", "a\0b")], "attr.dept"),
            (vec![("tag.", "x")], "tag."),
            (vec![("colour", "red")], "colour"),
            (vec![("Q", "x")], "Q"),
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "1001")], "limit"),
            (vec![("limit", "abc")], "limit"),
            (vec![("limit", "-5")], "limit"),
            (vec![("size_min", "-1")], "size_min"),
            (vec![("size_max", "1e3")], "size_max"),
            (vec![("cursor", "garbage!")], "cursor"),
            (vec![("cursor", &forged)], "cursor"),
            (vec![("cursor", &nul_cursor)], "cursor"),
            (vec![("cursor", &key_cursor), ("sort", "size")], "cursor"),
            (vec![("created_from", "yesterday")], "created_from"),
            (vec![("created_to", "2024-02-30T00:00:00Z")], "created_to"),
            (vec![("created_to", "2024-01-01")], "created_to"),
            (vec![("sort", "colour")], "sort"),
            (vec![("sort", "key:up")], "sort"),
            (vec![("sort", "relevance")], "sort"),
            (vec![("mode", "archive")], "mode"),
            (vec![("facets", "owner")], "facets"),
            (vec![("facets", "attr.")], "facets"),
            (vec![("bucket", "docs,other")], "bucket"),
            (vec![("content_type", "*/*")], "content_type"),
            (vec![("prefix", "a\0")], "prefix"),
        ];
        for (params, param) in &get_cases {
            let r = get_search(&srv, As::Bearer(t), params).await;
            r.assert_error(400, "invalid_parameter");
            assert_eq!(r.json["parameter"], json!(param), "{params:?}: {}", r.text);
            assert!(
                !r.text.to_lowercase().contains("sql") && !r.text.contains("SELECT"),
                "{}",
                r.text
            );
        }
        let post_cases: Vec<(Value, &str)> = vec![
            (json!({"q": "\"unbalanced"}), "q"),
            (json!({"q": "*"}), "q"),
            (json!({"q": "a\u{0}b"}), "q"),
            (json!({"q": long_q}), "q"),
            (json!({"q": ["a", "b"]}), "q"),
            (json!({"colour": "red"}), "colour"),
            (json!({"limit": 0}), "limit"),
            (json!({"limit": 1001}), "limit"),
            (json!({"limit": "abc"}), "limit"),
            (json!({"limit": 2.5}), "limit"),
            (json!({"size_min": {"x": 1}}), "size_min"),
            (json!({"cursor": "garbage!"}), "cursor"),
            (json!({"cursor": key_cursor, "sort": "created"}), "cursor"),
            (json!({"created_from": "yesterday"}), "created_from"),
            (json!({"attr.bad name!": "x"}), "attr.bad name!"),
            (json!({"attr.year.gte": ["1", "2"]}), "attr.year.gte"),
            (json!({"bucket": [["docs"]]}), "bucket"),
            (json!({"facets": "owner"}), "facets"),
        ];
        for (body, param) in &post_cases {
            let r = post_search(&srv, As::Bearer(t), body).await;
            r.assert_error(400, "invalid_parameter");
            assert_eq!(r.json["parameter"], json!(param), "{body}: {}", r.text);
        }
        for raw in ["not json", "[1,2]", "\"q\""] {
            let r = call(&srv, Method::POST, SEARCH, As::Bearer(t), Some(raw)).await;
            r.assert_error(400, "invalid_parameter");
            assert_eq!(r.json["parameter"], "body", "{}", r.text);
        }
        // Nothing changed: the same answer, the same objects.
        let after = get_search(&srv, As::Bearer(t), &[("facets", "bucket")]).await;
        assert_eq!(after.json, baseline.json);
        assert_eq!(list_keys(&srv.client(), "docs").await, listed);
        assert!(
            !srv.logs().contains("ERROR"),
            "a client mistake was logged as an error"
        );
    }
);

// ---------------------------------------------------------------------------------------------
// the CLI
// ---------------------------------------------------------------------------------------------

storage_test!(cli_table_and_json, |srv| async move {
    corpus(&srv).await;
    let tok = admin_token(&srv).await;
    // JSON when stdout is not a terminal: the API's shape and answer.
    let (ok, out, err) = srv.cli(&["search", "поставки"]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let api = get_search(&srv, As::Bearer(&tok), &[("q", "поставки")]).await;
    assert_eq!(cli, api.json);
    let (ok, out, err) = srv.cli(&[
        "search",
        "--json",
        "--bucket",
        "docs",
        "--attr",
        "dept=sales",
        "--attr",
        "dept=legal",
        "--sort",
        "size:desc",
    ]);
    assert!(ok, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = cli["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "contracts/2024/Договор поставки 2024.pdf",
            "contracts/2023/Supply agreement.docx",
            "images/scan-001.png"
        ]
    );
    let (ok, out, _) = srv.cli(&[
        "search",
        "--attr",
        "amount.gte=1000",
        "--tag",
        "class=public",
        "--prefix",
        "notes/",
        "--content-type",
        "text/*",
    ]);
    assert!(ok);
    let cli: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli["items"].as_array().unwrap().len(), 1, "{out}");
    // Paging with --limit and --cursor.
    let (_, out, _) = srv.cli(&["search", "--sort", "key", "--limit", "3"]);
    let p1: Value = serde_json::from_str(&out).unwrap();
    let cursor = p1["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, out, _) = srv.cli(&[
        "search", "--sort", "key", "--limit", "3", "--cursor", &cursor,
    ]);
    let p2: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        p1["items"].as_array().unwrap().len() + p2["items"].as_array().unwrap().len(),
        5
    );
    assert!(p2["next_cursor"].is_null());
    // The table: a header, one aligned row per object, the count and the next page.
    let (ok, out, err) = srv.cli(&[
        "search",
        "--table",
        "--bucket",
        "docs",
        "--sort",
        "size:desc",
        "--limit",
        "3",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("KEY")
            && lines[0].contains("BUCKET")
            && lines[0].contains("SIZE")
            && lines[0].contains("CREATED")
            && lines[0].contains("ATTRIBUTES"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("reports/annual report 2023.pdf")
            && lines[1].contains("docs")
            && lines[1].contains("2.9 KiB")
            && lines[1].contains("a.b=dotted"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("contracts/2024/Договор поставки 2024.pdf")
            && lines[2].contains("amount=1500"),
        "{out}"
    );
    // Columns line up, in characters (keys are not ASCII).
    let at = |line: &str, what: &str| line[..line.find(what).unwrap()].chars().count();
    assert_eq!(
        at(lines[1], "  docs  ") + 2,
        at(lines[0], "BUCKET"),
        "{out}"
    );
    assert_eq!(
        at(lines[2], "  docs  ") + 2,
        at(lines[0], "BUCKET"),
        "{out}"
    );
    assert_eq!(lines[4], "3 objects", "{out}");
    assert!(lines[5].starts_with("more: --cursor "), "{out}");
    // On a terminal (a pseudo-terminal from `script`), the table is the default.
    if require_tool("script") {
        let mut args = vec![
            artstore_bin(),
            "search".into(),
            "поставки".into(),
            "--data-dir".into(),
            srv.data_dir().display().to_string(),
        ];
        if let Some(url) = srv.database_url() {
            args.extend(["--database-url".into(), url]);
        }
        let line = args
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env_remove("ARTSTORE_DATABASE_URL")
            .env_remove("ARTSTORE_MASTER_KEY")
            .env_remove("ARTSTORE_CONFIG")
            .env("ARTSTORE_LOG_FORMAT", "json")
            .current_dir(srv.data_dir())
            .output()
            .expect("run script");
        let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
        assert!(out.status.success(), "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('{')).collect();
        assert!(lines[0].starts_with("KEY"), "{text}");
        assert!(
            lines[1].starts_with("contracts/2024/Договор поставки 2024.pdf"),
            "{text}"
        );
        assert_eq!(lines[2], "1 object", "{text}");
    }
    // A bad flag fails with the parameter named, and changes nothing.
    let (ok, _, err) = srv.cli(&["search", "--limit", "0"]);
    assert!(!ok && err.contains("limit"), "{err}");
    let (ok, _, err) = srv.cli(&["search", "\"unbalanced"]);
    assert!(!ok && err.contains("q "), "{err}");
    let (ok, _, err) = srv.cli(&["search", "--attr", "noequals"]);
    assert!(!ok && err.contains("--attr"), "{err}");
    assert_eq!(
        get_search(&srv, As::Bearer(&tok), &[]).await.json["items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
});

// A broken index (a search table gone, as a damaged database would have it) is the server's
// fault: 500 with the JSON error body, no SQL or table names for the caller, ERROR in the log.
storage_test!(index_failure_is_500_without_sql, |srv| async move {
    corpus(&srv).await;
    let tok = admin_token(&srv).await;
    let before = get_search(&srv, As::Bearer(&tok), &[("q", "поставки")]).await;
    assert_eq!(found(&before), [PDF_RU]);
    let mut conn = srv.index_conn().await;
    sqlx::query("DROP TABLE search_docs")
        .execute(&mut conn)
        .await
        .expect("drop search_docs");
    for r in [
        get_search(&srv, As::Bearer(&tok), &[("q", "поставки")]).await,
        post_search(&srv, As::Bearer(&tok), &json!({"q": "поставки"})).await,
    ] {
        r.assert_error(500, "internal");
        let body = r.text.to_lowercase();
        for leak in ["search_docs", "sql", "select", "table", "relation"] {
            assert!(!body.contains(leak), "{leak} in {}", r.text);
        }
    }
    assert!(
        srv.logs().contains("ERROR"),
        "an index failure is logged as an error"
    );
    // S3 is not affected: the objects are still there.
    assert_eq!(
        get(&srv.client(), "other", "notes/readme.txt").await,
        pattern(50, 5)
    );
});
