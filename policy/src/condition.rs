//! `Condition` blocks: operators, keys, and how a request's values satisfy them (AWS IAM
//! semantics). Parsed and checked once, when the document is stored.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::context::{Context, Facts};
use crate::error::PolicyError;
use crate::principal::Principal;
use crate::wildcard;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    Null,
}

/// Base operator names: (name, kind, negated).
const OPERATORS: &[(&str, Kind, bool)] = &[
    ("StringEquals", Kind::StringEquals, false),
    ("StringNotEquals", Kind::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Kind::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Kind::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Kind::StringLike, false),
    ("StringNotLike", Kind::StringLike, true),
    ("NumericEquals", Kind::NumericEquals, false),
    ("NumericNotEquals", Kind::NumericEquals, true),
    ("NumericLessThan", Kind::NumericLessThan, false),
    ("NumericLessThanEquals", Kind::NumericLessThanEquals, false),
    ("NumericGreaterThan", Kind::NumericGreaterThan, false),
    (
        "NumericGreaterThanEquals",
        Kind::NumericGreaterThanEquals,
        false,
    ),
    ("DateEquals", Kind::DateEquals, false),
    ("DateNotEquals", Kind::DateEquals, true),
    ("DateLessThan", Kind::DateLessThan, false),
    ("DateLessThanEquals", Kind::DateLessThanEquals, false),
    ("DateGreaterThan", Kind::DateGreaterThan, false),
    ("DateGreaterThanEquals", Kind::DateGreaterThanEquals, false),
    ("Bool", Kind::Bool, false),
    ("IpAddress", Kind::IpAddress, false),
    ("NotIpAddress", Kind::IpAddress, true),
    ("Null", Kind::Null, false),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    /// A plain operator: on a multi-valued key, any value may satisfy it.
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    SourceIp,
    SecureTransport,
    CurrentTime,
    Username,
    Userid,
    Prefix,
    Delimiter,
    MaxKeys,
    MetadataDirective,
    CopySource,
    ExistingObjectTag(String),
    RequestObjectTag(String),
    RequestObjectTagKeys,
}

/// Every supported key, as AWS spells it (keys compare case-insensitively; tag names do not).
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "aws:SourceIp",
    "aws:SecureTransport",
    "aws:CurrentTime",
    "aws:username",
    "aws:userid",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-copy-source",
    "s3:ExistingObjectTag/<key>",
    "s3:RequestObjectTag/<key>",
    "s3:RequestObjectTagKeys",
];

impl Key {
    fn parse(name: &str) -> Option<Key> {
        let lower = name.to_ascii_lowercase();
        let tag = |prefix: &str| {
            lower
                .starts_with(prefix)
                .then(|| name[prefix.len()..].to_owned())
                .filter(|t| !t.is_empty())
        };
        if let Some(t) = tag("s3:existingobjecttag/") {
            return Some(Key::ExistingObjectTag(t));
        }
        if let Some(t) = tag("s3:requestobjecttag/") {
            return Some(Key::RequestObjectTag(t));
        }
        Some(match lower.as_str() {
            "aws:sourceip" => Key::SourceIp,
            "aws:securetransport" => Key::SecureTransport,
            "aws:currenttime" => Key::CurrentTime,
            "aws:username" => Key::Username,
            "aws:userid" => Key::Userid,
            "s3:prefix" => Key::Prefix,
            "s3:delimiter" => Key::Delimiter,
            "s3:max-keys" => Key::MaxKeys,
            "s3:x-amz-metadata-directive" => Key::MetadataDirective,
            "s3:x-amz-copy-source" => Key::CopySource,
            "s3:requestobjecttagkeys" => Key::RequestObjectTagKeys,
            _ => return None,
        })
    }

