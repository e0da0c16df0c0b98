//! Query plans: `db.explain(query)` and whether a query is answered by an index alone.

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, RunQueryDsl};

use crate::conn::{Conn, RawConnection};
#[cfg(feature = "postgres")]
use crate::error::Error;
use crate::error::Result;
use crate::meta::Backend;

/// The plan the database chose for a query.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The backend that planned it.
    pub backend: Backend,
    /// The plan as the database gave it: `EXPLAIN (FORMAT JSON)` on PostgreSQL, the detail
    /// lines of `EXPLAIN QUERY PLAN` on SQLite.
    pub raw: String,
    /// Every node of the plan, depth first.
    pub nodes: Vec<PlanNode>,
}

/// One node of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlanNode {
    /// PostgreSQL's node type (`Index Only Scan`, `Seq Scan`, `Index Scan`, …). SQLite's
    /// steps are named the same way: `SEARCH … USING COVERING INDEX` is an `Index Only Scan`,
    /// `… USING INDEX` an `Index Scan`, a `SCAN` of a table a `Seq Scan`; other steps keep
    /// SQLite's text.
    pub node_type: String,
    /// The table read, when the node reads one.
    pub relation: Option<String>,
    /// The index used, when the node uses one.
    pub index: Option<String>,
}

/// Node types that read rows from the table itself.
const HEAP_READS: &[&str] = &["Seq Scan", "Index Scan", "Bitmap Heap Scan", "Tid Scan"];

impl Plan {
    /// Whether the query is answered from indexes alone: some node is an `Index Only Scan`,
    /// and no node reads the table's rows. On PostgreSQL an index-only scan also needs the
    /// visibility map to be current (after `VACUUM`), or it visits the table for rows it cannot
    /// tell are visible.
    pub fn is_index_only_scan(&self) -> bool {
        self.nodes.iter().any(|n| n.node_type == "Index Only Scan")
            && !self
                .nodes
                .iter()
                .any(|n| HEAP_READS.contains(&n.node_type.as_str()))
    }

    /// Whether some node uses the index named `name`.
    pub fn uses_index(&self, name: &str) -> bool {
        self.nodes.iter().any(|n| n.index.as_deref() == Some(name))
    }

    #[cfg(feature = "postgres")]
    fn from_postgres_json(raw: String) -> Result<Self> {
        let json: serde_json::Value = serde_json::from_str(&raw)
            .map_err(|e| Error::Query(diesel::result::Error::DeserializationError(Box::new(e))))?;
        let mut nodes = Vec::new();
        if let Some(plans) = json.as_array() {
            for plan in plans {
                collect_postgres_nodes(&plan["Plan"], &mut nodes);
            }
        }
        Ok(Self {
            backend: Backend::Postgres,
            raw,
            nodes,
        })
    }

    #[cfg(feature = "sqlite")]
    fn from_sqlite_details(details: Vec<String>) -> Self {
        let nodes = details.iter().map(|d| sqlite_node(d)).collect();
        Self {
            backend: Backend::Sqlite,
            raw: details.join("\n"),
            nodes,
        }
    }
}

#[cfg(feature = "postgres")]
fn collect_postgres_nodes(plan: &serde_json::Value, nodes: &mut Vec<PlanNode>) {
    let Some(node_type) = plan["Node Type"].as_str() else {
        return;
    };
    let text = |key: &str| plan[key].as_str().map(str::to_owned);
    nodes.push(PlanNode {
        node_type: node_type.to_owned(),
        relation: text("Relation Name"),
        index: text("Index Name"),
    });
    if let Some(children) = plan["Plans"].as_array() {
        for child in children {
            collect_postgres_nodes(child, nodes);
        }
    }
}

/// `SEARCH users USING COVERING INDEX user_email_cover (email=?)` and the like.
#[cfg(feature = "sqlite")]
fn sqlite_node(detail: &str) -> PlanNode {
    let words: Vec<&str> = detail.split_whitespace().collect();
    let relation = match words.first() {
        Some(&"SCAN") | Some(&"SEARCH") => words.get(1).map(|s| s.to_string()),
        _ => None,
    };
    let after = |marker: &[&str]| {
        words
            .windows(marker.len())
            .position(|w| w == marker)
            .and_then(|i| words.get(i + marker.len()))
            .map(|s| s.to_string())
    };
    let (node_type, index) = if let Some(index) = after(&["COVERING", "INDEX"]) {
        ("Index Only Scan", Some(index))
    } else if let Some(index) = after(&["USING", "INDEX"]) {
        ("Index Scan", Some(index))
    } else if detail.contains("PRIMARY KEY") {
        ("Index Scan", None)
    } else if relation.is_some() && words.first() == Some(&"SCAN") {
        ("Seq Scan", None)
    } else {
        (detail, None)
    };
    PlanNode {
        node_type: node_type.to_owned(),
        relation,
        index,
    }
}

