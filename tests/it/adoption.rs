//! Adopting `orm` on an existing PostgreSQL database: the SQL migrations of a package
//! registry (`tests/it/adoption/migrations`), the `schema.rs` that `diesel print-schema` writes
//! for them (`tests/it/adoption/schema.rs`), and models bound to its tables with `diesel_table`.
//! The tables use a PostgreSQL enum, an array, `citext` and `varchar(n)` besides the common
//! types. CRUD, partials, joins and COPY bulk inserts run against the migrated tables, triggers
//! fire, `verify_schema` finds no difference, and the DDL `orm` prints for the models has the
//! migration's defaults and constraints.
//!
//! The models are written as a Diesel user writes them, with no backend attribute: the
//! `table!`s' PostgreSQL-only types (`Timestamptz`, `Jsonb`, `Array<…>`, `Citext`, a
//! `tsvector`) make a model PostgreSQL's, and plain ones leave it usable on both backends. A
//! column PostgreSQL computes (`GENERATED ALWAYS AS … STORED`) and a trigger-kept `tsvector`,
//! which Diesel reads but cannot write, are `#[orm(read_only)]`.
#![cfg(feature = "postgres")]

use crate::common;

#[rustfmt::skip]
mod schema;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_full_text_search::PgTsVector;
use orm::bulk::{BulkOptions, OnConflict};
use orm::meta::TableMeta;
use orm::prelude::*;
use orm::{Backend, Database, DbEnum, Model};

const DIESEL_SETUP: &str =
    include_str!("adoption/migrations/00000000000000_diesel_initial_setup/up.sql");
const REGISTRY: &str = include_str!("adoption/migrations/2024-01-01-000000_registry/up.sql");
const SEARCH: &str = include_str!("adoption/migrations/2024-02-01-000000_search/up.sql");

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i32,
    pub gh_login: String,
    pub name: Option<String>,
    pub gh_avatar: Option<String>,
    pub gh_id: i32,
    pub account_lock_reason: Option<String>,
    /// `citext`: compared without case by the database.
    pub email: Option<String>,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
    #[orm(server_filled, default = false)]
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    diesel_table = schema::crates,
    check(crates_name_format = "name ~ '^[a-zA-Z][a-zA-Z0-9_-]*$'"),
    partial(CrateCard = [id, name, downloads])
)]
pub struct Crate {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(unique)]
    pub name: String,
    /// Kept by the `set_updated_at` trigger.
    #[orm(server_filled, default = "now()")]
    pub updated_at: DateTime<Utc>,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
    /// Kept by the `count_version_downloads` trigger.
    #[orm(server_filled, default = 0, check = "downloads >= 0")]
    pub downloads: i32,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub repository: Option<String>,
    pub max_upload_size: Option<i32>,
    pub max_features: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::versions, unique(crate_id, num))]
pub struct Version {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(references = crates(id), on_delete = cascade)]
    pub crate_id: i32,
    pub num: String,
    #[orm(server_filled, default = "now()")]
    pub updated_at: DateTime<Utc>,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
    #[orm(server_filled, default = 0)]
    pub downloads: i32,
    #[orm(default = "'{}'")]
    pub features: serde_json::Value,
    #[orm(default = false)]
    pub yanked: bool,
    pub license: Option<String>,
    #[orm(check = "crate_size >= 0")]
    pub crate_size: Option<i32>,
    #[orm(references = users(id), on_delete = set_null)]
    pub published_by: Option<i32>,
    #[orm(default = "'{}'")]
    pub bin_names: Vec<String>,
}

/// The `version_action` enum type of the migration.
#[derive(Debug, Clone, Copy, PartialEq, DbEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[orm(pg_type = "version_action", sql_type = schema::sql_types::VersionAction)]
pub enum VersionAction {
    Publish,
    Yank,
    Unyank,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::version_owner_actions)]
