//! The text before `<HOST>`, anchored at the text start, checked by a small
//! backtracking program of literal compares and byte-class runs instead of a
//! DFA walk over every byte.
//!
//! Most filters write the text before `<HOST>` as fixed words, optional words,
//! a few alternatives and fields such as `\S*`, `\d+` or `[^:]*`. A reverse DFA
//! over that text costs a table look-up and a state check for every byte (PAM's
//! `authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=` is
//! some 90 of them); here a literal is one comparison and a field one class
//! look-up per byte. The program only takes regexes where that is exact:
//!
//! - A run of a byte class (`\S*`, `[a-z]{1,3}`) must end where it can only
//!   end: every byte that can come next is outside the class (then the run
//!   takes all the class bytes there are), or only literal text and the text's
//!   end follow (then the run ends that many bytes before the end), or the
//!   run has one length (`[a-z]`, `\d{4}`).
//! - Optional parts and alternatives are tried in the regex's priority order,
//!   so the first way the whole text matches is the leftmost-first one, and the
//!   named group's span is the one the capturing search reports.
//! - No other look-around than the text start, no repetition of anything but a
//!   byte class, and a bounded number of ways through.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

#[cfg(test)]
use super::super::pattern::syntax_config;
use super::GroupAt;

/// Most ways through a program: beyond, a failing text could cost more than
/// the DFA walk it replaces.
const MAX_PATHS: u64 = 4096;

/// Most instructions: the program is walked by recursion at each choice.
const MAX_INSTS: usize = 256;

/// One step of a [`Skeleton`].
#[derive(Debug, Clone)]
enum Inst {
    /// This text, byte for byte.
    Lit(Lit),
    /// Bytes of `class`, `min` to `max` of them, ending as `end` says.
    Run {
        class: Box<[bool; 256]>,
        min: usize,
        max: usize,
        end: RunEnd,
    },
    /// Try the first branch, then the second; `choice` says by the next byte
    /// (or [`AT_END`]) which can match at all ([`FIRST`], [`SECOND`]), so
    /// that only a byte both can start with costs a try of the first and a
    /// way back.
    Split {
        first: usize,
        second: usize,
        choice: Box<[u8; 257]>,
    },
    Jmp(usize),
    /// Note the position (0: the group's start, 1: its end).
    Save(usize),
    /// Only at the text start.
    Start,
    /// Only at the text end (`$`).
    End,
    /// The whole text matched.
    Match,
}

/// The text of an [`Inst::Lit`], with its first and last machine words worked
/// out once: a compare is then two loads from the text and two word compares
/// (a longer text adds a word per eight bytes) instead of a call into the C
/// library's `memcmp`, which costs more than the compare for texts this short.
#[derive(Debug, Clone)]
struct Lit {
    text: Box<[u8]>,
    /// The first and the last word of the text, as [`ends`] reads them.
    first: u64,
    last: u64,
}

impl Lit {
    fn new(text: &[u8]) -> Lit {
        let (first, last) = ends(text);
        Lit {
            text: text.into(),
            first,
            last,
        }
    }

    fn len(&self) -> usize {
        self.text.len()
    }

    fn first(&self) -> Option<&u8> {
        self.text.first()
    }

    /// Whether `text[pos..]` starts with this text.
    #[inline(always)]
    fn is_at(&self, text: &[u8], pos: usize) -> bool {
        let n = self.text.len();
        let Some(t) = pos.checked_add(n).and_then(|end| text.get(pos..end)) else {
            return false;
        };
        ends(t) == (self.first, self.last) && middles_same(t, &self.text)
    }
}

/// Whether two texts of one length, whose [`ends`] agree, agree in between:
/// over 16 bytes, whole words from the eighth byte until the last word (the
/// last may overlap it).
#[inline(always)]
fn middles_same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    let mut k = 8;
    while k + 8 < n {
        if ends(&a[k..k + 8]) != ends(&b[k..k + 8]) {
            return false;
        }
        k += 8;
    }
    true
}

/// Whether two texts are equal, by [`ends`] and whole words as
/// [`Lit::is_at`] compares: the texts the memories and the literal searches
/// compare are a few dozen bytes, where a call into the C library's `memcmp`
/// costs more than the comparison.
#[inline(always)]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && ends(a) == ends(b) && middles_same(a, b)
}

/// The first and the last word of `t`: of 8 bytes from 8 bytes on, else of 4,
/// 2 or 1; together they cover all of a text of up to 16 bytes (and two texts
/// of one length are equal there exactly when both words are).
#[inline(always)]
fn ends(t: &[u8]) -> (u64, u64) {
    if let (Some(a), Some(b)) = (t.first_chunk::<8>(), t.last_chunk::<8>()) {
        (u64::from_ne_bytes(*a), u64::from_ne_bytes(*b))
    } else if let (Some(a), Some(b)) = (t.first_chunk::<4>(), t.last_chunk::<4>()) {
        (
            u64::from(u32::from_ne_bytes(*a)),
            u64::from(u32::from_ne_bytes(*b)),
        )
    } else if let (Some(a), Some(b)) = (t.first_chunk::<2>(), t.last_chunk::<2>()) {
        (
            u64::from(u16::from_ne_bytes(*a)),
            u64::from(u16::from_ne_bytes(*b)),
        )
    } else {
        let b = t.first().map_or(0, |b| u64::from(*b));
        (b, b)
    }
}

