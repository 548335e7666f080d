//! Timestamps as the store keeps them: UTC with microsecond precision, the finest both
//! PostgreSQL (`timestamptz`) and our SQLite encoding hold, so both backends give back the same
//! value. SQLite stores them as fixed-width text (`2024-05-01T12:00:00.000000Z`) so that text
//! order is time order and range filters and sorting work on the column directly.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::StoreError;

const FIXED: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// `at` as the store will give it back: converted to UTC and truncated to microseconds.
#[must_use]
pub fn normalize_time(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_microsecond(at.microsecond()).unwrap_or(at)
}

/// Refuses timestamps outside years 1 to 9999, which the fixed-width text encoding cannot
/// order, and normalizes the rest.
pub(crate) fn checked(at: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    let at = normalize_time(at);
    if (1..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(StoreError::InvalidInput(format!(
            "timestamp {at} is outside the years 1 to 9999"
        )))
    }
}

/// The fixed-width text form, used in SQLite and in table-query JSON output.
pub(crate) fn to_text(at: OffsetDateTime) -> Result<String, StoreError> {
    checked(at)?
        .format(FIXED)
        .map_err(|e| StoreError::InvalidInput(format!("timestamp {at}: {e}")))
}

/// Reads the fixed-width text form back.
pub(crate) fn from_text(text: &str) -> Result<OffsetDateTime, StoreError> {
    PrimitiveDateTime::parse(text, FIXED)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|e| StoreError::Corrupt(format!("stored timestamp {text:?}: {e}")))
}

/// Reads an RFC 3339 timestamp given by an API caller (any offset).
pub(crate) fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(normalize_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn text_form_is_fixed_width_utc_and_round_trips() {
        let at = datetime!(2024-05-01 14:00:00.123456789 +02:00);
        let text = to_text(at).unwrap();
        assert_eq!(text, "2024-05-01T12:00:00.123456Z");
        assert_eq!(from_text(&text).unwrap(), normalize_time(at));
        assert_eq!(
            to_text(datetime!(2024-05-01 12:00 UTC)).unwrap(),
            "2024-05-01T12:00:00.000000Z"
        );
    }

    #[test]
    fn out_of_range_and_garbage_are_refused() {
        assert!(matches!(
            to_text(datetime!(-0001-01-01 0:00 UTC)),
            Err(StoreError::InvalidInput(_))
        ));
        assert!(matches!(
            from_text("yesterday"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(parse_rfc3339("2024-05-01 12:00").is_none());
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00+02:00"),
            Some(datetime!(2024-05-01 12:00 UTC))
        );
    }
}
