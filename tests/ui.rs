//! Compile errors users see for each mistake: one trybuild case per mistake under `tests/ui/`,
//! with its reviewed `.stderr`. The `.stderr` files are written by the toolchain pinned in
//! `rust-toolchain.toml`.

#[test]
fn model_mistakes() {
    trybuild::TestCases::new().compile_fail("tests/ui/model/*.rs");
}

#[test]
fn partial_mistakes() {
    trybuild::TestCases::new().compile_fail("tests/ui/partial/*.rs");
}
