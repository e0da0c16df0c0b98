//! The connection context: a transaction body can do everything `Database` can, every call
//! counts its statements and names the tables it wrote, and queries or models of one backend
//! go through that backend's handle.

use crate::common;

use diesel::prelude::*;
use orm::bulk::BulkOptions;
use orm::exec::{Intent, Node};
use orm::prelude::*;
use orm::{Error, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = accounts, partial(AccountCard = [id, name]))]
pub struct Account {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    pub name: String,
    pub balance: i64,
}

fn account(email: &str, name: &str, balance: i64) -> NewAccount {
    NewAccount {
        email: email.into(),
        name: name.into(),
        balance,
    }
}

#[test]
fn a_transaction_body_has_the_whole_api() {
    for db in common::backends("transaction_body_api") {
        db.create_table::<Account>().unwrap();
        let summary = db
            .transaction(|conn| {
                let ada = conn.insert::<Account>(&account("ada@x", "Ada", 10))?;
                let bob = conn.insert::<Account>(&account("bob@x", "Bob", 20))?;
                let mut found = conn.find::<Account>(ada.id)?;
                found.balance += 5;
                let updated = conn.update(&found)?;
                assert_eq!(updated.balance, 15);
                let card: AccountCard = conn.find_as(bob.id)?;
                assert_eq!(card.name, "Bob");
                let cards: Vec<AccountCard> = conn.load_all()?;
                assert_eq!(cards.len(), 2);
                let rich: Vec<Account> =
                    conn.load(accounts::table.filter(accounts::balance.gt(12)))?;
                assert_eq!(rich.len(), 2);
                let first: Account = conn.first(accounts::table.order(accounts::id.desc()))?;
                assert_eq!(first.id, bob.id);
                let names: Vec<String> = conn
                    .load_iter(accounts::table.select(accounts::name), |rows| {
                        rows.collect::<orm::Result<Vec<String>>>()
                    })??;
                assert_eq!(names.len(), 2);
                let touched = conn.execute(
                    diesel::update(accounts::table.filter(accounts::name.eq("Bob")))
                        .set(accounts::balance.eq(0)),
                )?;
                assert_eq!(touched, 1);
                let more = (0..50).map(|i| account(&format!("{i}@bulk"), "Bulk", i));
                let report = conn.bulk_insert::<Account, _>(more, BulkOptions::default())?;
                assert_eq!(report.rows, 50);
                conn.delete::<Account>(bob.id)?;
                // A nested transaction is a savepoint: its rollback keeps the outer work.
                let nested = conn.transaction(|conn| {
                    conn.insert::<Account>(&account("gone@x", "Gone", 0))?;
                    Err::<(), _>(Error::NotFound { table: "accounts" })
                });
                assert!(nested.is_err());
                conn.batch_execute("UPDATE accounts SET balance = balance + 1")?;
                Ok(conn.info())
            })
            .unwrap();
        assert_eq!(summary.intent, Intent::Write);
        assert_eq!(summary.node, Node::Primary);
        assert_eq!(summary.backend, db.backend());
        assert_eq!(summary.tables_written, ["accounts"]);
        assert!(
            summary.unknown_writes,
            "execute and batch_execute name no table"
        );
        let all: Vec<Account> = db.load(accounts::table.order(accounts::id)).unwrap();
        assert_eq!(
            all.len(),
            51,
            "Ada and the bulk rows; Bob deleted, Gone rolled back"
        );
        assert_eq!(all[0].balance, 16);
        assert!(all.iter().all(|a| a.email != "gone@x"));
    }
}

#[test]
fn statements_are_counted_per_call_on_each_connection() {
    for db in common::backends("statements_counted") {
        db.create_table::<Account>().unwrap();
        let ada = db.insert::<Account>(&account("ada@x", "Ada", 1)).unwrap();
        let info = db
            .with_connection(|conn| {
                assert_eq!(conn.statements(), 0, "a new call starts at zero");
                conn.find::<Account>(ada.id)?;
                conn.find::<Account>(ada.id)?;
                let _: Vec<AccountCard> = conn.load_all()?;
                Ok(conn.info())
            })
            .unwrap();
        assert_eq!(info.statements, 3, "{info:?}");
        assert!(info.tables_written.is_empty() && !info.unknown_writes);

        // The same pooled connection counts the next call from zero again.
        let again = db
            .with_connection(|conn| {
                conn.find::<Account>(ada.id)?;
                Ok(conn.statements())
            })
            .unwrap();
        assert_eq!(again, 1);

        // A transaction counts its BEGIN and COMMIT, and a savepoint its own two statements.
        let in_transaction = db
            .transaction(|conn| {
                conn.find::<Account>(ada.id)?;
                conn.transaction(|conn| conn.find::<Account>(ada.id))?;
                Ok(conn.statements())
            })
            .unwrap();
        assert_eq!(
            in_transaction,
            1 + 1 + 3,
            "BEGIN, find, SAVEPOINT + find + RELEASE"
        );

        // Statements sent by Diesel code on the raw connection are counted too.
        let raw = db
            .with_connection(|conn| {
                match conn.raw() {
                    #[cfg(feature = "postgres")]
                    orm::exec::RawConnection::Postgres(c) => {
                        accounts::table.count().get_result::<i64>(c)?;
                    }
                    #[cfg(feature = "sqlite")]
                    orm::exec::RawConnection::Sqlite(c) => {
                        accounts::table.count().get_result::<i64>(c)?;
                    }
                    _ => unreachable!(),
                }
                Ok(conn.info())
            })
            .unwrap();
        assert_eq!(raw.statements, 1);
        assert!(raw.unknown_writes, "the raw connection may write anything");
    }
}

