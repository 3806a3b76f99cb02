//! Benchmark support shared by `cargo xtask bench` and the criterion benches: the
//! synthetic corpora, the statistics the bench quotes and the report it writes.
//! Nothing here runs in `cargo test` as a timed assertion; figures are printed and
//! written to `bench/results.md`.
//!
//! The cases themselves live in the `log2drop-bench` binary (src/main.rs and
//! src/cases/): they need root, namespaces and the competitors' programs, and they
//! stop with an explanation rather than return typed errors.

pub mod corpus;
pub mod report;
pub mod stats;
