//! The CRUD suite: one body per test, run on SQLite and PostgreSQL.

use crate::common;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use orm::prelude::*;
use orm::{Backend, Error, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    #[orm(column = full_name)]
    pub name: String,
    pub bio: Option<String>,
    pub last_login: Option<DateTime<Utc>>,
}

/// One column of every supported type, each also nullable.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = samples)]
pub struct Sample {
    #[orm(primary_key, generated)]
    pub id: i32,
    pub small: i16,
    pub big: i64,
    pub single: f32,
    pub double: f64,
    pub flag: bool,
    pub text: String,
    pub bytes: Vec<u8>,
    pub at: DateTime<Utc>,
    pub local: NaiveDateTime,
    pub day: NaiveDate,
    pub uid: uuid::Uuid,
    pub doc: serde_json::Value,
    pub maybe_small: Option<i16>,
    pub maybe_bytes: Option<Vec<u8>>,
    pub maybe_at: Option<DateTime<Utc>>,
    pub maybe_uid: Option<uuid::Uuid>,
    pub maybe_doc: Option<serde_json::Value>,
}

/// A composite primary key, given by the caller.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = memberships, unique(team, seat))]
pub struct Membership {
    #[orm(primary_key)]
    pub team: i32,
    #[orm(primary_key)]
    pub member: String,
    pub seat: i32,
    pub role: String,
}

fn new_user(email: &str, name: &str) -> NewUser {
    NewUser {
        email: email.into(),
        name: name.into(),
        bio: None,
        last_login: None,
    }
}

fn micros(ts: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(ts).unwrap()
}

#[test]
fn insert_find_update_delete() {
    for db in common::backends("insert_find_update_delete") {
        db.create_table::<User>().unwrap();
        let ada = db
            .insert::<User>(&new_user("ada@example.com", "Ada"))
            .unwrap();
        let bob = db
            .insert::<User>(&new_user("bob@example.com", "Bob"))
            .unwrap();
        assert!(ada.id > 0 && bob.id > ada.id, "keys are generated in order");
        assert_eq!(db.find::<User>(ada.id).unwrap(), ada);

        let mut changed = ada.clone();
        changed.name = "Ada Lovelace".into();
        changed.bio = Some("Analyst".into());
        changed.last_login = Some(micros(1_700_000_000_123_456));
        assert_eq!(db.update(&changed).unwrap(), changed);
        assert_eq!(db.find::<User>(ada.id).unwrap(), changed);
        assert_eq!(
            db.find::<User>(bob.id).unwrap(),
            bob,
            "other rows untouched"
        );

        db.delete::<User>(ada.id).unwrap();
        assert!(matches!(
            db.find::<User>(ada.id),
            Err(Error::NotFound { table: "users" })
        ));
        assert_eq!(db.find::<User>(bob.id).unwrap(), bob);
    }
}

#[test]
fn nulls_are_written_and_cleared() {
    for db in common::backends("nulls_are_written_and_cleared") {
        db.create_table::<User>().unwrap();
        let row = NewUser {
            bio: Some("has a bio".into()),
            last_login: Some(micros(1)),
            ..new_user("n@example.com", "N")
        };
        let stored = db.insert::<User>(&row).unwrap();
        assert_eq!(stored.bio.as_deref(), Some("has a bio"));

        let mut cleared = stored.clone();
        cleared.bio = None;
        cleared.last_login = None;
        db.update(&cleared).unwrap();
        let reread = db.find::<User>(stored.id).unwrap();
        assert_eq!((reread.bio, reread.last_login), (None, None));

        let nulls: Vec<User> = db.load(users::table.filter(users::bio.is_null())).unwrap();
        assert_eq!(nulls.len(), 1, "updating to None stored NULL");
    }
}