/// [`Inst::Split`]'s `choice` bits, and its index for the text's end.
const FIRST: u8 = 1;
const SECOND: u8 = 2;
const AT_END: usize = 256;

/// Where a run ends, the one place the rest can match from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunEnd {
    /// At the first byte outside the class, or after `max` bytes: nothing
    /// that can follow starts with a byte of the class, or the run has one
    /// length only (`[a-z]`, `\d{4}`), which it takes whatever follows.
    Maximal,
    /// This many bytes before the text's end: only literal text follows.
    Tail(usize),
}

/// A regex compiled for [`Skeleton::full_match`]: see the module docs.
#[derive(Debug, Clone)]
pub(super) struct Skeleton {
    prog: Box<[Inst]>,
    /// The program notes the named group's span.
    tracks_group: bool,
    /// The match must take the whole text ([`Skeleton::full_match`]), not
    /// just start it ([`Skeleton::matches_at`]).
    full: bool,
    /// Where the program's lead ends: the instructions before it have no
    /// way back (every choice is settled by the byte in front of it, every
    /// run ends at its first byte outside the class) and none jumps past
    /// it, so they are walked straight (see [`Skeleton::walk_lead`]); 0
    /// when there is no such lead.
    lead: usize,
    /// The lead is the whole program, up to its `Match`, and the match is
    /// not empty (see [`Skeleton::match_start`]).
    forward: bool,
}

impl Skeleton {
    /// The program for `pattern`, noting the span of the group named `group`
    /// when given; `None` when the pattern is not of the shape the module
    /// docs describe (or names no such group).
    #[cfg(test)]
    pub(super) fn new(pattern: &str, group: Option<&str>) -> Option<Skeleton> {
        let hir = regex_automata::util::syntax::parse_with(pattern, &syntax_config()).ok()?;
        Skeleton::build(&hir, group, true)
    }

    /// [`Skeleton::new`] of a pattern as the parser read it.
    pub(super) fn of_hir(hir: &Hir, group: Option<&str>) -> Option<Skeleton> {
        Skeleton::build(hir, group, true)
    }

    /// The program for `pattern` (the text after `<HOST>`) as
    /// [`Skeleton::matches_at`] runs it: a match may end anywhere. It may not
    /// look at the text start, which a match from the middle of a text never
    /// sees anyway.
    #[cfg(test)]
    pub(super) fn prefix(pattern: &str) -> Option<Skeleton> {
        let hir = regex_automata::util::syntax::parse_with(pattern, &syntax_config()).ok()?;
        Skeleton::prefix_of_hir(&hir)
    }

    /// [`Skeleton::prefix`] of a pattern as the parser read it.
    pub(super) fn prefix_of_hir(hir: &Hir) -> Option<Skeleton> {
        Skeleton::build(hir, None, false)
    }

    fn build(hir: &Hir, group: Option<&str>, full: bool) -> Option<Skeleton> {
        let mut prog = Vec::new();
        let mut saw_group = false;
        compile(hir, group, &mut prog, &mut saw_group)?;
        if group.is_some() && !saw_group {
            return None;
        }
        prog.push(Inst::Match);
        // A match from the middle of a text is where a start test fails, and
        // that would break the reasoning of `run_end` below.
        if !full && prog.iter().any(|i| matches!(i, Inst::Start)) {
            return None;
        }
        if prog.len() > MAX_INSTS || paths(&prog) > MAX_PATHS {
            return None;
        }
        for pc in 0..prog.len() {
            if let Inst::Split { first, second, .. } = prog[pc] {
                let (a, b) = (reach(&prog, first, full), reach(&prog, second, full));
                if let Inst::Split { choice, .. } = &mut prog[pc] {
                    for (k, c) in choice.iter_mut().enumerate() {
                        *c = (u8::from(a[k]) * FIRST) | (u8::from(b[k]) * SECOND);
                    }
                }
            }
            if let Inst::Run {
                class, min, max, ..
            } = &prog[pc]
            {
                let end = run_end(&prog, pc, class, *min == *max, full)?;
                if let Inst::Run { end: e, .. } = &mut prog[pc] {
                    *e = end;
                }
            }
        }
        let (lead, forward) = if full { lead_of(&prog) } else { (0, false) };
        Some(Skeleton {
            prog: prog.into_boxed_slice(),
            tracks_group: group.is_some(),
            full,
            lead,
            forward,
        })
    }

