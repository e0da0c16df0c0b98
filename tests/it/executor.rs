//! The executor trait as an extension point, on SQLite (in memory) and PostgreSQL: a handle of
//! one's own gets the whole API by implementing `run`, and an operation of one's own written
//! over `run` has its writes recorded (and cached reads invalidated) by the executor.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::prelude::*;
use orm::cache::Cache;
use orm::exec::{Access, Conn, Intent};
use orm::prelude::*;
use orm::{Database, Model, Result};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = wallets, partial(WalletCard = [id, owner]))]
pub struct Wallet {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub owner: String,
    pub balance: i64,
}

fn wallet(owner: &str, balance: i64) -> NewWallet {
    NewWallet {
        owner: owner.to_owned(),
        balance,
    }
}

/// A handle of its own: a database that counts the calls made through it.
struct Counting {
    db: Database,
    calls: AtomicUsize,
}

impl Counting {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Executor for &Counting {
    fn run<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.db.run(access, work)
    }

    fn run_read<R>(self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.db.run_read(work)
    }
}

#[test]
fn a_handle_of_ones_own_gets_the_whole_api() {
    for db in common::backends("executor_own_handle") {
        let counted = Counting {
            db: db.clone(),
            calls: AtomicUsize::new(0),
        };
        counted.create_table::<Wallet>().unwrap();
        let ada = counted.insert::<Wallet>(&wallet("Ada", 10)).unwrap();
        assert_eq!(counted.find::<Wallet>(ada.id).unwrap(), ada);
        let grace = counted
            .transaction(|conn| {
                let grace = conn.insert::<Wallet>(&wallet("Grace", 5))?;
                let mut ada = conn.find::<Wallet>(ada.id)?;
                ada.balance -= 5;
                conn.update(&ada)?;
                Ok(grace)
            })
            .unwrap();
        let rows: Vec<Wallet> = counted.load(wallets::table.order(wallets::id)).unwrap();
        assert_eq!(
            rows.iter()
                .map(|w| (w.owner.as_str(), w.balance))
                .collect::<Vec<_>>(),
            [("Ada", 5), ("Grace", 5)]
        );
        let cards: Vec<WalletCard> = counted.load_all().unwrap();
        assert_eq!(cards.len(), 2);
        counted.delete::<Wallet>(grace.id).unwrap();
        assert_eq!(
            counted.calls(),
            7,
            "one call each: create_table, insert, find, transaction, load, load_all, delete"
        );
        // What it wrote went to the database under it.
        assert_eq!(db.load_all::<WalletCard>().unwrap().len(), 1);
    }
}

/// An operation of one's own, written over the executor: it runs a Diesel statement with a
/// write intent and records nothing itself.
trait Payday: Executor {
    /// Add `amount` to every wallet; the number of wallets paid.
    fn pay_everyone(self, amount: i64) -> Result<usize> {
        self.run(Intent::Write, |conn| {
            conn.execute(
                diesel::update(wallets::table).set(wallets::balance.eq(wallets::balance + amount)),
            )
        })
    }

    /// A write call whose work records no table (it only reads): the executor reports it as a
    /// write of unknown tables all the same.
    fn write_that_names_nothing(self, id: i64) -> Result<Wallet> {
        self.run(Intent::Write, |conn| conn.find::<Wallet>(id))
    }
}

impl<E: Executor> Payday for E {}

#[test]
fn an_operation_of_ones_own_invalidates_cached_reads() {
    for db in common::backends("executor_own_operation") {
        let cache = Cache::in_process();
        db.create_table::<Wallet>().unwrap();
        let ada = db.insert::<Wallet>(&wallet("Ada", 1)).unwrap();
        let read = || db.cached(&cache).find::<Wallet>(ada.id).unwrap().balance;
        assert_eq!(read(), 1);
        let hits = cache.stats().hits;
        assert_eq!(read(), 1);
        assert_eq!(cache.stats().hits, hits + 1, "the second read is a hit");

        assert_eq!(db.pay_everyone(10).unwrap(), 1);
        let stale = cache.stats().stale;
        assert_eq!(read(), 11, "the operation's write is seen");
        assert_eq!(cache.stats().stale, stale + 1, "the entry went stale");

        // Through a transaction's connection, and through the handle of one's own, the same.
        db.transaction(|conn| conn.pay_everyone(1).map(drop))
            .unwrap();
        assert_eq!(read(), 12);
        let counted = Counting {
            db: db.clone(),
            calls: AtomicUsize::new(0),
        };
        counted.pay_everyone(1).unwrap();
        assert_eq!(read(), 13);
        assert_eq!(counted.calls(), 1);

        // A write call that recorded nothing still invalidates: the entry goes stale.
        read();
        let stale = cache.stats().stale;
        db.write_that_names_nothing(ada.id).unwrap();
        assert_eq!(read(), 13);
        assert_eq!(cache.stats().stale, stale + 1, "a write of unknown tables");

        // A read records nothing and invalidates nothing.
        read();
        let hits = cache.stats().hits;
        db.find::<Wallet>(ada.id).unwrap();
        assert_eq!(read(), 13);
        assert_eq!(cache.stats().hits, hits + 1);
    }
}

/// Model operations declare the table they write: the executor records it, only once a
/// statement was sent.
#[test]
fn the_executor_records_declared_tables() {
    for db in common::backends("executor_records") {
        db.create_table::<Wallet>().unwrap();
        let ada = db.insert::<Wallet>(&wallet("Ada", 1)).unwrap();
        let info = db
            .with_connection(|conn| {
                conn.patch::<Wallet>(
                    ada.id,
                    &WalletPatch {
                        balance: Some(2),
                        ..WalletPatch::default()
                    },
                )?;
                Ok(conn.info())
            })
            .unwrap();
        assert_eq!(info.tables_written, ["wallets"]);
        assert!(!info.unknown_writes);
        let info = db
            .with_connection(|conn| {
                conn.run(Access::writes(&["ledger"]), |_| Ok(()))?;
                Ok(conn.info())
            })
            .unwrap();
        assert!(
            info.tables_written.is_empty(),
            "work that sent no statement wrote nothing"
        );
    }
}
