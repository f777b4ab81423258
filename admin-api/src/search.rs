//! `GET /api/v1/search` and `POST /api/v1/search` (DESIGN.md §6, issue 9): the parameters,
//! checked into one `SearchQuery`; access decided by the policy evaluator, as for HeadObject;
//! and the answer's JSON shape, which the CLI prints too.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use artstore_metadata::search_params::{attr_filter, parse_time};
use artstore_metadata::{
    Element, FacetField, Mode, ObjectRecord, RestoreStatus, SearchError, SearchHit, SearchPage,
    SearchQuery, Sort, TagFilter, now_ms,
};
use artstore_policy::{Action, Context, Facts, Policy, Principal, Reach, evaluate, reach};
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AdminState;
use crate::auth::Caller;
use crate::error::{ApiError, body_rejection, request_source};
use crate::rfc3339;

pub fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(search_get, search_post))
}

/// Parameters that take one value.
const SINGLE: &[&str] = &[
    "q",
    "prefix",
    "content_type",
    "owner",
    "size_min",
    "size_max",
    "created_from",
    "created_to",
    "mode",
    "sort",
    "limit",
    "cursor",
];

/// Parameters that take a list: repeated in a query string, a JSON list in a body.
const LISTS: &[&str] = &["bucket", "facets"];

const DESCRIPTION: &str = "Any active account may search; the results (and facet counts) hold \
only the objects the caller could HEAD through S3, decided by the same policy evaluator (role, \
grants, bucket policy, mode): objects of `ar` elements are found. A bucket the caller may not \
read gives no results, whether or not it exists.\n\n\
Filters combine with AND:\n\
- `q`: full text over the key, file name, description, attribute values and tags. Words must \
all match; `\"a phrase\"`; `word*` (prefix); `-word` (must not match); `a OR b`. Unicode, \
case-insensitive, no stemming. At most 1000 characters and 32 terms.\n\
- `bucket`: repeat the parameter for several buckets (any of them); a comma is refused \
(bucket names have none).\n\
- `prefix` (of the key), `content_type` (exact or `type/*`), `owner` (account id or name), \
`size_min`/`size_max` (bytes, inclusive), `created_from`/`created_to` (RFC 3339, inclusive), \
`mode` (edit, rw, ro, ar).\n\
- `attr.<name>=<value>`: exact; repeat for several values (any of them). \
`attr.<name>.prefix=`, `attr.<name>.gte=`, `attr.<name>.lte=` (numeric when both sides are \
numbers, else text order, so ISO dates work), `attr.<name>.exists=true|false`. Attribute \
names may contain dots: the operator is the last dot-segment when it is one of `prefix`, \
`gte`, `lte`, `exists`, `eq`; anything else is all name (`attr.a.b=v` and `attr.a.b.eq=v` \
both match the attribute `a.b`).\n\
- `tag.<key>=<value>`: the object has this tag.\n\n\
`sort`: `relevance` (the default with `q`, descending), `key` (the default otherwise), \
`created`, `size`, as `field` or `field:asc|desc`. `limit`: 1–1000, default 100. `cursor`: \
the `next_cursor` of the previous page of the same search (same sort); pages stay correct \
while objects are written. `facets`: comma-separated `content_type`, `bucket`, \
`attr.<name>`: the 20 most frequent values over the whole match.\n\n\
Unknown parameters and every bad value are `400 invalid_parameter` with `parameter` naming it.";

/// The search answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    pub items: Vec<SearchItem>,
    /// Token for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// By facet (`content_type`, `bucket`, `attr.<name>`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<BTreeMap<String, Vec<FacetCount>>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: i64,
}

