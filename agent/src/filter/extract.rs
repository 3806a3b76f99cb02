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
//! - Where `A` (anchored) or `B` is made of words, optional words, alternatives
//!   and byte-class fields, as filters write them, a [`skeleton`] program of
//!   literal compares and class runs checks it instead of a DFA walk, and notes
//!   `A`'s named group on the way.
//!
//! The result is the **last** place on the line where an address makes the whole
//! regex match. Built-in filters put `<HOST>` right before a tail the logging
//! program writes itself (` port 22`), so the last such place is the real one even
//! when a user name or URL imitates the line.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use regex_automata::dfa::dense::{self, DFA};
use regex_automata::dfa::{Automaton, StartKind};
use regex_automata::nfa::thompson;
use regex_automata::util::primitives::StateID;
use regex_automata::{Anchored, Input, MatchError};
use regex_syntax::hir::Hir;

use super::hostname;
use super::pattern::{Split, syntax_config};
use crate::addr;

mod skeleton;
use skeleton::{Lead, Skeleton, same};

/// The longest address text [`addr::parse_ip`] accepts.
const MAX_ADDR_LEN: usize = 45;

/// The bytes of address text, as a table: the run of them after every
/// candidate position is measured, a look-up per byte.
static ADDR_CHARS: [bool; 256] = {
    let mut table = [false; 256];
    let mut k = 0;
    while k < 256 {
        let b = k as u8;
        table[k] = b.is_ascii_hexdigit() || b == b':' || b == b'.';
        k += 1;
    }
    table
};

fn is_addr_char(b: u8) -> bool {
    ADDR_CHARS[usize::from(b)]
}

/// Size limits for one fully compiled DFA: a regex whose DFA would be bigger is
/// searched with the slower engines instead.
const DFA_SIZE_LIMIT: usize = 4 << 20;
const DETERMINIZE_SIZE_LIMIT: usize = 16 << 20;

/// How every DFA here is built: within the size limits, without
/// acceleration (the texts are short).
fn dfa_config(kind: regex_automata::MatchKind, start: StartKind) -> dense::Config {
    dense::Config::new()
        .start_kind(start)
        .match_kind(kind)
        .accelerate(false)
        .dfa_size_limit(Some(DFA_SIZE_LIMIT))
        .determinize_size_limit(Some(DETERMINIZE_SIZE_LIMIT))
}

/// Compiles `patterns` into one dense DFA that searches only anchored, reverse when
/// `reverse`. `None` when it would exceed the size limits.
pub fn dense_anchored(
    patterns: &[&str],
    reverse: bool,
    kind: regex_automata::MatchKind,
) -> Option<DFA<Vec<u32>>> {
    dense::Builder::new()
        .configure(dfa_config(kind, StartKind::Anchored))
        .syntax(syntax_config())
        .thompson(thompson::Config::new().reverse(reverse).utf8(false))
        .build_many(patterns)
        .ok()
}

/// The compiled fast path of one split pattern: decides on its own whether the
/// pattern matches a text, and where its address is.
#[derive(Debug)]
pub struct FastHost {
    suffix: Option<LastLiteral>,
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
    after: AfterDfa,
    /// `B` as literal compares and byte-class runs, where it has that shape
    /// (` port \d+`, `(?: \[preauth\])?$`): checked instead of `after`.
    after_skeleton: Option<Skeleton>,
    /// `B` as ` port \d+` (or optional) and the rest, where it has that
    /// shape: checked instead of `after_skeleton`, with `REST`'s verdict
    /// remembered by the text after the port (see [`Lead`]).
    after_lead: Option<Lead>,
    /// Its anchored start state by the byte before the search (see
    /// [`StartTable`]): worked out once here instead of at every candidate.
    after_starts: Option<StartTable>,
    /// The bytes `B`'s match can begin with (or follow, when `B` matches the
    /// empty string): an address whose next byte is not one cannot be the
    /// address, which rules out the shorter cuts of an address run (and their
    /// parse) for the price of a table look-up.
    after_first: ByteSet,
    /// Checks `A` (when it is [`Before::Whole`]) and finds its named group in
    /// the same walk, so a matched line's capture costs no second search.
    plan: Option<CapturePlan>,
    /// `A` as parsed, for a [`Before::Skeleton`] that is built again to note
    /// a plan's group.
    before_hir: Option<Hir>,
    /// `A` is a [`Before::Skeleton`] that [`Skeleton::match_start`] walks:
    /// where `A` ends is found forward, with no search for its last literal.
    forward: bool,
}

/// The DFA of `B`: built with the fast path where it is walked, else at its
/// first use.
#[derive(Debug)]
enum AfterDfa {
    Built(DFA<Vec<u32>>),
    Later(Hir, OnceLock<DFA<Vec<u32>>>),
}

impl std::ops::Deref for AfterDfa {
    type Target = DFA<Vec<u32>>;

    fn deref(&self) -> &DFA<Vec<u32>> {
        match self {
            AfterDfa::Built(dfa) => dfa,
            AfterDfa::Later(hir, dfa) => dfa.get_or_init(|| {
                dense_hir(hir, regex_automata::MatchKind::LeftmostFirst)
                    .expect("the DFA of a skeleton's small regex fits the limits")
            }),
        }
    }
}

/// What [`FastHost::find_at_with`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The address, where it starts, and what checking the text before it
    /// settled about its named group.
    Addr(IpAddr, usize, GroupAt),
    /// No address where `<HOST>` stands (a host name may be there).
    NoAddr,
    /// Nothing at `<HOST>` (an address or a host name) can make the pattern
    /// match: the text before `<HOST>` matches nowhere, or (plain text
    /// before `<HOST>`, anchored) it ends only where neither an address that
    /// fits nor a host name follows.
    Impossible,
}

/// A regex without `<HOST>` that stands for a few whole texts, checked at
/// the text start by comparing them. sshd's aggressive
/// `kex_exchange_identification: ...` attempt (fixed words, optional words and
/// alternatives: 32 texts) matches about one line in a hundred under attack;
/// the regex engine's lazy DFA there costs a thousand instructions and some
/// fifty cold cache lines a line, the compares a few dozen instructions over
/// texts that sit together.
#[derive(Debug)]
pub struct TextSet {
    /// Every match is one of these, in the regex's priority order.
    texts: Box<[Box<[u8]>]>,
    /// The regex ends with `$` (the text's end): a match is all of the text,
    /// not only its start.
    whole: bool,
}

/// Most texts in a [`TextSet`]: beyond, a line that matches none costs more
/// compares than the lazy DFA's walk.
const MAX_TEXTS: usize = 64;

impl TextSet {
    /// The texts `hir` matches, when they are few and it looks at nothing but
    /// the text's start (first) and end (last): the prefix literals of the
    /// rest, if every one of them is a whole match (exact). `None` otherwise.
    pub fn of_hir(hir: &Hir) -> Option<TextSet> {
        use regex_syntax::hir::literal::Extractor;
        use regex_syntax::hir::{HirKind, Look};
        let mut items: &[Hir] = match hir.kind() {
            HirKind::Concat(items) => items,
            _ => std::slice::from_ref(hir),
        };
        while let Some((first, rest)) = items.split_first()
            && matches!(first.kind(), HirKind::Look(Look::Start))
        {
            items = rest;
        }
        let mut whole = false;
        if let Some((last, rest)) = items.split_last()
            && matches!(last.kind(), HirKind::Look(Look::End))
        {
            whole = true;
            items = rest;
        }
        // The extractor reads any other look-around as the empty text.
        if items.iter().any(|h| !h.properties().look_set().is_empty()) {
            return None;
        }
        let seq = Extractor::new().extract(&Hir::concat(items.to_vec()));
        let lits = seq.literals()?;
        if !seq.is_exact() || lits.len() > MAX_TEXTS {
            return None;
        }
        Some(TextSet {
            texts: lits.iter().map(|l| l.as_bytes().into()).collect(),
            whole,
        })
    }

    /// The texts, for the tests that hold them to the regex.
    #[cfg(test)]
    pub fn texts(&self) -> &[Box<[u8]>] {
        &self.texts
    }

    /// Whether the regex matches `text` from its start.
    #[inline]
    pub fn matches(&self, text: &[u8]) -> bool {
        self.texts.iter().any(|t| {
            let at = if self.whole {
                text
            } else {
                text.get(..t.len()).unwrap_or_default()
            };
            same(at, t)
        })
    }
}

/// Where the one named group of the text before `<HOST>` is, as far as the
/// address path found out (see [`CapturePlan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAt {
    /// Not worked out: whoever wants it searches.
    Unknown,
    /// The group took no part in the match.
    Absent,
    /// Its span in the searched text.
    At(usize, usize),
}

/// What one pattern's skeletons last decided, per thread (kept in the
/// matcher's `Scratch`, one per pattern): a verdict of a [`Skeleton`]
/// depends only on the bytes it reads, and a source repeats those bytes line
/// after line. sshd writes `pam_unix(sshd:auth): authentication failure;
/// logname= uid=0 euid=0 tty=ssh ruser= rhost=` (about 90 bytes of literal
/// compares and class runs) before every PAM failure's address, and
/// `Failed password for root from ` before most failed passwords: a text the
/// pattern checked one or two lines ago costs a compare of its bytes
/// instead of a walk of the program (with the named group's span, which is
/// a function of the same bytes).
#[derive(Debug, Default)]
pub struct Memo {
    /// `A`, checked by [`Skeleton::full_match`] on the text before the address.
    before: Recent<Option<GroupAt>>,
    /// `B`, checked by [`Skeleton::matches_at`] on the text after it; with a
    /// [`Lead`], its `REST` on that text (the lead left out).
    after: Recent<bool>,
    /// A [`Lead`]'s `REST`, on the text after the lead's run: ` ssh2` after
    /// ` port 22`, the same on most lines where `B`'s text never is.
    rest: Recent<bool>,
    /// A forward [`Skeleton`]'s `A` (see [`Skeleton::match_start`]), by the
    /// prefix it matched: a line that starts with that text has `A` end
    /// there too, and nowhere else.
    ahead: Recent<Option<GroupAt>>,
}

/// How many texts a [`Recent`] remembers.
const RECENT: usize = 4;

/// The last few texts a program decided on, and its verdicts: several, so
/// that lines alternating between forms of a pattern (`Disconnected from
/// user ...`, `Disconnected from ...`), or between sources, stay
/// remembered; and the one asked for the longest time ago is forgotten
/// first, so a text that keeps coming back (`Failed password for root from
/// `) stays among texts that come once (`Failed password for invalid user
/// admin from `).
#[derive(Debug)]
struct Recent<T> {
    slots: [(Vec<u8>, Option<T>); RECENT],
    /// When each slot was last asked for, by `clock`.
    used: [u64; RECENT],
    clock: u64,
}

impl<T> Default for Recent<T> {
    fn default() -> Recent<T> {
        Recent {
            slots: std::array::from_fn(|_| (Vec::new(), None)),
            used: [0; RECENT],
            clock: 0,
        }
    }
}

impl<T: Copy> Recent<T> {
    /// The verdict on `text`, from memory or from `decide` (then remembered).
    #[inline]
    fn get_or(&mut self, text: &[u8], decide: impl FnOnce() -> T) -> T {
        if let Some((_, v)) = self.find(|seen| same(seen, text)) {
            return v;
        }
        let v = decide();
        self.remember(text, v);
        v
    }

    /// The first slot `fits` and its verdict, noted as asked for now.
    #[inline(always)]
    fn find(&mut self, fits: impl Fn(&[u8]) -> bool) -> Option<(usize, T)> {
        for (k, (seen, verdict)) in self.slots.iter().enumerate() {
            if let Some(v) = verdict
                && fits(seen)
            {
                self.clock += 1;
                self.used[k] = self.clock;
                return Some((k, *v));
            }
        }
        None
    }