#[test]
fn unicode_and_large_text_round_trip() {
    for db in common::backends("unicode_and_large_text_round_trip") {
        db.create_table::<User>().unwrap();
        let names = [
            "Zoë Ångström",
            "山田太郎",
            "emoji 👩‍💻🚀",
            "e\u{301} combining",
            "quote ' \" backslash \\ ;--",
            "",
        ];
        for (i, name) in names.iter().enumerate() {
            let u = db
                .insert::<User>(&new_user(&format!("{i}@x"), name))
                .unwrap();
            assert_eq!(db.find::<User>(u.id).unwrap().name, *name);
        }
        let large: String = "Ωmega text ".repeat(200_000); // 2.2 MB
        let u = db
            .insert::<User>(&NewUser {
                bio: Some(large.clone()),
                ..new_user("large@x", "large")
            })
            .unwrap();
        assert_eq!(db.find::<User>(u.id).unwrap().bio.unwrap(), large);
    }
}

fn sample() -> NewSample {
    NewSample {
        small: i16::MIN,
        big: i64::MAX,
        single: 1.5,
        double: -1.0e300,
        flag: true,
        text: "text".into(),
        bytes: (0..=255u8).collect(),
        at: micros(1_234_567_890_123_456),
        local: NaiveDate::from_ymd_opt(1999, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 999_999)
            .unwrap(),
        day: NaiveDate::from_ymd_opt(2024, 2, 29).unwrap(),
        uid: uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        doc: serde_json::json!({"k": [1, 2, {"n": null}], "s": "ü"}),
        maybe_small: Some(i16::MAX),
        maybe_bytes: Some(Vec::new()),
        maybe_at: Some(micros(-86_400_000_000)),
        maybe_uid: None,
        maybe_doc: None,
    }
}

#[test]
fn every_supported_type_round_trips_exactly() {
    for db in common::backends("every_supported_type_round_trips_exactly") {
        db.create_table::<Sample>().unwrap();
        let new = sample();
        let stored = db.insert::<Sample>(&new).unwrap();
        let found = db.find::<Sample>(stored.id).unwrap();
        assert_eq!(found, stored);
        assert_eq!(found.bytes, new.bytes);
        assert_eq!(found.at, new.at, "timestamptz keeps microseconds");
        assert_eq!(found.local, new.local);
        assert_eq!(found.maybe_at, new.maybe_at, "before the epoch");
        assert_eq!(found.doc, new.doc);
        assert_eq!(found.uid, new.uid);
        assert_eq!((found.maybe_uid, found.maybe_doc), (None, None));
        assert_eq!(
            found.maybe_bytes,
            Some(Vec::new()),
            "empty bytes are not NULL"
        );
    }
}

#[test]
fn every_supported_type_round_trips_through_bulk_insert() {
    // Binary COPY on PostgreSQL, multi-row INSERT on SQLite: both must store what `insert` does.
    for db in common::backends("every_supported_type_bulk") {
        db.create_table::<Sample>().unwrap();
        let mut nulls = sample();
        (nulls.maybe_small, nulls.maybe_bytes, nulls.maybe_at) = (None, None, None);
        let mut filled = sample();
        filled.maybe_uid = Some(uuid::Uuid::from_u128(7));
        filled.maybe_doc = Some(serde_json::json!([1, "two", 3.5]));
        let rows = vec![sample(), nulls, filled];
        let report = Sample::bulk_insert(&db, &rows, orm::bulk::BulkOptions::default()).unwrap();
        assert_eq!(report.used_copy, db.backend() == Backend::Postgres);
        let stored: Vec<Sample> = db.load(samples::table.order(samples::id)).unwrap();
        assert_eq!(stored.len(), 3);
        for (row, new) in stored.iter().zip(&rows) {
            let expected = Sample {
                id: row.id,
                small: new.small,
                big: new.big,
                single: new.single,
                double: new.double,
                flag: new.flag,
                text: new.text.clone(),
                bytes: new.bytes.clone(),
                at: new.at,
                local: new.local,
                day: new.day,
                uid: new.uid,
                doc: new.doc.clone(),
                maybe_small: new.maybe_small,
                maybe_bytes: new.maybe_bytes.clone(),
                maybe_at: new.maybe_at,
                maybe_uid: new.maybe_uid,
                maybe_doc: new.maybe_doc.clone(),
            };
            assert_eq!(*row, expected);
        }
    }
}

