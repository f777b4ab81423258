//! The admin API's OpenAPI document and `/metrics`, against the real binary: the document is
//! valid OpenAPI 3, every documented operation is served (and needs the credentials it says),
//! every served route is documented, answers have the documented shape, the served document is
//! the checked-in `admin-api/openapi.json`; and the Prometheus metrics count S3 operations,
//! admin routes, bytes and per-element usage exactly.

mod common;
mod identity;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use identity::*;
use serde_json::{Value, json};

const DOC: &str = "/api/v1/openapi.json";
/// The checked-in copy, relative to gateway/ (the test's manifest dir).
const CHECKED_IN: &str = "../admin-api/openapi.json";

/// Routes the server is known to serve (DESIGN.md §6, as implemented): each must be documented.
const SERVED: &[(&str, &str)] = &[
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("post", "/api/v1/auth/token"),
    ("get", "/.well-known/jwks.json"),
    ("post", "/api/v1/keys/rotate"),
    ("get", "/api/v1/service-accounts"),
    ("post", "/api/v1/service-accounts"),
    ("get", "/api/v1/service-accounts/{id}"),
    ("patch", "/api/v1/service-accounts/{id}"),
    ("delete", "/api/v1/service-accounts/{id}"),
    ("post", "/api/v1/service-accounts/{id}/rotate-secret"),
    ("post", "/api/v1/service-accounts/{id}/suspend"),
    ("post", "/api/v1/service-accounts/{id}/activate"),
    ("put", "/api/v1/service-accounts/{id}/grants"),
    ("get", "/api/v1/storage-elements"),
    ("post", "/api/v1/storage-elements"),
    ("get", "/api/v1/storage-elements/{name}"),
    ("patch", "/api/v1/storage-elements/{name}"),
    ("delete", "/api/v1/storage-elements/{name}"),
    ("post", "/api/v1/storage-elements/{name}/mode"),
    ("get", "/api/v1/storage-elements/{name}/mode-history"),
    ("get", "/api/v1/storage-elements/{name}/attributes"),
    ("get", "/api/v1/audit"),
    ("get", "/api/v1/search"),
    ("post", "/api/v1/search"),
    ("post", "/api/v1/maintenance/verify"),
    ("post", "/api/v1/maintenance/rebuild"),
    ("post", "/api/v1/maintenance/import"),
    ("get", "/api/v1/maintenance/jobs"),
    ("get", "/api/v1/maintenance/jobs/{id}"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

async fn fetch_doc(srv: &Server) -> Value {
    // Unauthenticated on purpose: the document is public.
    let r = call(srv, Method::GET, DOC, As::None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    r.json.clone()
}

/// Follows a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {r}"));
            let target = doc
                .pointer(ptr)
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(doc, target)
        }
        None => v,
    }
}

/// Every `$ref` anywhere in the document points at something.
fn check_refs(doc: &Value, v: &Value, at: &str) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let ptr = r
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("{at}: $ref {r}"));
                assert!(doc.pointer(ptr).is_some(), "{at}: dangling $ref {r}");
            }
            for (k, x) in m {
                check_refs(doc, x, &format!("{at}/{k}"));
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| check_refs(doc, x, &format!("{at}/{i}"))),
        _ => {}
    }
}