    /// The bytes a text matched from its start can begin with, every byte
    /// when the program may match the empty text (a prefix program then
    /// matches whatever follows).
    pub(super) fn first_byte_set(&self) -> Box<[bool; 256]> {
        let mut set = Box::new([false; 256]);
        let (_, anywhere) = first_bytes(&self.prog, 0, &mut set, self.full);
        if anywhere {
            set.fill(true);
        }
        set
    }

    /// Whether the pattern matches all of `text`, and then where its group
    /// is (`GroupAt::Unknown` when the program notes none).
    #[inline]
    pub(super) fn full_match(&self, text: &[u8]) -> Option<GroupAt> {
        let mut slots = [usize::MAX; 2];
        if !self.exec(text, 0, 0, &mut slots) {
            return None;
        }
        Some(self.group(slots))
    }

    /// The group's span as `slots` note it.
    #[inline]
    fn group(&self, slots: [usize; 2]) -> GroupAt {
        if !self.tracks_group {
            GroupAt::Unknown
        } else if slots[0] == usize::MAX || slots[1] == usize::MAX {
            GroupAt::Absent
        } else {
            GroupAt::At(slots[0], slots[1])
        }
    }

    /// Whether [`Skeleton::match_start`] may be asked: a full program whose
    /// way through a text never depends on where the text ends.
    pub(super) fn is_forward(&self) -> bool {
        self.forward
    }

    /// The one prefix of `text` the pattern matches, as its length and the
    /// group's span there: what [`Skeleton::full_match`] says of
    /// `text[..len]`, and no other prefix matches. Without one, `Err` with
    /// how many bytes of `text` settled that (every text that starts with
    /// them has no match either), where the walk did not run into the end
    /// of `text`. Only for a program
    /// [`Skeleton::is_forward`] accepts: there every choice and every run's
    /// end is settled by a byte before the match's end (nothing after a
    /// choice or a run matches the empty text), so the program walks the
    /// same way whether the text stops at the match's end or goes on, and
    /// what follows the match is never read. That is what lets a caller
    /// find where `A` ends without searching for the literal it ends with,
    /// and remember the answer by the bytes of the prefix alone.
    pub(super) fn match_start(&self, text: &[u8]) -> Result<(usize, GroupAt), Option<usize>> {
        debug_assert!(self.forward);
        let (pos, slots) = self.walk_lead(text)?;
        Ok((pos, self.group(slots)))
    }

    /// Walks the lead (`prog[..lead]`) over `text` from its start: where it
    /// ends and what it noted, or (`Err`) that no match starts `text`, with
    /// how many bytes of `text` settled that where its end did not (see
    /// [`Skeleton::match_start`]).
    #[inline]
    fn walk_lead(&self, text: &[u8]) -> Result<(usize, [usize; 2]), Option<usize>> {
        let mut slots = [usize::MAX; 2];
        let mut pc = 0;
        let mut pos = 0;
        while pc < self.lead {
            match &self.prog[pc] {
                Inst::Lit(lit) => {
                    if !lit.is_at(text, pos) {
                        // Up to the first byte that differs.
                        return Err(text[pos..]
                            .iter()
                            .zip(lit.text.iter())
                            .position(|(a, b)| a != b)
                            .map(|k| pos + k + 1));
                    }
                    pos += lit.len();
                }
                Inst::Run {
                    class, min, max, ..
                } => {
                    let rest = &text[pos..];
                    let limit = rest.len().min(*max);
                    let n = rest[..limit]
                        .iter()
                        .position(|b| !class[usize::from(*b)])
                        .unwrap_or(limit);
                    if n < *min {
                        // Up to the byte that stopped the run (`n < max`).
                        return Err((n < rest.len()).then_some(pos + n + 1));
                    }
                    pos += n;
                }
                Inst::Split {
                    first,
                    second,
                    choice,
                } => {
                    let next = text.get(pos).map_or(AT_END, |b| usize::from(*b));
                    pc = match choice[next] {
                        FIRST => *first,
                        SECOND => *second,
                        // Both cannot be (see `lead_of`); none: no match.
                        _ => return Err((next != AT_END).then_some(pos + 1)),
                    };
                    continue;
                }
                Inst::Jmp(to) => {
                    pc = *to;
                    continue;
                }
                Inst::Save(k) => slots[*k] = pos,
                Inst::Start => {
                    if pos != 0 {
                        return Err(None);
                    }
                }
                // Not in a lead.
                Inst::End | Inst::Match => return Err(None),
            }
            pc += 1;
        }
        Ok((pos, slots))
    }

    /// Whether a match starts at `text[at..]` (the text before `at` is not
    /// looked at: the program has no start test).
    #[inline]
    pub(super) fn matches_at(&self, text: &[u8], at: usize) -> bool {
        let mut slots = [usize::MAX; 2];
        self.exec(text, 0, at, &mut slots)
    }

