//! Every value is stored exactly or refused before it is sent: NaN and `-0.0` on SQLite, a NUL
//! character in text or JSON on PostgreSQL. Each refusal names the table and column, on
//! insert, update and bulk insert (COPY and multi-row INSERT, both commit modes).

use crate::common;

use diesel::prelude::*;
use orm::bulk::{BatchFailure, BulkOptions, CommitMode};
use orm::prelude::*;
use orm::sql_types::RejectReason;
use orm::{Backend, Database, Error, Model};
use serde_json::json;

/// Every field kind that is checked, NOT NULL and nullable; `text` is stored in `label` so
/// that errors are seen to name the column, not the field.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = samples)]
pub struct Sample {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub tag: i64,
    pub single: f32,
    pub double: f64,
    pub maybe_single: Option<f32>,
    pub maybe_double: Option<f64>,
    #[orm(column = label)]
    pub text: String,
    pub maybe_text: Option<String>,
    pub doc: serde_json::Value,
    pub maybe_doc: Option<serde_json::Value>,
}

/// A row every backend stores exactly.
fn fine(tag: i64) -> NewSample {
    NewSample {
        tag,
        single: 1.5,
        double: -2.25,
        maybe_single: None,
        maybe_double: Some(3.0),
        text: format!("row {tag}"),
        maybe_text: None,
        doc: json!({"tag": tag, "list": [1, "two", null]}),
        maybe_doc: None,
    }
}

fn setup(test: &str) -> Vec<Database> {
    let dbs = common::backends(test);
    for db in &dbs {
        db.create_table::<Sample>().unwrap();
    }
    dbs
}

fn count(db: &Database) -> i64 {
    db.first(samples::table.count()).unwrap()
}

/// The table, column, reason and backend of an `Error::ValueRejected`.
fn rejected(err: &Error) -> (&'static str, &'static str, RejectReason, Backend) {
    match err {
        Error::ValueRejected {
            table,
            column,
            reason,
            backend,
        } => (table, column, *reason, *backend),
        other => panic!("expected Error::ValueRejected, got {other:?}"),
    }
}

/// A change to a row that puts one bad value in one column.
type Edit = fn(&mut NewSample);

/// Float values SQLite does not store exactly, by column.
fn float_edits() -> Vec<(&'static str, RejectReason, Edit)> {
    vec![
        ("single", RejectReason::NaN, |r| r.single = f32::NAN),
        ("double", RejectReason::NaN, |r| r.double = f64::NAN),
        ("double", RejectReason::NaN, |r| r.double = -f64::NAN),
        ("maybe_single", RejectReason::NaN, |r| {
            r.maybe_single = Some(f32::NAN)
        }),
        ("maybe_double", RejectReason::NaN, |r| {
            r.maybe_double = Some(f64::NAN)
        }),
        ("single", RejectReason::NegativeZero, |r| r.single = -0.0),
        ("double", RejectReason::NegativeZero, |r| r.double = -0.0),
        ("maybe_single", RejectReason::NegativeZero, |r| {
            r.maybe_single = Some(-0.0)
        }),
        ("maybe_double", RejectReason::NegativeZero, |r| {
            r.maybe_double = Some(-0.0)
        }),
    ]
}

/// Text and JSON values PostgreSQL cannot store, by column.
fn nul_edits() -> Vec<(&'static str, RejectReason, Edit)> {
    vec![
        ("label", RejectReason::NulInText, |r| r.text = "a\0b".into()),
        ("label", RejectReason::NulInText, |r| r.text = "\0".into()),
        ("maybe_text", RejectReason::NulInText, |r| {
            r.maybe_text = Some("tail\0".into())
        }),
        ("doc", RejectReason::NulInJson, |r| r.doc = json!("a\u{0}b")),
        ("doc", RejectReason::NulInJson, |r| {
            r.doc = json!({"outer": [1, {"inner": "\u{0}"}]})
        }),
        ("doc", RejectReason::NulInJson, |r| {
            r.doc = json!({"key\u{0}": 1})
        }),
        ("maybe_doc", RejectReason::NulInJson, |r| {
            r.maybe_doc = Some(json!(["\u{0}"]))
        }),
    ]
}

