//! Deciding whether a pattern matches a line, and finding its address, without a
//! capturing regex engine and mostly without scanning the line with a DFA.
//!
//! A capturing search over a `.*` (a user name of any length) is what made matched
//! lines slow, and even a DFA costs a few nanoseconds per byte. Here the regex is
//! split at `<HOST>` into `A <HOST> B` (see `pattern::split`), and:
//!
//! - If `A` is `HEAD .* REST` (a free-text field such as a user name), `HEAD` is
//!   matched first at the start, shortest match: most lines fail here within a
//!   few bytes.
//! - Candidate address positions come from the literal that ends `A` (`" from "`),
//!   searched from the end of the line backwards, or else from every run of
//!   address characters, last run first.
//! - At a candidate, the longest text that [`addr::parse_ip`] accepts and after
//!   which `B` matches (an anchored DFA search over the short tail) wins, if `A`
//!   ends there: `REST` matches backwards from the candidate without reaching
//!   into `HEAD` (or, without a gap, all of `A` matches backwards).
//!
//! The result is the **last** place on the line where an address makes the whole
//! regex match. Built-in filters put `<HOST>` right before a tail the logging
//! program writes itself (` port 22`), so the last such place is the real one even
//! when a user name or URL imitates the line.

use std::net::IpAddr;

use memchr::memmem;
use regex_automata::dfa::dense::{self, DFA};
use regex_automata::dfa::{Automaton, StartKind};
use regex_automata::nfa::thompson;
use regex_automata::{Anchored, Input, MatchError};

use super::pattern::{Split, syntax_config};
use crate::addr;

/// The longest address text [`addr::parse_ip`] accepts.
const MAX_ADDR_LEN: usize = 45;

fn is_addr_char(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Size limits for one fully compiled DFA: a regex whose DFA would be bigger is
/// searched with the slower engines instead.
const DFA_SIZE_LIMIT: usize = 4 << 20;
const DETERMINIZE_SIZE_LIMIT: usize = 16 << 20;

/// Compiles `patterns` into one dense DFA that searches only anchored, reverse when
/// `reverse`. `None` when it would exceed the size limits.
pub fn dense_anchored(
    patterns: &[&str],
    reverse: bool,
    kind: regex_automata::MatchKind,
) -> Option<DFA<Vec<u32>>> {
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Anchored)
                .match_kind(kind)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DETERMINIZE_SIZE_LIMIT)),
        )
        .syntax(syntax_config())
        .thompson(thompson::Config::new().reverse(reverse).utf8(false))
        .build_many(patterns)
        .ok()
}

/// The compiled fast path of one split pattern: decides on its own whether the
/// pattern matches a text, and where its address is.
#[derive(Debug)]
pub struct FastHost {
    suffix: Option<(memmem::FinderRev<'static>, usize)>,
    after_prefix: Option<Box<[u8]>>,
    /// Anchored patterns: text every match starts with, checked before anything.
    head_literal: Option<Box<[u8]>>,
    /// Searches are anchored at the text start (syslog messages, `^`).
    anchored: bool,
    /// `A` matches only the empty string at the start of the text.
    starts_at_zero: bool,
    /// How `A` is checked.
    before: Before,
    /// Forward DFA of `B`, anchored at the end of the address.
    after: DFA<Vec<u32>>,
}

/// How `REST` is checked.
#[derive(Debug)]
enum Rest {
    /// Plain text: compared directly.
    Literal(Box<[u8]>),
    /// A reverse DFA.
    Dfa(Box<DFA<Vec<u32>>>),
}

/// The check that `A` ends where an address starts.
#[derive(Debug)]
enum Before {
    /// `A` = `HEAD .* REST`: `HEAD` must match first (forward, shortest), `REST`
    /// must end at the address (reverse, shortest), without overlapping.
    Gap {
        head: Box<DFA<Vec<u32>>>,
        rest: Rest,
        min: usize,
    },
    /// Reverse DFA of all of `A`, ending at the address.
    Whole(Box<DFA<Vec<u32>>>),
    /// `A` is plain text: compared directly.
    Literal(Box<[u8]>),
}

impl FastHost {
    /// Compiles the fast path for a split pattern; `anchored` says the filter's
    /// regexes match only at the start of the text (syslog messages). `None` if
    /// the halves do not compile to DFAs of bounded size (then the capturing
    /// search is used).
    pub fn build(split: &Split, anchored: bool) -> Option<FastHost> {
        let first = regex_automata::MatchKind::LeftmostFirst;
        let anchored = anchored || split.before_anchored;
        let before = match (&split.gap, &split.before_literal) {
            (Some(gap), _) => Before::Gap {
                head: Box::new(dense(&gap.head, false, !anchored)?),
                rest: match &gap.rest_literal {
                    Some(lit) => Rest::Literal(lit.clone()),
                    None => Rest::Dfa(Box::new(dense(&gap.rest, true, false)?)),
                },
                min: gap.min,
            },
            (None, Some(lit)) => Before::Literal(lit.clone()),
            (None, None) => {
                let text = if anchored {
                    format!(r"\A(?:{})", split.before)
                } else {
                    split.before.clone()
                };
                Before::Whole(Box::new(dense_anchored(&[&text], true, first)?))
            }
        };
        let after = dense_anchored(&[&split.after], false, first)?;
        let suffix = split
            .before_suffix
            .as_ref()
            .map(|s| (memmem::FinderRev::new(s).into_owned(), s.len()));
        Some(FastHost {
            suffix,
            after_prefix: split.after_prefix.clone(),
            head_literal: split.before_prefix.clone().filter(|_| anchored),
            anchored,
            starts_at_zero: split.before_empty && anchored,
            before,
            after,
        })
    }

