//! Cache keys: the model's table and schema fingerprint, then a stable hash of what was read.

use std::borrow::Cow;

use orm_core::{Model, ReadModel};

/// A stable cache key, and the tables whose writes make an entry under it stale.
///
/// Text form `orm:{table}:{fingerprint}:{hash}`: the table the key belongs to, the model's
/// schema fingerprint (it changes when the model's columns or types change, so a new deploy
/// never reads entries of the old shape), and xxh3 of the query's bytes. xxh3 is specified
/// and stable across processes, platforms and Rust releases, unlike `std`'s `DefaultHasher`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    text: String,
    tables: Vec<Cow<'static, str>>,
}

impl CacheKey {
    /// The key for `query_bytes` (for example the SQL text and its bound values) on model `M`:
    /// `orm:{table}:{fingerprint}:{hash}`. An entry under it is stale once `M`'s table is
    /// written.
    pub fn for_query<M: ReadModel>(query_bytes: &[u8]) -> Self {
        Self::in_namespace(M::TABLE.name, M::TABLE.fingerprint, query_bytes)
    }

    /// The key of the row of model `M` with primary key `key`: `User::cache_key(&7)` calls
    /// this, and cached `find`s store under it.
    pub fn for_row<M: Model>(key: &M::PrimaryKey) -> Self {
        Self::for_query::<M>(format!("row:{key:?}").as_bytes())
    }

    /// The key of a result of `shape` (a [`CacheRow::SHAPE`](crate::CacheRow::SHAPE)) read by
    /// `query_bytes` from `tables` (the first names the namespace).
    pub(crate) fn for_tables(
        tables: Vec<Cow<'static, str>>,
        shape: u64,
        query_bytes: &[u8],
    ) -> Self {
        let first = tables.first().map_or("*", |t| t.as_ref());
        let text = Self::text(first, shape, query_bytes);
        Self { text, tables }
    }

    fn in_namespace(table: &'static str, fingerprint: u64, query_bytes: &[u8]) -> Self {
        Self {
            text: Self::text(table, fingerprint, query_bytes),
            tables: vec![Cow::Borrowed(table)],
        }
    }

    fn text(table: &str, fingerprint: u64, query_bytes: &[u8]) -> String {
        format!(
            "orm:{}:{:016x}:{:016x}",
            table,
            fingerprint,
            xxhash_rust::xxh3::xxh3_64(query_bytes)
        )
    }

    /// The entry is also stale once model `M`'s table is written: for a result that reads
    /// several tables (a join), declare each.
    #[must_use]
    pub fn also_reads<M: Model>(self) -> Self {
        self.also_reads_table(M::TABLE.name)
    }

    /// The entry is also stale once `table` is written.
    #[must_use]
    pub(crate) fn also_reads_table(mut self, table: &'static str) -> Self {
        if !self.tables.iter().any(|t| t == table) {
            self.tables.push(Cow::Borrowed(table));
        }
        self
    }

    /// The key as text, as stored in the cache (the cache's namespace, if it has one, is
    /// appended when stored).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tables whose writes make an entry under this key stale.
    pub fn tables(&self) -> &[Cow<'static, str>] {
        &self.tables
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}