    /// Puts `text` and its verdict in place of the slot asked for the
    /// longest time ago.
    fn remember(&mut self, text: &[u8], v: T) {
        let k = (0..RECENT).min_by_key(|&k| self.used[k]).unwrap_or(0);
        self.clock += 1;
        self.used[k] = self.clock;
        let (seen, verdict) = &mut self.slots[k];
        // Reuses the slot's buffer: no allocation once it is as long as the
        // texts it holds.
        seen.clear();
        seen.extend_from_slice(text);
        *verdict = Some(v);
    }
}

impl Recent<Option<GroupAt>> {
    /// The prefix of `text` that `decide` finds (its length and group), from
    /// memory where `text` starts with a remembered text: `decide` answers
    /// as [`Skeleton::match_start`] does, from the bytes of a prefix alone
    /// (the match, or as many bytes as settled that there is none), so any
    /// text that starts with those bytes has the same answer. A text whose
    /// end settled it is not remembered.
    #[inline]
    fn get_or_prefix(
        &mut self,
        text: &[u8],
        decide: impl FnOnce() -> Result<(usize, GroupAt), Option<usize>>,
    ) -> Option<(usize, GroupAt)> {
        if let Some((k, v)) =
            self.find(|seen| text.get(..seen.len()).is_some_and(|h| same(seen, h)))
        {
            return v.map(|g| (self.slots[k].0.len(), g));
        }
        let (len, found) = match decide() {
            Ok((len, g)) => (len, Some(g)),
            Err(Some(len)) => (len, None),
            Err(None) => return None,
        };
        self.remember(&text[..len], found);
        found.map(|g| (len, g))
    }
}

/// A set of bytes, as a table.
type ByteSet = Box<[bool; 256]>;

/// The anchored start states of a forward DFA by the byte before the search
/// (the last byte of an address): the library works out that context from an
/// `Input` at every call, which costs more than the short walk that follows.
#[derive(Debug)]
struct StartTable(Box<[StateID; 257]>);

impl StartTable {
    /// `None` when some context has no start state (a quit byte): then the
    /// library decides at each search, and reports it.
    fn new(dfa: &DFA<Vec<u32>>) -> Option<StartTable> {
        use regex_automata::util::start;
        let mut table = Box::new([StateID::ZERO; 257]);
        let contexts = std::iter::once(None).chain((0..=255u8).map(Some));
        for (k, look_behind) in contexts.enumerate() {
            let config = start::Config::new()
                .anchored(Anchored::Yes)
                .look_behind(look_behind);
            table[k] = dfa.start_state(&config).ok()?;
        }
        Some(StartTable(table))
    }

    /// The start state of a search of `hay` from `at`.
    #[inline]
    fn at(&self, hay: &[u8], at: usize) -> StateID {
        let k = at.checked_sub(1).map_or(0, |p| usize::from(hay[p]) + 1);
        self.0[k]
    }
}

/// The bytes after which an anchored search of forward `dfa` is not dead at
/// once, from any start state (the start state depends on the byte before).
fn first_bytes(dfa: &DFA<Vec<u32>>) -> ByteSet {
    use regex_automata::util::start;
    let mut set = Box::new([false; 256]);
    // A handful of distinct start states at most (by the kind of byte before).
    let mut starts = Vec::new();
    let look_behinds = std::iter::once(None).chain((0..=255u8).map(Some));
    for look_behind in look_behinds {
        let config = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(look_behind);
        let Ok(sid) = dfa.start_state(&config) else {
            // No start state for this context: nothing can be ruled out.
            return Box::new([true; 256]);
        };
        if !starts.contains(&sid) {
            starts.push(sid);
        }
    }
    for sid in starts {
        for b in 0..=255u8 {
            if !dfa.is_dead_state(dfa.next_state(sid, b)) {
                set[usize::from(b)] = true;
            }
        }
    }
    set
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
    /// Anchored `A` made of literals and runs of a byte class, each run followed
    /// by a literal that cannot continue it: checked forward without an automaton.
    Segments(Segments),
    /// `A` is plain text: compared directly.
    Literal(Box<[u8]>),
    /// Anchored `A` of fixed words, optional words, alternatives and byte-class
    /// fields: checked forward by compares, and its named group noted on the
    /// way (see [`skeleton`]).
    Skeleton(Skeleton),
}

