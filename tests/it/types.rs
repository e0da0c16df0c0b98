//! Column types beyond the scalars: arrays, database enums, `VARCHAR(n)`, PostgreSQL's
//! `interval` and `citext`, and models bound to a `table!` whose Rust types are taken as they
//! are. Each family goes through every write and read path: insert, find, update, bulk insert
//! by COPY (PostgreSQL) and by multi-row INSERT, and partials; on PostgreSQL, and on SQLite
//! where the type exists there.

use crate::common;

use orm::prelude::*;
use std::fmt::Debug;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use orm::bulk::BulkOptions;
use orm::sql_types::RejectReason;
use orm::{Backend, Database, DbEnum, Error, Model};
use serde_json::json;

/// Every path a row can be written and read by, for rows `rows` of model `M`: each row is
/// inserted, found, changed by `change` and updated; then all of them are bulk inserted by the
/// backend's default path (COPY on PostgreSQL) and again by multi-row INSERT, and read back.
/// `expect` builds the model a row should read back as, given its key.
fn every_path<M>(
    db: &Database,
    rows: &[M::New],
    expect: impl Fn(M::PrimaryKey, &M::New) -> M,
    change: impl Fn(&mut M),
    all_rows: impl Fn(&Database) -> Vec<M>,
) where
    M: Model + PartialEq + Debug + Clone,
    M::New: Clone,
    M::PrimaryKey: PartialEq,
{
    let backend = db.backend();
    for row in rows {
        let stored = db.insert::<M>(row).unwrap();
        let key = stored.primary_key();
        assert_eq!(stored, expect(key.clone(), row), "insert on {backend}");
        assert_eq!(
            db.find::<M>(key.clone()).unwrap(),
            stored,
            "find on {backend}"
        );
        let mut changed = stored.clone();
        change(&mut changed);
        assert_ne!(changed, stored, "`change` changes the row");
        assert_eq!(db.update(&changed).unwrap(), changed, "update on {backend}");
        assert_eq!(db.find::<M>(key).unwrap(), changed, "find after update");
    }

    let before = all_rows(db).len();
    let report = db
        .bulk_insert::<M, _>(rows, BulkOptions::default())
        .unwrap();
    assert_eq!(report.used_copy, backend == Backend::Postgres);
    assert_eq!(report.rows, rows.len() as u64);
    let copied = all_rows(db);
    assert_eq!(copied.len(), before + rows.len());
    for (stored, row) in copied[before..].iter().zip(rows) {
        assert_eq!(
            *stored,
            expect(stored.primary_key(), row),
            "bulk insert on {backend}"
        );
    }

    // Asking for the keys makes bulk insert use multi-row INSERT … RETURNING on every backend.
    let report = db
        .bulk_insert::<M, _>(rows, BulkOptions::default().return_keys(true))
        .unwrap();
    assert!(!report.used_copy);
    assert_eq!(report.keys.len(), rows.len());
    for (key, row) in report.keys.iter().zip(rows) {
        assert_eq!(
            db.find::<M>(key.clone()).unwrap(),
            expect(key.clone(), row),
            "multi-row INSERT on {backend}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Arrays

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = arrays, partial(ArrayCard = [id, tags, maybe_tags]))]
pub struct Arrays {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub tags: Vec<String>,
    pub maybe_tags: Option<Vec<String>>,
    pub smalls: Vec<i16>,
    pub ints: Vec<i32>,
    pub scores: Vec<Option<i64>>,
    pub singles: Vec<f32>,
    pub doubles: Vec<f64>,
    pub flags: Vec<bool>,
    pub blobs: Vec<Vec<u8>>,
    pub stamps: Vec<NaiveDateTime>,
    pub days: Vec<NaiveDate>,
    pub moments: Vec<DateTime<Utc>>,
    pub ids: Vec<Option<uuid::Uuid>>,
    pub docs: Vec<serde_json::Value>,
}

fn arrays_row(i: i64) -> NewArrays {
    let moment = Utc.timestamp_micros(1_700_000_000_123_456 + i).unwrap();
    NewArrays {
        tags: vec![
            format!("tag {i}"),
            "quote \" and , comma".into(),
            "{braces}".into(),
        ],
        maybe_tags: (i % 2 == 0).then(|| vec!["é".into(), String::new()]),
        smalls: vec![i16::MIN, 0, i16::MAX],
        ints: vec![i as i32, -1],
        scores: vec![Some(i), None, Some(i64::MAX)],
        singles: vec![1.5, -0.0, f32::MAX],
        doubles: vec![-2.25, 1e300, f64::MIN_POSITIVE],
        flags: vec![true, false],
        blobs: vec![vec![0, 255, i as u8], vec![]],
        stamps: vec![moment.naive_utc()],
        days: vec![NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()],
        moments: vec![moment, moment + chrono::Duration::days(1)],
        ids: vec![Some(uuid::Uuid::from_u128(i as u128)), None],
        docs: vec![json!({"i": i, "list": [1, null, "x"]}), json!(null)],
    }
}

fn arrays_expect(id: i64, r: &NewArrays) -> Arrays {
    let r = r.clone();
    Arrays {
        id,
        tags: r.tags,
        maybe_tags: r.maybe_tags,
        smalls: r.smalls,
        ints: r.ints,
        scores: r.scores,
        singles: r.singles,
        doubles: r.doubles,
        flags: r.flags,
        blobs: r.blobs,
        stamps: r.stamps,
        days: r.days,
        moments: r.moments,
        ids: r.ids,
        docs: r.docs,
    }
}

#[test]
fn arrays_round_trip_on_every_path() {
    let meta = Arrays::TABLE;
    let types = |c: &str| {
        let c = meta.column(c).unwrap();
        (c.postgres_type, c.sqlite_type)
    };
    assert_eq!(types("tags"), ("TEXT[]", "TEXT"));
    assert_eq!(types("scores"), ("BIGINT[]", "TEXT"));
    assert_eq!(types("moments"), ("TIMESTAMPTZ[]", "TEXT"));
    assert_eq!(types("ids"), ("UUID[]", "TEXT"));
    assert_eq!(types("docs"), ("JSONB[]", "TEXT"));
    assert!(meta.column("maybe_tags").unwrap().nullable);

    for db in common::backends("arrays_round_trip") {
        db.create_table::<Arrays>().unwrap();
        let rows: Vec<_> = (0..4).map(arrays_row).collect();
        every_path::<Arrays>(
            &db,
            &rows,
            arrays_expect,
            |a| {
                a.tags.push("added".into());
                a.maybe_tags = None;
                a.scores = vec![];
            },
            |db| db.load(arrays::table.order(arrays::id)).unwrap(),
        );
        // Partials read arrays too.
        let first = db.insert::<Arrays>(&arrays_row(8)).unwrap();
        let card = db.find_as::<ArrayCard>(first.id).unwrap();
        assert_eq!(
            (card.tags, card.maybe_tags),
            (first.tags.clone(), first.maybe_tags.clone())
        );
        if db.backend() == Backend::Postgres {
            // A real PostgreSQL array: the server indexes into it.
            let second: Option<String> = db
                .first(
                    arrays::table
                        .filter(arrays::id.eq(first.id))
                        .select(diesel::dsl::sql::<
                            diesel::sql_types::Nullable<diesel::sql_types::Text>,
                        >("tags[2]")),
                )
                .unwrap();
            assert_eq!(second.as_deref(), Some("quote \" and , comma"));
        } else {
            // JSON text on SQLite.
            let text: String = db
                .first(
                    arrays::table
                        .filter(arrays::id.eq(first.id))
                        .select(diesel::dsl::sql::<diesel::sql_types::Text>("scores")),
                )
                .unwrap();
            assert_eq!(text, "[8,null,9223372036854775807]");
        }
    }
}

#[test]
fn array_elements_are_checked_like_scalars() {
    for db in common::backends("array_elements_checked") {
        db.create_table::<Arrays>().unwrap();
        let mut row = arrays_row(1);
        let expected = match db.backend() {
            Backend::Sqlite => {
                row.doubles.push(f64::NAN);
                ("doubles", RejectReason::NaN)
            }
            _ => {
                row.tags.push("nul \0 inside".into());
                ("tags", RejectReason::NulInText)
            }
        };
        match db.insert::<Arrays>(&row).unwrap_err() {
            Error::ValueRejected { column, reason, .. } => {
                assert_eq!((column, reason), expected)
            }
            other => panic!("expected ValueRejected, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Enums

/// Stored as the PostgreSQL enum type `mood`; serde's labels match, so arrays of it are JSON
/// text on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, DbEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mood {
    Happy,
    Sad,
    #[orm(rename = "so-so")]
    #[serde(rename = "so-so")]
    SoSo,
    VeryHappy,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = diary, partial(DiaryMood = [id, mood]))]
pub struct Diary {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(db_enum)]
    pub mood: Mood,
    #[orm(db_enum)]
    pub before: Option<Mood>,
    #[orm(db_enum)]
    pub history: Vec<Mood>,
    pub note: String,
}

fn diary_row(i: usize) -> NewDiary {
    let all = [Mood::Happy, Mood::Sad, Mood::SoSo, Mood::VeryHappy];
    NewDiary {
        mood: all[i % 4],
        before: (i % 2 == 1).then_some(all[(i + 1) % 4]),
        history: all[..i % 4].to_vec(),
        note: format!("day {i}"),
    }
}

#[test]
fn enums_round_trip_on_every_path() {
    assert_eq!(Mood::TYPE.name, "mood");
    assert_eq!(Mood::TYPE.labels, ["happy", "sad", "so-so", "very_happy"]);
    assert_eq!(Mood::SoSo.label(), "so-so");
    assert_eq!(Mood::from_label("very_happy"), Some(Mood::VeryHappy));
    let column = Diary::TABLE.column("mood").unwrap();
    assert_eq!((column.postgres_type, column.sqlite_type), ("mood", "TEXT"));
    assert_eq!(
        Diary::TABLE.column("history").unwrap().postgres_type,
        "mood[]"
    );

    for db in common::backends("enums_round_trip") {
        db.create_table::<Diary>().unwrap();
        // Creating the table again is a no-op, the enum type included.
        db.create_table::<Diary>().unwrap();
        let rows: Vec<_> = (0..8).map(diary_row).collect();
        every_path::<Diary>(
            &db,
            &rows,
            |id, r| Diary {
                id,
                mood: r.mood,
                before: r.before,
                history: r.history.clone(),
                note: r.note.clone(),
            },
            |d| {
                d.mood = Mood::VeryHappy;
                d.before = None;
                d.history.push(Mood::SoSo);
            },
            |db| db.load(diary::table.order(diary::id)).unwrap(),
        );
        let first = db.insert::<Diary>(&diary_row(2)).unwrap();
        assert_eq!(
            db.find_as::<DiaryMood>(first.id).unwrap(),
            DiaryMood {
                id: first.id,
                mood: Mood::SoSo
            }
        );
        // The Diesel DSL compares an enum column with a variant.
        let sad: i64 = db
            .first(diary::table.filter(diary::mood.eq(Mood::Sad)).count())
            .unwrap();
        assert_eq!(sad, 4);

        // The database refuses a label the enum does not have.
        let no_history = match db.backend() {
            Backend::Postgres => "'{}'",
            _ => "'[]'",
        };
        db.execute(diesel::sql_query(format!(
            "INSERT INTO diary (mood, history, note) VALUES ('sad', {no_history}, '')"
        )))
        .unwrap();
        let refused = db.execute(diesel::sql_query(format!(
            "INSERT INTO diary (mood, history, note) VALUES ('angry', {no_history}, '')"
        )));
        assert!(refused.is_err(), "{:?}", db.backend());
    }
}

#[test]
fn an_unknown_label_read_from_the_database_is_a_typed_error() {
    for db in common::backends("enum_unknown_label") {
        db.create_table::<Diary>().unwrap();
        let row = db.insert::<Diary>(&diary_row(0)).unwrap();
        match db.backend() {
            Backend::Postgres => db
                .batch_execute("ALTER TYPE mood ADD VALUE 'angry'")
                .unwrap(),
            // SQLite's CHECK is the guard; an old table without it could hold anything.
            _ => db
                .batch_execute(
                    "CREATE TABLE loose AS SELECT * FROM diary; DROP TABLE diary; \
                     ALTER TABLE loose RENAME TO diary;",
                )
                .unwrap(),
        }
        db.batch_execute(&format!(
            "UPDATE diary SET mood = 'angry' WHERE id = {}",
            row.id
        ))
        .unwrap();
        let err = db.find::<Diary>(row.id).unwrap_err();
        let Error::Query(diesel::result::Error::DeserializationError(source)) = &err else {
            panic!("expected a deserialization error, got {err:?}");
        };
        // Diesel names the field; its source is the typed error.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
        let unknown = std::iter::from_fn(|| {
            let this = cause?;
            cause = this.source();
            Some(this)
        })
        .find_map(|e| e.downcast_ref::<orm::sql_types::UnknownEnumLabel>())
        .unwrap_or_else(|| panic!("expected UnknownEnumLabel, got {source:?}"));
        assert_eq!(
            (unknown.type_name, unknown.label.as_str()),
            ("mood", "angry")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// VARCHAR(n)

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = codes)]
pub struct Code {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(length = 5)]
    pub code: String,
    #[orm(length = 3)]
    pub region: Option<String>,
}

#[test]
fn varchar_length_is_in_ddl_and_longer_values_are_refused() {
    assert_eq!(Code::TABLE.column("code").unwrap().max_length, Some(5));
    for db in common::backends("varchar_length") {
        db.create_table::<Code>().unwrap();
        let rows = vec![
            NewCode {
                code: "ééééé".into(),
                region: Some("eu".into()),
            },
            NewCode {
                code: "a".into(),
                region: None,
            },
        ];
        every_path::<Code>(
            &db,
            &rows,
            |id, r| Code {
                id,
                code: r.code.clone(),
                region: r.region.clone(),
            },
            |c| c.code = "12345".into(),
            |db| db.load(codes::table.order(codes::id)).unwrap(),
        );
        let too_long = |e: Error| match e {
            Error::ValueRejected { column, reason, .. } => (column, reason),
            other => panic!("expected ValueRejected, got {other:?}"),
        };
        let err = db
            .insert::<Code>(&NewCode {
                code: "123456".into(),
                region: None,
            })
            .unwrap_err();
        assert_eq!(too_long(err), ("code", RejectReason::TooLong { max: 5 }));
        let mut stored = db.find::<Code>(1).unwrap();
        stored.region = Some("four".into());
        assert_eq!(
            too_long(db.update(&stored).unwrap_err()),
            ("region", RejectReason::TooLong { max: 3 })
        );
        let err = db
            .bulk_insert::<Code, _>(
                [NewCode {
                    code: "ok".into(),
                    region: Some("long".into()),
                }],
                BulkOptions::default(),
            )
            .unwrap_err();
        let Error::Bulk { source, .. } = err else {
            panic!("expected Error::Bulk, got {err:?}")
        };
        assert_eq!(
            too_long(*source),
            ("region", RejectReason::TooLong { max: 3 })
        );
        if db.backend() == Backend::Postgres {
            let limit: Option<i32> = db
                .first(diesel::select(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Integer>,
                >(
                    "(SELECT character_maximum_length::int FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = 'codes' \
                     AND column_name = 'code')",
                )))
                .unwrap();
            assert_eq!(limit, Some(5));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Models bound to a `table!` written by `diesel print-schema`

/// As `diesel print-schema` writes it for a PostgreSQL database with two enum types.
#[cfg(feature = "postgres")]
pub mod schema {
    pub mod sql_types {
        #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
        #[diesel(postgres_type(name = "crate_kind"))]
        pub struct CrateKind;

        #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
        #[diesel(postgres_type(name = "weather"))]
        pub struct Weather;
    }

    diesel::table! {
        use diesel::sql_types::*;
        use super::sql_types::CrateKind;
        use super::sql_types::Weather;

        packages (id) {
            id -> Int4,
            #[max_length = 64]
            name -> Varchar,
            keywords -> Array<Nullable<Text>>,
            kind -> CrateKind,
            weather -> Nullable<Weather>,
            forecast -> Array<Nullable<Weather>>,
            email -> Citext,
            timeout -> Interval,
            created_at -> Timestamptz,
            downloads -> Int8,
            meta -> Jsonb,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        use super::sql_types::CrateKind;

        releases (id) {
            id -> Int4,
            #[max_length = 32]
            version -> Varchar,
            kinds -> Array<CrateKind>,
            kind -> Nullable<CrateKind>,
            email -> Nullable<Citext>,
            yanked_after -> Nullable<Interval>,
            checksums -> Array<Int8>,
        }
    }
}

/// The enum of `crate_kind`, through `orm`: it also reads and writes schema.rs's `CrateKind`.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy, PartialEq, DbEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[orm(pg_type = "crate_kind", sql_type = schema::sql_types::CrateKind)]
pub enum Kind {
    Library,
    Binary,
    ProcMacro,
}

/// The enum of `weather`, mapped by hand the way Diesel's guide shows: impls for PostgreSQL
/// only, and no DDL known to `orm`.
#[cfg(feature = "postgres")]
#[derive(
    Debug, Clone, Copy, PartialEq, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = schema::sql_types::Weather)]
pub enum Weather {
    Sunny,
    Rainy,
}

#[cfg(feature = "postgres")]
impl diesel::serialize::ToSql<schema::sql_types::Weather, diesel::pg::Pg> for Weather {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write;
        out.write_all(match self {
            Weather::Sunny => b"sunny",
            Weather::Rainy => b"rainy",
        })?;
        Ok(diesel::serialize::IsNull::No)
    }
}

#[cfg(feature = "postgres")]
impl diesel::deserialize::FromSql<schema::sql_types::Weather, diesel::pg::Pg> for Weather {
    fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        match bytes.as_bytes() {
            b"sunny" => Ok(Weather::Sunny),
            b"rainy" => Ok(Weather::Rainy),
            other => Err(format!("unknown weather {other:?}").into()),
        }
    }
}

/// Every field's Rust type is taken as it is: Diesel reads and writes it for the column's SQL
/// type, which comes from the `table!` (no `sql_type`, no list of known names).
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    diesel_table = schema::packages,
    backend = postgres,
    partial(PackageCard = [id, name, keywords, kind])
)]
pub struct Package {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(length = 64)]
    pub name: String,
    pub keywords: Vec<Option<String>>,
    pub kind: Kind,
    pub weather: Option<Weather>,
    pub forecast: Vec<Option<Weather>>,
    pub email: String,
    pub timeout: diesel::pg::data_types::PgInterval,
    pub created_at: DateTime<Utc>,
    pub downloads: i64,
    pub meta: serde_json::Value,
}

