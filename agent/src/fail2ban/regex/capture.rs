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
//! Working the cuts out builds DFAs and one-pass DFAs, millions of
//! instructions per branch, which a short log never earns back: a branch is
//! cut at its [`CUT_AFTER`]-th match, and each cut is decided on a DFA of the
//! piece since the cut before (not of everything before it).
//!
//! [`branches`]: super::branches

use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use regex_automata::dfa::onepass;
use regex_automata::nfa::thompson::{self, NFA, backtrack, pikevm};
use regex_automata::util::pool::Pool;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::{Anchored, Input};
use regex_syntax::hir::{Hir, HirKind};

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
    hir: Hir,
    /// As the search's `utf8_empty`.
    utf8: bool,
    size_limit: usize,
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
    /// The segment after `<HOST>`.
    rest: Engine,
    /// The slots `rest`'s automaton writes.
    rest_slots: usize,
}

#[derive(Debug)]
struct Caches {
    whole: EngineCache,
    /// Empty until the cuts are built.
    segments: Vec<(EngineCache, Option<EngineCache>)>,
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
        // As `meta` decides: one-pass only where there are groups to find
        // and no Unicode word boundary (the one-pass DFA cannot run one).
        let props = hir.properties();
        let onepass = ((segment || props.explicit_captures_len() > 0)
            && !props.look_set().contains_word_unicode())
        .then(|| onepass_dfa(&nfa))
        .flatten();
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
        let whole = Engine::new(compile(hir, utf8, size_limit)?, hir, false)?;
        let plan = whole.onepass.is_none().then(|| Plan {
            hir: hir.clone(),
            utf8,
            size_limit,
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
        if !segments.is_empty() && Self::by_segments(segments, c, hay, start, end, slots) {
            return true;
        }
        let input = Input::new(hay).span(start..end).anchored(Anchored::Yes);
        e.whole.search(&mut c.whole, &input, slots)
    }

    /// Each segment from where the one before ended; `false` (then the
    /// pattern runs as one) only if a segment found nothing, which the cut
    /// rules out.
    fn by_segments(
        segments: &[Segment],
        c: &mut Caches,
        hay: &str,
        start: usize,
        end: usize,
        slots: &mut [Option<NonMaxUsize>],
    ) -> bool {
        if c.segments.len() != segments.len() {
            // This cache's first run since the cuts were built.
            c.segments = segments
                .iter()
                .map(|s| (s.engine.cache(), s.host.as_ref().map(|h| h.rest.cache())))
                .collect();
        }
        slots.fill(None);
        let mut at = start;
        for (seg, cache) in segments.iter().zip(c.segments.iter_mut()) {
            let mut own = [None; SEGMENT_SLOTS];
            let own = &mut own[..seg.slot_len];
            let quad = seg.host.as_ref().zip(cache.1.as_mut());
            if !quad.is_some_and(|(h, c)| h.search(c, hay, at, end, own)) {
                let input = Input::new(hay).span(at..end).anchored(Anchored::Yes);
                if !seg.engine.search(&mut cache.0, &input, own) {
                    return false;
                }
            }
            let Some(to) = own.get(1).copied().flatten() else {
                return false;
            };
            if let (Some(out), Some(mine)) =
                (slots.get_mut(seg.slots.clone()), own.get(seg.slots.clone()))
            {
                out.copy_from_slice(mine);
            }
            at = to.get();
        }
        if at != end || slots.len() < 2 {
            return false;
        }
        slots[0] = NonMaxUsize::new(start);
        slots[1] = NonMaxUsize::new(end);
        true
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
        self.segments.get_or_init(|| {
            let compile = |h: &Hir| compile(h, plan.utf8, plan.size_limit);
            segments(&plan.hir, &compile, !plan.utf8).unwrap_or_default()
        })
    }
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
    /// The segment's first parse where the address is a dotted quad at
    /// `at` and the rest matches after it: its groups in `own`, its end in
    /// `own[1]`. `false`: the segment's engine decides.
    fn search(
        &self,
        c: &mut EngineCache,
        hay: &str,
        at: usize,
        end: usize,
        own: &mut [Option<NonMaxUsize>],
    ) -> bool {
        let Some(quad) = dotted_quad(&hay.as_bytes()[..end], at) else {
            return false;
        };
        let after = quad + usize::from(hay.as_bytes()[..end].get(quad) == Some(&b']'));
        let input = Input::new(hay).span(after..end).anchored(Anchored::Yes);
        if own.len() <= self.ip4 + 1 {
            return false;
        }
        let Some(rest) = own.get_mut(..self.rest_slots) else {
            return false;
        };
        if !self.rest.search(c, &input, rest) {
            return false;
        }
        let to = rest[1];
        own[self.ip4] = NonMaxUsize::new(at);
        own[self.ip4 + 1] = NonMaxUsize::new(quad);
        own[0] = NonMaxUsize::new(at);
        own[1] = to;
        true
    }
}

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

/// `<HOST>` as an ASCII pattern's item, with its groups numbered from
/// `ip4`: an item that prints as this is `<HOST>`.
fn host_item() -> Option<String> {
    let text = super::resolve_tags("<HOST>", true);
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&super::to_rust_syntax(&text))
        .ok()?;
    Some(hir.to_string())
}