#[test]
fn timestamps_with_offsets_are_stored_as_the_same_instant() {
    for db in common::backends("timestamps_with_offsets") {
        db.create_table::<User>().unwrap();
        let offset = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let at = offset
            .with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let u = db
            .insert::<User>(&NewUser {
                last_login: Some(at),
                ..new_user("tz@x", "tz")
            })
            .unwrap();
        assert_eq!(db.find::<User>(u.id).unwrap().last_login, Some(at));
        // Comparisons in the Diesel DSL bind the value with `orm::sql_types::bind` (`Some` for a
        // nullable column).
        let later: Vec<User> = db
            .load(
                users::table.filter(users::last_login.gt(orm::sql_types::bind(Some(
                    at - chrono::Duration::seconds(1),
                )))),
            )
            .unwrap();
        assert_eq!(later.len(), 1);
        let none: Vec<User> = db
            .load(users::table.filter(users::last_login.gt(orm::sql_types::bind(Some(at)))))
            .unwrap();
        assert!(none.is_empty());
    }
}

#[test]
fn composite_keys() {
    for db in common::backends("composite_keys") {
        db.create_table::<Membership>().unwrap();
        let a = NewMembership {
            team: 1,
            member: "ada".into(),
            seat: 1,
            role: "owner".into(),
        };
        let stored = db.insert::<Membership>(&a).unwrap();
        db.insert::<Membership>(&NewMembership {
            member: "bob".into(),
            seat: 2,
            ..a.clone()
        })
        .unwrap();
        assert_eq!(stored.primary_key(), (1, "ada".to_owned()));
        assert_eq!(db.find::<Membership>((1, "ada".into())).unwrap(), stored);
        assert!(matches!(
            db.find::<Membership>((2, "ada".into())),
            Err(Error::NotFound { .. })
        ));

        let mut promoted = stored.clone();
        promoted.role = "admin".into();
        assert_eq!(db.update(&promoted).unwrap().role, "admin");
        assert_eq!(
            db.find::<Membership>((1, "bob".into())).unwrap().role,
            "owner"
        );

        match db.insert::<Membership>(&NewMembership {
            seat: 9,
            ..a.clone()
        }) {
            Err(Error::UniqueViolation { constraint, .. }) => {
                assert_eq!(constraint, "memberships_pkey")
            }
            other => panic!("expected a primary-key violation, got {other:?}"),
        }
        match db.insert::<Membership>(&NewMembership {
            member: "eve".into(),
            ..a.clone()
        }) {
            Err(Error::UniqueViolation { constraint, .. }) => {
                assert_eq!(constraint, "memberships_team_seat_key")
            }
            other => panic!("expected a unique violation, got {other:?}"),
        }

        db.delete::<Membership>((1, "ada".into())).unwrap();
        assert_eq!(
            db.load::<_, Membership>(memberships::table).unwrap().len(),
            1
        );
    }
}

#[test]
fn missing_rows_are_not_found() {
    for db in common::backends("missing_rows_are_not_found") {
        db.create_table::<User>().unwrap();
        let ghost = User {
            id: 4242,
            email: "ghost@x".into(),
            name: "ghost".into(),
            bio: None,
            last_login: None,
        };
        assert!(matches!(
            db.update(&ghost),
            Err(Error::NotFound { table: "users" })
        ));
        assert!(matches!(
            db.delete::<User>(4242),
            Err(Error::NotFound { table: "users" })
        ));
        assert!(matches!(
            db.find::<User>(4242),
            Err(Error::NotFound { table: "users" })
        ));
        assert!(
            db.load::<_, User>(users::table).unwrap().is_empty(),
            "update inserted nothing"
        );
    }
}

