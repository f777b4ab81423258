//! Search parameters as the admin API and the CLI spell them, turned into [`SearchQuery`]
//! parts: one reading of `attr.<name>[.<op>]` and of the dates for both front ends.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AttrCond, AttrFilter, SearchError, invalid};

/// The operator of an `attr.<name>.<op>` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrOp {
    Eq,
    Prefix,
    Gte,
    Lte,
    Exists,
}

/// Splits what follows `attr.` into the attribute name and the operator. Names may contain
/// dots, so the operator is the last dot-segment when it is `prefix`, `gte`, `lte`, `exists`
/// or `eq`; anything else is all name (exact match): `a.b.eq` is `a.b` equal to, `a.b` too.
pub fn split_attr(rest: &str) -> (&str, AttrOp) {
    if let Some((name, op)) = rest.rsplit_once('.') {
        let op = match op {
            "eq" => Some(AttrOp::Eq),
            "prefix" => Some(AttrOp::Prefix),
            "gte" => Some(AttrOp::Gte),
            "lte" => Some(AttrOp::Lte),
            "exists" => Some(AttrOp::Exists),
            _ => None,
        };
        if let Some(op) = op {
            return (name, op);
        }
    }
    (rest, AttrOp::Eq)
}

/// The filter of parameter `param` (`attr.<name>[.<op>]`, named in errors) with its values:
/// several values are allowed for equality only (any of them matches).
pub fn attr_filter(param: &str, values: Vec<String>) -> Result<AttrFilter, SearchError> {
    let rest = param.strip_prefix("attr.").unwrap_or(param);
    let (name, op) = split_attr(rest);
    let one = |mut values: Vec<String>| match values.len() {
        1 => Ok(values.remove(0)),
        0 => Err(invalid(param, "needs a value")),
        _ => Err(invalid(param, "takes one value")),
    };
    let cond = match op {
        AttrOp::Eq => AttrCond::Equals(values),
        AttrOp::Prefix => AttrCond::Prefix(one(values)?),
        AttrOp::Gte => AttrCond::Gte(one(values)?),
        AttrOp::Lte => AttrCond::Lte(one(values)?),
        AttrOp::Exists => match one(values)?.as_str() {
            "true" => AttrCond::Exists(true),
            "false" => AttrCond::Exists(false),
            _ => return Err(invalid(param, "must be true or false")),
        },
    };
    Ok(AttrFilter {
        name: name.to_owned(),
        cond,
    })
}

/// An RFC 3339 time as ms since the Unix epoch.
pub fn parse_time(param: &str, s: &str) -> Result<i64, SearchError> {
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| invalid(param, "must be an RFC 3339 time, e.g. 2024-05-01T00:00:00Z"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| invalid(param, "is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_the_last_known_segment() {
        assert_eq!(split_attr("dept"), ("dept", AttrOp::Eq));
        assert_eq!(split_attr("dept.prefix"), ("dept", AttrOp::Prefix));
        assert_eq!(split_attr("a.b.eq"), ("a.b", AttrOp::Eq));
        assert_eq!(split_attr("a.b"), ("a.b", AttrOp::Eq));
        assert_eq!(split_attr("year.gte"), ("year", AttrOp::Gte));
        assert_eq!(split_attr("x.lte.exists"), ("x.lte", AttrOp::Exists));
        assert_eq!(split_attr("v1.2"), ("v1.2", AttrOp::Eq));
        assert_eq!(split_attr(".gte"), ("", AttrOp::Gte));
    }

    #[test]
    fn values_fit_the_operator() {
        let f = attr_filter("attr.a.b", vec!["x".into(), "y".into()]).expect("eq");
        assert_eq!(f.name, "a.b");
        assert_eq!(f.cond, AttrCond::Equals(vec!["x".into(), "y".into()]));
        assert!(attr_filter("attr.a.gte", vec!["1".into(), "2".into()]).is_err());
        assert!(attr_filter("attr.a.exists", vec!["yes".into()]).is_err());
        let e = attr_filter("attr.a.prefix", vec![]).expect_err("no value");
        assert_eq!(e.parameter(), Some("attr.a.prefix"));
        assert_eq!(
            parse_time("created_from", "1970-01-01T00:00:01.5Z").ok(),
            Some(1500)
        );
        assert!(parse_time("created_to", "2024-13-01").is_err());
    }
}