impl FastHost {
    /// Compiles the fast path for a split pattern; `anchored` says the filter's
    /// regexes match only at the start of the text (syslog messages). `None` if
    /// the halves do not compile to DFAs of bounded size (then the capturing
    /// search is used).
    pub fn build(split: &Split, anchored: bool) -> Option<FastHost> {
        let first = regex_automata::MatchKind::LeftmostFirst;
        let anchored = anchored || split.before_anchored;
        // Anchored, a skeleton of `A` takes its gap (`.*` before literal
        // text) as a run that ends before that text, and notes the group
        // on its walk: the two DFAs of a gap cost more to build than all
        // the rest of a pattern's fast path.
        let gap_skeleton = || {
            anchored
                .then(|| Skeleton::of_hir(&split.before_hir, None))
                .flatten()
        };
        let before = match (&split.gap, &split.before_literal) {
            (Some(_), _) if let Some(sk) = gap_skeleton() => Before::Skeleton(sk),
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
                let segments = || anchored.then(|| Segments::of_hir(&split.before_hir));
                let skeleton = || anchored.then(|| Skeleton::of_hir(&split.before_hir, None));
                if let Some(seg) = segments().flatten() {
                    Before::Segments(seg)
                } else if let Some(sk) = skeleton().flatten() {
                    Before::Skeleton(sk)
                } else {
                    let text = if anchored {
                        format!(r"\A(?:{})", split.before)
                    } else {
                        split.before.clone()
                    };
                    Before::Whole(Box::new(dense_anchored(&[&text], true, first)?))
                }
            }
        };
        let after_skeleton = Skeleton::prefix_of_hir(&split.after_hir);
        let after_lead = after_skeleton
            .as_ref()
            .and_then(|_| Lead::of_hir(&split.after_hir));
        // Where the skeleton checks `B`, the DFA is never walked: it is
        // compiled only if asked for (tests), and the skeleton tells the
        // bytes a match can begin with.
        let (after, after_first, after_starts) = match &after_skeleton {
            Some(sk) => (
                AfterDfa::Later(split.after_hir.clone(), OnceLock::new()),
                sk.first_byte_set(),
                None,
            ),
            None => {
                let dfa = dense_hir(&split.after_hir, first)?;
                let after_first = first_bytes(&dfa);
                let after_starts = StartTable::new(&dfa);
                (AfterDfa::Built(dfa), after_first, after_starts)
            }
        };
        let suffix = split.before_suffix.as_deref().map(LastLiteral::new);
        let before_hir = matches!(before, Before::Skeleton(_)).then(|| split.before_hir.clone());
        Some(
            FastHost {
                suffix,
                after_prefix: split.after_prefix.clone(),
                head_literal: split.before_prefix.clone().filter(|_| anchored),
                anchored,
                starts_at_zero: split.before_empty && anchored,
                before,
                after,
                after_skeleton,
                after_lead,
                after_first,
                after_starts,
                plan: None,
                before_hir,
                forward: false,
            }
            .forward_checked(),
        )
    }

    /// Lets `plan` (of this pattern's text before `<HOST>`, anchored at the
    /// text start) check that text where a DFA walk over it would run anyway;
    /// a [`Before::Skeleton`] notes the plan's group itself instead.
    pub fn with_plan(mut self, plan: Option<CapturePlan>) -> FastHost {
        if self.anchored && matches!(self.before, Before::Whole(_)) {
            self.plan = plan;
        } else if let Some(sk) = plan
            .as_ref()
            .zip(self.before_hir.as_ref())
            .and_then(|(p, hir)| Skeleton::of_hir(hir, Some(&*p.name)))
        {
            // The program notes the plan's group itself, on its one walk.
            self.before = Before::Skeleton(sk);
        }
        self.forward_checked()
    }

    /// Sets [`FastHost::forward`] for the current `before`.
    fn forward_checked(mut self) -> FastHost {
        self.forward = self.anchored
            && self.plan.is_none()
            && matches!(&self.before, Before::Skeleton(sk) if sk.is_forward());
        self
    }

    /// The general path only, as before the forward walk: what the forward
    /// walk is held to in the tests.
    #[cfg(test)]
    fn without_forward(mut self) -> FastHost {
        self.forward = false;
        self
    }

    /// Compiles now what is otherwise compiled at its first use.
    #[cfg(test)]
    pub fn build_now(&self) {
        if let Some(plan) = &self.plan {
            plan.build_now();
        }
    }

    /// The address in `hay`, if the pattern matches it: the last place on the line
    /// where an address makes the whole pattern match, and there the longest
    /// address. `Err` when a DFA could not search (a quit byte); the caller then
    /// falls back to the capturing search.
    #[cfg(test)]
    pub fn find(&self, hay: &[u8]) -> Result<Option<IpAddr>, MatchError> {
        Ok(match self.find_at(hay)? {
            Found::Addr(ip, ..) => Some(ip),
            Found::NoAddr | Found::Impossible => None,
        })
    }

    /// [`FastHost::find_at_with`] without a memory of earlier lines.
    #[cfg(test)]
    pub fn find_at(&self, hay: &[u8]) -> Result<Found, MatchError> {
        self.find_at_with(hay, &mut Memo::default())
    }

    /// The address as `find` gives it, and the offset where it starts (where
    /// `A` ends); or whether `A` cannot match anywhere in `hay`, whatever
    /// stands at `<HOST>`. `memo` is this pattern's memory of the texts its
    /// skeletons decided on (see [`Memo`]).
    ///
    /// `#[inline]`: `try_pattern` calls this once per candidate line, and the
    /// compiler stopped inlining it when unrelated code grew (ccfce06); the call
    /// alone cost ~20 instructions per line on the built-in sshd filter.
    #[inline]
    pub fn find_at_with(&self, hay: &[u8], memo: &mut Memo) -> Result<Found, MatchError> {
        if let Some(lit) = &self.head_literal
            && !hay.starts_with(lit)
        {
            return Ok(Found::Impossible);
        }
        if self.forward
            && let Before::Skeleton(sk) = &self.before
        {
            // `A` ends in one place at most, found forward (see
            // `Skeleton::match_start`); the search for its last literal and
            // the checks at every place it occurs are left out. Nothing
            // matches where `A` does not: a name cannot either.
            let Some((i, g)) = memo.ahead.get_or_prefix(hay, || sk.match_start(hay)) else {
                return Ok(Found::Impossible);
            };
            // The general path, past its literal search, would find `A` to
            // end there only, and say no address when none fits.
            return Ok(match self.addr_at(hay, i, memo)? {
                Some(ip) => Found::Addr(ip, i, g),
                None => Found::NoAddr,
            });
        }
        let found = |r: Option<(IpAddr, GroupAt)>, i| match r {
            Some((ip, g)) => Found::Addr(ip, i, g),
            None => Found::NoAddr,
        };
        // Where `HEAD` ends at the earliest: no address can start before.
        let head_end = match &self.before {
            Before::Gap { head, .. } => {
                let mode = if self.anchored {
                    Anchored::Yes
                } else {
                    Anchored::No
                };
                match first_match_end(head, hay, 0, mode)? {
                    Some(end) => end,
                    None => return Ok(Found::Impossible),
                }
            }
            Before::Whole(_) | Before::Segments(_) | Before::Skeleton(_) => 0,
            // Anchored: the address can only start right after the text.
            Before::Literal(lit) if self.anchored => {
                if !hay.starts_with(lit) {
                    return Ok(Found::Impossible);
                }
                let i = lit.len();
                return Ok(match self.try_at_with(hay, i, 0, memo)? {
                    Some((ip, g)) => Found::Addr(ip, i, g),
                    // `A` ends only here: a name could stand only here.
                    None if hostname::starts_with_name(&hay[i..]) => Found::NoAddr,
                    None => Found::Impossible,
                });
            }
            Before::Literal(_) => 0,
        };
        if self.starts_at_zero {
            return Ok(found(self.try_at_with(hay, 0, head_end, memo)?, 0));
        }
        if let Some(lit) = &self.suffix {
            let mut end = hay.len();
            let mut seen = false;
            while let Some(pos) = lit.rfind(&hay[..end]) {
                seen = true;
                let i = pos + lit.text.len();
                if i < head_end {
                    break;
                }
                // Most places after a short literal (` `) start no address:
                // ruled out here without the call.
                if starts_addr_run(&hay[i..])
                    && let Some((ip, g)) = self.try_at_with(hay, i, head_end, memo)?
                {
                    return Ok(Found::Addr(ip, i, g));
                }
                end = i - 1;
            }
            // `A` ends with the literal: without one, `A` ends nowhere.
            return Ok(if seen {
                Found::NoAddr
            } else {
                Found::Impossible
            });
        }
        // No literal before the address: every run of address characters, last
        // first; within a run, leftmost start first (the longest address).
        let mut end = hay.len();
        while let Some(last) = hay[..end].iter().rposition(|b| is_addr_char(*b)) {
            let start = hay[..last]
                .iter()
                .rposition(|b| !is_addr_char(*b))
                .map_or(0, |p| p + 1);
            // Every address has a `.` or a `:`: a run of hex digits alone
            // (`29338`, the `ea` of `[preauth]`) holds none at any place.
            if hay[start..=last].iter().any(|b| matches!(b, b'.' | b':')) {
                for i in start.max(head_end)..=last {
                    if let Some((ip, g)) = self.try_at_with(hay, i, head_end, memo)? {
                        return Ok(Found::Addr(ip, i, g));
                    }
                }
            }
            if start <= head_end {
                break;
            }
            end = start;
        }
        Ok(Found::NoAddr)
    }

    /// [`FastHost::try_at_with`] without a memory of earlier lines.
    #[cfg(test)]
    fn try_at(
        &self,
        hay: &[u8],
        i: usize,
        head_end: usize,
    ) -> Result<Option<(IpAddr, GroupAt)>, MatchError> {
        self.try_at_with(hay, i, head_end, &mut Memo::default())
    }

    /// The longest address starting at `i` after which `B` matches, if `A` ends
    /// at `i`.
    fn try_at_with(
        &self,
        hay: &[u8],
        i: usize,
        head_end: usize,
        memo: &mut Memo,
    ) -> Result<Option<(IpAddr, GroupAt)>, MatchError> {
        let Some(ip) = self.addr_at(hay, i, memo)? else {
            return Ok(None);
        };
        // `A` does not depend on where the address ends: checked once.
        Ok(self
            .before_remembered(hay, i, head_end, memo)?
            .map(|g| (ip, g)))
    }

    /// The longest address starting at `i` after which `B` matches, whatever
    /// stands before `i`.
    #[inline(always)]
    fn addr_at(&self, hay: &[u8], i: usize, memo: &mut Memo) -> Result<Option<IpAddr>, MatchError> {
        // The run of address characters here (none past the end), and where
        // its colons are, so that each cut below knows its own: text with
        // exactly one colon is neither IPv4 (none) nor IPv6 (at least two, as
        // in `::`), so a `host:port` or `word:` cut costs no parse.
        let (run, colon_bits) = addr_run(hay, i);
        for len in (2..=run).rev() {
            let colons = colon_bits & ((1 << len) - 1);
            if colons.is_power_of_two() {
                continue;
            }
            // No colon: only a dotted quad, seven bytes at least; and the
            // shorter cuts have no colon either.
            if colons == 0 && len < 7 {
                break;
            }
            let j = i + len;
            if hay
                .get(j)
                .is_some_and(|b| !self.after_first[usize::from(*b)])
            {
                continue;
            }
            if let Some(lit) = &self.after_prefix
                && !hay[j..].starts_with(lit)
            {
                continue;
            }
            let Some(ip) = addr::parse_addr_chars(&hay[i..j], colons != 0) else {
                continue;
            };
            if !self.after_matches(hay, j, memo)? {
                continue;
            }
            return Ok(Some(ip));
        }
        Ok(None)
    }

    /// Whether `B` matches from `j` on.
    #[inline]
    fn after_matches(&self, hay: &[u8], j: usize, memo: &mut Memo) -> Result<bool, MatchError> {
        if let Some(lead) = &self.after_lead {
            // `L C{m,} REST` matches where `REST` does after the whole run
            // (the only place, see `Lead::of_hir`); else, if the lead is
            // optional, where `REST` matches from `j`.
            if let Some(k) = lead.rest_at(hay, j)
                && memo.rest.get_or(&hay[k..], || lead.rest.matches_at(hay, k))
            {
                return Ok(true);
            }
            return Ok(lead.optional
                && memo
                    .after
                    .get_or(&hay[j..], || lead.rest.matches_at(hay, j)));
        }
        if let Some(sk) = &self.after_skeleton {
            // A prefix program reads only the text from `j` on (it has no
            // start test): its verdict is one of those bytes alone.
            return Ok(memo.after.get_or(&hay[j..], || sk.matches_at(hay, j)));
        }
        let start = match &self.after_starts {
            Some(t) => t.at(hay, j),
            None => start_fwd(&self.after, hay, j, hay.len())?,
        };
        Ok(walk_fwd(&self.after, hay, j, start)?.is_some())
    }

    /// [`FastHost::before_ends_at`], from `memo` where the check reads only
    /// `hay[..i]` (a skeleton or segments, both anchored at the text start).
    #[inline]
    fn before_remembered(
        &self,
        hay: &[u8],
        i: usize,
        head_end: usize,
        memo: &mut Memo,
    ) -> Result<Option<GroupAt>, MatchError> {
        let text = &hay[..i];
        Ok(match (&self.before, &self.plan) {
            (Before::Skeleton(sk), None) => memo.before.get_or(text, || sk.full_match(text)),
            (Before::Segments(seg), None) => memo
                .before
                .get_or(text, || seg.matches_all(text).then_some(GroupAt::Unknown)),
            _ => self.before_ends_at(hay, i, head_end)?,
        })
    }

    /// Whether `A` matches a text ending at `i` (starting at 0 when anchored).
    fn before_ends_at(
        &self,
        hay: &[u8],
        i: usize,
        head_end: usize,
    ) -> Result<Option<GroupAt>, MatchError> {
        if let Some(plan) = &self.plan
            && let Some(group) = plan.span(&hay[..i])?
        {
            // The plan's answer is a match of `A` it found.
            return Ok(Some(match group {
                Some(r) => GroupAt::At(r.start, r.end),
                None => GroupAt::Absent,
            }));
        }
        let known = |ok: bool| ok.then_some(GroupAt::Unknown);
        Ok(known(match &self.before {
            Before::Gap { rest, min, .. } => {
                let Some(from) = head_end.checked_add(*min).filter(|f| *f <= i) else {
                    return Ok(None);
                };
                match rest {
                    Rest::Literal(lit) => hay[from..i].ends_with(lit),
                    Rest::Dfa(dfa) => matches_rev(dfa, hay, from, i)?,
                }
            }
            Before::Literal(lit) => hay[..i].ends_with(lit) && (!self.anchored || i == lit.len()),
            Before::Whole(dfa) => matches_rev(dfa, hay, 0, i)?,
            Before::Segments(seg) => seg.matches_all(&hay[..i]),
            Before::Skeleton(sk) => return Ok(sk.full_match(&hay[..i])),
        }))
    }
}

/// The run of address characters at `hay[i..]` (at most [`MAX_ADDR_LEN`]), and
/// its colons as bits (bit `k` for `hay[i + k]`). Measured at every candidate
/// address, so sixteen bytes at a time where the CPU compares that many in one
/// instruction: the byte-by-byte walk it replaces (a table look-up, a colon
/// count and a branch per byte) was the hottest loop of the built-in sshd
/// filter, about 90 instructions a line on an sshd log under attack.
#[inline]
fn addr_run(hay: &[u8], i: usize) -> (usize, u64) {
    let mut run = 0;
    let mut colons = 0;
    while run < MAX_ADDR_LEN {
        let (chars, colon) = addr_classes(hay, i + run);
        // `chars` has no bit 16: the run ends in this block.
        let n = (!chars).trailing_zeros() as usize;
        colons |= u64::from(colon & ((1 << n) - 1)) << run;
        run += n;
        if n < 16 {
            break;
        }
    }
    let run = run.min(MAX_ADDR_LEN);
    (run, colons & ((1 << run) - 1))
}

/// Bits of the address characters and of the colons among the sixteen bytes
/// from `hay[at]` (none past the end), on x86_64 from SSE2 compares. A block
/// that would read past the end is read ending at the end and shifted, so a
/// line's last address costs no byte-by-byte walk either.
#[cfg(target_arch = "x86_64")]
#[inline]
fn addr_classes(hay: &[u8], at: usize) -> (u32, u32) {
    if let Some(block) = hay.get(at..at + 16) {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        return unsafe { sse2_addr_classes(block.try_into().expect("sixteen bytes")) };
    }
    match hay.len().checked_sub(16) {
        Some(from) if at < hay.len() => {
            let block = hay[from..].try_into().expect("sixteen bytes");
            // SAFETY: as above.
            let (chars, colon) = unsafe { sse2_addr_classes(block) };
            let shift = at - from;
            (chars >> shift, colon >> shift)
        }
        _ => addr_classes_bytes(hay, at),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn sse2_addr_classes(block: &[u8; 16]) -> (u32, u32) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: `block` is 16 readable bytes, and `loadu` takes any alignment.
    let x = unsafe { _mm_loadu_si128(block.as_ptr().cast::<__m128i>()) };
    // Signed compares: a byte from 0x80 on is negative, below every range here.
    let within = |v, lo: u8, hi: u8| {
        _mm_and_si128(
            _mm_cmpgt_epi8(v, _mm_set1_epi8((lo - 1) as i8)),
            _mm_cmpgt_epi8(_mm_set1_epi8((hi + 1) as i8), v),
        )
    };
    // `0`-`9` and `:` are adjacent; `a`-`f` take in `A`-`F` with bit 5 set.
    let digits_colon = within(x, b'0', b':');
    let letters = within(_mm_or_si128(x, _mm_set1_epi8(0x20)), b'a', b'f');
    let dot = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'.' as i8));
    let colon = _mm_cmpeq_epi8(x, _mm_set1_epi8(b':' as i8));
    let chars = _mm_or_si128(_mm_or_si128(digits_colon, letters), dot);
    (
        _mm_movemask_epi8(chars) as u32,
        _mm_movemask_epi8(colon) as u32,
    )
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn addr_classes(hay: &[u8], at: usize) -> (u32, u32) {
    addr_classes_bytes(hay, at)
}

/// [`addr_classes`] a byte at a time: short lines, and other CPUs.
fn addr_classes_bytes(hay: &[u8], at: usize) -> (u32, u32) {
    let block = hay.get(at..).unwrap_or_default().iter().take(16);
    block.enumerate().fold((0, 0), |(chars, colon), (k, &b)| {
        (
            chars | u32::from(is_addr_char(b)) << k,
            colon | u32::from(b == b':') << k,
        )
    })
}

