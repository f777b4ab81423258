//! A statement built piece by piece: fixed SQL text plus bound values, never values in the text.

use sqlx::any::AnyArguments;
use sqlx::{Any, AssertSqlSafe};

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Real(f64),
}

#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Binds a value and returns its placeholder, to use in the text once or more.
    pub fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    pub fn text(&mut self, s: impl Into<String>) -> String {
        self.arg(Arg::Text(s.into()))
    }

    /// Placeholders for a list of text values, comma-separated.
    pub fn list(&mut self, values: &[String]) -> String {
        values
            .iter()
            .map(|v| self.text(v.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn query(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        // The text holds only fixed SQL and placeholders; every value is bound below.
        // Not a cached prepared statement: PostgreSQL would switch to a generic plan after five
        // runs, which cannot see which bucket or value is asked for (1 s instead of 20 ms for a
        // deep page at 1M objects); search SQL varies with its filters anyway.
        let mut q = sqlx::query(AssertSqlSafe(self.text)).persistent(false);
        for a in self.args {
            q = match a {
                Arg::Text(s) => q.bind(s),
                Arg::Int(i) => q.bind(i),
                Arg::Real(f) => q.bind(f),
            };
        }
        q
    }
}