#[test]
fn unique_violation_names_the_constraint() {
    for db in common::backends("unique_violation_names_the_constraint") {
        db.create_table::<User>().unwrap();
        let first = db
            .insert::<User>(&new_user("dup@example.com", "First"))
            .unwrap();
        let err = db
            .insert::<User>(&new_user("dup@example.com", "Second"))
            .unwrap_err();
        match &err {
            Error::UniqueViolation {
                table, constraint, ..
            } => {
                assert_eq!(table, "users");
                assert_eq!(constraint, "users_email_key");
            }
            other => panic!("expected UniqueViolation, got {other:?}"),
        }
        assert!(err.to_string().contains("users_email_key"), "{err}");
        // The failed insert left the table as it was.
        assert_eq!(db.load::<_, User>(users::table).unwrap(), vec![first]);
    }
}

#[test]
fn not_null_is_enforced_by_the_generated_ddl() {
    for db in common::backends("not_null_is_enforced") {
        db.create_table::<User>().unwrap();
        db.create_table::<User>().unwrap(); // IF NOT EXISTS
        let err = db
            .batch_execute("INSERT INTO users (email, full_name) VALUES (NULL, 'x')")
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::ConstraintViolation {
                    kind: "not null",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn diesel_dsl_works_on_generated_tables() {
    for db in common::backends("diesel_dsl_works") {
        db.create_table::<User>().unwrap();
        for (e, n) in [("c@x", "Cy"), ("a@x", "Al"), ("b@x", "Bo")] {
            db.insert::<User>(&new_user(e, n)).unwrap();
        }
        let names: Vec<String> = db
            .load(
                users::table
                    .select(users::full_name)
                    .order(users::full_name.asc())
                    .limit(2),
            )
            .unwrap();
        assert_eq!(names, ["Al", "Bo"]);
        let bo: User = db
            .first(
                users::table
                    .filter(users::email.eq("b@x"))
                    .select(users::all_columns),
            )
            .unwrap();
        assert_eq!(bo.name, "Bo");
        let touched = db
            .execute(
                diesel::update(users::table.filter(users::full_name.like("%o")))
                    .set(users::bio.eq("o")),
            )
            .unwrap();
        assert_eq!(touched, 1);
        let none = db.first::<_, User>(users::table.filter(users::full_name.eq("nobody")));
        assert!(matches!(none, Err(Error::NotFound { .. })));
        let count = db
            .with_connection(|conn| {
                Ok(match conn.raw() {
                    #[cfg(feature = "postgres")]
                    orm::exec::RawConnection::Postgres(c) => {
                        users::table.count().get_result::<i64>(c)
                    }
                    #[cfg(feature = "sqlite")]
                    orm::exec::RawConnection::Sqlite(c) => {
                        users::table.count().get_result::<i64>(c)
                    }
                    _ => unreachable!(),
                }?)
            })
            .unwrap();
        assert_eq!(count, 3);
    }
}

#[test]
fn model_operations_inside_a_transaction() {
    for db in common::backends("model_operations_inside_a_transaction") {
        db.create_table::<User>().unwrap();
        let ids = db
            .transaction(|conn| {
                let a = conn.insert::<User>(&new_user("a@tx", "A"))?;
                let b = conn.insert::<User>(&new_user("b@tx", "B"))?;
                assert_eq!(conn.find::<User>(a.id)?.name, "A");
                Ok((a.id, b.id))
            })
            .unwrap();
        assert_eq!(db.find::<User>(ids.1).unwrap().email, "b@tx");
        let failed = db.transaction(|conn| {
            conn.insert::<User>(&new_user("c@tx", "C"))?;
            conn.insert::<User>(&new_user("a@tx", "duplicate"))
        });
        // Named as on every other path: the model's metadata travels with the error.
        assert!(
            matches!(&failed, Err(Error::UniqueViolation { constraint, .. }) if constraint == "users_email_key"),
            "{failed:?}"
        );
        assert_eq!(
            db.load::<_, User>(users::table).unwrap().len(),
            2,
            "rolled back"
        );
    }
}

#[test]
fn a_panic_inside_a_transaction_rolls_back_and_keeps_the_database() {
    // An in-memory SQLite database lives in its one connection: a panic in user code must not
    // cost the connection, and with it every row.
    for db in common::backends("panic_inside_a_transaction") {
        db.create_table::<User>().unwrap();
        db.insert::<User>(&new_user("kept@x", "Kept")).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.transaction(|conn| -> orm::Result<()> {
                conn.insert::<User>(&new_user("lost@x", "Lost"))?;
                panic!("user code fails mid-transaction")
            })
        }));
        assert!(panicked.is_err());
        let emails: Vec<String> = db.load(users::table.select(users::email)).unwrap();
        assert_eq!(
            emails,
            ["kept@x"],
            "committed rows kept, the open transaction rolled back"
        );
        // The connection is usable, transactions included.
        db.transaction(|conn| conn.insert::<User>(&new_user("after@x", "After")))
            .unwrap();
        assert_eq!(db.load::<_, User>(users::table).unwrap().len(), 2);
    }
}

