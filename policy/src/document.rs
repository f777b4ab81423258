//! Bucket policy documents: parsed and validated once, when stored (PutBucketPolicy) or when
//! the stored text changes, into statements the evaluator matches without re-reading JSON.

use serde_json::Value;

use crate::action::{Action, KNOWN_ACTIONS};
use crate::condition::{self, Condition};
use crate::context::{Context, Facts};
use crate::error::PolicyError;
use crate::principal::Principal;
use crate::wildcard;

/// Effect of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or (for `NotAction`, `NotResource`, `NotPrincipal`) its complement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Patterns {
    not: bool,
    items: Vec<String>,
}

/// One statement of a stored bucket policy.
#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// Account names or ids; `*` is everyone.
    principals: Patterns,
    actions: Patterns,
    resources: Patterns,
    conditions: Vec<Condition>,
}

/// A parsed bucket policy (empty: no policy stored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn malformed(msg: impl Into<String>) -> PolicyError {
    PolicyError::new(msg)
}

/// A string or a non-empty list of strings, as policy documents allow.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(format!("{what} entries must be strings")))
            })
            .collect(),
        _ => Err(malformed(format!(
            "{what} must be a string or a non-empty list of strings"
        ))),
    }
}

/// The one of `name` / `Not<name>` a statement has (exactly one is required).
fn one_of<'a>(
    s: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<(bool, &'a Value), PolicyError> {
    let not = format!("Not{name}");
    match (s.get(name), s.get(&not)) {
        (Some(v), None) => Ok((false, v)),
        (None, Some(v)) => Ok((true, v)),
        (Some(_), Some(_)) => Err(malformed(format!(
            "a statement has either {name} or {not}, not both"
        ))),
        (None, None) => Err(malformed(format!("every statement needs {name} or {not}"))),
    }
}

fn principals(not: bool, v: &Value, field: &str) -> Result<Patterns, PolicyError> {
    let items = match v {
        Value::String(star) if star == "*" => vec!["*".to_owned()],
        Value::Object(p) if p.len() == 1 && p.contains_key("AWS") => {
            strings(&p["AWS"], &format!("{field}.AWS"))?
        }
        _ => {
            return Err(malformed(format!(
                "{field} must be \"*\" or {{\"AWS\": [service account names or ids]}}"
            )));
        }
    };
    Ok(Patterns { not, items })
}

fn actions(not: bool, v: &Value, field: &str) -> Result<Patterns, PolicyError> {
    let items = strings(v, field)?;
    for a in &items {
        let known = a == "*" || KNOWN_ACTIONS.iter().any(|k| wildcard::matches(a, k, true));
        if !known {
            return Err(malformed(format!(
                "unknown action '{a}' in {field}; supported: {}",
                KNOWN_ACTIONS.join(", ")
            )));
        }
    }
    Ok(Patterns { not, items })
}

fn resources(bucket: &str, not: bool, v: &Value, field: &str) -> Result<Patterns, PolicyError> {
    let items = strings(v, field)?;
    for r in &items {
        // `*`, or an ARN that can name this bucket or objects in it (`arn:aws:s3:::b*` too).
        let in_bucket = r == "*"
            || r.strip_prefix("arn:aws:s3:::")
                .is_some_and(|rest| match rest.split_once('/') {
                    Some((b, _)) => wildcard::matches(b, bucket, false),
                    None => {
                        wildcard::matches(rest, bucket, false)
                            || wildcard::matches(rest, &format!("{bucket}/-"), false)
                    }
                });
        if !in_bucket {
            return Err(malformed(format!(
                "resource '{r}' in {field} is outside bucket '{bucket}'"
            )));
        }
    }
    Ok(Patterns { not, items })
}

fn statement(bucket: &str, v: &Value) -> Result<Statement, PolicyError> {
    let s = v
        .as_object()
        .ok_or_else(|| malformed("each statement must be a JSON object"))?;
    for k in s.keys() {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(malformed(format!("unsupported statement field '{k}'")));
        }
    }
    if s.get("Sid").is_some_and(|sid| !sid.is_string()) {
        return Err(malformed("Sid must be a string"));
    }
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(malformed("Effect must be \"Allow\" or \"Deny\"")),
    };
    let field = |not: bool, name: &str| {
        if not {
            format!("Not{name}")
        } else {
            name.to_owned()
        }
    };
    let (not, p) = one_of(s, "Principal")?;
    let principals = principals(not, p, &field(not, "Principal"))?;
    let (not, a) = one_of(s, "Action")?;
    let actions = actions(not, a, &field(not, "Action"))?;
    let (not, r) = one_of(s, "Resource")?;
    let resources = resources(bucket, not, r, &field(not, "Resource"))?;
    let conditions = match s.get("Condition") {
        Some(c) => condition::parse_block(c)?,
        None => Vec::new(),
    };
    Ok(Statement {
        effect,
        principals,
        actions,
        resources,
        conditions,
    })
}

