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
    database: Database,
}

/// A database that exists for this test only, not opened by the store yet (to set up what an
/// older Berth would have left in it).
pub struct Database {
    /// What `berth_store::open` will be given.
    pub location: String,
    backend: Backend,
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
        Database::create(backend).await.open().await
    }

    pub async fn sqlite() -> Self {
        Self::new(Backend::Sqlite).await
    }

    pub async fn postgres() -> Self {
        Self::new(Backend::Postgres).await
    }

    /// Runs SQL on the database directly, bypassing the store (to check what the database
    /// itself enforces).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        self.database.execute_raw(sql).await
    }

    /// The columns of `table` and their types as the database itself declares them
    /// (lowercase), in order: what is really stored, whatever the store's queries select.
    pub async fn raw_columns(&self, table: &str) -> Vec<(String, String)> {
        match self.database.backend {
            Backend::Sqlite => {
                let mut conn = self.database.sqlite_connection().await.unwrap();
                sqlx::query_as::<_, (String, String)>(
                    "SELECT name, lower(type) FROM pragma_table_info($1) ORDER BY cid",
                )
                .bind(table)
                .fetch_all(&mut conn)
                .await
                .unwrap()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.location).await.unwrap();
                sqlx::query_as::<_, (String, String)>(
                    "SELECT column_name::text, lower(data_type::text) \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     ORDER BY ordinal_position",
                )
                .bind(table)
                .fetch_all(&mut conn)
                .await
                .unwrap()
            }
        }
    }

    /// The first column of every row `sql` selects, read as bytes (null as `None`), bypassing
    /// the store.
    pub async fn raw_bytes(&self, sql: &str) -> Vec<Option<Vec<u8>>> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.database.backend {
            Backend::Sqlite => {
                let mut conn = self.database.sqlite_connection().await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.location).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }
}

impl Database {
    /// An empty database: a file in a temporary directory, or a PostgreSQL database created
    /// on the server named by `BERTH_TEST_POSTGRES_URL` (and dropped when this is dropped).
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let location = dir.path().join("berth.db").to_string_lossy().into_owned();
                Self {
                    location,
                    backend,
                    cleanup: Cleanup::Sqlite(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_url();
                let database = format!("berth_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot reach the test PostgreSQL: {e}\n{POSTGRES_HINT}")
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                admin.close().await.unwrap();
                Self {
                    location: with_database(&admin_url, &database),
                    backend,
                    cleanup: Cleanup::Postgres {
                        admin_url,
                        database,
                    },
                }
            }
        }
    }

    /// Applies the embedded migrations up to and including `version`, as an older Berth did.
    pub async fn migrate_to(&self, version: i64) {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = self.sqlite_connection().await.unwrap();
                sqlx::migrate!("./migrations/sqlite")
                    .run_to(version, &mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.location).await.unwrap();
                sqlx::migrate!("./migrations/postgres")
                    .run_to(version, &mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Runs SQL on the database directly, bypassing the store.
    pub async fn execute_raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = self.sqlite_connection().await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.location).await?;
                Ok(sqlx::query(sql).execute(&mut conn).await?.rows_affected())
            }
        }
    }

    async fn sqlite_connection(&self) -> Result<sqlx::SqliteConnection, sqlx::Error> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&self.location)
            .create_if_missing(true)
            .foreign_keys(true);
        sqlx::SqliteConnection::connect_with(&options).await
    }

    /// Opens the store on it (which applies the pending migrations).
    pub async fn open(self) -> TestDb {
        let store = berth_store::open(&self.location).await.unwrap();
        let expected = match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        assert_eq!(store.backend(), expected);
        TestDb {
            store,
            location: self.location.clone(),
            database: self,
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Cleanup::Postgres {
            admin_url,
            database,
        } = self
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