    /// The request's values for the key; `None` when the request does not carry it.
    fn values(&self, p: &Principal, cx: &Context, f: &Facts<'_>) -> Option<Vec<String>> {
        let one = |v: Option<&String>| v.map(|v| vec![v.clone()]);
        match self {
            Key::SourceIp => cx.source_ip.map(|ip| vec![ip.to_string()]),
            Key::SecureTransport => Some(vec![cx.secure_transport.to_string()]),
            Key::CurrentTime => cx.current_time.format(&Rfc3339).ok().map(|t| vec![t]),
            Key::Username => Some(vec![p.identity.name.clone()]),
            Key::Userid => Some(vec![p.identity.account_id.clone()]),
            Key::Prefix => one(cx.prefix.as_ref()),
            Key::Delimiter => one(cx.delimiter.as_ref()),
            Key::MaxKeys => one(cx.max_keys.as_ref()),
            Key::MetadataDirective => one(cx.metadata_directive.as_ref()),
            Key::CopySource => one(cx.copy_source.as_ref()),
            Key::ExistingObjectTag(t) => one(f.existing_tags.and_then(|tags| tags.get(t))),
            Key::RequestObjectTag(t) => one(cx.request_tags.as_ref().and_then(|tags| tags.get(t))),
            Key::RequestObjectTagKeys => cx
                .request_tags
                .as_ref()
                .map(|tags| tags.keys().cloned().collect()),
        }
    }
}

/// The values a condition compares with, parsed for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Operands {
    Strings(Vec<String>),
    Numbers(Vec<f64>),
    Dates(Vec<OffsetDateTime>),
    Bools(Vec<bool>),
    Nets(Vec<IpNet>),
    /// `Null`: `true` requires the key to be absent.
    Absent(bool),
}

/// One operator applied to one key, e.g. `"StringLike": {"s3:prefix": ["home/*"]}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    kind: Kind,
    negated: bool,
    if_exists: bool,
    set: SetOp,
    key: Key,
    operands: Operands,
}

fn parse_operator(name: &str) -> Option<(Kind, bool, bool, SetOp)> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (SetOp::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (SetOp::ForAllValues, r)
    } else {
        (SetOp::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let &(_, kind, negated) = OPERATORS.iter().find(|(n, _, _)| *n == base)?;
    // `NullIfExists` means nothing.
    (!(kind == Kind::Null && if_exists)).then_some((kind, negated, if_exists, set))
}

fn parse_date(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    // A date alone (`2026-01-01`) is midnight UTC; epoch seconds are accepted too, as in IAM.
    if let Ok(d) = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        return Some(d.midnight().assume_utc());
    }
    s.parse::<i64>()
        .ok()
        .and_then(|n| OffsetDateTime::from_unix_timestamp(n).ok())
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The JSON values of a condition as strings (IAM accepts strings, numbers and booleans).
fn raw_values(op: &str, key: &str, v: &Value) -> Result<Vec<String>, PolicyError> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let out: Option<Vec<String>> = match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect(),
        Value::Array(_) => None,
        other => scalar(other).map(|s| vec![s]),
    };
    out.ok_or_else(|| {
        PolicyError::new(format!(
            "condition {op} on '{key}' needs a string, number or boolean, or a non-empty list of them"
        ))
    })
}

fn operands(kind: Kind, op: &str, key: &str, raw: Vec<String>) -> Result<Operands, PolicyError> {
    fn all<T>(
        raw: &[String],
        f: impl Fn(&str) -> Option<T>,
        what: &str,
        op: &str,
        key: &str,
    ) -> Result<Vec<T>, PolicyError> {
        raw.iter()
            .map(|s| {
                f(s).ok_or_else(|| {
                    PolicyError::new(format!("condition {op} on '{key}': '{s}' is not {what}"))
                })
            })
            .collect()
    }
    Ok(match kind {
        Kind::StringEquals | Kind::StringEqualsIgnoreCase | Kind::StringLike => {
            Operands::Strings(raw)
        }
        Kind::NumericEquals
        | Kind::NumericLessThan
        | Kind::NumericLessThanEquals
        | Kind::NumericGreaterThan
        | Kind::NumericGreaterThanEquals => Operands::Numbers(all(
            &raw,
            |s| s.parse::<f64>().ok().filter(|n| n.is_finite()),
            "a number",
            op,
            key,
        )?),
        Kind::DateEquals
        | Kind::DateLessThan
        | Kind::DateLessThanEquals
        | Kind::DateGreaterThan
        | Kind::DateGreaterThanEquals => {
            Operands::Dates(all(&raw, parse_date, "an ISO 8601 date", op, key)?)
        }
        Kind::Bool => Operands::Bools(all(&raw, parse_bool, "true or false", op, key)?),
        Kind::IpAddress => Operands::Nets(all(&raw, parse_net, "an IP address or CIDR", op, key)?),
        Kind::Null => match all(&raw, parse_bool, "true or false", op, key)?.as_slice() {
            [b] => Operands::Absent(*b),
            _ => {
                return Err(PolicyError::new(format!(
                    "condition Null on '{key}' takes one value, true or false"
                )));
            }
        },
    })
}