pub struct VersionOwnerAction {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(references = versions(id), on_delete = cascade)]
    pub version_id: i32,
    #[orm(references = users(id))]
    pub user_id: i32,
    pub action: VersionAction,
    #[orm(server_filled, default = "now()")]
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::crate_owners)]
pub struct CrateOwner {
    #[orm(primary_key, references = crates(id), on_delete = cascade)]
    pub crate_id: i32,
    #[orm(primary_key, references = users(id))]
    pub owner_id: i32,
    #[orm(primary_key, default = 0)]
    pub owner_kind: i32,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
    #[orm(references = users(id))]
    pub created_by: Option<i32>,
    #[orm(default = false)]
    pub deleted: bool,
    #[orm(server_filled, default = "now()")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::version_downloads)]
pub struct VersionDownload {
    #[orm(primary_key, references = versions(id), on_delete = cascade)]
    pub version_id: i32,
    #[orm(default = 1, check = "downloads >= 0")]
    pub downloads: i32,
    #[orm(default = 0)]
    pub counted: i32,
    #[orm(primary_key, default = "CURRENT_DATE")]
    pub date: NaiveDate,
    #[orm(default = false)]
    pub processed: bool,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::keywords)]
pub struct Keyword {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(unique, length = 50)]
    pub keyword: String,
    /// Kept by the `count_crates_keywords` trigger.
    #[orm(server_filled, default = 0, check = "crates_cnt >= 0")]
    pub crates_cnt: i32,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::crates_keywords)]
pub struct CrateKeyword {
    #[orm(primary_key, references = crates(id), on_delete = cascade)]
    pub crate_id: i32,
    #[orm(primary_key, references = keywords(id))]
    pub keyword_id: i32,
}

/// Every model's table, referenced tables first.
const TABLES: [&TableMeta; 8] = [
    User::TABLE,
    Crate::TABLE,
    Version::TABLE,
    CrateOwner::TABLE,
    VersionDownload::TABLE,
    Keyword::TABLE,
    CrateKeyword::TABLE,
    VersionOwnerAction::TABLE,
];

/// A database in a fresh schema, migrated with the registry's migrations.
fn migrated(test: &str) -> Option<Database> {
    let db = with_citext(test)?;
    db.batch_execute(DIESEL_SETUP).unwrap();
    db.batch_execute(REGISTRY).unwrap();
    Some(db)
}

/// A fresh schema whose search path also has `public`, where the `citext` extension is (an
/// extension is installed once per database, which other tests share).
fn with_citext(test: &str) -> Option<Database> {
    let url = common::postgres_url(test)?;
    let admin = Database::builder(&std::env::var("ORM_TEST_PG_URL").unwrap())
        .pool(orm::PoolConfig::none())
        .connect()
        .unwrap();
    // Two tests may race to create it; the loser sees it created.
    let create = "CREATE EXTENSION IF NOT EXISTS citext SCHEMA public";
    if admin.batch_execute(create).is_err() {
        admin.batch_execute(create).unwrap();
    }
    Some(Database::connect(&format!("{url}%2Cpublic")).unwrap())
}

fn user(db: &Database, login: &str) -> User {
    db.insert::<User>(&NewUser {
        gh_login: login.into(),
        name: None,
        gh_avatar: None,
        gh_id: 1,
        account_lock_reason: None,
        email: Some(format!("{login}@example.com")),
    })
    .unwrap()
}

fn krate(db: &Database, name: &str) -> Crate {
    db.insert::<Crate>(&NewCrate {
        name: name.into(),
        description: None,
        homepage: None,
        repository: None,
        max_upload_size: None,
        max_features: None,
    })
    .unwrap()
}

fn version(db: &Database, krate: &Crate, num: &str, publisher: Option<i32>) -> Version {
    db.insert::<Version>(&NewVersion {
        crate_id: krate.id,
        num: num.into(),
        features: serde_json::json!({ "default": ["std"] }),
        yanked: false,
        license: Some("MIT OR Apache-2.0".into()),
        crate_size: Some(1024),
        published_by: publisher,
        bin_names: vec!["serde-cli".into(), "helper".into()],
    })
    .unwrap()
}

#[test]
fn the_migrated_tables_match_the_models() {
    let Some(db) = migrated("adoption_verify") else {
        return;
    };
    let differences = db.verify_tables(&TABLES).unwrap();
    assert_eq!(differences, vec![], "{differences:#?}");
    // create_table on a table that matches changes nothing and succeeds.
    db.create_table::<Crate>().unwrap();
}

