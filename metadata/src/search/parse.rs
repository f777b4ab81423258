//! The `q` syntax: words (all must match), `"a phrase"`, `word*` (prefix), `-word` (must not
//! match) and `a OR b` (OR binds tighter than the implicit AND: `x a OR b` = x AND (a OR b)).
//! Any input either becomes a query of plain words, rendered for each engine with every word
//! quoted, or a [`QueryError`] saying what is wrong. Punctuation between words is ignored.

use super::text::{Field, MAX_WORD_BYTES, words};

/// Longest accepted `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Most words, phrases and prefixes in one `q`.
pub const MAX_TERMS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error("has a word longer than {MAX_WORD_BYTES} bytes")]
    WordTooLong,
    #[error("has more than {MAX_TERMS} terms")]
    TooManyTerms,
    #[error("contains a NUL character")]
    Nul,
    #[error("has an unbalanced '\"'")]
    UnbalancedQuote,
    #[error("has a '*' that does not end a word")]
    MisplacedWildcard,
    #[error("has a '-' with no word after it")]
    DanglingNot,
    #[error("has an OR without a word on each side")]
    DanglingOr,
    #[error("joins a negated term with OR")]
    NegatedOr,
    #[error("has no word to search for")]
    NoTerms,
    #[error("has only negated terms")]
    OnlyNegative,
}

/// One word, or several adjacent words (a phrase); `prefix` applies to the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Atom {
    pub words: Vec<String>,
    pub prefix: bool,
}

/// A parsed `q`: every group must match (a group matches if one of its atoms does), and no
/// atom of `none` may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextQuery {
    pub all: Vec<Vec<Atom>>,
    pub none: Vec<Atom>,
}

enum Item {
    Term { atom: Option<Atom>, negated: bool },
    Or,
}

fn lex(q: &str) -> Result<Vec<Item>, QueryError> {
    let mut items = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c.is_control() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
            if chars.peek().is_none_or(|c| c.is_whitespace()) {
                return Err(QueryError::DanglingNot);
            }
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut phrase = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => phrase.push(c),
                    None => return Err(QueryError::UnbalancedQuote),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                // `"a b"*` or `"a"b`: say so rather than guess.
                return Err(if chars.peek() == Some(&'*') {
                    QueryError::MisplacedWildcard
                } else {
                    QueryError::UnbalancedQuote
                });
            }
            let w = words(&phrase);
            let atom = (!w.is_empty()).then_some(Atom {
                words: w,
                prefix: false,
            });
            items.push(Item::Term { atom, negated });
            continue;
        }
        let mut raw = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c.is_control() {
                break;
            }
            if c == '"' {
                return Err(QueryError::UnbalancedQuote);
            }
            raw.push(c);
            chars.next();
        }
        if raw == "OR" && !negated {
            items.push(Item::Or);
            continue;
        }
        let prefix = raw.ends_with('*');
        let body = raw.trim_end_matches('*');
        if body.contains('*') || raw.ends_with("**") {
            return Err(QueryError::MisplacedWildcard);
        }
        let w = words(body);
        if prefix && w.is_empty() {
            // `*` alone, or after punctuation only: a prefix of nothing.
            return Err(QueryError::MisplacedWildcard);
        }
        let atom = (!w.is_empty()).then_some(Atom { words: w, prefix });
        items.push(Item::Term { atom, negated });
    }
    Ok(items)
}

