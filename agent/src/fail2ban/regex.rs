//! fail2ban's regexes: its tags (`<HOST>`, `<F-USER>`...) and Python's syntax,
//! turned into something the `regex` crate runs, or, only where Python syntax
//! needs backtracking (look-around, backreferences, conditionals, atomic and
//! possessive forms), `fancy-regex` with a step limit.
//!
//! The tag meanings come from fail2ban's documentation and `failregex.py`: `<HOST>`
//! is an IPv4 (optionally `::ffff:`-mapped), an IPv6 (optionally in brackets) or a
//! DNS name, in groups `ip4`, `ip6`, `dns`; `<F-NAME>...</F-NAME>` captures into
//! group `name` (`F-ID` as `fid`, `F-PORT` as `fport`).

use std::sync::OnceLock;

use regex_automata::util::primitives::NonMaxUsize;

mod capture;
mod rewrite;
mod scan;

pub(crate) use scan::{AsciiDfa, NoAnswer, OwnCache, Resume};

/// Why a fail2ban regex cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RegexError {
    /// Both engines' explanation.
    pub message: String,
}

/// Step limit of the backtracking engine: a pattern that needs more on one line
/// gives up on that line (no match) instead of stalling the source.
const BACKTRACK_LIMIT: usize = 200_000;

// Written from the address grammars, not copied: an IPv4 dotted quad, and an IPv6
// text of hex groups and colons (the last unit may be a lone ':' only after one).
const IP4: &str = r"(?:\d{1,3}\.){3}\d{1,3}";
const IP6: &str = r"(?:[0-9a-fA-F]{1,4}::?|:){1,7}(?:[0-9a-fA-F]{1,4}|:)";

fn host_alts(use_dns: bool) -> String {
    let addr = format!(r"\[?(?:(?:::f{{4,6}}:)?(?P<ip4>{IP4})|(?P<ip6>{IP6}))\]?");
    if use_dns {
        format!(r"(?:{addr}|(?P<dns>[\w\-.^_]*\w))")
    } else {
        addr
    }
}

/// Replaces fail2ban's tags with regex text (still Python syntax). Unknown tags
/// stay as they are: in a regex, `<x>` is literal text.
pub fn resolve_tags(re: &str, use_dns: bool) -> String {
    let mut out = String::with_capacity(re.len() + 64);
    let mut open: Vec<String> = Vec::new();
    let mut skiplines = 0;
    let mut rest = re;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // A tag is `<` [\w-/]+ `>` (a leading `/` closes, a trailing `/` self-closes).
        let end = rest[1..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '/'))
            .map(|e| e + 1);
        let Some(end) = end.filter(|&e| rest.as_bytes()[e] == b'>' && e > 1) else {
            out.push('<');
            rest = &rest[1..];
            continue;
        };
        let tag = &rest[1..end];
        let whole = &rest[..=end];
        rest = &rest[end + 1..];
        let repl: Option<String> = match tag {
            "HOST" => Some(host_alts(use_dns)),
            "ADDR" | "F-ADDR/" => Some(host_alts(false)),
            "IP4" | "F-IP4/" => Some(format!(r"(?:::f{{4,6}}:)?(?P<ip4>{IP4})")),
            "IP6" | "F-IP6/" => Some(format!(r"(?P<ip6>{IP6})")),
            "DNS" | "F-DNS/" => Some(r"(?P<dns>[\w\-.^_]*\w)".to_owned()),
            "CIDR" | "F-CIDR/" => Some(r"(?P<cidr>\d+)".to_owned()),
            "SUBNET" | "F-SUBNET/" => Some(format!(
                r"\[?(?:(?:::f{{4,6}}:)?(?P<ip4>{IP4})|(?P<ip6>{IP6}))(?:/(?P<cidr>\d+))?\]?"
            )),
            "F-ID/" => Some(r"(?P<fid>\S+)".to_owned()),
            "F-PORT/" => Some(r"(?P<fport>\w+)".to_owned()),
            "SKIPLINES" => {
                skiplines += 1;
                Some(format!(r"\n(?P<skiplines{}>(?:(?:.*\n)*?))", skiplines - 1))
            }
            _ => custom_tag(tag, &mut open),
        };
        out.push_str(repl.as_deref().unwrap_or(whole));
    }
    out.push_str(rest);
    out
}

/// `<F-NAME>` opens group `name`; `</F-NAME>` closes it if it was opened.
fn custom_tag(tag: &str, open: &mut Vec<String>) -> Option<String> {
    let (closing, name) = match tag.strip_prefix('/') {
        Some(n) => (true, n),
        None => (false, tag),
    };
    let name = name.strip_prefix("F-")?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return None;
    }
    if closing {
        return open.iter().any(|o| o == name).then(|| ")".to_owned());
    }
    open.push(name.to_owned());
    let group = match name.to_ascii_lowercase().as_str() {
        "id" => "fid".to_owned(),
        "port" => "fport".to_owned(),
        other => other.replace('-', "_"),
    };
    Some(format!("(?P<{group}>"))
}

