//! Cached reads through a [`Database`]: `db.cached(&cache).find::<User>(7)`. The cached handle
//! is a layer over the executor: its reads look in the cache and, on a miss, load through the
//! [`Executor`] API of the primary; every other operation is the database's own.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::time::Duration;

use diesel::dsl::{Filter, Select};
use diesel::query_builder::{AsQuery, QueryFragment};
use diesel::query_dsl::methods::{FilterDsl, LimitDsl, LoadQuery, SelectDsl};
use orm_core::{
    Access, BackendConnection, BackendExecutor, Conn, Database, Error, Executor, FindAsQuery,
    LoadAllQuery, LoadOnEveryBackend, Model, Projection, ReadModel, Result, SqlOnEveryBackend,
    TableMeta,
};

use crate::cache::Cache;
use crate::codec::{CacheRow, Many, One, Payload};
use crate::key::CacheKey;
use crate::tables::tables_read;

/// `.cached(&cache)` on a [`Database`]: `use orm::cache::CachedReads;`.
pub trait CachedReads {
    /// This database's reads through `cache`. Attaches `cache` to the database (once), so its
    /// writes invalidate what the cache holds.
    fn cached<'a>(&'a self, cache: &'a Cache) -> CachedDatabase<'a>;
}

impl CachedReads for Database {
    fn cached<'a>(&'a self, cache: &'a Cache) -> CachedDatabase<'a> {
        cache.attach(self);
        CachedDatabase {
            db: self,
            primary: self.primary(),
            cache,
            ttl: None,
            declared: Vec::new(),
        }
    }
}

/// Reads of a [`Database`] served from a [`Cache`]: from [`CachedReads::cached`].
///
/// A miss loads on the PRIMARY, never on a replica: a replica may lag behind a write whose
/// generation bump this process has already seen, and an entry loaded there would store old
/// rows under new generations. Hits touch no database connection at all.
///
/// Every other operation of [`Executor`] (`insert`, `transaction`, `load_iter`, …) runs on the
/// database uncached, and its writes invalidate the cache as any write does.
#[derive(Debug, Clone)]
#[must_use = "a cached handle reads nothing until a read method is called"]
pub struct CachedDatabase<'a> {
    db: &'a Database,
    /// Where misses load: the database pinned to its primary.
    primary: Database,
    cache: &'a Cache,
    ttl: Option<Duration>,
    declared: Vec<&'static str>,
}

impl<'a> CachedDatabase<'a> {
    /// Keep entries stored by these reads for `ttl` (instead of the model's
    /// `#[orm(cache(ttl = …))]` or the cache's default).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Declare that the reads also depend on model `M`'s table: for a query whose SQL names
    /// tables Diesel does not quote (`sql_query`, `sql()` fragments), or that reads a table
    /// through a view or a function. Declared tables are added to those found in the SQL.
    pub fn reads<M: ReadModel>(mut self) -> Self {
        if !self.declared.contains(&M::TABLE.name) {
            self.declared.push(M::TABLE.name);
        }
        self
    }

    /// The row with primary key `key` ([`Executor::find`]), cached under
    /// `M::cache_key(&key)`. A missing row is [`Error::NotFound`] and is not cached.
    pub fn find<M: Model + CacheRow>(&self, key: M::PrimaryKey) -> Result<M> {
        let cache_key = self.with_declared(CacheKey::for_row::<M>(&key));
        self.cache
            .fetch_or_load(&cache_key, self.ttl_for(M::TABLE), || {
                self.primary.find::<M>(key).map(One)
            })
            .map(|one| one.0)
    }

