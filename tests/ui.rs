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

#[test]
fn bind_mistakes() {
    trybuild::TestCases::new().compile_fail("tests/ui/bind/*.rs");
}

#[test]
fn cache_mistakes() {
    trybuild::TestCases::new().compile_fail("tests/ui/cache/*.rs");
}

#[test]
fn index_and_view_mistakes() {
    trybuild::TestCases::new().compile_fail("tests/ui/index/*.rs");
}

#[test]
fn type_mistakes() {
    trybuild::TestCases::new().compile_fail("tests/ui/types/*.rs");
}

/// What the mistakes above are measured against: the same code written correctly compiles.
#[test]
fn correct_uses_compile() {
    trybuild::TestCases::new().pass("tests/ui/pass/*.rs");
}