/// The backend that refuses each kind of value.
fn refused_on(reason: RejectReason) -> Backend {
    match reason {
        RejectReason::NaN | RejectReason::NegativeZero => Backend::Sqlite,
        _ => Backend::Postgres,
    }
}

/// Whether two rows hold the same values bit for bit: NaN equals NaN, `-0.0` differs from
/// `0.0`.
fn same_row(a: &Sample, b: &NewSample) -> bool {
    fn bits32(x: Option<f32>) -> Option<u32> {
        // Every NaN is the same value to a database.
        x.map(|x| if x.is_nan() { f32::NAN } else { x }.to_bits())
    }
    fn bits64(x: Option<f64>) -> Option<u64> {
        x.map(|x| if x.is_nan() { f64::NAN } else { x }.to_bits())
    }
    a.tag == b.tag
        && bits32(Some(a.single)) == bits32(Some(b.single))
        && bits64(Some(a.double)) == bits64(Some(b.double))
        && bits32(a.maybe_single) == bits32(b.maybe_single)
        && bits64(a.maybe_double) == bits64(b.maybe_double)
        && a.text == b.text
        && a.maybe_text == b.maybe_text
        && a.doc == b.doc
        && a.maybe_doc == b.maybe_doc
}

/// Insert `row`: refused on `refused`, else stored and read back exactly.
fn insert_exactly_or_refused(
    db: &Database,
    row: &NewSample,
    column: &str,
    reason: RejectReason,
) -> Option<Sample> {
    let before = count(db);
    let result = db.insert::<Sample>(row);
    if db.backend() == refused_on(reason) {
        let err = result.expect_err("refused");
        assert_eq!(
            rejected(&err),
            ("samples", column, reason, db.backend()),
            "{row:?}"
        );
        assert_eq!(count(db), before, "nothing stored");
        None
    } else {
        let stored = result.unwrap_or_else(|e| panic!("{row:?} on {}: {e}", db.backend()));
        assert!(same_row(&stored, row), "returned {stored:?} for {row:?}");
        let found = db.find::<Sample>(stored.id).unwrap();
        assert!(same_row(&found, row), "read back {found:?} for {row:?}");
        Some(found)
    }
}

#[test]
fn floats_on_insert() {
    for db in setup("values_floats_on_insert") {
        for (column, reason, edit) in float_edits() {
            let mut row = fine(1);
            edit(&mut row);
            if let Some(stored) = insert_exactly_or_refused(&db, &row, column, reason) {
                // PostgreSQL keeps NaN and the sign of zero.
                let value = match column {
                    "single" => f64::from(stored.single),
                    "double" => stored.double,
                    "maybe_single" => f64::from(stored.maybe_single.unwrap()),
                    _ => stored.maybe_double.unwrap(),
                };
                match reason {
                    RejectReason::NaN => assert!(value.is_nan(), "{column}: {value}"),
                    _ => assert!(value == 0.0 && value.is_sign_negative(), "{column}"),
                }
            }
        }
    }
}

#[test]
fn positive_zero_infinities_and_none_are_stored_everywhere() {
    for db in setup("values_positive_zero_infinities") {
        let rows = [
            NewSample {
                single: 0.0,
                double: 0.0,
                maybe_single: Some(0.0),
                maybe_double: Some(0.0),
                ..fine(1)
            },
            NewSample {
                single: f32::INFINITY,
                double: f64::NEG_INFINITY,
                maybe_single: Some(f32::NEG_INFINITY),
                maybe_double: Some(f64::INFINITY),
                ..fine(2)
            },
            NewSample {
                single: f32::MIN_POSITIVE,
                double: f64::MAX,
                maybe_single: None,
                maybe_double: None,
                maybe_text: None,
                maybe_doc: None,
                ..fine(3)
            },
        ];
        for row in &rows {
            let stored = db.insert::<Sample>(row).unwrap();
            let found = db.find::<Sample>(stored.id).unwrap();
            assert!(same_row(&found, row), "{}: {found:?}", db.backend());
        }
        let zero = db.find::<Sample>(1).unwrap();
        assert!(zero.double.is_sign_positive() && zero.single.is_sign_positive());
        let inf = db.find::<Sample>(2).unwrap();
        assert_eq!(inf.single, f32::INFINITY);
        assert_eq!(inf.double, f64::NEG_INFINITY);
        assert_eq!(inf.maybe_single, Some(f32::NEG_INFINITY));
        assert_eq!(inf.maybe_double, Some(f64::INFINITY));
    }
}

