//! libFuzzer target `compressed`: see `log2drop_fuzz::compressed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::compressed(data));