/// Whether an address can start `tail`: the run of address characters there
/// (as far as [`FastHost::try_at_with`] looks) holds a `.` or a `:`, as
/// every address does.
#[inline]
fn starts_addr_run(tail: &[u8]) -> bool {
    tail.iter()
        .take(MAX_ADDR_LEN)
        .take_while(|b| is_addr_char(**b))
        .any(|b| matches!(b, b'.' | b':'))
}

/// One piece of a [`Segments`] pattern.
#[derive(Debug)]
enum Segment {
    Literal(Box<[u8]>),
    /// At least `min` bytes of the class, as many as there are.
    Run {
        class: Box<[bool; 256]>,
        min: usize,
    },
}

/// A regex that is a sequence of literals and greedy runs of a byte class
/// (`\S*`, `\d*`, `[a-z0-9_]+`) where each run is last or followed by a literal
/// whose first byte the class does not contain. Such a run can only end at the
/// first byte outside its class, so whether the regex matches a whole text is
/// decided in one forward pass of comparisons and class look-ups: no automaton
/// state has to be carried from byte to byte, which is what makes a DFA walk over
/// a long field list (PAM's `logname= uid= euid= tty= ruser= rhost=`) slow.
#[derive(Debug)]
struct Segments(Box<[Segment]>);

impl Segments {
    /// `None` when `pattern` (anchored at the start, or taken as such) is not of
    /// that form.
    #[cfg(test)]
    fn new(pattern: &str) -> Option<Segments> {
        let hir = regex_automata::util::syntax::parse_with(pattern, &syntax_config()).ok()?;
        Segments::of_hir(&hir)
    }

    /// [`Segments::new`] of a pattern as the parser read it.
    fn of_hir(hir: &Hir) -> Option<Segments> {
        use regex_syntax::hir::{Class, HirKind, Look};
        let items = match hir.kind() {
            HirKind::Concat(items) => items.as_slice(),
            _ => std::slice::from_ref(hir),
        };
        let mut out = Vec::new();
        for (k, item) in items.iter().enumerate() {
            match item.kind() {
                HirKind::Empty => {}
                HirKind::Look(Look::Start) if k == 0 => {}
                HirKind::Literal(lit) => out.push(Segment::Literal(lit.0.clone())),
                HirKind::Repetition(rep) if rep.max.is_none() && rep.min <= 1 => {
                    let HirKind::Class(Class::Bytes(bytes)) = rep.sub.kind() else {
                        return None;
                    };
                    let mut class = Box::new([false; 256]);
                    for r in bytes.ranges() {
                        for b in r.start()..=r.end() {
                            class[usize::from(b)] = true;
                        }
                    }
                    let min = usize::try_from(rep.min).ok()?;
                    out.push(Segment::Run { class, min });
                }
                _ => return None,
            }
        }
        // Each run must be last or followed by a literal it cannot swallow.
        for pair in out.windows(2) {
            match pair {
                [Segment::Run { class, .. }, Segment::Literal(lit)] => {
                    let first = lit.first()?;
                    if class[usize::from(*first)] {
                        return None;
                    }
                }
                [Segment::Run { .. }, Segment::Run { .. }] => return None,
                _ => {}
            }
        }
        Some(Segments(out.into_boxed_slice()))
    }

    /// Whether the pattern matches all of `text`.
    fn matches_all(&self, text: &[u8]) -> bool {
        let mut pos = 0;
        for seg in &self.0 {
            let rest = &text[pos..];
            match seg {
                Segment::Literal(lit) => {
                    if !rest.starts_with(lit) {
                        return false;
                    }
                    pos += lit.len();
                }
                Segment::Run { class, min } => {
                    let n = rest
                        .iter()
                        .position(|b| !class[usize::from(*b)])
                        .unwrap_or(rest.len());
                    if n < *min {
                        return false;
                    }
                    pos += n;
                }
            }
        }
        pos == text.len()
    }
}

/// The last occurrence of a short literal, searched backwards: the rarest byte of
/// the literal by a vectorised scan, then a comparison. Lines are short, so this
/// beats a general substring search, whose set-up costs more than the scan.
#[derive(Debug)]
struct LastLiteral {
    text: Box<[u8]>,
    /// Position in `text` of the byte the scan looks for.
    rare: usize,
}

impl LastLiteral {
    fn new(text: &[u8]) -> LastLiteral {
        let rare = (0..text.len())
            .min_by_key(|&k| byte_rank(text[k]))
            .unwrap_or(0);
        LastLiteral {
            text: Box::from(text),
            rare,
        }
    }

    /// Start of the last occurrence in `hay`.
    fn rfind(&self, hay: &[u8]) -> Option<usize> {
        let n = self.text.len();
        if n == 0 {
            return Some(hay.len());
        }
        if hay.len() < n {
            return None;
        }
        let needle = self.text[self.rare];
        // The rare byte at `p` puts the literal at `p - rare`, which must fit.
        let mut end = hay.len().checked_sub(n - self.rare - 1)?;
        while let Some(p) = memchr::memrchr(needle, &hay[self.rare..end]) {
            let start = p;
            if same(&hay[start..start + n], &self.text) {
                return Some(start);
            }
            end = self.rare + p;
        }
        None
    }
}

/// How common a byte is in log text (lower is rarer): what the backwards literal
/// search looks for.
fn byte_rank(b: u8) -> u8 {
    match b {
        b' ' => 255,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 200,
        b'0'..=b'9' => 180,
        b'a'..=b'z' => 150,
        b'.' | b':' | b'/' | b'-' | b'_' => 120,
        b'A'..=b'Z' => 100,
        _ => 50,
    }
}

/// What reaching state `sid` (after byte `b` at `at`) settles about a match:
/// `Some(true)` a match ended before `b` (matches are seen one byte late),
/// `Some(false)` none can follow, `None` keep going.
#[inline(always)]
fn settled(
    dfa: &DFA<Vec<u32>>,
    sid: StateID,
    b: u8,
    at: usize,
) -> Result<Option<bool>, MatchError> {
    if !dfa.is_special_state(sid) {
        Ok(None)
    } else if dfa.is_match_state(sid) {
        Ok(Some(true))
    } else if dfa.is_dead_state(sid) {
        Ok(Some(false))
    } else if dfa.is_quit_state(sid) {
        Err(MatchError::quit(b, at))
    } else {
        Ok(None)
    }
}

/// Where the earliest match of `dfa` in `hay[from..]` ends (`mode`: anchored at
/// `from` or not). A hand-written loop over the transition table: the library's
/// search routine is built for long texts and costs more to set up than this
/// scan of a few dozen bytes.
fn first_match_end(
    dfa: &DFA<Vec<u32>>,
    hay: &[u8],
    from: usize,
    mode: Anchored,
) -> Result<Option<usize>, MatchError> {
    // Most DFAs here start the same whatever comes before: then skip working
    // out the look-behind.
    let sid = match dfa.universal_start_state(mode) {
        Some(sid) => sid,
        None => dfa.start_state_forward(&Input::new(hay).range(from..).anchored(mode))?,
    };
    walk_fwd(dfa, hay, from, sid)
}

/// [`first_match_end`] from start state `sid`.
fn walk_fwd(
    dfa: &DFA<Vec<u32>>,
    hay: &[u8],
    from: usize,
    mut sid: StateID,
) -> Result<Option<usize>, MatchError> {
    for (at, &b) in hay.iter().enumerate().skip(from) {
        sid = dfa.next_state(sid, b);
        match settled(dfa, sid, b, at)? {
            Some(true) => return Ok(Some(at)),
            Some(false) => return Ok(None),
            None => {}
        }
    }
    let sid = dfa.next_eoi_state(sid);
    Ok(dfa.is_match_state(sid).then_some(hay.len()))
}

/// Whether the anchored forward `dfa` matches `hay` from `at` on (a match of any
/// length).
#[cfg(test)]
fn matches_fwd(dfa: &DFA<Vec<u32>>, hay: &[u8], at: usize) -> Result<bool, MatchError> {
    Ok(first_match_end(dfa, hay, at, Anchored::Yes)?.is_some())
}

/// Whether the anchored reverse `dfa` matches a text ending at `end` and reaching
/// back no further than `start`.
fn matches_rev(
    dfa: &DFA<Vec<u32>>,
    hay: &[u8],
    start: usize,
    end: usize,
) -> Result<bool, MatchError> {
    let mut sid = match dfa.universal_start_state(Anchored::Yes) {
        Some(sid) => sid,
        None => {
            dfa.start_state_reverse(&Input::new(hay).range(start..end).anchored(Anchored::Yes))?
        }
    };
    for at in (start..end).rev() {
        let b = hay[at];
        sid = dfa.next_state(sid, b);
        if let Some(found) = settled(dfa, sid, b, at)? {
            return Ok(found);
        }
    }
    // The byte before the range, or the text's start, decides a match at `start`.
    let sid = match start.checked_sub(1) {
        Some(before) => dfa.next_state(sid, hay[before]),
        None => dfa.next_eoi_state(sid),
    };
    Ok(dfa.is_match_state(sid))
}

/// The one named group of `A` (the text before `<HOST>`), found with DFAs where
/// the address path left off instead of a capturing search.
///
/// A capturing search of `\A(?:A)\z` over the text before the address (which
/// `A` is known to match) costs thousands of instructions per line, most of it
/// the backtracker's bookkeeping. For the shapes filters use, the group's span
/// follows from the regex's priority rules (leftmost-first, as the backtracker
/// reads them) with a few anchored DFA walks:
///
/// - `P (G) T`, `T` literal: `G` ends where `T` starts (`T` is the last bytes
///   of the text in any parse); `G` starts where `P`'s highest-priority match
///   ends, if `G` then matches the bytes between. Every higher-priority parse of
///   `P` ends past `G`'s end, where `G T` cannot fit.
/// - `P (?:Q (G) R)? T`, `R` and `T` literal: the greedy `?` takes the group
///   when `Q G R T` can match the rest of the text after `P` (one DFA decides);
///   then as above within it, else the group takes no part.
///
/// Anything else, or a case where the highest-priority choice does not lead to a
/// match (some lower-priority parse would win), answers `None` and the caller
/// runs the capturing search: the answer is always the capturing search's.
#[derive(Debug, Clone)]
pub struct CapturePlan {
    /// The group's name.
    name: Box<str>,
    /// The pieces, kept until the first [`CapturePlan::span`] compiles them.
    pieces: Arc<PlanPieces>,
    /// `T`: the literal text after the group (or after the optional).
    tail: Box<[u8]>,
    /// The DFAs, compiled at the first [`CapturePlan::span`]: most plans
    /// only tell a [`Skeleton`] which group to note, or answer for the rare
    /// line the address path left unsettled, and their determinization was
    /// a third of a matcher's build. Shared by the plan's clones; `None`
    /// inside when a DFA exceeds the size limits (then the plan cannot tell,
    /// which is always a correct answer).
    dfas: Arc<OnceLock<Option<PlanDfas>>>,
}

/// The pieces of a [`CapturePlan`], as the parser read them.
#[derive(Debug)]
struct PlanPieces {
    /// `P`; `None` when empty.
    pre: Option<Hir>,
    /// `G`.
    group: Hir,
    /// For `P (?:Q (G) R)? T`: `Q G R T`, `Q` (`None` when empty) and `R`.
    optional: Option<(Hir, Option<Hir>, Box<[u8]>)>,
}

/// The DFAs of a [`CapturePlan`].
#[derive(Debug)]
struct PlanDfas {
    /// `P`, leftmost-first, anchored at the text start; `None` when empty.
    pre: Option<DFA<Vec<u32>>>,
    /// `G`, any match, anchored: decides whether `G` matches a span exactly.
    group: DFA<Vec<u32>>,
    /// For `P (?:Q (G) R)? T`.
    optional: Option<Optional>,
}

