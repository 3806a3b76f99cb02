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
//!
//! Few of fail2ban's branches are one-pass as a whole (`<HOST>`'s address and
//! name forms overlap), yet most of a branch before `<HOST>` is text whose
//! parse is decided as it is read (`Failed password for `, `ruser=\S* `):
//! the pattern is cut into segments where everything before a cut can end at
//! one place only, each segment runs on its own engine from where the one
//! before ended, and only the segments that are not one-pass (the address
//! and what follows it) walk the backtracker, over their own text. The cut
//! keeps leftmost-first priority for the reason a split does ([`branches`]):
//! every parse of what comes before a cut ends at the cut, so the first
//! parse of the whole is the first parse of each segment in turn.
//!
//! No cut falls inside `U L <HOST> S` (`Failed password for [^:]+ from
//! <HOST> ...`, `Invalid user .*? from <HOST> ...`): `U` can end at every
//! ` from `, and the backtracker lets it run to the end of the line and
//! back off. There the match's end decides instead ([`Split`]): a reverse
//! DFA of `<HOST> S` from the end lists the places `<HOST>` can start after
//! `L`, and where one is left (after a forward DFA of `U` where there are
//! several) `U` and `<HOST> S` run apart over their own text. What follows
//! a dotted quad where it is not one-pass, and a segment with no groups but
//! ones around all of it (up to a tail of fixed length, the ` from ` after a
//! user name), are settled by a DFA walk: only their end is wanted, and a
//! lazy DFA finds it for a fraction of what a one-pass DFA's search costs
//! even where the segment is one-pass (`pam_[a-z]+\(sshd:auth\): ...`
//! inside `<F-NOFAIL>`). A segment opening with a choice (`(?:publickey|\S+) for `) that
//! is one-pass once the choice is made tries each choice on its own
//! one-pass DFA, in priority order, instead of the backtracker.
//!
//! Working the cuts out builds DFAs and one-pass DFAs, millions of
//! instructions per branch, which a short log never earns back: a branch is
//! cut at its [`CUT_AFTER`]-th match, and each cut is decided on a DFA of the
//! piece since the cut before (not of everything before it).
//!
//! [`branches`]: super::branches

use std::cell::RefCell;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};

use regex_automata::dfa::onepass;
use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, NFA, backtrack, pikevm};
use regex_automata::util::pool::Pool;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::hir::{Hir, HirKind, Look, LookSet};

/// One pattern's capture engines.
#[derive(Debug)]
pub(super) struct Captor {
    engines: Arc<Engines>,
    caches: Pool<Caches, CacheFn>,
}

type CacheFn = Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe>;

#[derive(Debug)]
struct Engines {
    /// The pattern as one.
    whole: Engine,
    /// Whether every match starts the haystack (`^`): a one-pass pattern
    /// then needs no DFA pass to find its start.
    anchored_start: bool,
    /// The pattern cut where its parse is decided, when that leaves a
    /// one-pass segment (empty otherwise), built at the
    /// [`CUT_AFTER`]-th match: working the cuts out costs as much as
    /// thousands of matches save, and most branches of a short log match
    /// a few times only.
    segments: OnceLock<Box<[Segment]>>,
    /// What the cuts are worked out from; `None` where the whole is
    /// one-pass (nothing to cut).
    plan: Option<Plan>,
    /// Matches resolved before the cuts were built.
    resolved: AtomicUsize,
}

/// A pattern as [`segments`] takes it.
#[derive(Debug)]
struct Plan {
    /// The pattern, with the automaton [`Captor::new`] compiled and the
    /// one-pass DFA it failed to build: the first segment joined to all
    /// that follows is the pattern, whose join is then decided unbuilt.
    whole: Arc<Piece>,
}

/// A piece of a pattern that [`segments`] builds engines of, with what has
/// been built of it so far. The same piece recurs in a cut: `<HOST>` and
/// what follows it ends each list of [`Choices`] (four lists for sshd's
/// `Connection closed`), and its automaton, one-pass DFA and lazy DFAs
/// were built anew for each; each is built once now ([`Pieces`]).
#[derive(Debug)]
struct Piece {
    hir: Hir,
    /// As the search's `utf8_empty`.
    utf8: bool,
    size_limit: usize,
    nfa: OnceLock<Option<NFA>>,
    onepass: OnceLock<Option<onepass::DFA>>,
    /// Lazy DFAs, by direction (reverse or not) and match kind.
    lazy: Mutex<Vec<LazyBuilt>>,
}

/// A lazy DFA of a [`Piece`]: reverse, match kind, DFA.
type LazyBuilt = (bool, MatchKind, Option<hybrid::dfa::DFA>);

impl Piece {
    fn new(hir: Hir, utf8: bool, size_limit: usize) -> Piece {
        Piece {
            hir,
            utf8,
            size_limit,
            nfa: OnceLock::new(),
            onepass: OnceLock::new(),
            lazy: Mutex::new(Vec::new()),
        }
    }

    /// Its automaton, groups kept ([`compile`]).
    fn nfa(&self) -> Option<NFA> {
        self.nfa
            .get_or_init(|| compile(&self.hir, self.utf8, self.size_limit).ok())
            .clone()
    }

    /// Its automaton's one-pass DFA, where it has one.
    fn onepass(&self) -> Option<onepass::DFA> {
        let nfa = self.nfa()?;
        self.onepass.get_or_init(|| onepass_dfa(&nfa)).clone()
    }

    /// Its engines as a segment's or a piece of one ([`Engine::new`]).
    fn engine(&self) -> Option<Engine> {
        let nfa = self.nfa()?;
        let onepass = Engine::wants_onepass(&self.hir, true)
            .then(|| self.onepass())
            .flatten();
        Engine::with_onepass(nfa, onepass).ok()
    }

    /// Its lazy DFA ([`lazy_dfa`]).
    fn lazy(&self, reverse: bool, kind: MatchKind) -> Option<hybrid::dfa::DFA> {
        let mut built = self.lazy.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((.., dfa)) = built.iter().find(|(r, k, _)| *r == reverse && *k == kind) {
            return dfa.clone();
        }
        let dfa = lazy_dfa(&self.hir, reverse, kind);
        built.push((reverse, kind, dfa.clone()));
        dfa
    }
}

/// The pieces built while one pattern is cut, found again by their parse.
struct Pieces {
    utf8: bool,
    size_limit: usize,
    all: RefCell<Vec<Arc<Piece>>>,
    /// `false` for tests: each piece is built anew, as before pieces were
    /// shared.
    reuse: bool,
}

impl Pieces {
    /// Those of `plan`'s pattern, the whole already built.
    fn new(plan: &Plan) -> Pieces {
        Pieces {
            utf8: plan.whole.utf8,
            size_limit: plan.whole.size_limit,
            all: RefCell::new(vec![Arc::clone(&plan.whole)]),
            reuse: true,
        }
    }

    /// Every piece built anew, the whole too: what the cut was built from
    /// before, for tests.
    #[cfg(test)]
    fn fresh(plan: &Plan) -> Pieces {
        Pieces {
            utf8: plan.whole.utf8,
            size_limit: plan.whole.size_limit,
            all: RefCell::new(Vec::new()),
            reuse: false,
        }
    }

    /// The piece `hir`, built where an equal one was.
    fn get(&self, hir: Hir) -> Arc<Piece> {
        let mut all = self.all.borrow_mut();
        if self.reuse
            && let Some(p) = all.iter().find(|p| p.hir == hir)
        {
            return Arc::clone(p);
        }
        let p = Arc::new(Piece::new(hir, self.utf8, self.size_limit));
        all.push(Arc::clone(&p));
        p
    }
}

/// Matches a pattern resolves as one before it is cut: the cuts of a
/// branch of sshd's filter cost some millions of instructions to work out
/// and save a few thousand per match, so a branch matching a few times in
/// a short log runs cheaper uncut, and one matching thousands of times
/// loses a few dozen matches' savings.
pub(super) const CUT_AFTER: usize = 32;

/// The engines of one pattern or segment.
#[derive(Debug)]
struct Engine {
    /// Where it is one-pass: it resolves groups in one scan.
    onepass: Option<onepass::DFA>,
    backtrack: backtrack::BoundedBacktracker,
    /// For spans too long for the backtracker's table.
    pikevm: pikevm::PikeVM,
}

/// A segment of a cut pattern: its groups keep the pattern's indices.
#[derive(Debug)]
struct Segment {
    engine: Engine,
    /// Where the segment opens with `<HOST>`: its address read without the
    /// backtracker.
    host: Option<Host>,
    /// The slots of the groups it holds (its own, not the ones before it
    /// that its automaton numbers but never sets).
    slots: std::ops::Range<usize>,
    /// The slots its automaton writes.
    slot_len: usize,
    /// Where the segment is `U L <HOST> S` (`L` literal): `<HOST>`'s start
    /// found from the match's end.
    split: Option<Split>,
    /// Where it has no groups but ones around all of it: its DFA, which
    /// finds its end (leftmost-first, or every match for the last segment,
    /// whose end is the match's), one-pass or not: the one-pass DFA's
    /// search sets up slots and costs several times a lazy DFA's walk.
    ends: Option<hybrid::dfa::DFA>,
    /// The first slots of the groups around all of it but a fixed-length
    /// head and tail without groups (`^` then `(?P<nofail>...)`,
    /// `(?P<user>...)` then ` from `).
    around: Box<[usize]>,
    /// That head's length: the groups start this far into the segment.
    around_head: usize,
    /// That tail's length: the groups end this far before the segment.
    around_tail: usize,
    /// Where it opens with an alternation (`(?:(?P<nofail>publickey)|\S+)
    /// for `) and is one-pass after each choice: the segment from each
    /// alternative on, in priority order ([`Alternatives`]).
    alts: Option<Alternatives>,
    /// Where it is the pattern's last, opens with a choice (`X?`,
    /// `(?:A|B)`) and is not one-pass after each: each choice followed by
    /// the rest, cut on its own ([`Choices`]).
    choices: Option<Choices>,
    /// Whether it is the pattern's last.
    last: bool,
    /// Where every parse of it is forced byte by byte: its walk, taken
    /// before any engine ([`Walk`]).
    walk: Option<Walk>,
}

/// The last segment `(A1|A2|...) R` (`X? R` is `(X|) R`) where `Ai R` is
/// not one-pass (`<HOST>` follows: `(?: (?:invalid|authenticating) user
/// \S+|.*?)? <HOST>...`, whose address is also a name). The backtracker
/// tries every parse of `A1 R` before any of `A2 R`, so the segment's
/// first parse is the first parse of the first `Ai R` that has one, and
/// each `Ai R` is cut where its parse is decided (`A2 R` = ` <HOST>...`
/// reads its dotted quad directly), which the whole is not: the choice
/// hides where `<HOST>` starts. A choice found to have no parse only when
/// its segments' own engines said so: a fast path that gives up leaves the
/// segment to its engine.
#[derive(Debug)]
struct Choices {
    each: Box<[Box<[Segment]>]>,
}

/// How a run of a pattern's segments ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The first parse, its groups in the slots.
    Found,
    /// A segment's engine found no parse: nor has the pattern from there.
    NoParse,
    /// Not worked out (a lazy DFA gave up, an end out of place): the
    /// pattern's engine decides.
    Unsure,
}

/// A segment `(A1|A2|...) R` whose every `Ai R` is one-pass where the
/// whole is not (`publickey` is also an `\S+`): the backtracker tries `A1`
/// with every parse of `R` before `A2`, so the segment's first parse is the
/// parse of the first `Ai R` that matches, and each runs in one scan that
/// stops where it fails (one byte into `password` for `publickey`).
#[derive(Debug)]
struct Alternatives {
    /// `Ai R` for each `i`, with the slots its automaton writes and its
    /// [`Walk`] where it has one.
    each: Box<[(onepass::DFA, usize, Option<Walk>)]>,
}

/// A segment `U L <HOST> S`, `L` a literal, that the backtracker would walk
/// whole: `U` (`.*?`, `[^:]+`) runs to the end of the line and backs off,
/// `S` is tried after each place `L` matches. Every parse of the segment
/// splits at one of the positions `q` where `L` ends and `<HOST> S` matches
/// from `q` to the segment's end; a reverse DFA of `<HOST> S` from that end
/// lists them. Where exactly one is found, every parse splits there, so the
/// first parse of the segment is the first parse of `U` ending where `L`
/// starts followed by the first parse of `<HOST> S` from `q` ending at the
/// segment's end; each runs over its own text. Elsewhere (two candidates:
/// a user name holding ` from ADDR`, or a host name the suffix can also
/// read) the segment's engine decides.
#[derive(Debug)]
struct Split {
    /// `<HOST> S` reversed, anchored, every match.
    rev: hybrid::dfa::DFA,
    /// `L`.
    lit: Box<[u8]>,
    /// `L`'s searcher: where `L` occurs once only, that is the split.
    lit_finder: memchr::memmem::Finder<'static>,
    /// `U`, every match: where `<HOST> S` may start at several places,
    /// which of them `U L` can end at.
    fwd: hybrid::dfa::DFA,
    /// `U` followed by `\z`, run on the text up to `L` only: it finds the
    /// first parse of `U` that ends there.
    head: Engine,
    head_slots: usize,
    /// Where `U` has no groups but ones around all of it: their first
    /// slots (the head engine need not run; they span `U`).
    head_around: Option<Box<[usize]>>,
    /// Runs, and runs left to the segment's engine for want of one place
    /// for `<HOST>`: a pattern whose suffix reads like an address
    /// (`port 22 [preauth]` after a user name `.*?` may hold) leaves most
    /// runs to it, and stops trying past [`SPLIT_TRIAL`] runs.
    runs: AtomicUsize,
    misses: AtomicUsize,
    /// `<HOST> S`.
    tail: Engine,
    /// `tail` with the dotted quad read directly.
    tail_host: Option<Host>,
    tail_slots: usize,
}

