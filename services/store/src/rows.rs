//! Converting between Rust values and the text the schema stores (UUIDs, RFC 3339 times, JSON maps).

use std::fmt::Display;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::StoreError;

/// The current time as stored: RFC 3339, UTC, microseconds.
pub(crate) fn now() -> DateTime<Utc> {
    // Round to what is stored so that a value returned by a create function equals the one read back later.
    let now = Utc::now();
    DateTime::parse_from_rfc3339(&time_text(now))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

pub(crate) fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads a text column and parses it with `FromStr` (typed IDs, names, socket addresses).
pub(crate) fn parsed<T>(row: &AnyRow, column: &str) -> Result<T, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("column {column} = {text:?}: {e}")))
}

pub(crate) fn optional_parsed<T>(row: &AnyRow, column: &str) -> Result<Option<T>, StoreError>
where
    T: FromStr,
    T::Err: Display,
{
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| {
        text.parse()
            .map_err(|e| StoreError::Corrupt(format!("column {column} = {text:?}: {e}")))
    })
    .transpose()
}

pub(crate) fn time(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    let text: String = row.try_get(column)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("column {column} = {text:?}: {e}")))
}

pub(crate) fn json<T: DeserializeOwned>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// Reads a non-negative integer column into `u32`/`u64`.
pub(crate) fn unsigned<T: TryFrom<i64>>(row: &AnyRow, column: &str) -> Result<T, StoreError> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("column {column} = {value} is out of range")))
}

/// Reads a boolean stored as INTEGER 0/1 (the same on both backends: `Any` decodes no PostgreSQL BOOLEAN
/// from a SQLite column or the other way round, so the schema has no BOOLEAN).
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    let value: i64 = row.try_get(column)?;
    Ok(value != 0)
}

/// A boolean as stored (see [`flag`]).
pub(crate) fn flag_value(value: bool) -> i64 {
    i64::from(value)
}

/// Stored integers are signed 64-bit; sizes beyond `i64::MAX` cannot be stored.
pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge { what, value })
}