#[test]
fn a_backend_handle_runs_queries_only_that_backend_has() {
    for db in common::backends("backend_handle") {
        db.create_table::<Account>().unwrap();
        db.insert::<Account>(&account("ada@x", "Ada Lovelace", 1))
            .unwrap();
        match db.backend() {
            #[cfg(feature = "postgres")]
            orm::Backend::Postgres => {
                let pg = db.postgres().unwrap();
                // ILIKE exists only on PostgreSQL: `db.load` would not compile with it.
                let names: Vec<String> = pg
                    .load(
                        accounts::table
                            .filter(accounts::name.ilike("%LOVELACE"))
                            .select(accounts::name),
                    )
                    .unwrap();
                assert_eq!(names, ["Ada Lovelace"]);
                let rows: Vec<Account> = pg
                    .load(accounts::table.select(Account::as_select()))
                    .unwrap();
                assert_eq!(rows.len(), 1);
                let distinct: Vec<String> = pg
                    .load(
                        accounts::table
                            .distinct_on(accounts::name)
                            .select(accounts::name),
                    )
                    .unwrap();
                assert_eq!(distinct.len(), 1);
                #[cfg(feature = "sqlite")]
                assert!(matches!(
                    db.sqlite(),
                    Err(Error::WrongBackend {
                        needed: orm::Backend::Sqlite,
                        ..
                    })
                ));
            }
            #[cfg(feature = "sqlite")]
            orm::Backend::Sqlite => {
                let rows: Vec<Account> = db
                    .sqlite()
                    .unwrap()
                    .load(accounts::table.select(Account::as_select()))
                    .unwrap();
                assert_eq!(rows.len(), 1);
                #[cfg(feature = "postgres")]
                {
                    let err = db.postgres().expect_err("a SQLite database");
                    assert!(matches!(
                        err,
                        Error::WrongBackend {
                            needed: orm::Backend::Postgres,
                            actual: orm::Backend::Sqlite,
                            ..
                        }
                    ));
                    assert_eq!(
                        err.to_string(),
                        "a PostgreSQL-only query needs PostgreSQL, but this database is SQLite"
                    );
                }
            }
            _ => unreachable!(),
        }
        // Inside a call, `conn.on::<C>()` is the same check.
        let wrong: orm::Result<()> = db.with_connection(|conn| match conn.backend() {
            #[cfg(all(feature = "postgres", feature = "sqlite"))]
            orm::Backend::Postgres => conn.sqlite().map(|_| ()),
            #[cfg(all(feature = "postgres", feature = "sqlite"))]
            orm::Backend::Sqlite => conn.postgres().map(|_| ()),
            _ => Err(Error::NotFound { table: "skip" }),
        });
        assert!(wrong.is_err());
    }
}

/// Tables as `diesel print-schema` writes them for PostgreSQL: types SQLite does not have.
#[cfg(feature = "postgres")]
mod pg_schema {
    diesel::table! {
        events (id) {
            id -> Int8,
            kind -> Text,
            at -> Timestamptz,
            payload -> Jsonb,
            note -> Nullable<Text>,
        }
    }
}

/// A model bound to a PostgreSQL-only table, declared for that backend.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = pg_schema::events, backend = postgres, partial(EventKind = [id, kind]))]
pub struct Event {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub kind: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub payload: serde_json::Value,
    pub note: Option<String>,
}

#[cfg(feature = "postgres")]
#[test]
fn a_postgres_model_works_on_postgres_and_is_refused_elsewhere() {
    use chrono::{TimeZone, Utc};
    assert_eq!(Event::TABLE.backends, [orm::Backend::Postgres]);
    let new_event = |kind: &str| NewEvent {
        kind: kind.into(),
        at: Utc.timestamp_micros(1_700_000_000_123_456).unwrap(),
        payload: serde_json::json!({"k": kind}),
        note: None,
    };
    for db in common::backends("postgres_model") {
        if db.backend() != orm::Backend::Postgres {
            let err = db.insert::<Event>(&new_event("x")).unwrap_err();
            assert_eq!(
                err.to_string(),
                "model `Event` needs PostgreSQL, but this database is SQLite"
            );
            assert!(matches!(
                db.find::<Event>(1),
                Err(Error::WrongBackend { .. })
            ));
            assert!(matches!(
                db.bulk_insert::<Event, _>([new_event("y")], BulkOptions::default()),
                Err(Error::WrongBackend { .. })
            ));
            continue;
        }
        db.create_table::<Event>().unwrap();
        let stored = db.insert::<Event>(&new_event("signup")).unwrap();
        assert_eq!(db.find::<Event>(stored.id).unwrap(), stored);
        let mut changed = stored.clone();
        changed.note = Some("seen".into());
        assert_eq!(db.update(&changed).unwrap().note.as_deref(), Some("seen"));
        let report = Event::bulk_insert(
            &db,
            (0..100).map(|i| new_event(&format!("bulk{i}"))),
            BulkOptions::default(),
        )
        .unwrap();
        assert!(report.used_copy);
        assert_eq!(report.rows, 100);
        let pg = db.postgres().unwrap();
        let kind: EventKind = pg.find_as(stored.id).unwrap();
        assert_eq!(kind.kind, "signup");
        let tagged: Vec<Event> = pg
            .load(
                pg_schema::events::table.filter(
                    pg_schema::events::payload.contains(serde_json::json!({"k": "signup"})),
                ),
            )
            .unwrap();
        assert_eq!(tagged, [changed]);
        db.delete::<Event>(stored.id).unwrap();
        assert_eq!(pg.load_all::<EventKind>().unwrap().len(), 100);
    }
}
