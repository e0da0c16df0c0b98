//! The database schema beside the models: checking that live tables match them.

pub mod verify;

pub use verify::SchemaDifference;
