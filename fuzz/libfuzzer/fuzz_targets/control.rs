//! libFuzzer target `control`: see `log2drop_fuzz::control`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::control(data));