/// The optional part of a [`CapturePlan`].
#[derive(Debug)]
struct Optional {
    /// `Q G R T`, any match, anchored: whether the optional can be taken.
    taken: DFA<Vec<u32>>,
    /// `Q`, leftmost-first, anchored; `None` when empty.
    q: Option<DFA<Vec<u32>>>,
    /// `R`.
    r: Box<[u8]>,
}

impl PlanPieces {
    /// Their DFAs; `None` when one exceeds the size limits.
    fn compile(&self) -> Option<PlanDfas> {
        let lf = regex_automata::MatchKind::LeftmostFirst;
        let all = regex_automata::MatchKind::All;
        let optional = match &self.optional {
            Some((taken, q, r)) => Some(Optional {
                taken: dense_hir(taken, all)?,
                q: opt_dfa(q.clone(), lf)?,
                r: r.clone(),
            }),
            None => None,
        };
        Some(PlanDfas {
            pre: opt_dfa(self.pre.clone(), lf)?,
            group: dense_hir(&self.group, all)?,
            optional,
        })
    }
}

impl CapturePlan {
    /// The plan for the group named `name` in `before` (the expanded text
    /// before `<HOST>`), if `before` has that shape and looks at nothing
    /// around it but the text start. Its DFAs are compiled at the first
    /// [`CapturePlan::span`].
    #[cfg(test)]
    pub fn build(before: &str, name: &str) -> Option<CapturePlan> {
        let hir = regex_automata::util::syntax::parse_with(before, &syntax_config()).ok()?;
        CapturePlan::of_hir(&hir, name)
    }

    /// [`CapturePlan::build`] of `before` as the parser read it.
    pub fn of_hir(hir: &Hir, name: &str) -> Option<CapturePlan> {
        use regex_syntax::hir::{HirKind, Look};
        if !hir.properties().look_set().remove(Look::Start).is_empty() {
            return None;
        }
        let items: Vec<Hir> = match hir.kind() {
            HirKind::Concat(items) => items.clone(),
            _ => vec![hir.clone()],
        };
        // `^` may only open the text: elsewhere it would read differently in
        // the pieces.
        if items
            .iter()
            .skip(1)
            .any(|h| h.properties().look_set().contains(Look::Start))
        {
            return None;
        }
        let is_group =
            |h: &Hir| matches!(h.kind(), HirKind::Capture(c) if c.name.as_deref() == Some(name));
        let contains = |h: &Hir| contains_group(h, name);
        let k = items.iter().position(contains)?;
        let tail = literal_bytes(&items[k + 1..])?;
        let pre = piece(&items[..k])?;
        let plan = |group: &Hir, optional| CapturePlan {
            name: name.into(),
            pieces: Arc::new(PlanPieces {
                pre: pre.clone(),
                group: group.clone(),
                optional,
            }),
            tail: tail.clone(),
            dfas: Arc::default(),
        };
        if is_group(&items[k]) {
            let HirKind::Capture(c) = items[k].kind() else {
                return None;
            };
            if has_named_group(&c.sub) {
                return None;
            }
            return Some(plan(&c.sub, None));
        }
        // `(?:Q (G) R)?`, greedy.
        let HirKind::Repetition(rep) = items[k].kind() else {
            return None;
        };
        if rep.min != 0 || rep.max != Some(1) || !rep.greedy {
            return None;
        }
        let inner: Vec<Hir> = match rep.sub.kind() {
            HirKind::Concat(items) => items.clone(),
            _ => vec![(*rep.sub).clone()],
        };
        let j = inner.iter().position(is_group)?;
        let HirKind::Capture(c) = inner[j].kind() else {
            return None;
        };
        if has_named_group(&c.sub)
            || inner[..j].iter().any(contains)
            || inner[j + 1..].iter().any(contains)
        {
            return None;
        }
        let r = literal_bytes(&inner[j + 1..])?;
        let q = piece(&inner[..j])?;
        let taken = Hir::concat(vec![(*rep.sub).clone(), Hir::literal(tail.clone())]);
        Some(plan(&c.sub, Some((taken, q, r))))
    }

    /// Its DFAs, compiled at the first call; `None` when one exceeds the
    /// size limits.
    fn dfas(&self) -> Option<&PlanDfas> {
        self.dfas.get_or_init(|| self.pieces.compile()).as_ref()
    }

    /// Compiles now what the first [`CapturePlan::span`] would.
    #[cfg(test)]
    pub fn build_now(&self) {
        self.dfas();
    }

    /// The group's span in `text`, which all of `A` matches (it is the text
    /// before the address): `Ok(Some(Some(span)))` the group took part there,
    /// `Ok(Some(None))` it took no part, `Ok(None)` the plan cannot tell (the
    /// caller runs the capturing search).
    pub fn span(&self, text: &[u8]) -> Result<Option<Option<std::ops::Range<usize>>>, MatchError> {
        let Some(dfas) = self.dfas() else {
            return Ok(None);
        };
        let start = text.len();
        let Some(opt) = &dfas.optional else {
            let Some(end) = start.checked_sub(self.tail.len()) else {
                return Ok(None);
            };
            if text[end..] != *self.tail {
                return Ok(None);
            }
            let Some(from) = dfas.pre_end(text, end)? else {
                return Ok(None);
            };
            return Ok(dfas
                .group_spans(text, from, end)?
                .then_some(Some(from..end)));
        };
        let Some(e) = dfas.pre_end(text, start)? else {
            return Ok(None);
        };
        if full_match(&opt.taken, text, e, start)? {
            let Some(end) = start.checked_sub(self.tail.len() + opt.r.len()) else {
                return Ok(None);
            };
            if end < e {
                return Ok(None);
            }
            let from = match &opt.q {
                None => e,
                Some(q) => match priority_end(q, text, e, end)? {
                    Some(f) => f,
                    None => return Ok(None),
                },
            };
            return Ok(dfas
                .group_spans(text, from, end)?
                .then_some(Some(from..end)));
        }
        Ok((text[e..] == *self.tail).then_some(None))
    }
}

impl PlanDfas {
    /// Where `P`'s highest-priority match ends, within `text[..bound]`.
    fn pre_end(&self, text: &[u8], bound: usize) -> Result<Option<usize>, MatchError> {
        match &self.pre {
            None => Ok(Some(0)),
            Some(dfa) => priority_end(dfa, text, 0, bound),
        }
    }

    /// Whether `G` matches exactly `text[from..to]` (`from <= to`).
    fn group_spans(&self, text: &[u8], from: usize, to: usize) -> Result<bool, MatchError> {
        Ok(from <= to && full_match(&self.group, text, from, to)?)
    }
}

/// Whether `hir` holds the capture group `name`.
fn contains_group(hir: &regex_syntax::hir::Hir, name: &str) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => c.name.as_deref() == Some(name) || contains_group(&c.sub, name),
        HirKind::Repetition(r) => contains_group(&r.sub, name),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(|h| contains_group(h, name)),
        _ => false,
    }
}

/// Whether `hir` holds any named group.
fn has_named_group(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) => c.name.is_some() || has_named_group(&c.sub),
        HirKind::Repetition(r) => has_named_group(&r.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(has_named_group),
        _ => false,
    }
}

/// The text a sequence of literal items matches; `None` if one is not literal.
fn literal_bytes(items: &[regex_syntax::hir::Hir]) -> Option<Box<[u8]>> {
    use regex_syntax::hir::HirKind;
    let mut out = Vec::new();
    for h in items {
        match h.kind() {
            HirKind::Literal(lit) => out.extend_from_slice(&lit.0),
            HirKind::Empty => {}
            _ => return None,
        }
    }
    Some(out.into_boxed_slice())
}

/// A sequence of items as one regex: `Some(None)` when empty.
fn piece(items: &[regex_syntax::hir::Hir]) -> Option<Option<regex_syntax::hir::Hir>> {
    if items.is_empty() {
        return Some(None);
    }
    Some(Some(regex_syntax::hir::Hir::concat(items.to_vec())))
}

/// [`dense_hir`] of a piece that may be empty: `Some(None)` when it is.
fn opt_dfa(
    hir: Option<regex_syntax::hir::Hir>,
    kind: regex_automata::MatchKind,
) -> Option<Option<DFA<Vec<u32>>>> {
    match hir {
        None => Some(None),
        Some(h) => dense_hir(&h, kind).map(Some),
    }
}

/// An anchored forward DFA of `hir`, within the size limits.
fn dense_hir(
    hir: &regex_syntax::hir::Hir,
    kind: regex_automata::MatchKind,
) -> Option<DFA<Vec<u32>>> {
    let nfa = thompson::Compiler::new()
        .configure(thompson::Config::new().utf8(false))
        .build_from_hir(hir)
        .ok()?;
    dense::Builder::new()
        .configure(dfa_config(kind, StartKind::Anchored))
        .build_from_nfa(&nfa)
        .ok()
}

/// The anchored start state of forward `dfa` for a search of `hay[from..to]`.
fn start_fwd(
    dfa: &DFA<Vec<u32>>,
    hay: &[u8],
    from: usize,
    to: usize,
) -> Result<StateID, MatchError> {
    match dfa.universal_start_state(Anchored::Yes) {
        Some(sid) => Ok(sid),
        None => dfa.start_state_forward(
            &Input::new(&hay[..to])
                .range(from..to)
                .anchored(Anchored::Yes),
        ),
    }
}

/// Where the highest-priority match of the leftmost-first `dfa`, anchored at
/// `from`, ends in `hay[from..to]` (`to` taken as the end of the text).
fn priority_end(
    dfa: &DFA<Vec<u32>>,
    hay: &[u8],
    from: usize,
    to: usize,
) -> Result<Option<usize>, MatchError> {
    let mut sid = start_fwd(dfa, hay, from, to)?;
    let mut last = None;
    for (at, &b) in hay[..to].iter().enumerate().skip(from) {
        sid = dfa.next_state(sid, b);
        if dfa.is_special_state(sid) {
            if dfa.is_match_state(sid) {
                last = Some(at);
            } else if dfa.is_dead_state(sid) {
                return Ok(last);
            } else if dfa.is_quit_state(sid) {
                return Err(MatchError::quit(b, at));
            }
        }
    }
    let sid = dfa.next_eoi_state(sid);
    if dfa.is_match_state(sid) {
        last = Some(to);
    }
    Ok(last)
}

/// Whether the anchored `dfa` (built to report every match) matches exactly
/// `hay[from..to]` (`to` taken as the end of the text).
fn full_match(dfa: &DFA<Vec<u32>>, hay: &[u8], from: usize, to: usize) -> Result<bool, MatchError> {
    let mut sid = start_fwd(dfa, hay, from, to)?;
    for (at, &b) in hay[..to].iter().enumerate().skip(from) {
        sid = dfa.next_state(sid, b);
        if dfa.is_special_state(sid) {
            if dfa.is_dead_state(sid) {
                return Ok(false);
            } else if dfa.is_quit_state(sid) {
                return Err(MatchError::quit(b, at));
            }
        }
    }
    Ok(dfa.is_match_state(dfa.next_eoi_state(sid)))
}