    /// Runs the program from `pc` at `pos`: the first way through, in
    /// priority order, that ends at the text's end.
    fn exec(&self, text: &[u8], mut pc: usize, mut pos: usize, slots: &mut [usize; 2]) -> bool {
        loop {
            match &self.prog[pc] {
                Inst::Lit(lit) => {
                    if !lit.is_at(text, pos) {
                        return false;
                    }
                    pos += lit.len();
                }
                Inst::Run {
                    class,
                    min,
                    max,
                    end,
                } => {
                    let rest = &text[pos..];
                    let n = match *end {
                        RunEnd::Maximal => {
                            let limit = rest.len().min(*max);
                            rest[..limit]
                                .iter()
                                .position(|b| !class[usize::from(*b)])
                                .unwrap_or(limit)
                        }
                        RunEnd::Tail(t) => {
                            let Some(n) = rest.len().checked_sub(t) else {
                                return false;
                            };
                            if n > *max || !rest[..n].iter().all(|b| class[usize::from(*b)]) {
                                return false;
                            }
                            n
                        }
                    };
                    if n < *min {
                        return false;
                    }
                    pos += n;
                }
                Inst::Split {
                    first,
                    second,
                    choice,
                } => {
                    let next = text.get(pos).map_or(AT_END, |b| usize::from(*b));
                    match choice[next] {
                        FIRST => pc = *first,
                        SECOND => pc = *second,
                        0 => return false,
                        _ => {
                            let saved = *slots;
                            if self.exec(text, *first, pos, slots) {
                                return true;
                            }
                            *slots = saved;
                            pc = *second;
                        }
                    }
                    continue;
                }
                Inst::Jmp(to) => {
                    pc = *to;
                    continue;
                }
                Inst::Save(k) => slots[*k] = pos,
                Inst::Start => {
                    if pos != 0 {
                        return false;
                    }
                }
                Inst::End => {
                    if pos != text.len() {
                        return false;
                    }
                }
                Inst::Match => return !self.full || pos == text.len(),
            }
            pc += 1;
        }
    }
}

/// `L`, `C` and `m` of a [`Lead`].
type LitRun = (Box<[u8]>, Box<[bool; 256]>, usize);

/// The text after `<HOST>` taken apart as `L C{m,} REST` or `(?:L C{m,})?
/// REST` (` port \d+` or `(?: port \d+)?` before what sshd writes next):
/// the port changes on every line, so a verdict remembered by the whole
/// text never repeats, while `REST` (` ssh2`, ` [preauth]`) repeats line
/// after line. Its verdict, remembered by the text after the run, stands in
/// for a walk of the whole program.
#[derive(Debug)]
pub(super) struct Lead {
    /// `L`, not empty.
    lit: Box<[u8]>,
    /// `C`.
    class: Box<[bool; 256]>,
    /// `m`.
    min: usize,
    /// `L C{m,}` may be left out.
    pub(super) optional: bool,
    /// `REST`, as [`Skeleton::matches_at`] runs it.
    pub(super) rest: Skeleton,
}

impl Lead {
    /// `None` when `hir` is not of that shape, or when `REST` can start with
    /// a byte of `C` or match anywhere: then the run could end before its
    /// last byte of `C`, and the one place [`Lead::rest_at`] gives would not
    /// be the only one.
    pub(super) fn of_hir(hir: &Hir) -> Option<Lead> {
        let HirKind::Concat(items) = hir.kind() else {
            return None;
        };
        let lit_run = |lit: &Hir, rep: &Hir| -> Option<LitRun> {
            let (HirKind::Literal(lit), HirKind::Repetition(rep)) = (lit.kind(), rep.kind()) else {
                return None;
            };
            let HirKind::Class(class) = rep.sub.kind() else {
                return None;
            };
            if lit.0.is_empty() || rep.max.is_some() {
                return None;
            }
            let Inst::Run { class, .. } = run(&class_bytes(class)?, 0, None) else {
                return None;
            };
            Some((lit.0.clone(), class, usize::try_from(rep.min).ok()?))
        };
        let (lead, optional, rest) = match items.as_slice() {
            [first, rest @ ..] if matches!(first.kind(), HirKind::Repetition(r) if r.min == 0 && r.max == Some(1)) =>
            {
                let HirKind::Repetition(rep) = first.kind() else {
                    return None;
                };
                let HirKind::Concat(inner) = rep.sub.kind() else {
                    return None;
                };
                let [lit, run] = inner.as_slice() else {
                    return None;
                };
                (lit_run(lit, run)?, true, rest)
            }
            [lit, run, rest @ ..] => (lit_run(lit, run)?, false, rest),
            _ => return None,
        };
        let (lit, class, min) = lead;
        let rest = Skeleton::prefix_of_hir(&Hir::concat(rest.to_vec()))?;
        let first = rest.first_byte_set();
        if (0..256).any(|b| first[b] && class[b]) {
            return None;
        }
        Some(Lead {
            lit,
            class,
            min,
            optional,
            rest,
        })
    }