#[test]
fn nul_characters_on_insert() {
    for db in setup("values_nul_on_insert") {
        for (column, reason, edit) in nul_edits() {
            let mut row = fine(1);
            edit(&mut row);
            insert_exactly_or_refused(&db, &row, column, reason);
        }
        // Six characters that only look like an escaped NUL are plain text.
        let row = NewSample {
            text: "\\u0000".into(),
            doc: json!({"k": "\\u0000"}),
            ..fine(2)
        };
        let stored = db.insert::<Sample>(&row).unwrap();
        assert!(same_row(&db.find::<Sample>(stored.id).unwrap(), &row));
    }
}

#[test]
fn the_message_names_table_column_and_what_happens() {
    for db in setup("values_message") {
        let cases: Vec<(NewSample, &str)> = match db.backend() {
            Backend::Sqlite => vec![
                (
                    NewSample {
                        double: f64::NAN,
                        ..fine(1)
                    },
                    "`samples.double`: NaN cannot be stored on SQLite (it would read back as NULL)",
                ),
                (
                    NewSample {
                        maybe_single: Some(-0.0),
                        ..fine(1)
                    },
                    "`samples.maybe_single`: -0.0 cannot be stored exactly on SQLite (it reads \
                     back as 0.0)",
                ),
            ],
            _ => vec![
                (
                    NewSample {
                        text: "a\0b".into(),
                        ..fine(1)
                    },
                    "`samples.label`: a NUL character cannot be stored in a PostgreSQL text column",
                ),
                (
                    NewSample {
                        doc: json!(["\u{0}"]),
                        ..fine(1)
                    },
                    "`samples.doc`: a NUL character (\\u0000) cannot be stored in a PostgreSQL \
                     jsonb column",
                ),
            ],
        };
        for (row, message) in cases {
            assert_eq!(db.insert::<Sample>(&row).unwrap_err().to_string(), message);
        }
    }
}

#[test]
fn refused_before_anything_is_sent_through_a_connection() {
    for db in setup("values_conn_insert") {
        let bad = match db.backend() {
            Backend::Sqlite => NewSample {
                maybe_double: Some(f64::NAN),
                ..fine(1)
            },
            _ => NewSample {
                maybe_text: Some("\0".into()),
                ..fine(1)
            },
        };
        let (column, info) = db
            .with_connection(|conn| {
                let err = conn.insert::<Sample>(&bad).unwrap_err();
                Ok((rejected(&err).1, conn.info()))
            })
            .unwrap();
        assert_eq!(column, bad_column(&db));
        assert_eq!(info.statements, 0, "no statement sent");
        assert!(info.tables_written.is_empty());
        // Inside a transaction, the error rolls back what the body wrote before it.
        let err = db
            .transaction(|conn| {
                conn.insert::<Sample>(&fine(2))?;
                conn.insert::<Sample>(&bad)
            })
            .unwrap_err();
        assert_eq!(
            rejected(&err),
            ("samples", bad_column(&db), bad_reason(&db), db.backend())
        );
        assert_eq!(count(&db), 0);
    }
}

/// The column and reason of the bad value `bad_row` puts in a row on `db`'s backend.
fn bad_column(db: &Database) -> &'static str {
    match db.backend() {
        Backend::Sqlite => "maybe_double",
        _ => "maybe_text",
    }
}

