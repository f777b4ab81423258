//! The words search indexes, cut the same way for documents and queries on both databases.

use std::collections::BTreeMap;

/// Lower-cased runs of letters and digits. Everything else separates words, so `report.pdf`
/// is `report` and `pdf` on both engines (PostgreSQL's parser would keep it as one host name).
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Longer words are not indexed (PostgreSQL drops words over 2 KiB from a `tsvector` and
/// rejects them in a query; a shared, lower limit keeps both databases alike).
pub(crate) const MAX_WORD_BYTES: usize = 255;

/// Where a word of a document stands, most telling first: a word of the file name (the key's
/// last segment) is worth more to relevance than one of the folders above it, and those more
/// than a word of an attribute value or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Field {
    Name,
    Path,
    Rest,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Name, Field::Path, Field::Rest];

    /// What a match in this field adds to the relevance score.
    pub fn weight(self) -> f64 {
        match self {
            Field::Name => 4.0,
            Field::Path => 2.0,
            Field::Rest => 1.0,
        }
    }
}

/// The full-text document of an object, its words field by field: the file name, the folders
/// of the key, then its attribute values (among them `description`) and tag values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Document {
    pub name: Vec<String>,
    pub path: Vec<String>,
    pub rest: Vec<String>,
}

pub(crate) fn document(
    key: &str,
    attrs: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> Document {
    let (path, name) = key.rsplit_once('/').unwrap_or(("", key));
    let cut = |texts: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        texts
            .flat_map(words)
            .filter(|w| w.len() <= MAX_WORD_BYTES)
            .collect()
    };
    Document {
        name: cut(&mut std::iter::once(name)),
        path: cut(&mut std::iter::once(path)),
        rest: cut(&mut attrs.values().chain(tags.values()).map(String::as_str)),
    }
}

impl Document {
    pub fn field(&self, f: Field) -> &[String] {
        match f {
            Field::Name => &self.name,
            Field::Path => &self.path,
            Field::Rest => &self.rest,
        }
    }
}

/// The value as a number, if it is written as a plain decimal (`-12`, `3.5`): what numeric
/// `.gte`/`.lte` compare. Dates such as `2024-01-05` are not numbers and compare as text.
pub(crate) fn number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !plain(int) || !plain(frac) {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_case_alphanumeric_runs() {
        assert_eq!(
            words("Договор_поставки 2024.PDF"),
            ["договор", "поставки", "2024", "pdf"]
        );
    }

    #[test]
    fn documents_have_fields() {
        let attrs = BTreeMap::from([("status".to_owned(), "Approved".to_owned())]);
        let tags = BTreeMap::from([("k".to_owned(), "Red".to_owned())]);
        let d = document("Finance/2024/Report final.pdf", &attrs, &tags);
        assert_eq!(d.name, ["report", "final", "pdf"]);
        assert_eq!(d.path, ["finance", "2024"]);
        assert_eq!(d.rest, ["approved", "red"]);
        assert_eq!(
            document("top", &BTreeMap::new(), &BTreeMap::new()).name,
            ["top"]
        );
    }

    #[test]
    fn numbers_are_plain_decimals() {
        assert_eq!(number("42"), Some(42.0));
        assert_eq!(number("-3.5"), Some(-3.5));
        for s in ["2024-01-05", "1e5", "inf", "NaN", "", ".5", "5.", "0x10"] {
            assert_eq!(number(s), None, "{s}");
        }
    }
}