    /// Where `REST` must match for `L C{m,}` at `text[at..]` to start a
    /// match: after all the bytes of `C` that follow `L`. `None` when `L`
    /// is not there or the run is too short.
    #[inline]
    pub(super) fn rest_at(&self, text: &[u8], at: usize) -> Option<usize> {
        let from = at.checked_add(self.lit.len())?;
        if !same(text.get(at..from)?, &self.lit) {
            return None;
        }
        let n = text[from..]
            .iter()
            .position(|b| !self.class[usize::from(*b)])
            .unwrap_or(text.len() - from);
        (n >= self.min).then_some(from + n)
    }
}

/// Appends the program of `hir` to `prog`; `None` for what the module docs
/// leave out.
fn compile(hir: &Hir, group: Option<&str>, prog: &mut Vec<Inst>, saw: &mut bool) -> Option<()> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(lit) => prog.push(Inst::Lit(Lit::new(&lit.0))),
        HirKind::Class(class) => prog.push(run(&class_bytes(class)?, 1, Some(1))),
        HirKind::Look(Look::Start) => prog.push(Inst::Start),
        HirKind::Look(Look::End) => prog.push(Inst::End),
        HirKind::Look(_) => return None,
        HirKind::Repetition(rep) => {
            let single = match rep.sub.kind() {
                HirKind::Class(class) => Some(class_bytes(class)?),
                // `c*`: a run of one byte.
                HirKind::Literal(lit) if lit.0.len() == 1 => {
                    Some(regex_syntax::hir::ClassBytes::new([
                        regex_syntax::hir::ClassBytesRange::new(lit.0[0], lit.0[0]),
                    ]))
                }
                _ => None,
            };
            if let Some(bytes) = &single {
                let min = usize::try_from(rep.min).ok()?;
                let max = rep.max.map(usize::try_from).transpose().ok()?;
                prog.push(run(bytes, min, max));
            } else if rep.min == 0 && rep.max == Some(1) {
                // `x?` is a choice between `x` and nothing, `x??` the other
                // way round.
                let split = prog.len();
                prog.push(Inst::Jmp(usize::MAX));
                compile(&rep.sub, group, prog, saw)?;
                let after = prog.len();
                prog[split] = if rep.greedy {
                    split_to(split + 1, after)
                } else {
                    split_to(after, split + 1)
                };
            } else {
                return None;
            }
        }
        HirKind::Capture(cap) => {
            let mine = group.is_some() && cap.name.as_deref() == group;
            if mine {
                *saw = true;
                prog.push(Inst::Save(0));
            }
            compile(&cap.sub, group, prog, saw)?;
            if mine {
                prog.push(Inst::Save(1));
            }
        }
        HirKind::Concat(items) => {
            for item in items {
                compile(item, group, prog, saw)?;
            }
        }
        HirKind::Alternation(alts) => {
            // Split(alt, next); alt; Jmp(end); next: Split(...) ... last
            let mut jumps = Vec::new();
            for (k, alt) in alts.iter().enumerate() {
                let last = k + 1 == alts.len();
                let split = prog.len();
                if !last {
                    prog.push(Inst::Jmp(usize::MAX));
                }
                compile(alt, group, prog, saw)?;
                if !last {
                    jumps.push(prog.len());
                    prog.push(Inst::Jmp(usize::MAX));
                    let next = prog.len();
                    prog[split] = split_to(split + 1, next);
                }
            }
            let end = prog.len();
            for j in jumps {
                prog[j] = Inst::Jmp(end);
            }
        }
    }
    Some(())
}

/// A class as bytes: the parser makes `(?:x|y)` a Unicode class even without
/// Unicode; one of ASCII alone is the same bytes. `None` for anything else.
fn class_bytes(class: &Class) -> Option<regex_syntax::hir::ClassBytes> {
    match class {
        Class::Bytes(bytes) => Some(bytes.clone()),
        Class::Unicode(u) => u.to_byte_class(),
    }
}

/// A choice between `first` and `second`, both allowed until the program is
/// whole.
fn split_to(first: usize, second: usize) -> Inst {
    Inst::Split {
        first,
        second,
        choice: Box::new([FIRST | SECOND; 257]),
    }
}

/// By the next byte (or [`AT_END`]), whether the program from `pc` on may
/// match (more is harmless: it only costs a try).
fn reach(prog: &[Inst], pc: usize, full: bool) -> Box<[bool; 257]> {
    let mut set = [false; 256];
    let mut out = Box::new([false; 257]);
    let (at_end, anywhere) = first_bytes(prog, pc, &mut set, full);
    out[..256].copy_from_slice(&set);
    out[AT_END] = at_end;
    if anywhere {
        out.fill(true);
    }
    out
}

