//! Tests that time calls against bounds while a server is made to fail: the client-side
//! deadlines (`faults`) and the cost of a hung Redis (`cache_faults`). `scripts/test` runs them
//! after the rest, one at a time, so no other test shares the cores with them:
//! `cargo test -p orm --test it timed:: -- --test-threads=1`.

mod cache_faults;
mod faults;