fn bad_reason(db: &Database) -> RejectReason {
    match db.backend() {
        Backend::Sqlite => RejectReason::NaN,
        _ => RejectReason::NulInText,
    }
}

/// Row `tag` with a value `db`'s backend refuses.
fn bad_row(db: &Database, tag: i64) -> NewSample {
    match db.backend() {
        Backend::Sqlite => NewSample {
            maybe_double: Some(f64::NAN),
            ..fine(tag)
        },
        _ => NewSample {
            maybe_text: Some("\0".into()),
            ..fine(tag)
        },
    }
}

#[test]
fn update_checks_the_model() {
    for db in setup("values_update") {
        let original = db.insert::<Sample>(&fine(1)).unwrap();
        let edits = float_edits().into_iter().chain(nul_edits());
        for (column, reason, edit) in edits {
            let mut new = fine(1);
            edit(&mut new);
            let changed = Sample {
                id: original.id,
                tag: new.tag,
                single: new.single,
                double: new.double,
                maybe_single: new.maybe_single,
                maybe_double: new.maybe_double,
                text: new.text.clone(),
                maybe_text: new.maybe_text.clone(),
                doc: new.doc.clone(),
                maybe_doc: new.maybe_doc.clone(),
            };
            let result = db.update(&changed);
            if db.backend() == refused_on(reason) {
                let err = result.expect_err("refused");
                assert_eq!(rejected(&err), ("samples", column, reason, db.backend()));
                // The stored row is unchanged.
                assert_eq!(db.find::<Sample>(original.id).unwrap(), original);
            } else {
                let stored = result.unwrap_or_else(|e| panic!("{column}: {e}"));
                assert!(same_row(&stored, &new), "{stored:?}");
                assert!(same_row(&db.find::<Sample>(original.id).unwrap(), &new));
                db.update(&original).unwrap();
            }
        }
        // Through a connection too, before anything is sent.
        let mut bad = original.clone();
        match db.backend() {
            Backend::Sqlite => bad.single = f32::NAN,
            _ => bad.text = "x\0".into(),
        }
        let (err, statements) = db
            .with_connection(|conn| {
                let err = conn.update(&bad).unwrap_err();
                Ok((err, conn.info().statements))
            })
            .unwrap();
        let column = if db.backend() == Backend::Sqlite {
            "single"
        } else {
            "label"
        };
        assert_eq!(rejected(&err).1, column);
        assert_eq!(statements, 0);
        assert_eq!(db.find::<Sample>(original.id).unwrap(), original);
    }
}

const ROWS: i64 = 25;
const BATCH: usize = 10;

/// The bulk paths: COPY on PostgreSQL (multi-row INSERT on SQLite), and multi-row INSERT
/// everywhere when keys are returned.
fn bulk_options(return_keys: bool, commit: CommitMode) -> BulkOptions<'static> {
    BulkOptions::default()
        .batch_size(BATCH)
        .commit(commit)
        .return_keys(return_keys)
}

#[test]
fn bulk_reports_the_rejected_row_like_a_failing_row() {
    for db in setup("values_bulk_rejected") {
        for return_keys in [false, true] {
            for commit in [CommitMode::PerBatch, CommitMode::AllOrNothing] {
                for bad in [0, 9, 10, 17, 24] {
                    db.batch_execute("DELETE FROM samples").unwrap();
                    let rows = (0..ROWS).map(|i| if i == bad { bad_row(&db, i) } else { fine(i) });
                    let case = format!("{} keys={return_keys} {commit:?} bad={bad}", db.backend());
                    let err = Sample::bulk_insert(&db, rows, bulk_options(return_keys, commit))
                        .expect_err(&case);
                    let Error::Bulk { failure, source } = &err else {
                        panic!("{case}: expected Error::Bulk, got {err:?}")
                    };
                    let batch = bad as u64 / BATCH as u64;
                    let start = batch * BATCH as u64;
                    let committed = match commit {
                        CommitMode::PerBatch => start,
                        CommitMode::AllOrNothing => 0,
                    };
                    assert_eq!(
                        failure,
                        &BatchFailure {
                            batch,
                            rows: start..(start + BATCH as u64).min(ROWS as u64),
                            row: Some(bad as u64),
                            committed_rows: committed,
                        },
                        "{case}"
                    );
                    assert_eq!(
                        rejected(source),
                        ("samples", bad_column(&db), bad_reason(&db), db.backend()),
                        "{case}"
                    );
                    assert_eq!(count(&db), committed as i64, "{case}");
                    let tags: Vec<i64> = db
                        .load(samples::table.select(samples::tag).order(samples::tag))
                        .unwrap();
                    assert_eq!(tags, (0..committed as i64).collect::<Vec<_>>(), "{case}");
                    assert!(
                        err.to_string().contains(&format!("row {bad} failed")),
                        "{err}"
                    );
                }
            }
        }
    }
}