/// A run of the bytes of `bytes`; its end is worked out once the program is
/// whole.
fn run(bytes: &regex_syntax::hir::ClassBytes, min: usize, max: Option<usize>) -> Inst {
    let mut class = Box::new([false; 256]);
    for r in bytes.ranges() {
        for b in r.start()..=r.end() {
            class[usize::from(b)] = true;
        }
    }
    Inst::Run {
        class,
        min,
        max: max.unwrap_or(usize::MAX),
        end: RunEnd::Maximal,
    }
}

/// How the run at `pc` ends (see [`RunEnd`]); `None` when neither holds.
/// `fixed`: the run has one length only. `full`: the program's match takes
/// the whole text.
///
/// Without `full`, a way on that reaches the match taking no byte takes none
/// wherever the run ends (no start test, see [`Skeleton::prefix`]), so the
/// longest run finds a match whenever a shorter one does: good enough to
/// tell whether there is a match, which is all such a program says.
fn run_end(
    prog: &[Inst],
    pc: usize,
    class: &[bool; 256],
    fixed: bool,
    full: bool,
) -> Option<RunEnd> {
    // A run of one length ends in one place, whatever may follow it.
    if fixed {
        return Some(RunEnd::Maximal);
    }
    let mut next = [false; 256];
    first_bytes(prog, pc + 1, &mut next, full);
    if !(0..256).any(|b| next[b] && class[b]) {
        return Some(RunEnd::Maximal);
    }
    let mut tail = 0;
    for inst in &prog[pc + 1..] {
        match inst {
            Inst::Lit(lit) => tail += lit.len(),
            Inst::Save(_) => {}
            Inst::End => return Some(RunEnd::Tail(tail)),
            Inst::Match if full => return Some(RunEnd::Tail(tail)),
            _ => return None,
        }
    }
    None
}

/// Marks in `set` every byte a text matched from `pc` on can start with (more
/// is harmless: it only turns a program down or costs a try). Returns whether
/// the program can match from `pc` taking no byte at the text's end, and
/// anywhere (a prefix program's match).
fn first_bytes(prog: &[Inst], pc: usize, set: &mut [bool; 256], full: bool) -> (bool, bool) {
    match &prog[pc] {
        Inst::Lit(lit) => match lit.first() {
            Some(b) => {
                set[usize::from(*b)] = true;
                (false, false)
            }
            None => first_bytes(prog, pc + 1, set, full),
        },
        Inst::Run { class, min, .. } => {
            for (s, c) in set.iter_mut().zip(class.iter()) {
                *s |= *c;
            }
            if *min == 0 {
                first_bytes(prog, pc + 1, set, full)
            } else {
                (false, false)
            }
        }
        Inst::Split { first, second, .. } => {
            let a = first_bytes(prog, *first, set, full);
            let b = first_bytes(prog, *second, set, full);
            (a.0 || b.0, a.1 || b.1)
        }
        Inst::Jmp(to) => first_bytes(prog, *to, set, full),
        Inst::Save(_) | Inst::Start => first_bytes(prog, pc + 1, set, full),
        Inst::End => (true, false),
        Inst::Match => (true, !full),
    }
}

/// The lead of `prog` (a full program) and whether it is all of it (see
/// [`Skeleton::lead`]). An instruction belongs to the lead when no earlier
/// one jumps past it and: a choice's two ways start with different bytes
/// and neither can match the empty text; a run has one length, or what
/// follows it cannot start with a byte of its class nor match the empty
/// text; and it is no `$`.
/// Then no text has two ways through the lead, and a walk of it never
/// needs to go back. A forward program is one whose lead reaches its
/// `Match` and that cannot match the empty text: there, as nothing after
/// a choice or a run matches the empty text, every byte the walk reads
/// lies before the match's end, so one text has at most one prefix that
/// matches, and the walk that finds it reads no byte after it.
fn lead_of(prog: &[Inst]) -> (usize, bool) {
    // From `pc` on: the bytes a match can start with, and whether it can be
    // empty (`first_bytes` of a prefix program says so as "anywhere", and
    // at a `$`).
    let ahead = |pc: usize| {
        let mut set = [false; 256];
        let (at_end, anywhere) = first_bytes(prog, pc, &mut set, false);
        (set, at_end || anywhere)
    };
    let mut reach = 0;
    let mut lead = 0;
    for (pc, inst) in prog.iter().enumerate() {
        if reach <= pc {
            lead = pc;
        }
        let straight = match inst {
            Inst::Split { first, second, .. } => {
                reach = reach.max(*first).max(*second);
                let ((a, a_empty), (b, b_empty)) = (ahead(*first), ahead(*second));
                !a_empty && !b_empty && !(0..256).any(|k| a[k] && b[k])
            }
            Inst::Jmp(to) => {
                reach = reach.max(*to);
                true
            }
            // A run of one length reads no byte past itself, and ends in
            // one place.
            Inst::Run { min, max, .. } if min == max => true,
            Inst::Run { class, .. } => {
                let (next, empty) = ahead(pc + 1);
                !empty && !(0..256).any(|k| next[k] && class[k])
            }
            Inst::End => false,
            Inst::Match => return (pc, pc > 0 && reach <= pc && !ahead(0).1),
            Inst::Lit(_) | Inst::Save(_) | Inst::Start => true,
        };
        if !straight {
            break;
        }
    }
    (lead, false)
}