#[cfg(feature = "postgres")]
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::releases, backend = postgres)]
pub struct Release {
    #[orm(primary_key, generated)]
    pub id: i32,
    #[orm(length = 32)]
    pub version: String,
    pub kinds: Vec<Kind>,
    pub kind: Option<Kind>,
    pub email: Option<String>,
    pub yanked_after: Option<diesel::pg::data_types::PgInterval>,
    pub checksums: Vec<i64>,
}

/// A PostgreSQL database for `test` that sees the `citext` extension, installed once in
/// `public` (an extension is installed once per database).
#[cfg(feature = "postgres")]
fn postgres_with_citext(test: &str) -> Option<Database> {
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

#[cfg(feature = "postgres")]
fn package_row(i: i64) -> NewPackage {
    NewPackage {
        name: format!("package-{i}"),
        keywords: vec![Some("orm".into()), None, Some(format!("k{i}"))],
        kind: [Kind::Library, Kind::Binary, Kind::ProcMacro][i as usize % 3],
        weather: (i % 2 == 0).then_some(Weather::Rainy),
        // An array of a type `orm` knows nothing of: COPY finds its OID from the first row.
        forecast: vec![Some(Weather::Sunny), None, Some(Weather::Rainy)],
        email: format!("Owner{i}@Example.com"),
        timeout: diesel::pg::data_types::PgInterval::new(90_000_000 + i, 2, 1),
        created_at: Utc.timestamp_micros(1_700_000_000_000_001 + i).unwrap(),
        downloads: i * 1_000,
        meta: json!({"i": i}),
    }
}

#[cfg(feature = "postgres")]
#[test]
fn a_table_model_takes_its_types_from_the_table() {
    let column = |name: &str| *Package::TABLE.column(name).unwrap();
    // DDL types come from the `table!`'s SQL types, never from the Rust field.
    assert_eq!(column("id").postgres_type, "INTEGER");
    assert_eq!(column("keywords").postgres_type, "TEXT[]");
    assert_eq!(column("email").postgres_type, "CITEXT");
    assert_eq!(column("timeout").postgres_type, "INTERVAL");
    assert_eq!(column("kind").postgres_type, "crate_kind");
    assert_eq!(column("kind").enum_type, Some(Kind::TYPE));
    assert_eq!(column("name").max_length, Some(64));
    // A SQL type `orm` has no DDL for: the model still works, its table is the user's.
    assert!(!column("weather").ddl_known);
    assert!(column("kind").ddl_known);
    let ddl = orm::schema::ddl::create_table_sql(Package::TABLE, Backend::Postgres);
    assert!(ddl.contains("\"weather\" /* no orm DdlType"), "{ddl}");

    let Some(db) = postgres_with_citext("table_model_types") else {
        return;
    };
    match db.create_table::<Package>().unwrap_err() {
        Error::DdlUnknown { table, column } => assert_eq!((table, column), ("packages", "weather")),
        other => panic!("expected DdlUnknown, got {other:?}"),
    }
    // The migration the team already has.
    db.batch_execute(
        "CREATE TYPE crate_kind AS ENUM ('library', 'binary', 'proc_macro');
         CREATE TYPE weather AS ENUM ('sunny', 'rainy');
         CREATE TABLE packages (
             id SERIAL PRIMARY KEY,
             name VARCHAR(64) NOT NULL,
             keywords TEXT[] NOT NULL,
             kind crate_kind NOT NULL,
             weather weather,
             forecast weather[] NOT NULL,
             email CITEXT NOT NULL,
             timeout INTERVAL NOT NULL,
             created_at TIMESTAMPTZ NOT NULL,
             downloads BIGINT NOT NULL,
             meta JSONB NOT NULL
         );",
    )
    .unwrap();
    let rows: Vec<_> = (0..5).map(package_row).collect();
    every_path::<Package>(
        &db,
        &rows,
        |id, r| {
            let r = r.clone();
            Package {
                id,
                name: r.name,
                keywords: r.keywords,
                kind: r.kind,
                weather: r.weather,
                forecast: r.forecast,
                email: r.email,
                timeout: r.timeout,
                created_at: r.created_at,
                downloads: r.downloads,
                meta: r.meta,
            }
        },
        |p| {
            p.weather = Some(Weather::Sunny);
            p.kind = Kind::ProcMacro;
            p.keywords.push(None);
            p.timeout = diesel::pg::data_types::PgInterval::from_days(3);
        },
        |db| {
            db.postgres()
                .unwrap()
                .load(schema::packages::table.order(schema::packages::id))
                .unwrap()
        },
    );
    let first = db.insert::<Package>(&package_row(7)).unwrap();
    let pg = db.postgres().unwrap();
    let card = pg.find_as::<PackageCard>(first.id).unwrap();
    assert_eq!(
        (card.kind, card.keywords),
        (Kind::Binary, first.keywords.clone())
    );
    // citext compares without case; the Diesel DSL takes the enum and the text as they are.
    let found: Vec<Package> = pg
        .load(
            schema::packages::table
                .filter(schema::packages::email.eq("OWNER7@example.COM"))
                .filter(schema::packages::kind.eq(Kind::Binary)),
        )
        .unwrap();
    assert_eq!(found, vec![first]);
}

#[cfg(feature = "postgres")]
#[test]
fn create_table_writes_the_table_types_of_a_bound_model() {
    let Some(db) = postgres_with_citext("bound_model_ddl") else {
        return;
    };
    db.create_table::<Release>().unwrap();
    let columns: Vec<(String, String, Option<i32>)> = db
        .postgres()
        .unwrap()
        .load(diesel::dsl::sql::<(
            diesel::sql_types::Text,
            diesel::sql_types::Text,
            diesel::sql_types::Nullable<diesel::sql_types::Integer>,
        )>(
            "SELECT column_name::text, udt_name::text, character_maximum_length::int \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'releases' \
             ORDER BY ordinal_position",
        ))
        .unwrap();
    let columns: Vec<_> = columns
        .iter()
        .map(|(c, t, n)| (c.as_str(), t.as_str(), *n))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", "int4", None),
            ("version", "varchar", Some(32)),
            ("kinds", "_crate_kind", None),
            ("kind", "crate_kind", None),
            ("email", "citext", None),
            ("yanked_after", "interval", None),
            ("checksums", "_int8", None),
        ]
    );
    let rows = vec![
        NewRelease {
            version: "1.0.0".into(),
            kinds: vec![Kind::Library, Kind::ProcMacro],
            kind: Some(Kind::Binary),
            email: Some("A@b.c".into()),
            yanked_after: Some(diesel::pg::data_types::PgInterval::from_microseconds(5)),
            checksums: vec![1, -2, i64::MAX],
        },
        NewRelease {
            version: "2.0.0-rc.1".into(),
            kinds: vec![],
            kind: None,
            email: None,
            yanked_after: None,
            checksums: vec![],
        },
    ];
    every_path::<Release>(
        &db,
        &rows,
        |id, r| {
            let r = r.clone();
            Release {
                id,
                version: r.version,
                kinds: r.kinds,
                kind: r.kind,
                email: r.email,
                yanked_after: r.yanked_after,
                checksums: r.checksums,
            }
        },
        |r| r.kinds.push(Kind::Binary),
        |db| {
            db.postgres()
                .unwrap()
                .load(schema::releases::table.order(schema::releases::id))
                .unwrap()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL-only scalars on a model whose table `orm` creates: interval, citext, inet, cidr

#[cfg(feature = "postgres")]
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = jobs, backend = postgres, partial(JobOwner = [id, owner]))]
pub struct Job {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub timeout: diesel::pg::data_types::PgInterval,
    pub retry_after: Option<diesel::pg::data_types::PgInterval>,
    #[orm(sql_type = diesel::sql_types::Citext)]
    pub owner: String,
}