/// A segment opening with `<HOST>` (ASCII form), for the dotted quad that
/// most addresses are: the address form is `<HOST>`'s first choice, the
/// quad its first parse there (every digit run as long as it goes, then a
/// `]` if one follows), so where what follows matches after it, that is the
/// first parse of the segment; elsewhere the segment runs on its engine.
#[derive(Debug)]
struct Host {
    /// The first slot of group `ip4`.
    ip4: usize,
    /// The first slot of group `ip6`.
    ip6: usize,
    /// The segment after `<HOST>`.
    rest: Engine,
    /// The slots `rest`'s automaton writes.
    rest_slots: usize,
    /// Where `rest` has no groups: whether it matches up to the segment's
    /// end is all there is to know, and a DFA walk answers it without the
    /// backtracker (which of its parses it is changes no group).
    rest_dfa: Option<hybrid::dfa::DFA>,
    /// Where `rest` is `X? T`, `X` walked ([`Walk`], its end decided by
    /// the bytes `T` starts with) and `T` without groups (`(?:\s+user=
    /// (?P<user>\S*))?` then the suffix, after pam's `rhost=<HOST>`): the
    /// walk of `X` and a DFA of `T`, every match. The backtracker tries `X`
    /// first, and `X` has one parse at most, so the first parse takes `X`
    /// where `T` matches after it, and leaves it out otherwise.
    opt_rest: Option<(Walk, hybrid::dfa::DFA)>,
}

#[derive(Debug)]
struct Caches {
    whole: EngineCache,
    /// Empty until the cuts are built.
    segments: Vec<SegmentCache>,
}

#[derive(Debug)]
struct SegmentCache {
    engine: EngineCache,
    alts: Vec<onepass::Cache>,
    ends: Option<hybrid::dfa::Cache>,
    host: Option<HostCache>,
    split: Option<SplitCache>,
    /// One list per choice, empty until the segment's first run.
    choices: Vec<Vec<SegmentCache>>,
}

#[derive(Debug)]
struct HostCache {
    rest: EngineCache,
    dfa: Option<hybrid::dfa::Cache>,
    opt_dfa: Option<hybrid::dfa::Cache>,
}

#[derive(Debug)]
struct SplitCache {
    rev: hybrid::dfa::Cache,
    fwd: hybrid::dfa::Cache,
    head: EngineCache,
    tail: EngineCache,
    tail_host: Option<HostCache>,
}

#[derive(Debug)]
struct EngineCache {
    onepass: Option<onepass::Cache>,
    backtrack: backtrack::Cache,
    pikevm: Option<pikevm::Cache>,
}

/// Slots a segment's automaton may write for the cut run to stay on the
/// stack; a pattern with a segment needing more runs as one.
const SEGMENT_SLOTS: usize = 64;

/// Most cuts tried in one pattern: each is decided on a DFA of the piece
/// since the cut before.
const MAX_CUTS: usize = 12;

/// Largest DFA a cut is decided on: the text before `<HOST>` makes a small
/// one.
const CUT_DFA_LIMIT: usize = 1 << 16;

impl Engine {
    /// `segment`: a segment's end is wanted even where it has no groups.
    fn new(nfa: NFA, hir: &Hir, segment: bool) -> Result<Engine, String> {
        let onepass = Engine::wants_onepass(hir, segment)
            .then(|| onepass_dfa(&nfa))
            .flatten();
        Engine::with_onepass(nfa, onepass)
    }

    /// As `meta` decides: one-pass only where there are groups to find
    /// and no Unicode word boundary (the one-pass DFA cannot run one).
    fn wants_onepass(hir: &Hir, segment: bool) -> bool {
        let props = hir.properties();
        (segment || props.explicit_captures_len() > 0) && !props.look_set().contains_word_unicode()
    }

    /// `onepass`: the one-pass DFA of `nfa`, already built by a caller that
    /// needed it to decide a cut (building it again was a second cost the
    /// same size, paid once per segment on each cut pattern).
    fn with_onepass(nfa: NFA, onepass: Option<onepass::DFA>) -> Result<Engine, String> {
        let backtrack = backtrack::Builder::new()
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let pikevm = pikevm::PikeVM::new_from_nfa(nfa).map_err(|e| e.to_string())?;
        Ok(Engine {
            onepass,
            backtrack,
            pikevm,
        })
    }

    fn cache(&self) -> EngineCache {
        EngineCache {
            onepass: self.onepass.as_ref().map(onepass::Cache::new),
            backtrack: backtrack::Cache::new(&self.backtrack),
            pikevm: None,
        }
    }

    /// The leftmost-first match anchored at the span's start, with groups.
    fn search(
        &self,
        c: &mut EngineCache,
        input: &Input<'_>,
        slots: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let found = if let (Some(dfa), Some(cache)) = (&self.onepass, c.onepass.as_mut()) {
            dfa.try_search_slots(cache, input, slots).ok().flatten()
        } else if input.get_span().len() <= self.backtrack.max_haystack_len() {
            self.backtrack
                .try_search_slots(&mut c.backtrack, input, slots)
                .ok()
                .flatten()
        } else {
            let cache = c.pikevm.get_or_insert_with(|| self.pikevm.create_cache());
            self.pikevm.search_slots(cache, input, slots)
        };
        found.is_some()
    }
}

fn onepass_dfa(nfa: &NFA) -> Option<onepass::DFA> {
    onepass::Builder::new()
        .configure(onepass::Config::new().size_limit(Some(1 << 20)))
        .build_from_nfa(nfa.clone())
        .ok()
}

impl Captor {
    /// The engines for `hir`, its group indices kept (a branch's groups have
    /// the whole pattern's indices). `utf8` as the search's `utf8_empty`.
    pub(super) fn new(hir: &Hir, utf8: bool, size_limit: usize) -> Result<Captor, String> {
        let nfa = compile(hir, utf8, size_limit)?;
        let whole = Engine::new(nfa.clone(), hir, false)?;
        let plan = whole.onepass.is_none().then(|| {
            let piece = Piece::new(hir.clone(), utf8, size_limit);
            let _ = piece.nfa.set(Some(nfa));
            if Engine::wants_onepass(hir, false) {
                // Built from the same automaton and found to be none.
                let _ = piece.onepass.set(None);
            }
            Plan {
                whole: Arc::new(piece),
            }
        });
        let anchored_start = hir
            .properties()
            .look_set_prefix()
            .contains(regex_syntax::hir::Look::Start);
        let engines = Arc::new(Engines {
            whole,
            anchored_start,
            segments: OnceLock::new(),
            plan,
            resolved: AtomicUsize::new(0),
        });
        let for_pool = Arc::clone(&engines);
        let create: CacheFn = Box::new(move || Caches {
            whole: for_pool.whole.cache(),
            segments: Vec::new(),
        });
        Ok(Captor {
            engines,
            caches: Pool::new(create),
        })
    }

    /// Whether [`direct`](Self::direct) runs without a DFA pass: a one-pass
    /// pattern anchored at the haystack's start.
    pub(super) fn is_direct(&self) -> bool {
        self.engines.whole.onepass.is_some() && self.engines.anchored_start
    }

    /// The leftmost-first match at or after `from` with its groups, for a
    /// pattern [`is_direct`](Self::is_direct): a match can only start the
    /// haystack, so the search anchored at `from` is the search.
    pub(super) fn direct(&self, hay: &str, from: usize, slots: &mut [Option<NonMaxUsize>]) -> bool {
        let Some(dfa) = &self.engines.whole.onepass else {
            return false;
        };
        let input = Input::new(hay).range(from..).anchored(Anchored::Yes);
        let mut caches = self.caches.get();
        let cache = caches.whole.onepass.as_mut().expect("built with the DFA");
        matches!(dfa.try_search_slots(cache, &input, slots), Ok(Some(_)))
    }

    /// How many segments it runs as (0: as one, or not cut yet).
    #[cfg(test)]
    pub(super) fn segment_count(&self) -> usize {
        self.engines.segments.get().map_or(0, |s| s.len())
    }

