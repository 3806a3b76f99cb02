//! libFuzzer target `syslog`: see `log2drop_fuzz::syslog`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::syslog(data));