/// `EXPLAIN (FORMAT JSON) <query>` on PostgreSQL, `EXPLAIN QUERY PLAN <query>` on SQLite,
/// binds included.
#[derive(Debug, Clone, Copy)]
struct Explain<Q>(Q);

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(feature = "postgres")]
impl<Q: QueryFragment<diesel::pg::Pg>> QueryFragment<diesel::pg::Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN (FORMAT JSON) ");
        self.0.walk_ast(out.reborrow())
    }
}

#[cfg(feature = "sqlite")]
impl<Q: QueryFragment<diesel::sqlite::Sqlite>> QueryFragment<diesel::sqlite::Sqlite>
    for Explain<Q>
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        out.push_sql("EXPLAIN QUERY PLAN ");
        self.0.walk_ast(out.reborrow())
    }
}

/// The rows of `EXPLAIN`: one JSON text on PostgreSQL; `(id, parent, notused, detail)` on
/// SQLite, of which the detail is read.
struct ExplainRows<Q, ST>(Explain<Q>, std::marker::PhantomData<ST>);

impl<Q, ST> QueryId for ExplainRows<Q, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, ST, DB> QueryFragment<DB> for ExplainRows<Q, ST>
where
    DB: diesel::backend::Backend,
    Explain<Q>: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }
}

impl<Q, ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType> Query
    for ExplainRows<Q, ST>
{
    type SqlType = ST;
}

impl<Q, ST, C> RunQueryDsl<C> for ExplainRows<Q, ST> {}

/// Declares a bound that holds on one backend when its feature is on, nothing without it.
macro_rules! explain_bound {
    ($feature:literal, $name:ident: $($bound:tt)+) => {
        #[doc(hidden)]
        #[cfg(feature = $feature)]
        pub trait $name: $($bound)+ {}
        #[cfg(feature = $feature)]
        impl<T: $($bound)+> $name for T {}
        #[doc(hidden)]
        #[cfg(not(feature = $feature))]
        pub trait $name {}
        #[cfg(not(feature = $feature))]
        impl<T> $name for T {}
    };
}

explain_bound!("postgres", PostgresExplain: QueryFragment<diesel::pg::Pg>);
explain_bound!("sqlite", SqliteExplain: QueryFragment<diesel::sqlite::Sqlite>);

/// A Diesel query that every compiled-in backend can explain: any query `db.load` takes, or
/// `diesel::sql_query("SELECT …")`.
pub trait ExplainOnEveryBackend: PostgresExplain + SqliteExplain {}
impl<T: PostgresExplain + SqliteExplain> ExplainOnEveryBackend for T {}

/// The plan of `query` on `conn`: see [`Executor::explain`](crate::Executor::explain).
pub(crate) fn explain_on<Q: ExplainOnEveryBackend>(conn: &mut Conn<'_>, query: Q) -> Result<Plan> {
    match conn.raw_for_runtime() {
        #[cfg(feature = "postgres")]
        RawConnection::Postgres(pg) => {
            let rows: Vec<String> =
                ExplainRows::<_, diesel::sql_types::Text>(Explain(query), Default::default())
                    .load(pg)?;
            Plan::from_postgres_json(rows.concat())
        }
        #[cfg(feature = "sqlite")]
        RawConnection::Sqlite(lite) => {
            use diesel::sql_types::{Integer, Text};
            let rows: Vec<(i32, i32, i32, String)> =
                ExplainRows::<_, (Integer, Integer, Integer, Text)>(
                    Explain(query),
                    Default::default(),
                )
                .load(lite)?;
            Ok(Plan::from_sqlite_details(
                rows.into_iter().map(|r| r.3).collect(),
            ))
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn reads_sqlite_steps() {
        let node = sqlite_node("SEARCH users USING COVERING INDEX user_email_cover (email=?)");
        assert_eq!(node.node_type, "Index Only Scan");
        assert_eq!(node.index.as_deref(), Some("user_email_cover"));
        assert_eq!(node.relation.as_deref(), Some("users"));
        assert_eq!(sqlite_node("SCAN users").node_type, "Seq Scan");
        assert_eq!(
            sqlite_node("SEARCH users USING INDEX users_email (email=?)").node_type,
            "Index Scan"
        );
    }
}