#[test]
fn crud_partials_and_joins_on_the_migrated_tables() {
    let Some(db) = migrated("adoption_crud") else {
        return;
    };
    let ada = user(&db, "ada");
    assert!(!ada.is_admin, "the default filled is_admin");
    let serde = krate(&db, "serde");
    assert_eq!(serde.downloads, 0);
    assert_eq!(serde.created_at, serde.updated_at);
    let v1 = version(&db, &serde, "1.0.0", Some(ada.id));
    assert_eq!(v1.downloads, 0);
    assert_eq!(v1.bin_names, ["serde-cli", "helper"]);
    assert_eq!(db.find::<Version>(v1.id).unwrap(), v1);

    // The enum, through INSERT and Diesel's DSL on the schema's own SQL type.
    let published = db
        .insert::<VersionOwnerAction>(&NewVersionOwnerAction {
            version_id: v1.id,
            user_id: ada.id,
            action: VersionAction::Publish,
        })
        .unwrap();
    assert_eq!(
        db.find::<VersionOwnerAction>(published.id).unwrap().action,
        VersionAction::Publish
    );
    let yanks: Vec<VersionOwnerAction> = db
        .postgres()
        .unwrap()
        .load(
            schema::version_owner_actions::table
                .filter(schema::version_owner_actions::action.eq(VersionAction::Yank)),
        )
        .unwrap();
    assert!(yanks.is_empty());
    // citext: the database compares without case.
    let found: Vec<User> = db
        .postgres()
        .unwrap()
        .load(schema::users::table.filter(schema::users::email.eq("ADA@Example.com")))
        .unwrap();
    assert_eq!(found, vec![ada.clone()]);

    // The set_updated_at trigger moves updated_at; RETURNING brings the new value back.
    let mut changed = serde.clone();
    changed.description = Some("A serialization framework".into());
    let updated = db.update(&changed).unwrap();
    assert_eq!(
        updated.description.as_deref(),
        Some("A serialization framework")
    );
    assert!(updated.updated_at > serde.updated_at, "trigger fired");
    assert_eq!(updated.created_at, serde.created_at);

    let card = db.find_as::<CrateCard>(serde.id).unwrap();
    assert_eq!(
        (card.id, card.name.as_str(), card.downloads),
        (serde.id, "serde", 0)
    );

    // Diesel's joins through the schema's `joinable!`.
    let joined: Vec<(Version, Crate)> = db
        .postgres()
        .unwrap()
        .load(
            schema::versions::table
                .inner_join(schema::crates::table)
                .select((Version::as_select(), Crate::as_select())),
        )
        .unwrap();
    assert_eq!(joined, vec![(v1.clone(), updated.clone())]);

    db.insert::<CrateOwner>(&NewCrateOwner {
        crate_id: serde.id,
        owner_id: ada.id,
        owner_kind: 0,
        created_by: Some(ada.id),
        deleted: false,
    })
    .unwrap();
    let owner = db.find::<CrateOwner>((serde.id, ada.id, 0)).unwrap();
    assert!(!owner.deleted);

    // Constraints of the migration, reported as typed errors.
    let bad_name = db.insert::<Crate>(&NewCrate {
        name: "1-not-a-name".into(),
        ..new_crate_fields()
    });
    assert!(
        matches!(&bad_name, Err(orm::Error::ConstraintViolation { kind: "check", constraint: Some(c), .. }) if c == "crates_name_format"),
        "{bad_name:?}"
    );
    let duplicate = db.insert::<Version>(&NewVersion {
        crate_id: serde.id,
        num: "1.0.0".into(),
        features: serde_json::json!({}),
        yanked: false,
        license: None,
        crate_size: None,
        published_by: None,
        bin_names: vec![],
    });
    assert!(
        matches!(&duplicate, Err(orm::Error::UniqueViolation { constraint, .. }) if constraint == "versions_crate_id_num_key"),
        "{duplicate:?}"
    );

    // ON DELETE SET NULL and CASCADE.
    db.delete::<CrateOwner>((serde.id, ada.id, 0)).unwrap();
    db.delete::<VersionOwnerAction>(published.id).unwrap();
    db.delete::<User>(ada.id).unwrap();
    assert_eq!(db.find::<Version>(v1.id).unwrap().published_by, None);
    db.delete::<Crate>(serde.id).unwrap();
    assert!(matches!(
        db.find::<Version>(v1.id),
        Err(orm::Error::NotFound { table: "versions" })
    ));
}

