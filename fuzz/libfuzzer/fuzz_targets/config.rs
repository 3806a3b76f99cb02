//! libFuzzer target `config`: see `log2drop_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::config(data));
