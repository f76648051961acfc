//! The two migration folders stay in step: the same files, and after migrating, the same tables, columns and
//! column types (SQLite INTEGER is PostgreSQL BIGINT; TEXT is TEXT).

use std::collections::BTreeSet;
use std::path::Path;

use sqlx::{Connection, Row};

fn migration_files(backend: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_files() {
    let sqlite = migration_files("sqlite");
    assert!(sqlite.len() >= 11, "{sqlite:?}");
    assert_eq!(sqlite, migration_files("postgres"));
}

/// (table, column, type) with the type as PostgreSQL names it.
type Columns = BTreeSet<(String, String, String)>;

async fn sqlite_columns(path: &Path) -> Columns {
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT m.name AS table_name, p.name AS column_name, p.type AS column_type \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            let ty: String = row.get("column_type");
            let ty = match ty.as_str() {
                "INTEGER" => "bigint".to_owned(),
                other => other.to_lowercase(),
            };
            (row.get("table_name"), row.get("column_name"), ty)
        })
        .collect()
}

async fn postgres_columns(url: &str) -> Columns {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let rows = sqlx::query(
        "SELECT table_name::TEXT AS table_name, column_name::TEXT AS column_name, \
                data_type::TEXT AS column_type \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.get("table_name"),
                row.get("column_name"),
                row.get("column_type"),
            )
        })
        .collect()
}

#[tokio::test]
async fn both_backends_migrate_to_the_same_tables_and_columns() {
    let Some(postgres) =
        crate::postgres_database("schema::both_backends_migrate_to_the_same_tables_and_columns").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = crate::sqlite_database(&dir).await;
    sqlite.close().await;
    let sqlite_columns = sqlite_columns(&dir.path().join("berth.db")).await;
    assert!(
        sqlite_columns
            .iter()
            .any(|(t, c, _)| t == "instances" && c == "last_exit_at"),
        "{sqlite_columns:?}"
    );
    let postgres_columns = postgres_columns(&postgres.url().unwrap()).await;
    let only_sqlite: Vec<_> = sqlite_columns.difference(&postgres_columns).collect();
    let only_postgres: Vec<_> = postgres_columns.difference(&sqlite_columns).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only in sqlite: {only_sqlite:?}\nonly in postgres: {only_postgres:?}"
    );
}