/// How many ways lead from the start to the end of the program (saturating).
fn paths(prog: &[Inst]) -> u64 {
    // Every jump goes forward, so counting from the end back is enough.
    let mut ways = vec![0u64; prog.len() + 1];
    for pc in (0..prog.len()).rev() {
        ways[pc] = match &prog[pc] {
            Inst::Match => 1,
            Inst::Split { first, second, .. } => ways[*first].saturating_add(ways[*second]),
            Inst::Jmp(to) => ways[*to],
            _ => ways[pc + 1],
        };
    }
    ways[0]
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use regex_automata::meta::Regex;

    /// Patterns of the shapes filters write before `<HOST>`, with a named
    /// group where they have one.
    const PATTERNS: [(&str, Option<&str>); 11] = [
        (
            r"^(?:\[ID \d+ [a-z0-9]+\.[a-z]+\] )?(?:error: )?Failed (?:password|keyboard-interactive(?:/[a-z0-9-]+)?|none|rhosts(?:-rsa)?) for (?:(?:invalid|illegal) user )?(?P<user>[^:]*) from ",
            Some("user"),
        ),
        (
            r"^(?:pam_[a-z0-9_]+\(sshd:auth\): )?authentication failure; logname=\S* uid=\d* euid=\d* tty=\S* ruser=\S* rhost=",
            None,
        ),
        (
            r"^Connection (?:closed|reset) by (?:(?:authenticating|invalid) user (?P<user>[^:]*) )?",
            Some("user"),
        ),
        (r"^(?:error: )?Received disconnect from ", None),
        (r"^(?:ab|a)(?P<user>b?c*)d ", Some("user")),
        (r"^x(?:y|yz)?(?P<user>z?)", Some("user")),
        (r"^(?P<user>.*) from ", Some("user")),
        (r"^[a-c]{1,3}(?:x|y)?d", None),
        // Runs of one length, followed by bytes of their class.
        (
            r"^(?:\[ID \d+ [a-z0-9]+\.[a-z]+\] )?Accepted [a-z][a-z0-9-]*(?:/[a-z0-9-]+)? for (?P<user>[^:]*) from ",
            Some("user"),
        ),
        (r"^[a-c](?:ab|ba)?(?P<user>[a-d]{2})[a-d]*x?", Some("user")),
        (r"^(?:ab|b)?(?:a|)?c?", None),
    ];

    #[test]
    fn takes_the_shapes_filters_use() {
        for (p, g) in PATTERNS {
            assert!(Skeleton::new(p, g).is_some(), "{p}");
        }
        // A run that can stop in more than one place, repeated groups,
        // look-around, a group the pattern does not have.
        for p in [
            r"^[a-z]*a[a-z]*b",
            r"^a+?a*b ",
            r"^(?:ab)+",
            r"^a\b",
            r"(?m)^a",
            r"^\d*\d",
        ] {
            assert!(Skeleton::new(p, None).is_none(), "{p}");
        }
        assert!(Skeleton::new(r"^a (?P<x>b)", Some("user")).is_none());
    }

    /// Texts of up to `most` of `words` in a row.
    pub(in crate::filter) fn words(
        words: &'static [&'static str],
        most: usize,
    ) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::strategy::Strategy;
        proptest::collection::vec(proptest::sample::select(words), 0..most).prop_map(|v| v.concat())
    }

    /// Text made of the pieces the patterns look for.
    fn pieces() -> impl proptest::strategy::Strategy<Value = String> {
        words(
            &[
                "[ID 123 auth.info] ",
                "error: ",
                "Failed ",
                "password",
                "none",
                "keyboard-interactive/pam",
                "rhosts-rsa",
                " for ",
                "invalid user ",
                "illegal ",
                "user ",
                "root",
                ":",
                " from ",
                "pam_unix(sshd:auth): ",
                "authentication failure; logname=",
                " uid=0",
                " euid=",
                " tty=ssh",
                " ruser=",
                " rhost=",
                "Connection ",
                "closed",
                "reset",
                " by ",
                "authenticating ",
                "Received disconnect from ",
                "Accepted ",
                "publickey",
                "-",
                "/",
                "a",
                "b",
                "c",
                "d",
                "x",
                "y",
                "z",
                " ",
                "0",
            ],
            9,
        )
    }

    fn check(text: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        for (p, g) in PATTERNS {
            let sk = Skeleton::new(p, g).expect("builds");
            let re = Regex::builder()
                .syntax(syntax_config())
                .build(&format!(r"\A(?:{p})\z"))
                .expect("regex");
            let mut caps = re.create_captures();
            re.captures(text, &mut caps);
            let want = caps.is_match().then(|| match g {
                None => GroupAt::Unknown,
                Some(name) => match caps.get_group_by_name(name) {
                    Some(s) => GroupAt::At(s.start, s.end),
                    None => GroupAt::Absent,
                },
            });
            proptest::prop_assert_eq!(
                sk.full_match(text),
                want,
                "{} on {:?}",
                p,
                String::from_utf8_lossy(text)
            );
        }
        Ok(())
    }

    /// Texts after `<HOST>` as filters write them.
    const AFTERS: [&str; 10] = [
        r"(?: port \d+)?(?: ssh[12]?)?(?:: .*)?$",
        r"(?:\s+user=\S*)?\s*$",
        r"(?: port \d+)?: ?\d+: .*$",
        r"(?: port \d+)?(?: \[preauth\])?$",
        r#" port \d+(?: on \S+ port \d+(?: rdomain "[^"]*")?)?$"#,
        r"(?: via \S+)? ?$",
        r"\]:\d+ on \[[^\]]*\]:\d+ penalty: .*$",
        r" port \d+",
        r"",
        r"(?:x|xy)?z?",
    ];

    #[test]
    fn takes_the_texts_after_the_address() {
        for p in AFTERS {
            assert!(Skeleton::prefix(p).is_some(), "{p}");
        }
        for p in [r"^x", r"(?m)x$", r"\bx", r", pid = \d+.*$"] {
            assert!(Skeleton::prefix(p).is_none(), "{p}");
        }
    }

    /// Texts made of what follows an address.
    fn after_pieces() -> impl proptest::strategy::Strategy<Value = String> {
        words(
            &[
                " port ",
                "22",
                "1",
                " ssh2",
                " ssh",
                ": ",
                ":",
                "11",
                " ",
                "  ",
                "user=",
                "root",
                " [preauth]",
                " on ",
                "\"x\"",
                " rdomain ",
                " via ",
                "]",
                "[",
                "x",
                "y",
                "z",
                " penalty: ",
                "\t",
                "\n",
            ],
            8,
        )
    }

    proptest::proptest! {
        /// `same` is slice equality, at every length around the word sizes.
        #[test]
        fn same_is_equality(a in proptest::collection::vec(0u8..3, 0..40), flip in 0usize..40) {
            let mut b = a.clone();
            proptest::prop_assert!(same(&a, &b));
            if let Some(x) = b.get_mut(flip) {
                *x ^= 1;
            }
            proptest::prop_assert_eq!(same(&a, &b), a == b);
            proptest::prop_assert_eq!(same(&a, &b[..b.len().saturating_sub(1)]), a[..] == b[..b.len().saturating_sub(1)]);
        }
    }

    proptest::proptest! {
        /// A literal's word compare is `starts_with`, at every length (the
        /// few letters make near misses common) and every place.
        #[test]
        fn literal_compare_is_starts_with(
            lit in proptest::collection::vec(b'a'..=b'c', 0..40),
            text in proptest::collection::vec(b'a'..=b'c', 0..48),
            pos in 0usize..50,
        ) {
            let l = Lit::new(&lit);
            let want = text.get(pos..).is_some_and(|t| t.starts_with(&lit));
            proptest::prop_assert_eq!(l.is_at(&text, pos), want);
            // And the literal itself, with a byte changed anywhere.
            let mut same = lit.clone();
            same.extend_from_slice(&text);
            proptest::prop_assert!(l.is_at(&same, 0));
            if let Some(b) = same.get_mut(pos % lit.len().max(1)).filter(|_| !lit.is_empty()) {
                *b = b'x';
                proptest::prop_assert!(!l.is_at(&same, 0));
            }
        }

        /// A prefix program finds a match at a place exactly when the regex's
        /// anchored search there does.
        #[test]
        fn prefix_agrees_with_the_anchored_search(text in after_pieces(), at in 0usize..8) {
            use regex_automata::{Anchored, Input};
            let text = text.as_bytes();
            let at = at.min(text.len());
            for p in AFTERS {
                let sk = Skeleton::prefix(p).expect("builds");
                let re = Regex::builder().syntax(syntax_config()).build(p).expect("regex");
                let want = re.is_match(Input::new(text).range(at..).anchored(Anchored::Yes));
                proptest::prop_assert_eq!(
                    sk.matches_at(text, at), want,
                    "{} at {} on {:?}", p, at, String::from_utf8_lossy(text)
                );
            }
        }

        /// The program's verdict and group are the capturing search's, on
        /// texts made of the words the patterns use.
        #[test]
        fn agrees_with_the_capturing_search(text in pieces()) {
            check(text.as_bytes())?;
        }

        /// And on short texts of a few letters, where the runs and choices
        /// meet.
        #[test]
        fn agrees_on_short_texts(text in "[abcdxyz :]{0,8}") {
            check(text.as_bytes())?;
        }
    }
}