/// One pattern as a dense DFA; `unanchored` allows matches to start anywhere.
fn dense(pattern: &str, reverse: bool, unanchored: bool) -> Option<DFA<Vec<u32>>> {
    let kind = if unanchored {
        StartKind::Both
    } else {
        StartKind::Anchored
    };
    dense::Builder::new()
        .configure(dfa_config(regex_automata::MatchKind::LeftmostFirst, kind))
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
    fn recent_keeps_the_texts_asked_for_last() {
        let mut r = Recent::<bool>::default();
        let calls = std::cell::Cell::new(0);
        let ask = |r: &mut Recent<bool>, text: &[u8], v: bool| {
            r.get_or(text, || {
                calls.set(calls.get() + 1);
                v
            })
        };
        for (k, text) in [b"a", b"b", b"c", b"d"].into_iter().enumerate() {
            assert_eq!(ask(&mut r, text, k % 2 == 0), k % 2 == 0);
        }
        // All remembered: the verdicts given are the first ones.
        assert!(ask(&mut r, b"a", false));
        assert!(!ask(&mut r, b"b", true));
        assert_eq!(calls.get(), 4);
        // A fifth text replaces the one asked for the longest time ago
        // (`c`); `a`, asked for again, stays.
        assert!(ask(&mut r, b"", true));
        assert!(ask(&mut r, b"a", false));
        assert!(!ask(&mut r, b"d", true));
        assert_eq!(calls.get(), 5);
        assert!(!ask(&mut r, b"c", false));
        assert_eq!(calls.get(), 6);
    }

    #[test]
    fn recent_prefixes_answer_texts_that_start_with_them() {
        let mut r = Recent::<Option<GroupAt>>::default();
        let g = GroupAt::At(1, 2);
        assert_eq!(r.get_or_prefix(b"abcd", || Ok((2, g))), Some((2, g)));
        assert_eq!(r.get_or_prefix(b"abxy", || unreachable!()), Some((2, g)));
        // A failure settled by three bytes answers every text that starts
        // with them; one its end settled is not remembered.
        assert_eq!(r.get_or_prefix(b"xyz", || Err(Some(3))), None);
        assert_eq!(r.get_or_prefix(b"xyz1", || unreachable!()), None);
        assert_eq!(r.get_or_prefix(b"q", || Err(None)), None);
        assert_eq!(
            r.get_or_prefix(b"q", || Ok((1, GroupAt::Absent))),
            Some((1, GroupAt::Absent))
        );
        // Too short for a remembered prefix: decided anew.
        assert_eq!(r.get_or_prefix(b"a", || Err(Some(1))), None);
    }

    #[test]
    fn the_memory_answers_repeated_texts_as_the_search_does() {
        // A skeleton before the address and after it: the second line reuses
        // both verdicts, the third only the one before.
        let p = r"^(?:error: )?Failed (?:password|none) for (?:invalid user )?<F-USER>[^:]*</F-USER> from <HOST>(?: port \d+)?$";
        let f = FastHost::build(&split(p).expect("splits"), true).expect("builds");
        assert!(matches!(f.before, Before::Skeleton(_)));
        assert!(f.after_skeleton.is_some());
        let mut memo = Memo::default();
        for line in [
            "Failed password for invalid user a:b from 192.0.2.1 port 22",
            "Failed password for root from 192.0.2.1 port 22",
            "Failed password for root from 192.0.2.1 port 22",
            "Failed password for root from 198.51.100.1 port 22",
            "Failed password for root from 198.51.100.1 port 22 ",
            "Failed password for root from 198.51.100.1 port 22",
        ] {
            let hay = line.as_bytes();
            assert_eq!(
                f.find_at_with(hay, &mut memo).ok(),
                f.find_at(hay).ok(),
                "{line}"
            );
        }
        assert!(memo.before.slots.iter().any(|(t, v)| {
            t.as_slice() == b"Failed password for root from " && matches!(v, Some(Some(_)))
        }));
    }

    /// The texts after `<HOST>` the lead path is tried on: sshd's, and
    /// shapes it must turn down.
    const AFTERS: [&str; 9] = [
        r" port \d+(?: \[preauth\])?$",
        r"(?: port \d+)?(?: ssh[12]?)?(?:: .*)?$",
        r"(?: port \d+)?: ?\d+: .*$",
        r"(?: port \d+)?$",
        r" port \d+: Too many authentication failures(?: \[preauth\])?$",
        r"(?: port \d+)?(?::\d+)?",
        r" port \d+\d x$",
        r" port \d{1,5} x$",
        r"(?: port \d+)?\d?$",
    ];

    #[test]
    fn lead_takes_a_port_before_fixed_text_only() {
        let lead = |after: &str| {
            let s = split(&format!("from <HOST>{after}")).expect("splits");
            Lead::of_hir(&s.after_hir).map(|l| l.optional)
        };
        assert_eq!(lead(AFTERS[0]), Some(false));
        assert_eq!(lead(AFTERS[1]), Some(true));
        assert_eq!(lead(AFTERS[2]), Some(true));
        assert_eq!(lead(AFTERS[3]), Some(true));
        assert_eq!(lead(AFTERS[4]), Some(false));
        // What follows may match anywhere, start with a digit, or the run
        // is bounded: the run could end before its last digit.
        assert_eq!(lead(AFTERS[5]), None);
        assert_eq!(lead(AFTERS[6]), None);
        assert_eq!(lead(AFTERS[7]), None);
        assert_eq!(lead(AFTERS[8]), None);
    }

    #[test]
    fn lead_remembers_the_text_after_the_port() {
        let p = r"^Failed password for \S+ from <HOST>(?: port \d+)?(?: ssh[12]?)?(?:: .*)?$";
        let f = FastHost::build(&split(p).expect("splits"), true).expect("builds");
        assert!(f.after_lead.is_some());
        let mut memo = Memo::default();
        for port in ["22", "61000", "7"] {
            let line = format!("Failed password for root from 192.0.2.1 port {port} ssh2");
            assert!(matches!(
                f.find_at_with(line.as_bytes(), &mut memo),
                Ok(Found::Addr(..))
            ));
        }
        assert!(
            memo.rest
                .slots
                .iter()
                .any(|(t, v)| t.as_slice() == b" ssh2" && *v == Some(true))
        );
        // Never the whole text after the address, which changes every line.
        assert!(memo.after.slots.iter().all(|(_, v)| v.is_none()));
    }

    proptest::proptest! {
        /// The lead path says what the DFA of the text after `<HOST>` says,
        /// at every place of every text, with its memory carried from text
        /// to text.
        #[test]
        fn lead_agrees_with_the_dfa(texts in proptest::collection::vec(skeleton::tests::words(
            &[" port ", "22", "0", " ssh2", " ssh", ":", ": ", " ", "3", "x", " [preauth]", "Too many authentication failures"],
            8,
        ), 1..6)) {
            for after in AFTERS {
                let s = split(&format!("from <HOST>{after}")).expect("splits");
                let f = FastHost::build(&s, false).expect("builds");
                let mut memo = Memo::default();
                for hay in &texts {
                    let hay = hay.as_bytes();
                    for j in 0..=hay.len() {
                        proptest::prop_assert_eq!(
                            f.after_matches(hay, j, &mut memo).expect("no quit"),
                            matches_fwd(&f.after, hay, j).expect("no quit"),
                            "{} on {:?} at {}", after, String::from_utf8_lossy(hay), j
                        );
                    }
                }
            }
        }
    }

    /// `addr_run` as the byte-by-byte walk it replaced.
    fn addr_run_slowly(hay: &[u8], i: usize) -> (usize, u64) {
        let tail = hay.get(i..).unwrap_or_default();
        let run = tail
            .iter()
            .take(MAX_ADDR_LEN)
            .take_while(|b| is_addr_char(**b))
            .count();
        let colons = tail[..run]
            .iter()
            .enumerate()
            .fold(0, |m, (k, b)| m | u64::from(*b == b':') << k);
        (run, colons)
    }

    #[test]
    fn addr_run_reads_blocks_at_the_edges() {
        let hay = b"from 2001:db8:0:0:0:0:0:1234:5678:9abc:def0:1234:5678 port 22";
        // Longer than an address: cut at MAX_ADDR_LEN, colons within only.
        let (run, colons) = addr_run(hay, 5);
        assert_eq!((run, colons), addr_run_slowly(hay, 5));
        assert_eq!(run, MAX_ADDR_LEN);
        // The last address on a line, in a line shorter than a block, and
        // past its end.
        for hay in [&b"x rhost=192.0.2.1"[..], b"1.2::", b"ab:", b""] {
            for i in 0..=hay.len() + 1 {
                assert_eq!(addr_run(hay, i), addr_run_slowly(hay, i), "{hay:?} {i}");
            }
        }
        assert_eq!(addr_run(b"x rhost=192.0.2.1", 8), (9, 0));
        assert_eq!(addr_run(b"abc 2001:db8::1", 4), (11, 0b11_0001_0000));
    }

    proptest::proptest! {
        #[test]
        fn addr_run_agrees_with_a_walk(
            hay in proptest::collection::vec(
                proptest::sample::select(&b"0123456789abcdefABCDEF:.:.gG/; \x80\xff"[..]),
                0..80,
            ),
            at in 0usize..90,
        ) {
            proptest::prop_assert_eq!(addr_run(&hay, at), addr_run_slowly(&hay, at));
        }
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

    fn naive_rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
        (0..=hay.len().checked_sub(needle.len())?)
            .rev()
            .find(|&i| hay[i..].starts_with(needle))
    }

    proptest::proptest! {
        #[test]
        fn last_literal_finds_the_last_occurrence(
            hay in proptest::collection::vec(proptest::sample::select(&b" fromx="[..]), 0..40),
            needle in proptest::collection::vec(proptest::sample::select(&b" fromx="[..]), 1..6),
        ) {
            let lit = LastLiteral::new(&needle);
            proptest::prop_assert_eq!(lit.rfind(&hay), naive_rfind(&hay, &needle));
        }

        #[test]
        fn hand_loops_agree_with_the_library_search(
            hay in "[ a-z0-9:.\\[\\]]{0,30}",
            at in 0usize..31,
            end in 0usize..31,
        ) {
            let hay = hay.as_bytes();
            let (at, end) = (at.min(hay.len()), end.min(hay.len()));
            let (at, end) = (at.min(end), at.max(end));
            let first = regex_automata::MatchKind::LeftmostFirst;
            for pattern in [r" port \d+$", r"\bx", r"[a-z]+ ", r"^a", r"(?m)^p", r"(?:b|)"] {
                let fwd = dense_anchored(&[pattern], false, first).expect("builds");
                let want = fwd
                    .try_search_fwd(&Input::new(hay).range(at..).anchored(Anchored::Yes))
                    .expect("no quit")
                    .is_some();
                proptest::prop_assert_eq!(matches_fwd(&fwd, hay, at).expect("no quit"), want);
                // A byte outside the first-byte set is never where a match begins.
                if hay.get(at).is_some_and(|b| !first_bytes(&fwd)[usize::from(*b)]) {
                    proptest::prop_assert!(!want, "{} at {}", pattern, at);
                }
                let rev = dense_anchored(&[pattern], true, first).expect("builds");
                let want = rev
                    .try_search_rev(&Input::new(hay).range(at..end).anchored(Anchored::Yes))
                    .expect("no quit")
                    .is_some();
                proptest::prop_assert_eq!(matches_rev(&rev, hay, at, end).expect("no quit"), want);
                for unanchored in [false, true] {
                    let mode = if unanchored { Anchored::No } else { Anchored::Yes };
                    let head = dense(pattern, false, unanchored).expect("builds");
                    let want = head
                        .try_search_fwd(&Input::new(hay).anchored(mode).earliest(true))
                        .expect("no quit")
                        .map(|m| m.offset());
                    proptest::prop_assert_eq!(first_match_end(&head, hay, 0, mode).expect("no quit"), want);
                }
            }
        }
    }

    const SEGMENT_PATTERNS: [&str; 5] = [
        r"^a[0-9_]+\(x\): \S* b=\d* r=",
        r"a=\S*",
        r"\S* x",
        r"^[a-z]+=[0-9]+ ",
        r"",
    ];

    #[test]
    fn segments_take_only_deterministic_sequences() {
        for p in SEGMENT_PATTERNS {
            assert!(Segments::new(p).is_some(), "{p}");
        }
        // A run that can swallow the literal after it, two runs in a row, a gap,
        // an alternation: left to the automaton.
        for p in [r"\S*=x", r"\d*\S*", r"a.*b", r"a|b", r"(?:ab)+", r"\bx"] {
            assert!(Segments::new(p).is_none(), "{p}");
        }
    }

    #[test]
    fn pam_rhost_is_found_with_segments() {
        let p = r"^pam_[a-z0-9_]+\(sshd:auth\): authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?\s*$";
        let s = split(p).expect("splits");
        let f = FastHost::build(&s, true).expect("builds");
        assert!(matches!(f.before, Before::Segments(_)));
        let line = "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root";
        assert_eq!(find(p, true, line), ip("192.0.2.7"));
        let bad = "pam_unix(sshd:auth): authentication failure; logname= uid=x euid=0 tty=ssh ruser= rhost=192.0.2.7";
        assert_eq!(find(p, true, bad), None);
        let spoof = "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=a rhost=192.0.2.7 rhost=198.51.100.1";
        assert_eq!(find(p, true, spoof), None);
    }

    proptest::proptest! {
        #[test]
        fn segments_agree_with_the_reverse_dfa(hay in "[ a-z0-9_=():\\x80]{0,24}") {
            let hay = hay.as_bytes();
            let first = regex_automata::MatchKind::LeftmostFirst;
            for p in SEGMENT_PATTERNS {
                let seg = Segments::new(p).expect("segments");
                let rev = dense_anchored(&[&format!(r"\A(?:{p})")], true, first).expect("builds");
                for end in 0..=hay.len() {
                    proptest::prop_assert_eq!(
                        seg.matches_all(&hay[..end]),
                        matches_rev(&rev, hay, 0, end).expect("no quit"),
                        "{} {:?}", p, &hay[..end]
                    );
                }
            }
        }
    }

    /// `try_at` without its shortcuts (the next-byte table, the colon count):
    /// every cut of the address run, longest first.
    fn try_at_slowly(f: &FastHost, hay: &[u8], i: usize, head_end: usize) -> Option<IpAddr> {
        let tail = hay.get(i..)?;
        let run = tail.iter().take_while(|b| is_addr_char(**b)).count();
        (2..=run.min(MAX_ADDR_LEN)).rev().find_map(|len| {
            let ip = addr::parse_ip(&tail[..len])?;
            let after = f.after_prefix.as_deref().unwrap_or_default();
            (hay[i + len..].starts_with(after)
                && matches_fwd(&f.after, hay, i + len).expect("no quit")
                && f.before_ends_at(hay, i, head_end)
                    .expect("no quit")
                    .is_some())
            .then_some(ip)
        })
    }

    /// Patterns of each shape the fast path takes apart, with whether the
    /// text is anchored (a syslog message).
    const SHAPES: [(&str, bool); 8] = [
        (
            r"^(?:error: )?Failed (?:password|none) for (?:invalid user )?<F-USER>[^:]*</F-USER> from <HOST>(?: port \d+)?$",
            true,
        ),
        // Anchored, a gap is a skeleton's run; not anchored, two DFAs.
        (
            r"^Failed password for (?:invalid user )?.* from <HOST> port \d+$",
            true,
        ),
        (
            r"Failed password for (?:invalid user )?.* from <HOST> port \d+$",
            false,
        ),
        (r"from <HOST>(?: port \d+)?(?::\d+)?", false),
        (r"rhost=<HOST>$", true),
        (r"^\S+ from <HOST>(?: port \d+)?$", true),
        (r"<HOST>:\d+ x", false),
        (r"\[<HOST>\]:\d+$", false),
    ];

    #[test]
    fn anchored_gaps_and_runs_of_one_length_are_skeletons() {
        let build = |(p, anchored): (&str, bool)| {
            FastHost::build(&split(p).expect("splits"), anchored).expect("builds")
        };
        assert!(matches!(build(SHAPES[1]).before, Before::Skeleton(_)));
        assert!(matches!(build(SHAPES[2]).before, Before::Gap { .. }));
        let accepted = r"^Accepted [a-z][a-z0-9-]* for <F-USER>[^:]*</F-USER> from <HOST>$";
        assert!(matches!(
            build((accepted, true)).before,
            Before::Skeleton(_)
        ));
    }

    /// Patterns whose text before `<HOST>` the forward walk takes (the
    /// first three), and ones it leaves to the general path.
    const FORWARD_SHAPES: [&str; 7] = [
        r"^(?:pam_[a-z0-9_]+\(sshd:auth\): )?authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=<HOST>(?:\s+user=\S*)?\s*$",
        r"^(?:error: )?Received disconnect from <HOST>(?: port \d+)?: ?\d+: .*$",
        r"^(?:\[ID \d+ [a-z]+\] )?(?:Did not|Bad) (?:receive|x) from (?P<who>[a-z]+) at <HOST>(?: port \d+)?$",
        // Runs of one length, followed by bytes of their class.
        r"^(?:error: )?[A-Z][a-z]+ (?:receive|x) from (?P<who>[a-z]{2}[a-z]*) at <HOST>(?: port \d+)?$",
        r"^(?:error: )?Failed (?:password|none) for (?:invalid user )?<F-USER>[^:]*</F-USER> from <HOST>(?: port \d+)?(?: ssh2)?(?:: .*)?$",
        r"^Disconnected from (?:(?:authenticating |invalid )?user <F-USER>[^:]*</F-USER> )?<HOST> port \d+(?: \[preauth\])?$",
        r"^Connection from (?:user )?<HOST> port \d+$",
    ];

    /// Lines made of what [`FORWARD_SHAPES`] look for: names with spaces,
    /// `invalid user `, repeated ` from `, text after the address, IPv6 and
    /// `::ffff:` forms, host names.
    fn forward_pieces() -> impl proptest::strategy::Strategy<Value = String> {
        skeleton::tests::words(
            &[
                "pam_unix(sshd:auth): ",
                "pam_x(sshd:auth): ",
                "authentication failure; logname=",
                " uid=0",
                " euid=0",
                " tty=ssh",
                " ruser=",
                " rhost=",
                "  user=root",
                "error: ",
                "Received disconnect from ",
                "[ID 1 auth] ",
                "Did not",
                "Bad",
                " receive",
                " x",
                " from ",
                "bob",
                " at ",
                "Failed password for ",
                "invalid user ",
                "a b",
                "Disconnected from ",
                "user ",
                "authenticating ",
                "Connection from ",
                "192.0.2.1",
                "198.51.100.7",
                "2001:db8::1",
                "::ffff:192.0.2.7",
                "a.example.org",
                " port 22",
                ": 11: Bye",
                ":3: x",
                " ssh2",
                " [preauth]",
                ": ",
                ":",
                " ",
                "x",
            ],
            12,
        )
    }

    #[test]
    fn forward_walk_takes_fixed_text_before_the_address() {
        for (k, p) in FORWARD_SHAPES.iter().enumerate() {
            let s = split(p).expect("splits");
            let plan = CapturePlan::build(&s.before, "who")
                .or_else(|| CapturePlan::build(&s.before, "user"));
            let f = FastHost::build(&s, true).expect("builds").with_plan(plan);
            assert_eq!(f.forward, k < 4, "{p}");
        }
        let p = FORWARD_SHAPES[0];
        let f = FastHost::build(&split(p).expect("splits"), true).expect("builds");
        let mut memo = Memo::default();
        let line = b"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root";
        let at = line.len() - "192.0.2.7  user=root".len();
        for _ in 0..2 {
            assert!(matches!(
                f.find_at_with(line, &mut memo),
                Ok(Found::Addr(_, i, GroupAt::Unknown)) if i == at
            ));
        }
        // PAM's other lines fail a few bytes in, and are remembered so.
        let other = b"pam_unix(sshd:auth): check pass; user unknown";
        assert_eq!(
            f.find_at_with(other, &mut memo).ok(),
            Some(Found::Impossible)
        );
        assert!(
            memo.ahead
                .slots
                .iter()
                .any(|(t, v)| { t.as_slice() == b"pam_unix(sshd:auth): c" && *v == Some(None) })
        );
        assert_eq!(
            f.find_at_with(other, &mut memo).ok(),
            Some(Found::Impossible)
        );
    }

    proptest::proptest! {
        /// The forward walk finds what the general path (the search for the
        /// last literal, each place checked) finds, on every line of a run
        /// of lines, each side with its own memory carried from line to
        /// line; and the group's span is the capturing regex's.
        #[test]
        fn forward_walk_agrees_with_the_general_path(
            lines in proptest::collection::vec(forward_pieces(), 1..8),
        ) {
            for p in FORWARD_SHAPES {
                let s = split(p).expect("splits");
                let name = if p.contains("<F-USER>") { "user" } else { "who" };
                let plan = || CapturePlan::build(&s.before, name);
                let fast = FastHost::build(&s, true).expect("builds").with_plan(plan());
                let slow = FastHost::build(&s, true)
                    .expect("builds")
                    .with_plan(plan())
                    .without_forward();
                let (mut fm, mut sm) = (Memo::default(), Memo::default());
                for line in &lines {
                    let hay = line.as_bytes();
                    let got = fast.find_at_with(hay, &mut fm).expect("no quit");
                    let want = slow.find_at_with(hay, &mut sm).expect("no quit");
                    // Where the general path finds that `A` ends nowhere
                    // only after its literal search came up empty-handed,
                    // it says `NoAddr`; the walk knows it cannot match.
                    let want = match (got, want) {
                        (Found::Impossible, Found::NoAddr) if fast.forward => {
                            proptest::prop_assert_eq!(
                                slow.find_at(hay).expect("no quit"),
                                Found::NoAddr
                            );
                            // No place where `A` ends, whatever follows.
                            proptest::prop_assert!(
                                !(0..=hay.len()).any(|i| slow.before_ends_at(hay, i, 0).expect("no quit").is_some()),
                                "{} on {:?}", p, line
                            );
                            Found::Impossible
                        }
                        (_, w) => w,
                    };
                    proptest::prop_assert_eq!(got, want, "{} on {:?}", p, line);
                }
            }
        }
    }

    /// Text made of the pieces the shapes look for, addresses, names and
    /// colon-bearing look-alikes.
    fn pieces() -> impl proptest::strategy::Strategy<Value = String> {
        skeleton::tests::words(
            &[
                " from ",
                "192.0.2.1",
                "2001:db8::1",
                "::ffff:192.0.2.7",
                "a.example.org",
                "1-2.example",
                "x",
                " port 22",
                ":22",
                "Failed password for ",
                "invalid user ",
                "::",
                ":",
                "f:",
                "rhost=",
                " ",
                "[",
                "]",
                "beef:cafe",
                "db8:1:2",
                "1.2.3",
            ],
            10,
        )
    }

    proptest::proptest! {
        /// No text with exactly one colon is an address, as the standard
        /// parser and ours read it: `try_at` skips such cuts unparsed.
        #[test]
        fn one_colon_is_never_an_address(a in "[0-9a-fA-F.]{0,22}", b in "[0-9a-fA-F.]{0,22}") {
            let text = format!("{a}:{b}");
            proptest::prop_assert!(text.parse::<IpAddr>().is_err(), "{}", text);
            proptest::prop_assert_eq!(addr::parse_ip(text.as_bytes()), None);
        }

        /// Every address, however written, has no colon or at least two.
        #[test]
        fn addresses_have_no_colon_or_two(v4 in proptest::prelude::any::<[u8; 4]>(), v6 in proptest::prelude::any::<[u16; 8]>()) {
            let v4 = std::net::Ipv4Addr::from(v4);
            let v6 = std::net::Ipv6Addr::from(v6);
            let texts = [
                v4.to_string(),
                v6.to_string(),
                v4.to_ipv6_mapped().to_string(),
                format!("::ffff:{v4}"),
                format!("{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                    v6.segments()[0], v6.segments()[1], v6.segments()[2], v6.segments()[3],
                    v6.segments()[4], v6.segments()[5], v6.segments()[6], v6.segments()[7]),
            ];
            for t in texts {
                let colons = t.bytes().filter(|b| *b == b':').count();
                proptest::prop_assert!(colons != 1, "{}", t);
            }
        }

        /// `try_at` with its shortcuts finds what every cut, parsed, finds.
        #[test]
        fn try_at_agrees_with_trying_every_cut(hay in pieces()) {
            let hay = hay.as_bytes();
            for (p, anchored) in SHAPES {
                let f = FastHost::build(&split(p).expect("splits"), anchored).expect("builds");
                for i in 0..=hay.len() {
                    let got = f.try_at(hay, i, 0).expect("no quit").map(|(ip, _)| ip);
                    proptest::prop_assert_eq!(got, try_at_slowly(&f, hay, i, 0), "{} at {}", p, i);
                }
            }
        }

        /// No place in a run of address characters without a `.` or a `:`
        /// starts an address: `find_at` skips such runs untried.
        #[test]
        fn runs_without_dot_or_colon_hold_no_address(hay in pieces()) {
            let hay = hay.as_bytes();
            for (p, anchored) in SHAPES {
                let f = FastHost::build(&split(p).expect("splits"), anchored).expect("builds");
                let mut start = 0;
                for run in hay.split(|b| !is_addr_char(*b)) {
                    if !run.iter().any(|b| matches!(b, b'.' | b':')) {
                        for i in start..start + run.len() {
                            proptest::prop_assert_eq!(try_at_slowly(&f, hay, i, 0), None, "{} at {}", p, i);
                        }
                    }
                    start += run.len() + 1;
                }
            }
        }

        /// Where the fast path says nothing at `<HOST>` can match, the name
        /// path's regex finds no host name there either (and so the name
        /// path, which runs it, is rightly skipped).
        #[test]
        fn impossible_leaves_no_name(hay in pieces()) {
            use regex_automata::meta::Regex;
            let hay = hay.as_bytes();
            for (p, anchored) in SHAPES {
                let f = FastHost::build(&split(p).expect("splits"), anchored).expect("builds");
                if f.find_at(hay).expect("no quit") != Found::Impossible {
                    continue;
                }
                let text = super::super::pattern::expand_with(
                    p,
                    super::super::pattern::HostRule::Required,
                    super::super::pattern::NAME_REGEX,
                )
                .expect("expands");
                let re = Regex::builder()
                    .syntax(syntax_config())
                    .build(&text)
                    .expect("builds");
                let group = re
                    .group_info()
                    .to_index(regex_automata::PatternID::ZERO, super::super::pattern::HOST_GROUP)
                    .expect("host group");
                let mut caps = re.create_captures();
                let mode = if anchored { Anchored::Yes } else { Anchored::No };
                re.search_captures(&Input::new(hay).anchored(mode), &mut caps);
                let name = caps.get_group(group).map(|s| &hay[s.range()]);
                proptest::prop_assert!(
                    !name.is_some_and(addr::is_host_name),
                    "{} on {:?}", p, String::from_utf8_lossy(hay)
                );
            }
        }
    }

    #[test]
    fn skeleton_checks_the_text_before_and_notes_the_group() {
        let p = r"^(?:error: )?Failed (?:password|none) for (?:invalid user )?<F-USER>[^:]*</F-USER> from <HOST> port \d+$";
        let s = split(p).expect("splits");
        let plan = CapturePlan::build(&s.before, "user");
        assert!(plan.is_some());
        let f = FastHost::build(&s, true).expect("builds").with_plan(plan);
        assert!(matches!(f.before, Before::Skeleton(_)));
        let line = b"Failed password for invalid user bob from 192.0.2.7 port 22";
        assert_eq!(
            f.find_at(line).unwrap(),
            Found::Addr(ip("192.0.2.7").unwrap(), 42, GroupAt::At(33, 36))
        );
        let line = b"Failed none for  from 192.0.2.7 port 22";
        assert_eq!(
            f.find_at(line).unwrap(),
            Found::Addr(ip("192.0.2.7").unwrap(), 22, GroupAt::At(16, 16))
        );
        // A user name never holds ':'.
        assert_eq!(
            f.find(b"Failed password for a:b from 192.0.2.7 port 22")
                .unwrap(),
            None
        );
        assert_eq!(
            f.find(b"error: Failed password for x from 192.0.2.7 port 22")
                .unwrap(),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn impossible_when_no_address_or_name_can_follow() {
        let f = |p: &str, anchored| {
            FastHost::build(&split(p).expect("splits"), anchored).expect("builds")
        };
        // Plain text before `<HOST>` in a syslog message (anchored).
        let lit = f(r"rhost=<HOST>$", true);
        assert!(matches!(lit.before, Before::Literal(_)));
        assert!(matches!(
            lit.find_at(b"rhost=192.0.2.1").unwrap(),
            Found::Addr(..)
        ));
        assert_eq!(
            lit.find_at(b"rhost=192.0.2.1 x").unwrap(),
            Found::Impossible
        );
        assert_eq!(
            lit.find_at(b"rhost=scan.example.org").unwrap(),
            Found::NoAddr
        );
    }

    proptest::proptest! {
        /// The start table gives the library's start state in every context.
        #[test]
        fn start_tables_agree_with_the_library(hay in "[ a-z0-9:.\\[\\]]{0,12}", at in 0usize..13) {
            let hay = hay.as_bytes();
            let at = at.min(hay.len());
            let first = regex_automata::MatchKind::LeftmostFirst;
            for pattern in [r"\bx", r"(?m)^p", r"(?: port \d+)?$", r"\B:"] {
                let dfa = dense_anchored(&[pattern], false, first).expect("builds");
                let table = StartTable::new(&dfa).expect("no quit bytes");
                let want = dfa
                    .start_state_forward(&Input::new(hay).range(at..).anchored(Anchored::Yes))
                    .expect("no quit");
                proptest::prop_assert_eq!(table.at(hay, at), want);
            }
        }
    }

    #[test]
    fn the_address_byte_table_is_hex_digits_colon_and_dot() {
        for b in 0..=255u8 {
            let want = b.is_ascii_hexdigit() || b == b':' || b == b'.';
            assert_eq!(is_addr_char(b), want, "{b}");
        }
    }

    #[test]
    fn mapped_addresses_are_normalised() {
        assert_eq!(
            find(r"from <HOST> port", true, "from ::ffff:192.0.2.1 port 22"),
            ip("192.0.2.1")
        );
    }

    fn text_set(pattern: &str) -> Option<TextSet> {
        let hir =
            regex_automata::util::syntax::parse_with(pattern, &syntax_config()).expect("parses");
        TextSet::of_hir(&hir)
    }

    #[test]
    fn text_sets_take_fixed_words_and_choices_only() {
        let kex = text_set(
            r"^(?:error: )?kex_exchange_identification: (?:read: )?(?:[Cc]lient sent invalid protocol identifier|[Cc]onnection closed by remote host)",
        )
        .expect("fixed words and choices");
        assert_eq!(kex.texts().len(), 16);
        assert!(kex.matches(b"kex_exchange_identification: Connection closed by remote host"));
        assert!(kex.matches(
            b"error: kex_exchange_identification: read: client sent invalid protocol identifier \"GET /\""
        ));
        assert!(!kex.matches(b"error: kex_exchange_identification: Connection closed"));
        assert!(!kex.matches(b"kex_exchange_identification: banner line too long"));
        // With `$`, the text must end there.
        let fatal =
            text_set(r"^fatal: Read from socket failed: Connection reset by peer \[preauth\]$")
                .expect("one text");
        assert!(
            fatal.matches(b"fatal: Read from socket failed: Connection reset by peer [preauth]")
        );
        assert!(
            !fatal.matches(b"fatal: Read from socket failed: Connection reset by peer [preauth] x")
        );
        // A field, a word boundary, `$` inside, or too many texts: the regex decides.
        for p in [
            r"^(?:error: )?Bad remote protocol version identification: .*$",
            r"^Disconnecting: Too many authentication failures\b",
            r"^a(?:$|b)",
            r"^[a-z][a-z][a-z]",
        ] {
            assert!(text_set(p).is_none(), "{p}");
        }
    }

    /// Where a skeleton checks `B`, its first bytes stand in for the DFA's:
    /// they must be the same set, or addresses would be cut differently.
    #[test]
    fn skeleton_first_bytes_are_the_dfas() {
        use crate::filter::{builtin, builtin_in_every_mode};
        let mut compared = 0;
        for name in builtin::names() {
            for cfg in &builtin_in_every_mode(name) {
                for list in cfg.counting_lists() {
                    for text in list.iter() {
                        let Some(s) = split(text) else { continue };
                        let Some(sk) = Skeleton::prefix_of_hir(&s.after_hir) else {
                            continue;
                        };
                        let dfa = dense_hir(&s.after_hir, regex_automata::MatchKind::LeftmostFirst)
                            .expect("builds");
                        assert_eq!(
                            sk.first_byte_set(),
                            first_bytes(&dfa),
                            "{name}: {}",
                            s.after
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 300, "only {compared}");
    }

    /// A plan's answers are the capturing search's, on texts `A` matches; the
    /// cases it cannot settle say so.
    #[test]
    fn capture_plans_follow_the_priority_rules() {
        use regex_automata::meta::Regex;
        let cases: &[(&str, &[&str])] = &[
            (
                r"^login (?:failed|denied) for (?:user )?(?P<user>\S*) from ",
                &[
                    "login failed for user bob from ",
                    "login denied for bob from ",
                    "login failed for user  from ",
                    "login failed for  from ",
                    "login failed for useruser from ",
                ],
            ),
            (
                r"^closed by (?:(?:auth|bad) user (?P<user>.*) )?",
                &[
                    "closed by auth user x ",
                    "closed by ",
                    "closed by bad user  ",
                    "closed by auth user bad user y ",
                ],
            ),
            // Lazy and greedy pieces before the group.
            (r"^a+?(?P<user>a*)b ", &["ab ", "aaab ", "aaaaab "]),
            (
                r"^(?:ab|a)(?P<user>b?c*)d ",
                &["abd ", "abcd ", "abbcd ", "acd "],
            ),
        ];
        let mut answered = 0;
        for (pattern, texts) in cases {
            let plan = CapturePlan::build(pattern, "user").expect("a plan");
            let re = Regex::new(&format!(r"\A(?:{pattern})\z")).expect("regex");
            for text in *texts {
                let mut caps = re.create_captures();
                re.captures(text.as_bytes(), &mut caps);
                assert!(caps.is_match(), "{pattern} on {text:?}");
                let want = caps.get_group_by_name("user").map(|s| s.range());
                if let Some(got) = plan.span(text.as_bytes()).expect("no quit") {
                    assert_eq!(got, want, "{pattern} on {text:?}");
                    answered += 1;
                }
            }
            // A text `A` does not match gets no answer.
            assert_eq!(plan.span(b"nothing like it").expect("no quit"), None);
        }
        assert!(answered >= 12, "{answered}");
        // Shapes the plan does not cover.
        assert!(CapturePlan::build(r"^(?P<user>\S+) x (?P<other>\S+) ", "user").is_none());
        assert!(CapturePlan::build(r"^a(?P<user>\S+)\b ", "user").is_none());
        assert!(CapturePlan::build(r"^a(?:b|(?P<user>c)) ", "user").is_none());
    }
}
