//! [`BackendExecutor`]: the executor of queries only one backend runs (`ilike`, `DISTINCT ON`,
//! jsonb operators), for the backend handles ([`OnBackend`](crate::OnBackend),
//! [`BackendConn`]).

use diesel::dsl::{Filter, Limit, Select};
use diesel::query_dsl::methods::{ExecuteDsl, FilterDsl, LimitDsl, LoadQuery, SelectDsl};
use diesel::RunQueryDsl;

use super::Access;
use crate::conn::{BackendConn, BackendConnection, FindAsQuery, LoadAllQuery};
use crate::error::{Error, Result};
use crate::model::{Model, ReadModel};
use crate::projection::Projection;

/// Runs work on a connection of backend `C` ([`BackendConn`]), with the same bookkeeping as
/// [`Executor`](super::Executor): implemented by [`OnBackend`](crate::OnBackend)
/// (`db.postgres()?`) and by `&mut BackendConn` (`conn.postgres()?`). The queries below are
/// written once over [`BackendExecutor::run_on_backend`]; they only have to compile for `C`.
pub trait BackendExecutor<C: BackendConnection>: Sized {
    /// Run `work` on a connection of backend `C`, declared by `access` (see
    /// [`Executor::run`](super::Executor::run)).
    #[track_caller]
    fn run_on_backend<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R>;

    /// Run `work` on a connection of this backend (a write, on the primary).
    #[track_caller]
    fn with_connection<R>(
        self,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        self.run_on_backend(Access::WRITE, work)
    }

    /// Every row a Diesel query returns; the query only has to compile for this backend:
    /// `db.postgres()?.load(users::table.filter(users::name.ilike("a%")))`.
    #[track_caller]
    fn load<'q, Q, U>(self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadQuery<'q, C, U>,
    {
        self.run_on_backend(Access::READ, |b| Ok(query.load(&mut *b.conn)?))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    #[track_caller]
    fn first<'q, Q, U>(self, query: Q) -> Result<U>
    where
        Q: LimitDsl,
        Limit<Q>: LoadQuery<'q, C, U>,
    {
        self.run_on_backend(Access::READ, |b| {
            let rows: Vec<U> = query.limit(1).load(&mut *b.conn)?;
            rows.into_iter()
                .next()
                .ok_or(Error::NotFound { table: "(query)" })
        })
    }

    /// Run a Diesel statement (insert, update, delete) and return the rows it touched: a write
    /// of tables `orm` cannot name.
    #[track_caller]
    fn execute<Q>(self, query: Q) -> Result<usize>
    where
        Q: ExecuteDsl<C> + RunQueryDsl<C>,
    {
        self.run_on_backend(Access::WRITE, |b| {
            b.call.wrote_unknown();
            Ok(ExecuteDsl::execute(query, &mut *b.conn)?)
        })
    }

    /// Stream the rows of a Diesel query through `consume` (single-row mode on PostgreSQL,
    /// SQLite's cursor), through Diesel's `RunQueryDsl::load_iter`.
    #[track_caller]
    fn load_iter<'q, Q, U, R>(
        self,
        query: Q,
        consume: impl FnOnce(&mut dyn Iterator<Item = Result<U>>) -> R,
    ) -> Result<R>
    where
        Q: LoadQuery<'q, C, U, C::StreamMode> + RunQueryDsl<C> + 'q,
        U: 'q,
    {
        self.run_on_backend(Access::READ, |b| {
            let rows = query.load_iter::<U, C::StreamMode>(&mut *b.conn)?;
            Ok(consume(&mut rows.map(|r| r.map_err(Error::from))))
        })
    }

    /// The columns of projection `P` for the row with primary key `key`, or
    /// [`Error::NotFound`]. Only `P`'s columns are read.
    #[track_caller]
    fn find_as<P>(self, key: <P::Model as Model>::PrimaryKey) -> Result<P>
    where
        P: Projection,
        P::Model: Model,
        <P::Model as ReadModel>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>:
            SelectDsl<P::Columns>,
        Select<Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
            LimitDsl,
        FindAsQuery<P>: LoadQuery<'static, C, P>,
    {
        self.run_on_backend(Access::READ, |b| {
            let table = <P::Model as ReadModel>::Table::default();
            let query = table
                .filter(<P::Model as Model>::key_filter(key))
                .select(P::columns())
                .limit(1);
            let rows: Vec<P> = query.load(&mut *b.conn)?;
            rows.into_iter().next().ok_or(Error::NotFound {
                table: <P::Model as ReadModel>::TABLE.name,
            })
        })
    }

    /// Every row of the model's table, reading only projection `P`'s columns.
    #[track_caller]
    fn load_all<P>(self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as ReadModel>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadQuery<'static, C, P>,
    {
        self.load(<P::Model as ReadModel>::Table::default().select(P::columns()))
    }
}

/// A connection of backend `C` already checked out: the work runs on it and what it declares
/// is recorded in the call it serves.
impl<C: BackendConnection> BackendExecutor<C> for &mut BackendConn<'_, C> {
    fn run_on_backend<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        let access = access.into();
        let before = self.counter.get();
        self.call.begin(access.intent());
        let result = work(&mut *self);
        if self.counter.get() > before {
            self.call.record(access.tables());
        }
        result
    }
}
