//! Skeleton: locates the eBPF object (to be written).
fn main() {}