#[cfg(feature = "postgres")]
#[test]
fn interval_and_citext_round_trip_on_every_path() {
    use diesel::pg::data_types::PgInterval;
    assert_eq!(
        Job::TABLE.column("timeout").unwrap().postgres_type,
        "INTERVAL"
    );
    assert_eq!(Job::TABLE.column("owner").unwrap().postgres_type, "CITEXT");
    let Some(db) = postgres_with_citext("interval_citext") else {
        return;
    };
    db.create_table::<Job>().unwrap();
    let rows: Vec<_> = (0..4)
        .map(|i| NewJob {
            timeout: PgInterval::new(1_500_000 * i, i as i32, 14),
            retry_after: (i % 2 == 0).then(|| PgInterval::from_days(-1)),
            owner: format!("Team{i}@Example.org"),
        })
        .collect();
    every_path::<Job>(
        &db,
        &rows,
        |id, r| Job {
            id,
            timeout: r.timeout,
            retry_after: r.retry_after,
            owner: r.owner.clone(),
        },
        |j| j.retry_after = Some(PgInterval::from_microseconds(1)),
        |db| {
            db.postgres()
                .unwrap()
                .load(jobs::table.order(jobs::id))
                .unwrap()
        },
    );
    let pg = db.postgres().unwrap();
    let owners: Vec<JobOwner> = pg
        .load(
            jobs::table
                .filter(jobs::owner.eq("team1@example.ORG"))
                .select(JobOwner::columns()),
        )
        .unwrap();
    assert_eq!(owners.len(), 3, "citext matches without case: {owners:?}");
}