impl Policy {
    /// Parses and validates a policy document for `bucket`.
    pub fn parse(bucket: &str, doc: &str) -> Result<Policy, PolicyError> {
        let v: Value = serde_json::from_str(doc)
            .map_err(|e| malformed(format!("Policies must be valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| malformed("the policy must be a JSON object"))?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("unknown policy field '{k}'")));
            }
        }
        if let Some(ver) = obj.get("Version")
            && !matches!(ver.as_str(), Some("2012-10-17" | "2008-10-17"))
        {
            return Err(malformed("Version must be \"2012-10-17\""));
        }
        let statements = match obj.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|s| statement(bucket, s))
                .collect::<Result<_, _>>()?,
            Some(o @ Value::Object(_)) => vec![statement(bucket, o)?],
            _ => return Err(malformed("the policy needs a non-empty Statement list")),
        };
        Ok(Policy { statements })
    }

    /// Whether a statement with `effect` matches the request.
    pub(crate) fn any_matches(
        &self,
        effect: Effect,
        p: &Principal,
        cx: &Context,
        bucket: &str,
        action: Action,
        f: &Facts<'_>,
    ) -> bool {
        self.statements
            .iter()
            .any(|s| s.effect == effect && s.matches(p, cx, bucket, action, f))
    }
}

/// Whether something holds for every object of a bucket, for none, or only for some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Every,
    Some,
    NoObject,
}

impl Scope {
    /// Both must hold.
    fn and(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::NoObject, _) | (_, Scope::NoObject) => Scope::NoObject,
            (Scope::Every, Scope::Every) => Scope::Every,
            _ => Scope::Some,
        }
    }

    /// One of them must hold.
    pub(crate) fn or(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::Every, _) | (_, Scope::Every) => Scope::Every,
            (Scope::NoObject, Scope::NoObject) => Scope::NoObject,
            _ => Scope::Some,
        }
    }

    fn not(self) -> Scope {
        match self {
            Scope::Every => Scope::NoObject,
            Scope::NoObject => Scope::Every,
            Scope::Some => Scope::Some,
        }
    }
}

/// Which object ARNs `arn:aws:s3:::bucket/<key>` one resource pattern matches. Sound, not
/// exact: `Every` and `NoObject` are only said when certain, anything else is `Some`.
fn pattern_scope(pattern: &str, bucket: &str) -> Scope {
    let base = format!("arn:aws:s3:::{bucket}/");
    // `A*` matching the bare prefix matches it followed by any key (the star takes the key).
    if pattern.ends_with('*') && wildcard::matches(pattern, &base, false) {
        return Scope::Every;
    }
    if !pattern.contains(['*', '?']) {
        // Exactly one ARN: an object's when it names a key in this bucket.
        return if pattern.len() > base.len() && pattern.starts_with(&base) {
            Scope::Some
        } else {
            Scope::NoObject
        };
    }
    // Every match starts with the pattern's literal head; if that head and the prefix
    // disagree before either ends, no object ARN can match.
    let head: String = pattern
        .chars()
        .take_while(|c| !matches!(c, '*' | '?'))
        .collect();
    if head.starts_with(&base) || base.starts_with(&head) {
        Scope::Some
    } else {
        Scope::NoObject
    }
}

impl Policy {
    /// For which objects of `bucket` some statement with `effect` matches the object action
    /// `action` (see [`Scope`]).
    pub(crate) fn object_scope(
        &self,
        effect: Effect,
        p: &Principal,
        cx: &Context,
        bucket: &str,
        action: Action,
    ) -> Scope {
        self.statements
            .iter()
            .filter(|s| s.effect == effect)
            .map(|s| s.object_scope(p, cx, bucket, action))
            .fold(Scope::NoObject, Scope::or)
    }
}

impl Patterns {
    fn hit(&self, matches: impl Fn(&str) -> bool) -> bool {
        self.items.iter().any(|i| matches(i)) != self.not
    }
}

impl Statement {
    /// For which objects of `bucket` the statement matches an object action, as far as the
    /// request alone tells (resources and object-tag conditions depend on the object).
    fn object_scope(&self, p: &Principal, cx: &Context, bucket: &str, action: Action) -> Scope {
        let id = &p.identity;
        let request = self
            .principals
            .hit(|x| x == "*" || x == id.name || x == id.account_id)
            && self
                .actions
                .hit(|a| a == "*" || wildcard::matches(a, action.name(), true))
            && self
                .conditions
                .iter()
                .filter(|c| !c.depends_on_object())
                .all(|c| c.holds(p, cx, &Facts::default()));
        if !request {
            return Scope::NoObject;
        }
        let any = self
            .resources
            .items
            .iter()
            .map(|r| pattern_scope(r, bucket))
            .fold(Scope::NoObject, Scope::or);
        let resources = if self.resources.not { any.not() } else { any };
        let tags = if self.conditions.iter().any(Condition::depends_on_object) {
            Scope::Some
        } else {
            Scope::Every
        };
        resources.and(tags)
    }

    fn matches(
        &self,
        p: &Principal,
        cx: &Context,
        bucket: &str,
        action: Action,
        f: &Facts<'_>,
    ) -> bool {
        let id = &p.identity;
        let resource = match f.key.filter(|_| action.on_object()) {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        };
        self.principals
            .hit(|x| x == "*" || x == id.name || x == id.account_id)
            && self
                .actions
                .hit(|a| a == "*" || wildcard::matches(a, action.name(), true))
            && self
                .resources
                .hit(|r| r == "*" || wildcard::matches(r, &resource, false))
            && self.conditions.iter().all(|c| c.holds(p, cx, f))
    }
}
