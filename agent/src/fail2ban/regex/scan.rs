//! Anchored searches on a lazy DFA of a pattern's ASCII form, with the
//! caches in the searcher's own pool: the per-line scan (the prefregex
//! split, and one search for the failregexes together) without the `meta`
//! engine's per-search set-up (its pool, its strategy's checks, a haystack
//! scan for non-ASCII bytes first), which cost more than the DFA walk
//! itself on the short spans of a log line.
//!
//! Every non-ASCII byte is a quit byte: a search answers only while every
//! byte it examines is ASCII. There the ASCII form and Python's Unicode
//! reading of the pattern agree (as for [`FastRe`](super::FastRe)'s ASCII
//! form: `\w`, `\s`, `\d`, `.`, `\b` and case folding differ only on
//! non-ASCII characters), so a line with a non-ASCII byte further on is
//! still answered; one where the DFA would look at such a byte goes to the
//! general path.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Anchored, Input, MatchKind};

/// A lazy DFA of one or more patterns (leftmost-first, in their order), run
/// anchored.
#[derive(Debug)]
pub(crate) struct AsciiDfa {
    dfa: Arc<DFA>,
    caches: Pool<Cache, CacheFn>,
}

type CacheFn = Box<dyn Fn() -> Cache + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// Why an [`AsciiDfa`] search did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoAnswer;

impl AsciiDfa {
    /// The DFA of `hirs`, parsed as ASCII forms (`unicode(false)`,
    /// `utf8(false)`); `None` where it cannot be built. The parses are
    /// borrowed: copying a filter's failregexes to build its scan cost as
    /// much as a few hundred lines of matching.
    pub(crate) fn new<H: std::borrow::Borrow<regex_syntax::hir::Hir>>(
        hirs: &[H],
    ) -> Option<AsciiDfa> {
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(false)
                    .which_captures(thompson::WhichCaptures::None)
                    .nfa_size_limit(Some(64 << 20)),
            )
            .build_many_from_hir(hirs)
            .ok()?;
        let mut config = DFA::config().match_kind(MatchKind::LeftmostFirst);
        for b in 0x80..=0xff {
            config = config.quit(b, true);
        }
        let dfa = Arc::new(DFA::builder().configure(config).build_from_nfa(nfa).ok()?);
        let for_pool = Arc::clone(&dfa);
        let create: CacheFn = Box::new(move || for_pool.create_cache());
        Some(AsciiDfa {
            dfa,
            caches: Pool::new(create),
        })
    }

    /// The leftmost-first match starting exactly at `from` (the bytes before
    /// it still count for `^` and `\b`): its pattern and end.
    #[inline]
    pub(crate) fn find_anchored(
        &self,
        hay: &str,
        from: usize,
    ) -> Result<Option<(usize, usize)>, NoAnswer> {
        let input = Input::new(hay).range(from..).anchored(Anchored::Yes);
        let mut cache = self.caches.get();
        match self.dfa.try_search_fwd(&mut cache, &input) {
            Ok(m) => Ok(m.map(|m| (m.pattern().as_usize(), m.offset()))),
            Err(_) => Err(NoAnswer),
        }
    }
}

/// An [`AsciiDfa`] of one [`FastRe`](super::FastRe)'s ASCII form, built on
/// its first use (as the pattern's own automata are).
#[derive(Debug, Default)]
pub(crate) struct LazyDfa(std::sync::OnceLock<Option<AsciiDfa>>);

impl LazyDfa {
    /// The DFA of `re`'s ASCII form, built now if this is its first use;
    /// `None` where it cannot be built.
    #[inline]
    fn get(&self, re: &super::FastRe) -> Option<&AsciiDfa> {
        self.0
            .get_or_init(|| {
                re.ascii_hir()
                    .and_then(|h| AsciiDfa::new(std::slice::from_ref(h)))
            })
            .as_ref()
    }

    /// `re.find_anchored(hay, from)`: by the DFA where it answers, else by
    /// `re` itself.
    #[inline]
    pub(crate) fn find_anchored(
        &self,
        re: &super::FastRe,
        hay: &str,
        from: usize,
    ) -> Option<(usize, usize)> {
        if let Some(dfa) = self.get(re)
            && let Ok(m) = dfa.find_anchored(hay, from)
        {
            return m.map(|(_, end)| (from, end));
        }
        re.find_anchored(hay, from)
    }
}