fn new_crate_fields() -> NewCrate {
    NewCrate {
        name: String::new(),
        description: None,
        homepage: None,
        repository: None,
        max_upload_size: None,
        max_features: None,
    }
}

#[test]
fn copy_bulk_insert_fires_the_counter_triggers() {
    let Some(db) = migrated("adoption_copy") else {
        return;
    };
    let tokio = krate(&db, "tokio");
    let v1 = version(&db, &tokio, "1.0.0", None);
    let v2 = version(&db, &tokio, "1.1.0", None);
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let rows: Vec<NewVersionDownload> = (0..1000)
        .map(|i| NewVersionDownload {
            version_id: if i % 2 == 0 { v1.id } else { v2.id },
            downloads: 3,
            counted: 0,
            date: start + chrono::Days::new(i / 2),
            processed: false,
        })
        .collect();
    let report = VersionDownload::bulk_insert(&db, &rows, BulkOptions::default()).unwrap();
    assert!(report.used_copy, "PostgreSQL bulk inserts use COPY");
    assert_eq!(report.rows, 1000);
    // The AFTER INSERT trigger ran for every copied row.
    assert_eq!(db.find::<Version>(v1.id).unwrap().downloads, 1500);
    assert_eq!(db.find::<Version>(v2.id).unwrap().downloads, 1500);
    assert_eq!(db.find::<Crate>(tokio.id).unwrap().downloads, 3000);

    // The keyword counter follows inserts and deletes.
    let kw = db
        .insert::<Keyword>(&NewKeyword {
            keyword: "async".into(),
        })
        .unwrap();
    assert_eq!(kw.crates_cnt, 0);
    let other = krate(&db, "async-std");
    let links = [tokio.id, other.id].map(|crate_id| NewCrateKeyword {
        crate_id,
        keyword_id: kw.id,
    });
    CrateKeyword::bulk_insert(&db, &links, BulkOptions::default()).unwrap();
    assert_eq!(db.find::<Keyword>(kw.id).unwrap().crates_cnt, 2);
    db.delete::<CrateKeyword>((other.id, kw.id)).unwrap();
    assert_eq!(db.find::<Keyword>(kw.id).unwrap().crates_cnt, 1);

    // The enum and the array through COPY.
    let ada = user(&db, "ada");
    let actions = [
        VersionAction::Publish,
        VersionAction::Yank,
        VersionAction::Unyank,
    ];
    let rows: Vec<NewVersionOwnerAction> = (0..300)
        .map(|i| NewVersionOwnerAction {
            version_id: v1.id,
            user_id: ada.id,
            action: actions[i % 3],
        })
        .collect();
    let report = VersionOwnerAction::bulk_insert(&db, &rows, BulkOptions::default()).unwrap();
    assert!(report.used_copy);
    let yanks: Vec<VersionOwnerAction> = db
        .postgres()
        .unwrap()
        .load(
            schema::version_owner_actions::table
                .filter(schema::version_owner_actions::action.eq(VersionAction::Yank)),
        )
        .unwrap();
    assert_eq!(yanks.len(), 100);
    let versions: Vec<NewVersion> = (0..50)
        .map(|i| NewVersion {
            crate_id: tokio.id,
            num: format!("2.{i}.0"),
            features: serde_json::json!({}),
            yanked: false,
            license: None,
            crate_size: None,
            published_by: None,
            bin_names: vec![format!("bin-{i}"), "tokio-console".into()],
        })
        .collect();
    Version::bulk_insert(&db, &versions, BulkOptions::default()).unwrap();
    let stored: Vec<Version> = db
        .postgres()
        .unwrap()
        .load(schema::versions::table.filter(schema::versions::num.eq("2.7.0")))
        .unwrap();
    assert_eq!(stored[0].bin_names, ["bin-7", "tokio-console"]);
}

