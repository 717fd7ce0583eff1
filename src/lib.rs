//! The xcore suite: examples, benches and cross-crate tests of the xcore workspace.
//!
//! This package is not published; its library is empty.
