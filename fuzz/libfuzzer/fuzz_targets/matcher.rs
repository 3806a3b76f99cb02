//! libFuzzer target `matcher`: see `log2drop_fuzz::matcher`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::matcher(data));
