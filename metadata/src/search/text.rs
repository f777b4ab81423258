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

/// The full-text document of an object: its key (path and file name), then its attribute
/// values (among them `description`), then its tag values, as space-separated words.
pub(crate) fn document(
    key: &str,
    attrs: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> String {
    std::iter::once(key)
        .chain(attrs.values().map(String::as_str))
        .chain(tags.values().map(String::as_str))
        .flat_map(words)
        .filter(|w| w.len() <= MAX_WORD_BYTES)
        .collect::<Vec<_>>()
        .join(" ")
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
    fn numbers_are_plain_decimals() {
        assert_eq!(number("42"), Some(42.0));
        assert_eq!(number("-3.5"), Some(-3.5));
        for s in ["2024-01-05", "1e5", "inf", "NaN", "", ".5", "5.", "0x10"] {
            assert_eq!(number(s), None, "{s}");
        }
    }
}