/// Whether Python syntax in `re` needs the backtracking engine.
fn needs_backtracking(re: &str) -> bool {
    let b = re.as_bytes();
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if !in_class && b.get(i + 1).is_some_and(|c| (b'1'..=b'9').contains(c)) {
                    return true;
                }
                i += 2;
                continue;
            }
            b'[' if !in_class => {
                in_class = true;
                i = class_opening(b, i);
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class && b.get(i + 1) == Some(&b'?') => {
                let next = &b[i + 2..];
                if next.starts_with(b"=")
                    || next.starts_with(b"!")
                    || next.starts_with(b"<=")
                    || next.starts_with(b"<!")
                    || next.starts_with(b"P=")
                    || next.starts_with(b"(")
                    || next.starts_with(b">")
                {
                    return true;
                }
            }
            b'*' | b'+' | b'?' | b'}' if !in_class && b.get(i + 1) == Some(&b'+') => {
                return true;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Past the `[` at `i` of a class, and past a `^` and a `]` right after it:
/// `[]` and `[^]` start with a literal `]`.
fn class_opening(b: &[u8], mut i: usize) -> usize {
    if b.get(i + 1) == Some(&b'^') {
        i += 1;
    }
    if b.get(i + 1) == Some(&b']') {
        i += 1;
    }
    i
}

/// Rewrites the Python spellings the Rust parsers read differently: `\Z`,
/// `[` and set operators inside classes, `{` that is not a repetition, Python's
/// `(?P=name)` kept for fancy-regex.
pub fn to_rust_syntax(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut class_start = 0;
    while i < b.len() {
        let c = b[i];
        // Copy whole UTF-8 characters untouched.
        if c >= 0x80 {
            let ch = re[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        match c {
            b'\\' => {
                let Some(&n) = b.get(i + 1) else {
                    out.push_str("\\\\");
                    i += 1;
                    continue;
                };
                if n >= 0x80 {
                    i += 1;
                    continue;
                }
                match n {
                    b'Z' => out.push_str(r"\z"),
                    // Escapes of letters Rust reads differently or not at all.
                    b'a' => out.push_str(r"\x07"),
                    // Python lets any character be escaped; `\_` is not valid in Rust.
                    b'_' => out.push('_'),
                    // Literal angle brackets in Python; word boundaries in Rust.
                    b'<' | b'>' => out.push(n as char),
                    _ => {
                        out.push('\\');
                        out.push(n as char);
                    }
                }
                i += 2;
                continue;
            }
            // Python's `(?(name)yes|no)`; fancy-regex spells a named condition `(?(<name>)`.
            b'(' if !in_class && b[i..].starts_with(b"(?(") => {
                let rest = &re[i + 3..];
                let len = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let name = &rest[..len];
                if len > 0
                    && rest[len..].starts_with(')')
                    && !name.bytes().all(|c| c.is_ascii_digit())
                {
                    out.push_str("(?(<");
                    out.push_str(name);
                    out.push_str(">)");
                    i += 3 + len + 1;
                    continue;
                }
                out.push('(');
            }
            b'[' if in_class => out.push_str(r"\["),
            b'&' | b'~' if in_class => {
                out.push('\\');
                out.push(c as char);
            }
            b'-' if in_class && b.get(i + 1) == Some(&b'-') => out.push_str(r"\-"),
            b'[' => {
                in_class = true;
                out.push('[');
                class_start = i;
                if b.get(i + 1) == Some(&b'^') {
                    out.push('^');
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    out.push_str(r"\]");
                    i += 1;
                }
            }
            b']' if in_class => {
                let _ = class_start;
                in_class = false;
                out.push(']');
            }
            b'{' if !in_class && is_repetition(&b[i..]) => {
                let end = i + b[i..].iter().position(|&c| c == b'}').expect("checked");
                out.push_str(&re[i..=end]);
                i = end + 1;
                continue;
            }
            b'{' if !in_class => out.push_str(r"\{"),
            b'}' if !in_class => out.push_str(r"\}"),
            _ => out.push(c as char),
        }
        i += 1;
    }
    out
}

/// `{n}`, `{n,}`, `{,m}`, `{n,m}` right here.
fn is_repetition(s: &[u8]) -> bool {
    let Some(end) = s.iter().position(|&c| c == b'}') else {
        return false;
    };
    let inner = &s[1..end];
    !inner.is_empty()
        && inner.iter().all(|&c| c.is_ascii_digit() || c == b',')
        && inner.iter().filter(|&&c| c == b',').count() <= 1
        && inner != b","
}

/// One compiled fail2ban regex.
#[derive(Debug)]
pub enum Compiled {
    /// Runs on the `regex` crate's engines.
    Fast(FastRe),
    /// Needs backtracking.
    Fancy(fancy_regex::Regex),
}

/// A pattern on the `regex` crate's engines, twice: as Python reads a str
/// pattern (Unicode classes), and, when the pattern text is ASCII, with ASCII
/// classes and case folding. On an ASCII haystack both match the same text
/// with the same groups (a Unicode `\w`, `\s`, `\d`, `.`, `\b` or case fold
/// differs from its ASCII form only on non-ASCII characters), and the ASCII
/// automata are several times smaller, so the capture engine (whose
/// per-search table grows with the automaton) runs much cheaper. Log lines are
/// almost always ASCII, so the Unicode form is compiled on the first line
/// that is not (its text is parsed, and so checked, at load).
///
/// Either form's automata are built on first use: the text is parsed (and
/// so checked) at load, but many of a filter's regexes never run on a given
/// log (their first bytes never lead a line), and building is most of a
/// filter's load. Only an automaton's size limit can refuse a parsed
/// pattern; that is then a warning, and the pattern matches nothing where
/// it needs that automaton.
#[derive(Debug)]
pub struct FastRe {
    /// The parse `first` is built from.
    hir: regex_syntax::hir::Hir,
    /// Whether `first` may run as one pattern per branch ([`branches`]).
    split: bool,
    /// The ASCII form where there is one, else the Unicode one; built on
    /// first use.
    first: OnceLock<First>,
    /// Whether `first` is the ASCII form.
    first_ascii: bool,
    /// The patterns `first` runs ([`patterns`](Self::patterns)) where
    /// split (`None`: as one, `hir`), worked out once: splitting builds
    /// DFAs of the branches' heads.
    patterns: OnceLock<Option<Box<[regex_syntax::hir::Hir]>>>,
    /// The Unicode form behind an ASCII `first`, once a line needed it.
    unicode: OnceLock<Option<regex_automata::meta::Regex>>,
    text: String,
    /// Per byte, whether a match (of an anchored pattern) may start the
    /// haystack with it; `None` when any byte may.
    first_bytes: Option<Box<[bool; 256]>>,
    /// The group names, by index, of the pattern as one (`first` may run
    /// it as several patterns: [`branches`]).
    names: Box<[Option<Box<str>>]>,
}

/// The automata of [`FastRe`]'s first form: a DFA-backed search without
/// groups, one pattern per branch where split, and each pattern's own
/// capture engine ([`capture`]), built at its first match.
#[derive(Debug)]
struct First {
    /// The search, built at its first use: a pattern whose matches a
    /// caller's DFA finds ([`FastRe::with_found_slots`]) never uses it, and
    /// it cost half a million instructions per pattern of sshd's filter.
    finder: OnceLock<Option<regex_automata::meta::Regex>>,
    /// By pattern ([`FastRe::patterns`]).
    captors: Box<[OnceLock<Option<capture::Captor>>]>,
}

/// A match's group spans, by group index (`None`: the group took no part).
pub type Spans = Vec<(usize, Option<(usize, usize)>)>;

/// Capture slots kept on the stack for patterns with up to this many groups
/// (over all of a split pattern's branches).
const STACK_SLOTS: usize = 256;

/// Runs `f` on `n` unset capture slots, from the stack where they fit (in
/// a buffer not much larger, as setting them costs): the per-line path
/// allocates nothing.
fn with_slot_buf<R>(n: usize, f: impl FnOnce(&mut [Option<NonMaxUsize>]) -> R) -> R {
    if n <= STACK_SLOTS / 4 {
        f(&mut [None; STACK_SLOTS / 4][..n])
    } else if n <= STACK_SLOTS {
        f(&mut [None; STACK_SLOTS][..n])
    } else {
        f(&mut vec![None; n])
    }
}

impl FastRe {
    /// Parses Rust-syntax regex text. The text is parsed once: the automata
    /// (built on first use) and the first bytes of its matches come from the
    /// same tree.
    pub fn new(rust: &str) -> Result<FastRe, String> {
        Self::parse(rust, false)
    }

    /// The same, run as one pattern per branch of a trailing alternation
    /// where that is exact ([`branches`]): the capture engine then explores
    /// the branch that matched only.
    pub fn new_split(rust: &str) -> Result<FastRe, String> {
        Self::parse(rust, true)
    }

    fn parse(rust: &str, split: bool) -> Result<FastRe, String> {
        // A non-ASCII character in the pattern may fold onto an ASCII one
        // (`(?i)\u{212a}`, the Kelvin sign, matches `k`): no ASCII form then.
        let ascii = if rust.is_ascii() {
            regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(rust)
                .ok()
        } else {
            None
        };
        // The Unicode form must parse too. Translating the same syntax tree
        // with Unicode on fails only where ASCII-only translation fails as
        // well (a `\p` class), or where a flag group turns Unicode off (then
        // UTF-8 mode may refuse it): only then is it parsed here.
        if ascii.is_some() && turns_unicode_off(rust) {
            regex_syntax::parse(rust).map_err(|e| e.to_string())?;
        }
        let (hir, first_ascii, first_bytes) = match ascii {
            Some(hir) => {
                // On a non-ASCII line the Unicode form runs: its matches may
                // also start with any non-ASCII byte.
                let bytes = first_bytes(&hir).map(|mut b| {
                    b[0x80..].fill(true);
                    b
                });
                (hir, true, bytes)
            }
            None => {
                let hir = regex_syntax::parse(rust).map_err(|e| e.to_string())?;
                let bytes = first_bytes(&hir);
                (hir, false, bytes)
            }
        };
        Ok(FastRe {
            names: group_names(&hir),
            hir,
            split,
            first: OnceLock::new(),
            first_ascii,
            patterns: OnceLock::new(),
            unicode: OnceLock::new(),
            text: rust.to_owned(),
            first_bytes: first_bytes.map(Box::new),
        })
    }

    /// The bytes every match of this anchored pattern starts the haystack
    /// with, when known.
    pub(crate) fn first_bytes(&self) -> Option<&[bool; 256]> {
        self.first_bytes.as_deref()
    }

    fn config() -> regex_automata::meta::Config {
        regex_automata::meta::Config::new().nfa_size_limit(Some(64 << 20))
    }

    /// The capture engines built so far, one per branch that has matched
    /// often enough to be cut: tests look at which fast paths they took.
    #[cfg(test)]
    fn built_captors(&self) -> impl Iterator<Item = &capture::Captor> {
        self.first()
            .captors
            .iter()
            .filter_map(|c| c.get()?.as_ref())
    }

    /// `first`, set up now if this is its first use; its automata are
    /// built at their own first use ([`First::finder`], [`First::captor`]).
    fn first(&self) -> &First {
        self.first.get_or_init(|| First {
            finder: OnceLock::new(),
            captors: self.patterns().iter().map(|_| OnceLock::new()).collect(),
        })
    }

    /// The patterns `first` runs: one per branch where split.
    fn patterns(&self) -> &[regex_syntax::hir::Hir] {
        self.patterns
            .get_or_init(|| {
                self.split
                    .then(|| branches(&self.hir))
                    .flatten()
                    .map(Vec::into_boxed_slice)
            })
            .as_deref()
            .unwrap_or(std::slice::from_ref(&self.hir))
    }

    /// The ASCII form's parse, for an [`AsciiDfa`] of the caller's, when
    /// the first form is the ASCII one: on the bytes an `AsciiDfa` answers
    /// for (ASCII), it finds what this pattern finds.
    pub(crate) fn ascii_hir(&self) -> Option<&regex_syntax::hir::Hir> {
        self.first_ascii.then_some(&self.hir)
    }

    /// The same as `first`'s patterns (one per branch where split), for a
    /// pattern whose every match starts the haystack (`^`): an anchored
    /// search of them from the start, pattern by pattern in their order,
    /// is the search `first` runs, and a match it finds is handed to
    /// [`with_found_slots`](Self::with_found_slots) by its pattern index.
    pub(crate) fn ascii_anchored_patterns(&self) -> Option<&[regex_syntax::hir::Hir]> {
        use regex_syntax::hir::Look;
        (self.first_ascii
            && self
                .hir
                .properties()
                .look_set_prefix()
                .contains(Look::Start))
        .then(|| self.patterns())
    }

    /// The form to run on `hay`; `None` if the form it needs was refused
    /// (only a size limit can: its text parsed at load).
    fn engine(&self, hay: &str) -> Option<&regex_automata::meta::Regex> {
        if !self.first_ascii || hay.is_ascii() {
            return self.first().finder(self);
        }
        self.unicode
            .get_or_init(|| {
                regex_automata::meta::Regex::builder()
                    .configure(Self::config())
                    .build(&self.text)
                    .inspect_err(|e| {
                        tracing::warn!(
                            "fail2ban regex {:?}: not run on non-ASCII lines: {e}",
                            self.text
                        );
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Whether it matches anywhere in `hay`.
    pub fn is_match(&self, hay: &str) -> bool {
        self.engine(hay).is_some_and(|r| r.is_match(hay))
    }

    /// The leftmost-first match's span.
    pub fn find(&self, hay: &str) -> Option<(usize, usize)> {
        self.find_at(hay, 0)
    }

    /// The same, for a match starting at `from` or later (the text before it
    /// still counts for `^` and `\b`).
    pub fn find_at(&self, hay: &str, from: usize) -> Option<(usize, usize)> {
        let input = regex_automata::Input::new(hay).range(from..);
        self.engine(hay)?.find(input).map(|m| (m.start(), m.end()))
    }

    /// The leftmost-first match starting exactly at `from`.
    pub fn find_anchored(&self, hay: &str, from: usize) -> Option<(usize, usize)> {
        let input = regex_automata::Input::new(hay)
            .range(from..)
            .anchored(regex_automata::Anchored::Yes);
        self.engine(hay)?.find(input).map(|m| (m.start(), m.end()))
    }

    /// The group names, by index.
    pub fn capture_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.names.iter().map(Option::as_deref)
    }

    /// Whether it runs as several patterns, one per branch.
    #[cfg(test)]
    pub(crate) fn is_split(&self) -> bool {
        self.patterns().len() > 1
    }

    /// The leftmost-first match's group spans, by group index. One search:
    /// a DFA finds the match, the capture engine runs over its span only.
    pub fn captures(&self, hay: &str) -> Option<Spans> {
        self.captures_at(hay, 0)
    }

    /// The same, for a match starting at `from` or later.
    pub fn captures_at(&self, hay: &str, from: usize) -> Option<Spans> {
        self.with_slots(hay, from, |slots| {
            slots
                .chunks_exact(2)
                .enumerate()
                .map(|(i, s)| (i, pair(s)))
                .collect()
        })
    }

    /// Runs the capture search and hands its slots (two per group) to `f`,
    /// from the stack where they fit: the per-line path allocates nothing.
    fn with_slots<R>(
        &self,
        hay: &str,
        from: usize,
        f: impl FnOnce(&[Option<NonMaxUsize>]) -> R,
    ) -> Option<R> {
        self.with_found_slots(hay, from, None, f)
    }

    /// [`with_slots`](Self::with_slots), where the caller's DFA may have
    /// found the match on the first form already: `found` is its pattern
    /// (among [`ascii_anchored_patterns`](Self::ascii_anchored_patterns))
    /// and span.
    fn with_found_slots<R>(
        &self,
        hay: &str,
        from: usize,
        found: Option<(usize, usize, usize)>,
        f: impl FnOnce(&[Option<NonMaxUsize>]) -> R,
    ) -> Option<R> {
        if !self.first_ascii || hay.is_ascii() {
            return self.first_slots(hay, from, found, f);
        }
        // The Unicode form behind an ASCII first form: one pattern.
        let re = self.engine(hay)?;
        with_slot_buf(re.group_info().slot_len(), |slots| {
            let input = regex_automata::Input::new(hay).range(from..);
            re.search_slots(&input, slots)?;
            Some(f(slots))
        })
    }

    /// [`with_slots`](Self::with_slots) on the first form: the DFA finds
    /// the match and its pattern, that pattern's own capture engine its
    /// groups over the match's span (a one-pass pattern anchored at the
    /// start runs alone). A split pattern's branch has the whole pattern's
    /// group indices, so its slots are the whole's.
    fn first_slots<R>(
        &self,
        hay: &str,
        from: usize,
        found: Option<(usize, usize, usize)>,
        f: impl FnOnce(&[Option<NonMaxUsize>]) -> R,
    ) -> Option<R> {
        let first = self.first();
        with_slot_buf(self.names.len() * 2, |slots| {
            if first.captors.len() == 1 {
                let captor = first.captor(0, self)?;
                if captor.is_direct() {
                    return captor.direct(hay, from, slots).then(|| f(slots));
                }
            }
            let (pid, start, end) = match found {
                Some(m) => m,
                None => {
                    let input = regex_automata::Input::new(hay).range(from..);
                    let m = first.finder(self)?.find(input)?;
                    (m.pattern().as_usize(), m.start(), m.end())
                }
            };
            let captor = first.captor(pid, self)?;
            captor.resolve(hay, start, end, slots).then(|| f(slots))
        })
    }
}

impl First {
    /// The search of `re`'s patterns, built at its first use; `None` where
    /// it was refused (a size limit), which a warning says.
    fn finder(&self, re: &FastRe) -> Option<&regex_automata::meta::Regex> {
        self.finder
            .get_or_init(|| {
                let mut builder = regex_automata::meta::Regex::builder();
                builder.configure(
                    FastRe::config()
                        .utf8_empty(!re.first_ascii)
                        .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit)
                        .onepass(false),
                );
                builder
                    .build_many_from_hir(re.patterns())
                    .inspect_err(|e| {
                        tracing::warn!("fail2ban regex {:?}: not run: {e}", re.text);
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Pattern `pid`'s capture engine, built at its first use.
    fn captor(&self, pid: usize, re: &FastRe) -> Option<&capture::Captor> {
        self.captors[pid]
            .get_or_init(|| {
                capture::Captor::new(&re.patterns()[pid], !re.first_ascii, 64 << 20)
                    .inspect_err(|e| {
                        tracing::warn!("fail2ban regex {:?}: not run: {e}", re.text);
                    })
                    .ok()
            })
            .as_ref()
    }
}

/// Most patterns a regex is split into: each costs its own NFA states.
const MAX_BRANCHES: usize = 16;

/// Largest DFA a split is decided on ([`ends_once`]).
const SPLIT_DFA_LIMIT: usize = 1 << 18;

/// The group names of a parsed pattern, by group index.
fn group_names(hir: &regex_syntax::hir::Hir) -> Box<[Option<Box<str>>]> {
    use regex_syntax::hir::HirKind;
    fn walk(h: &regex_syntax::hir::Hir, out: &mut Vec<Option<Box<str>>>) {
        match h.kind() {
            HirKind::Capture(c) => {
                let i = c.index as usize;
                if out.len() <= i {
                    out.resize(i + 1, None);
                }
                out[i] = c.name.as_deref().map(Box::from);
                walk(&c.sub, out);
            }
            HirKind::Repetition(r) => walk(&r.sub, out),
            HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    let mut out = vec![None];
    walk(hir, &mut out);
    out.into_boxed_slice()
}

/// `hir` as the patterns of a leftmost-first multi-pattern search, one per
/// branch of the alternation that ends it (`X(?:A|B)` as `XA`, `XB`,
/// recursively into each branch), so that the capture engine, which runs on
/// the pattern the DFA found only, explores one branch instead of all of
/// them. `None` where it would not be exact or would not split.
///
/// `X(?:A|B)` tries A, then B, after each parse of X in turn; `XA`, `XB`
/// try every parse of X with A first. Where X can end at one place only
/// (from any start), each of its parses is followed by the same choice
/// between A and B, so the first parse that continues is X's first parse in
/// both, with the same branch and the same groups.
fn branches(hir: &regex_syntax::hir::Hir) -> Option<Vec<regex_syntax::hir::Hir>> {
    let mut out = Vec::new();
    split_branches(Vec::new(), hir, &mut out)?;
    (out.len() > 1).then_some(out)
}

/// Adds to `out` the patterns `prefix` followed by `node` splits into.
fn split_branches(
    prefix: Vec<regex_syntax::hir::Hir>,
    node: &regex_syntax::hir::Hir,
    out: &mut Vec<regex_syntax::hir::Hir>,
) -> Option<()> {
    use regex_syntax::hir::{Hir, HirKind};
    let whole = |prefix: Vec<Hir>| {
        let mut all = prefix;
        all.push(node.clone());
        Hir::concat(all)
    };
    let (head, alts) = match node.kind() {
        HirKind::Alternation(alts) => (&[][..], alts),
        HirKind::Concat(items) => match items.split_last() {
            Some((last, head)) => match last.kind() {
                HirKind::Alternation(alts) => (head, alts),
                _ => {
                    out.push(whole(prefix));
                    return (out.len() <= MAX_BRANCHES).then_some(());
                }
            },
            None => {
                out.push(whole(prefix));
                return (out.len() <= MAX_BRANCHES).then_some(());
            }
        },
        _ => {
            out.push(whole(prefix));
            return (out.len() <= MAX_BRANCHES).then_some(());
        }
    };
    // Only branches with groups of their own are worth a pattern each: the
    // capture engine settles others cheaply (`(?:\s|$)`), and the check
    // below builds a DFA of everything before them.
    let grouped = alts
        .iter()
        .filter(|a| a.properties().explicit_captures_len() > 0)
        .count();
    let mut before = prefix.clone();
    before.extend(head.iter().cloned());
    if grouped < 2 || !ends_once(&Hir::concat(before.clone()), SPLIT_DFA_LIMIT) {
        out.push(whole(prefix));
        return (out.len() <= MAX_BRANCHES).then_some(());
    }
    for alt in alts {
        split_branches(before.clone(), alt, out)?;
    }
    Some(())
}

/// Whether every haystack has at most one position where a match of `hir`
/// from a given start ends: no match, from any start state, is followed by
/// another, longer one. Decided on the pattern's DFA (a match state there
/// says that the text before its last byte matched); `false` when the DFA
/// is over `limit` bytes.
fn ends_once(hir: &regex_syntax::hir::Hir, limit: usize) -> bool {
    use regex_automata::dfa::{Automaton, StartKind, dense};
    use regex_automata::nfa::thompson;
    use regex_automata::util::start;
    use regex_automata::{Anchored, MatchKind};
    let Ok(nfa) = thompson::Compiler::new()
        .configure(
            thompson::Config::new()
                .utf8(false)
                .which_captures(thompson::WhichCaptures::None),
        )
        .build_from_hir(hir)
    else {
        return false;
    };
    let Ok(dfa) = dense::Builder::new()
        .configure(
            dense::DFA::config()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .dfa_size_limit(Some(limit))
                .determinize_size_limit(Some(limit)),
        )
        .build_from_nfa(&nfa)
    else {
        return false;
    };
    let mut seen = StateSet::new(&dfa);
    let mut todo = Vec::new();
    for behind in std::iter::once(None).chain((0..=255u8).map(Some)) {
        let config = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(behind);
        match dfa.start_state(&config) {
            Ok(s) if seen.insert(s) => todo.push(s),
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    // One byte of each class the DFA tells apart: the others move alike.
    let bytes: Vec<u8> = dfa
        .byte_classes()
        .representatives(0..=255)
        .filter_map(|u| u.as_u8())
        .collect();
    // Every state reachable from a start; then from each match state (a
    // match just ended), whether another match can end later.
    let mut matched = Vec::new();
    while let Some(s) = todo.pop() {
        if dfa.is_quit_state(s) {
            return false;
        }
        if dfa.is_match_state(s) {
            matched.push(s);
        }
        for &b in &bytes {
            let n = dfa.next_state(s, b);
            if !dfa.is_dead_state(n) && seen.insert(n) {
                todo.push(n);
            }
        }
    }
    let mut after = StateSet::new(&dfa);
    let mut todo = matched;
    todo.iter().for_each(|&s| {
        after.insert(s);
    });
    while let Some(s) = todo.pop() {
        if dfa.is_match_state(dfa.next_eoi_state(s)) {
            return false;
        }
        for &b in &bytes {
            let n = dfa.next_state(s, b);
            if dfa.is_match_state(n) || dfa.is_quit_state(n) {
                return false;
            }
            if !dfa.is_dead_state(n) && after.insert(n) {
                todo.push(n);
            }
        }
    }
    true
}

/// A set of a dense DFA's states, by their index (an id is its state's
/// index times the DFA's stride): hashing each state reached cost a fifth
/// of [`ends_once`].
struct StateSet {
    stride2: usize,
    has: Vec<bool>,
}

impl StateSet {
    fn new<T: AsRef<[u32]>>(dfa: &regex_automata::dfa::dense::DFA<T>) -> StateSet {
        StateSet {
            stride2: dfa.stride2(),
            has: Vec::new(),
        }
    }

    /// Adds `id`: whether it was not in yet.
    fn insert(&mut self, id: regex_automata::util::primitives::StateID) -> bool {
        let i = id.as_usize() >> self.stride2;
        if i >= self.has.len() {
            self.has.resize(i + 1, false);
        }
        !std::mem::replace(&mut self.has[i], true)
    }
}

/// A group's span from its two slots.
fn pair(s: &[Option<NonMaxUsize>]) -> Option<(usize, usize)> {
    match (s[0], s[1]) {
        (Some(a), Some(b)) => Some((a.get(), b.get())),
        _ => None,
    }
}

/// One group's span (`None`: the group took no part).
pub(crate) type Span = Option<(usize, usize)>;

/// Group spans by group index, inline up to [`INLINE_SPANS`] groups (every
/// stock filter's regexes), so a match allocates nothing. Inline spans are
/// kept as two `u32`s (haystacks shorter than 4 GiB): a match's groups are
/// moved a few times on their way to the filter, and at 24 bytes a span
/// those copies cost about a hundred instructions a line.
#[derive(Debug, Clone)]
pub(crate) enum SpanBuf {
    Inline(u8, [[u32; 2]; INLINE_SPANS]),
    Heap(Vec<Span>),
}

/// Groups a [`SpanBuf`] keeps without allocating.
const INLINE_SPANS: usize = 24;

/// An inline span of a group that took no part (no span starts there: the
/// haystack is shorter).
const UNSET: [u32; 2] = [u32::MAX, u32::MAX];

impl SpanBuf {
    /// `n` groups of a match in a haystack `hay_len` long, none taking part
    /// yet.
    fn unset(n: usize, hay_len: usize) -> SpanBuf {
        match u8::try_from(n) {
            Ok(len) if n <= INLINE_SPANS && u32::try_from(hay_len).is_ok_and(|l| l < u32::MAX) => {
                SpanBuf::Inline(len, [UNSET; INLINE_SPANS])
            }
            _ => SpanBuf::Heap(vec![None; n]),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            SpanBuf::Inline(len, _) => usize::from(*len),
            SpanBuf::Heap(v) => v.len(),
        }
    }

    /// The spans in group order: one walk, where a `get` per group
    /// matched on the variant each time (and was not inlined).
    fn iter(&self) -> impl Iterator<Item = Span> + '_ {
        let (inline, heap): (&[[u32; 2]], &[Span]) = match self {
            SpanBuf::Inline(len, a) => (&a[..usize::from(*len)], &[]),
            SpanBuf::Heap(v) => (&[], v),
        };
        inline
            .iter()
            .map(|&[s, e]| (s != u32::MAX).then_some((s as usize, e as usize)))
            .chain(heap.iter().copied())
    }

    /// Group `i`'s span; `None` past the last group.
    #[inline]
    fn get(&self, i: usize) -> Option<Span> {
        match self {
            SpanBuf::Inline(len, a) => {
                let [s, e] = *a[..usize::from(*len)].get(i)?;
                Some((s != u32::MAX).then_some((s as usize, e as usize)))
            }
            SpanBuf::Heap(v) => v.get(i).copied(),
        }
    }

    /// Sets the spans of the groups in `slots` (a start and end slot per
    /// group), group `i`'s at `remap[i]` where there is a remap; groups
    /// that took no part are left as they were. Without a remap the inline
    /// spans are written in one walk: a [`set`](Self::set) per group
    /// matched on the variant and checked its bounds each time, on every
    /// match of a filter.
    fn fill(&mut self, slots: &[Option<NonMaxUsize>], remap: Option<&[usize]>) {
        if let (SpanBuf::Inline(len, a), None) = (&mut *self, remap) {
            for (out, s) in a[..usize::from(*len)].iter_mut().zip(slots.chunks_exact(2)) {
                if let (Some(start), Some(end)) = (s[0], s[1]) {
                    // In bounds of a haystack shorter than `u32::MAX`.
                    *out = [start.get() as u32, end.get() as u32];
                }
            }
            return;
        }
        for (i, s) in slots.chunks_exact(2).enumerate() {
            let Some(span) = pair(s) else { continue };
            // Only one copy of a group takes part in a match.
            self.set(remap.map_or(i, |m| m[i]), Some(span));
        }
    }

    /// Sets group `i`'s span; nothing past the last group.
    #[inline]
    fn set(&mut self, i: usize, span: Span) {
        match self {
            SpanBuf::Inline(len, a) => {
                if let Some(slot) = a[..usize::from(*len)].get_mut(i) {
                    // In bounds of a haystack shorter than `u32::MAX`.
                    *slot = span.map_or(UNSET, |(s, e)| [s as u32, e as u32]);
                }
            }
            SpanBuf::Heap(v) => {
                if let Some(slot) = v.get_mut(i) {
                    *slot = span;
                }
            }
        }
    }
}

/// The group names the filter reads on every match, found by index instead
/// of by comparing names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Ip4,
    Ip6,
    Dns,
    Fid,
    Content,
    Nofail,
    Mlfgained,
    Mlfforget,
    Mlfid,
    User,
}

/// [`Known`]'s group names, in its order: fail2ban's own machinery, then
/// `user`.
const KNOWN_NAMES: [&str; 10] = [
    "ip4",
    "ip6",
    "dns",
    "fid",
    "content",
    "nofail",
    "mlfgained",
    "mlfforget",
    "mlfid",
    "user",
];

/// The groups that are fail2ban's own machinery, not captures worth carrying.
pub(crate) const MACHINERY: &[&str] = KNOWN_NAMES.split_at(KNOWN_NAMES.len() - 1).0;

/// Per [`Known`] name, its group index in one pattern (the first group of
/// that name, as a lookup by name finds).
type KnownIndex = [Option<u16>; KNOWN_NAMES.len()];

fn known_index(names: &[Option<Box<str>>]) -> KnownIndex {
    let mut out = [None; KNOWN_NAMES.len()];
    for (k, want) in KNOWN_NAMES.iter().enumerate() {
        out[k] = names
            .iter()
            .position(|n| n.as_deref() == Some(*want))
            .and_then(|i| u16::try_from(i).ok());
    }
    out
}

/// A match's groups, by name.
pub struct Groups<'h> {
    hay: &'h str,
    spans: SpanBuf,
    names: &'h [Option<Box<str>>],
    known: &'h KnownIndex,
}

impl<'h> Groups<'h> {
    /// The text of group `name`, if it took part in the match.
    pub fn name(&self, name: &str) -> Option<&'h str> {
        let idx = self.names.iter().position(|n| n.as_deref() == Some(name))?;
        self.at(idx)
    }

    /// The text of one of the groups the filter reads on every match.
    pub(crate) fn get(&self, k: Known) -> Option<&'h str> {
        self.at(usize::from(self.known[k as usize]?))
    }

    /// The text of group `idx`, if it took part in the match.
    pub(crate) fn at(&self, idx: usize) -> Option<&'h str> {
        let (a, b) = self.spans.get(idx)??;
        Some(&self.hay[a..b])
    }

    /// Whether any of the [`Known`] groups `ks` took part.
    pub(crate) fn any(&self, ks: &[Known]) -> bool {
        ks.iter().any(|&k| self.get(k).is_some())
    }

    /// Every named group that took part, with its text.
    pub fn named(&self) -> impl Iterator<Item = (&'h str, &'h str)> + '_ {
        self.spans
            .iter()
            .zip(self.names.iter())
            .filter_map(|(span, name)| {
                let (a, b) = span?;
                Some((name.as_deref()?, &self.hay[a..b]))
            })
    }

    /// Group spans by index.
    #[cfg(test)]
    pub(crate) fn spans(&self) -> Vec<Span> {
        (0..self.spans.len())
            .map(|i| self.spans.get(i).flatten())
            .collect()
    }
}

/// A compiled regex and its group names.
#[derive(Debug)]
pub struct F2bRegex {
    /// The engine that runs it.
    pub engine: Compiled,
    /// The group names of the pattern as written, by group index.
    names: Vec<Option<Box<str>>>,
    /// Per group of the running pattern, the written pattern's group, when an
    /// exact rewrite copied groups (only one copy takes part in a match).
    remap: Option<Vec<usize>>,
    /// A regular superset of a backtracking pattern: lines it refuses cannot
    /// match, and the backtracking engine does not run on them.
    prefilter: Option<FastRe>,
    /// Text every match starts the haystack with (`^` and literals), checked
    /// before any engine runs.
    prefix: Option<String>,
    /// Per byte, whether a match may start the haystack with it, when known
    /// (an anchored pattern with a finite literal prefix set).
    first_bytes: Option<[bool; 256]>,
    /// Where the names the filter reads are.
    known: KnownIndex,
}

/// The literal text right after a leading `^` that every match must start with,
/// when the pattern has no top-level `|`.
fn anchored_prefix(re: &str) -> Option<String> {
    let body = re.strip_prefix('^')?;
    if has_top_level_bar(body) {
        return None;
    }
    let mut out = String::new();
    for (i, c) in body.char_indices() {
        if c.is_alphanumeric() || c == ' ' || c == ':' || c == '-' || c == ',' || c == '=' {
            // A quantifier after it makes this character optional.
            if body[i + c.len_utf8()..].starts_with(['*', '?', '{']) {
                break;
            }
            out.push(c);
        } else {
            break;
        }
    }
    (!out.is_empty()).then_some(out)
}

impl F2bRegex {
    /// Compiles Python-syntax regex text (tags already resolved).
    pub fn new(python: &str) -> Result<F2bRegex, RegexError> {
        let text = to_rust_syntax(python);
        let mut remap = None;
        let mut prefilter = None;
        let (engine, names) = if needs_backtracking(python) {
            // An exact regular equivalent where the construct has one (the
            // backtracking engine is then never compiled), else the
            // backtracking engine behind a regular superset.
            match rewrite::exact(&text)
                .and_then(|r| FastRe::new_split(&r.text).ok().map(|fast| (fast, r)))
            {
                Some((fast, r)) => {
                    if r.groups.iter().enumerate().any(|(i, &g)| i != g) {
                        remap = Some(r.groups);
                    }
                    (Compiled::Fast(fast), r.names)
                }
                None => {
                    let slow = fancy(&text)?;
                    let names = slow.capture_names().map(|n| n.map(Box::from)).collect();
                    prefilter = rewrite::superset(&text).and_then(|t| FastRe::new(&t).ok());
                    (Compiled::Fancy(slow), names)
                }
            }
        } else {
            let engine = match FastRe::new_split(&text) {
                Ok(r) => Compiled::Fast(r),
                Err(fast) => Compiled::Fancy(fancy(&text).map_err(|slow| RegexError {
                    message: format!("{fast}; backtracking engine: {}", slow.message),
                })?),
            };
            let names = match &engine {
                Compiled::Fast(r) => r.capture_names().map(|n| n.map(Box::from)).collect(),
                Compiled::Fancy(r) => r.capture_names().map(|n| n.map(Box::from)).collect(),
            };
            (engine, names)
        };
        let prefix = if python.contains("(?i") || python.contains("(?x") {
            None
        } else {
            anchored_prefix(&text)
        };
        let by_prefix = || {
            prefix.as_ref().map(|p| {
                let mut b = [false; 256];
                b[usize::from(p.as_bytes()[0])] = true;
                b
            })
        };
        let first_bytes = match (&engine, &prefilter) {
            (Compiled::Fast(r), _) => r.first_bytes().copied(),
            (Compiled::Fancy(_), Some(p)) => p.first_bytes().copied().or_else(by_prefix),
            (Compiled::Fancy(_), None) => by_prefix(),
        };
        Ok(F2bRegex {
            known: known_index(&names),
            engine,
            names,
            remap,
            prefilter,
            prefix,
            first_bytes,
        })
    }

    /// Per byte, whether a haystack it matches may start with it, if known:
    /// a caller may skip it on lines that start with another byte.
    pub(crate) fn first_bytes(&self) -> Option<&[bool; 256]> {
        self.first_bytes.as_ref()
    }

    /// Whether the backtracking engine runs it.
    pub fn is_fancy(&self) -> bool {
        matches!(self.engine, Compiled::Fancy(_))
    }

    /// The group names of the pattern as written, by group index: those of
    /// the [`Groups`] of its matches.
    pub(crate) fn group_names(&self) -> &[Option<Box<str>>] {
        &self.names
    }

    /// Whether it has a group of that name.
    pub fn has_group(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.as_deref() == Some(name))
    }

    /// Searches anywhere in `hay` (Python's `re.search`).
    pub fn is_match(&self, hay: &str) -> bool {
        if self
            .prefix
            .as_ref()
            .is_some_and(|p| !hay.starts_with(p.as_str()))
        {
            return false;
        }
        match &self.engine {
            Compiled::Fast(r) => r.is_match(hay),
            Compiled::Fancy(r) => {
                self.prefilter.as_ref().is_none_or(|p| p.is_match(hay))
                    && r.is_match(hay).unwrap_or(false)
            }
        }
    }

    /// The first match's groups. A backtracking run that hits its step limit
    /// counts as no match.
    pub fn captures<'h>(&'h self, hay: &'h str) -> Option<Groups<'h>> {
        self.captures_with(hay, None)
    }

    /// The patterns an [`AsciiDfa`] of the caller's may search for this
    /// regex, when it runs on the fast engine and every match starts the
    /// haystack ([`FastRe::ascii_anchored_patterns`]).
    pub(crate) fn ascii_anchored_patterns(&self) -> Option<&[regex_syntax::hir::Hir]> {
        match &self.engine {
            Compiled::Fast(r) => r.ascii_anchored_patterns(),
            Compiled::Fancy(_) => None,
        }
    }

    /// [`captures`](Self::captures), of the match such a DFA found where
    /// `found` is one: its pattern `pid` (among this regex's) ending at
    /// `end`, from the start. One call for both keeps the groups where the
    /// caller wants them: a second call site cost a copy of them.
    pub(crate) fn captures_found<'h>(
        &'h self,
        hay: &'h str,
        found: Option<(usize, usize)>,
    ) -> Option<Groups<'h>> {
        self.captures_with(hay, found.map(|(pid, end)| (pid, 0, end)))
    }

    fn captures_with<'h>(
        &'h self,
        hay: &'h str,
        found: Option<(usize, usize, usize)>,
    ) -> Option<Groups<'h>> {
        if self
            .prefix
            .as_ref()
            .is_some_and(|p| !hay.starts_with(p.as_str()))
        {
            return None;
        }
        let n = self.names.len();
        let spans = match &self.engine {
            Compiled::Fast(r) => r.with_found_slots(hay, 0, found, |slots| {
                let mut out = SpanBuf::unset(n, hay.len());
                out.fill(slots, self.remap.as_deref());
                out
            })?,
            Compiled::Fancy(r) => {
                if self.prefilter.as_ref().is_some_and(|p| !p.is_match(hay)) {
                    return None;
                }
                let c = r.captures(hay).ok()??;
                let mut out = SpanBuf::unset(n, hay.len());
                for i in 0..n.min(c.len()) {
                    out.set(i, c.get(i).map(|m| (m.start(), m.end())));
                }
                out
            }
        };
        Some(Groups {
            hay,
            spans,
            names: &self.names,
            known: &self.known,
        })
    }
}

/// The first bytes of the literals one of which every match of an anchored
/// (`^`, not multi-line) pattern starts the haystack with; `None` when the
/// pattern is not anchored or its prefixes are not a finite set (then any
/// line may match).
fn first_bytes(hir: &regex_syntax::hir::Hir) -> Option<[bool; 256]> {
    use regex_syntax::hir::Look;
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    if !hir.properties().look_set_prefix().contains(Look::Start) {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(hir);
    let lits = seq.literals()?;
    let mut out = [false; 256];
    for l in lits {
        // An empty literal leads nothing: every line may match.
        out[usize::from(*l.as_bytes().first()?)] = true;
    }
    (!lits.is_empty()).then_some(out)
}

/// The first bytes of Y's non-empty matches, when a finite literal set
/// covers them: every empty literal extracted must be exact (Y's empty match
/// itself), never a stand-in for an unknown rest.
fn nonempty_first_bytes(y: &str) -> Option<[bool; 256]> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::parse(y).ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let mut out = [false; 256];
    for l in seq.literals()? {
        match l.as_bytes().first() {
            Some(&b) => out[usize::from(b)] = true,
            None if l.is_exact() => {}
            None => return None,
        }
    }
    Some(out)
}

/// Whether a flag group of `rust` (`(?-u)`, `(?i-u:`...) names the `u` flag.
fn turns_unicode_off(rust: &str) -> bool {
    rust.match_indices("(?").any(|(i, _)| {
        rust[i + 2..]
            .bytes()
            .take_while(|b| b.is_ascii_alphabetic() || *b == b'-')
            .any(|b| b == b'u')
    })
}

/// A prefregex of fail2ban's usual shape `^HEAD<F-CONTENT>.+</F-CONTENT>$`:
/// where HEAD's own leftmost-first match ends before the line does, the full
/// pattern's `content` group is the rest of the line (the `.+$` after it takes
/// any non-empty rest without a newline, and the first HEAD parse that leaves
/// one is the one the full pattern picks). So a DFA run of HEAD finds the
/// content without the capture engine.
#[derive(Debug)]
pub(crate) struct ContentSplit {
    head: Head,
    /// HEAD's group names, then `content`: the full pattern's names.
    names: Vec<Option<Box<str>>>,
    known: KnownIndex,
}

/// Where a [`ContentSplit`] puts a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// The prefregex does not match.
    Miss,
    /// It matches and its content starts at `at`; `group` is HEAD's group
    /// where the DFA runs of HEAD's parts found it.
    Content {
        /// Where the content starts.
        at: usize,
        /// HEAD's group, when run as parts.
        group: Option<(usize, usize)>,
    },
    /// Only the full capture run can tell.
    Unknown,
}

/// How HEAD is run.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per filter, read on every line: inline, not behind a pointer"
)]
enum Head {
    /// As one pattern, its groups by the capture engine.
    Whole {
        re: FastRe,
        /// Its DFA, where every match starts the line (`^`, not
        /// multi-line): the split's search is then anchored.
        dfa: Option<scan::LazyDfa>,
    },
    /// HEAD is `^(?P<g>X)Y`, X and Y without groups and Y able to match
    /// empty (sshd's `^(?P<mlfid>prefix)(?:error: )?`): any parse of X is
    /// followed by a match of Y, so HEAD's leftmost-first parse is X's
    /// leftmost-first parse followed by Y's. A DFA run of `^X` then gives
    /// the group, and an anchored one of Y after it the content's start:
    /// no capture engine at all.
    Parts {
        /// `^(?:X)`.
        x: FastRe,
        x_dfa: scan::LazyDfa,
        /// `(?:Y)`, run anchored where X ends.
        y: FastRe,
        y_dfa: scan::LazyDfa,
        /// The bytes a non-empty match of Y may start with, if known: Y's
        /// match is empty where X ends before another byte.
        y_first: Option<Box<[bool; 256]>>,
    },
}

impl ContentSplit {
    /// The split for a prefregex (Python syntax, tags resolved) compiled as
    /// `full`, if it has the shape and its HEAD runs on the fast engine.
    pub fn new(python: &str, full: &F2bRegex) -> Option<ContentSplit> {
        const TAIL: &str = "(?P<content>.+)$";
        let rust = to_rust_syntax(python);
        let head = rust.strip_suffix(TAIL)?;
        if !head.starts_with('^')
            || needs_backtracking(head)
            || has_top_level_bar(head)
            || full.is_fancy()
            || full.remap.is_some()
        {
            return None;
        }
        // The content group is the full pattern's last, at the top level.
        let names = &full.names;
        if names.last().map(Option::as_deref) != Some(Some("content")) {
            return None;
        }
        let head_re = match head_parts(head) {
            Some((name, x, y)) => {
                if names.len() != 3 || names[1].as_deref() != Some(name) {
                    return None;
                }
                Head::Parts {
                    x: FastRe::new(&format!("^(?:{x})")).ok()?,
                    x_dfa: scan::LazyDfa::default(),
                    y: FastRe::new(&format!("(?:{y})")).ok()?,
                    y_dfa: scan::LazyDfa::default(),
                    y_first: nonempty_first_bytes(y).map(Box::new),
                }
            }
            None => {
                let whole = FastRe::new(head).ok()?;
                let head_names: Vec<_> = whole.capture_names().collect();
                let full_names: Vec<_> = names.iter().map(Option::as_deref).collect();
                if full_names.len() != head_names.len() + 1
                    || full_names[..head_names.len()] != head_names[..]
                {
                    return None;
                }
                let anchored = whole
                    .hir
                    .properties()
                    .look_set_prefix()
                    .contains(regex_syntax::hir::Look::Start);
                Head::Whole {
                    re: whole,
                    dfa: anchored.then(scan::LazyDfa::default),
                }
            }
        };
        Some(ContentSplit {
            head: head_re,
            names: names.clone(),
            known: full.known,
        })
    }

    /// The full pattern's groups on a line [`split`](Self::split) put in
    /// [`Split::Content`]: HEAD's groups (by its capture run over HEAD's span
    /// only, or by the DFA runs of its parts) and the rest of the line as
    /// `content`.
    #[cfg(test)]
    pub fn captures<'h>(&'h self, hay: &'h str) -> Option<Groups<'h>> {
        self.captures_split(hay, None)
    }

    /// The same, with HEAD's group as [`split`](Self::split) found it and
    /// the content's start: `(start, xend, at)`.
    pub fn captures_split<'h>(
        &'h self,
        hay: &'h str,
        group: Option<(usize, usize, usize)>,
    ) -> Option<Groups<'h>> {
        let n = self.names.len();
        let mut spans = SpanBuf::unset(n, hay.len());
        match &self.head {
            Head::Whole { re: head, .. } => {
                head.with_slots(hay, 0, |slots| {
                    for (i, s) in slots.chunks_exact(2).enumerate().take(n) {
                        spans.set(i, pair(s));
                    }
                })?;
            }
            Head::Parts { .. } => {
                let (start, xend, end) = match group {
                    Some(found) => found,
                    None => self.parts(hay, None)?,
                };
                spans.set(0, Some((start, end)));
                spans.set(1, Some((start, xend)));
            }
        }
        let end = spans.get(0)??.1;
        spans.set(n - 1, Some((end, hay.len())));
        Some(Groups {
            hay,
            spans,
            names: &self.names,
            known: &self.known,
        })
    }

    /// Whether HEAD runs as its parts.
    #[cfg(test)]
    pub(crate) fn is_parts(&self) -> bool {
        matches!(self.head, Head::Parts { .. })
    }

    /// Where `hay`'s content starts, by a DFA run of HEAD (or of its parts).
    #[cfg(test)]
    pub fn split(&self, hay: &str) -> Split {
        self.split_with(hay, None, false)
    }

    /// The same, X's search resumed from `memo` (the source's last line):
    /// its answer is the plain search's (see [`scan::Resume`]). Y's search
    /// and the content's end (`.+$` reads to the line's end) are found on
    /// this line alone, as the plain split finds them; a HEAD run whole is
    /// not resumed. `unbroken` says the caller already knows `hay` holds no
    /// newline, which spares the search for one after the content's start.
    pub fn split_resumed(&self, hay: &str, memo: &mut scan::Resume, unbroken: bool) -> Split {
        self.split_with(hay, Some(memo), unbroken)
    }

    fn split_with(&self, hay: &str, memo: Option<&mut scan::Resume>, unbroken: bool) -> Split {
        let (end, group) = match &self.head {
            Head::Whole { re, dfa } => {
                let m = match dfa {
                    Some(dfa) => dfa.find_anchored(re, hay, 0),
                    None => re.find(hay),
                };
                (m.map(|(_, e)| e), None)
            }
            Head::Parts { .. } => match self.parts(hay, memo) {
                Some((start, xend, end)) => (Some(end), Some((start, xend))),
                None => (None, None),
            },
        };
        match end {
            None => Split::Miss,
            // `.+$` takes the rest unless a newline stands in it (memchr's
            // vector search: `str::contains` scans a word at a time).
            Some(at)
                if at < hay.len()
                    && (unbroken || memchr::memchr(b'\n', &hay.as_bytes()[at..]).is_none()) =>
            {
                Split::Content { at, group }
            }
            Some(_) => Split::Unknown,
        }
    }

    /// HEAD as parts: X's span and where Y after it ends.
    fn parts(&self, hay: &str, memo: Option<&mut scan::Resume>) -> Option<(usize, usize, usize)> {
        let Head::Parts { x, x_dfa, .. } = &self.head else {
            return None;
        };
        // `^(?:X)`: every match starts the line.
        let (start, xend) = match memo {
            Some(memo) => x_dfa.find_at_start(x, hay, memo)?,
            None => x_dfa.find_anchored(x, hay, 0)?,
        };
        Some((start, xend, self.parts_end(hay, xend)?))
    }

    /// Where Y, run from X's end, ends.
    fn parts_end(&self, hay: &str, xend: usize) -> Option<usize> {
        let Head::Parts {
            y, y_dfa, y_first, ..
        } = &self.head
        else {
            return None;
        };
        let next = hay.as_bytes().get(xend);
        if let Some(first) = y_first
            && next.is_none_or(|&b| !first[usize::from(b)])
        {
            // Y can match empty and nothing else here: its match is empty.
            return Some(xend);
        }
        y_dfa.find_anchored(y, hay, xend).map(|(_, e)| e)
    }
}

