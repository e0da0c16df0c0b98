//! Column defaults, server-filled columns, CHECK and FOREIGN KEY constraints, and the patch
//! API that writes only the fields it is given: on SQLite and PostgreSQL.

use crate::common;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::bulk::BulkOptions;
use orm::prelude::*;
use orm::{Database, Error};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = accounts)]
pub struct Account {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub login: String,
}

/// A package whose counter, status and creation time the database fills.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = packages, check(packages_name_not_empty = "name <> ''"))]
pub struct Package {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub name: String,
    pub description: Option<String>,
    #[orm(server_filled, default = 0, check = "downloads >= 0")]
    pub downloads: i64,
    #[orm(server_filled, default = "'active'")]
    pub status: String,
    #[orm(
        server_filled,
        default(
            postgres = "now()",
            sqlite = "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')"
        )
    )]
    pub created_at: DateTime<Utc>,
    #[orm(references = accounts(id), on_delete = set_null)]
    pub owner_id: Option<i64>,
}

/// The same table, seen by a model that writes its counter back like any other field.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = packages)]
pub struct PackageAllWritten {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub downloads: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub owner_id: Option<i64>,
}

use orm::Model;

fn setup(db: &Database) -> Account {
    db.create_table::<Account>().unwrap();
    db.create_table::<Package>().unwrap();
    db.insert::<Account>(&NewAccount {
        login: "ada".into(),
    })
    .unwrap()
}

fn new_package(name: &str, owner: Option<i64>) -> NewPackage {
    NewPackage {
        name: name.into(),
        description: None,
        owner_id: owner,
    }
}

/// Somebody else's `downloads = downloads + 100`, made with Diesel outside the model API.
fn increment_elsewhere(db: &Database, id: i64) {
    let touched = db
        .execute(
            diesel::update(packages::table.filter(packages::id.eq(id)))
                .set(packages::downloads.eq(packages::downloads + 100)),
        )
        .unwrap();
    assert_eq!(touched, 1);
}

#[test]
fn insert_leaves_server_filled_columns_to_the_database_and_returns_them() {
    for db in common::backends("defaults_insert") {
        let owner = setup(&db);
        let before = Utc::now() - chrono::Duration::seconds(5);
        let row = db
            .insert::<Package>(&new_package("serde", Some(owner.id)))
            .unwrap();
        assert_eq!(row.downloads, 0, "{:?}", db.backend());
        assert_eq!(row.status, "active");
        assert!(row.created_at > before, "{} <= {before}", row.created_at);
        assert!(row.created_at < Utc::now() + chrono::Duration::seconds(5));
        assert_eq!(db.find::<Package>(row.id).unwrap(), row);
    }
}

#[test]
fn bulk_insert_leaves_server_filled_columns_out_on_both_paths() {
    for db in common::backends("defaults_bulk") {
        setup(&db);
        let rows: Vec<_> = (0..500)
            .map(|i| new_package(&format!("crate-{i}"), None))
            .collect();
        // Binary COPY on PostgreSQL, multi-row INSERT on SQLite: both list only the sent columns.
        let report = Package::bulk_insert(&db, &rows, BulkOptions::default()).unwrap();
        assert_eq!(report.rows, 500);
        let stored: Vec<Package> = db.load(packages::table.order(packages::id)).unwrap();
        assert_eq!(stored.len(), 500);
        assert!(stored
            .iter()
            .all(|p| p.downloads == 0 && p.status == "active"));
    }
}

#[test]
fn update_does_not_write_server_filled_columns() {
    for db in common::backends("defaults_update_skips_filled") {
        setup(&db);
        let mut row = db.insert::<Package>(&new_package("tokio", None)).unwrap();
        increment_elsewhere(&db, row.id);
        row.description = Some("async runtime".into());
        let updated = db.update(&row).unwrap();
        assert_eq!(updated.description.as_deref(), Some("async runtime"));
        assert_eq!(updated.downloads, 100, "the concurrent increment survives");
    }
}