    /// The columns of projection `P` for the row with primary key `key`
    /// ([`Executor::find_as`]).
    pub fn find_as<P>(&self, key: <P::Model as Model>::PrimaryKey) -> Result<P>
    where
        P: Projection + CacheRow,
        P::Model: Model,
        <P::Model as ReadModel>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>:
            SelectDsl<P::Columns>,
        Select<Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
            LimitDsl,
        FindAsQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        let text = format!("find_as:{}:{key:?}", P::COLUMNS.join(","));
        let cache_key = self.with_declared(CacheKey::for_query::<P::Model>(text.as_bytes()));
        let cache_key =
            CacheKey::for_tables(cache_key.tables().to_vec(), P::SHAPE, text.as_bytes());
        self.cache
            .fetch_or_load(
                &cache_key,
                self.ttl_for(<P::Model as ReadModel>::TABLE),
                || self.primary.find_as::<P>(key).map(One),
            )
            .map(|one| one.0)
    }

    /// Every row of the model's table, reading only projection `P`'s columns
    /// ([`Executor::load_all`]).
    pub fn load_all<P>(&self) -> Result<Vec<P>>
    where
        P: Projection + CacheRow,
        <P::Model as ReadModel>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        let text = format!("load_all:{}", P::COLUMNS.join(","));
        let cache_key = self.projection_key::<P, Many<P>>(&text);
        self.cache
            .fetch_or_load(
                &cache_key,
                self.ttl_for(<P::Model as ReadModel>::TABLE),
                || self.primary.load_all::<P>().map(Many),
            )
            .map(|many| many.0)
    }

    /// Every row a Diesel query returns ([`Executor::load`]), keyed by its SQL and bound
    /// values. The tables it reads are those Diesel names in its SQL plus those declared with
    /// [`CachedDatabase::reads`]; a query that names tables in SQL text is refused with
    /// [`Error::Uncacheable`] unless its tables are declared.
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: AsQuery,
        Q::Query: LoadOnEveryBackend<'q, U> + SqlOnEveryBackend + Clone,
        U: CacheRow,
    {
        let query = query.as_query();
        let text = orm_core::query_text(&query, self.db.backend())?;
        let cache_key = self.query_key::<Many<U>>(&text)?;
        self.cache
            .fetch_or_load(&cache_key, self.ttl, || self.primary.load(query).map(Many))
            .map(|many| many.0)
    }

    /// Reads of queries only backend `C` can run (`ilike`, `DISTINCT ON`):
    /// [`Error::WrongBackend`] if the database is another backend.
    pub fn on<C: BackendConnection>(&self) -> Result<CachedOnBackend<'_, 'a, C>> {
        self.db.on::<C>()?;
        Ok(CachedOnBackend {
            cached: self,
            backend: PhantomData,
        })
    }

    /// Reads of PostgreSQL-only queries: `db.cached(&cache).postgres()?.load(…ilike…)`.
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Result<CachedOnBackend<'_, 'a, diesel::pg::PgConnection>> {
        self.on()
    }

    /// The key of a query with SQL `text`, depending on the tables it reads.
    fn query_key<P: Payload>(&self, text: &str) -> Result<CacheKey> {
        let mut tables: Vec<Cow<'static, str>> =
            self.declared.iter().map(|t| Cow::Borrowed(*t)).collect();
        match tables_read(text) {
            Ok(found) => {
                for t in found {
                    if !tables.iter().any(|d| *d == t) {
                        tables.push(Cow::Owned(t));
                    }
                }
            }
            Err(reason) if tables.is_empty() => return Err(Error::Uncacheable { reason }),
            // Declared tables stand in for what the SQL text does not show.
            Err(_) => {}
        }
        Ok(CacheKey::for_tables(tables, P::SHAPE, text.as_bytes()))
    }

    /// The key of a read of projection `P` described by `text`: in `P`'s model's namespace,
    /// keyed by the shape of what is stored.
    fn projection_key<P: Projection, S: Payload>(&self, text: &str) -> CacheKey {
        let tables = self.with_declared(CacheKey::for_query::<P::Model>(text.as_bytes()));
        CacheKey::for_tables(tables.tables().to_vec(), S::SHAPE, text.as_bytes())
    }

    fn with_declared(&self, mut key: CacheKey) -> CacheKey {
        for t in &self.declared {
            key = key.also_reads_table(t);
        }
        key
    }

    /// The TTL for a read of `table`'s model: the read's, else the model's, else the cache's.
    fn ttl_for(&self, table: &TableMeta) -> Option<Duration> {
        self.ttl.or(table.cache_ttl)
    }
}

/// The uncached operations: those of the database itself.
impl Executor for &CachedDatabase<'_> {
    #[track_caller]
    fn run<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        self.db.run(access, work)
    }

    #[track_caller]
    fn run_read<R>(self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.db.run_read(work)
    }
}

/// Cached reads of queries only backend `C` runs: from [`CachedDatabase::on`] or
/// [`CachedDatabase::postgres`].
#[derive(Debug)]
pub struct CachedOnBackend<'c, 'a, C> {
    cached: &'c CachedDatabase<'a>,
    backend: PhantomData<fn() -> C>,
}

impl<C: BackendConnection> CachedOnBackend<'_, '_, C>
where
    C::Backend: diesel::backend::Backend + Default,
    <C::Backend as diesel::backend::Backend>::QueryBuilder: Default,
{
    /// Every row a Diesel query returns; the query only has to compile for this backend.
    /// Keys and tables as [`CachedDatabase::load`].
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: AsQuery,
        Q::Query: LoadQuery<'q, C, U> + QueryFragment<C::Backend>,
        U: CacheRow,
    {
        let query = query.as_query();
        let mut text = String::new();
        std::fmt::Write::write_fmt(
            &mut text,
            format_args!("{}", diesel::debug_query::<C::Backend, _>(&query)),
        )
        .map_err(|_| Error::Uncacheable {
            reason: "Diesel could not write the query's SQL".to_owned(),
        })?;
        let cached = self.cached;
        let cache_key = cached.query_key::<Many<U>>(&text)?;
        cached
            .cache
            .fetch_or_load(&cache_key, cached.ttl, || {
                cached.primary.on::<C>()?.load(query).map(Many)
            })
            .map(|many| many.0)
    }
}