    /// How many segments find `<HOST>` from the match's end, read a suffix
    /// without groups on a DFA, and run for their end only, those in the
    /// lists of [`Choices`] included.
    #[cfg(test)]
    pub(super) fn fast_paths(&self) -> (usize, usize, usize) {
        fn count(s: &[Segment]) -> (usize, usize, usize) {
            let dfa_rest = |h: &Option<Host>| h.as_ref().is_some_and(|h| h.rest_dfa.is_some());
            let own = (
                s.iter().filter(|s| s.split.is_some()).count(),
                s.iter()
                    .filter(|s| {
                        dfa_rest(&s.host)
                            || s.split.as_ref().is_some_and(|p| dfa_rest(&p.tail_host))
                    })
                    .count(),
                s.iter().filter(|s| s.ends.is_some()).count(),
            );
            s.iter()
                .filter_map(|s| s.choices.as_ref())
                .flat_map(|c| c.each.iter())
                .map(|l| count(l))
                .fold(own, |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
        }
        count(self.engines.segments.get().map_or(&[][..], |s| s))
    }

    /// How many segments try each choice of their opening alternation or
    /// `X?` cut on its own ([`Choices`]), and how many lists those hold.
    #[cfg(test)]
    pub(super) fn choices(&self) -> (usize, usize) {
        fn count(s: &[Segment]) -> (usize, usize) {
            s.iter()
                .filter_map(|s| s.choices.as_ref())
                .map(|c| {
                    c.each
                        .iter()
                        .map(|l| count(l))
                        .fold((1, c.each.len()), |a, b| (a.0 + b.0, a.1 + b.1))
                })
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        }
        count(self.engines.segments.get().map_or(&[][..], |s| s))
    }

    /// How many segments run each choice of their opening alternation on
    /// its own one-pass DFA, and how many find groups ending before a
    /// fixed tail on a DFA.
    #[cfg(test)]
    pub(super) fn alternatives_and_tails(&self) -> (usize, usize) {
        let s = self.engines.segments.get().map_or(&[][..], |s| s);
        (
            s.iter().filter(|s| s.alts.is_some()).count(),
            s.iter()
                .filter(|s| s.ends.is_some() && s.around_tail > 0 && !s.around.is_empty())
                .count(),
        )
    }

    /// Whether a segment finds its groups between a head and a tail of
    /// fixed length on a DFA.
    #[cfg(test)]
    pub(super) fn ends_inside_fixed(&self) -> bool {
        self.engines.segments.get().is_some_and(|s| {
            s.iter().any(|s| {
                s.ends.is_some() && s.around_head > 0 && s.around_tail > 0 && !s.around.is_empty()
            })
        })
    }

    /// How many segments and choices of an opening alternation are walked
    /// ([`Walk`]), those in the lists of [`Choices`] included.
    #[cfg(test)]
    pub(super) fn walks(&self) -> usize {
        fn count(s: &[Segment]) -> usize {
            s.iter()
                .map(|s| {
                    usize::from(s.walk.is_some())
                        + s.alts
                            .as_ref()
                            .map_or(0, |a| a.each.iter().filter(|(.., w)| w.is_some()).count())
                        + s.choices
                            .as_ref()
                            .map_or(0, |c| c.each.iter().map(|l| count(l)).sum())
                })
                .sum()
        }
        count(self.engines.segments.get().map_or(&[][..], |s| s))
    }

    /// Whether a segment reads what follows `<HOST>` as `X? T` ([`Host`]).
    #[cfg(test)]
    pub(super) fn walks_optional_rest(&self) -> bool {
        self.engines.segments.get().is_some_and(|s| {
            s.iter()
                .any(|s| s.host.as_ref().is_some_and(|h| h.opt_rest.is_some()))
        })
    }

    /// Whether a segment reads `<HOST>`'s dotted quad itself.
    #[cfg(test)]
    pub(super) fn reads_quads(&self) -> bool {
        self.engines
            .segments
            .get()
            .is_some_and(|s| s.iter().any(|s| s.host.is_some()))
    }

    /// The groups of the match a DFA found at `start..end`: the pattern run
    /// anchored at `start` over that span only, segment by segment where it
    /// is cut.
    pub(super) fn resolve(
        &self,
        hay: &str,
        start: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let e = &self.engines;
        let segments = e.segments();
        let mut caches = self.caches.get();
        let c = &mut *caches;
        if !segments.is_empty()
            && by_segments(segments, &mut c.segments, hay, start, end, slots) == Outcome::Found
        {
            return true;
        }
        let input = Input::new(hay).span(start..end).anchored(Anchored::Yes);
        e.whole.search(&mut c.whole, &input, slots)
    }
}

/// The caches of `segments`' engines.
fn segment_caches(segments: &[Segment]) -> Vec<SegmentCache> {
    segments
        .iter()
        .map(|s| SegmentCache {
            engine: s.engine.cache(),
            alts: s.alts.as_ref().map_or_else(Vec::new, |a| {
                a.each
                    .iter()
                    .map(|(d, ..)| onepass::Cache::new(d))
                    .collect()
            }),
            ends: s.ends.as_ref().map(hybrid::dfa::Cache::new),
            host: s.host.as_ref().map(Host::cache),
            split: s.split.as_ref().map(|p| SplitCache {
                rev: hybrid::dfa::Cache::new(&p.rev),
                fwd: hybrid::dfa::Cache::new(&p.fwd),
                head: p.head.cache(),
                tail: p.tail.cache(),
                tail_host: p.tail_host.as_ref().map(Host::cache),
            }),
            choices: Vec::new(),
        })
        .collect()
}

/// Each segment from where the one before ended, over `start..end`, the
/// last ending at `end`: [`Outcome::Found`] with the groups in `slots`;
/// [`Outcome::NoParse`] only where a segment's engine or walk found
/// nothing, which the cut makes the whole's answer.
fn by_segments(
    segments: &[Segment],
    caches: &mut Vec<SegmentCache>,
    hay: &str,
    start: usize,
    end: usize,
    slots: &mut [Option<NonMaxUsize>],
) -> Outcome {
    if caches.len() != segments.len() {
        // This cache's first run since the cuts were built.
        *caches = segment_caches(segments);
    }
    slots.fill(None);
    let mut at = start;
    for (seg, cache) in segments.iter().zip(caches.iter_mut()) {
        at = match seg.search(cache, hay, at, end, slots) {
            Ok(to) => to,
            Err(outcome) => return outcome,
        };
    }
    if at != end || slots.len() < 2 {
        return Outcome::Unsure;
    }
    slots[0] = NonMaxUsize::new(start);
    slots[1] = NonMaxUsize::new(end);
    Outcome::Found
}

/// Slots [`with_unset`] clears without a call: most segments' automata
/// write fewer.
const SMALL_SLOTS: usize = 32;

/// Runs `f` on `n` unset slots on the stack (at most [`SEGMENT_SLOTS`]),
/// in a buffer not much larger: a buffer of [`SEGMENT_SLOTS`] cost a
/// `memset` call per segment run through it.
fn with_unset<R>(n: usize, f: impl FnOnce(&mut [Option<NonMaxUsize>]) -> R) -> R {
    if n <= SMALL_SLOTS {
        f(&mut [None; SMALL_SLOTS][..n])
    } else {
        f(&mut [None; SEGMENT_SLOTS][..n.min(SEGMENT_SLOTS)])
    }
}

impl Segment {
    /// The segment's first parse from `at` within `..end`: its groups in
    /// `slots` (in its own [`Segment::slots`]: the segments before keep
    /// theirs), its end returned; `Err` with what the run comes to where
    /// there is none or it is not worked out. Its own slots are unset on
    /// entry (the caller's are cleared once for all segments), so the
    /// fast paths that set only their own groups (a walk without a choice
    /// holding one, `<HOST>` followed by a suffix without groups, `U L
    /// <HOST> S` whose `U` is all groups or none) write them straight
    /// there; the others run into a buffer of the slots the segment's
    /// automaton writes, and its groups are copied over. Clearing and
    /// copying a buffer of [`SEGMENT_SLOTS`] per segment cost more than
    /// many a segment's own run.
    fn search(
        &self,
        cache: &mut SegmentCache,
        hay: &str,
        at: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> Result<usize, Outcome> {
        let Some(mine) = slots.get_mut(..self.slot_len) else {
            return Err(Outcome::Unsure);
        };
        if let Some(w) = self.walk.as_ref().filter(|w| !w.clears) {
            // Exact: no parse of the segment where the walk fails.
            return match w.run(hay, at, end, mine) {
                true => mine[1].map(NonMaxUsize::get).ok_or(Outcome::Unsure),
                false => Err(Outcome::NoParse),
            };
        }
        if let (Some(h), Some(c)) = (&self.host, cache.host.as_mut())
            && let Some(to) = h.search_plain(c, hay, at, end, mine)
        {
            return Ok(to);
        }
        if let (Some(p), Some(c)) = (&self.split, cache.split.as_mut())
            && p.search(c, hay, at, end, mine, self.slots.clone())
        {
            return Ok(end);
        }
        self.search_apart(cache, hay, at, end, slots)
    }

    /// [`Segment::search`] on the paths that may set slots outside the
    /// segment's own (the automaton's others, which it numbers but never
    /// sets, cleared): into a buffer, the segment's groups copied over.
    fn search_apart(
        &self,
        cache: &mut SegmentCache,
        hay: &str,
        at: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> Result<usize, Outcome> {
        with_unset(self.slot_len, |own| {
            let found = if let Some(w) = &self.walk {
                // Exact, as above.
                if !w.run(hay, at, end, own) {
                    return Err(Outcome::NoParse);
                }
                true
            } else if let Some(ch) = &self.choices {
                match ch.search(&mut cache.choices, hay, at, end, own) {
                    Outcome::Found => true,
                    Outcome::NoParse => return Err(Outcome::NoParse),
                    Outcome::Unsure => false,
                }
            } else {
                false
            };
            let ends = self.ends.as_ref().zip(cache.ends.as_mut());
            // `search` tried the host where what follows has no groups.
            let quad = self.host.as_ref().filter(|h| h.rest_dfa.is_none());
            let found = found
                || ends.is_some_and(|(d, c)| self.end_only(d, c, hay, at, end, own))
                || self
                    .alts
                    .as_ref()
                    .is_some_and(|a| a.search(&mut cache.alts, hay, at, end, own))
                || quad
                    .zip(cache.host.as_mut())
                    .is_some_and(|(h, c)| h.search(c, hay, at, end, own));
            if !found {
                let input = Input::new(hay).span(at..end).anchored(Anchored::Yes);
                if !self.engine.search(&mut cache.engine, &input, own) {
                    return Err(Outcome::NoParse);
                }
            }
            let to = own.get(1).copied().flatten().ok_or(Outcome::Unsure)?;
            if let (Some(out), Some(mine)) = (
                slots.get_mut(self.slots.clone()),
                own.get(self.slots.clone()),
            ) {
                out.copy_from_slice(mine);
            }
            Ok(to.get())
        })
    }
}

impl Choices {
    /// The segment's first parse from `at` to `end` ([`Choices`]).
    fn search(
        &self,
        caches: &mut Vec<Vec<SegmentCache>>,
        hay: &str,
        at: usize,
        end: usize,
        own: &mut [Option<NonMaxUsize>],
    ) -> Outcome {
        if caches.len() != self.each.len() {
            caches.resize_with(self.each.len(), Vec::new);
        }
        for (choice, cache) in self.each.iter().zip(caches.iter_mut()) {
            match by_segments(choice, cache, hay, at, end, own) {
                Outcome::NoParse => continue,
                found_or_unsure => return found_or_unsure,
            }
        }
        own.fill(None);
        Outcome::NoParse
    }
}

impl Engines {
    /// The segments to run this match as: none before the
    /// [`CUT_AFTER`]-th match, the cuts built then.
    fn segments(&self) -> &[Segment] {
        if let Some(s) = self.segments.get() {
            return s;
        }
        let Some(plan) = &self.plan else {
            return &[];
        };
        if self.resolved.fetch_add(1, Ordering::Relaxed) < CUT_AFTER {
            return &[];
        }
        self.segments
            .get_or_init(|| cut(plan, &Pieces::new(plan)).unwrap_or_default())
    }
}

/// `plan`'s pattern cut ([`segments`]), its pieces built from `pieces`.
fn cut(plan: &Plan, pieces: &Pieces) -> Option<Box<[Segment]>> {
    let ascii = !plan.whole.utf8;
    let host = ascii.then(|| HOST.as_ref()).flatten();
    segments(&plan.whole.hir, pieces, ascii, host, 0)
}

/// `hir`'s automaton, its group indices kept.
fn compile(hir: &Hir, utf8: bool, size_limit: usize) -> Result<NFA, String> {
    thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(utf8)
                .shrink(false)
                .nfa_size_limit(Some(size_limit)),
        )
        .build_from_hir(hir)
        .map_err(|e| e.to_string())
}

impl Host {
    fn cache(&self) -> HostCache {
        HostCache {
            rest: self.rest.cache(),
            dfa: self.rest_dfa.as_ref().map(hybrid::dfa::Cache::new),
            opt_dfa: self
                .opt_rest
                .as_ref()
                .map(|(_, d)| hybrid::dfa::Cache::new(d)),
        }
    }