/// Parses a statement's `Condition` object.
pub(crate) fn parse_block(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let ops = v
        .as_object()
        .ok_or_else(|| PolicyError::new("Condition must be a JSON object"))?;
    let mut out = Vec::new();
    for (op, keys) in ops {
        let (kind, negated, if_exists, set) = parse_operator(op)
            .ok_or_else(|| PolicyError::new(format!("unknown condition operator '{op}'")))?;
        let keys = keys.as_object().ok_or_else(|| {
            PolicyError::new(format!("condition {op} must map condition keys to values"))
        })?;
        if keys.is_empty() {
            return Err(PolicyError::new(format!("condition {op} names no key")));
        }
        for (key_name, values) in keys {
            let key = Key::parse(key_name).ok_or_else(|| {
                PolicyError::new(format!(
                    "unknown condition key '{key_name}'; supported: {}",
                    KNOWN_KEYS.join(", ")
                ))
            })?;
            let raw = raw_values(op, key_name, values)?;
            out.push(Condition {
                kind,
                negated,
                if_exists,
                set,
                key,
                operands: operands(kind, op, key_name, raw)?,
            });
        }
    }
    Ok(out)
}

impl Condition {
    /// Whether the outcome depends on the target object (its stored tags), not only on the
    /// request.
    pub(crate) fn depends_on_object(&self) -> bool {
        matches!(self.key, Key::ExistingObjectTag(_))
    }

    /// Whether the request satisfies the condition.
    pub(crate) fn holds(&self, p: &Principal, cx: &Context, f: &Facts<'_>) -> bool {
        let values = self.key.values(p, cx, f).filter(|v| !v.is_empty());
        if let Operands::Absent(want_absent) = self.operands {
            return values.is_none() == want_absent;
        }
        let Some(values) = values else {
            // IAM: a missing key fails a positive test, passes a negated one, `…IfExists`
            // and `ForAllValues:` (no value to fail it).
            return self.if_exists || self.negated || self.set == SetOp::ForAllValues;
        };
        let one = |v: &String| self.matches_any(v) != self.negated;
        match self.set {
            SetOp::Single | SetOp::ForAnyValue => values.iter().any(one),
            SetOp::ForAllValues => values.iter().all(one),
        }
    }

    /// Whether `v` satisfies the (positive) operator for one of the operands.
    fn matches_any(&self, v: &str) -> bool {
        match &self.operands {
            Operands::Strings(ss) => ss.iter().any(|s| match self.kind {
                Kind::StringEqualsIgnoreCase => s.to_lowercase() == v.to_lowercase(),
                Kind::StringLike => wildcard::matches(s, v, false),
                _ => s == v,
            }),
            Operands::Numbers(ns) => v.parse::<f64>().is_ok_and(|x| {
                ns.iter().any(|n| match self.kind {
                    Kind::NumericLessThan => x < *n,
                    Kind::NumericLessThanEquals => x <= *n,
                    Kind::NumericGreaterThan => x > *n,
                    Kind::NumericGreaterThanEquals => x >= *n,
                    _ => x == *n,
                })
            }),
            Operands::Dates(ds) => parse_date(v).is_some_and(|t| {
                ds.iter().any(|d| match self.kind {
                    Kind::DateLessThan => t < *d,
                    Kind::DateLessThanEquals => t <= *d,
                    Kind::DateGreaterThan => t > *d,
                    Kind::DateGreaterThanEquals => t >= *d,
                    _ => t == *d,
                })
            }),
            Operands::Bools(bs) => parse_bool(v).is_some_and(|b| bs.contains(&b)),
            Operands::Nets(nets) => v
                .parse::<IpAddr>()
                .is_ok_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Operands::Absent(_) => false,
        }
    }
}
