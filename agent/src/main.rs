//! The `log2drop` command. Skeleton: to be written.
fn main() {}