/// The first slot of the group named `ip4` in `h`.
fn ip4_slot(h: &Hir) -> Option<usize> {
    match h.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some("ip4") => Some(c.index as usize * 2),
        HirKind::Capture(c) => ip4_slot(&c.sub),
        HirKind::Repetition(r) => ip4_slot(&r.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().find_map(ip4_slot),
        _ => None,
    }
}

/// `hir` cut into segments ([module docs](self)), `None` where no cut
/// leaves a one-pass segment of more than an assertion. `ascii`: the
/// pattern's ASCII form, where `<HOST>`'s digits are ASCII ones ([`Host`]).
fn segments(
    hir: &Hir,
    compile: &dyn Fn(&Hir) -> Result<NFA, String>,
    ascii: bool,
) -> Option<Box<[Segment]>> {
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    // Where everything before can end at one place only. A cut after an
    // item that can end at several places is never one (it could end there
    // or later), so only the items after a fixed-length or literal end are
    // tried, from the left, up to the first that is not a cut, and never
    // past `<HOST>`, whose forms overlap (and whose DFA is costly to build).
    let host = ascii.then(host_item).flatten();
    let is_host = |h: &Hir| host.as_ref().is_some_and(|t| h.to_string() == *t);
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
    if cuts.is_empty() {
        return None;
    }
    // Segments between cuts, each joined to the next where the two stay
    // one-pass.
    let mut bounds = vec![0];
    bounds.extend(cuts);
    bounds.push(items.len());
    let build = |lo: usize, hi: usize| -> Option<(Hir, NFA, bool, usize)> {
        let h = Hir::concat(items[lo..hi].to_vec());
        let nfa = compile(&h).ok()?;
        let one = onepass_dfa(&nfa).is_some();
        Some((h, nfa, one, lo))
    };
    let mut out = Vec::new();
    let (mut lo, mut hi) = (bounds[0], bounds[1]);
    let mut current = build(lo, hi)?;
    for &next in &bounds[2..] {
        if current.2 {
            let joined = build(lo, next)?;
            if joined.2 {
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
        |(h, _, one, _): &(Hir, NFA, bool, usize)| *one && h.properties().minimum_len() != Some(0);
    if out.len() < 2 || !out.iter().any(decided) {
        return None;
    }
    let ends: Vec<usize> = out
        .iter()
        .skip(1)
        .map(|s| s.3)
        .chain([items.len()])
        .collect();
    out.into_iter()
        .zip(ends)
        .map(|((h, nfa, _, lo), hi)| {
            let engine = Engine::new(nfa, &h, true).ok()?;
            let host = is_host(&items[lo])
                .then(|| {
                    let rest = Hir::concat(items[lo + 1..hi].to_vec());
                    let engine = Engine::new(compile(&rest).ok()?, &rest, true).ok()?;
                    Some(Host {
                        ip4: ip4_slot(&items[lo])?,
                        rest_slots: engine.backtrack.get_nfa().group_info().slot_len(),
                        rest: engine,
                    })
                })
                .flatten();
            let slot_len = engine.backtrack.get_nfa().group_info().slot_len();
            let slots = own_slots(&h)?;
            let host = host.filter(|h| h.rest_slots <= slot_len && h.ip4 + 1 < slot_len);
            (slot_len <= SEGMENT_SLOTS && slots.end <= slot_len).then_some(Segment {
                engine,
                host,
                slots,
                slot_len,
            })
        })
        .collect()
}

/// Whether every match of `items` from a given start ends at one place.
fn ends_once_after(items: &[Hir]) -> bool {
    let piece = Hir::concat(items.to_vec());
    let props = piece.properties();
    (props.minimum_len().is_some() && props.minimum_len() == props.maximum_len())
        || super::ends_once(&piece, CUT_DFA_LIMIT)
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
