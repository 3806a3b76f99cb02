//! Host names where `<HOST>` stands: the rare path beside the address path.
//!
//! Some daemons write a name where the client's address belongs (sshd's PAM
//! `rhost=` with `UseDNS yes`, web servers with host name lookups on). A regex
//! finds a name only where it finds no address: each pattern first runs its
//! address path (see `extract`) and, only when that fails, a [`NamePath`]:
//!
//! 1. a cheap gate: the literal that ends the text before `<HOST>` (`" from "`,
//!    `"rhost="`) must occur followed by a host name, so lines that merely
//!    resemble the pattern cost a `memchr` scan and no regex;
//! 2. the pattern's regex with `<HOST>` matching names only, as a capturing
//!    search, and [`crate::addr::is_host_name`] on the captured text.
//!
//! A found name is copied into a small ring owned by the caller's scratch
//! ([`NameRing`]) and the hit carries a [`NameRef`] to it, so a [`super::Hit`]
//! stays `Copy` and can wait in a session like an address hit. Nothing here
//! resolves names: that is `crate::dns`, off the matching thread.

use std::sync::OnceLock;

use memchr::memmem;
use regex_automata::meta::Regex;

use crate::addr;

/// A host name a hit found, held in the scratch's [`NameRing`]. It stays
/// readable until [`NAME_SLOTS`] later names have been found; a stale reference
/// reads as `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameRef {
    slot: u32,
    generation: u32,
}

/// Names a scratch keeps at once: more than the sessions that could hold one
/// pending for long (a name line waits in its session at most a window).
pub const NAME_SLOTS: usize = 1024;

/// The names of one scratch, oldest overwritten first. A slot's buffer is kept
/// and reused, so after warm-up a name costs a copy, not an allocation.
#[derive(Debug, Default)]
pub struct NameRing {
    slots: Vec<(u32, String)>,
    next: usize,
    generation: u32,
}

impl NameRing {
    /// Stores `name` (already checked to be a host name, so ASCII).
    pub fn push(&mut self, name: &[u8]) -> NameRef {
        self.generation = self.generation.wrapping_add(1);
        let k = self.next;
        self.next = (self.next + 1) % NAME_SLOTS;
        if self.slots.len() <= k {
            self.slots.push((0, String::new()));
        }
        let (generation, text) = &mut self.slots[k];
        *generation = self.generation;
        text.clear();
        text.extend(name.iter().map(|b| char::from(b.to_ascii_lowercase())));
        NameRef {
            slot: k as u32,
            generation: self.generation,
        }
    }

    /// The name `r` refers to, unless it has been overwritten since.
    pub fn get(&self, r: NameRef) -> Option<&str> {
        let (generation, text) = self.slots.get(r.slot as usize)?;
        (*generation == r.generation).then_some(text.as_str())
    }
}

/// One pattern's name path: its gate and its name regex.
#[derive(Debug)]
pub struct NamePath {
    /// The pattern with `<HOST>` matching names only.
    text: Box<str>,
    /// Its regex and `<HOST>` group, compiled for the first line that gets
    /// past the gate (most sources never have one: building every pattern's
    /// name regex up front was a tenth of a matcher's build); `None` inside
    /// when it does not compile.
    compiled: OnceLock<Option<(Regex, usize)>>,
    gate: Gate,
}

/// What must hold before the name regex runs.
#[derive(Debug)]
enum Gate {
    /// The literal that ends the text before `<HOST>`, followed by a name.
    After(Box<memmem::Finder<'static>>),
    /// `<HOST>` starts the text: a name must start it.
    AtStart,
    /// Nothing is known: the regex decides.
    Open,
}

impl NamePath {
    /// The name path of pattern `text` (with `<HOST>` matching names only)
    /// whose text before `<HOST>` ends with `before_suffix` (or matches only
    /// the empty string at the start of the text, `starts_at_zero`).
    pub fn new(text: String, before_suffix: Option<&[u8]>, starts_at_zero: bool) -> NamePath {
        let gate = match before_suffix {
            Some(lit) if !lit.is_empty() => {
                Gate::After(Box::new(memmem::Finder::new(lit).into_owned()))
            }
            _ if starts_at_zero => Gate::AtStart,
            _ => Gate::Open,
        };
        NamePath {
            text: text.into(),
            compiled: OnceLock::new(),
            gate,
        }
    }