pub(crate) fn parse(q: &str) -> Result<TextQuery, QueryError> {
    if q.contains('\0') {
        return Err(QueryError::Nul);
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut all: Vec<Vec<Atom>> = Vec::new();
    let mut none = Vec::new();
    let mut pending_or = false;
    let mut terms = 0;
    // Whether the last item was a positive term that an OR may extend.
    let mut last_positive = false;
    for item in lex(q)? {
        match item {
            Item::Or => {
                if !last_positive || pending_or {
                    return Err(QueryError::DanglingOr);
                }
                pending_or = true;
            }
            Item::Term { atom, negated } => {
                if negated && pending_or {
                    return Err(QueryError::NegatedOr);
                }
                let Some(atom) = atom else {
                    // Only punctuation: nothing to match, and nothing for an OR to join.
                    if pending_or {
                        return Err(QueryError::DanglingOr);
                    }
                    last_positive = false;
                    continue;
                };
                if atom.words.iter().any(|w| w.len() > MAX_WORD_BYTES) {
                    return Err(QueryError::WordTooLong);
                }
                terms += 1;
                if terms > MAX_TERMS {
                    return Err(QueryError::TooManyTerms);
                }
                if negated {
                    none.push(atom);
                    last_positive = false;
                } else {
                    match all.last_mut() {
                        Some(group) if pending_or => group.push(atom),
                        _ => all.push(vec![atom]),
                    }
                    last_positive = true;
                }
                pending_or = false;
            }
        }
    }
    if pending_or {
        return Err(QueryError::DanglingOr);
    }
    if all.is_empty() {
        return Err(if none.is_empty() {
            QueryError::NoTerms
        } else {
            QueryError::OnlyNegative
        });
    }
    Ok(TextQuery { all, none })
}

impl TextQuery {
    /// The FTS5 MATCH expression: every group in any column.
    pub(crate) fn to_fts5(&self) -> String {
        let groups: Vec<String> = self.all.iter().map(|g| fts5_group(g, &[])).collect();
        self.fts5_without(groups.join(" AND "))
    }

    /// As [`TextQuery::to_fts5`] for a query of one group, matching only the documents where
    /// the group's best match is in `level` (see [`Field`]).
    pub(crate) fn fts5_level(&self, level: Field) -> String {
        let g = &self.all[0];
        let expr = match level {
            Field::Name => fts5_group(g, &[Field::Name]),
            Field::Path => format!(
                "{} NOT {}",
                fts5_group(g, &[Field::Path]),
                fts5_group(g, &[Field::Name])
            ),
            Field::Rest => format!(
                "{} NOT {}",
                fts5_group(g, &[]),
                fts5_group(g, &[Field::Name, Field::Path])
            ),
        };
        self.fts5_without(expr)
    }

    /// Group `g` matching in `field` only, as FTS5.
    pub(crate) fn fts5_group_in(&self, g: usize, field: Field) -> String {
        fts5_group(&self.all[g], &[field])
    }

    fn fts5_without(&self, mut expr: String) -> String {
        for a in &self.none {
            expr = format!("({expr}) NOT {}", fts5_atom(a));
        }
        expr
    }

    /// The PostgreSQL `tsquery` text (a literal: ArtStore cut the words, not the database's
    /// parser): every group in any field.
    pub(crate) fn to_tsquery(&self) -> String {
        let mut parts: Vec<String> = self.all.iter().map(|g| ts_group(g, "")).collect();
        parts.extend(self.none.iter().map(|a| format!("!{}", ts_atom(a, ""))));
        parts.join(" & ")
    }

    /// As [`TextQuery::fts5_level`], for PostgreSQL.
    pub(crate) fn tsquery_level(&self, level: Field) -> String {
        let g = &self.all[0];
        let mut parts = match level {
            Field::Name => vec![ts_group(g, "A")],
            Field::Path => vec![ts_group(g, "B"), format!("!{}", ts_group(g, "A"))],
            Field::Rest => vec![ts_group(g, ""), format!("!{}", ts_group(g, "AB"))],
        };
        parts.extend(self.none.iter().map(|a| format!("!{}", ts_atom(a, ""))));
        parts.join(" & ")
    }

    /// Group `g` matching in `field` only, as a `tsquery`.
    pub(crate) fn tsquery_group_in(&self, g: usize, field: Field) -> String {
        ts_group(&self.all[g], weight_letter(field))
    }
}

/// The `tsvector` weight letter of each field (postgres.rs writes the document so).
pub(crate) fn weight_letter(f: Field) -> &'static str {
    match f {
        Field::Name => "A",
        Field::Path => "B",
        Field::Rest => "D",
    }
}

/// The FTS5 column of each field (migration 0016).
pub(crate) fn column(f: Field) -> &'static str {
    match f {
        Field::Name => "name",
        Field::Path => "path",
        Field::Rest => "rest",
    }
}

/// Words hold only letters and digits, so quoting them is safe.
fn fts5_atom(a: &Atom) -> String {
    format!(
        "\"{}\"{}",
        a.words.join(" "),
        if a.prefix { "*" } else { "" }
    )
}

/// A group (its atoms ORed), in the given columns only when `fields` is not empty.
fn fts5_group(g: &[Atom], fields: &[Field]) -> String {
    let atoms = format!(
        "({})",
        g.iter().map(fts5_atom).collect::<Vec<_>>().join(" OR ")
    );
    if fields.is_empty() {
        return atoms;
    }
    let cols: Vec<&str> = fields.iter().map(|f| column(*f)).collect();
    format!("({{{}}} : {atoms})", cols.join(" "))
}

