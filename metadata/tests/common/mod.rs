//! Test databases for the index tests: SQLite in a temp dir, and PostgreSQL as a fresh
//! database on ARTSTORE_TEST_DATABASE_URL (skipped with a message when unset, unless
//! ARTSTORE_TEST_REQUIRE_ALL=1), dropped afterwards.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use artstore_metadata::{MasterKey, SecretBox, Store};

pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: tempfile::TempDir,
    pg_admin: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((url, name)) = self.pg_admin.take() {
            // Best effort, on a fresh runtime because Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut c) = sqlx::AnyConnection::connect(&url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub async fn open(kind: &str) -> Option<TestDb> {
    let dir = tempfile::tempdir().unwrap();
    let secrets = SecretBox::new(&MasterKey::generate());
    let (url, pg_admin) = if kind == "sqlite" {
        (Store::sqlite_url(dir.path()), None)
    } else {
        let Ok(base) = std::env::var("ARTSTORE_TEST_DATABASE_URL") else {
            assert!(
                std::env::var("ARTSTORE_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
                "ARTSTORE_TEST_REQUIRE_ALL=1 but ARTSTORE_TEST_DATABASE_URL is not set"
            );
            eprintln!("skipping: ARTSTORE_TEST_DATABASE_URL not set");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("artstore_s_{}", uuid::Uuid::new_v4().simple());
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let (head, _) = base.rsplit_once('/').unwrap();
        (format!("{head}/{name}"), Some((base.clone(), name)))
    };
    let store = Store::connect(&url, secrets).await.unwrap();
    store.migrate().await.unwrap();
    Some(TestDb {
        store,
        url,
        _dir: dir,
        pg_admin,
    })
}