    /// [`Host::search`] where what follows `<HOST>` has no groups
    /// ([`Host::rest_dfa`]): only `ip4` is set, straight into `slots`,
    /// whose other `<HOST>` groups are unset already; its end (`end`)
    /// returned. `None`: not this way (nothing written).
    fn search_plain(
        &self,
        c: &mut HostCache,
        hay: &str,
        at: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> Option<usize> {
        let (dfa, cache) = self.rest_dfa.as_ref().zip(c.dfa.as_mut())?;
        let b = hay.as_bytes().get(..end)?;
        let (addr, group) = self.address(b, at)?;
        let after = addr + usize::from(b.get(addr) == Some(&b']'));
        let input = Input::new(hay).span(after..end).anchored(Anchored::Yes);
        let pair = slots.get_mut(group..group + 2)?;
        // The segment is the pattern's last: it ends at `end`.
        if !matches_to_end(dfa, cache, &input) {
            return None;
        }
        pair.copy_from_slice(&[NonMaxUsize::new(at), NonMaxUsize::new(addr)]);
        Some(end)
    }

    /// `<HOST>`'s address at `at` in `b` as the backtracker first reads
    /// it, where that is decided: its end and the first slot of the group
    /// it sets. A dotted quad (`ip4`, the first choice); else, where no
    /// quad can start (its first digits are not followed by a dot) and
    /// `::ffff:` does not, the IPv6 form (`ip6`, [`ipv6_first`]). 2.4% of
    /// auth-100k's lines hold one, and each cost the segment's engine
    /// some 5,000 instructions.
    fn address(&self, b: &[u8], at: usize) -> Option<(usize, usize)> {
        if let Some(quad) = dotted_quad(b, at) {
            return Some((quad, self.ip4));
        }
        let rest = b.get(at..)?;
        let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let quad_may_start = (1..=3).contains(&digits) && rest.get(digits) == Some(&b'.');
        if quad_may_start || rest.starts_with(b"::f") {
            return None;
        }
        Some((ipv6_first(b, at)?, self.ip6))
    }

    /// The segment's first parse where the address is a dotted quad at
    /// `at` and the rest matches after it: its groups in `own`, its end in
    /// `own[1]`. `false`: the segment's engine decides.
    fn search(
        &self,
        c: &mut HostCache,
        hay: &str,
        at: usize,
        end: usize,
        own: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let Some((quad, group)) = self.address(&hay.as_bytes()[..end], at) else {
            return false;
        };
        let after = quad + usize::from(hay.as_bytes()[..end].get(quad) == Some(&b']'));
        let input = Input::new(hay).span(after..end).anchored(Anchored::Yes);
        if own.len() <= group + 1 {
            return false;
        }
        let Some(rest) = own.get_mut(..self.rest_slots) else {
            return false;
        };
        let to = if let (Some(dfa), Some(cache)) = (&self.rest_dfa, c.dfa.as_mut()) {
            // The segment is the pattern's last: it ends at `end`.
            if !matches_to_end(dfa, cache, &input) {
                return false;
            }
            rest.fill(None);
            NonMaxUsize::new(end)
        } else if let (Some((walk, dfa)), Some(cache)) = (&self.opt_rest, c.opt_dfa.as_mut()) {
            rest.fill(None);
            let with_x = walk.run(hay, after, end, rest)
                && rest[1].is_some_and(|x| {
                    let tail = Input::new(hay).span(x.get()..end).anchored(Anchored::Yes);
                    matches_to_end(dfa, cache, &tail)
                });
            if !with_x {
                rest.fill(None);
                if !matches_to_end(dfa, cache, &input) {
                    return false;
                }
            }
            NonMaxUsize::new(end)
        } else {
            if !self.rest.search(&mut c.rest, &input, rest) {
                return false;
            }
            rest[1]
        };
        own[group] = NonMaxUsize::new(at);
        own[group + 1] = NonMaxUsize::new(quad);
        own[0] = NonMaxUsize::new(at);
        own[1] = to;
        true
    }
}

/// Whether some match of `dfa` (anchored, every match) spans `input`'s
/// span exactly; `false` too where the lazy DFA gives up.
fn matches_to_end(
    dfa: &hybrid::dfa::DFA,
    cache: &mut hybrid::dfa::Cache,
    input: &Input<'_>,
) -> bool {
    let Ok(mut sid) = dfa.start_state_forward(cache, input) else {
        return false;
    };
    let hay = input.haystack();
    for &b in &hay[input.get_span()] {
        // Most steps go from a state that is neither a match nor a start
        // to another, already computed: one lookup and one test, where
        // the checked step's `Result` and its dead and quit tests cost
        // twice that (some 20 instructions a byte).
        if !sid.is_tagged() {
            let next = dfa.next_state_untagged(cache, sid, b);
            if !next.is_tagged() {
                sid = next;
                continue;
            }
        }
        let Ok(next) = dfa.next_state(cache, sid, b) else {
            return false;
        };
        if next.is_dead() || next.is_quit() {
            return false;
        }
        sid = next;
    }
    // A match shows one byte late: after the byte past the end (or the
    // end of the text).
    let last = match hay.get(input.end()) {
        Some(&b) => dfa.next_state(cache, sid, b),
        None => dfa.next_eoi_state(cache, sid),
    };
    last.is_ok_and(|s| s.is_match())
}

impl Segment {
    /// A segment without groups, run on its DFA ([`Segment::ends`]): its
    /// end in `own[1]`; `false` where the DFA gave up.
    fn end_only(
        &self,
        dfa: &hybrid::dfa::DFA,
        cache: &mut hybrid::dfa::Cache,
        hay: &str,
        at: usize,
        end: usize,
        own: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let input = Input::new(hay).span(at..end).anchored(Anchored::Yes);
        let to = if self.last {
            matches_to_end(dfa, cache, &input).then_some(end)
        } else {
            dfa.try_search_fwd(cache, &input)
                .ok()
                .flatten()
                .map(|m| m.offset())
        };
        let Some(to) = to else {
            return false;
        };
        if own.len() < 2 {
            return false;
        }
        own.fill(None);
        own[0] = NonMaxUsize::new(at);
        own[1] = NonMaxUsize::new(to);
        let groups_start = at + self.around_head;
        let Some(groups_end) = to
            .checked_sub(self.around_tail)
            .filter(|&e| e >= groups_start)
        else {
            return false;
        };
        for &g in &self.around {
            if let Some(pair) = own.get_mut(g..g + 2) {
                pair.copy_from_slice(&[
                    NonMaxUsize::new(groups_start),
                    NonMaxUsize::new(groups_end),
                ]);
            }
        }
        true
    }
}

impl Alternatives {
    /// The segment's first parse from `at` ([`Alternatives`]): its groups in
    /// `own`, its end in `own[1]`; `false` where no `Ai R` matches.
    fn search(
        &self,
        caches: &mut [onepass::Cache],
        hay: &str,
        at: usize,
        end: usize,
        own: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let input = Input::new(hay).span(at..end).anchored(Anchored::Yes);
        for ((dfa, slot_len, walk), cache) in self.each.iter().zip(caches.iter_mut()) {
            own.fill(None);
            if let Some(w) = walk {
                // Exact: no parse of this choice where it fails.
                if w.run(hay, at, end, own) {
                    return true;
                }
                continue;
            }
            let Some(mine) = own.get_mut(..*slot_len) else {
                return false;
            };
            if let Ok(Some(_)) = dfa.try_search_slots(cache, &input, mine) {
                return true;
            }
        }
        own.fill(None);
        false
    }
}

impl Split {
    /// The segment's first parse where `<HOST>`'s start is decided ([`Split`]):
    /// its groups (those in `range`, the segment's own) in `slots`, unset
    /// there on entry; it ends at `end`. `false`: the segment's engine
    /// decides.
    fn search(
        &self,
        c: &mut SplitCache,
        hay: &str,
        at: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
        range: std::ops::Range<usize>,
    ) -> bool {
        let runs = self.runs.fetch_add(1, Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        if runs > SPLIT_TRIAL && misses * 2 > runs {
            return false;
        }
        let Some(q) = self.host_start(c, hay, at, end) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let u_end = q - self.lit.len();
        // The two parts' groups are apart: each automaton numbers the
        // other's but never sets them. `U`'s are set after `<HOST> S`'s,
        // where those left them unset.
        let Some(around) = &self.head_around else {
            return with_unset(self.head_slots, |head| {
                let Some(before) = hay.get(..u_end) else {
                    return false;
                };
                let input = Input::new(before).span(at..u_end).anchored(Anchored::Yes);
                if !self.head.search(&mut c.head, &input, head)
                    || !self.tail_search(c, hay, q, end, slots, range.clone())
                {
                    return false;
                }
                for i in range {
                    if let (Some(slot @ None), Some(&mine)) = (slots.get_mut(i), head.get(i)) {
                        *slot = mine;
                    }
                }
                true
            });
        };
        if !self.tail_search(c, hay, q, end, slots, range) {
            return false;
        }
        // `U` matches up to `u_end`: that is where the segment splits.
        for &g in around.iter() {
            for (i, to) in [(g, at), (g + 1, u_end)] {
                if let Some(slot @ None) = slots.get_mut(i) {
                    *slot = NonMaxUsize::new(to);
                }
            }
        }
        true
    }

    /// `<HOST> S` from `q` to `end`: its groups (those in `range`) in
    /// `slots`, unset there on entry.
    fn tail_search(
        &self,
        c: &mut SplitCache,
        hay: &str,
        q: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
        range: std::ops::Range<usize>,
    ) -> bool {
        let quad = self.tail_host.as_ref().zip(c.tail_host.as_mut());
        if let Some((h, hc)) = quad
            && h.search_plain(hc, hay, q, end, slots).is_some()
        {
            return true;
        }
        with_unset(self.tail_slots, |tail| {
            // The search above was this where `S` has no groups.
            let quad = self
                .tail_host
                .as_ref()
                .filter(|h| h.rest_dfa.is_none())
                .zip(c.tail_host.as_mut());
            if !quad.is_some_and(|(h, c)| h.search(c, hay, q, end, tail)) {
                let input = Input::new(hay).span(q..end).anchored(Anchored::Yes);
                if !self.tail.search(&mut c.tail, &input, tail) {
                    return false;
                }
            }
            if tail.get(1).copied().flatten().map(NonMaxUsize::get) != Some(end) {
                return false;
            }
            for i in range {
                if let (Some(slot), Some(&mine)) = (slots.get_mut(i), tail.get(i)) {
                    *slot = mine;
                }
            }
            true
        })
    }

    /// Where `<HOST>` starts: the one place after `L` from which `<HOST> S`
    /// matches up to `end` and where `U L` (from `at`) can end.
    fn host_start(&self, c: &mut SplitCache, hay: &str, at: usize, end: usize) -> Option<usize> {
        if let Some(q) = self.only_literal(hay, at, end) {
            return Some(q);
        }
        let mut starts = [0; MAX_STARTS];
        match self.host_starts(&mut c.rev, hay, at, end, &mut starts)? {
            0 => None,
            1 => Some(starts[0]),
            // Those that `U L` cannot end at are no split; one left is the
            // split.
            n => self.only_head_end(&mut c.fwd, hay, at, &starts[..n]),
        }
    }

    /// The end of `L` where it occurs once only in `at..end`. Every parse
    /// splits where an `L` ends, and the search found one (from where the
    /// segment before ended): with one `L`, every parse splits there. Two
    /// `memmem` searches cost a fraction of the reverse DFA's walk of the
    /// whole segment (`root from 192.0.2.1 port 22 ssh2`), which stops at
    /// nearly every byte (a host name can start almost anywhere).
    fn only_literal(&self, hay: &str, at: usize, end: usize) -> Option<usize> {
        let b = hay.as_bytes().get(at..end)?;
        let i = self.lit_finder.find(b)?;
        // Occurrences may overlap (`  ` in `   `): look again one byte on.
        if self.lit_finder.find(&b[i + 1..]).is_some() {
            return None;
        }
        Some(at + i + self.lit.len())
    }

    /// The one of `starts` (last first) where `U L` ends, from `at`;
    /// `None` where none or several do, or the DFA gave up.
    fn only_head_end(
        &self,
        cache: &mut hybrid::dfa::Cache,
        hay: &str,
        at: usize,
        starts: &[usize],
    ) -> Option<usize> {
        let lit = self.lit.len();
        let last = starts.first()? - lit;
        let input = Input::new(hay).span(at..last).anchored(Anchored::Yes);
        let mut sid = self.fwd.start_state_forward(cache, &input).ok()?;
        let b = hay.as_bytes();
        let mut found = None;
        for p in at..=last {
            // A match shows one byte late: after the byte at `p`, that `U`
            // matches up to `p`.
            sid = self.fwd.next_state(cache, sid, *b.get(p)?).ok()?;
            if sid.is_dead() || sid.is_quit() {
                break;
            }
            if sid.is_match() && starts.contains(&(p + lit)) {
                if found.is_some() {
                    return None;
                }
                found = Some(p + lit);
            }
        }
        found
    }

    /// The positions after `L` from which `<HOST> S` matches up to `end`,
    /// last first, into `out`: how many; `None` where there are more than
    /// it holds or the DFA gave up.
    fn host_starts(
        &self,
        cache: &mut hybrid::dfa::Cache,
        hay: &str,
        at: usize,
        end: usize,
        out: &mut [usize; MAX_STARTS],
    ) -> Option<usize> {
        let input = Input::new(hay).span(at..end).anchored(Anchored::Yes);
        let mut sid = self.rev.start_state_reverse(cache, &input).ok()?;
        let b = hay.as_bytes();
        let lit = &*self.lit;
        let mut n = 0;
        let mut i = end;
        while i > at {
            i -= 1;
            sid = self.rev.next_state(cache, sid, b[i]).ok()?;
            if sid.is_tagged() {
                if sid.is_dead() {
                    break;
                }
                if sid.is_quit() {
                    return None;
                }
                // A match shows one byte late: `<HOST> S` matches from
                // `i + 1`.
                let q = i + 1;
                if sid.is_match() && q >= at + lit.len() && b.get(q - lit.len()..q) == Some(lit) {
                    *out.get_mut(n)? = q;
                    n += 1;
                }
            }
        }
        Some(n)
    }
}

/// A segment whose parse every byte decides, walked step by step instead of
/// run on an automaton: literals compared, classes (and runs of one class)
/// read byte by byte, a choice taken by its first byte, group bounds noted
/// as they are passed. A run stops only where what follows cannot start
/// with a byte it takes, and the choices of an alternation start with
/// bytes no other starts with, so the text allows one parse at most and
/// the walk finds it or none. `^(?P<nofail>Received (?P<mlfforget>disconnect))
/// from ` (one-pass) cost the one-pass DFA's search some 1,100
/// instructions, set-up and per-byte dispatch; the walk a few dozen per
/// step.
#[derive(Debug)]
struct Walk {
    steps: Box<[Step]>,
    /// Whether a group lies inside one choice of an alternation: the slots
    /// are cleared first, as another choice leaves it unset.
    clears: bool,
}

/// A set of bytes.
type ByteSet = [bool; 256];

#[derive(Debug)]
enum Step {
    /// `\A`.
    Start,
    Lit(Box<[u8]>),
    /// From `min` to `max` bytes of the set, as many as there are.
    Run {
        set: Box<ByteSet>,
        min: usize,
        max: usize,
    },
    /// A slot set to where the walk is.
    Slot(usize),
    /// Choices, each with the bytes it may start with (none shared).
    Alt(Box<[Choice]>),
}

/// A choice of a [`Step::Alt`]: the bytes it may start with, its steps.
type Choice = (Box<ByteSet>, Box<[Step]>);

impl Walk {
    /// The walk of the pattern `items`, where every parse is forced as
    /// [`Walk`] says, its groups' slots below `slot_len`.
    fn new(items: &[Hir], slot_len: usize) -> Option<Walk> {
        Walk::following(items, slot_len, None)
    }

    /// The same, followed by what starts with a byte of `follow` (or by
    /// the end of the text): a run at its end stops where that starts.
    fn following(items: &[Hir], slot_len: usize, follow: Option<&ByteSet>) -> Option<Walk> {
        let mut steps = Vec::new();
        for h in items {
            lower(h, &mut steps)?;
        }
        forced(&mut steps, follow)?;
        let (mut top, mut clears) = (0, false);
        slots_in(&steps, false, &mut top, &mut clears);
        (top < slot_len).then(|| Walk {
            steps: steps.into_boxed_slice(),
            clears,
        })
    }

