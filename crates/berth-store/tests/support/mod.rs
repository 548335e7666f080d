//! Fresh stores for tests: an SQLite file in a temporary directory, or a PostgreSQL database of
//! its own (created on the server named by `BERTH_TEST_POSTGRES_URL`, dropped afterwards), so
//! tests run in parallel without seeing each other's rows.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// test code: a panic is the failure report

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use berth_store::Store;
use sqlx::Connection as _;

pub const POSTGRES_HINT: &str = "BERTH_TEST_POSTGRES_URL is not set: run the tests through \
     `make test`, or start the test PostgreSQL with `scripts/postgres.sh start` and then \
     `eval \"$(scripts/postgres.sh env)\"`";

/// A store on a database that exists for this test only.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    /// What `berth_store::open` was given.
    pub location: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await,
        }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("berth.db").to_string_lossy().into_owned();
        let store = berth_store::open(&location).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        Self {
            store,
            location,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    pub async fn postgres() -> Self {
        let admin_url = postgres_url();
        let database = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL: {e}\n{POSTGRES_HINT}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let location = with_database(&admin_url, &database);
        let store = berth_store::open(&location).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        Self {
            store,
            location,
            cleanup: Cleanup::Postgres {
                admin_url,
                database,
            },
        }
    }

    /// Runs SQL on the database directly, bypassing the store (to check what the database
    /// itself enforces).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.cleanup {
            Cleanup::Sqlite(_) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", self.location)).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            }
            Cleanup::Postgres { .. } => {
                let mut conn = sqlx::PgConnection::connect(&self.location).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = &self.cleanup
        {
            let (admin_url, name) = (admin_url.clone(), database.clone());
            // Drop may run inside a runtime: drop the database from a thread with its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await?;
                    admin.close().await
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("warning: could not drop test database {database}: {dropped:?}");
            }
        }
    }
}

/// The admin URL of the test PostgreSQL; panics with how to start it when it is not set.
pub fn postgres_url() -> String {
    match std::env::var("BERTH_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("{POSTGRES_HINT}"),
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}