    /// The name regex and its `<HOST>` group (compiled at the first call);
    /// `None` if it does not compile or has no such group.
    pub fn regex(&self) -> Option<(&Regex, usize)> {
        self.compiled
            .get_or_init(|| {
                let regex = super::builder().build(&self.text).ok()?;
                let group = regex
                    .group_info()
                    .to_index(regex_automata::PatternID::ZERO, super::pattern::HOST_GROUP)?;
                Some((regex, group))
            })
            .as_ref()
            .map(|(regex, group)| (regex, *group))
    }

    /// Whether `hay` may hold a name where this pattern's `<HOST>` is.
    pub fn may_match(&self, hay: &[u8]) -> bool {
        match &self.gate {
            Gate::After(f) => f
                .find_iter(hay)
                .any(|at| starts_with_name(&hay[at + f.needle().len()..])),
            Gate::AtStart => starts_with_name(hay),
            Gate::Open => true,
        }
    }
}

/// Whether `text` starts with a host name (up to the first byte a name cannot
/// hold). Mostly called on an address (the pattern's address path just failed
/// elsewhere on the line), so the one pass that finds the name's end also
/// rejects it: text of digits and dots only has an all-digit last label, which
/// no host name has.
pub(crate) fn starts_with_name(text: &[u8]) -> bool {
    let mut len = 0;
    let mut not_digit = false;
    for &b in text.iter().take(addr::MAX_HOST_NAME_LEN + 2) {
        match b {
            b'0'..=b'9' | b'.' => {}
            b'a'..=b'z' | b'A'..=b'Z' | b'-' => not_digit = true,
            _ => break,
        }
        len += 1;
    }
    not_digit && addr::is_host_name(&text[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_overwrites_oldest_and_stale_refs_read_none() {
        let mut ring = NameRing::default();
        let first = ring.push(b"A.Example.org");
        assert_eq!(ring.get(first), Some("a.example.org"));
        let mut last = first;
        for i in 0..NAME_SLOTS {
            last = ring.push(format!("h{i}.example.org").as_bytes());
        }
        assert_eq!(ring.get(first), None, "overwritten");
        assert_eq!(
            ring.get(last),
            Some(format!("h{}.example.org", NAME_SLOTS - 1).as_str())
        );
    }

    #[test]
    fn the_gate_wants_a_name_after_the_literal() {
        let p = NamePath::new("x".into(), Some(b" from "), false);
        assert!(p.may_match(b"Failed password for root from scan.example.org port 22"));
        assert!(p.may_match(b"x from 192.0.2.1 port 1 from scan.example.org port 2"));
        assert!(!p.may_match(b"Failed password for root from 192.0.2.1 port 22"));
        assert!(!p.may_match(b"Failed password for root from 192.0.2 port 22"));
        assert!(!p.may_match(b"session opened for user root"));
        assert!(!p.may_match(b"Failed password for root from 2001:db8::1 port 22"));
        assert!(!p.may_match(b"Failed password for root from 192.0.2.1. port 22"));
        assert!(p.may_match(b"Failed password for root from 1-2.example port 22"));
        assert!(p.may_match(b"Failed password for root from 198.51.100.7.example.org"));
        let start = NamePath::new("x".into(), None, true);
        assert!(start.may_match(b"crawler.example.com - - [19/May/2026"));
        assert!(!start.may_match(b"203.0.113.9 - - [19/May/2026"));
    }
}