/// One found object.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchItem {
    pub bucket: String,
    pub key: String,
    pub size: i64,
    /// The S3 ETag, without quotes.
    pub etag: String,
    /// SHA-256 of the data, hex.
    pub checksum_sha256: String,
    pub content_type: String,
    /// RFC 3339 UTC.
    pub created: String,
    pub updated: String,
    pub owner: SearchOwner,
    /// Custom attributes (`x-amz-meta-*`), by lower-case name.
    pub attributes: BTreeMap<String, String>,
    /// S3 object tags.
    pub tags: BTreeMap<String, String>,
    /// The mode of the object's storage element.
    #[schema(value_type = crate::openapi::ModeName)]
    pub mode: String,
    /// The last restore of an archived object, if any.
    pub restore: Option<SearchRestore>,
    /// With `q`: relevance, higher is better: per word, phrase or prefix of `q`, 4 in the file
    /// name, 2 in the key's folders, 1 in attribute values or tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchOwner {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchRestore {
    /// `ongoing`, `completed` (readable until `expires`), `expired` or `failed`.
    pub status: String,
    pub days: i64,
    pub requested: String,
    pub completed: Option<String>,
    pub expires: Option<String>,
}

/// The request body of `POST /api/v1/search`: the same fields as the query string. Besides
/// these, any `attr.<name>[.<op>]` (a string, or a list for equality) and `tag.<key>` field.
// For the document only: the handler reads the body as a JSON object, since `attr.*` and
// `tag.*` fields have open names.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SearchRequest {
    q: Option<String>,
    /// One bucket or a list.
    #[schema(value_type = Option<Vec<String>>)]
    bucket: Option<Value>,
    prefix: Option<String>,
    content_type: Option<String>,
    owner: Option<String>,
    #[schema(minimum = 0)]
    size_min: Option<i64>,
    #[schema(minimum = 0)]
    size_max: Option<i64>,
    /// RFC 3339.
    created_from: Option<String>,
    created_to: Option<String>,
    #[schema(value_type = Option<crate::openapi::ModeName>)]
    mode: Option<String>,
    /// `relevance`, `key`, `created` or `size`, with `:asc` or `:desc`.
    sort: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    cursor: Option<String>,
    /// A comma list or a JSON list of `content_type`, `bucket`, `attr.<name>`.
    #[schema(value_type = Option<Vec<String>>)]
    facets: Option<Value>,
}

/// The answer for `page`, as the API and the CLI give it.
pub fn page_view(page: &SearchPage, facets_asked: bool, now: i64) -> SearchResponse {
    let facets = facets_asked.then(|| {
        page.facets
            .iter()
            .map(|f| {
                let name = match &f.field {
                    FacetField::ContentType => "content_type".to_owned(),
                    FacetField::Bucket => "bucket".to_owned(),
                    FacetField::Attr(a) => format!("attr.{a}"),
                };
                let values = f
                    .values
                    .iter()
                    .map(|v| FacetCount {
                        value: v.value.clone(),
                        count: v.count,
                    })
                    .collect();
                (name, values)
            })
            .collect()
    });
    SearchResponse {
        items: page.items.iter().map(|h| item_view(h, now)).collect(),
        next_cursor: page.next_cursor.clone(),
        facets,
    }
}

fn item_view(h: &SearchHit, now: i64) -> SearchItem {
    let o = &h.object;
    SearchItem {
        bucket: o.bucket.clone(),
        key: o.key.clone(),
        size: o.size,
        etag: o.etag.clone(),
        checksum_sha256: o.sha256.clone(),
        content_type: o.content_type.clone(),
        created: rfc3339(o.created_ms),
        updated: rfc3339(o.updated_ms),
        owner: SearchOwner {
            id: o.owner_id.clone(),
            name: o.owner_name.clone(),
        },
        attributes: o.custom_attributes.clone(),
        tags: o.tags.clone(),
        mode: h.mode.as_str().to_owned(),
        restore: o.restore.as_ref().map(|r| SearchRestore {
            status: match r.status {
                RestoreStatus::Completed if !r.is_active(now) => "expired".to_owned(),
                s => s.as_str().to_owned(),
            },
            days: r.days,
            requested: rfc3339(r.requested_ms),
            completed: r.completed_ms.map(rfc3339),
            expires: r.expires_ms.map(rfc3339),
        }),
        score: h.score,
    }
}

