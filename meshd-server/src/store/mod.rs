//! The metadata the server keeps, one module per resource. Every function
//! takes a connection or transaction, so a request composes several of them
//! into one atomic change, and records its change events in that same
//! transaction.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod changes;
pub mod chunks;
pub mod entries;
pub mod invitations;
pub mod members;
pub mod news;
pub mod objects;
pub mod totp;
pub mod usage;

use std::str::FromStr;

/// Reads a text column holding an id.
pub(crate) fn id_column<T: FromStr>(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(idx)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Reads a text column holding JSON.
pub(crate) fn json_column<T: serde::de::DeserializeOwned>(
    row: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}
