//! The one error type of the store, mapped from sqlx at the boundary so callers never match
//! database error strings.

/// What went wrong in a store call. The HTTP layer maps `NotFound` to 404, `Conflict` to 409,
/// `InvalidQuery`/`InvalidInput` to 400 and everything else to 500.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key is taken, or the row changed underneath a compare-and-set.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A table query names an unknown table or column, or gives a value of the wrong type.
    #[error("invalid table query: {0}")]
    InvalidQuery(String),
    /// A value the store cannot keep (out-of-range timestamp, oversized field).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// `open` could not make sense of the database location.
    #[error("invalid database location {location}: {reason}")]
    InvalidLocation {
        /// The location, with any password replaced by `***`.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// A stored value does not decode (for example an unknown workspace state): the database
    /// was changed by something other than Berth.
    #[error("unreadable stored data: {0}")]
    Corrupt(String),
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Any other database failure (connection lost, disk full, ...).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// This backend cannot do it (a snapshot of PostgreSQL: that is `pg_dump`'s job).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A file beside the database (a snapshot's target) could not be made or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}

/// `location` with the password of a `scheme://user:password@host` URL, and a `password=`
/// query parameter, hidden, so errors and logs can show where the database is without leaking
/// the secret. A password with an unescaped `/`, `?` or `#` ends the authority early; then
/// everything up to the last `@` is hidden, more than needed rather than a secret shown
/// (unless what ended the authority follows a port: `host:5432/db?x=a@b` has no password).
pub fn redact_location(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host, tail) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (userinfo, host, tail),
        None => match rest.rsplit_once('@') {
            Some((userinfo, after)) if !after_a_port(authority) => (userinfo, after, ""),
            _ => return redact_query(location),
        },
    };
    let url = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => location.to_owned(),
    };
    redact_query(&url)
}

/// Whether an authority without user info ends in `:PORT`.
fn after_a_port(authority: &str) -> bool {
    authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// `password=...` in the query, hidden.
fn redact_query(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_location("postgres://berth:s3cret@db:5432/berth?sslmode=disable"),
            "postgres://berth:***@db:5432/berth?sslmode=disable"
        );
        assert_eq!(
            redact_location("postgres://berth@db/berth"),
            "postgres://berth@db/berth"
        );
        assert_eq!(
            redact_location("/var/lib/berth/berth.db"),
            "/var/lib/berth/berth.db"
        );
        assert_eq!(
            redact_location("postgres://berth:a@b@db/berth"),
            "postgres://berth:***@db/berth"
        );
        assert_eq!(
            redact_location("postgres://berth:sec/ret?x#y@db/berth"),
            "postgres://berth:***@db/berth"
        );
        // An `@` in the query of a URL without user info is no password.
        assert_eq!(
            redact_location("postgres://db:5432/x?application_name=a@b"),
            "postgres://db:5432/x?application_name=a@b"
        );
        assert_eq!(
            redact_location("postgres://berth@db/x?sslmode=disable&password=s3cret"),
            "postgres://berth@db/x?sslmode=disable&password=***"
        );
        assert_eq!(
            redact_location("postgres://berth:a@db/x?PASSWORD=b"),
            "postgres://berth:***@db/x?PASSWORD=***"
        );
    }
}
