//! libFuzzer target `pattern`: see `log2drop_fuzz::pattern`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::pattern(data));
