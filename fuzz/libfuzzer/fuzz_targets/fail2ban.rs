//! libFuzzer target `fail2ban`: see `log2drop_fuzz::fail2ban`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| log2drop_fuzz::fail2ban(data));