#[test]
fn bulk_stores_what_the_backend_keeps_exactly() {
    for db in setup("values_bulk_exact") {
        for return_keys in [false, true] {
            for commit in [CommitMode::PerBatch, CommitMode::AllOrNothing] {
                db.batch_execute("DELETE FROM samples").unwrap();
                // Every value the other backend refuses, plus infinities and +0.0.
                let rows: Vec<NewSample> = (0..ROWS)
                    .map(|i| {
                        let mut row = fine(i);
                        let edits = match db.backend() {
                            Backend::Sqlite => nul_edits(),
                            _ => float_edits(),
                        };
                        match edits.get(i as usize) {
                            Some((_, _, edit)) => edit(&mut row),
                            None if i % 2 == 0 => row.double = f64::INFINITY,
                            None => row.maybe_single = Some(0.0),
                        }
                        row
                    })
                    .collect();
                let report =
                    Sample::bulk_insert(&db, &rows, bulk_options(return_keys, commit)).unwrap();
                assert_eq!(report.rows, ROWS as u64);
                assert_eq!(
                    report.used_copy,
                    db.backend() == Backend::Postgres && !return_keys
                );
                let stored: Vec<Sample> = db.load(samples::table.order(samples::tag)).unwrap();
                assert_eq!(stored.len(), rows.len());
                for (stored, row) in stored.iter().zip(&rows) {
                    assert!(same_row(stored, row), "{}: {stored:?}", db.backend());
                }
            }
        }
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn nan_in_not_null_column_is_refused_not_a_constraint_violation() {
    let db = Database::connect("sqlite::memory:").unwrap();
    db.create_table::<Sample>().unwrap();
    let rows = (0..ROWS).map(|i| NewSample {
        single: if i == 3 { f32::NAN } else { 1.0 },
        ..fine(i)
    });
    let err =
        Sample::bulk_insert(&db, rows, bulk_options(false, CommitMode::PerBatch)).unwrap_err();
    let Error::Bulk { failure, source } = &err else {
        panic!("expected Error::Bulk, got {err:?}")
    };
    assert_eq!(failure.row, Some(3));
    assert_eq!(failure.committed_rows, 0);
    assert_eq!(
        rejected(source),
        ("samples", "single", RejectReason::NaN, Backend::Sqlite)
    );
    assert_eq!(count(&db), 0);
}

/// A bulk insert stops reading at the end of the batch that holds a refused value: rows after
/// it are never pulled from the iterator.
#[test]
fn bulk_reads_no_further_than_the_rejected_batch() {
    for db in setup("values_bulk_reads") {
        let mut read = 0;
        let rows = (0..ROWS).map(|i| {
            read += 1;
            if i == 12 {
                bad_row(&db, i)
            } else {
                fine(i)
            }
        });
        let err =
            Sample::bulk_insert(&db, rows, bulk_options(false, CommitMode::PerBatch)).unwrap_err();
        assert!(matches!(err, Error::Bulk { .. }), "{err:?}");
        assert_eq!(read, 20);
        assert_eq!(count(&db), 10);
    }
}