    /// The parse from `at` within `..end`: its groups in `own`, its end in
    /// `own[1]`; `false` where the text has none.
    fn run(&self, hay: &str, at: usize, end: usize, own: &mut [Option<NonMaxUsize>]) -> bool {
        let Some(b) = hay.as_bytes().get(..end) else {
            return false;
        };
        if own.len() < 2 {
            return false;
        }
        if self.clears {
            own.fill(None);
        }
        let Some(to) = walk(&self.steps, b, at, own) else {
            return false;
        };
        own[0] = NonMaxUsize::new(at);
        own[1] = NonMaxUsize::new(to);
        true
    }
}

/// `steps` over `b` from `at`: where they end.
fn walk(steps: &[Step], b: &[u8], at: usize, own: &mut [Option<NonMaxUsize>]) -> Option<usize> {
    let mut pos = at;
    for s in steps {
        match s {
            Step::Start => {
                if pos != 0 {
                    return None;
                }
            }
            Step::Lit(l) => {
                if !b.get(pos..)?.starts_with(l) {
                    return None;
                }
                pos += l.len();
            }
            Step::Run { set, min, max } => {
                let n = b
                    .get(pos..)?
                    .iter()
                    .take(*max)
                    .take_while(|&&c| set[usize::from(c)])
                    .count();
                if n < *min {
                    return None;
                }
                pos += n;
            }
            Step::Slot(i) => {
                if let Some(s) = own.get_mut(*i) {
                    *s = NonMaxUsize::new(pos);
                }
            }
            Step::Alt(choices) => {
                let c = usize::from(*b.get(pos)?);
                let (_, choice) = choices.iter().find(|(first, _)| first[c])?;
                pos = walk(choice, b, pos, own)?;
            }
        }
    }
    Some(pos)
}

/// `h` as steps, where it is made of the items a walk takes (byte classes,
/// literals, repetitions of one byte or class, groups, alternations, `\A`).
fn lower(h: &Hir, out: &mut Vec<Step>) -> Option<()> {
    match h.kind() {
        HirKind::Empty => {}
        HirKind::Literal(l) => out.push(Step::Lit(l.0.clone())),
        HirKind::Class(_) => out.push(Step::Run {
            set: one_byte_set(h)?,
            min: 1,
            max: 1,
        }),
        HirKind::Look(Look::Start) => out.push(Step::Start),
        HirKind::Look(_) => return None,
        HirKind::Repetition(r) => out.push(Step::Run {
            set: one_byte_set(&r.sub)?,
            min: usize::try_from(r.min).ok()?,
            max: r
                .max
                .map_or(Some(usize::MAX), |m| usize::try_from(m).ok())?,
        }),
        HirKind::Capture(c) => {
            let i = usize::try_from(c.index).ok()? * 2;
            out.push(Step::Slot(i));
            lower(&c.sub, out)?;
            out.push(Step::Slot(i + 1));
        }
        HirKind::Concat(v) => {
            for x in v {
                lower(x, out)?;
            }
        }
        HirKind::Alternation(v) => {
            let choices = v
                .iter()
                .map(|c| {
                    let mut s = Vec::new();
                    lower(c, &mut s)?;
                    Some((Box::new([false; 256]), s.into_boxed_slice()))
                })
                .collect::<Option<Box<[_]>>>()?;
            out.push(Step::Alt(choices));
        }
    }
    Some(())
}

/// The bytes `h` matches, where it matches one byte (a class of ASCII or
/// byte ranges, a literal of one byte).
fn one_byte_set(h: &Hir) -> Option<Box<ByteSet>> {
    let mut set = Box::new([false; 256]);
    match h.kind() {
        HirKind::Literal(l) if l.0.len() == 1 => set[usize::from(l.0[0])] = true,
        HirKind::Class(regex_syntax::hir::Class::Bytes(c)) => {
            for r in c.iter() {
                set[usize::from(r.start())..=usize::from(r.end())].fill(true);
            }
        }
        HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => {
            for r in c.iter() {
                let (lo, hi) = (u8::try_from(r.start()).ok()?, u8::try_from(r.end()).ok()?);
                if !hi.is_ascii() {
                    return None;
                }
                set[usize::from(lo)..=usize::from(hi)].fill(true);
            }
        }
        _ => return None,
    }
    Some(set)
}

/// Whether `steps` can match no bytes.
fn can_be_empty(steps: &[Step]) -> bool {
    steps.iter().all(|s| match s {
        Step::Start | Step::Slot(_) => true,
        Step::Lit(l) => l.is_empty(),
        Step::Run { min, .. } => *min == 0,
        Step::Alt(c) => c.iter().any(|(_, s)| can_be_empty(s)),
    })
}

/// The bytes a match of `steps` may start with, `follow` being those of
/// what comes after; `None` where that is needed and unknown.
fn first(steps: &[Step], follow: Option<&ByteSet>) -> Option<ByteSet> {
    let mut acc = [false; 256];
    let or = |acc: &mut ByteSet, s: &ByteSet| {
        acc.iter_mut().zip(s).for_each(|(a, &b)| *a |= b);
    };
    for (i, s) in steps.iter().enumerate() {
        match s {
            Step::Start | Step::Slot(_) => {}
            Step::Lit(l) => {
                if let Some(&b) = l.first() {
                    acc[usize::from(b)] = true;
                    return Some(acc);
                }
            }
            Step::Run { set, min, .. } => {
                or(&mut acc, set);
                if *min > 0 {
                    return Some(acc);
                }
            }
            Step::Alt(choices) => {
                let after = first(&steps[i + 1..], follow);
                for (_, c) in choices.iter() {
                    or(&mut acc, &first(c, after.as_ref())?);
                }
                if !choices.iter().any(|(_, c)| can_be_empty(c)) {
                    return Some(acc);
                }
            }
        }
    }
    or(&mut acc, follow?);
    Some(acc)
}

/// Checks that every parse of `steps` is forced (`follow`: the bytes what
/// comes after may start with), and notes each choice's first bytes.
fn forced(steps: &mut [Step], follow: Option<&ByteSet>) -> Option<()> {
    for i in 0..steps.len() {
        let (head, rest) = steps.split_at_mut(i + 1);
        let after = first(rest, follow);
        match &mut head[i] {
            Step::Run { set, min, max } if min != max => {
                let after = after?;
                if set.iter().zip(after.iter()).any(|(&a, &b)| a && b) {
                    return None;
                }
            }
            Step::Alt(choices) => {
                let mut seen = [false; 256];
                for (first_bytes, c) in choices.iter_mut() {
                    if can_be_empty(c) {
                        return None;
                    }
                    forced(c, after.as_ref())?;
                    let f = first(c, None)?;
                    if f.iter().zip(seen.iter()).any(|(&a, &b)| a && b) {
                        return None;
                    }
                    seen.iter_mut().zip(f.iter()).for_each(|(s, &b)| *s |= b);
                    **first_bytes = f;
                }
            }
            _ => {}
        }
    }
    Some(())
}

/// The highest slot `steps` set, into `top`, and whether one is set inside
/// a choice, into `clears`.
fn slots_in(steps: &[Step], in_choice: bool, top: &mut usize, clears: &mut bool) {
    for s in steps {
        match s {
            Step::Slot(i) => {
                *top = (*top).max(*i);
                *clears |= in_choice;
            }
            Step::Alt(c) => c.iter().for_each(|(_, s)| slots_in(s, true, top, clears)),
            _ => {}
        }
    }
}

/// Runs of a [`Split`] before it may give up on a pattern that mostly
/// leaves them to the segment's engine.
const SPLIT_TRIAL: usize = 64;

/// Most places `<HOST>` may start that a [`Split`] tells apart.
const MAX_STARTS: usize = 4;

/// The end of `(?:\d{1,3}\.){3}\d{1,3}` (ASCII digits) at `at` in `b`, each
/// run of digits as long as it goes; `None` where that does not match.
fn dotted_quad(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    for part in 0..4 {
        let run = b
            .get(i..)?
            .iter()
            .take(3)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if run == 0 {
            return None;
        }
        i += run;
        if part < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// The end of `(?:H{1,4}::?|:){1,7}(?:H{1,4}|:)` (`H` an ASCII hex digit,
/// `<HOST>`'s IPv6 form) at `at` in `b` on its first parse: each
/// repetition as long as it goes, each choice's first that fits (a run of
/// hex digits can end an item only at a colon, so a shorter run never
/// fits where the longest does not); `None` where that parse fails.
fn ipv6_first(b: &[u8], at: usize) -> Option<usize> {
    let hex = |i: usize| {
        b.get(i..)
            .unwrap_or_default()
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_hexdigit())
            .count()
    };
    let mut i = at;
    let mut items = 0;
    while items < 7 {
        let h = hex(i);
        if b.get(i + h) != Some(&b':') {
            break;
        }
        // `H{1,4}:` and then a second `:` if there is one, or `:` alone.
        i += h + 1;
        if h > 0 && b.get(i) == Some(&b':') {
            i += 1;
        }
        items += 1;
    }
    if items == 0 {
        return None;
    }
    match hex(i) {
        0 => (b.get(i) == Some(&b':')).then_some(i + 1),
        h => Some(i + h),
    }
}

/// `<HOST>` as an ASCII pattern's item: an item of the same
/// [`shape`] is `<HOST>` (a rewritten pattern's copy of it has its groups
/// renumbered and unnamed). With the place of group `ip4` among its groups,
/// and its shortest and longest match and group count (as `shape` keeps
/// them).
fn host_item() -> Option<HostItem> {
    let text = super::resolve_tags("<HOST>", true);
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&super::to_rust_syntax(&text))
        .ok()?;
    let mut groups = Vec::new();
    captures(&hir, &mut groups);
    let ip4 = groups
        .iter()
        .position(|c| c.name.as_deref() == Some("ip4"))?;
    let p = hir.properties();
    let lens = (p.minimum_len(), p.maximum_len(), p.explicit_captures_len());
    Some(HostItem {
        text: shape(&hir).to_string(),
        hir,
        ip4,
        lens,
    })
}

/// [`host_item`], worked out once: it is the same for every pattern, and
/// parsing `<HOST>` cost some 300,000 instructions per pattern cut.
static HOST: LazyLock<Option<HostItem>> = LazyLock::new(host_item);

/// Whether `a` and `b` are the same but for their groups' indices and
/// names: then their [`shape`]s are equal and render alike, which is
/// found without building and rendering them (some 100,000 instructions
/// for `<HOST>`, done for each item that may be it).
fn same_shape(a: &Hir, b: &Hir) -> bool {
    match (a.kind(), b.kind()) {
        (HirKind::Capture(x), HirKind::Capture(y)) => same_shape(&x.sub, &y.sub),
        (HirKind::Repetition(x), HirKind::Repetition(y)) => {
            x.min == y.min && x.max == y.max && x.greedy == y.greedy && same_shape(&x.sub, &y.sub)
        }
        (HirKind::Concat(x), HirKind::Concat(y))
        | (HirKind::Alternation(x), HirKind::Alternation(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_shape(a, b))
        }
        (x, y) => x == y,
    }
}

/// `h` with every group unnamed and numbered 0.
fn shape(h: &Hir) -> Hir {
    match h.kind() {
        HirKind::Capture(c) => Hir::capture(regex_syntax::hir::Capture {
            index: 0,
            name: None,
            sub: Box::new(shape(&c.sub)),
        }),
        HirKind::Repetition(r) => Hir::repetition(regex_syntax::hir::Repetition {
            sub: Box::new(shape(&r.sub)),
            ..r.clone()
        }),
        HirKind::Concat(v) => Hir::concat(v.iter().map(shape).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.iter().map(shape).collect()),
        _ => h.clone(),
    }
}

/// The groups of `h`, in the order they open.
fn captures<'h>(h: &'h Hir, out: &mut Vec<&'h regex_syntax::hir::Capture>) {
    match h.kind() {
        HirKind::Capture(c) => {
            out.push(c);
            captures(&c.sub, out);
        }
        HirKind::Repetition(r) => captures(&r.sub, out),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().for_each(|c| captures(c, out)),
        _ => {}
    }
}

/// The first slot of group `ip4` of `h`, a `<HOST>` item whose `ip4` is its
/// `nth` group.
fn ip4_slot(h: &Hir, nth: usize) -> Option<usize> {
    let mut groups = Vec::new();
    captures(h, &mut groups);
    Some(groups.get(nth)?.index as usize * 2)
}

/// `<HOST>` as [`host_item`] finds it.
#[derive(Debug)]
struct HostItem {
    /// Its parse.
    hir: Hir,
    /// Its [`shape`], rendered.
    text: String,
    /// The place of `ip4` among its groups.
    ip4: usize,
    /// Its shortest and longest match, and its group count.
    lens: (Option<usize>, Option<usize>, usize),
}

/// A piece [`segments`] built as a segment: the piece, its automaton, its
/// one-pass DFA, and its first item's place.
type Built = (Arc<Piece>, NFA, Option<onepass::DFA>, usize);

/// `hir` cut into segments ([module docs](self)), `None` where no cut
/// leaves a one-pass segment of more than an assertion. `ascii`: the
/// pattern's ASCII form, where `<HOST>`'s digits are ASCII ones ([`Host`]).
/// `depth`: how many [`Choices`] it is inside; one of a choice's own
/// (depth above 0) is the choice's only way to run, so it may be a single
/// segment.
fn segments(
    hir: &Hir,
    pieces: &Pieces,
    ascii: bool,
    host_tag: Option<&HostItem>,
    depth: usize,
) -> Option<Box<[Segment]>> {
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    // Where everything before can end at one place only. A cut after an
    // item that can end at several places is never one (it could end there
    // or later), so only the items after a fixed-length or literal end are
    // tried, from the left, up to the first that is not a cut, and never
    // past `<HOST>`, whose forms overlap (and whose DFA is costly to build).
    // Rendering an item is dear (`<HOST>` is a long pattern): only one
    // with `<HOST>`'s lengths and group count is rendered.
    let is_host = |h: &Hir| {
        host_tag.is_some_and(|t| {
            let (p, q) = (h.properties(), &t.lens);
            p.minimum_len() == q.0
                && p.maximum_len() == q.1
                && p.explicit_captures_len() == q.2
                && (same_shape(h, &t.hir) || shape(h).to_string() == t.text)
        })
    };
    let ip4_nth = host_tag.map_or(0, |t| t.ip4);
    let before_host = items.iter().position(is_host).unwrap_or(items.len());
    let mut cuts = Vec::new();
    let mut decided = 0;
    for k in (1..=before_host.min(items.len() - 1))
        .filter(|&k| ends_fixed(&items[k - 1]))
        .take(MAX_CUTS)
    {
        // Everything before the last cut ends at one place; so does
        // everything before `k` where the piece between ends at one place
        // from wherever it starts, which a piece of one length always
        // does. The piece's DFA is a fraction of the whole prefix's, and
        // building prefix after prefix was most of a cut's cost.
        if !ends_once_after(&items[decided..k]) {
            break;
        }
        cuts.push(k);
        decided = k;
    }
    if cuts.is_empty() && depth == 0 {
        return None;
    }
    // Segments between cuts, each joined to the next where the two stay
    // one-pass.
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(items.len());
    // The one-pass DFA that decides a join is kept for the segment's engine.
    let build = |lo: usize, hi: usize| -> Option<Built> {
        let h = pieces.get(Hir::concat(items[lo..hi].to_vec()));
        let nfa = h.nfa()?;
        let one = h.onepass();
        Some((h, nfa, one, lo))
    };
    let mut out = Vec::new();
    let (mut lo, mut hi) = (bounds[0], bounds[1]);
    let mut current = build(lo, hi)?;
    for &next in &bounds[2..] {
        if current.2.is_some() {
            let joined = build(lo, next)?;
            if joined.2.is_some() {
                current = joined;
                hi = next;
                continue;
            }
        }
        out.push(current);
        (lo, hi) = (hi, next);
        current = build(lo, hi)?;
    }
    out.push(current);
    let decided =
        |(h, _, one, _): &Built| one.is_some() && h.hir.properties().minimum_len() != Some(0);
    if depth == 0 && (out.len() < 2 || !out.iter().any(decided)) {
        return None;
    }
    let ends: Vec<usize> = out
        .iter()
        .skip(1)
        .map(|s| s.3)
        .chain([items.len()])
        .collect();
    // `<HOST>` and what follows it (`hs`, within one segment), read with
    // the dotted quad taken directly.
    let host_of = |hs: &[Hir], slot_len: usize| -> Option<Host> {
        let (first, rest) = hs.split_first()?;
        if !is_host(first) {
            return None;
        }
        let rest = pieces.get(Hir::concat(rest.to_vec()));
        let engine = rest.engine()?;
        let rest_dfa = (rest.hir.properties().explicit_captures_len() == 0)
            .then(|| rest.lazy(false, MatchKind::All))
            .flatten();
        let rest_slots = engine.backtrack.get_nfa().group_info().slot_len();
        let opt_rest = rest_dfa
            .is_none()
            .then(|| optional_then_plain(&hs[1..], rest_slots, pieces))
            .flatten();
        let host = Host {
            ip4: ip4_slot(first, ip4_nth)?,
            ip6: ip4_slot(first, ip4_nth + 1)?,
            rest_slots,
            rest: engine,
            rest_dfa,
            opt_rest,
        };
        (host.rest_slots <= slot_len && host.ip4.max(host.ip6) + 1 < slot_len).then_some(host)
    };
    let last = out.len() - 1;
    out.into_iter()
        .zip(ends)
        .enumerate()
        .map(|(n, ((h, nfa, dfa, lo), hi))| {
            let one = dfa.is_some();
            let dfa = dfa.filter(|_| Engine::wants_onepass(&h.hir, true));
            let engine = Engine::with_onepass(nfa, dfa).ok()?;
            let slot_len = engine.backtrack.get_nfa().group_info().slot_len();
            // `<HOST>` is in the last segment only (no cut past it), whose
            // end is the match's: what follows it is run to that end.
            let last_one = hi == items.len();
            let host = last_one
                .then(|| host_of(&items[lo..hi], slot_len))
                .flatten();
            let slots = own_slots(&h.hir)?;
            // Not `<HOST>`'s address-or-name choice: neither is one-pass
            // with what follows, and building them costs.
            let opens_host = items.get(lo).is_some_and(is_host);
            let alts = (!one && !opens_host)
                .then(|| alternatives(&items[lo..hi], pieces, slot_len, ascii))
                .flatten();
            let choices = (ascii
                && !one
                && n == last
                && !opens_host
                && alts.is_none()
                && depth < MAX_CHOICE_DEPTH)
                .then(|| choices_of(&items[lo..hi], pieces, host_tag, depth, slot_len))
                .flatten();
            // The choices find where `<HOST>` starts where the split would.
            let split = (ascii && !one && last_one && host.is_none() && choices.is_none())
                .then(|| split_of(&items[lo..hi], &is_host, pieces, &host_of))
                .flatten()
                .filter(|p| p.head_slots <= slot_len && p.tail_slots <= slot_len);
            // A segment with no groups of its own but ones around all of
            // it (`(?P<user>(?:(?! from ).)*?)`) is run for its end only,
            // which the cut decides (the last one: the match's end).
            let (around, lens) = around_but_ends(&items[lo..hi])
                .map(|(g, head, tail)| (g, (head, tail)))
                .unzip();
            let (around_head, around_tail) = lens.unwrap_or((0, 0));
            let ends = (ascii && around.is_some())
                .then(|| {
                    let kind = if n == last {
                        MatchKind::All
                    } else {
                        MatchKind::LeftmostFirst
                    };
                    h.lazy(false, kind)
                })
                .flatten();
            (slot_len <= SEGMENT_SLOTS && slots.end <= slot_len).then_some(Segment {
                engine,
                host,
                slots,
                slot_len,
                split,
                ends,
                around: around.unwrap_or_default(),
                around_head,
                around_tail,
                alts,
                choices,
                last: n == last,
                walk: ascii.then(|| Walk::new(&items[lo..hi], slot_len)).flatten(),
            })
        })
        .collect()
}

/// [`Host::opt_rest`] of `items` (`X? T`), `X`'s groups below `slot_len`.
fn optional_then_plain(
    items: &[Hir],
    slot_len: usize,
    pieces: &Pieces,
) -> Option<(Walk, hybrid::dfa::DFA)> {
    let (x, tail) = items.split_first()?;
    let HirKind::Repetition(r) = x.kind() else {
        return None;
    };
    if r.min != 0 || r.max != Some(1) || !r.greedy {
        return None;
    }
    let tail = Hir::concat(tail.to_vec());
    if tail.properties().explicit_captures_len() != 0 {
        return None;
    }
    let (follow, _) = starts_of(&tail)?;
    let walk = Walk::following(std::slice::from_ref(&*r.sub), slot_len, Some(&follow))?;
    Some((walk, pieces.get(tail).lazy(false, MatchKind::All)?))
}

/// The bytes a match of `h` may start with, and whether it may be empty;
/// `None` where a class holds bytes not listed (Unicode).
fn starts_of(h: &Hir) -> Option<(ByteSet, bool)> {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Some(([false; 256], true)),
        HirKind::Literal(l) => {
            let mut set = [false; 256];
            match l.0.first() {
                Some(&b) => {
                    set[usize::from(b)] = true;
                    Some((set, false))
                }
                None => Some((set, true)),
            }
        }
        HirKind::Class(_) => Some((*one_byte_set(h)?, false)),
        HirKind::Repetition(r) => {
            let (set, empty) = starts_of(&r.sub)?;
            Some((set, empty || r.min == 0))
        }
        HirKind::Capture(c) => starts_of(&c.sub),
        HirKind::Concat(v) => {
            let mut acc = [false; 256];
            for x in v {
                let (set, empty) = starts_of(x)?;
                acc.iter_mut().zip(set).for_each(|(a, b)| *a |= b);
                if !empty {
                    return Some((acc, false));
                }
            }
            Some((acc, true))
        }
        HirKind::Alternation(v) => {
            let mut acc = ([false; 256], false);
            for x in v {
                let (set, empty) = starts_of(x)?;
                acc.0.iter_mut().zip(set).for_each(|(a, b)| *a |= b);
                acc.1 |= empty;
            }
            Some(acc)
        }
    }
}

/// How deep [`Choices`] nest: `X? (?:A|B) R` is tried as four lists.
const MAX_CHOICE_DEPTH: usize = 2;

/// The [`Choices`] of a last segment `items` opening with an alternation
/// (bare or in a group: each choice then in that group) or `X?`, each
/// choice followed by the rest cut on its own, its groups within the
/// segment's `slot_len` slots.
fn choices_of(
    items: &[Hir],
    pieces: &Pieces,
    host: Option<&HostItem>,
    depth: usize,
    slot_len: usize,
) -> Option<Choices> {
    let (first, rest) = items.split_first()?;
    let options = match first.kind() {
        HirKind::Alternation(v) => v.clone(),
        // `(?P<user>\S+|.*?)`: the group spans whichever choice is taken.
        HirKind::Capture(c) => match c.sub.kind() {
            HirKind::Alternation(v) => v
                .iter()
                .map(|a| {
                    Hir::capture(regex_syntax::hir::Capture {
                        sub: Box::new(a.clone()),
                        ..c.clone()
                    })
                })
                .collect(),
            _ => return None,
        },
        HirKind::Repetition(r) if r.min == 0 && r.max == Some(1) => {
            let (x, none) = ((*r.sub).clone(), Hir::empty());
            // Greedy: `X` first.
            if r.greedy {
                vec![x, none]
            } else {
                vec![none, x]
            }
        }
        _ => return None,
    };
    let each = options
        .into_iter()
        .map(|a| {
            let mut h = vec![a];
            h.extend_from_slice(rest);
            let list = segments(&Hir::concat(h), pieces, true, host, depth + 1)?;
            list.iter().all(|s| s.slots.end <= slot_len).then_some(list)
        })
        .collect::<Option<Box<[_]>>>()?;
    Some(Choices { each })
}

/// [`around`] of `items` but their longest head and tail of fixed length
/// without groups, and those lengths: the groups start that far after the
/// segment's start and end that far before its end.
fn around_but_ends(items: &[Hir]) -> Option<(Box<[usize]>, usize, usize)> {
    let fixed = |h: &Hir| {
        let p = h.properties();
        (p.explicit_captures_len() == 0 && p.minimum_len() == p.maximum_len())
            .then(|| p.minimum_len())
            .flatten()
    };
    let mut head = items.len();
    let mut tail = 0;
    while let Some(len) = head.checked_sub(1).and_then(|i| fixed(&items[i])) {
        head -= 1;
        tail += len;
    }
    if head == 0 {
        // No groups at all: the tail is the whole.
        return Some((Box::default(), 0, 0));
    }
    let (mut first, mut lead) = (0, 0);
    while let Some(len) = items[..head].get(first).and_then(fixed) {
        first += 1;
        lead += len;
    }
    Some((around_all(&items[first..head])?, lead, tail))
}

/// [`around`] of the concatenation of `items` (a concatenation's own, so
/// neither empty nor concatenations), worked out without building it: one
/// item is the concatenation; of several, there is no group around all.
fn around_all(items: &[Hir]) -> Option<Box<[usize]>> {
    match items {
        [one] => around(one),
        _ => items
            .iter()
            .all(|h| h.properties().explicit_captures_len() == 0)
            .then(Box::default),
    }
}

/// The [`Alternatives`] of a segment `items`, opening with an alternation
/// (`X?` is none: `X R` and `R` are seldom both one-pass), where each
/// choice followed by the rest is one-pass and writes at most `slot_len`
/// slots.
fn alternatives(
    items: &[Hir],
    pieces: &Pieces,
    slot_len: usize,
    ascii: bool,
) -> Option<Alternatives> {
    let (first, rest) = items.split_first()?;
    let HirKind::Alternation(choices) = first.kind() else {
        return None;
    };
    let each = choices
        .iter()
        .map(|a| {
            let mut h = vec![a.clone()];
            h.extend_from_slice(rest);
            let walk = ascii.then(|| Walk::new(&h, slot_len)).flatten();
            let piece = pieces.get(Hir::concat(h));
            let len = piece.nfa()?.group_info().slot_len();
            let dfa = piece.onepass()?;
            (len <= slot_len).then_some((dfa, len, walk))
        })
        .collect::<Option<Box<[_]>>>()?;
    Some(Alternatives { each })
}

/// The first slots of the groups around all of `h`, where its other
/// items have none; `None` where some group is inside it.
fn around(h: &Hir) -> Option<Box<[usize]>> {
    let mut out = Vec::new();
    let mut h = h;
    while let HirKind::Capture(c) = h.kind() {
        out.push(c.index as usize * 2);
        h = &c.sub;
    }
    (h.properties().explicit_captures_len() == 0).then(|| out.into_boxed_slice())
}

/// The [`Split`] of a segment `U L <HOST> S`, where `U` asserts nothing a
/// text cut after it could change.
fn split_of(
    items: &[Hir],
    is_host: &dyn Fn(&Hir) -> bool,
    pieces: &Pieces,
    host_of: &dyn Fn(&[Hir], usize) -> Option<Host>,
) -> Option<Split> {
    let h = items.iter().position(is_host)?;
    let HirKind::Literal(lit) = items.get(h.checked_sub(1)?)?.kind() else {
        return None;
    };
    let u = Hir::concat(items[..h - 1].to_vec());
    let starts = LookSet::empty()
        .insert(Look::Start)
        .insert(Look::StartLF)
        .insert(Look::StartCRLF);
    if !u.properties().look_set().subtract(starts).is_empty() {
        return None;
    }
    let fwd = lazy_dfa(&u, false, MatchKind::All)?;
    let head_around = around(&u);
    let head = pieces
        .get(Hir::concat(vec![u, Hir::look(Look::End)]))
        .engine()?;
    let hs = pieces.get(Hir::concat(items[h..].to_vec()));
    let tail = hs.engine()?;
    let tail_slots = tail.backtrack.get_nfa().group_info().slot_len();
    let head_slots = head.backtrack.get_nfa().group_info().slot_len();
    if tail_slots.max(head_slots) > SEGMENT_SLOTS {
        return None;
    }
    Some(Split {
        rev: hs.lazy(true, MatchKind::All)?,
        fwd,
        lit: lit.0.clone(),
        lit_finder: memchr::memmem::Finder::new(&lit.0).into_owned(),
        head,
        head_slots,
        head_around,
        runs: AtomicUsize::new(0),
        misses: AtomicUsize::new(0),
        tail_host: host_of(&items[h..], tail_slots),
        tail,
        tail_slots,
    })
}

/// A lazy DFA of `hir` for anchored runs, without groups; `reverse`: run
/// from the end back.
fn lazy_dfa(hir: &Hir, reverse: bool, kind: MatchKind) -> Option<hybrid::dfa::DFA> {
    let nfa = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .reverse(reverse)
                .which_captures(thompson::WhichCaptures::None),
        )
        .build_from_hir(hir)
        .ok()?;
    hybrid::dfa::Builder::new()
        .configure(hybrid::dfa::DFA::config().match_kind(kind))
        .build_from_nfa(nfa)
        .ok()
}

/// Whether every match of `items` from a given start ends at one place.
fn ends_once_after(items: &[Hir]) -> bool {
    fixed_len(items).is_some()
        || ends_at_first_stop(items)
        || super::ends_once(&Hir::concat(items.to_vec()), CUT_DFA_LIMIT)
}

/// The length of every match of `items` in a row where it has one: their
/// concatenation's, worked out without building it (a copy of the items).
fn fixed_len(items: &[Hir]) -> Option<usize> {
    items.iter().try_fold(0usize, |len, h| {
        let p = h.properties();
        let own = p.minimum_len().filter(|&n| p.maximum_len() == Some(n))?;
        len.checked_add(own)
    })
}

/// Whether `items` is `X L`, `L` a literal whose first byte no match of `X`
/// holds (`\S+ for `, `(?:publickey|\S+) for `): `X` then ends at the
/// first such byte from the start, so the whole ends once. It spares the
/// DFA [`super::ends_once`] builds, most of a cut's cost on a short log.
fn ends_at_first_stop(items: &[Hir]) -> bool {
    let Some((last, before)) = items.split_last() else {
        return false;
    };
    let HirKind::Literal(lit) = last.kind() else {
        return false;
    };
    let Some(&stop) = lit.0.first() else {
        return false;
    };
    let mut held = [false; 256];
    before.iter().all(|h| bytes_held(h, &mut held)) && !held[usize::from(stop)]
}

/// Marks in `held` every byte a match of `h` may hold; `false` where that
/// is not worked out (a Unicode class: its bytes are not listed).
fn bytes_held(h: &Hir, held: &mut [bool; 256]) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => {
            l.0.iter().for_each(|&b| held[usize::from(b)] = true);
            true
        }
        HirKind::Class(regex_syntax::hir::Class::Bytes(c)) => {
            for r in c.iter() {
                held[usize::from(r.start())..=usize::from(r.end())].fill(true);
            }
            true
        }
        HirKind::Class(regex_syntax::hir::Class::Unicode(_)) => false,
        HirKind::Repetition(r) => bytes_held(&r.sub, held),
        HirKind::Capture(c) => bytes_held(&c.sub, held),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().all(|h| bytes_held(h, held)),
    }
}