    /// The address in `hay`, if the pattern matches it: the last place on the line
    /// where an address makes the whole pattern match, and there the longest
    /// address. `Err` when a DFA could not search (a quit byte); the caller then
    /// falls back to the capturing search.
    pub fn find(&self, hay: &[u8]) -> Result<Option<IpAddr>, MatchError> {
        if let Some(lit) = &self.head_literal
            && !hay.starts_with(lit)
        {
            return Ok(None);
        }
        // Where `HEAD` ends at the earliest: no address can start before.
        let head_end = match &self.before {
            Before::Gap { head, .. } => {
                let mode = if self.anchored {
                    Anchored::Yes
                } else {
                    Anchored::No
                };
                let input = Input::new(hay).anchored(mode).earliest(true);
                match head.try_search_fwd(&input)? {
                    Some(m) => m.offset(),
                    None => return Ok(None),
                }
            }
            Before::Whole(_) => 0,
            // Anchored: the address can only start right after the text.
            Before::Literal(lit) if self.anchored => {
                if !hay.starts_with(lit) {
                    return Ok(None);
                }
                return self.try_at(hay, lit.len(), 0);
            }
            Before::Literal(_) => 0,
        };
        if self.starts_at_zero {
            return self.try_at(hay, 0, head_end);
        }
        if let Some((rev, len)) = &self.suffix {
            let mut end = hay.len();
            while let Some(pos) = rev.rfind(&hay[..end]) {
                let i = pos + len;
                if i < head_end {
                    break;
                }
                if let Some(ip) = self.try_at(hay, i, head_end)? {
                    return Ok(Some(ip));
                }
                end = i - 1;
            }
            return Ok(None);
        }
        // No literal before the address: every run of address characters, last
        // first; within a run, leftmost start first (the longest address).
        let mut end = hay.len();
        while let Some(last) = hay[..end].iter().rposition(|b| is_addr_char(*b)) {
            let start = hay[..last]
                .iter()
                .rposition(|b| !is_addr_char(*b))
                .map_or(0, |p| p + 1);
            for i in start.max(head_end)..=last {
                if let Some(ip) = self.try_at(hay, i, head_end)? {
                    return Ok(Some(ip));
                }
            }
            if start <= head_end {
                break;
            }
            end = start;
        }
        Ok(None)
    }

    /// The longest address starting at `i` after which `B` matches, if `A` ends
    /// at `i`.
    fn try_at(&self, hay: &[u8], i: usize, head_end: usize) -> Result<Option<IpAddr>, MatchError> {
        let Some(tail) = hay.get(i..) else {
            return Ok(None);
        };
        let run = tail
            .iter()
            .take(MAX_ADDR_LEN + 1)
            .take_while(|b| is_addr_char(**b))
            .count()
            .min(MAX_ADDR_LEN);
        for len in (2..=run).rev() {
            let j = i + len;
            if let Some(lit) = &self.after_prefix
                && !hay[j..].starts_with(lit)
            {
                continue;
            }
            let Some(ip) = addr::parse_ip(&hay[i..j]) else {
                continue;
            };
            let input = Input::new(hay).range(j..).anchored(Anchored::Yes);
            if self.after.try_search_fwd(&input)?.is_none() {
                continue;
            }
            // `A` does not depend on where the address ends: checked once.
            return Ok(self.before_ends_at(hay, i, head_end)?.then_some(ip));
        }
        Ok(None)
    }