/// Builds the query from `(parameter, value)` pairs, a repeated parameter once per value.
pub fn query_from_pairs(pairs: Vec<(String, String)>) -> Result<SearchQuery, ApiError> {
    let mut single: HashMap<&'static str, String> = HashMap::new();
    // In the order given, so errors name the first fault.
    let mut attrs: Vec<(String, Vec<String>)> = Vec::new();
    let mut q = SearchQuery::default();
    for (k, v) in pairs {
        if k.starts_with("attr.") {
            match attrs.iter_mut().find(|(name, _)| *name == k) {
                Some((_, vs)) => vs.push(v),
                None => attrs.push((k, vec![v])),
            }
        } else if let Some(tag) = k.strip_prefix("tag.") {
            if q.tags.iter().any(|t| t.key == tag) {
                return Err(ApiError::invalid_parameter(
                    &k,
                    format!("{k} is given more than once"),
                ));
            }
            q.tags.push(TagFilter {
                key: tag.to_owned(),
                value: v,
            });
        } else if k == "bucket" {
            if v.is_empty() || v.contains(',') {
                return Err(ApiError::invalid_parameter(
                    "bucket",
                    "bucket takes one bucket name per value; repeat the parameter for several",
                ));
            }
            q.buckets.push(v);
        } else if k == "facets" {
            for f in v.split(',').map(str::trim) {
                let field = FacetField::from_str(f).map_err(|e| {
                    ApiError::invalid_parameter("facets", format!("facets: '{f}': {e}"))
                })?;
                if !q.facets.contains(&field) {
                    q.facets.push(field);
                }
            }
        } else if let Some(name) = SINGLE.iter().find(|s| **s == k) {
            if single.insert(name, v).is_some() {
                return Err(ApiError::invalid_parameter(
                    *name,
                    format!("{name} is given more than once"),
                ));
            }
        } else {
            let shown: String = k.chars().take(128).collect();
            return Err(ApiError::invalid_parameter(
                shown.clone(),
                format!(
                    "unknown parameter '{shown}' (known: {}, {}, attr.<name>[.<op>], tag.<key>)",
                    SINGLE.join(", "),
                    LISTS.join(", ")
                ),
            ));
        }
    }
    for (name, v) in single {
        let bad = |why: &str| ApiError::invalid_parameter(name, format!("{name} {why}"));
        if v.is_empty() && !matches!(name, "q" | "prefix") {
            return Err(bad("needs a value"));
        }
        match name {
            "q" => q.q = Some(v),
            "prefix" => q.prefix = Some(v),
            "content_type" => q.content_type = Some(v),
            "owner" => q.owner = Some(v),
            "cursor" => q.cursor = Some(v),
            "size_min" | "size_max" => {
                let n = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("must be an integer of bytes, 0 or more"))?;
                if name == "size_min" {
                    q.size_min = Some(n);
                } else {
                    q.size_max = Some(n);
                }
            }
            "created_from" => q.created_from = Some(parse_time(name, &v).map_err(search_error)?),
            "created_to" => q.created_to = Some(parse_time(name, &v).map_err(search_error)?),
            "mode" => {
                q.mode = Some(Mode::from_str(&v).map_err(|e| bad(&format!("is invalid: {e}")))?)
            }
            "sort" => {
                q.sort = Some(Sort::from_str(&v).map_err(|e| bad(&format!("is invalid: {e}")))?)
            }
            "limit" => {
                let n = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=artstore_metadata::MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad("must be an integer from 1 to 1000"))?;
                q.limit = Some(n);
            }
            _ => {}
        }
    }
    for (param, values) in attrs {
        q.attrs
            .push(attr_filter(&param, values).map_err(search_error)?);
    }
    Ok(q)
}