/// Whether the item ends on fixed text (a literal, a class or a group
/// ending on one): only after such an item can what precedes end once.
fn ends_fixed(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Literal(_) | HirKind::Class(_) => true,
        HirKind::Capture(c) => ends_fixed(&c.sub),
        HirKind::Concat(v) => v.last().is_some_and(ends_fixed),
        HirKind::Alternation(v) => v.iter().all(ends_fixed),
        _ => false,
    }
}

/// The slots of the groups in `h` (group 0 aside), as one range: a
/// segment's groups are numbered in a row.
fn own_slots(h: &Hir) -> Option<std::ops::Range<usize>> {
    fn walk(h: &Hir, lo: &mut usize, hi: &mut usize) {
        match h.kind() {
            HirKind::Capture(c) => {
                let i = c.index as usize;
                *lo = (*lo).min(i);
                *hi = (*hi).max(i);
                walk(&c.sub, lo, hi);
            }
            HirKind::Repetition(r) => walk(&r.sub, lo, hi),
            HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().for_each(|c| walk(c, lo, hi)),
            _ => {}
        }
    }
    let (mut lo, mut hi) = (usize::MAX, 0);
    walk(h, &mut lo, &mut hi);
    Some(if lo == usize::MAX {
        2..2
    } else {
        lo * 2..hi * 2 + 2
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::cut_cases as cases;
    use super::super::{FastRe, Spans};

    /// sshd.conf's `Failed` failregex: its `(?:publickey|\S+) for ` opens a
    /// segment that [`super::Alternatives`] runs, and the rewritten
    /// `(?:(?! from ).)*?` user name of its invalid-user branch is a group
    /// followed by ` from `, whose end a DFA finds.
    const FAILED: &str = r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)";

    /// Alternations with groups in one choice and not the other, choices
    /// that are prefixes of each other, and one that can match empty; and a
    /// one-pass segment whose group follows a head of fixed length (`^a `)
    /// and precedes a tail of fixed length (` b `), run for its end.
    const OTHERS: &[&str] = &[
        r"^a (?:(?P<k>key)|(?P<w>\w+)|\S+) b (?P<user>\S+) from <HOST>\s*$",
        r"^a (?:(?P<k>k)|(?P<kk>kk)|k*) b (?P<user>.*?) from <HOST>(?: port \d+)?$",
        r"^a (?P<m>\S+) b (?P<user>.*?) from <HOST>(?: port \d+)?$",
    ];

    /// sshd.conf's `Connection closed` (mdre-normal-other) failregex: its
    /// last segment opens with an optional user part whose name is
    /// `\S+|.*?`, tried as [`super::Choices`]; and made-up ones with a lazy
    /// optional, a bare alternation and one that can match empty.
    const CHOICES: &[&str] = &[
        r"^(Connection (?:closed|reset)|Disconnected) (?:by|from)(?: (?:invalid|authenticating) user <F-USER>\S+|.*?</F-USER>)? <HOST>(?:(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*|\s*)$",
        r"^a(?: x (?P<u>\S+|.*?))?? <HOST>(?: port \d+)?\s*$",
        r"^b (?:(?P<k>key)|\S+|.*?|) <HOST>(?: on \S+)*$",
    ];

    const CHOICES_WARM: &[&str] = &[
        "Connection closed by 192.0.2.1 port 22 [preauth]",
        "Disconnected from authenticating user root 192.0.2.1 port 22 [preauth]",
        "Disconnected from invalid user a b 192.0.2.1 port 22",
        "a x root 192.0.2.1 port 22",
        "a 192.0.2.1",
        "b key 192.0.2.1 on eth0",
        "b k y 192.0.2.1",
    ];

    const WARM: &[&str] = &[
        "Failed password for root from 192.0.2.1 port 22 ssh2",
        "Failed publickey for root from 192.0.2.1 port 22 ssh2: RSA x",
        "Failed password for invalid user a b from 192.0.2.1 port 22 ssh2",
        "Failed publickey for invalid user ab from 192.0.2.1 port 22 ssh2: x",
        "a key b root from 192.0.2.1",
        "a x-y b root from 192.0.2.1",
        "a kk b r t from 192.0.2.1 port 22",
        "a k b r from 192.0.2.1",
    ];

    static CHOICE_CASES: std::sync::LazyLock<Vec<(FastRe, regex_automata::meta::Regex)>> =
        std::sync::LazyLock::new(|| cases(CHOICES, CHOICES_WARM));

    static CASES: std::sync::LazyLock<Vec<(FastRe, regex_automata::meta::Regex)>> =
        std::sync::LazyLock::new(|| {
            let mut all = cases(&[FAILED], WARM);
            all.extend(cases(OTHERS, WARM));
            all
        });

    /// For the proptests: every case's fast engine finds on `line` the
    /// groups the `meta` engine finds.
    fn cases_agree(
        cases: &[(FastRe, regex_automata::meta::Regex)],
        line: &str,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        for (fast, meta) in cases {
            proptest::prop_assert_eq!(
                fast.captures(line),
                meta_spans(fast, meta, line),
                "{} on {:?}",
                fast.text,
                line
            );
        }
        Ok(())
    }

    fn meta_spans(fast: &FastRe, meta: &regex_automata::meta::Regex, line: &str) -> Option<Spans> {
        let mut caps = meta.create_captures();
        meta.search_captures(&regex_automata::Input::new(line), &mut caps);
        caps.is_match().then(|| {
            (0..fast.names.len())
                .map(|g| (g, caps.get_group(g).map(|s| (s.start, s.end))))
                .collect()
        })
    }

    /// The largest of each of `count`'s two figures over the capture
    /// engines `fast` has built: which fast paths a case's lines took.
    fn most(fast: &FastRe, count: fn(&super::Captor) -> (usize, usize)) -> (usize, usize) {
        fast.built_captors()
            .map(count)
            .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)))
    }

    /// `lines` get the groups the `meta` engine gives them.
    fn agree_with_meta(fast: &FastRe, meta: &regex_automata::meta::Regex, lines: &[&str]) {
        for line in lines {
            assert_eq!(
                fast.captures(line),
                meta_spans(fast, meta, line),
                "{line:?}"
            );
        }
    }

    #[test]
    fn failed_takes_the_alternatives_and_the_tail() {
        let (fast, meta) = &CASES[0];
        assert_eq!(most(fast, super::Captor::alternatives_and_tails), (1, 1));
        agree_with_meta(
            fast,
            meta,
            &[
                "Failed publickey for invalid user a b from 192.0.2.1 port 22 ssh2",
                "Failed publickeyx for invalid user a from b from 192.0.2.1 port 22 ssh2",
                "Failed password for invalid user  from 192.0.2.1",
            ],
        );
    }

    #[test]
    fn a_group_between_fixed_ends_runs_for_its_end() {
        // DNS mode, then not: the third of OTHERS, after FAILED's two.
        for (fast, meta) in &CASES[6..8] {
            assert!(
                fast.built_captors().any(super::Captor::ends_inside_fixed),
                "{}",
                fast.text
            );
            agree_with_meta(
                fast,
                meta,
                &[
                    "a x-y b root from 192.0.2.1",
                    "a  b root from 192.0.2.1",
                    "a x b  b root from 192.0.2.1 port 2",
                ],
            );
        }
    }

    #[test]
    fn an_optional_user_before_host_is_tried_choice_by_choice() {
        let (fast, meta) = &CHOICE_CASES[0];
        // The optional part (with it, without it), and within it the name
        // (`\S+`, `.*?`).
        assert_eq!(most(fast, super::Captor::choices), (2, 4));
        agree_with_meta(
            fast,
            meta,
            &[
                "Connection closed by 192.0.2.1 port 22 [preauth]",
                "Connection closed by invalid user 192.0.2.1 port 22 [preauth]",
                "Disconnected from authenticating user root 192.0.2.1 port 22 [preauth]",
                "Disconnected from invalid user a b 192.0.2.1 on x port 22",
                "Disconnected from invalid user a 192.0.2.1 192.0.2.2",
                "Connection closed by invalid user a host.example.org port 22",
                "Connection closed by 192.0.2.1 22",
            ],
        );
    }

    #[test]
    fn a_piece_ending_on_a_byte_it_cannot_hold_ends_once() {
        for (p, want) in [
            (r"\S+ for ", true),
            (r"(?:(publickey)|\S+) for ", true),
            (r"(\S+) from ", true),
            (r"[^:]+:", true),
            (r".*? from ", false),
            (r"\S* ruser=", true),
            (r"\S*ruser=", false),
            (r"\S+ \S+ for ", false),
            (r"\S+", false),
        ] {
            let items = ascii_items(p).1;
            assert_eq!(super::ends_at_first_stop(&items), want, "{p}");
            if want {
                let piece = super::Hir::concat(items);
                assert!(super::super::ends_once(&piece, super::CUT_DFA_LIMIT), "{p}");
            }
        }
    }

    /// Segments whose parse every byte decides: literals, runs stopped by
    /// a byte they cannot take, choices told apart by their first byte,
    /// groups inside one choice only.
    const WALKS: &[&str] = &[
        r"^(?P<n>Received (?P<m>disconnect)) from ",
        r"^(?P<a>(?P<b>(Connection (?:closed|reset)|Disconnected))) (?:by|from)",
        r"^[iI](?:llegal|nvalid) user ",
        r"^(?P<n>pam_[a-z]+\(sshd:auth\):\s+authentication failure;)",
        r"(?P<u>\S*)\s+rhost=",
        r"(?P<m>(?P<g>Accepted \w+)) for (?P<user>\S+) from ",
        r"(?P<k>publickey) for ",
        r"\S+ for ",
        r"\d{1,3}\.\d{1,3}x",
        r"a(?:(?P<x>b)c|d(?P<y>e))f",
        r"(?:x|y)?z",
    ];

    /// Patterns with two parses of some text, or an end not decided inside
    /// them: no walk.
    const NOT_WALKS: &[&str] = &[
        r"(?:a|ab)c",
        r"\w+\d",
        r"x\S+",
        r"(?:k|kk)",
        r".*? from ",
        r"a(?:x|)b",
        r"a\b",
    ];

    fn ascii_items(p: &str) -> (super::Hir, Vec<super::Hir>) {
        let h = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .parse(p)
            .unwrap();
        let items = match h.kind() {
            super::HirKind::Concat(v) => v.clone(),
            _ => vec![h.clone()],
        };
        (h, items)
    }

    #[test]
    fn only_forced_parses_are_walked() {
        for p in WALKS {
            assert!(super::Walk::new(&ascii_items(p).1, 64).is_some(), "{p}");
        }
        for p in NOT_WALKS {
            assert!(super::Walk::new(&ascii_items(p).1, 64).is_none(), "{p}");
        }
        // A group past the slots the segment's automaton writes.
        assert!(super::Walk::new(&ascii_items(WALKS[0]).1, 4).is_none());
    }

    #[test]
    fn sshd_segments_are_walked() {
        // `Failed `, both choices of `(?:(?P<nofail>publickey)|\S+) for `.
        assert!(CASES[0].0.built_captors().any(|c| c.walks() >= 3));
        // `(Connection (?:closed|reset)|Disconnected) (?:by|from)`, the
        // user parts, the user name `\S+ ` and the space before `<HOST>`.
        assert!(CHOICE_CASES[0].0.built_captors().any(|c| c.walks() >= 4));
    }

    /// sshd.conf's pam failregex: after `rhost=<HOST>`, an optional
    /// `user=` part with a group, then a suffix without groups.
    const PAM: &str = r"^<F-NOFAIL>pam_[a-z]+\(sshd:auth\):\s+authentication failure;</F-NOFAIL>(?:\s+(?:(?:logname|e?uid|tty)=\S*)){0,4}\s+ruser=<F-ALT_USER>\S*</F-ALT_USER>\s+rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$";

    const PAM_WARM: &[&str] = &[
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7",
    ];

    static PAM_CASES: std::sync::LazyLock<Vec<(FastRe, regex_automata::meta::Regex)>> =
        std::sync::LazyLock::new(|| cases(&[PAM], PAM_WARM));

    #[test]
    fn an_optional_user_after_host_is_walked() {
        // DNS mode: the other's `<HOST>` is not the item [`super::Host`]
        // reads.
        assert!(
            PAM_CASES[0]
                .0
                .built_captors()
                .any(super::Captor::walks_optional_rest)
        );
        for (fast, meta) in PAM_CASES.iter() {
            agree_with_meta(
                fast,
                meta,
                &[
                    PAM_WARM[0],
                    PAM_WARM[1],
                    "pam_unix(sshd:auth): authentication failure; ruser= rhost=192.0.2.7 user= port 22",
                    "pam_unix(sshd:auth): authentication failure; ruser= rhost=192.0.2.7 user=a b",
                    "pam_unix(sshd:auth): authentication failure; ruser= rhost=192.0.2.7\tuser=a\t",
                    "pam_unix(sshd:auth): authentication failure; ruser= rhost=192.0.2.7 user",
                ],
            );
        }
    }

    #[test]
    fn shared_pieces_build_what_fresh_ones_do() {
        let mut fewer = false;
        let all = CASES
            .iter()
            .chain(CHOICE_CASES.iter())
            .chain(PAM_CASES.iter());
        for (fast, _) in all {
            for plan in fast.built_captors().filter_map(|c| c.engines.plan.as_ref()) {
                let (shared, fresh) = (super::Pieces::new(plan), super::Pieces::fresh(plan));
                let (a, b) = (super::cut(plan, &shared), super::cut(plan, &fresh));
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{}", fast.text);
                fewer |= a.is_some() && shared.all.borrow().len() < fresh.all.borrow().len();
            }
        }
        // The lists of a choice end alike: their pieces are found again.
        assert!(fewer);
    }

    /// Items of patterns with `<HOST>` (renumbered in a split pattern's
    /// branches) and without, in both DNS modes.
    fn items_of_patterns() -> Vec<super::Hir> {
        let mut out = Vec::new();
        for p in CHOICES.iter().chain(OTHERS).chain([&PAM]) {
            for dns in [true, false] {
                let text = super::super::to_rust_syntax(&super::super::resolve_tags(p, dns));
                let (h, items) = ascii_items(&text);
                out.extend(items);
                for b in super::super::branches(&h).into_iter().flatten() {
                    if let super::HirKind::Concat(v) = b.kind() {
                        out.extend(v.iter().cloned());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn host_items_are_told_without_rendering() {
        let host = super::HOST.as_ref().unwrap();
        let mut hosts = 0;
        for item in items_of_patterns() {
            let rendered = super::shape(&item).to_string() == host.text;
            assert_eq!(super::same_shape(&item, &host.hir), rendered, "{item}");
            hosts += usize::from(rendered);
        }
        assert!(hosts > 4, "{hosts}");
    }

    #[test]
    fn concatenations_are_read_without_building_them() {
        let items = items_of_patterns();
        for lo in 0..items.len() {
            for hi in lo + 1..(lo + 6).min(items.len()) {
                let piece = super::Hir::concat(items[lo..hi].to_vec());
                let p = piece.properties();
                let fixed = p.minimum_len().is_some() && p.minimum_len() == p.maximum_len();
                assert_eq!(super::fixed_len(&items[lo..hi]).is_some(), fixed, "{piece}");
                if fixed {
                    assert_eq!(super::fixed_len(&items[lo..hi]), p.minimum_len(), "{piece}");
                }
            }
        }
        // `around_all` takes a concatenation's own items: of one pattern.
        for p in CHOICES.iter().chain(OTHERS) {
            let (_, items) = ascii_items(&super::super::to_rust_syntax(
                &super::super::resolve_tags(p, true),
            ));
            for lo in 0..items.len() {
                for hi in lo..=items.len() {
                    let whole = super::Hir::concat(items[lo..hi].to_vec());
                    assert_eq!(
                        super::around_all(&items[lo..hi]),
                        super::around(&whole),
                        "{whole}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]
        /// Two patterns of the same parts, each part in a named group, an
        /// unnamed one, a group that takes nothing, or none: they have
        /// the same shape exactly where their shapes render alike.
        #[test]
        fn same_shape_is_rendered_shape(
            parts in proptest::collection::vec((
                proptest::sample::select(vec![
                    "a", "ab", r"\d{1,3}", r"\S+", r"[a-f0-9:]+?", "(?:x|yz)", r"\.", "",
                    r"(?:\d+)?", "(?:k|kk)*",
                ]),
                0..4usize,
                0..4usize,
            ), 1..6),
        ) {
            let wrap = |part: &str, how: usize, n: usize| match how {
                0 => format!("(?P<g{n}>{part})"),
                1 => format!("({part})"),
                2 => format!("(?:{part})"),
                _ => part.to_string(),
            };
            let a: String = parts.iter().enumerate().map(|(n, (p, x, _))| wrap(p, *x, n)).collect();
            let b: String = parts.iter().enumerate().map(|(n, (p, _, y))| wrap(p, *y, n + 9)).collect();
            let (ha, hb) = (ascii_items(&a).0, ascii_items(&b).0);
            proptest::prop_assert_eq!(
                super::same_shape(&ha, &hb),
                super::shape(&ha).to_string() == super::shape(&hb).to_string(),
                "{} {}", a, b
            );
        }

        /// An optional `user=` part after `<HOST>`, walked, then the
        /// suffix on a DFA, gives the groups the `meta` engine finds:
        /// present, absent, half there, followed by what the suffix takes
        /// or does not.
        #[test]
        fn optional_rest_matches_meta(
            host in proptest::sample::select(vec![
                "192.0.2.7", "203.0.113.201", "2001:db8::1", "host.example.org", "192.0.2.1234",
                "[192.0.2.9]",
            ]),
            parts in proptest::collection::vec(proptest::sample::select(vec![
                " user=root", "  user=", "\tuser=a", " user", "user=x", " ", "  ", "\t",
                " port 22", " on eth0", " [preauth]", "x", " 22", "=",
            ]), 0..5),
        ) {
            let line = format!(
                "pam_unix(sshd:auth): authentication failure; logname= uid=0 ruser= rhost={host}{}",
                parts.concat()
            );
            cases_agree(&PAM_CASES, &line)?;
        }

        /// `<HOST>` read as an IPv6 address without the segment's engine
        /// gives the groups the `meta` engine finds: hex runs of one to
        /// five digits, single and double colons, more than eight items,
        /// a trailing colon, quads after them, brackets, `::ffff:`, host
        /// names that start like one, what follows read by the suffix's
        /// DFA, by the optional `user=` walk, or after a user name.
        #[test]
        fn ipv6_hosts_match_meta(
            items in proptest::collection::vec(proptest::sample::select(vec![
                "2001", "db8", "a0c8", "1", "fffff", "0", ":", "::", ":::", "ffff", "g",
                "192.0.2.7", ".", "12", "]", "[", "x",
            ]), 1..12),
            tail in proptest::sample::select(vec![
                "", " port 22", " port 22 [preauth]", "  user=root", " user=a", " ", ":",
                "x", " 22",
            ]),
            which in 0..3usize,
        ) {
            let host = items.concat();
            match which {
                0 => cases_agree(
                    &PAM_CASES,
                    &format!("pam_unix(sshd:auth): authentication failure; ruser= rhost={host}{tail}"),
                )?,
                1 => cases_agree(&CHOICE_CASES[..2], &format!("Connection closed by {host}{tail}"))?,
                _ => cases_agree(&CASES[..2], &format!("Failed password for root from {host}{tail}"))?,
            }
        }

        /// A walk finds the groups and end the `meta` engine finds
        /// anchored at the start: texts that match, stop inside a literal
        /// or a run, or take the other choice.
        #[test]
        fn walks_match_meta(
            which in 0..WALKS.len(),
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "Received ", "disconnect", " from ", "Connection ", "closed", "reset",
                "Disconnected", " by", " from", "Illegal", "invalid", " user ", "pam_unix",
                "pam_", "(sshd:auth):", " ", "  ", "\t", "authentication failure;", "rhost=",
                "Accepted ", "publickey", " for ", "12", "1234", ".", "x", "y", "z", "a", "b",
                "c", "d", "e", "f", "root", "",
            ]), 0..8),
        ) {
            use regex_automata::{Anchored, Input};
            let hay = parts.concat();
            let (h, items) = ascii_items(WALKS[which]);
            let walk = super::Walk::new(&items, 64).unwrap();
            let meta = regex_automata::meta::Regex::builder()
                .configure(regex_automata::meta::Config::new().utf8_empty(false))
                .build_from_hir(&h)
                .unwrap();
            let n = meta.group_info().slot_len();
            let mut want = vec![None; n];
            let input = Input::new(&hay).anchored(Anchored::Yes);
            let found = meta.search_slots(&input, &mut want).is_some();
            let mut got = vec![None; 64];
            let walked = walk.run(&hay, 0, hay.len(), &mut got);
            proptest::prop_assert_eq!(walked, found, "{} on {:?}", WALKS[which], hay);
            if found {
                proptest::prop_assert_eq!(&got[..n], &want[..], "{} on {:?}", WALKS[which], hay);
            }
        }

        /// A last segment tried choice by choice, each cut on its own,
        /// gives the groups the `meta` engine finds on the whole pattern:
        /// user parts present, absent or half there, user names holding
        /// addresses, spaces or nothing, host names, tails that read like
        /// a host.
        #[test]
        fn choices_match_meta(
            head in proptest::sample::select(vec![
                "Connection closed by", "Disconnected from", "a", "b", "b ",
            ]),
            mid in proptest::sample::select(vec![
                "", " ", " invalid user ", " authenticating user ", " x ", " x", " invalid ",
                " key", " k",
            ]),
            user in proptest::collection::vec(proptest::sample::select(vec![
                "root", "a b", "192.0.2.9", " ", "", "key", "user", "port",
            ]), 0..3),
            host in proptest::sample::select(vec![
                " 192.0.2.1", " 203.0.113.201", " 2001:db8::1", " host.example.org", " a",
                " 192.0.2.1234", "", " [192.0.2.1]",
            ]),
            tail in proptest::collection::vec(proptest::sample::select(vec![
                " port 22", " on eth0", " [preauth]", " ", " 22", "x", " 192.0.2.3",
            ]), 0..4),
        ) {
            let line = format!("{head}{mid}{}{host}{}", user.join(" "), tail.concat());
            cases_agree(&CHOICE_CASES, &line)?;
        }

        /// The choices of an opening alternation run one by one, and groups
        /// found from a segment's end before a fixed tail, give the groups
        /// the `meta` engine finds on the whole pattern: a method that is
        /// or starts like `publickey`, user names with spaces, colons and
        /// ` from `, host names, a second address after the real one.
        #[test]
        fn cut_fast_paths_match_meta(
            head in proptest::sample::select(vec!["Failed ", "a "]),
            method in proptest::sample::select(vec![
                "publickey", "password", "publickeyx", "publickey:", "p", "k", "kk", "kkk",
                "key", "x-y", "", "publickey for", "keyboard-interactive/pam",
            ]),
            sep in proptest::sample::select(vec![" for ", " b ", " for invalid user ", " b  "]),
            user in proptest::collection::vec(proptest::sample::select(vec![
                "root", "a b", "x:y", " from ", "from", "192.0.2.1", " ", ":", "f", "fro",
                "invalid user ",
            ]), 0..4),
            host in proptest::sample::select(vec![
                "192.0.2.1", "203.0.113.201", "2001:db8::1", "host.example.org", "a",
                "192.0.2.1234",
            ]),
            tail in proptest::collection::vec(proptest::sample::select(vec![
                " port 22", " on eth0", " ssh2", ": ", " from 198.51.100.3 port 1", " ", "x",
                ": RSA x",
            ]), 0..4),
        ) {
            let line = format!("{head}{method}{sep}{} from {host}{}", user.concat(), tail.concat());
            cases_agree(&CASES, &line)?;
        }
    }
}