    /// Whether `A` matches a text ending at `i` (starting at 0 when anchored).
    fn before_ends_at(&self, hay: &[u8], i: usize, head_end: usize) -> Result<bool, MatchError> {
        match &self.before {
            Before::Gap { rest, min, .. } => {
                let Some(from) = head_end.checked_add(*min).filter(|f| *f <= i) else {
                    return Ok(false);
                };
                match rest {
                    Rest::Literal(lit) => Ok(hay[from..i].ends_with(lit)),
                    Rest::Dfa(dfa) => {
                        let input = Input::new(hay)
                            .range(from..i)
                            .anchored(Anchored::Yes)
                            .earliest(true);
                        Ok(dfa.try_search_rev(&input)?.is_some())
                    }
                }
            }
            Before::Literal(lit) => {
                Ok(hay[..i].ends_with(lit) && (!self.anchored || i == lit.len()))
            }
            Before::Whole(dfa) => {
                let input = Input::new(hay).range(..i).anchored(Anchored::Yes);
                Ok(dfa.try_search_rev(&input)?.is_some())
            }
        }
    }
}

/// One pattern as a dense DFA; `unanchored` allows matches to start anywhere.
fn dense(pattern: &str, reverse: bool, unanchored: bool) -> Option<DFA<Vec<u32>>> {
    let kind = if unanchored {
        StartKind::Both
    } else {
        StartKind::Anchored
    };
    dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(kind)
                .match_kind(regex_automata::MatchKind::LeftmostFirst)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DETERMINIZE_SIZE_LIMIT)),
        )
        .syntax(syntax_config())
        .thompson(thompson::Config::new().reverse(reverse).utf8(false))
        .build(pattern)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::pattern::split;

    fn find(pattern: &str, anchored: bool, hay: &str) -> Option<IpAddr> {
        let s = split(pattern).expect("splits");
        let f = FastHost::build(&s, anchored).expect("builds");
        f.find(hay.as_bytes()).expect("no give-up")
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("test address"))
    }

    #[test]
    fn literal_anchor_takes_the_last_valid_place() {
        let p = r"Invalid user .* from <HOST> port \d+$";
        assert_eq!(
            find(p, true, "Invalid user a from 192.0.2.1 port 22"),
            ip("192.0.2.1")
        );
        assert_eq!(
            find(
                p,
                true,
                "Invalid user a from 203.0.113.9 port 1 from 198.51.100.7 port 22"
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            find(p, true, "Invalid user a from 192.0.2.1 port 22 x"),
            None
        );
        assert_eq!(find(p, true, "Valid user a from 192.0.2.1 port 22"), None);
        assert_eq!(
            find(p, false, "x Invalid user a from 192.0.2.1 port 22"),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn before_is_checked_when_the_literal_repeats() {
        let p = r"x \S+ from <HOST> port \d+.*$";
        // The last candidate would need `\S+` to cover spaces: refused, so the
        // first one wins.
        assert_eq!(
            find(
                p,
                true,
                "x a from 192.0.2.1 port 1 from 198.51.100.7 port 2"
            ),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn ipv6_with_colon_port_is_split_by_the_tail() {
        let p = r"from <HOST>:\d+$";
        assert_eq!(find(p, true, "from 2001:db8::1:5555"), ip("2001:db8::1"));
        assert_eq!(find(p, true, "from 192.0.2.1:5555"), ip("192.0.2.1"));
    }

    #[test]
    fn start_anchored_and_runs() {
        assert_eq!(
            find(
                r#"^<HOST> - \S+ \[[^\]]+\] "GET "#,
                false,
                r#"192.0.2.1 - - [x] "GET /?198.51.100.1""#
            ),
            ip("192.0.2.1")
        );
        // No literal before <HOST>: runs from the end.
        assert_eq!(
            find(r"\w+=<HOST>$", false, "ip=192.0.2.1 rip=198.51.100.2"),
            ip("198.51.100.2")
        );
        assert_eq!(find(r"\s<HOST>\]$", false, "a [192.0.2.1]"), None);
        assert_eq!(
            find(r"\[<HOST>\]$", false, "a [192.0.2.1]"),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn mapped_addresses_are_normalised() {
        assert_eq!(
            find(r"from <HOST> port", true, "from ::ffff:192.0.2.1 port 22"),
            ip("192.0.2.1")
        );
    }
}
