//! Benchmark support shared by `cargo xtask bench` and the criterion benches: the
//! synthetic corpora and the cases that measure log2drop side by side with the
//! tools admins would otherwise use. Nothing here runs in `cargo test` as a timed
//! assertion; figures are printed and written to `bench/results.md`.

pub mod corpus;
