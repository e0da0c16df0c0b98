//! The integration tests of `orm`, one module per area, in one test binary.
//!
//! Every module runs against real servers where it needs them (`common` says which, and how a
//! missing one is reported). Tests run in parallel: each works in its own tables, and the tests
//! that stop, pause or restart the disposable fault servers take that server's lock in
//! `common` first, so no two of them disturb the same server at once.
//!
//! Run one area alone with a filter on its module: `cargo test -p orm --test it pool::`. The
//! tests under `timed` time calls against bounds: `scripts/test` runs them last, one at a time.

mod common;

mod adoption;
mod bad_input;
mod bulk;
mod cache;
mod cache_key;
mod context;
mod crud;
mod defaults;
mod executor;
mod index;
mod layers;
mod partial;
mod pool;
mod primary_restart;
mod redaction;
mod replica;
mod replica_monitor;
mod routing;
mod timed;
mod types;
mod values;
mod verify_schema;
mod view;
mod view_cache;