/// `^(?P<name>X)Y` split into name, X and Y, where X and Y have no groups and
/// Y can match the empty text.
fn head_parts(head: &str) -> Option<(&str, &str, &str)> {
    let rest = head.strip_prefix("^(?P<")?;
    let name_len = rest.find('>')?;
    let name = &rest[..name_len];
    let body_at = 5 + name_len + 1;
    let close = group_close(head, 1)?;
    let (x, y) = (&head[body_at..close], &head[close + 1..]);
    let props = |t: &str| regex_syntax::parse(t).ok().map(|h| h.properties().clone());
    let (px, py) = (props(x)?, props(y)?);
    (px.explicit_captures_len() == 0
        && py.explicit_captures_len() == 0
        && py.minimum_len() == Some(0))
    .then_some((name, x, y))
}

/// Where the group opened by the `(` at `open` closes (Rust syntax, classes
/// and escapes skipped).
fn group_close(re: &str, open: usize) -> Option<usize> {
    let b = re.as_bytes();
    let (mut depth, mut in_class, mut i) = (0usize, false, open);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                i = class_opening(b, i);
            }
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `re` has a `|` outside every group and class.
fn has_top_level_bar(re: &str) -> bool {
    let b = re.as_bytes();
    let (mut depth, mut in_class, mut i) = (0i32, false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => depth -= 1,
            b'|' if !in_class && depth == 0 => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn fancy(text: &str) -> Result<fancy_regex::Regex, RegexError> {
    fancy_regex::RegexBuilder::new(text)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
        .map_err(|e| RegexError {
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(re: &str, line: &str) -> Option<String> {
        let r = F2bRegex::new(&resolve_tags(re, true)).unwrap();
        let g = r.captures(line)?;
        g.name("ip4")
            .or(g.name("ip6"))
            .or(g.name("dns"))
            .map(str::to_owned)
    }

    #[test]
    fn host_tag_takes_every_address_form() {
        let re = r"^fail from <HOST>( port \d+)?$";
        assert_eq!(
            host(re, "fail from 192.0.2.7").as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            host(re, "fail from ::ffff:192.0.2.7 port 22").as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            host(re, "fail from 2001:db8::1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            host(re, "fail from [2001:db8::2]").as_deref(),
            Some("2001:db8::2")
        );
        assert_eq!(
            host(re, "fail from example.org").as_deref(),
            Some("example.org")
        );
    }

    #[test]
    fn custom_tags_become_groups() {
        let re = resolve_tags(r"^user <F-USER>\S+</F-USER> id <F-ID/> at <ADDR>", true);
        let r = F2bRegex::new(&re).unwrap();
        assert!(!r.is_fancy());
        let g = r.captures("user bob id 42 at 198.51.100.3").unwrap();
        assert_eq!(g.name("user"), Some("bob"));
        assert_eq!(g.name("fid"), Some("42"));
        assert_eq!(g.name("ip4"), Some("198.51.100.3"));
        assert_eq!(g.name("dns"), None);
        // A closing tag never opened stays literal.
        assert_eq!(resolve_tags("a</F-X>", true), "a</F-X>");
    }

    #[test]
    fn python_only_syntax_goes_to_backtracking() {
        for re in [
            r"^a(?!b)",
            r"(?<=x)y",
            r"(?P<q>['])x(?P=q)",
            // A conditional decided inside a loop (one decided by an
            // earlier choice has an exact regular form: rewrite.rs).
            r"(?:(?P<c>c)|x)+(?(c)d|e)",
            r"a++",
            r"(?>ab|a)c",
            r"(a)\1",
        ] {
            let r = F2bRegex::new(re).unwrap();
            assert!(r.is_fancy(), "{re}");
        }
        let r = F2bRegex::new(r"^(?P<c>c)?(?(c)d|e)$").unwrap();
        assert!(r.is_match("cd") && r.is_match("e") && !r.is_match("ce"));
    }

    #[test]
    fn python_spellings_read_as_python_means_them() {
        let r = F2bRegex::new(r"^\[[^[]+\] \{x\} {y} a{2} end\Z").unwrap();
        assert!(!r.is_fancy());
        assert!(r.is_match("[abc] {x} {y} aa end"));
        assert!(!r.is_match("[abc] {x} {y} aa end\n"));
        let r = F2bRegex::new(r"[]a]+ [^]]").unwrap();
        assert!(r.is_match("]a] b"));
        // `\<` and `\>` are the characters in Python (word boundaries in Rust).
        let r = F2bRegex::new(r"^(?:\<\S+@\S+\> )*relay from x$").unwrap();
        assert!(r.is_match("<user@example.com> relay from x"));
        let r = F2bRegex::new(r"^x(?=y)\<a\>$").unwrap();
        assert!(r.is_fancy() && !r.is_match("xya") && !r.is_match("x<a>"));
        assert!(F2bRegex::new(r"^(?=x)x\<a\>$").unwrap().is_match("x<a>"));
    }

    #[test]
    fn anchored_literal_prefix() {
        assert_eq!(
            anchored_prefix(r"^Failed (?:a|b) x").as_deref(),
            Some("Failed ")
        );
        assert_eq!(anchored_prefix(r"^ab?c").as_deref(), Some("a"));
        assert_eq!(anchored_prefix(r"^a|b"), None);
        assert_eq!(anchored_prefix(r"x^a"), None);
        assert_eq!(anchored_prefix(r"^\[x"), None);
        let r = F2bRegex::new(r"^Failed (?!x)\S+ for").unwrap();
        assert!(r.is_match("Failed y for") && !r.is_match("Other y for"));
    }

    #[test]
    fn ascii_and_unicode_lines_match_alike() {
        // The ASCII form runs on ASCII lines, the Unicode one on the others.
        let re = resolve_tags(r"^(?i)user <F-USER>\w+</F-USER> from <HOST>\s*$", true);
        let r = F2bRegex::new(&re).unwrap();
        let g = r.captures("USER bob from 192.0.2.9 ").unwrap();
        assert_eq!(
            (g.name("user"), g.name("ip4")),
            (Some("bob"), Some("192.0.2.9"))
        );
        let g = r
            .captures("user jos\u{e9} from h\u{f6}st.example.org")
            .unwrap();
        assert_eq!(g.name("user"), Some("jos\u{e9}"));
        assert_eq!(g.name("dns"), Some("h\u{f6}st.example.org"));
        assert!(r.is_match("user \u{e9} from 192.0.2.1"));
        assert!(!r.is_match("user - from 192.0.2.1"));
        // A non-ASCII pattern character folding onto ASCII (the Kelvin sign
        // onto `k`) keeps the Unicode form for every line.
        let r = F2bRegex::new("^(?i)\u{212a}ey=(?P<ip4>\\S+)").unwrap();
        assert_eq!(
            r.captures("key=192.0.2.3").unwrap().name("ip4"),
            Some("192.0.2.3")
        );
        // `.` and `\S` take a whole character, not a byte, on either form.
        let r = F2bRegex::new(r"^a(?P<x>.)b(?P<y>\S)$").unwrap();
        let g = r.captures("a\u{e9}b\u{2603}").unwrap();
        assert_eq!(
            (g.name("x"), g.name("y")),
            (Some("\u{e9}"), Some("\u{2603}"))
        );
    }

    proptest::proptest! {
        /// The first bytes a pattern's matches may start with, taken from its
        /// ASCII form (plus every non-ASCII byte), hold for the Unicode form
        /// on any line too.
        #[test]
        fn first_bytes_hold_for_every_line(
            pattern in proptest::sample::select(vec![
                r"^(?i)key \w+", r"^\s*x", r"^[a-c\d]y", r"^(?:ab|\w)", r"^k(?i:ey)", r"^.z",
                r"^[^a]b", r"^\S+ q",
            ]),
            line in "[ a-cxyzkKqé\u{212a}\u{3000}\t0-9]{0,6}",
        ) {
            let r = F2bRegex::new(pattern).unwrap();
            if let (Some(bytes), Some(first)) = (r.first_bytes(), line.as_bytes().first())
                && r.is_match(&line)
            {
                proptest::prop_assert!(bytes[usize::from(*first)], "{} on {:?}", pattern, line);
            }
        }
    }

    /// Patterns ending in an alternation, split where exact, with texts
    /// made of their pieces.
    const SPLIT_PATTERNS: &[&str] = &[
        r"^Failed (?:(?P<nofail>publickey)|\S+) for (?:(?P<inv>invalid user )(?:(?P<u>\S+) from (?P<h>\S+)(?: port \d+)?: |(?P<v>.*?) from (?P<h2>\S+)$)|(?:(?P<u2>\S+) from (?P<h3>\S+)(?: port \d+)?: |(?P<v2>[^:]+) from (?P<h4>\S+)$))",
        r"^(a|ab)(?:(c)|(bcd))",
        r"^a*(?:(a)|(b))",
        r"(x|xy)z?(?:(y)|yz)",
        r"\bq(?:(\w+)|\w)",
        r"(?m)^(x)(?:(\n)|(y))",
        r"(?:(a)|b|(ab))",
        r"^(?:x(?:(y)|yy)|x(z)|(xz))",
    ];

    /// Each of [`SPLIT_PATTERNS`] run as one and as its branches, built
    /// once for every case.
    static SPLIT_PAIRS: std::sync::LazyLock<Vec<(FastRe, FastRe)>> =
        std::sync::LazyLock::new(|| {
            SPLIT_PATTERNS
                .iter()
                .map(|p| (FastRe::new(p).unwrap(), FastRe::new_split(p).unwrap()))
                .collect()
        });

    proptest::proptest! {
        /// A pattern run as one pattern per branch finds the same match with
        /// the same groups as run as one.
        #[test]
        fn split_patterns_capture_alike(
            which in 0..SPLIT_PATTERNS.len(),
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "Failed ", "publickey", "password", " for ", "invalid user ", "root",
                " from ", "192.0.2.1", " port 22", ": ", "a", "b", "c", "d", "x", "y", "z",
                "q", " ", "\n", ":",
            ]), 0..12),
        ) {
            let line = parts.concat();
            let (whole, split) = &SPLIT_PAIRS[which];
            let pattern = SPLIT_PATTERNS[which];
            proptest::prop_assert_eq!(whole.captures(&line), split.captures(&line), "{}", pattern);
            proptest::prop_assert_eq!(whole.find(&line), split.find(&line));
        }
    }

    /// Patterns cut into segments ([`capture`]): decided text, then the
    /// address on the backtracker.
    const CUT_PAM: &str = r"^<F-NOFAIL>pam_[a-z]+\(sshd:auth\):\s+authentication failure;</F-NOFAIL>(?:\s+(?:(?:logname|e?uid|tty)=\S*)){0,4}\s+ruser=<F-ALT_USER>\S*</F-ALT_USER>\s+rhost=<HOST>(?:\s+user=<F-USER>\S*</F-USER>)?(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$";
    const CUT_DISCONNECT: &str = r"^<F-NOFAIL>Received <F-MLFFORGET>disconnect</F-MLFFORGET></F-NOFAIL> from <HOST>(?: (?:port \d+|on \S+)){0,2}:\s*11:";

    /// Patterns for [`own_capture_engines_match_meta`]: split ones, one-pass
    /// ones (run without a DFA pass where anchored), `<HOST>` patterns, ones
    /// matching empty text, unanchored and multi-line ones.
    #[allow(clippy::type_complexity, reason = "a test table")]
    static CAPTURE_CASES: std::sync::LazyLock<
        Vec<(
            FastRe,
            regex_automata::meta::Regex,
            regex_automata::meta::Regex,
        )>,
    > = std::sync::LazyLock::new(|| {
        let host = [
            r"^Failed \S+ for (?P<user>.*?) from <HOST>( port \d+)?\s*$",
            r"from <HOST>(?: port (?P<port>\d+))?",
            r"^(?P<nofail>Failed (?:(?P<pk>publickey)|\S+)) for (?:(?P<u>\S+) from <HOST>|(?P<v>.*) from (?P<h2>\\S+)$)",
            CUT_PAM,
            CUT_DISCONNECT,
        ];
        let plain = [
            r"^x(?P<a>a+)?(?P<b>b*)$",
            r"(?P<d>\d{2}):(?P<m>\d{2})",
            r"^(?i)f(?P<w>\w*)",
            r"(?P<e>a*)",
            r"(?m)^(?P<l>x+)$",
            r"\b(?P<w>\w+)\b",
            r"^(?P<any>.)(?P<rest>.*)$",
            AROUND,
        ];
        host.iter()
            .map(|p| resolve_tags(p, true))
            .chain(plain.iter().map(|p| (*p).to_owned()))
            .chain(SPLIT_PATTERNS.iter().map(|p| (*p).to_owned()))
            .map(|p| {
                let fast = FastRe::new_split(&p).unwrap();
                let meta = regex_automata::meta::Regex::builder()
                    .configure(FastRe::config().utf8_empty(!fast.first_ascii))
                    .build_from_hir(&fast.hir)
                    .unwrap();
                let unicode = regex_automata::meta::Regex::builder()
                    .configure(FastRe::config())
                    .build(&fast.text)
                    .unwrap();
                (fast, meta, unicode)
            })
            .collect()
    });

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2048))]
        /// Each pattern's own capture engine, run over the span the DFA
        /// found (or alone, one-pass and anchored), finds the groups the
        /// `meta` engine finds on the whole pattern, from any start.
        #[test]
        fn own_capture_engines_match_meta(
            which in 0..64usize,
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "Failed ", "publickey", "password", " for ", "root", " from ", "192.0.2.1",
                "2001:db8::1", "host.example.org", " port 22", ":", "12", "a", "b", "x", "y",
                "f", "F", " ", "\n", "\u{e9}", "pam_unix(sshd:auth): authentication failure;",
                " uid=0", " tty=ssh", " ruser=", " rhost=", " user=", "Received disconnect",
                ":11:", " [preauth]", "[", "]", "1.2", "3", ".",
            ]), 0..10),
            from in 0..3usize,
        ) {
            let (fast, ascii, unicode) = &CAPTURE_CASES[which % CAPTURE_CASES.len()];
            let line = parts.concat();
            // The first form, or the Unicode one on a non-ASCII line.
            let meta = if fast.first_ascii && !line.is_ascii() { unicode } else { ascii };
            proptest::prop_assume!(line.is_char_boundary(from.min(line.len())));
            let from = from.min(line.len());
            let mut caps = meta.create_captures();
            meta.search_captures(&regex_automata::Input::new(&line).range(from..), &mut caps);
            let want = caps.is_match().then(|| {
                (0..fast.names.len())
                    .map(|g| (g, caps.get_group(g).map(|s| (s.start, s.end))))
                    .collect::<Spans>()
            });
            proptest::prop_assert_eq!(fast.captures_at(&line, from), want, "{}", fast.text);
        }
    }

    /// sshd.conf's failregexes whose last segment runs `<HOST>` found from
    /// the match's end ([`capture`]'s `Split`), a suffix without groups on a
    /// DFA, or a middle segment without groups for its end only.
    const CUT_SSHD: &[&str] = &[
        r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(cond_inv)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(cond_user): |(?:(?:(?! from ).)*)$)",
        r"^[iI](?:llegal|nvalid) user <F-USER>.*?</F-USER> from <HOST>(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$",
        r"^maximum authentication attempts exceeded for <F-USER>.*</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$",
        r"^<F-NOFAIL><F-MLFFORGET>(Connection (?:closed|reset)|Disconnected)</F-MLFFORGET></F-NOFAIL> (?:by|from)(?: (?:invalid|authenticating) user <F-USER>\S+|.*?</F-USER>)? <HOST>(?:(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*|\s*)$",
        r"^User <F-USER>\S+|.*?</F-USER> from <HOST> not allowed because not listed in AllowUsers(?: (?:port \d+|on \S+|\[preauth\])){0,3}\s*$",
        CUT_PAM,
        CUT_DISCONNECT,
    ];

    /// Each of [`CUT_SSHD`] (DNS mode or not) as it runs, with the `meta`
    /// engine on the same pattern, each branch already cut.
    #[allow(clippy::type_complexity, reason = "a test table")]
    static SSHD_CASES: std::sync::LazyLock<Vec<(FastRe, regex_automata::meta::Regex)>> =
        std::sync::LazyLock::new(|| cut_cases(CUT_SSHD, SSHD_WARM));

    /// Each of `patterns` (DNS mode or not) as `F2bRegex::new` runs it
    /// (rewritten where it must be), with the `meta` engine on the same tree,
    /// cut by matching each of `warm` often enough. Also the captures' tests'.
    pub(super) fn cut_cases(
        patterns: &[&str],
        warm: &[&str],
    ) -> Vec<(FastRe, regex_automata::meta::Regex)> {
        patterns
            .iter()
            .flat_map(|p| [resolve_tags(p, true), resolve_tags(p, false)])
            .map(|p| {
                let text = to_rust_syntax(&p);
                let text = if needs_backtracking(&p) {
                    rewrite::exact(&text).unwrap().text
                } else {
                    text
                };
                let fast = FastRe::new_split(&text).unwrap();
                let meta = regex_automata::meta::Regex::builder()
                    .configure(FastRe::config().utf8_empty(!fast.first_ascii))
                    .build_from_hir(&fast.hir)
                    .unwrap();
                for line in warm {
                    for _ in 0..=capture::CUT_AFTER {
                        fast.captures(line);
                    }
                }
                (fast, meta)
            })
            .collect()
    }

    /// Lines of each branch of [`CUT_SSHD`], matched often enough to cut it.
    const SSHD_WARM: &[&str] = &[
        "Failed password for root from 192.0.2.1 port 22 ssh2",
        "Failed password for root from 192.0.2.1 port 22 ssh2: RSA x",
        "Failed publickey for invalid user a b from 192.0.2.1 port 22 ssh2",
        "Failed publickey for invalid user ab from 192.0.2.1 port 22 ssh2: x",
        "Invalid user admin from 192.0.2.1 port 22",
        "maximum authentication attempts exceeded for root from 192.0.2.1 port 22 ssh2 [preauth]",
        "Connection closed by invalid user admin 192.0.2.1 port 22 [preauth]",
        "Disconnected from 192.0.2.1 port 22",
        "User a from 192.0.2.1 not allowed because not listed in AllowUsers",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root",
        "Received disconnect from 192.0.2.1 port 22:11: Bye [preauth]",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]
        /// The cut fast paths (`<HOST>` found from the match's end, suffixes
        /// and group-free segments on DFAs) find the groups the `meta`
        /// engine finds on the whole pattern: user names with spaces, colons
        /// and ` from `, a second `from ADDR port N` after the real one,
        /// IPv6, bracketed and mapped addresses, host names.
        #[test]
        fn sshd_fast_paths_match_meta(
            which in 0..SSHD_WARM.len(),
            user in proptest::collection::vec(proptest::sample::select(vec![
                "root", "a b", "x:y", " from ", "from", "192.0.2.1", " ", ":", "admin",
                "invalid user ", "f", "fro",
            ]), 0..4),
            host in proptest::sample::select(vec![
                "192.0.2.1", "203.0.113.201", "2001:db8::1", "[2001:db8::2]",
                "::ffff:192.0.2.7", "host.example.org", "4242", "192.0.2.1234", "a",
                "[192.0.2.9]", "198.51.100.7.example.org",
            ]),
            tail in proptest::collection::vec(proptest::sample::select(vec![
                " port 22", " on eth0", " ssh2", " [preauth]", ": ", " from 198.51.100.3 port 1",
                " from ", ":11:", " ", "  user=root", "x", ": Auth fail", "3: ", " port",
                " on", "\t",
            ]), 0..4),
        ) {
            // The head of a warm line, up to its user or address.
            let warm = SSHD_WARM[which];
            let head_end = ["for invalid user ", "for ", "user ", " from ", "rhost=", " by ", "User "]
                .iter()
                .filter_map(|w| warm.find(w).map(|i| i + w.len()))
                .min()
                .unwrap_or(0);
            let head = &warm[..head_end];
            for with_from in [true, false] {
                let mut line = format!("{head}{}", user.concat());
                if with_from {
                    line.push_str(" from ");
                } else if !user.is_empty() {
                    line.push(' ');
                }
                line.push_str(host);
                line.push_str(&tail.concat());
                for (fast, meta) in SSHD_CASES.iter() {
                    let mut caps = meta.create_captures();
                    meta.search_captures(&regex_automata::Input::new(&line), &mut caps);
                    let want = caps.is_match().then(|| {
                        (0..fast.names.len())
                            .map(|g| (g, caps.get_group(g).map(|s| (s.start, s.end))))
                            .collect::<Spans>()
                    });
                    proptest::prop_assert_eq!(fast.captures(&line), want, "{} on {:?}", fast.text, line);
                }
            }
        }
    }

    #[test]
    fn sshd_branches_take_the_fast_paths() {
        // Per pattern of CUT_SSHD (DNS mode): the most of each fast path
        // among its branches.
        // Segments without groups but ones around all of them run for
        // their end on a DFA, one-pass or not (`Failed `, ` for `).
        let want = [
            (1, 1, 3),
            (1, 1, 1),
            (1, 1, 1),
            // Tried choice by choice (capture.rs): with the user part and
            // `\S+`, with it and `.*?` (a split), without it.
            (1, 3, 3),
            // Likewise: the user name `\S+`, or `.*?` (a split).
            (1, 2, 2),
            // `^` then `<F-NOFAIL>...</F-NOFAIL>`: a group after a head
            // of no length.
            (0, 0, 2),
            (0, 1, 0),
        ];
        for (n, want) in want.into_iter().enumerate() {
            let (fast, _) = &SSHD_CASES[n * 2];
            let got = fast
                .built_captors()
                .map(capture::Captor::fast_paths)
                .fold((0, 0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1), a.2.max(b.2)));
            assert_eq!(got, want, "{}", CUT_SSHD[n]);
        }
        let group = |fast: &FastRe, line: &str, name: &str| {
            let spans = fast.captures(line).unwrap();
            let g = fast.capture_names().position(|n| n == Some(name)).unwrap();
            spans[g].1.map(|(a, b)| line[a..b].to_owned())
        };
        // A user name holding ` from ADDR`: `<HOST>` can start after the
        // last ` from ` only.
        let (fast, _) = &SSHD_CASES[2];
        let line = "Invalid user a from 192.0.2.1 from 198.51.100.3 port 22";
        assert_eq!(
            group(fast, line, "user").as_deref(),
            Some("a from 192.0.2.1")
        );
        assert_eq!(group(fast, line, "ip4").as_deref(), Some("198.51.100.3"));
        // `22 [preauth]` reads as a host name and a suffix too: two places
        // `<HOST>` could start, and the general path decides.
        let (fast, _) = &SSHD_CASES[6];
        let line = "Connection closed by invalid user admin 192.0.2.1 port 22 [preauth]";
        assert_eq!(group(fast, line, "user").as_deref(), Some("admin"));
        assert_eq!(group(fast, line, "ip4").as_deref(), Some("192.0.2.1"));
    }

    /// A segment that is not one-pass, inside one group, and ends once.
    const AROUND: &str = r"^x (?P<w>[ab]*[0-9]*[ab]*:)(?P<v>\S+|\S+ \S+)$";

    #[test]
    fn a_segment_inside_one_group_runs_for_its_end() {
        let r = FastRe::new(AROUND).unwrap();
        assert!(segments_after(&r, "x ab12ba:yy") >= 2);
        let first = r.first();
        let captor = first.captors[0].get().unwrap().as_ref().unwrap();
        // All three: `x ` (no groups), `(?P<v>...)$` too (a group then a
        // tail of no length), and each choice of `v` on its own.
        assert_eq!(captor.fast_paths().2, 5);
        assert_eq!(
            r.captures("x ab12ba:yy z").unwrap()[1..],
            [(1, Some((2, 9))), (2, Some((9, 13)))]
        );
        assert_eq!(
            r.captures("x :y").unwrap()[1..],
            [(1, Some((2, 3))), (2, Some((3, 4)))]
        );
    }

    /// The captor of the branch that matched `line`, after enough matches
    /// for it to be cut.
    fn segments_after(re: &FastRe, line: &str) -> usize {
        for _ in 0..=capture::CUT_AFTER {
            assert!(re.captures(line).is_some(), "{line}");
        }
        re.built_captors()
            .map(capture::Captor::segment_count)
            .max()
            .unwrap()
    }

    #[test]
    fn cut_only_where_the_parse_is_decided() {
        let pam = FastRe::new_split(&to_rust_syntax(&resolve_tags(CUT_PAM, true))).unwrap();
        let line = "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root";
        assert!(segments_after(&pam, line) >= 2);
        let first = pam.first();
        assert!(
            first.captors[0]
                .get()
                .unwrap()
                .as_ref()
                .unwrap()
                .reads_quads()
        );
        let spans = pam.captures(line).unwrap();
        let ip4 = pam.capture_names().position(|n| n == Some("ip4")).unwrap();
        assert_eq!(spans[ip4].1.map(|(a, b)| &line[a..b]), Some("192.0.2.7"));
        let user = pam.capture_names().position(|n| n == Some("user")).unwrap();
        assert_eq!(spans[user].1.map(|(a, b)| &line[a..b]), Some("root"));
        // Not a quad (four digits), or a quad the rest does not follow:
        // the segment's engine decides, as the whole pattern would.
        let disconnect =
            FastRe::new_split(&to_rust_syntax(&resolve_tags(CUT_DISCONNECT, true))).unwrap();
        for (line, want) in [
            (
                "Received disconnect from 192.0.2.1234 port 2:11:",
                Some("192.0.2.1234"),
            ),
            (
                "Received disconnect from [192.0.2.12] port 2:11:",
                Some("192.0.2.12"),
            ),
            (
                "Received disconnect from 192.0.2.12a:11:",
                Some("192.0.2.12a"),
            ),
            (
                "Received disconnect from 192.0.2.12:11:",
                Some("192.0.2.12"),
            ),
        ] {
            let spans = disconnect.captures(line).unwrap();
            let got = spans
                .iter()
                .filter(|(i, _)| {
                    let n = disconnect.names[*i].as_deref();
                    n == Some("ip4") || n == Some("dns")
                })
                .find_map(|(_, s)| s.map(|(a, b)| &line[a..b]));
            assert_eq!(got, want, "{line}");
        }
        // `a+` may end anywhere: nothing before the groups is decided.
        let r = FastRe::new(r"^(?P<a>a+)(?P<b>a)").unwrap();
        assert_eq!(segments_after(&r, "aaa"), 0);
        assert_eq!(r.captures("aaa").unwrap()[2], (2, Some((2, 3))));
        // One-pass as a whole: one scan, no cut.
        let r = FastRe::new(r"^user (?P<u>\S+) from (?P<h>\S+)").unwrap();
        assert_eq!(segments_after(&r, "user a from b"), 0);
    }

    #[test]
    fn cut_at_a_later_match_with_the_same_groups() {
        let pam = FastRe::new_split(&to_rust_syntax(&resolve_tags(CUT_PAM, true))).unwrap();
        let line = "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.7  user=root";
        let segments = |re: &FastRe| {
            re.built_captors()
                .map(capture::Captor::segment_count)
                .max()
                .unwrap_or(0)
        };
        let uncut = pam.captures(line).unwrap();
        for _ in 1..capture::CUT_AFTER {
            assert_eq!(pam.captures(line).unwrap(), uncut);
        }
        assert_eq!(segments(&pam), 0, "not cut before its CUT_AFTER-th match");
        assert_eq!(pam.captures(line).unwrap(), uncut);
        assert!(segments(&pam) >= 2, "cut at its CUT_AFTER-th match");
        for _ in 0..3 {
            assert_eq!(pam.captures(line).unwrap(), uncut);
        }
        // Pieces decided alone (`(?:a|bc)` has no single length, yet ends
        // at one place; `(?P<u>\S+) ` too): the groups stay the first
        // parse's.
        let r = FastRe::new(r"^x (?:a|bc) (?P<u>\S+) (?P<v>a+|b)(?P<w>a*)$").unwrap();
        assert!(segments_after(&r, "x bc u aaa") >= 2);
        assert_eq!(
            r.captures("x bc u aaa").unwrap()[2..],
            [(2, Some((7, 10))), (3, Some((10, 10)))]
        );
    }

    #[test]
    fn split_only_where_the_head_ends_once() {
        // Where the part before the branches ends at one place, they split.
        assert!(FastRe::new_split(SPLIT_PATTERNS[0]).unwrap().is_split());
        assert!(FastRe::new_split(r"^x(?:(y)|(yy))").unwrap().is_split());
        // Branches without groups of their own are left together.
        assert!(!FastRe::new_split(r"^x(?:(y)|yy)").unwrap().is_split());
        // `(a|ab)` ends after `a` or `ab`: split, `abcd` would match as
        // `ab` + `c` instead of `a` + `bcd`.
        let r = FastRe::new_split(r"^(a|ab)(?:(c)|(bcd))").unwrap();
        assert!(!r.is_split());
        assert_eq!(
            r.captures("abcd").unwrap()[1],
            (1, Some((0, 1))),
            "the first parse of the head goes on with the second branch"
        );
        assert!(!FastRe::new_split(r"^a*(?:(a)|(b))").unwrap().is_split());
        // Without `^`, each start must end once too.
        assert!(!FastRe::new_split(r"a+(?:(b)|(c))").unwrap().is_split());
        assert!(FastRe::new_split(r"a(?:(b)|(cd))").unwrap().is_split());
        // Never split unless asked.
        assert!(!FastRe::new(SPLIT_PATTERNS[0]).unwrap().is_split());
    }

    #[test]
    fn a_match_found_by_the_callers_dfa_builds_no_search() {
        // A trailing alternation, each branch with a group: split.
        let r = FastRe::new_split(r"^a (?:(?P<x>x)b|(?P<y>y)c)").unwrap();
        assert!(r.is_split());
        let y = |s: &[Option<NonMaxUsize>]| pair(&s[4..6]);
        assert_eq!(
            r.with_found_slots("a yc", 0, Some((1, 0, 4)), y),
            Some(Some((2, 3)))
        );
        assert!(r.first().finder.get().is_none());
        // Its own search builds it, and finds the same.
        assert_eq!(r.with_slots("a yc", 0, y), Some(Some((2, 3))));
        assert!(r.first().finder.get().is_some());
    }

    #[test]
    fn automata_are_built_on_first_use() {
        let r = FastRe::new(r"^user (?P<user>\w+)").unwrap();
        assert!(r.first.get().is_none());
        assert_eq!(
            r.capture_names().collect::<Vec<_>>(),
            vec![None, Some("user")]
        );
        assert!(r.is_match("user bob"));
        assert!(r.first.get().is_some());
        // A pattern that does not parse is still refused at once.
        assert!(FastRe::new(r"(?P<x>a").is_err());
    }

    #[test]
    fn flag_groups_turning_unicode_off_are_seen() {
        assert!(turns_unicode_off(r"a(?-u:\xff)"));
        assert!(turns_unicode_off(r"(?i-u)x"));
        assert!(!turns_unicode_off(r"(?i)u(?:x)"));
    }

    #[test]
    fn span_buf_keeps_spans_inline_and_on_the_heap() {
        // Inline (`u32` pairs), on the heap for many groups, and on the heap
        // for a haystack whose offsets may not fit a `u32`.
        for (n, hay_len) in [
            (3, 10),
            (INLINE_SPANS, 100),
            (INLINE_SPANS + 1, 100),
            (3, usize::MAX),
        ] {
            let mut b = SpanBuf::unset(n, hay_len);
            assert_eq!(b.len(), n);
            assert!((0..n).all(|i| b.get(i) == Some(None)));
            b.set(0, Some((0, 0)));
            b.set(n - 1, Some((2, 9)));
            b.set(n, Some((1, 1)));
            assert_eq!(b.get(0), Some(Some((0, 0))));
            assert_eq!(b.get(n - 1), Some(Some((2, 9))));
            assert_eq!(b.get(n), None);
            b.set(0, None);
            assert_eq!(b.get(0), Some(None));
            let by_get: Vec<Span> = (0..n).map(|i| b.get(i).flatten()).collect();
            assert_eq!(b.iter().collect::<Vec<_>>(), by_get);
        }
        assert!(matches!(SpanBuf::unset(3, 10), SpanBuf::Inline(..)));
        assert!(matches!(SpanBuf::unset(3, usize::MAX), SpanBuf::Heap(_)));
    }

    proptest::proptest! {
        /// `fill` gives the spans one `set` per group that took part gives,
        /// inline and on the heap, with and without a remap.
        #[test]
        fn span_buf_fill_agrees_with_set(
            spans in proptest::collection::vec(
                proptest::option::of((0usize..50, 0usize..50)), 1..30),
            hay_len in proptest::sample::select(vec![100usize, usize::MAX]),
            shift in 0usize..30,
            remapped in proptest::bool::ANY,
        ) {
            let n = spans.len();
            let slots: Vec<Option<NonMaxUsize>> = spans
                .iter()
                .flat_map(|s| match s {
                    Some((a, b)) => [NonMaxUsize::new(*a), NonMaxUsize::new(*b)],
                    None => [None, None],
                })
                .collect();
            let remap: Option<Vec<usize>> =
                remapped.then(|| (0..n).map(|i| (i + shift) % n).collect());
            let mut by_fill = SpanBuf::unset(n, hay_len);
            by_fill.fill(&slots, remap.as_deref());
            let mut by_set = SpanBuf::unset(n, hay_len);
            for (i, s) in slots.chunks_exact(2).enumerate() {
                if let Some(span) = pair(s) {
                    by_set.set(remap.as_ref().map_or(i, |m| m[i]), Some(span));
                }
            }
            proptest::prop_assert_eq!(
                by_fill.iter().collect::<Vec<_>>(),
                by_set.iter().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn broken_pattern_is_an_error() {
        assert!(F2bRegex::new(r"(unclosed").is_err());
    }
}
