//! The capture step of one pattern (one branch of a split pattern), run on
//! its own automaton instead of the multi-pattern one the DFA searched.
//!
//! The bounded backtracker clears a visited table of (span + 1) x states bits
//! on every run, and the multi-pattern automaton of a split regex holds every
//! branch's states: the capture run of the branch the DFA found needs its own
//! states only. A pattern run anchored from the match start over the match
//! span finds the same groups on the branch's own automaton as on the whole
//! (the other branches' states are unreachable from its start), and one-pass
//! branches (dates) run on the one-pass DFA without a DFA pass first, as the
//! `meta` engine does for them.

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::Arc;

use regex_automata::dfa::onepass;
use regex_automata::nfa::thompson::{self, backtrack, pikevm};
use regex_automata::util::pool::Pool;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};

/// One pattern's capture engines.
#[derive(Debug)]
pub(super) struct Captor {
    engines: Arc<Engines>,
    caches: Pool<Caches, CacheFn>,
}

type CacheFn = Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe>;

#[derive(Debug)]
struct Engines {
    /// Where the pattern is one-pass: it resolves groups in one scan.
    onepass: Option<onepass::DFA>,
    backtrack: backtrack::BoundedBacktracker,
    /// For spans too long for the backtracker's table.
    pikevm: pikevm::PikeVM,
    /// Whether every match starts the haystack (`^`): a one-pass pattern
    /// then needs no DFA pass to find its start.
    anchored_start: bool,
}

#[derive(Debug)]
struct Caches {
    onepass: Option<onepass::Cache>,
    backtrack: backtrack::Cache,
    pikevm: Option<pikevm::Cache>,
}

impl Captor {
    /// The engines for `hir`, its group indices kept (a branch's groups have
    /// the whole pattern's indices). `utf8` as the search's `utf8_empty`.
    pub(super) fn new(
        hir: &regex_syntax::hir::Hir,
        utf8: bool,
        size_limit: usize,
    ) -> Result<Captor, String> {
        let nfa = thompson::Compiler::new()
            .configure(
                thompson::Config::new()
                    .utf8(utf8)
                    .shrink(false)
                    .nfa_size_limit(Some(size_limit)),
            )
            .build_from_hir(hir)
            .map_err(|e| e.to_string())?;
        // As `meta` decides: one-pass only where there are groups to find
        // and no Unicode word boundary (the one-pass DFA cannot run one).
        let props = hir.properties();
        let onepass = (props.explicit_captures_len() > 0
            && !props.look_set().contains_word_unicode())
        .then(|| {
            onepass::Builder::new()
                .configure(onepass::Config::new().size_limit(Some(1 << 20)))
                .build_from_nfa(nfa.clone())
                .ok()
        })
        .flatten();
        let backtrack = backtrack::Builder::new()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let pikevm = pikevm::PikeVM::new_from_nfa(nfa).map_err(|e| e.to_string())?;
        let anchored_start = props
            .look_set_prefix()
            .contains(regex_syntax::hir::Look::Start);
        let engines = Arc::new(Engines {
            onepass,
            backtrack,
            pikevm,
            anchored_start,
        });
        let for_pool = Arc::clone(&engines);
        let create: CacheFn = Box::new(move || Caches {
            onepass: for_pool.onepass.as_ref().map(onepass::Cache::new),
            backtrack: backtrack::Cache::new(&for_pool.backtrack),
            pikevm: None,
        });
        Ok(Captor {
            engines,
            caches: Pool::new(create),
        })
    }

    /// Whether [`direct`](Self::direct) runs without a DFA pass: a one-pass
    /// pattern anchored at the haystack's start.
    pub(super) fn is_direct(&self) -> bool {
        self.engines.onepass.is_some() && self.engines.anchored_start
    }

    /// The leftmost-first match at or after `from` with its groups, for a
    /// pattern [`is_direct`](Self::is_direct): a match can only start the
    /// haystack, so the search anchored at `from` is the search.
    pub(super) fn direct(&self, hay: &str, from: usize, slots: &mut [Option<NonMaxUsize>]) -> bool {
        let Some(dfa) = &self.engines.onepass else {
            return false;
        };
        let input = Input::new(hay).range(from..).anchored(Anchored::Yes);
        let mut caches = self.caches.get();
        let cache = caches.onepass.as_mut().expect("built with the DFA");
        matches!(dfa.try_search_slots(cache, &input, slots), Ok(Some(_)))
    }

    /// The groups of the match a DFA found at `start..end`: the pattern run
    /// anchored at `start` over that span only.
    pub(super) fn resolve(
        &self,
        hay: &str,
        start: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let input = Input::new(hay).span(start..end).anchored(Anchored::Yes);
        let e = &self.engines;
        let mut caches = self.caches.get();
        let c = &mut *caches;
        let found = if let (Some(dfa), Some(cache)) = (&e.onepass, c.onepass.as_mut()) {
            dfa.try_search_slots(cache, &input, slots).ok().flatten()
        } else if end - start <= e.backtrack.max_haystack_len() {
            e.backtrack
                .try_search_slots(&mut c.backtrack, &input, slots)
                .ok()
                .flatten()
        } else {
            let cache = c.pikevm.get_or_insert_with(|| e.pikevm.create_cache());
            e.pikevm.search_slots(cache, &input, slots)
        };
        found.is_some()
    }
}