#[test]
fn transactions_roll_back_on_error() {
    for db in common::backends("transactions_roll_back") {
        db.create_table::<User>().unwrap();
        let result = db.transaction(|conn| {
            let row = new_user("t@x", "T");
            match conn.raw() {
                #[cfg(feature = "postgres")]
                orm::exec::RawConnection::Postgres(c) => {
                    diesel::insert_into(users::table).values(&row).execute(c)?
                }
                #[cfg(feature = "sqlite")]
                orm::exec::RawConnection::Sqlite(c) => {
                    diesel::insert_into(users::table).values(&row).execute(c)?
                }
                _ => unreachable!(),
            };
            Err::<(), _>(Error::from(diesel::result::Error::RollbackTransaction))
        });
        assert!(result.is_err());
        assert!(db.load::<_, User>(users::table).unwrap().is_empty());
    }
}

/// `diesel_table` binds a model to a table declared by hand (or by `diesel print-schema`).
mod schema {
    diesel::table! {
        accounts (code) {
            code -> Text,
            balance -> BigInt,
            #[sql_name = "memo"]
            note -> Nullable<Text>,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::accounts)]
pub struct Account {
    #[orm(primary_key)]
    pub code: String,
    pub balance: i64,
    pub note: Option<String>,
}

#[test]
fn models_bind_to_existing_schema_tables() {
    assert_eq!(Account::TABLE.name, "accounts");
    // SQL names come from the schema, `#[sql_name]` included.
    assert!(Account::TABLE.column("memo").is_some() && Account::TABLE.column("note").is_none());
    for db in common::backends("models_bind_to_existing_schema_tables") {
        db.create_table::<Account>().unwrap();
        let rows = [("B-1", Some("first")), ("B-2", None)].map(|(code, memo)| NewAccount {
            code: code.into(),
            balance: 1,
            note: memo.map(str::to_owned),
        });
        let report = Account::bulk_insert(&db, &rows, orm::bulk::BulkOptions::default()).unwrap();
        assert_eq!(report.rows, 2);
        assert_eq!(
            db.find::<Account>("B-1".to_owned())
                .unwrap()
                .note
                .as_deref(),
            Some("first")
        );
        let a = db
            .insert::<Account>(&NewAccount {
                code: "A-1".into(),
                balance: 10,
                note: None,
            })
            .unwrap();
        let rich: Vec<Account> = db
            .load(schema::accounts::table.filter(schema::accounts::balance.ge(10)))
            .unwrap();
        assert_eq!(rich.len(), 1);
        assert_eq!(rich, vec![a]);
    }
}

/// A type of the user's own, stored through `#[orm(sql_type = …)]`.
#[derive(
    Debug, Clone, PartialEq, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Email(String);

impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for Email
where
    DB: diesel::backend::Backend,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, DB>,
    ) -> diesel::serialize::Result {
        self.0.as_str().to_sql(out)
    }
}

impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for Email
where
    DB: diesel::backend::Backend,
    String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
        let s = String::from_sql(bytes)?;
        if !s.contains('@') {
            return Err(format!("`{s}` is not an email address").into());
        }
        Ok(Email(s))
    }
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = contacts)]
pub struct Contact {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(sql_type = diesel::sql_types::Text)]
    pub email: Email,
    #[orm(sql_type = diesel::sql_types::Text)]
    pub backup: Option<Email>,
}