#[test]
fn patch_writes_only_the_given_fields_so_a_concurrent_increment_survives() {
    for db in common::backends("defaults_patch_survives") {
        setup(&db);
        let row = db.insert::<Package>(&new_package("rand", None)).unwrap();
        // A model that writes every column loses the increment through `update`, as documented.
        let stale = db.find::<PackageAllWritten>(row.id).unwrap();
        increment_elsewhere(&db, row.id);
        let overwritten = db
            .update(&PackageAllWritten {
                description: Some("stale write".into()),
                ..stale.clone()
            })
            .unwrap();
        assert_eq!(overwritten.downloads, 0, "update writes every column back");

        // The patch writes only `description`: the increment made meanwhile survives.
        increment_elsewhere(&db, row.id);
        let patched = db
            .patch::<PackageAllWritten>(
                row.id,
                &PackageAllWrittenPatch {
                    description: Some(Some("random numbers".into())),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(patched.downloads, 100);
        assert_eq!(patched.description.as_deref(), Some("random numbers"));
        assert_eq!(patched.name, "rand");

        // `Some(None)` writes NULL; a server-filled column can be patched explicitly.
        let cleared = db
            .patch::<Package>(
                row.id,
                &PackagePatch {
                    description: Some(None),
                    status: Some("yanked".into()),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(cleared.description, None);
        assert_eq!(cleared.status, "yanked");
        assert_eq!(cleared.downloads, 100);
    }
}

#[test]
fn patch_reports_missing_rows_and_records_the_write() {
    for db in common::backends("defaults_patch_bookkeeping") {
        setup(&db);
        let row = db.insert::<Package>(&new_package("log", None)).unwrap();
        let rename = PackagePatch {
            name: Some("log2".into()),
            ..Default::default()
        };
        assert!(matches!(
            db.patch::<Package>(row.id + 1000, &rename),
            Err(Error::NotFound { table: "packages" })
        ));
        let written = db
            .with_connection(|conn| {
                conn.patch::<Package>(row.id, &rename)?;
                Ok(conn.info().tables_written)
            })
            .unwrap();
        assert_eq!(written, vec!["packages"]);
        // An empty patch writes nothing and returns the row as stored.
        let (unchanged, info) = db
            .with_connection(|conn| {
                let row = conn.patch::<Package>(row.id, &PackagePatch::default())?;
                Ok((row, conn.info()))
            })
            .unwrap();
        assert_eq!(unchanged.name, "log2");
        assert!(info.tables_written.is_empty());
        assert!(matches!(
            db.patch::<Package>(row.id + 1000, &PackagePatch::default()),
            Err(Error::NotFound { .. })
        ));
    }
}

#[test]
fn check_and_foreign_key_constraints_are_created_and_enforced() {
    for db in common::backends("defaults_constraints") {
        let owner = setup(&db);
        let row = db
            .insert::<Package>(&new_package("hyper", Some(owner.id)))
            .unwrap();
        let negative = db.patch::<Package>(
            row.id,
            &PackagePatch {
                downloads: Some(-1),
                ..Default::default()
            },
        );
        assert!(
            matches!(
                &negative,
                Err(Error::ConstraintViolation { kind: "check", .. })
            ),
            "{negative:?}"
        );
        let empty = db.insert::<Package>(&new_package("", None));
        assert!(
            matches!(
                &empty,
                Err(Error::ConstraintViolation { kind: "check", .. })
            ),
            "{empty:?}"
        );
        let orphan = db.insert::<Package>(&new_package("orphan", Some(owner.id + 1000)));
        assert!(
            matches!(
                &orphan,
                Err(Error::ConstraintViolation {
                    kind: "foreign key",
                    ..
                })
            ),
            "{orphan:?}"
        );
        // ON DELETE SET NULL.
        db.delete::<Account>(owner.id).unwrap();
        assert_eq!(db.find::<Package>(row.id).unwrap().owner_id, None);
    }
}

#[test]
fn constraint_names_are_the_declared_ones() {
    let table = Package::TABLE;
    let checks: Vec<_> = table
        .checks
        .iter()
        .map(|c| (c.name, c.expression))
        .collect();
    assert_eq!(
        checks,
        vec![
            ("packages_downloads_check", "downloads >= 0"),
            ("packages_name_not_empty", "name <> ''"),
        ]
    );
    let fk = &table.foreign_keys[0];
    assert_eq!(
        (
            fk.name,
            fk.column,
            fk.references_table,
            fk.references_column
        ),
        ("packages_owner_id_fkey", "owner_id", "accounts", "id")
    );
    assert_eq!(fk.on_delete, orm::meta::ReferentialAction::SetNull);
    let downloads = table.column("downloads").unwrap();
    assert!(downloads.server_filled);
    assert_eq!(downloads.default_sql(orm::Backend::Postgres), Some("0"));
    let sql =
        orm::schema::ddl::migration_sql(&[Account::TABLE, Package::TABLE], orm::Backend::Postgres);
    for part in [
        "\"created_at\" TIMESTAMPTZ NOT NULL DEFAULT (now())",
        "\"status\" TEXT NOT NULL DEFAULT ('active')",
        "CONSTRAINT \"packages_owner_id_fkey\" FOREIGN KEY (\"owner_id\") REFERENCES \"accounts\" (\"id\") ON DELETE SET NULL",
        "CONSTRAINT \"packages_name_not_empty\" CHECK (name <> '')",
    ] {
        assert!(sql.contains(part), "{part} not in\n{sql}");
    }
}

#[test]
fn an_upsert_cannot_overwrite_a_server_filled_column() {
    for db in common::backends("defaults_upsert") {
        setup(&db);
        let rows = [new_package("serde", None)];
        let result = Package::bulk_insert(
            &db,
            &rows,
            BulkOptions::default()
                .on_conflict(orm::bulk::OnConflict::update(["name"], ["downloads"])),
        );
        match result {
            Err(Error::Model { message, .. }) => {
                assert!(message.contains("the database fills it"), "{message}")
            }
            other => panic!("expected Error::Model, got {other:?}"),
        }
        // Columns the insert sends can be updated on conflict, and the counter is kept.
        let first = db.insert::<Package>(&rows[0]).unwrap();
        increment_elsewhere(&db, first.id);
        let again = [NewPackage {
            description: Some("again".into()),
            ..new_package("serde", None)
        }];
        Package::bulk_insert(
            &db,
            &again,
            BulkOptions::default()
                .on_conflict(orm::bulk::OnConflict::update(["name"], ["description"])),
        )
        .unwrap();
        let stored = db.find::<Package>(first.id).unwrap();
        assert_eq!(
            (stored.description.as_deref(), stored.downloads),
            (Some("again"), 100)
        );
    }
}

/// A key the database fills with a default expression rather than an identity.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = tokens)]
pub struct Token {
    #[orm(
        primary_key,
        server_filled,
        default(postgres = "gen_random_uuid()", sqlite = "randomblob(16)")
    )]
    pub id: uuid::Uuid,
    pub label: String,
}

#[test]
fn a_server_filled_key_comes_back_from_insert_and_bulk_insert() {
    for db in common::backends("defaults_server_filled_key") {
        db.create_table::<Token>().unwrap();
        let one = db
            .insert::<Token>(&NewToken {
                label: "one".into(),
            })
            .unwrap();
        assert!(!one.id.is_nil());
        assert_eq!(db.find::<Token>(one.id).unwrap(), one);
        let rows: Vec<_> = (0..10)
            .map(|i| NewToken {
                label: format!("bulk {i}"),
            })
            .collect();
        let report =
            Token::bulk_insert(&db, &rows, BulkOptions::default().return_keys(true)).unwrap();
        assert_eq!(report.keys.len(), 10);
        for key in &report.keys {
            assert!(db.find::<Token>(*key).unwrap().label.starts_with("bulk "));
        }
        assert_eq!(db.verify_schema::<Token>().unwrap(), vec![]);
    }
}

#[test]
fn a_patch_invalidates_cached_reads_of_its_table() {
    use orm::cache::{Cache, CachedReads};
    for db in common::backends("defaults_patch_cache") {
        setup(&db);
        let cache = Cache::in_process();
        let row = db.insert::<Package>(&new_package("bytes", None)).unwrap();
        let cached = || db.cached(&cache).find::<Package>(row.id).unwrap();
        assert_eq!(cached().description, None);
        let hits = cache.stats().hits;
        assert_eq!(cached().description, None);
        assert_eq!(cache.stats().hits, hits + 1, "served from the cache");
        db.patch::<Package>(
            row.id,
            &PackagePatch {
                description: Some(Some("byte buffers".into())),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(cached().description.as_deref(), Some("byte buffers"));
    }
}