/// The `(parameter, value)` pairs of a JSON body: strings, numbers and booleans as text, lists
/// for the list parameters and attribute equality, `null` as absent.
pub fn pairs_from_json(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let not_object = || {
        ApiError::invalid_parameter(
            "body",
            "the body must be a JSON object of search parameters",
        )
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_parameter("body", format!("the body is not valid JSON: {e}"))
    })?;
    let Value::Object(map) = v else {
        return Err(not_object());
    };
    let scalar = |k: &str, v: &Value| -> Result<Option<String>, ApiError> {
        match v {
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            Value::Bool(b) => Ok(Some(b.to_string())),
            Value::Null => Ok(None),
            _ => Err(ApiError::invalid_parameter(
                k,
                format!("{k} must be a string, a number or a boolean"),
            )),
        }
    };
    let mut pairs = Vec::new();
    for (k, v) in &map {
        match v {
            Value::Array(items) => {
                let listed = LISTS.contains(&k.as_str()) || k.starts_with("attr.");
                if !listed {
                    return Err(ApiError::invalid_parameter(
                        k,
                        format!("{k} takes one value, not a list"),
                    ));
                }
                for item in items {
                    if let Some(s) = scalar(k, item)? {
                        pairs.push((k.clone(), s));
                    }
                }
            }
            other => {
                if let Some(s) = scalar(k, other)? {
                    pairs.push((k.clone(), s));
                }
            }
        }
    }
    Ok(pairs)
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The query string's pairs, decoded, repeats kept.
fn pairs_from_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A client's mistake names its parameter; an index failure keeps its text in the log.
fn search_error(e: SearchError) -> ApiError {
    match e {
        SearchError::Index(m) if m.is_unavailable() => {
            tracing::error!(error = %m, "search: the index is unavailable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the index is unavailable; retry later",
            )
        }
        SearchError::Index(m) => ApiError::from(m),
        other => {
            let param = other.parameter().unwrap_or("q").to_owned();
            ApiError::invalid_parameter(param, other.to_string())
        }
    }
}

/// Per element the caller may read some objects of: the element and its parsed policy.
struct Access {
    principal: Principal,
    context: Context,
    checked: HashMap<String, (Element, Arc<Policy>)>,
}

impl Access {
    /// Whether the caller could HEAD `rec` (asked only for the checked elements).
    fn visible(&self, rec: &ObjectRecord) -> bool {
        self.checked.get(&rec.bucket).is_some_and(|(el, policy)| {
            evaluate(
                &self.principal,
                el,
                policy,
                &self.context,
                Action::HeadObject,
                Facts {
                    key: Some(&rec.key),
                    key_exists: true,
                    existing_tags: Some(&rec.tags),
                },
            )
            .is_ok()
        })
    }
}

/// Restricts `q` to what the caller may HEAD: buckets allowed for every object go to
/// `allowed_buckets`, those where it depends on the object to `checked_buckets` as well.
async fn restrict(
    st: &AdminState,
    caller: &Caller,
    q: &mut SearchQuery,
) -> Result<Access, ApiError> {
    let identity = caller.identity().clone();
    let grants = st.store.cached().grants_for(&identity.account_id).await?;
    let principal = Principal::new(identity, grants);
    let context = Context {
        source_ip: request_source()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical()),
        ..Context::default()
    };
    let mut allowed = Vec::new();
    let mut checked = HashMap::new();
    for (el, doc) in st.store.elements_with_policies().await? {
        if !q.buckets.is_empty() && !q.buckets.contains(&el.name) {
            continue;
        }
        let policy = st.policies.get(&el.name, doc.as_deref());
        match reach(&principal, &el, &policy, &context, Action::HeadObject) {
            Reach::All => allowed.push(el.name.clone()),
            Reach::Depends => {
                allowed.push(el.name.clone());
                checked.insert(el.name.clone(), (el, policy));
            }
            Reach::None => {}
        }
    }
    q.allowed_buckets = Some(allowed);
    q.checked_buckets = checked.keys().cloned().collect();
    Ok(Access {
        principal,
        context,
        checked,
    })
}