#[test]
fn custom_types_use_the_given_sql_type() {
    assert_eq!(
        Contact::TABLE.column("email").unwrap().postgres_type,
        "TEXT"
    );
    assert!(Contact::TABLE.column("backup").unwrap().nullable);
    for db in common::backends("custom_types_use_the_given_sql_type") {
        db.create_table::<Contact>().unwrap();
        let c = db
            .insert::<Contact>(&NewContact {
                email: Email("x@y".into()),
                backup: None,
            })
            .unwrap();
        assert_eq!(db.find::<Contact>(c.id).unwrap().email, Email("x@y".into()));
        let found: Vec<Contact> = db
            .load(contacts::table.filter(contacts::email.eq(Email("x@y".into()))))
            .unwrap();
        assert_eq!(found.len(), 1);
    }
}

#[test]
fn metadata_describes_the_table() {
    let t = User::TABLE;
    assert_eq!((t.model, t.name), ("User", "users"));
    assert_eq!(t.primary_key, ["id"]);
    assert_eq!(t.unique, [&["email"][..]]);
    let names: Vec<_> = t.columns.iter().map(|c| c.name).collect();
    assert_eq!(names, ["id", "email", "full_name", "bio", "last_login"]);
    let login = t.column("last_login").unwrap();
    assert_eq!(
        (login.postgres_type, login.sqlite_type, login.nullable),
        ("TIMESTAMPTZ", "TEXT", true)
    );
    assert!(t.column("id").unwrap().generated);
    assert_eq!(Membership::TABLE.primary_key, ["team", "member"]);
    assert_eq!(Membership::TABLE.unique, [&["team", "seat"][..]]);
}

/// The fingerprint hashes the table name and each column's name, SQL type and nullability:
/// the same shape declared again hashes the same, a changed column type differently.
mod v2 {
    use orm::Model;
    #[derive(Model)]
    #[orm(table = users)]
    pub struct User {
        #[orm(primary_key, generated)]
        pub id: i64,
        #[orm(unique)]
        pub email: String,
        #[orm(column = full_name)]
        pub name: String,
        pub bio: Option<String>,
        pub last_login: Option<chrono::NaiveDateTime>,
    }
}

mod v1_again {
    use chrono::{DateTime, Utc};
    use orm::Model;
    #[derive(Model)]
    #[orm(table = users)]
    pub struct User {
        #[orm(primary_key, generated)]
        pub id: i64,
        #[orm(unique)]
        pub email: String,
        #[orm(column = full_name)]
        pub name: String,
        pub bio: Option<String>,
        pub last_login: Option<DateTime<Utc>>,
    }
}

#[test]
fn fingerprint_changes_with_the_stored_shape_only() {
    assert_ne!(User::TABLE.fingerprint, v2::User::TABLE.fingerprint);
    assert_eq!(User::TABLE.fingerprint, v1_again::User::TABLE.fingerprint);
    assert_ne!(User::TABLE.fingerprint, Sample::TABLE.fingerprint);
}

#[test]
#[cfg(feature = "sqlite")]
fn backend_is_reported() {
    let db = orm::Database::connect("sqlite::memory:").unwrap();
    assert_eq!(db.backend(), Backend::Sqlite);
    if let Some(pg) = common::postgres("backend_is_reported") {
        assert_eq!(pg.backend(), Backend::Postgres);
    }
}

#[test]
fn a_deleted_rows_id_comes_back_on_sqlite_only() {
    // The README's table of differences says so; this keeps it true.
    for db in common::backends("deleted_id_reuse") {
        db.create_table::<User>().unwrap();
        db.insert::<User>(&new_user("a@reuse", "A")).unwrap();
        let last = db.insert::<User>(&new_user("b@reuse", "B")).unwrap();
        db.delete::<User>(last.id).unwrap();
        let next = db.insert::<User>(&new_user("c@reuse", "C")).unwrap();
        match db.backend() {
            Backend::Sqlite => assert_eq!(next.id, last.id, "a rowid alias reuses the highest id"),
            _ => assert!(next.id > last.id, "an identity never hands out an id twice"),
        }
    }
}
