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

/// A cache of one source's own for an [`AsciiDfa`] searched on each of
/// its lines: taking one from the searcher's pool and putting it back cost
/// about a tenth of the failregexes' search on a line.
#[derive(Debug, Default)]
pub(crate) struct OwnCache {
    /// The DFA the cache is for: another one's search starts a new cache.
    dfa: Option<Arc<DFA>>,
    cache: Option<Cache>,
}

impl AsciiDfa {
    /// [`find_anchored`](Self::find_anchored), in `own`'s cache.
    #[inline]
    pub(crate) fn find_anchored_in(
        &self,
        hay: &str,
        from: usize,
        own: &mut OwnCache,
    ) -> Result<Option<(usize, usize)>, NoAnswer> {
        let cache = match &mut own.cache {
            Some(c) if own.dfa.as_ref().is_some_and(|d| Arc::ptr_eq(d, &self.dfa)) => c,
            slot => {
                own.dfa = Some(Arc::clone(&self.dfa));
                slot.insert(self.dfa.create_cache())
            }
        };
        let input = Input::new(hay).range(from..).anchored(Anchored::Yes);
        match self.dfa.try_search_fwd(cache, &input) {
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
///
/// The trail lives in fixed arrays: a `Vec` push per byte read (a
/// capacity check and a length store each) cost as much as the DFA step.
#[derive(Debug)]
pub(crate) struct Resume {
    dfa: Option<Arc<DFA>>,
    cache: Option<Cache>,
    /// The cache's clear count when the trail was laid.
    clears: usize,
    /// Whether `trail[0]` holds the start state (the trail was laid).
    laid: bool,
    /// How many of the last line's first bytes the search read past.
    len: usize,
    /// Those bytes: `bytes[..len]`.
    bytes: Box<[u8; KEPT]>,
    /// `trail[i]` (`i <= len`): the state before `bytes[i]` (or the byte
    /// after them) and the end of the last match seen before it
    /// ([`NO_MATCH`]: none). A match end is at most [`KEPT`] there.
    trail: Box<[(LazyStateID, u32); KEPT + 1]>,
}

impl Default for Resume {
    fn default() -> Self {
        Resume {
            dfa: None,
            cache: None,
            clears: 0,
            laid: false,
            len: 0,
            bytes: Box::new([0; KEPT]),
            trail: Box::new([(LazyStateID::default(), NO_MATCH); KEPT + 1]),
        }
    }
}

/// At most this many of a line's bytes are kept in a [`Resume`]: a line
/// head; a search that reads on is resumed from no further.
const KEPT: usize = 96;

/// No match yet, in a [`Resume`] trail.
const NO_MATCH: u32 = u32::MAX;

/// How many bytes `a` and `b` start with alike, compared a word at a time.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) {
        let x = u64::from_le_bytes(x.try_into().expect("eight bytes"));
        let y = u64::from_le_bytes(y.try_into().expect("eight bytes"));
        if x != y {
            return i + (x ^ y).trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + a[i..]
        .iter()
        .zip(&b[i..])
        .take_while(|(x, y)| x == y)
        .count()
}

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
            memo.laid = false;
        }
        let Some(cache) = memo.cache.as_mut() else {
            return Err(NoAnswer);
        };
        if !memo.laid || cache.clear_count() != memo.clears {
            memo.len = 0;
            memo.clears = cache.clear_count();
            let input = Input::new(hay).anchored(Anchored::Yes);
            let start = self
                .dfa
                .start_state_forward(cache, &input)
                .map_err(|_| NoAnswer)?;
            memo.trail[0] = (start, NO_MATCH);
            memo.laid = true;
        }
        let c = common_prefix(&memo.bytes[..memo.len], hay);
        let (mut sid, m) = memo.trail[c];
        // `usize::MAX` for no match: as `u32` it is `NO_MATCH`, and a match
        // end kept in the trail is at most `KEPT`, so it fits.
        let mut mat = if m == NO_MATCH {
            usize::MAX
        } else {
            m as usize
        };
        let mut at = c;
        // The bytes read past (the search goes on after them) are kept up
        // to `KEPT`: `memo.len` is where this line's kept head ends. Taken
        // out of `memo` for the walk: through `memo`, whose cache the DFA
        // step may write, each store reloaded the arrays' addresses.
        let kept = hay.len().min(KEPT);
        let (bytes, trail) = (&mut *memo.bytes, &mut *memo.trail);
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
            if at < kept {
                bytes[at] = b;
                // `mat` is `usize::MAX` or at most `at < KEPT` here.
                trail[at + 1] = (sid, mat as u32);
            }
            at += 1;
        };
        memo.len = at.min(kept);
        if cache.clear_count() != memo.clears {
            memo.laid = false;
        }
        found.map(|m| (m != usize::MAX).then_some(m))
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

#[cfg(test)]
mod tests {
    use super::common_prefix;

    proptest::proptest! {
        #[test]
        fn common_prefix_counts_bytewise(
            a in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', 0x80]), 0..40),
            b in proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', 0x80]), 0..40),
        ) {
            let want = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            proptest::prop_assert_eq!(common_prefix(&a, &b), want);
            proptest::prop_assert_eq!(common_prefix(&a, &a), a.len());
        }
    }

    #[test]
    fn common_prefix_at_word_edges() {
        let a = [7u8; 24];
        for at in 0..24 {
            let mut b = a;
            b[at] = 8;
            assert_eq!(common_prefix(&a, &b), at);
            assert_eq!(common_prefix(&a[..at], &b), at);
        }
    }
}
