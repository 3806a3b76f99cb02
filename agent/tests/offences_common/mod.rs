//! What the tests that compare offence counts with fail2ban share: running a
//! matcher over a whole log the way `log2drop test` does.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use log2drop::filter::SourceMatcher;

/// Offences per address of `log` through `m`: each line's own, the sessions
/// that ended without a line, and those still open at the end of the text.
pub fn per_address(m: &SourceMatcher, log: &str, now: SystemTime) -> BTreeMap<IpAddr, u64> {
    let mut s = m.new_scratch();
    let mut out = BTreeMap::new();
    for line in log.lines() {
        if let Some(hit) = m.match_line(line.as_bytes(), now, &mut s) {
            *out.entry(hit.addr().expect("these logs name addresses only"))
                .or_default() += 1;
        }
        while let Some(hit) = m.take_deferred(&mut s) {
            *out.entry(hit.addr().expect("these logs name addresses only"))
                .or_default() += 1;
        }
    }
    m.finish(&mut s);
    while let Some(hit) = m.take_deferred(&mut s) {
        *out.entry(hit.addr().expect("these logs name addresses only"))
            .or_default() += 1;
    }
    out
}