/// Checks a real JSON answer against its documented schema: required properties present, no
/// undocumented properties, types of scalars, recursively. Returns the problems found.
fn conform(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        // Each part checks its own properties; unknown-property checks need the union.
        let mut props = BTreeSet::new();
        for part in all {
            let part = resolve(doc, part);
            if let Some(p) = part.get("properties").and_then(Value::as_object) {
                props.extend(p.keys().cloned());
            }
            let mut part_errs = Vec::new();
            conform(doc, part, v, at, &mut part_errs);
            errs.extend(
                part_errs
                    .into_iter()
                    .filter(|e| !e.contains("undocumented")),
            );
        }
        if let Some(o) = v.as_object() {
            for k in o.keys().filter(|k| !props.contains(*k)) {
                errs.push(format!("{at}: undocumented property '{k}'"));
            }
        }
        return;
    }
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let ok = alts.iter().any(|alt| {
            let mut e = Vec::new();
            conform(doc, alt, v, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errs.push(format!("{at}: {v} matches no oneOf alternative"));
        }
        return;
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {values:?}"));
        return;
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let type_ok = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !type_ok {
        errs.push(format!("{at}: {actual} where the document says {types:?}"));
        return;
    }
    match v {
        Value::Object(o) => {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for k in req.iter().filter_map(Value::as_str) {
                    if !o.contains_key(k) {
                        errs.push(format!("{at}: required property '{k}' missing"));
                    }
                }
            }
            if let Some(props) = props {
                for (k, x) in o {
                    match props.get(k) {
                        Some(ps) => conform(doc, ps, x, &format!("{at}.{k}"), errs),
                        None => errs.push(format!("{at}: undocumented property '{k}'")),
                    }
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, x) in a.iter().enumerate() {
                    conform(doc, items, x, &format!("{at}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

/// Whether an operation needs credentials (a non-empty security requirement, none optional).
fn requires_auth(op: &Value) -> bool {
    op.get("security")
        .and_then(Value::as_array)
        .is_some_and(|reqs| {
            !reqs.is_empty()
                && reqs
                    .iter()
                    .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        })
}

/// The router's own 404/405 have no JSON error body; a handler's 404 ("no such account") does.
fn router_refused(r: &ApiResp) -> bool {
    r.status == 405 || (r.status == 404 && r.json.get("error").is_none())
}

storage_test!(document_is_valid_and_matches_the_routes, |srv| async move {
    let doc = fetch_doc(&srv).await;

    // OpenAPI 3.x with the required top-level fields.
    let version = doc["openapi"].as_str().expect("openapi field");
    assert!(version.starts_with("3."), "openapi version {version}");
    assert_eq!(doc["info"]["title"], "ArtStore admin API");
    assert!(
        doc["info"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    let paths = doc["paths"].as_object().expect("paths");
    check_refs(&doc, &doc, "#");

    // The error shape and the security schemes.
    let err = &doc["components"]["schemas"]["ErrorBody"];
    let mut req: Vec<&str> = err["required"]
        .as_array()
        .expect("ErrorBody.required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    req.sort_unstable();
    assert_eq!(req, ["error", "message", "request_id"]);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["sigv4"]["type"], "apiKey");
    assert_eq!(schemes["sigv4"]["in"], "header");
    assert_eq!(schemes["sigv4"]["name"], "Authorization");
    assert!(
        schemes["sigv4"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("AWS4-HMAC-SHA256"))
    );

    // Every served route is documented …
    let mut documented: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in paths {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                documented.push((m.to_string(), path.clone(), op.clone()));
            }
        }
    }
    for (m, p) in SERVED {
        assert!(
            documented.iter().any(|(dm, dp, _)| dm == m && dp == p),
            "{} {p} is served but not in the OpenAPI document",
            m.to_uppercase()
        );
    }

    // … and every documented operation is complete.
    let mut ids = BTreeSet::new();
    for (m, p, op) in &documented {
        let at = format!("{} {p}", m.to_uppercase());
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no operationId"));
        assert!(
            ids.insert(id.to_owned()),
            "{at}: operationId {id} used twice"
        );
        assert!(op["summary"].as_str().is_some(), "{at}: no summary");
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{at}"));
        assert!(
            responses.keys().any(|c| c.starts_with('2')),
            "{at}: no success response"
        );
        // Every error answer is documented with the JSON error body (the readiness probe's
        // 503 is its status document).
        for (code, resp) in responses {
            if code.starts_with('4') || (code.starts_with('5') && p != "/health/ready") {
                let schema =
                    resolve(&doc, resp)["content"]["application/json"]["schema"]["$ref"].as_str();
                assert_eq!(
                    schema,
                    Some("#/components/schemas/ErrorBody"),
                    "{at}: {code} without the error body"
                );
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] == "path" {
                assert!(p.contains(&format!("{{{}}}", param["name"].as_str().unwrap())));
                assert_eq!(param["required"], true, "{at}");
            }
        }
        if requires_auth(op) {
            for code in ["401", "403", "429"] {
                assert!(responses.contains_key(code), "{at}: {code} not documented");
            }
            let names: BTreeSet<&str> = op["security"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                .collect();
            assert_eq!(names, BTreeSet::from(["bearer", "sigv4"]), "{at}");
        }
        if matches!(m.as_str(), "post" | "put" | "patch")
            && let Some(body) = op.get("requestBody")
        {
            let content = body["content"].as_object().expect("requestBody.content");
            assert!(!content.is_empty(), "{at}");
        }
    }
    // JSON-body endpoints document their bodies.
    for (m, p) in [
        ("post", "/api/v1/service-accounts"),
        ("patch", "/api/v1/service-accounts/{id}"),
        ("put", "/api/v1/service-accounts/{id}/grants"),
        ("post", "/api/v1/storage-elements"),
        ("patch", "/api/v1/storage-elements/{name}"),
        ("post", "/api/v1/storage-elements/{name}/mode"),
        ("post", "/api/v1/auth/token"),
        ("post", "/api/v1/maintenance/import"),
    ] {
        let schema = &doc["paths"][p][m]["requestBody"]["content"]["application/json"]["schema"];
        let schema = resolve(&doc, schema);
        assert!(
            schema["properties"]
                .as_object()
                .is_some_and(|o| !o.is_empty()),
            "{m} {p}: no JSON request body schema"
        );
    }
    let create = resolve(
        &doc,
        &doc["paths"]["/api/v1/service-accounts"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"],
    );
    assert!(
        create["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("name")) && r.contains(&json!("role")))
    );
    assert_eq!(
        create["additionalProperties"], false,
        "unknown fields are refused"
    );

    // Every documented operation exists on the server. Path parameters name real things, so
    // the handlers do real work; deletions go last.
    let admin = admin_token(&srv).await;
    let probe = create_account(&srv, &admin, "openapi-probe", "user").await;
    call(
        &srv,
        Method::POST,
        "/api/v1/storage-elements",
        As::Bearer(&admin),
        Some(r#"{"name":"openapi-probe"}"#),
    )
    .await
    .ok(201);
    let sanity = call(
        &srv,
        Method::GET,
        "/api/v1/no-such-route",
        As::Bearer(&admin),
        None,
    )
    .await;
    assert!(router_refused(&sanity), "{sanity:?}");
    let wrong_method = call(&srv, Method::PUT, "/health/live", As::None, None).await;
    assert!(router_refused(&wrong_method), "{wrong_method:?}");

    documented.sort_by_key(|(m, _, _)| m == "delete");
    for (m, p, op) in &documented {
        let mut url = p
            .replace("{id}", &probe.id)
            .replace("{name}", "openapi-probe");
        let required_query: Vec<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["in"] == "query" && x["required"] == true)
            .map(|x| format!("{}=missing", x["name"].as_str().unwrap()))
            .collect();
        if !required_query.is_empty() {
            url = format!("{url}?{}", required_query.join("&"));
        }
        let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
        let body = op.get("requestBody").map(|_| "{}");
        let at = format!("{method} {url}");
        if requires_auth(op) {
            // Documented as authenticated: refused without credentials, with the error shape.
            let r = call(&srv, method.clone(), &url, As::None, body).await;
            assert!(!router_refused(&r), "{at}: not routed ({})", r.status);
            r.assert_error(401, "unauthorized");
        }
        let auth = if requires_auth(op) {
            As::Bearer(&admin)
        } else {
            As::None
        };
        let r = call(&srv, method, &url, auth, body).await;
        assert!(
            !router_refused(&r),
            "{at}: documented but not routed ({})",
            r.status
        );
        assert!(r.status < 500, "{at}: {} {}", r.status, r.text);
        let documented_status = op["responses"]
            .as_object()
            .unwrap()
            .contains_key(&r.status.to_string());
        assert!(
            documented_status,
            "{at}: answered {} which is not documented",
            r.status
        );
        // Answers have the documented shape.
        if let Some(schema) =
            op["responses"][r.status.to_string()]["content"]["application/json"].get("schema")
            && !r.text.is_empty()
        {
            let mut errs = Vec::new();
            conform(&doc, schema, &r.json, "answer", &mut errs);
            assert!(errs.is_empty(), "{at}: {errs:?}\n{}", r.text);
        }
    }

    // Successful answers match their schemas too (the probe requests above are mostly refusals).
    type Check = (
        Method,
        String,
        Option<String>,
        &'static str,
        &'static str,
        u16,
    );
    let checks: Vec<Check> = vec![
        (
            Method::GET,
            "/api/v1/service-accounts".into(),
            None,
            "get",
            "/api/v1/service-accounts",
            200,
        ),
        (
            Method::POST,
            "/api/v1/service-accounts".into(),
            Some(json!({"name": "shape", "role": "readonly", "rate_limit": 100}).to_string()),
            "post",
            "/api/v1/service-accounts",
            201,
        ),
        (
            Method::GET,
            "/api/v1/storage-elements".into(),
            None,
            "get",
            "/api/v1/storage-elements",
            200,
        ),
        (
            Method::POST,
            "/api/v1/storage-elements".into(),
            Some(json!({"name": "shape-el", "mode": "rw", "capacity_bytes": 1000}).to_string()),
            "post",
            "/api/v1/storage-elements",
            201,
        ),
        (
            Method::POST,
            "/api/v1/storage-elements/shape-el/mode".into(),
            Some(json!({"mode": "ro", "reason": "shape"}).to_string()),
            "post",
            "/api/v1/storage-elements/{name}/mode",
            200,
        ),
        (
            Method::GET,
            "/api/v1/storage-elements/shape-el/mode-history".into(),
            None,
            "get",
            "/api/v1/storage-elements/{name}/mode-history",
            200,
        ),
        (
            Method::GET,
            "/api/v1/maintenance/jobs?limit=5".into(),
            None,
            "get",
            "/api/v1/maintenance/jobs",
            200,
        ),
        (
            Method::GET,
            "/api/v1/audit?limit=50".into(),
            None,
            "get",
            "/api/v1/audit",
            200,
        ),
        (
            Method::GET,
            "/.well-known/jwks.json".into(),
            None,
            "get",
            "/.well-known/jwks.json",
            200,
        ),
        (
            Method::GET,
            "/health/live".into(),
            None,
            "get",
            "/health/live",
            200,
        ),
        (
            Method::GET,
            "/health/ready".into(),
            None,
            "get",
            "/health/ready",
            200,
        ),
    ];
    for (method, url, body, m, p, status) in checks {
        let r = call(&srv, method, &url, As::Bearer(&admin), body.as_deref()).await;
        let j = r.ok(status).clone();
        let schema = &doc["paths"][p][m]["responses"][status.to_string()]["content"]["application/json"]
            ["schema"];
        assert!(!schema.is_null(), "{m} {p}: {status} has no JSON schema");
        let mut errs = Vec::new();
        conform(&doc, schema, &j, "answer", &mut errs);
        assert!(errs.is_empty(), "{m} {p}: {errs:?}\n{}", r.text);
    }
    let shape = call(
        &srv,
        Method::GET,
        "/api/v1/service-accounts?name=shape",
        As::Bearer(&admin),
        None,
    )
    .await;
    let id = shape.ok(200)["items"][0]["id"].as_str().unwrap().to_owned();
    let rotated = call(
        &srv,
        Method::POST,
        &format!("/api/v1/service-accounts/{id}/rotate-secret"),
        As::Bearer(&admin),
        None,
    )
    .await;
    let schema = &doc["paths"]["/api/v1/service-accounts/{id}/rotate-secret"]["post"]["responses"]
        ["200"]["content"]["application/json"]["schema"];
    let mut errs = Vec::new();
    conform(&doc, schema, rotated.ok(200), "answer", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    assert!(rotated.json["client_secret"].as_str().is_some());
});

/// The served document is the checked-in `admin-api/openapi.json`, so a route or schema change
/// without regenerating it fails CI. Regenerate with
/// `ARTSTORE_BLESS_OPENAPI=1 cargo test -p artstore-gateway --test admin_openapi served_document`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_checked_in_copy() {
    let srv = Server::start(Db::Sqlite).await;
    let served = fetch_doc(&srv).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CHECKED_IN);
    if std::env::var("ARTSTORE_BLESS_OPENAPI").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
        std::fs::write(&path, text).expect("write admin-api/openapi.json");
        eprintln!("wrote {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate it with ARTSTORE_BLESS_OPENAPI=1 cargo test -p artstore-gateway --test admin_openapi served_document",
            path.display()
        )
    });
    let checked_in: Value = serde_json::from_str(&text).expect("admin-api/openapi.json is JSON");
    if served != checked_in {
        let a: BTreeSet<String> = served["paths"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let b: BTreeSet<String> = checked_in["paths"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        panic!(
            "the served OpenAPI document differs from admin-api/openapi.json \
             (paths only served: {:?}; only checked in: {:?}); regenerate it with \
             ARTSTORE_BLESS_OPENAPI=1 cargo test -p artstore-gateway --test admin_openapi served_document",
            a.difference(&b).collect::<Vec<_>>(),
            b.difference(&a).collect::<Vec<_>>()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// /metrics
// ---------------------------------------------------------------------------------------------

/// One scrape: (metric name, labels, value) per sample.
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    /// Sum of the samples of `name` whose labels include all of `labels` (0 when none).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).is_some_and(|x| x == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }
    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.iter().any(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).is_some_and(|x| x == v))
        })
    }
}

/// Parses the text exposition (label values here never contain `,` `"` or `}`).
fn parse_metrics(text: &str) -> Scrape {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let inner = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = inner
                    .split(',')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (n.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        out.push((name, labels, value));
    }
    Scrape(out)
}

async fn scrape(srv: &Server) -> Scrape {
    let r = srv
        .http()
        .get(format!("{}/metrics", srv.admin_url()))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status().as_u16(), 200);
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let text = r.text().await.expect("metrics body");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    parse_metrics(&text)
}

const REQS: &str = "artstore_s3_requests_total";
const RECEIVED: &str = "artstore_s3_received_bytes_total";
const SENT: &str = "artstore_s3_sent_bytes_total";
const S3_LATENCY: &str = "artstore_s3_request_duration_seconds_count";
const ADMIN_REQS: &str = "artstore_admin_requests_total";
const ADMIN_LATENCY: &str = "artstore_admin_request_duration_seconds_count";

storage_test!(
    metrics_count_operations_routes_bytes_and_usage,
    |srv| async move {
        let admin = admin_token(&srv).await;
        let bucket = "metrics-bucket";
        assert_eq!(
            srv.raw(Method::PUT, &format!("/{bucket}"))
                .send()
                .await
                .status,
            200
        );
        let before = scrape(&srv).await;
        assert_eq!(
            before.get(REQS, &[("operation", "CreateBucket"), ("status", "200")]),
            1.0
        );

        // Three objects of known sizes (signed payloads: the wire body is exactly the object).
        let sizes = [1_000usize, 25_000, 300_000];
        for (i, n) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..*n).map(|b| (b % 251) as u8).collect();
            let r = srv
                .raw(Method::PUT, &key_path(bucket, &format!("obj-{i}")))
                .body(data)
                .send()
                .await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
        let got = srv
            .raw(Method::GET, &key_path(bucket, "obj-1"))
            .send()
            .await;
        assert_eq!((got.status, got.body.len()), (200, 25_000));
        let listed = srv
            .raw(Method::GET, &format!("/{bucket}"))
            .query("list-type", "2")
            .send()
            .await;
        assert_eq!(listed.status, 200);
        let missing = srv.raw(Method::GET, &key_path(bucket, "nope")).send().await;
        assert_eq!(missing.status, 404);
        // Refused before the operation is known: counted as "unknown".
        let forged = srv
            .raw(Method::GET, &key_path(bucket, "obj-0"))
            .bad_signature()
            .send()
            .await;
        assert_eq!(forged.status, 403);

        // Admin calls: a route twice, a handler 404 under its template, and no route at all.
        for _ in 0..2 {
            call(
                &srv,
                Method::GET,
                "/api/v1/service-accounts",
                As::Bearer(&admin),
                None,
            )
            .await
            .ok(200);
        }
        call(
            &srv,
            Method::GET,
            "/api/v1/service-accounts/nobody",
            As::Bearer(&admin),
            None,
        )
        .await
        .assert_error(404, "not_found");
        let r = call(&srv, Method::GET, "/api/v1/nothing-here", As::None, None).await;
        assert_eq!(r.status, 404);

        let after = scrape(&srv).await;
        let delta = |name: &str, labels: &[(&str, &str)]| {
            after.get(name, labels) - before.get(name, labels)
        };

        let total: usize = sizes.iter().sum();
        assert_eq!(
            delta(REQS, &[("operation", "PutObject"), ("status", "200")]),
            3.0
        );
        assert_eq!(delta(S3_LATENCY, &[("operation", "PutObject")]), 3.0);
        assert_eq!(delta(RECEIVED, &[("operation", "PutObject")]), total as f64);
        assert_eq!(
            delta(REQS, &[("operation", "GetObject"), ("status", "200")]),
            1.0
        );
        assert_eq!(
            delta(REQS, &[("operation", "GetObject"), ("status", "404")]),
            1.0
        );
        assert_eq!(
            delta(REQS, &[("operation", "ListObjectsV2"), ("status", "200")]),
            1.0
        );
        assert_eq!(
            delta(REQS, &[("operation", "unknown"), ("status", "403")]),
            1.0
        );
        // Bytes out: the object itself for the GET, plus the error document of the 404.
        assert_eq!(
            delta(SENT, &[("operation", "GetObject")]),
            (25_000 + missing.body.len()) as f64
        );
        assert_eq!(
            delta(SENT, &[("operation", "ListObjectsV2")]),
            listed.body.len() as f64
        );
        // No body on a GET: nothing received for it.
        assert_eq!(delta(RECEIVED, &[("operation", "GetObject")]), 0.0);
        // Latency histograms are cumulative: +Inf holds every request.
        assert_eq!(
            after.get(
                "artstore_s3_request_duration_seconds_bucket",
                &[("operation", "PutObject"), ("le", "+Inf")]
            ),
            after.get(S3_LATENCY, &[("operation", "PutObject")])
        );

        let list = [("method", "GET"), ("route", "/api/v1/service-accounts")];
        assert_eq!(
            delta(ADMIN_REQS, &[list[0], list[1], ("status", "200")]),
            2.0
        );
        assert_eq!(delta(ADMIN_LATENCY, &list), 2.0);
        assert_eq!(
            delta(
                ADMIN_REQS,
                &[
                    ("method", "GET"),
                    ("route", "/api/v1/service-accounts/{id}"),
                    ("status", "404")
                ]
            ),
            1.0,
            "a handler's 404 is counted under the route template, not the raw path"
        );
        assert!(!after.has(ADMIN_REQS, &[("route", "/api/v1/service-accounts/nobody")]));
        assert_eq!(
            delta(ADMIN_REQS, &[("route", "unmatched"), ("status", "404")]),
            1.0
        );
        // The first scrape itself was counted by the time of the second.
        assert!(after.get(ADMIN_REQS, &[("route", "/metrics"), ("status", "200")]) >= 1.0);

        // Per-element usage is read from the index, and agrees with the admin API.
        let el = [("element", bucket)];
        assert_eq!(after.get("artstore_element_objects", &el), 3.0);
        assert_eq!(after.get("artstore_element_used_bytes", &el), total as f64);
        assert_eq!(
            after.get("artstore_element_mode", &[el[0], ("mode", "edit")]),
            1.0
        );
        let view = call(
            &srv,
            Method::GET,
            &format!("/api/v1/storage-elements/{bucket}"),
            As::Bearer(&admin),
            None,
        )
        .await;
        let view = view.ok(200);
        assert_eq!(view["object_count"], 3);
        assert_eq!(view["used_bytes"], total as i64);

        // A quota and a delete show at the next scrape.
        call(
            &srv,
            Method::PATCH,
            &format!("/api/v1/storage-elements/{bucket}"),
            As::Bearer(&admin),
            Some(r#"{"capacity_bytes": 10000000}"#),
        )
        .await
        .ok(200);
        assert_eq!(
            srv.raw(Method::DELETE, &key_path(bucket, "obj-2"))
                .send()
                .await
                .status,
            204
        );
        let last = scrape(&srv).await;
        assert_eq!(last.get("artstore_element_objects", &el), 2.0);
        assert_eq!(last.get("artstore_element_used_bytes", &el), 26_000.0);
        assert_eq!(
            last.get("artstore_element_capacity_bytes", &el),
            10_000_000.0
        );
        assert_eq!(
            last.get(REQS, &[("operation", "DeleteObject"), ("status", "204")]),
            1.0
        );
    }
);