/// What one source keeps between its lines for a search from the line's
/// start ([`LazyDfa::find_at_start`]): the states the last line's search
/// went through, so the next line's search starts where the two lines part.
///
/// A DFA's state before byte `i` depends only on the bytes before `i` (and,
/// for a search from the line's start, on nothing else: there is no
/// look-behind there), and so does every match end it saw before `i`; the
/// search ends on a dead state, a quit byte or the line's end, after the
/// last byte it read. So a line that starts with the last line's first `c`
/// bytes reaches the same state, with the same match so far, at `c`, and
/// the rest of its search (on its own bytes from `c`, its own end) is its
/// plain search's rest: the answer is the plain search's, byte for byte,
/// however far the search looked (past the match end, or to the line's
/// end). Only the bytes the last search read are kept (at most [`KEPT`]).
///
/// The states are ids in this memo's own cache (not the pool's, where
/// another thread's search could take it): a cache clear renumbers them, so
/// the trail is dropped then, and a memo that meets another DFA starts over.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    dfa: Option<Arc<DFA>>,
    cache: Option<Cache>,
    /// The cache's clear count when the trail was laid.
    clears: usize,
    /// The last line's first bytes the search read past.
    bytes: Vec<u8>,
    /// `trail[i]`: the state before `bytes[i]` (or the byte after them) and
    /// the end of the last match seen before it ([`NO_MATCH`]: none).
    trail: Vec<(LazyStateID, usize)>,
}

/// At most this many of a line's bytes are kept in a [`Resume`]: a line
/// head; a search that reads on is resumed from no further.
const KEPT: usize = 96;

/// No match yet, in a [`Resume`] trail.
const NO_MATCH: usize = usize::MAX;

impl AsciiDfa {
    /// `find_anchored(hay, 0)`'s match end, resumed from `memo` where the
    /// last line searched shares a start with `hay`.
    pub(crate) fn find_at_start(
        &self,
        hay: &str,
        memo: &mut Resume,
    ) -> Result<Option<usize>, NoAnswer> {
        let hay = hay.as_bytes();
        if !memo.dfa.as_ref().is_some_and(|d| Arc::ptr_eq(d, &self.dfa)) {
            memo.dfa = Some(Arc::clone(&self.dfa));
            memo.cache = Some(self.dfa.create_cache());
            memo.trail.clear();
        }
        let Some(cache) = memo.cache.as_mut() else {
            return Err(NoAnswer);
        };
        if memo.trail.is_empty() || cache.clear_count() != memo.clears {
            memo.bytes.clear();
            memo.trail.clear();
            memo.clears = cache.clear_count();
            let input = Input::new(hay).anchored(Anchored::Yes);
            let start = self
                .dfa
                .start_state_forward(cache, &input)
                .map_err(|_| NoAnswer)?;
            memo.trail.push((start, NO_MATCH));
        }
        let c = memo
            .bytes
            .iter()
            .zip(hay)
            .take_while(|(a, b)| a == b)
            .count();
        memo.bytes.truncate(c);
        memo.trail.truncate(c + 1);
        let (mut sid, mut mat) = memo.trail[c];
        let mut at = c;
        let found = loop {
            let Some(&b) = hay.get(at) else {
                let Ok(eoi) = self.dfa.next_eoi_state(cache, sid) else {
                    break Err(NoAnswer);
                };
                if eoi.is_match() {
                    mat = at;
                }
                break Ok(mat);
            };
            let Ok(next) = self.dfa.next_state(cache, sid, b) else {
                break Err(NoAnswer);
            };
            sid = next;
            if sid.is_tagged() {
                if sid.is_match() {
                    // Matches show one byte late: this one ends before `b`.
                    mat = at;
                } else if sid.is_dead() {
                    break Ok(mat);
                } else {
                    // A quit byte (non-ASCII).
                    break Err(NoAnswer);
                }
            }
            at += 1;
            if at <= KEPT {
                memo.bytes.push(b);
                memo.trail.push((sid, mat));
            }
        };
        if cache.clear_count() != memo.clears {
            memo.trail.clear();
        }
        found.map(|m| (m != NO_MATCH).then_some(m))
    }
}

impl LazyDfa {
    /// `self.find_anchored(re, hay, 0)`, resumed from `memo` (see
    /// [`Resume`]).
    #[inline]
    pub(crate) fn find_at_start(
        &self,
        re: &super::FastRe,
        hay: &str,
        memo: &mut Resume,
    ) -> Option<(usize, usize)> {
        if let Some(dfa) = self.get(re)
            && let Ok(m) = dfa.find_at_start(hay, memo)
        {
            return m.map(|end| (0, end));
        }
        re.find_anchored(hay, 0)
    }
}