async fn run(
    st: &AdminState,
    caller: &Caller,
    pairs: Vec<(String, String)>,
) -> Result<Json<SearchResponse>, ApiError> {
    let mut q = query_from_pairs(pairs)?;
    let access = restrict(st, caller, &mut q).await?;
    let page = st
        .store
        .search_visible(&q, &|rec| access.visible(rec))
        .await
        .map_err(search_error)?;
    Ok(Json(page_view(&page, !q.facets.is_empty(), now_ms())))
}

#[utoipa::path(
    get,
    path = "/api/v1/search",
    operation_id = "search",
    tag = "search",
    summary = "Search objects",
    description = DESCRIPTION,
    params(
        ("q" = Option<String>, Query, description = "Full text (see above)"),
        ("bucket" = Option<Vec<String>>, Query, description = "Repeat for several buckets"),
        ("prefix" = Option<String>, Query, description = "Key prefix"),
        ("content_type" = Option<String>, Query, description = "Exact, or `type/*`"),
        ("owner" = Option<String>, Query, description = "Owner account id or name"),
        ("size_min" = Option<i64>, Query, minimum = 0, description = "Bytes, inclusive"),
        ("size_max" = Option<i64>, Query, minimum = 0, description = "Bytes, inclusive"),
        ("created_from" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("created_to" = Option<String>, Query, description = "RFC 3339, inclusive"),
        ("mode" = Option<crate::openapi::ModeName>, Query, description = "Element mode"),
        ("sort" = Option<String>, Query, description = "`relevance`, `key`, `created` or `size`, optionally `:asc` or `:desc`"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "Page size (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("facets" = Option<String>, Query, description = "Comma list of `content_type`, `bucket`, `attr.<name>`"),
    ),
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "One page of matches", body = SearchResponse),
        (status = 400, description = "Unknown parameter or bad value (`invalid_parameter`, with `parameter`)", body = crate::openapi::ErrorBody),
        (status = 500, description = "The index failed", body = crate::openapi::ErrorBody),
        (status = 503, description = "The index is unavailable", body = crate::openapi::ErrorBody),
    )
)]
async fn search_get(
    State(st): State<AdminState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchResponse>, ApiError> {
    run(&st, &caller, pairs_from_query(raw.as_deref())).await
}

#[utoipa::path(
    post,
    path = "/api/v1/search",
    operation_id = "searchPost",
    tag = "search",
    summary = "Search objects (parameters in a JSON body)",
    description = "The same search as `GET /api/v1/search`, its parameters as the fields of a JSON \
        object: `bucket`, `facets` and `attr.<name>` may be a list; `facets` may also be a comma \
        list; `attr.<name>[.<op>]` and `tag.<key>` are fields of their own \
        (`{\"q\": \"invoice\", \"attr.dept\": [\"sales\", \"legal\"], \"tag.class\": \"public\"}`). \
        Unknown fields are `400 invalid_parameter`.",
    request_body = SearchRequest,
    security(("bearer" = []), ("sigv4" = [])),
    responses(
        (status = 200, description = "One page of matches", body = SearchResponse),
        (status = 400, description = "Malformed body, unknown field or bad value (`invalid_parameter`, with `parameter`)", body = crate::openapi::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = crate::openapi::ErrorBody),
        (status = 500, description = "The index failed", body = crate::openapi::ErrorBody),
        (status = 503, description = "The index is unavailable", body = crate::openapi::ErrorBody),
    )
)]
async fn search_post(
    State(st): State<AdminState>,
    caller: Caller,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let body = body.map_err(body_rejection)?;
    run(&st, &caller, pairs_from_json(&body)?).await
}
