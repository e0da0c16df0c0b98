//! [`SchemaDifference`]: one way a live table differs from its model, as data and as text.
//! A leaf: the error type names it, and the comparison in `verify` produces it.

use std::fmt;

/// One way a live table differs from its model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaDifference {
    /// The table does not exist (in the search path, on PostgreSQL).
    MissingTable {
        /// The model's table name.
        table: &'static str,
    },
    /// The model has a column the table lacks.
    MissingColumn {
        /// The table.
        table: &'static str,
        /// The model's column.
        column: &'static str,
    },
    /// The table has a column the model lacks. Harmless for reads; an insert fails on it when
    /// it is NOT NULL without a default.
    ExtraColumn {
        /// The table.
        table: &'static str,
        /// The table's column.
        column: String,
        /// Whether an insert through the model fails because of it: NOT NULL, no default.
        blocks_inserts: bool,
    },
    /// The column's type differs from the model's.
    TypeMismatch {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The model's type, as `create_table` would write it.
        model: String,
        /// The table's type, as the catalog reports it.
        live: String,
    },
    /// The column accepts NULL in one and not in the other.
    NullabilityMismatch {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// Whether the model's field is an `Option` (the table then says NOT NULL).
        model_nullable: bool,
    },
    /// The primary keys differ (column lists in key order; empty when there is none).
    PrimaryKeyMismatch {
        /// The table.
        table: &'static str,
        /// The model's key columns.
        model: Vec<String>,
        /// The table's key columns.
        live: Vec<String>,
    },
    /// The model declares a UNIQUE constraint the table lacks.
    MissingUnique {
        /// The table.
        table: &'static str,
        /// The constraint's columns.
        columns: Vec<String>,
    },
    /// The table has a UNIQUE constraint (or unique index, not partial, not on expressions)
    /// the model does not declare.
    ExtraUnique {
        /// The table.
        table: &'static str,
        /// The constraint's or index's name.
        name: String,
        /// Its columns.
        columns: Vec<String>,
    },
}

impl fmt::Display for SchemaDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaDifference::MissingTable { table } => write!(f, "table `{table}` does not exist"),
            SchemaDifference::MissingColumn { table, column } => {
                write!(f, "`{table}` has no column `{column}`, which the model has")
            }
            SchemaDifference::ExtraColumn {
                table,
                column,
                blocks_inserts,
            } => {
                write!(f, "`{table}.{column}` is not in the model")?;
                if *blocks_inserts {
                    f.write_str(" and is NOT NULL without a default, so inserts fail")?;
                }
                Ok(())
            }
            SchemaDifference::TypeMismatch {
                table,
                column,
                model,
                live,
            } => write!(f, "`{table}.{column}` is {live}, the model says {model}"),
            SchemaDifference::NullabilityMismatch {
                table,
                column,
                model_nullable,
            } => {
                if *model_nullable {
                    write!(
                        f,
                        "`{table}.{column}` is NOT NULL, the model's field is an `Option`"
                    )
                } else {
                    write!(
                        f,
                        "`{table}.{column}` accepts NULL, the model's field is not an `Option`"
                    )
                }
            }
            SchemaDifference::PrimaryKeyMismatch { table, model, live } => write!(
                f,
                "`{table}` has primary key ({}), the model says ({})",
                live.join(", "),
                model.join(", ")
            ),
            SchemaDifference::MissingUnique { table, columns } => write!(
                f,
                "`{table}` has no UNIQUE constraint on ({}), which the model declares",
                columns.join(", ")
            ),
            SchemaDifference::ExtraUnique {
                table,
                name,
                columns,
            } => write!(
                f,
                "`{table}` has UNIQUE `{name}` on ({}), which the model does not declare",
                columns.join(", ")
            ),
        }
    }
}