#[cfg(all(feature = "postgres", feature = "network-address"))]
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = hosts, backend = postgres)]
pub struct Host {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub address: orm::sql_types::ipnetwork::IpNetwork,
    #[orm(sql_type = diesel::sql_types::Cidr)]
    pub network: orm::sql_types::ipnetwork::IpNetwork,
    pub seen_from: Vec<orm::sql_types::ipnetwork::IpNetwork>,
    pub gateway: Option<orm::sql_types::ipnetwork::IpNetwork>,
}

#[cfg(all(feature = "postgres", feature = "network-address"))]
#[test]
fn inet_and_cidr_round_trip_on_every_path() {
    assert_eq!(Host::TABLE.column("address").unwrap().postgres_type, "INET");
    assert_eq!(Host::TABLE.column("network").unwrap().postgres_type, "CIDR");
    assert_eq!(
        Host::TABLE.column("seen_from").unwrap().postgres_type,
        "INET[]"
    );
    let Some(db) = common::postgres("inet_cidr") else {
        return;
    };
    db.create_table::<Host>().unwrap();
    let net = |s: &str| s.parse::<orm::sql_types::ipnetwork::IpNetwork>().unwrap();
    let rows = vec![
        NewHost {
            address: net("192.168.1.10/24"),
            network: net("10.0.0.0/8"),
            seen_from: vec![net("::1/128"), net("2001:db8::1/64")],
            gateway: Some(net("192.168.1.1")),
        },
        NewHost {
            address: net("2001:db8::42/128"),
            network: net("2001:db8::/32"),
            seen_from: vec![],
            gateway: None,
        },
    ];
    every_path::<Host>(
        &db,
        &rows,
        |id, r| Host {
            id,
            address: r.address,
            network: r.network,
            seen_from: r.seen_from.clone(),
            gateway: r.gateway,
        },
        |h| h.gateway = Some(net("127.0.0.1/32")),
        |db| {
            db.postgres()
                .unwrap()
                .load(hosts::table.order(hosts::id))
                .unwrap()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// numeric

#[cfg(feature = "numeric")]
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = prices, partial(PriceAmount = [id, amount]))]
pub struct Price {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub amount: orm::sql_types::bigdecimal::BigDecimal,
    pub discount: Option<orm::sql_types::bigdecimal::BigDecimal>,
    pub history: Vec<orm::sql_types::bigdecimal::BigDecimal>,
}

#[cfg(feature = "numeric")]
#[test]
fn numeric_is_stored_exactly_on_every_path() {
    use orm::sql_types::bigdecimal::BigDecimal;
    let column = Price::TABLE.column("amount").unwrap();
    assert_eq!(
        (column.postgres_type, column.sqlite_type),
        ("NUMERIC", "TEXT")
    );
    let dec = |s: &str| s.parse::<BigDecimal>().unwrap();
    // More digits than a double holds, tiny and huge scales, negative zero scale.
    let rows = vec![
        NewPrice {
            amount: dec("12345678901234567890.123456789012345678"),
            discount: Some(dec("0.000000000000000000000001")),
            history: vec![dec("0.1"), dec("-0.2"), dec("1e30")],
        },
        NewPrice {
            amount: dec("-0.10"),
            discount: None,
            history: vec![],
        },
    ];
    for db in common::backends("numeric_exact") {
        db.create_table::<Price>().unwrap();
        every_path::<Price>(
            &db,
            &rows,
            |id, r| Price {
                id,
                amount: r.amount.clone(),
                discount: r.discount.clone(),
                history: r.history.clone(),
            },
            |p| p.amount = dec("0.30000000000000000001"),
            |db| db.load(prices::table.order(prices::id)).unwrap(),
        );
        let stored = db.insert::<Price>(&rows[0]).unwrap();
        assert_eq!(
            db.find_as::<PriceAmount>(stored.id).unwrap().amount,
            rows[0].amount
        );
    }
}
