//! Compile-time behaviour of `#[plugin]` and `#[actions]`: valid uses compile without a
//! warning, invalid uses fail with an error pointing at the key, value or method at fault.
//!
//! After changing a message, regenerate the expected output with
//! `TRYBUILD=overwrite cargo test --test ui` and review the `.stderr` files.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
