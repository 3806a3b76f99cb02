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
    /// `re.find_anchored(hay, from)`: by the DFA where it answers, else by
    /// `re` itself.
    #[inline]
    pub(crate) fn find_anchored(
        &self,
        re: &super::FastRe,
        hay: &str,
        from: usize,
    ) -> Option<(usize, usize)> {
        let dfa = self.0.get_or_init(|| {
            re.ascii_hir()
                .and_then(|h| AsciiDfa::new(std::slice::from_ref(h)))
        });
        if let Some(dfa) = dfa
            && let Ok(m) = dfa.find_anchored(hay, from)
        {
            return m.map(|(_, end)| (from, end));
        }
        re.find_anchored(hay, from)
    }
}