#[test]
fn update_and_patch_keep_counts_the_triggers_made_meanwhile() {
    let Some(db) = migrated("adoption_lost_update") else {
        return;
    };
    let rand = krate(&db, "rand");
    let v1 = version(&db, &rand, "0.8.5", None);
    let stale = db.find::<Crate>(rand.id).unwrap();
    // Downloads counted elsewhere after `stale` was read.
    db.insert::<VersionDownload>(&NewVersionDownload {
        version_id: v1.id,
        downloads: 100,
        counted: 0,
        date: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        processed: false,
    })
    .unwrap();
    // `update` does not write server-filled columns: the stale count is not written back.
    let updated = db
        .update(&Crate {
            homepage: Some("https://rust-random.github.io".into()),
            ..stale
        })
        .unwrap();
    assert_eq!(updated.downloads, 100);
    let patched = db
        .patch::<Crate>(
            rand.id,
            &CratePatch {
                repository: Some(Some("https://github.com/rust-random/rand".into())),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(patched.downloads, 100);
    assert_eq!(
        patched.homepage.as_deref(),
        Some("https://rust-random.github.io")
    );
}

#[derive(QueryableByName, Debug, PartialEq)]
struct CatalogItem {
    #[diesel(sql_type = diesel::sql_types::Text)]
    item: String,
}

/// Constraints (name, kind, delete action) and column defaults of the tables in the current
/// schema, as the catalog has them.
fn catalog(db: &Database) -> (Vec<String>, Vec<String>) {
    let items = |sql: &str| -> Vec<String> {
        let rows: Vec<CatalogItem> = db.load(diesel::sql_query(sql)).unwrap();
        rows.into_iter().map(|r| r.item).collect()
    };
    let constraints = items(
        "SELECT c.relname || '.' || con.conname || ':' || con.contype::text || ':' || con.confdeltype::text \
             AS item \
         FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
         WHERE c.relnamespace = current_schema()::regnamespace AND con.contype IN ('p','u','f','c') \
         ORDER BY 1",
    );
    // Serial (migration) and identity (orm) keys differ in how, not whether, a key is filled.
    let defaults = items(
        "SELECT c.relname || '.' || a.attname || ' = ' || pg_get_expr(d.adbin, d.adrelid) AS item \
         FROM pg_attrdef d \
         JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
         JOIN pg_class c ON c.oid = d.adrelid \
         WHERE c.relnamespace = current_schema()::regnamespace \
             AND pg_get_expr(d.adbin, d.adrelid) NOT LIKE 'nextval(%' \
         ORDER BY 1",
    );
    (constraints, defaults)
}

#[test]
fn the_ddl_orm_prints_has_the_migrations_defaults_and_constraints() {
    let (Some(migrated), Some(fresh)) = (
        migrated("adoption_ddl_migrated"),
        with_citext("adoption_ddl_orm"),
    ) else {
        return;
    };
    let ddl = orm::schema::ddl::migration_sql(&TABLES, Backend::Postgres);
    fresh.batch_execute(&ddl).unwrap();
    assert_eq!(fresh.verify_tables(&TABLES).unwrap(), vec![]);
    let (migration_constraints, migration_defaults) = catalog(&migrated);
    let (orm_constraints, orm_defaults) = catalog(&fresh);
    assert_eq!(orm_constraints, migration_constraints, "{ddl}");
    assert_eq!(orm_defaults, migration_defaults, "{ddl}");
    // What the comparison covered: 22 defaults, 8 keys, 3 UNIQUE, 10 FOREIGN KEY and 5 CHECK
    // constraints.
    assert_eq!(migration_defaults.len(), 22, "{migration_defaults:#?}");
    let count = |kind: &str| {
        migration_constraints
            .iter()
            .filter(|c| c.contains(&format!(":{kind}:")))
            .count()
    };
    assert_eq!(
        (count("p"), count("u"), count("f"), count("c")),
        (8, 3, 10, 5)
    );
}

/// A package found by full-text search. No backend attribute: the `table!`'s `Array<Text>`,
/// `Jsonb`, `Timestamptz` and `Tsvector` make it PostgreSQL's.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::packages)]
pub struct Package {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(unique)]
    pub name: String,
    pub description: Option<String>,
    pub keywords: Vec<String>,
    pub metadata: serde_json::Value,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
    /// `GENERATED ALWAYS AS (char_length(name)) STORED`: PostgreSQL refuses any value for it.
    #[orm(read_only)]
    pub name_length: i32,
    /// Kept by the `packages_search` trigger; Diesel reads a `tsvector` but cannot write one.
    #[orm(read_only)]
    pub textsearchable_index_col: PgTsVector,
}

fn new_package(name: &str, description: &str, keywords: &[&str]) -> NewPackage {
    // Every field the application writes; the read-only ones are not part of the struct.
    NewPackage {
        name: name.into(),
        description: Some(description.into()),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        metadata: serde_json::json!({ "edition": "2021" }),
    }
}

/// The lexemes of a `tsvector`, sorted.
fn lexemes(vector: &PgTsVector) -> Vec<&str> {
    let mut words: Vec<&str> = vector.entries.iter().map(|e| e.lexeme.as_str()).collect();
    words.sort_unstable();
    words
}

/// The ids of the packages whose search column matches `query`, through
/// `diesel_full_text_search`'s operators.
fn search(db: &Database, query: &str) -> Vec<i32> {
    use diesel_full_text_search::{plainto_tsquery, TsVectorExtensions};
    let mut ids: Vec<i32> = db
        .postgres()
        .unwrap()
        .load(
            schema::packages::table
                .filter(
                    schema::packages::textsearchable_index_col
                        .matches(plainto_tsquery(query.to_owned())),
                )
                .select(schema::packages::id),
        )
        .unwrap();
    ids.sort_unstable();
    ids
}

/// Which backends a table serves is decided against SQLite's types, so only a build with
/// SQLite can tell a PostgreSQL-only table apart.
#[cfg(feature = "sqlite")]
#[test]
fn models_without_a_backend_attribute_follow_their_tables() {
    // PostgreSQL-only SQL types: PostgreSQL alone.
    for table in [
        Package::TABLE,
        User::TABLE,
        Crate::TABLE,
        Version::TABLE,
        VersionOwnerAction::TABLE,
        CrateOwner::TABLE,
        Keyword::TABLE,
    ] {
        assert_eq!(table.backends, [Backend::Postgres], "{}", table.model);
    }
    // Integers, dates and booleans: both backends.
    for table in [VersionDownload::TABLE, CrateKeyword::TABLE] {
        assert_eq!(
            table.backends,
            [Backend::Postgres, Backend::Sqlite],
            "{}",
            table.model
        );
    }
    let read_only: Vec<&str> = Package::TABLE
        .columns
        .iter()
        .filter(|c| c.read_only)
        .map(|c| c.name)
        .collect();
    assert_eq!(read_only, ["name_length", "textsearchable_index_col"]);
}

#[cfg(feature = "sqlite")]
#[test]
fn a_postgres_only_table_is_the_wrong_backend_on_sqlite() {
    let db = Database::connect("sqlite::memory:").unwrap();
    let insert = db.insert::<Package>(&new_package("serde", "serialization", &[]));
    assert!(
        matches!(
            &insert,
            Err(orm::Error::WrongBackend {
                needed: Backend::Postgres,
                actual: Backend::Sqlite,
                ..
            })
        ),
        "{insert:?}"
    );
    let find = db.find::<Package>(1);
    assert!(
        matches!(&find, Err(orm::Error::WrongBackend { .. })),
        "{find:?}"
    );
    // A table of plain types serves SQLite, model written the same way.
    db.batch_execute(
        "CREATE TABLE crates_keywords (crate_id INTEGER NOT NULL, keyword_id INTEGER NOT NULL, \
         PRIMARY KEY (crate_id, keyword_id))",
    )
    .unwrap();
    let link = db
        .insert::<CrateKeyword>(&NewCrateKeyword {
            crate_id: 1,
            keyword_id: 2,
        })
        .unwrap();
    assert_eq!(db.find::<CrateKeyword>((1, 2)).unwrap(), link);
}

#[test]
fn generated_and_trigger_filled_columns_are_read_never_written() {
    let Some(db) = with_citext("adoption_read_only") else {
        return;
    };
    db.batch_execute(SEARCH).unwrap();

    // Insert: both read-only columns come back as the database filled them.
    let tokio = db
        .insert::<Package>(&new_package(
            "tokio",
            "An asynchronous runtime",
            &["async", "network"],
        ))
        .unwrap();
    assert_eq!(tokio.name_length, 5);
    assert_eq!(
        lexemes(&tokio.textsearchable_index_col),
        ["async", "asynchron", "network", "runtim", "tokio"]
    );
    assert_eq!(db.find::<Package>(tokio.id).unwrap(), tokio);
    assert_eq!(search(&db, "runtime"), [tokio.id]);

    // Update writes every other column; the trigger and the generated column follow.
    let renamed = db
        .update(&Package {
            name: "tokio-rt".into(),
            description: Some("A scheduler".into()),
            ..tokio.clone()
        })
        .unwrap();
    assert_eq!(renamed.name_length, 8);
    assert_eq!(
        lexemes(&renamed.textsearchable_index_col),
        ["async", "network", "rt", "schedul", "tokio", "tokio-rt"]
    );
    assert_eq!(search(&db, "runtime"), Vec::<i32>::new());
    assert_eq!(search(&db, "scheduler"), [tokio.id]);

    // Patch: one column written, the read-only ones recomputed.
    let patched = db
        .patch::<Package>(
            tokio.id,
            &PackagePatch {
                name: Some("tokio".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(patched.name_length, 5);
    assert_eq!(patched.description.as_deref(), Some("A scheduler"));
    assert!(lexemes(&patched.textsearchable_index_col).contains(&"schedul"));
    assert!(!lexemes(&patched.textsearchable_index_col).contains(&"tokio-rt"));

    // Bulk insert by COPY, then by multi-row INSERT returning keys: the COPY and INSERT column
    // lists leave both columns out, and each row comes back filled.
    let copied: Vec<NewPackage> = (0..200)
        .map(|i| {
            new_package(
                &format!("copied-{i:03}"),
                "Parsing combinators",
                &["parser"],
            )
        })
        .collect();
    let report = Package::bulk_insert(&db, &copied, BulkOptions::default()).unwrap();
    assert!(report.used_copy, "PostgreSQL bulk inserts use COPY");
    assert_eq!(report.rows, 200);
    let inserted: Vec<NewPackage> = (0..50)
        .map(|i| new_package(&format!("inserted-{i}"), "Logging facade", &["log"]))
        .collect();
    let report = Package::bulk_insert(
        &db,
        &inserted,
        BulkOptions::default()
            .on_conflict(OnConflict::Skip)
            .return_keys(true),
    )
    .unwrap();
    assert!(!report.used_copy);
    assert_eq!(report.keys.len(), 50);
    let all: Vec<Package> = db
        .postgres()
        .unwrap()
        .load(schema::packages::table.order(schema::packages::id))
        .unwrap();
    assert_eq!(all.len(), 251);
    for package in &all[1..] {
        assert_eq!(package.name_length as usize, package.name.chars().count());
        let words = lexemes(&package.textsearchable_index_col);
        let expected = if package.name.starts_with("copied") {
            "parser"
        } else {
            "log"
        };
        assert!(words.contains(&expected), "{}: {words:?}", package.name);
    }
    assert_eq!(search(&db, "combinators").len(), 200);
    assert_eq!(search(&db, "logging").len(), 50);

    // An upsert cannot set a read-only column: the insert sends no value for it.
    let upsert = Package::bulk_insert(
        &db,
        &inserted[..1],
        BulkOptions::default().on_conflict(OnConflict::update(["name"], ["name_length"])),
    );
    assert!(
        matches!(&upsert, Err(orm::Error::Model { message, .. }) if message.contains("read-only")),
        "{upsert:?}"
    );
    let upsert = Package::bulk_insert(
        &db,
        &[new_package("inserted-0", "Structured logging", &["log"])],
        BulkOptions::default().on_conflict(OnConflict::update(["name"], ["description"])),
    )
    .unwrap();
    assert_eq!(upsert.rows, 1);
    assert_eq!(search(&db, "structured").len(), 1);
}
