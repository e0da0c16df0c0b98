//! Column types beyond the scalars: arrays, database enums, `VARCHAR(n)`, PostgreSQL's
//! `interval` and `citext`, and models bound to a `table!` whose Rust types are taken as they
//! are. Each family goes through every write and read path: insert, find, update, bulk insert
//! by COPY (PostgreSQL) and by multi-row INSERT, and partials; on PostgreSQL, and on SQLite
//! where the type exists there.

mod common;

use std::fmt::Debug;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use orm::{Backend, BulkOptions, Database, DbEnum, Error, Model, RejectReason};
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
    pub mood: Mood,
    pub before: Option<Mood>,
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
