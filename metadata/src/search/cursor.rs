//! The opaque next-page token: the sort and the position of the last row returned. A page
//! starts strictly after that position (keyset pagination), so rows written or deleted
//! between pages never shift it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{Sort, SortField};

/// Where the previous page ended, in the sort's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Position {
    /// `Sort::token()` of the query that made it.
    pub sort: String,
    /// The last row's sort value (absent for the key sort, where the key is the value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub int: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<f64>,
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("is not a cursor returned by search")]
    Malformed,
    #[error("was made for another sort order")]
    OtherSort,
}

pub(crate) fn encode(p: &Position) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(p).unwrap_or_default())
}

pub(crate) fn decode(token: &str, sort: Sort) -> Result<Position, CursorError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| CursorError::Malformed)?;
    let p: Position = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if p.sort != sort.token() {
        return Err(CursorError::OtherSort);
    }
    let fits = match sort.field {
        SortField::Key => p.int.is_none() && p.real.is_none(),
        SortField::Created | SortField::Size => p.int.is_some() && p.real.is_none(),
        SortField::Relevance => p.real.is_some_and(f64::is_finite) && p.int.is_none(),
    };
    // A forged position must not reach the database as text it refuses (NUL).
    if !fits || p.bucket.contains('\0') || p.key.contains('\0') {
        return Err(CursorError::Malformed);
    }
    Ok(p)
}