/// An atom as a `tsquery`, each word restricted to the `weights` letters when not empty.
fn ts_atom(a: &Atom, weights: &str) -> String {
    let n = a.words.len();
    let ws: Vec<String> = a
        .words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let star = if a.prefix && i + 1 == n { "*" } else { "" };
            if star.is_empty() && weights.is_empty() {
                format!("'{w}'")
            } else {
                format!("'{w}':{star}{weights}")
            }
        })
        .collect();
    format!("({})", ws.join(" <-> "))
}

fn ts_group(g: &[Atom], weights: &str) -> String {
    format!(
        "({})",
        g.iter()
            .map(|a| ts_atom(a, weights))
            .collect::<Vec<_>>()
            .join(" | ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(w: &[&str], prefix: bool) -> Atom {
        Atom {
            words: w.iter().map(|s| s.to_string()).collect(),
            prefix,
        }
    }

    #[test]
    fn the_syntax() {
        let q = parse(r#"Поставки "annual report" rep* -draft x OR y"#).unwrap();
        assert_eq!(
            q.all,
            vec![
                vec![atom(&["поставки"], false)],
                vec![atom(&["annual", "report"], false)],
                vec![atom(&["rep"], true)],
                vec![atom(&["x"], false), atom(&["y"], false)],
            ]
        );
        assert_eq!(q.none, vec![atom(&["draft"], false)]);
        assert_eq!(
            q.to_fts5(),
            r#"(("поставки") AND ("annual report") AND ("rep"*) AND ("x" OR "y")) NOT "draft""#
        );
        assert_eq!(
            q.to_tsquery(),
            "(('поставки')) & (('annual' <-> 'report')) & (('rep':*)) & (('x') | ('y')) & !('draft')"
        );
        // Punctuation inside a word makes a phrase of its parts.
        assert_eq!(
            parse("report.pdf").unwrap().all,
            vec![vec![atom(&["report", "pdf"], false)]]
        );
    }

    #[test]
    fn levels() {
        let q = parse("rep* OR \"a b\" -x").unwrap();
        assert_eq!(
            q.fts5_level(Field::Name),
            r#"(({name} : ("rep"* OR "a b"))) NOT "x""#
        );
        assert_eq!(
            q.fts5_level(Field::Path),
            r#"(({path} : ("rep"* OR "a b")) NOT ({name} : ("rep"* OR "a b"))) NOT "x""#
        );
        assert_eq!(
            q.fts5_level(Field::Rest),
            r#"(("rep"* OR "a b") NOT ({name path} : ("rep"* OR "a b"))) NOT "x""#
        );
        assert_eq!(
            q.tsquery_level(Field::Name),
            "(('rep':*A) | ('a':A <-> 'b':A)) & !('x')"
        );
        assert_eq!(
            q.tsquery_level(Field::Path),
            "(('rep':*B) | ('a':B <-> 'b':B)) & !(('rep':*A) | ('a':A <-> 'b':A)) & !('x')"
        );
        assert_eq!(
            q.tsquery_level(Field::Rest),
            "(('rep':*) | ('a' <-> 'b')) & !(('rep':*AB) | ('a':AB <-> 'b':AB)) & !('x')"
        );
        assert_eq!(
            q.tsquery_group_in(0, Field::Path),
            "(('rep':*B) | ('a':B <-> 'b':B))"
        );
    }

    #[test]
    fn bad_input_is_named() {
        let cases = [
            ("\"open", QueryError::UnbalancedQuote),
            ("a\"b", QueryError::UnbalancedQuote),
            ("*", QueryError::MisplacedWildcard),
            ("a*b", QueryError::MisplacedWildcard),
            ("\"a b\"*", QueryError::MisplacedWildcard),
            ("a\0b", QueryError::Nul),
            ("- a", QueryError::DanglingNot),
            ("OR a", QueryError::DanglingOr),
            ("a OR", QueryError::DanglingOr),
            ("a OR OR b", QueryError::DanglingOr),
            ("a OR -b", QueryError::NegatedOr),
            ("-a", QueryError::OnlyNegative),
            ("&& ||", QueryError::NoTerms),
            ("", QueryError::NoTerms),
        ];
        for (q, want) in cases {
            assert_eq!(parse(q), Err(want), "{q:?}");
        }
        assert_eq!(parse(&"a".repeat(10_000)), Err(QueryError::TooLong));
        assert_eq!(parse(&"語".repeat(900)), Err(QueryError::WordTooLong));
        assert_eq!(
            parse(&"a ".repeat(MAX_TERMS + 1)),
            Err(QueryError::TooManyTerms)
        );
        // Engine syntax is just punctuation here.
        assert_eq!(
            parse("a:* & !b | c'").unwrap().all.len(),
            3,
            "a, b and c become plain words"
        );
    }
}
