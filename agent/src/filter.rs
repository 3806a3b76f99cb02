//! Filters: named regexes that turn one log line into an offence by an address.
//!
//! This module owns the meaning of `<HOST>`, the built-in filters and the per-line
//! hot path. A source's filters are compiled once into a [`SourceMatcher`]:
//!
//! 1. Filters with `prefix = "syslog"` see only the message: the syslog prefix is
//!    parsed by hand ([`syslog`]), its program name picks the one multi-pattern
//!    regex holding the patterns of every filter that reads that program, and
//!    that regex runs anchored at the message start. Lines of other programs cost
//!    only the prefix parse.
//! 2. Filters without a prefix run together as one multi-pattern regex over the
//!    whole line.
//! 3. Only for the pattern that hit, the address is pulled out by [`extract`],
//!    without a capturing search; patterns that cannot be split at `<HOST>` use a
//!    capturing search instead.
//!
//! The caller owns a [`Scratch`] with every cache the searches need, so a line is
//! matched without allocating. The scratch also holds the source's [`session`]
//! table: each regex has a role (failure, attempt, address, end, success), and the
//! lines of one process count as one attempt where their filter says so.
//!
//! A filter is listed as `NAME` or `NAME[mode=MODE]` ([`resolve`]): a mode adds
//! regexes (in front of the filter's own) that make the filter stricter.

pub mod age;
pub mod builtin;
pub mod capture;
mod extract;
pub mod hostname;
pub mod pattern;
pub mod session;
pub mod syslog;
pub mod time;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use jiff::tz::TimeZone;
use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::{Captures as Slots, GroupInfo};
use regex_automata::{Anchored, Input, MatchKind, PatternSet};

use crate::addr;
use crate::config::{FilterConfig, LinePrefix};
pub use capture::Captures;
use extract::{CapturePlan, FastHost, Found, GroupAt, TextSet};
pub use hostname::NameRef;
use hostname::{NamePath, NameRing};
pub use pattern::{HOST_PLACEHOLDER, HostRule};
pub use session::Role;
use session::{Counted, LineFacts, Sessions};
use time::DatePattern;

/// Why one pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// An offence regex that never names the address cannot ban anybody.
    #[error("regex has no <HOST>; it must contain <HOST> exactly once")]
    NoHost,
    /// Two `<HOST>`s make it ambiguous which address offended.
    #[error("regex has <HOST> {count} times; it must contain <HOST> exactly once")]
    ManyHosts {
        /// How many were found.
        count: usize,
    },
    /// The regex does not compile.
    #[error("invalid regex: {message}")]
    Syntax {
        /// The regex engine's explanation, on one line, with the offset in the
        /// pattern as written.
        message: String,
    },
}

/// Why a source's matcher could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// One pattern of one filter was refused.
    #[error("filter {filter:?}, {kind} {index}: {source}")]
    Pattern {
        /// Filter name.
        filter: String,
        /// The list: `regex`, `attempt`, `address`, `end`, `success` or
        /// `ignore`.
        kind: &'static str,
        /// Position in that list.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },
    /// A filter without any counting regex would never match.
    #[error("filter {filter:?} has no regex, attempt or address regex")]
    Empty {
        /// Filter name.
        filter: String,
    },
    /// A setting other than a regex is wrong.
    #[error("filter {filter:?}, {key}: {message}")]
    Setting {
        /// Filter name.
        filter: String,
        /// The key, such as `timezone`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The combined regexes are too big for the engine.
    #[error("filters {filters:?} together are too big to compile: {message}")]
    TooBig {
        /// Filter names.
        filters: Vec<String>,
        /// The engine's message.
        message: String,
    },
}

/// Names one filter of a [`SourceMatcher`]; see [`SourceMatcher::filter_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilterId(u16);

impl FilterId {
    /// Position of the filter in the list given to [`SourceMatcher::build`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Who a line names where `<HOST>` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// An address (IPv4-mapped IPv6 already normalised).
    Addr(IpAddr),
    /// A host name, found only where no address is: it must be resolved (see
    /// `crate::dns`) before anyone can be banned. Read it with
    /// [`Scratch::host_name`].
    Name(NameRef),
}

/// One line's offence: who, which filter and regex saw it, and when the line says
/// it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The offending address, or the host name the line has instead.
    pub host: Host,
    /// The filter that matched.
    pub filter: FilterId,
    /// What the matching regex means for its session.
    pub role: Role,
    /// Position of the matching regex in that filter's list for `role`.
    pub regex: usize,
    /// The line's own time (syslog prefix or `datepattern`), if it has one; the
    /// caller uses the time it read the line otherwise.
    pub time: Option<SystemTime>,
}

impl Hit {
    /// The address, unless the line named a host name.
    pub fn addr(&self) -> Option<IpAddr> {
        match self.host {
            Host::Addr(a) => Some(a),
            Host::Name(_) => None,
        }
    }
}

/// What a line amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An offence: this line's.
    Hit(Hit),
    /// A line that does not count by itself (`line`) released an offence of
    /// its session (`counted`, with that line's regex and time): an `end` line
    /// closed a session whose pending address now counts, or a line named the
    /// address a failure of its session waited for (fail2ban's `<F-MLFID>`).
    Ended {
        /// What the end line itself matched.
        line: Hit,
        /// The offence it releases.
        counted: Hit,
    },
    /// A regex matched, but its session says the line does not count now: an
    /// `address` waiting for the session's end, an `attempt` or `end` of a
    /// session that already counted, a `success`, a fail2ban `<F-NOFAIL>` line,
    /// a failure still waiting for its session to name an address (its `addr`
    /// is then the unspecified address).
    Held(Hit),
    /// A regex matched, but the filter's `ignore` says the line does not count
    /// (and no other filter took it).
    Ignored {
        /// The filter whose `ignore` matched.
        filter: FilterId,
        /// The regex that matched before being ignored.
        regex: usize,
    },
    /// Nothing matched.
    Miss,
}

/// Checks one pattern the way [`SourceMatcher::build`] will compile it, so config
/// validation reports exactly the errors the running agent would hit.
pub fn check_pattern(pattern: &str, rule: HostRule) -> Result<(), PatternError> {
    pattern::check(pattern, rule)
}

/// Checks a filter's settings other than its regexes; returns each problem with
/// its key.
pub fn check_settings(cfg: &FilterConfig) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(w) = &cfg.session_window {
        match crate::duration::parse_duration(w) {
            Ok(d) if d.is_zero() => out.push(("session_window", "must be longer than 0s".into())),
            Ok(_) => {}
            Err(e) => out.push(("session_window", e.to_string())),
        }
    }
    for (name, mode) in &cfg.modes {
        if name == NORMAL_MODE || !valid_mode_name(name) {
            out.push((
                "modes",
                format!(
                    "{name:?} is not a mode name: letters, digits, '-' and '_', and not {NORMAL_MODE:?} (the filter's own lists are that mode)"
                ),
            ));
        }
        let rule = host_rule(&[&cfg.counting_lists(), &mode.counting_lists()]);
        for (role, list) in Role::ALL.into_iter().zip(mode.counting_lists()) {
            for (i, re) in list.iter().enumerate() {
                if let Err(e) = check_pattern(re, rule) {
                    out.push(("modes", format!("{name}.{}[{i}]: {e}", role.key())));
                }
            }
        }
        if let Some(d) = &mode.datepattern
            && let Err(e) = DatePattern::parse(d)
        {
            out.push(("modes", format!("{name}.datepattern: {e}")));
        }
        for (i, re) in mode.ignore.iter().enumerate() {
            if let Err(e) = check_pattern(re, HostRule::Optional) {
                out.push(("modes", format!("{name}.ignore[{i}]: {e}")));
            }
        }
    }
    for (i, d) in cfg.allow_rdns.iter().enumerate() {
        if !addr::is_host_name(d.as_bytes()) {
            out.push((
                "allow_rdns",
                format!("entry {i} ({d:?}) is not a domain name such as \"googlebot.com\""),
            ));
        }
    }
    if cfg.prefix != LinePrefix::Syslog && !cfg.programs.is_empty() {
        out.push((
            "programs",
            "only applies with prefix = \"syslog\" (the program is read from the syslog prefix)"
                .to_owned(),
        ));
    }
    for (i, p) in cfg.programs.iter().enumerate() {
        if p.is_empty()
            || p.bytes()
                .any(|b| !b.is_ascii_graphic() || b"[]:".contains(&b))
        {
            out.push((
                "programs",
                format!(
                    "entry {i} ({p:?}) is not a syslog program name (no spaces, '[', ']' or ':')"
                ),
            ));
        } else if p.bytes().filter(|&b| b == b'*').count() > 1 {
            out.push((
                "programs",
                format!(
                    "entry {i} ({p:?}) has more than one '*' (one '*' stands for one or more characters other than '/', as in \"postfix-*/smtpd\")"
                ),
            ));
        }
    }
    if let Some(d) = &cfg.datepattern
        && let Err(e) = DatePattern::parse(d)
    {
        out.push(("datepattern", e));
    }
    if let Some(tz) = &cfg.timezone
        && let Err(e) = time::parse_zone(tz)
    {
        out.push(("timezone", e));
    }
    out
}

/// The filter called `name`: the config's `[filters.NAME]` if there is one, else
/// the built-in filter of that name.
pub fn lookup<'a>(
    filters: &'a BTreeMap<String, FilterConfig>,
    name: &str,
) -> Option<Cow<'a, FilterConfig>> {
    match filters.get(name) {
        Some(f) => Some(Cow::Borrowed(f)),
        None => builtin::get(name).map(Cow::Owned),
    }
}

/// The capture (`<F-MLFID>...</F-MLFID>`, as in fail2ban) whose text keys a
/// line's session instead of the syslog program and pid.
pub const SESSION_GROUP: &str = "mlfid";

/// The mode a filter's own lists make up.
pub const NORMAL_MODE: &str = "normal";

fn valid_mode_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a filter reference (`NAME` or `NAME[mode=MODE]`) names no filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Not of the form `NAME` or `NAME[mode=MODE]`.
    #[error("{reference:?} is not a filter reference: write NAME or NAME[mode=MODE]")]
    Syntax {
        /// The reference as written.
        reference: String,
    },
    /// `NAME[...]` whose option list cannot be read.
    #[error("{reference:?} is not a filter reference: {message}")]
    Options {
        /// The reference as written.
        reference: String,
        /// What is wrong with it.
        message: String,
    },
    /// No `[filters.NAME]` and no built-in filter of that name.
    #[error("unknown filter {name:?}")]
    Unknown {
        /// The name.
        name: String,
    },
    /// The filter has no such mode.
    #[error("filter {name:?} has no mode {mode:?} (its modes: {})", modes.join(", "))]
    UnknownMode {
        /// The filter.
        name: String,
        /// The mode asked for.
        mode: String,
        /// The modes it has.
        modes: Vec<String>,
    },
}

/// Splits a filter reference into the filter's name and its options: `sshd`,
/// `sshd[mode=aggressive]`, or, as fail2ban writes filters and actions,
/// `NAME[key=value, key="a,b", key='x']`. Keys are lower-cased (fail2ban's
/// option names are); a quoted value may hold commas and `]`. The one parser of
/// references: [`parse_reference`] narrows it to log2drop filters, which take
/// only a mode; a fail2ban filter takes every option.
pub fn parse_reference_options(
    reference: &str,
) -> Result<(&str, BTreeMap<String, String>), ReferenceError> {
    let bad = |message: String| ReferenceError::Options {
        reference: reference.to_owned(),
        message,
    };
    let text = reference.trim();
    let Some(open) = text.find('[') else {
        return if text.is_empty() {
            Err(bad("no filter name".into()))
        } else if text.contains(']') {
            Err(bad("']' without '['".into()))
        } else {
            Ok((text, BTreeMap::new()))
        };
    };
    let name = text[..open].trim();
    if name.is_empty() {
        return Err(bad("no filter name before '['".into()));
    }
    let Some(body) = text[open + 1..].strip_suffix(']') else {
        return Err(bad("options must end with ']'".into()));
    };
    let mut options = BTreeMap::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            return Err(bad(format!("option {rest:?} has no '='")));
        };
        let key = rest[..eq].trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(bad("empty option name".into()));
        }
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let Some(end) = rest[1..].find(q) else {
                return Err(bad(format!("unterminated quote in option {key:?}")));
            };
            value = rest[1..=end].to_owned();
            rest = rest[end + 2..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        options.insert(key, value);
    }
    Ok((name, options))
}

/// Splits a reference to a log2drop filter into the filter's name and the
/// mode, if one is given: `sshd` or `sshd[mode=aggressive]`.
pub fn parse_reference(reference: &str) -> Result<(&str, Option<String>), ReferenceError> {
    let bad = || ReferenceError::Syntax {
        reference: reference.to_owned(),
    };
    let (name, mut options) = parse_reference_options(reference).map_err(|_| bad())?;
    if !reference.contains('[') {
        return Ok((name, None));
    }
    let mode = options.remove("mode").ok_or_else(bad)?;
    if !options.is_empty() || !valid_mode_name(&mode) {
        return Err(bad());
    }
    Ok((name, Some(mode)))
}

/// The modes of a filter, `normal` first.
pub fn modes(cfg: &FilterConfig) -> Vec<String> {
    std::iter::once(NORMAL_MODE.to_owned())
        .chain(cfg.modes.keys().cloned())
        .collect()
}

/// A built-in filter as it stands, then in each of its modes: the tests that
/// hold a property for every built-in run all of them.
#[cfg(test)]
pub(crate) fn builtin_in_every_mode(name: &str) -> Vec<FilterConfig> {
    let base = builtin::get(name).expect("built-in");
    let modes = modes(&base);
    std::iter::once(base.clone())
        .chain(modes.iter().filter_map(|m| with_mode(&base, m)))
        .collect()
}

/// `cfg` in mode `mode`: the mode's lists in front of the filter's own, and no
/// modes left.
pub fn with_mode(cfg: &FilterConfig, mode: &str) -> Option<FilterConfig> {
    let mut out = cfg.clone();
    out.modes.clear();
    if mode == NORMAL_MODE {
        return Some(out);
    }
    let m = cfg.modes.get(mode)?;
    if let Some(prefix) = m.prefix {
        out.prefix = prefix;
        match prefix {
            LinePrefix::None => out.programs.clear(),
            // The time is the syslog prefix's.
            LinePrefix::Syslog => out.datepattern = None,
        }
    }
    if m.datepattern.is_some() {
        out.datepattern.clone_from(&m.datepattern);
    }
    let extra = m.counting_lists().into_iter().chain([&m.ignore]);
    for (own, extra) in out.lists_mut().into_iter().zip(extra) {
        own.splice(0..0, extra.iter().cloned());
    }
    Some(out)
}

/// The filter a reference names (`NAME` or `NAME[mode=MODE]`), in that mode:
/// what a `[sources.X]` or `[jails.X]` filters entry stands for. A fail2ban
/// filter (`fail2ban = FILE`) gets the reference's options, `mode` among them,
/// on top of its own `options`.
pub fn resolve(
    filters: &BTreeMap<String, FilterConfig>,
    reference: &str,
) -> Result<FilterConfig, ReferenceError> {
    let (name, options) =
        parse_reference_options(reference).map_err(|_| ReferenceError::Syntax {
            reference: reference.to_owned(),
        })?;
    let cfg = lookup(filters, name).ok_or_else(|| ReferenceError::Unknown {
        name: name.to_owned(),
    })?;
    if crate::fail2ban::is_fail2ban(&cfg) {
        let mut cfg = cfg.into_owned();
        cfg.options.extend(options);
        return Ok(cfg);
    }
    let (_, mode) = parse_reference(reference)?;
    let mode = mode.as_deref().unwrap_or(NORMAL_MODE);
    with_mode(&cfg, mode).ok_or_else(|| ReferenceError::UnknownMode {
        name: name.to_owned(),
        mode: mode.to_owned(),
        modes: modes(&cfg),
    })
}

/// Whether the counting regexes of a filter whose lists (its own, then a
/// mode's) are `lists` need `<HOST>`: a filter with session roles may have
/// regexes without it (`Disconnecting: Too many authentication failures`), whose
/// lines count with the address their session names (see [`session`]); a
/// filter without sessions could never count such a line.
pub fn host_rule(lists: &[&[&Vec<String>; 6]]) -> HostRule {
    let sessions = lists
        .iter()
        .any(|l| l.iter().skip(1).any(|list| !list.is_empty()));
    if sessions {
        HostRule::Optional
    } else {
        HostRule::Required
    }
}

/// A filter's regex lists, by role, in the order they are compiled.
fn role_lists(cfg: &FilterConfig) -> [(Role, &[String]); 6] {
    let lists = cfg.counting_lists();
    std::array::from_fn(|i| (Role::ALL[i], lists[i].as_slice()))
}

fn builder() -> meta::Builder {
    let mut b = Regex::builder();
    b.syntax(pattern::syntax_config())
        .configure(Regex::config().utf8_empty(false));
    b
}

fn build_error(e: &meta::BuildError) -> String {
    match e.syntax_error() {
        Some(s) => pattern::describe_syntax_error(&s.to_string()),
        None => match e.size_limit() {
            Some(limit) => format!("compiled regex exceeds the size limit of {limit} bytes"),
            None => e.to_string(),
        },
    }
}

/// A pattern's whole regex, compiled at its first search: most patterns
/// never run one (their address path decides), and compiling all of them
/// was a fifth of a matcher's build.
#[derive(Debug)]
struct FullRegex {
    hir: regex_syntax::hir::Hir,
    /// Its groups, as the compiled regex numbers them.
    groups: GroupInfo,
    regex: OnceLock<Regex>,
}

/// Most bytes the forward NFA of a [`FullRegex`] may take for its regex to be
/// left to its first search: a tenth of the regex engine's own limit, so the
/// rest of its build (the reverse NFA, which has no capture states and
/// otherwise the same ones) cannot fail there.
const LAZY_NFA_BYTES: usize = 1 << 20;

impl FullRegex {
    /// Compiles what decides whether `hir` compiles (its NFA, under the
    /// regex engine's configuration): the error [`builder`] would give
    /// ([`build_error`]), at build time.
    fn new(hir: regex_syntax::hir::Hir) -> Result<FullRegex, String> {
        use regex_automata::nfa::thompson;
        let config = thompson::Config::new()
            .utf8(false)
            .nfa_size_limit(Some(NFA_SIZE_LIMIT))
            .shrink(false);
        let nfa = match thompson::Compiler::new()
            .configure(config)
            .build_from_hir(&hir)
        {
            Ok(nfa) if nfa.memory_usage() <= LAZY_NFA_BYTES => nfa,
            // Too big to vouch for, or refused: the engine decides now.
            _ => {
                let regex = builder()
                    .build_from_hir(&hir)
                    .map_err(|e| build_error(&e))?;
                return Ok(FullRegex {
                    hir,
                    groups: regex.group_info().clone(),
                    regex: OnceLock::from(regex),
                });
            }
        };
        Ok(FullRegex {
            hir,
            groups: nfa.group_info().clone(),
            regex: OnceLock::new(),
        })
    }

    fn group_info(&self) -> &GroupInfo {
        &self.groups
    }

    /// The regex, compiled at the first call.
    fn get(&self) -> &Regex {
        self.regex.get_or_init(|| {
            builder()
                .build_from_hir(&self.hir)
                .expect("a regex whose NFA compiled well within the limits compiles")
        })
    }
}

/// The regex engine's default limit on an NFA's size ([`builder`] keeps it).
const NFA_SIZE_LIMIT: usize = 10 << 20;

/// A search cache for a regex compiled at its first use, made at its first
/// search.
fn lazy_cache<'a>(slot: &'a mut Option<meta::Cache>, regex: &Regex) -> &'a mut meta::Cache {
    slot.get_or_insert_with(|| regex.create_cache())
}

/// One offence regex.
#[derive(Debug)]
struct Pattern {
    /// The whole regex, for the capturing search.
    full: FullRegex,
    /// `None` for a regex without `<HOST>` (see [`host_rule`]).
    host_group: Option<usize>,
    /// For a regex without `<HOST>` that stands for a few texts, those: the
    /// anchored search compares them instead of running the regex engine.
    texts: Option<TextSet>,
    /// Named groups other than `<HOST>` (group index, name): empty for most
    /// patterns, which then never run a capturing search for them.
    named: Box<[(usize, Arc<str>)]>,
    fast: Option<FastHost>,
    /// The named groups again, in `A` (the text before `<HOST>`) alone,
    /// anchored at both ends: where the fast path found the address, the
    /// captures come from the text before it, a much smaller search than the
    /// whole regex's. `None` when a named group sits after `<HOST>`.
    before_captures: Option<BeforeCaptures>,
    filter: FilterId,
    role: Role,
    index: usize,
    /// Its `<F-MLFID>` group: the text it captures keys the line's session
    /// instead of the syslog program and pid.
    session_group: Option<usize>,
    /// Where `<HOST>` may be a host name: run only when the address path
    /// finds nothing. `None` if the name regex does not compile within the
    /// size limits.
    name: Option<NamePath>,
}

impl Pattern {
    /// Its hit at `host` (the line's time is filled in later).
    fn hit(&self, host: Host) -> Hit {
        Hit {
            host,
            filter: self.filter,
            role: self.role,
            regex: self.index,
            time: None,
        }
    }
}

/// One filter's settings, compiled.
#[derive(Debug)]
struct Filter {
    name: Box<str>,
    syslog: bool,
    ignore: Option<Regex>,
    zone: TimeZone,
    date: Option<DatePattern>,
    /// Some regex has a role other than failure, so lines go through the
    /// session table.
    sessions: bool,
    /// Its `session_window`.
    window: std::time::Duration,
    /// Some regex has an `<F-MLFID>` group (see [`SourceMatcher::session_key`]).
    keyed: bool,
    /// Index of its first pattern of each role, in [`Role::ALL`] order, and
    /// one past its last pattern: a filter's patterns are contiguous, by role,
    /// so a hit's pattern is found by adding, not by a scan of them all.
    role_first: [usize; Role::ALL.len() + 1],
}

/// The patterns that may match one kind of text, and how to find them.
#[derive(Debug)]
enum Group {
    /// Anchored at the text start (syslog messages): by the text's first byte,
    /// the patterns that can start with it, in priority order. Each decides for
    /// itself (fast path) whether it matches; nothing scans the whole text.
    Anchored {
        /// Per first byte, the patterns that may match a text starting with it.
        by_first_byte: Box<[Box<[Candidate]>]>,
        /// Patterns that might match an empty text.
        on_empty: Box<[usize]>,
    },
    /// Searched anywhere: one multi-pattern pass reports every pattern that
    /// matches, then those run in priority order.
    Unanchored {
        set: Regex,
        /// Group-local pattern id to global pattern index.
        patterns: Vec<usize>,
    },
}

/// A pattern of an anchored group, under one first byte, with the text every
/// match of it starts with (after that byte) and ends the text with: a line
/// that has neither is turned away for the price of a comparison or two,
/// before the pattern's fast path runs. `Disconnected from ...` meets the
/// `Disconnecting ...` patterns only here, and `Received disconnect ...: 11:`
/// the `...: 3: ...: Auth fail` one.
#[derive(Debug, Clone)]
struct Candidate {
    /// Global pattern index.
    pattern: usize,
    /// What every match starting with this first byte starts with (the
    /// longest common prefix of its prefix literals that start with the byte;
    /// empty when none is known).
    head: Box<[u8]>,
    /// For a pattern that ends at the text end (`$`), the texts every match
    /// ends with one of; empty when not known.
    tails: Box<[Box<[u8]>]>,
}

impl Candidate {
    /// Whether pattern `pattern` may match at the start of `hay`; `false` only
    /// where it cannot.
    fn admits(&self, hay: &[u8]) -> bool {
        // Compared a word at a time: heads and tails are short, and a call to
        // `memcmp` for each costs more than the comparison.
        let head = self.head.len();
        hay.get(..head)
            .is_some_and(|h| syslog::same_bytes(h, &self.head))
            && (self.tails.is_empty()
                || self.tails.iter().any(|t| {
                    hay.len()
                        .checked_sub(t.len())
                        .is_some_and(|at| syslog::same_bytes(&hay[at..], t))
                }))
    }
}

/// A `programs` entry with one `*`: the `*` stands for one or more bytes other
/// than `/`. Postfix's multi-instance setups tag each instance's lines with its
/// `syslog_name`, which `postmulti` names `postfix-NAME`, so `postfix-*/smtpd`
/// reads every instance's smtpd without listing them; the `/` rule keeps
/// `postfix-*/smtpd` from also taking `postfix-a/submission/smtpd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProgramGlob {
    before: Box<[u8]>,
    after: Box<[u8]>,
}

impl ProgramGlob {
    /// The glob of an entry with exactly one `*`; `None` for an exact name.
    pub(crate) fn parse(entry: &str) -> Option<ProgramGlob> {
        let (before, after) = entry.split_once('*')?;
        (!after.contains('*')).then(|| ProgramGlob {
            before: before.as_bytes().into(),
            after: after.as_bytes().into(),
        })
    }

    /// Whether the syslog program `prog` is one this entry names.
    pub(crate) fn matches(&self, prog: &[u8]) -> bool {
        prog.len() > self.before.len() + self.after.len()
            && prog.starts_with(&self.before)
            && prog.ends_with(&self.after)
            && !prog[self.before.len()..prog.len() - self.after.len()].contains(&b'/')
    }
}

/// Every filter of one source, compiled together.
#[derive(Debug)]
pub struct SourceMatcher {
    patterns: Vec<Pattern>,
    filters: Vec<Filter>,
    groups: Vec<Group>,
    /// Syslog program name to the group of every syslog filter that reads it.
    by_program: Vec<(Box<[u8]>, usize)>,
    /// `programs` entries with a `*` ([`ProgramGlob`]) and their groups, tried
    /// only for a program no exact entry names: the common path (sshd's lines
    /// under `sshd`) never reaches them.
    by_glob: Vec<(ProgramGlob, usize)>,
    /// Group for programs no filter names (filters that read every program).
    any_program: Option<usize>,
    /// Group of the filters without a prefix.
    plain: Option<usize>,
    /// Filters read from fail2ban files, by id: they cut the date out and run
    /// their prefregex first, so they sit apart from the groups above.
    fail2ban: Vec<(FilterId, crate::fail2ban::Matcher)>,
}

/// Per-thread search state for one [`SourceMatcher`]; reuse it for every line.
#[derive(Debug)]
pub struct Scratch {
    groups: Vec<Option<(meta::Cache, PatternSet)>>,
    /// Per pattern, its whole regex's cache, made at its first search.
    full: Vec<Option<meta::Cache>>,
    captures: Vec<Slots>,
    /// Per pattern, its name regex's cache and capture slots.
    name_search: Vec<Option<(meta::Cache, Slots)>>,
    /// Host names hits found.
    names: NameRing,
    ignores: Vec<Option<meta::Cache>>,
    /// Line times: consecutive lines mostly share their minute, and turning civil
    /// time into a point in time (time zone rules) costs more than matching.
    times: time::TimeMemo,
    /// The last syslog timestamp read.
    stamp: syslog::StampCache,
    /// The source's open sessions.
    sessions: Sessions,
    /// Per fail2ban filter, the lines it keeps.
    fail2ban: Vec<crate::fail2ban::LineState>,
    /// Per pattern, the cache and slots of its `before_captures`.
    before_search: Vec<Option<(meta::Cache, Slots)>>,
    /// Where the fast path last found an address (see [`HostAt`]).
    host_at: Option<HostAt>,
    /// Per pattern, what its fast path's skeletons last decided.
    memos: Vec<extract::Memo>,
}

/// Where a pattern's fast path found the address in the text it searched: lets
/// [`SourceMatcher::captures_into`] search only the text before it.
#[derive(Debug, Clone, Copy)]
struct HostAt {
    pattern: usize,
    /// Where the searched text starts in the line, and the line's length (0
    /// until [`Scratch::place_host`] fills them in).
    offset: usize,
    line_len: usize,
    /// The address found in the searched text, and where it starts.
    addr: IpAddr,
    start: usize,
    /// Where the named group is, if the address path worked it out.
    group: GroupAt,
}

impl Scratch {
    /// Notes where in its line (`line_len` long) the text starts that the
    /// search just run searched, for a [`HostAt`] that search left.
    fn place_host(&mut self, text: &[u8], line: &[u8]) {
        if let Some(at) = &mut self.host_at
            && at.line_len == 0
        {
            at.offset = text.as_ptr() as usize - line.as_ptr() as usize;
            at.line_len = line.len();
        }
    }

    /// The host name a [`Host::Name`] hit found, while this scratch still holds
    /// it (see [`hostname::NAME_SLOTS`]).
    pub fn host_name(&self, r: NameRef) -> Option<&str> {
        self.names.get(r)
    }
}

impl SourceMatcher {
    /// Compiles the filters that feed one source. Filter order is priority order:
    /// when several regexes match a line, the first in `filters` (then in its
    /// `regex` list) that yields a valid address wins. One exception: on a
    /// syslog line, the filters that name its program come before those that
    /// read every program, which do not see it at all when one of the naming
    /// filters has session roles (the line belongs to that filter's session).
    pub fn build(filters: &[(&str, &FilterConfig)]) -> Result<SourceMatcher, FilterError> {
        let all_names = || filters.iter().map(|(n, _)| (*n).to_owned()).collect();
        if filters.len() > usize::from(u16::MAX) {
            return Err(FilterError::TooBig {
                filters: all_names(),
                message: "more than 65535 filters on one source".into(),
            });
        }
        let mut patterns = Vec::new();
        let mut compiled = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        // Per pattern of a syslog filter, its [`Literals`].
        let mut literals: Vec<Option<Literals>> = Vec::new();
        // What `<HOST>` matches in a group's regex (an address or a name, so
        // lines with names reach the pattern), and its parse, made once.
        let either_text = format!("{}|{}", pattern::HOST_REGEX, pattern::NAME_REGEX);
        let either_host = OnceCell::new();
        let either_host_hir = || {
            regex_automata::util::syntax::parse_with(&either_text, &pattern::syntax_config())
                .expect("the host regexes parse")
        };
        let mut fail2ban = Vec::new();
        for (fi, (name, cfg)) in filters.iter().enumerate() {
            let id = FilterId(fi as u16);
            if let Some(loaded) = crate::fail2ban::load_config(cfg) {
                let setting = |key, message| FilterError::Setting {
                    filter: (*name).to_owned(),
                    key,
                    message,
                };
                let m = loaded.map_err(|e| setting("fail2ban", e.to_string()))?;
                let zone = match &cfg.timezone {
                    Some(z) => time::parse_zone(z).map_err(|m| setting("timezone", m))?,
                    None => TimeZone::system(),
                };
                compiled.push(Filter {
                    name: Box::from(*name),
                    syslog: false,
                    ignore: None,
                    zone,
                    date: None,
                    sessions: false,
                    window: session::DEFAULT_WINDOW,
                    keyed: false,
                    role_first: [patterns.len(); Role::ALL.len() + 1],
                });
                fail2ban.push((id, m));
                continue;
            }
            if cfg.regex.is_empty() && cfg.attempt.is_empty() && cfg.address.is_empty() {
                return Err(FilterError::Empty {
                    filter: (*name).to_owned(),
                });
            }
            if let Some((key, message)) = check_settings(cfg).into_iter().next() {
                return Err(FilterError::Setting {
                    filter: (*name).to_owned(),
                    key,
                    message,
                });
            }
            let syslog = cfg.prefix == LinePrefix::Syslog;
            let first_pattern = patterns.len();
            let pattern_error = |kind, index, source| FilterError::Pattern {
                filter: (*name).to_owned(),
                kind,
                index,
                source,
            };
            let rule = host_rule(&[&cfg.counting_lists()]);
            let mut role_first = [first_pattern; Role::ALL.len() + 1];
            for (role, list) in role_lists(cfg) {
                role_first[role.index()] = patterns.len();
                let kind = role.key();
                for (ri, text) in list.iter().enumerate() {
                    let parsed =
                        pattern::parse(text, rule).map_err(|e| pattern_error(kind, ri, e))?;
                    let split = parsed.split();
                    let fast = split.as_ref().and_then(|s| FastHost::build(s, syslog));
                    let name = name_path(text, split.as_ref(), syslog);
                    // What groups search for.
                    let either = pattern::expand_with(text, rule, &either_text)
                        .map_err(|e| pattern_error(kind, ri, e))?;
                    // Anchored groups dispatch on what the group's text
                    // starts and ends with, read from the regex parsed
                    // above with `<HOST>` swapped where that is exact.
                    if syslog {
                        literals.push(Some(if name.is_some() {
                            match parsed.with_host(either_host.get_or_init(either_host_hir)) {
                                Some(hir) => Literals::of_hir(&hir),
                                None => Literals::of(&either),
                            }
                        } else {
                            Literals::of_hir(&parsed.hir)
                        }));
                    } else {
                        literals.push(None);
                    }
                    let expanded = parsed.expanded;
                    let full = FullRegex::new(parsed.hir).map_err(|message| {
                        pattern_error(kind, ri, PatternError::Syntax { message })
                    })?;
                    let host_group = full
                        .group_info()
                        .to_index(regex_automata::PatternID::ZERO, pattern::HOST_GROUP);
                    // A regex without `<HOST>` (where the rule allows it)
                    // takes the address of its session.
                    if host_group.is_none() && rule == HostRule::Required {
                        return Err(pattern_error(kind, ri, PatternError::NoHost));
                    }
                    let session_group = full
                        .group_info()
                        .to_index(regex_automata::PatternID::ZERO, SESSION_GROUP);
                    let named = full
                        .group_info()
                        .pattern_names(regex_automata::PatternID::ZERO)
                        .enumerate()
                        .filter_map(|(i, n)| Some((i, n?)))
                        .filter(|(_, n)| *n != pattern::HOST_GROUP && *n != SESSION_GROUP)
                        .take(capture::MAX_CAPTURES)
                        .map(|(i, n)| (i, Arc::from(n)))
                        .collect::<Box<[_]>>();
                    // Only where the regex is anchored at the text start:
                    // then `A` starts at 0 in any match.
                    let before_captures = fast
                        .as_ref()
                        .and(split.as_ref())
                        .filter(|s| syslog || s.before_anchored)
                        .and_then(|s| BeforeCaptures::build(&s.before, &s.before_hir, &named));
                    // The address path checks the text before `<HOST>` with
                    // the group's plan where it can: the capture then comes
                    // with the address.
                    let fast = fast.map(|f| {
                        f.with_plan(before_captures.as_ref().and_then(|b| b.plan.clone()))
                    });
                    let text_set = host_group.is_none().then(|| TextSet::of_hir(&full.hir));
                    patterns.push(Pattern {
                        texts: text_set.flatten(),
                        full,
                        host_group,
                        named,
                        fast,
                        before_captures,
                        filter: id,
                        role,
                        index: ri,
                        session_group,
                        name,
                    });
                    let has_name = patterns.last().is_some_and(|p| p.name.is_some());
                    texts.push(if has_name { either } else { expanded });
                }
            }
            let mut ignore_texts = Vec::new();
            for (ii, text) in cfg.ignore.iter().enumerate() {
                check_pattern(text, HostRule::Optional)
                    .map_err(|e| pattern_error("ignore", ii, e))?;
                ignore_texts.push(
                    pattern::expand(text, HostRule::Optional)
                        .map_err(|e| pattern_error("ignore", ii, e))?,
                );
            }
            let ignore = if ignore_texts.is_empty() {
                None
            } else {
                Some(
                    builder()
                        .build_many(&ignore_texts)
                        .map_err(|e| FilterError::TooBig {
                            filters: vec![(*name).to_owned()],
                            message: build_error(&e),
                        })?,
                )
            };
            let setting = |key, message| FilterError::Setting {
                filter: (*name).to_owned(),
                key,
                message,
            };
            let zone = match &cfg.timezone {
                Some(z) => time::parse_zone(z).map_err(|m| setting("timezone", m))?,
                None => TimeZone::system(),
            };
            let date = match &cfg.datepattern {
                Some(d) => Some(DatePattern::parse(d).map_err(|m| setting("datepattern", m))?),
                None => None,
            };
            let window = match &cfg.session_window {
                Some(w) => crate::duration::parse_duration(w)
                    .map_err(|e| setting("session_window", e.to_string()))?,
                None => session::DEFAULT_WINDOW,
            };
            compiled.push(Filter {
                name: Box::from(*name),
                syslog,
                ignore,
                zone,
                date,
                sessions: role_lists(cfg)
                    .iter()
                    .any(|(r, l)| *r != Role::Failure && !l.is_empty()),
                window,
                keyed: patterns[first_pattern..]
                    .iter()
                    .any(|p| p.session_group.is_some()),
                role_first: {
                    role_first[Role::ALL.len()] = patterns.len();
                    role_first
                },
            });
        }

        let mut groups = Vec::new();
        let literals_of = |p: usize| {
            literals[p]
                .as_ref()
                .expect("patterns of anchored groups have their literals")
        };
        // Groups already built, by members: sshd's three program names hold
        // the same patterns, and share one group.
        let mut built: Vec<(Vec<usize>, bool, usize)> = Vec::new();
        let mut build_group = |members: Vec<usize>, anchored: bool| -> Result<usize, FilterError> {
            if let Some((_, _, g)) = built
                .iter()
                .find(|(m, a, _)| *a == anchored && *m == members)
            {
                return Ok(*g);
            }
            let group = if anchored {
                first_byte_group(&members, literals_of)
            } else {
                let mut b = builder();
                b.configure(Regex::config().utf8_empty(false).match_kind(MatchKind::All));
                let set = b
                    .build_many(&members.iter().map(|&p| &texts[p]).collect::<Vec<_>>())
                    .map_err(|e| FilterError::TooBig {
                        filters: all_names(),
                        message: build_error(&e),
                    })?;
                Group::Unanchored {
                    set,
                    patterns: members.clone(),
                }
            };
            groups.push(group);
            built.push((members, anchored, groups.len() - 1));
            Ok(groups.len() - 1)
        };
        let of_filter = |pred: &dyn Fn(usize) -> bool| -> Vec<usize> {
            (0..patterns.len())
                .filter(|&p| pred(patterns[p].filter.index()))
                .collect()
        };
        // Syslog filters: one group per program some filter names, plus one for
        // the rest, each holding the filters that read that program.
        let mut programs: Vec<&str> = filters
            .iter()
            .filter(|(_, c)| c.prefix == LinePrefix::Syslog)
            .flat_map(|(_, c)| c.programs.iter().map(String::as_str))
            .collect();
        programs.sort_unstable();
        programs.dedup();
        let reads = |fi: usize, prog: Option<&str>| {
            let c = filters[fi].1;
            c.prefix == LinePrefix::Syslog
                && (c.programs.is_empty()
                    || prog.is_some_and(|p| c.programs.iter().any(|x| x == p)))
        };
        // A program's own filters come before the filters that read every
        // program (pam-generic), and a program whose own filter tracks
        // sessions keeps its lines to itself: sshd's PAM line is the address of
        // an sshd session, not a failure of its own, so one attempt on an
        // auth.log that both filters read counts once, whatever their order.
        // An exact name is also read by the filters whose `*` entries take it;
        // a `*` entry's group holds the filters that list that entry.
        let names = |fi: usize, prog: &str| {
            let c = filters[fi].1;
            c.prefix == LinePrefix::Syslog
                && c.programs.iter().any(|x| {
                    x == prog
                        || (!prog.contains('*')
                            && ProgramGlob::parse(x).is_some_and(|g| g.matches(prog.as_bytes())))
                })
        };
        let reads_all = |fi: usize| {
            filters[fi].1.prefix == LinePrefix::Syslog && filters[fi].1.programs.is_empty()
        };
        let mut by_program = Vec::new();
        let mut by_glob = Vec::new();
        for prog in programs {
            let mut members = of_filter(&|fi| names(fi, prog));
            let owned = members.iter().any(|&p| {
                let c = filters[patterns[p].filter.index()].1;
                role_lists(c)
                    .iter()
                    .any(|(r, l)| *r != Role::Failure && !l.is_empty())
            });
            if !owned {
                members.extend(of_filter(&|fi| reads_all(fi)));
            }
            let group = build_group(members, true)?;
            match ProgramGlob::parse(prog) {
                Some(glob) => by_glob.push((glob, group)),
                None => by_program.push((Box::from(prog.as_bytes()), group)),
            }
        }
        let rest = of_filter(&|fi| reads(fi, None));
        let any_program = if rest.is_empty() {
            None
        } else {
            Some(build_group(rest, true)?)
        };
        let plain_members = of_filter(&|fi| filters[fi].1.prefix == LinePrefix::None);
        let plain = if plain_members.is_empty() {
            None
        } else {
            Some(build_group(plain_members, false)?)
        };
        Ok(SourceMatcher {
            patterns,
            filters: compiled,
            groups,
            by_program,
            by_glob,
            any_program,
            plain,
            fail2ban,
        })
    }

    /// Search state sized for this matcher.
    pub fn new_scratch(&self) -> Scratch {
        Scratch {
            groups: self
                .groups
                .iter()
                .map(|g| match g {
                    Group::Anchored { .. } => None,
                    Group::Unanchored { set, .. } => {
                        Some((set.create_cache(), PatternSet::new(set.pattern_len())))
                    }
                })
                .collect(),
            full: self.patterns.iter().map(|_| None).collect(),
            captures: self
                .patterns
                .iter()
                .map(|p| Slots::all(p.full.group_info().clone()))
                .collect(),
            // Filled in at a pattern's first name search.
            name_search: self.patterns.iter().map(|_| None).collect(),
            names: NameRing::default(),
            ignores: self
                .filters
                .iter()
                .map(|f| f.ignore.as_ref().map(Regex::create_cache))
                .collect(),
            times: time::TimeMemo::default(),
            stamp: syslog::StampCache::default(),
            sessions: Sessions::default(),
            // Filled in at a pattern's first such search.
            before_search: self.patterns.iter().map(|_| None).collect(),
            host_at: None,
            memos: self
                .patterns
                .iter()
                .map(|_| extract::Memo::default())
                .collect(),
            fail2ban: self
                .fail2ban
                .iter()
                .map(|_| crate::fail2ban::LineState::default())
                .collect(),
        }
    }

    /// The offence on this line, if any. A trailing `\n` or `\r\n` is not part of
    /// the line. `now` only places year-less timestamps (syslog's) in a year.
    pub fn match_line(&self, line: &[u8], now: SystemTime, scratch: &mut Scratch) -> Option<Hit> {
        match self.examine(line, now, scratch) {
            Outcome::Hit(h) | Outcome::Ended { counted: h, .. } => Some(h),
            Outcome::Held(_) | Outcome::Ignored { .. } | Outcome::Miss => None,
        }
    }

    /// The next offence of a session that ended without a line of its own (its
    /// window passed, the table was full, or [`finish`](Self::finish)). Call it
    /// after every line until it returns `None`.
    #[inline]
    pub fn take_deferred(&self, scratch: &mut Scratch) -> Option<Hit> {
        scratch.sessions.take_deferred()
    }

    /// Ends every open session, as at the end of a file: pending addresses
    /// become offences for [`take_deferred`](Self::take_deferred).
    pub fn finish(&self, scratch: &mut Scratch) {
        scratch.sessions.finish();
    }

    /// Like [`match_line`](Self::match_line), but also tells an ignored line from
    /// one nothing matched (for `log2drop test`).
    pub fn examine(&self, line: &[u8], now: SystemTime, scratch: &mut Scratch) -> Outcome {
        let line = strip_newline(line);
        scratch.host_at = None;
        // Once per line: `line_expired` below relies on it.
        scratch.sessions.expire(now);
        let mut ignored = None;
        let mut best: Option<Hit> = None;
        let mut process: Option<&[u8]> = None;
        // The tag's program of the best hit's line, when `process` is a syslog
        // process (its key skips the PAM module search for `prog[pid]`).
        let mut program: &[u8] = b"";
        // The syslog host of the best hit's line, for `<F-MLFID>` keys.
        let mut origin: &[u8] = b"";
        let mut pidless = false;
        // The text the best hit's pattern ran on, and whether anchored.
        let mut hay: (&[u8], bool) = (line, false);
        // A fail2ban line of a `<F-MLFID>` session: its key and facts.
        let mut f2b_session: Option<(u64, LineFacts)> = None;
        if (!self.by_program.is_empty() || !self.by_glob.is_empty() || self.any_program.is_some())
            && let Some(prefix) = syslog::parse_cached(line, &mut scratch.stamp)
        {
            {
                let group = self
                    .by_program
                    .iter()
                    .find(|(p, _)| syslog::same_bytes(p, prefix.program))
                    .map(|(_, g)| *g)
                    .or_else(|| {
                        self.by_glob
                            .iter()
                            .find(|(g, _)| g.matches(prefix.program))
                            .map(|(_, g)| *g)
                    })
                    .or(self.any_program);
                if let Some(g) = group {
                    let message = prefix.text(line);
                    let found = self.search(g, message, scratch, &mut ignored);
                    scratch.place_host(message, line);
                    if let Some(mut hit) = found {
                        let fi = hit.filter.index();
                        let f = &self.filters[fi];
                        // A prefix without a time: the daemon may write its own
                        // after its tag (Dovecot 1.x's `dovecot: TIME Info: `),
                        // read by `datepattern` at the message's start.
                        hit.time = prefix
                            .time
                            .or_else(|| f.date.as_ref().and_then(|d| d.find(message)))
                            .and_then(|t| scratch.times.resolve(&t, fi, &f.zone, now));
                        best = Some(hit);
                        // Without a pid, the program stands for the process
                        // (see `session`): its lines still form sessions,
                        // told apart by the addresses they name.
                        process = prefix.process.or(Some(prefix.program));
                        program = prefix.program;
                        origin = prefix.host;
                        pidless = prefix.process.is_none();
                        hay = (message, true);
                    }
                }
            }
        }
        if let Some(g) = self.plain
            && let Some(mut hit) = {
                let found = self.search(g, line, scratch, &mut ignored);
                scratch.place_host(line, line);
                found
            }
            && best.is_none_or(|b| hit.filter < b.filter)
        {
            let fi = hit.filter.index();
            let f = &self.filters[fi];
            hit.time = f
                .date
                .as_ref()
                .and_then(|d| d.find(line))
                .and_then(|t| scratch.times.resolve(&t, fi, &f.zone, now));
            // A whole-line filter keyed by `<F-MLFID>` that also reads syslog
            // lines (stunnel's): their host keeps two machines' IDs apart.
            origin = if f.keyed {
                syslog::parse(line).map_or(&b""[..], |p| p.host)
            } else {
                b""
            };
            best = Some(hit);
            process = None;
            program = b"";
            pidless = false;
            hay = (line, false);
        }
        if !self.fail2ban.is_empty() {
            f2b_session = self.examine_fail2ban(line, now, scratch, &mut best, &mut ignored);
        }
        match (best, ignored) {
            (Some(h), _) => {
                let f = &self.filters[h.filter.index()];
                let (key, facts) = match f2b_session {
                    Some((key, facts)) => (Some(key), facts),
                    None if f.sessions => {
                        // A regex without `<HOST>` takes the address of its
                        // session.
                        let has_addr = self
                            .pattern_of(&h)
                            .is_none_or(|p| self.patterns[p].host_group.is_some());
                        // A line naming no client, without a pid, could be
                        // any client's: it stands alone.
                        let key = if has_addr || !pidless {
                            self.session_key(&h, (process, program, origin), hay, scratch)
                        } else {
                            None
                        };
                        (
                            key,
                            LineFacts {
                                has_addr,
                                ..LineFacts::PLAIN
                            },
                        )
                    }
                    None => return Outcome::Hit(h),
                };
                // `expire(now)` ran above, when the line came in. The hit is
                // lent and the outcome built here, once.
                match scratch
                    .sessions
                    .line_expired(key, h.role, &h, facts, now, f.window)
                {
                    Counted::Nothing => Outcome::Held(h),
                    // Only a failure or an attempt counts itself.
                    Counted::Own(host) => Outcome::Hit(Hit { host, ..h }),
                    Counted::Other(counted) if matches!(h.role, Role::Failure | Role::Attempt) => {
                        Outcome::Hit(counted)
                    }
                    Counted::Other(counted) => Outcome::Ended { line: h, counted },
                }
            }
            (None, Some((filter, regex))) => Outcome::Ignored { filter, regex },
            (None, None) => Outcome::Miss,
        }
    }

    /// The session of a log2drop filter's line: its `<F-MLFID>` capture on
    /// the line's syslog host (`origin`) where its regex has one (a line whose
    /// match left the group out stands alone), else the syslog program and pid.
    /// Only filters with such a group run a capturing search here.
    fn session_key(
        &self,
        h: &Hit,
        (process, program, origin): (Option<&[u8]>, &[u8], &[u8]),
        (hay, anchored): (&[u8], bool),
        scratch: &mut Scratch,
    ) -> Option<u64> {
        let f = &self.filters[h.filter.index()];
        let keyed = f.keyed.then(|| self.pattern_of(h));
        let Some((p, group)) = keyed
            .flatten()
            .and_then(|p| Some((p, self.patterns[p].session_group?)))
        else {
            return process.map(|p| scratch.sessions.key_tagged(h.filter, origin, p, program));
        };
        let span = self.capture_group(p, group, hay, anchored, scratch)?;
        Some(scratch.sessions.key_on(h.filter, origin, &hay[span]))
    }

    /// The fail2ban filters that come before `best` in priority order. Returns
    /// the session key and facts when the line that became `best` belongs to
    /// a fail2ban multi-line session (`<F-MLFID>`).
    fn examine_fail2ban(
        &self,
        line: &[u8],
        now: SystemTime,
        scratch: &mut Scratch,
        best: &mut Option<Hit>,
        ignored: &mut Option<(FilterId, usize)>,
    ) -> Option<(u64, LineFacts)> {
        use crate::fail2ban::Verdict;
        let (text, unbroken) = crate::fail2ban::filter::line_text(line);
        for (k, (id, m)) in self.fail2ban.iter().enumerate() {
            if best.is_some_and(|b| b.filter < *id) {
                return None;
            }
            let zone = &self.filters[id.index()].zone;
            match m.examine_text(&text, unbroken, zone, now, &mut scratch.fail2ban[k]) {
                Verdict::Fail { addr, regex, time } => {
                    *best = Some(Hit {
                        host: Host::Addr(addr),
                        filter: *id,
                        role: Role::Failure,
                        regex,
                        time,
                    });
                    return None;
                }
                Verdict::FailName { regex, time } => {
                    let name = scratch.names.push(scratch.fail2ban[k].name.as_bytes());
                    *best = Some(Hit {
                        host: Host::Name(name),
                        filter: *id,
                        role: Role::Failure,
                        regex,
                        time,
                    });
                    return None;
                }
                Verdict::Session {
                    regex,
                    addr,
                    time,
                    nofail,
                    gained,
                    forget,
                } => {
                    let role = if gained {
                        Role::Success
                    } else if nofail {
                        Role::Carry
                    } else {
                        Role::Failure
                    };
                    *best = Some(Hit {
                        host: Host::Addr(
                            addr.unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
                        ),
                        filter: *id,
                        role,
                        regex,
                        time,
                    });
                    let key = scratch
                        .sessions
                        .key(*id, b"", scratch.fail2ban[k].mlfid.as_bytes());
                    let facts = LineFacts {
                        has_addr: addr.is_some(),
                        ends: forget,
                        only_flag_ends: true,
                    };
                    return Some((key, facts));
                }
                Verdict::Ignored { regex } | Verdict::NotCounted { regex } => {
                    if ignored.is_none() {
                        *ignored = Some((*id, regex));
                    }
                }
                Verdict::Miss => {}
            }
        }
        None
    }

    /// The first pattern of group `g`, in priority order, that matches `hay`, yields
    /// an address and is not ignored by its filter; failing that, the first that
    /// yields a host name (addresses first: a name is the rare path).
    fn search(
        &self,
        g: usize,
        hay: &[u8],
        scratch: &mut Scratch,
        ignored: &mut Option<(FilterId, usize)>,
    ) -> Option<Hit> {
        let mut named: Option<NameCandidate> = None;
        match &self.groups[g] {
            Group::Anchored {
                by_first_byte,
                on_empty,
            } => {
                let try_one = |p, scratch: &mut Scratch, ignored: &mut _, named: &mut _| {
                    self.try_pattern(p, hay, true, scratch, ignored, named)
                };
                match hay.first() {
                    Some(b) => {
                        for c in by_first_byte[usize::from(*b)].iter() {
                            if c.admits(hay)
                                && let Some(hit) = try_one(c.pattern, scratch, ignored, &mut named)
                            {
                                return Some(hit);
                            }
                        }
                    }
                    None => {
                        for &p in on_empty.iter() {
                            if let Some(hit) = try_one(p, scratch, ignored, &mut named) {
                                return Some(hit);
                            }
                        }
                    }
                }
            }
            Group::Unanchored { set, patterns } => {
                let (cache, hits) = scratch.groups[g].as_mut()?;
                hits.clear();
                set.which_overlapping_matches_with(cache, &Input::new(hay), hits);
                if hits.is_empty() {
                    return None;
                }
                for (k, &p) in patterns.iter().enumerate() {
                    let hit_k = scratch.groups[g].as_ref().is_some_and(|(_, h)| {
                        h.contains(regex_automata::PatternID::new_unchecked(k))
                    });
                    if !hit_k {
                        continue;
                    }
                    if let Some(hit) = self.try_pattern(p, hay, false, scratch, ignored, &mut named)
                    {
                        return Some(hit);
                    }
                }
            }
        }
        let c = named?;
        let name = scratch.names.push(&hay[c.start..c.end]);
        Some(self.patterns[c.pattern].hit(Host::Name(name)))
    }

    /// The address pattern `p` finds in `hay`, if it matches, unless its filter
    /// ignores the line. Without an address, notes in `named` where the pattern
    /// finds a host name (if nothing was noted before).
    fn try_pattern(
        &self,
        p: usize,
        hay: &[u8],
        anchored: bool,
        scratch: &mut Scratch,
        ignored: &mut Option<(FilterId, usize)>,
        named: &mut Option<NameCandidate>,
    ) -> Option<Hit> {
        let pat = &self.patterns[p];
        let Some(host_group) = pat.host_group else {
            return self.try_hostless(p, hay, anchored, scratch, ignored);
        };
        let fast = pat
            .fast
            .as_ref()
            .and_then(|f| f.find_at_with(hay, &mut scratch.memos[p]).ok());
        let addr = match fast {
            Some(Found::Addr(addr, start, group)) => {
                scratch.host_at = Some(HostAt {
                    pattern: p,
                    offset: 0,
                    line_len: 0,
                    addr,
                    start,
                    group,
                });
                Some(addr)
            }
            // The name path runs the same regex with a name at `<HOST>`: it
            // cannot match either.
            Some(Found::Impossible) => return None,
            Some(Found::NoAddr) => None,
            None => self.capture_host(p, host_group, hay, anchored, scratch),
        };
        let Some(addr) = addr else {
            if named.is_none()
                && let Some((start, end)) = self.capture_name(p, hay, anchored, scratch)
                && !self.is_ignored(pat, hay, scratch, ignored)
            {
                *named = Some(NameCandidate {
                    pattern: p,
                    start,
                    end,
                });
            }
            return None;
        };
        self.unless_ignored(pat, Host::Addr(addr), hay, scratch, ignored)
    }

    /// Whether pattern `p`, which has no `<HOST>`, matches `hay`: its hit holds
    /// the unspecified address, and its session supplies the real one.
    fn try_hostless(
        &self,
        p: usize,
        hay: &[u8],
        anchored: bool,
        scratch: &mut Scratch,
        ignored: &mut Option<(FilterId, usize)>,
    ) -> Option<Hit> {
        let pat = &self.patterns[p];
        match &pat.texts {
            Some(texts) if anchored => {
                if !texts.matches(hay) {
                    return None;
                }
            }
            _ => {
                let mode = if anchored {
                    Anchored::Yes
                } else {
                    Anchored::No
                };
                let full = pat.full.get();
                full.search_half_with(
                    lazy_cache(&mut scratch.full[p], full),
                    &Input::new(hay).anchored(mode),
                )?;
            }
        }
        let host = Host::Addr(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED));
        self.unless_ignored(pat, host, hay, scratch, ignored)
    }

    /// The hit of `pat` at `host`, unless its filter ignores `hay`.
    fn unless_ignored(
        &self,
        pat: &Pattern,
        host: Host,
        hay: &[u8],
        scratch: &mut Scratch,
        ignored: &mut Option<(FilterId, usize)>,
    ) -> Option<Hit> {
        if self.is_ignored(pat, hay, scratch, ignored) {
            return None;
        }
        Some(pat.hit(host))
    }

    /// Whether the filter of `pat` ignores `hay` (noting the first such line).
    fn is_ignored(
        &self,
        pat: &Pattern,
        hay: &[u8],
        scratch: &mut Scratch,
        ignored: &mut Option<(FilterId, usize)>,
    ) -> bool {
        let fi = pat.filter.index();
        if let (Some(ignore), Some(cache)) =
            (&self.filters[fi].ignore, scratch.ignores[fi].as_mut())
            && ignore.search_half_with(cache, &Input::new(hay)).is_some()
        {
            if ignored.is_none() {
                *ignored = Some((pat.filter, pat.index));
            }
            return true;
        }
        false
    }

    /// Where pattern `p` finds a host name in `hay`, if its name path matches.
    fn capture_name(
        &self,
        p: usize,
        hay: &[u8],
        anchored: bool,
        scratch: &mut Scratch,
    ) -> Option<(usize, usize)> {
        let path = self.patterns[p].name.as_ref()?;
        if !path.may_match(hay) {
            return None;
        }
        let (regex, group) = path.regex()?;
        let (cache, caps) = lazy_search(&mut scratch.name_search[p], regex);
        let mode = if anchored {
            Anchored::Yes
        } else {
            Anchored::No
        };
        regex.search_captures_with(cache, &Input::new(hay).anchored(mode), caps);
        let span = caps.get_group(group)?;
        addr::is_host_name(&hay[span.range()]).then_some((span.start, span.end))
    }

    /// The capturing search: the regex engine's own `<HOST>` group.
    fn capture_host(
        &self,
        p: usize,
        host_group: usize,
        hay: &[u8],
        anchored: bool,
        scratch: &mut Scratch,
    ) -> Option<IpAddr> {
        let span = self.capture_group(p, host_group, hay, anchored, scratch)?;
        addr::parse_ip(&hay[span])
    }

    /// Where group `group` of pattern `p` matched in `hay`, by the capturing
    /// search.
    fn capture_group(
        &self,
        p: usize,
        group: usize,
        hay: &[u8],
        anchored: bool,
        scratch: &mut Scratch,
    ) -> Option<std::ops::Range<usize>> {
        let mode = if anchored {
            Anchored::Yes
        } else {
            Anchored::No
        };
        let caps = &mut scratch.captures[p];
        let full = self.patterns[p].full.get();
        full.search_captures_with(
            lazy_cache(&mut scratch.full[p], full),
            &Input::new(hay).anchored(mode),
            caps,
        );
        caps.get_group(group).map(|s| s.range())
    }

    /// The named captures (`<F-USER>`, `(?P<user>...)`) of a line that `hit` came
    /// from, as the regex engine's capturing search sees them. Allocates; meant for
    /// reports and `log2drop test`, not the hot path.
    pub fn named_captures(&self, line: &[u8], hit: &Hit) -> Vec<(String, Vec<u8>)> {
        let line = strip_newline(line);
        let Some(pat) = self.pattern_of(hit).map(|p| &self.patterns[p]) else {
            return Vec::new();
        };
        let (hay, mode) = if self.filters[hit.filter.index()].syslog {
            match syslog::parse(line) {
                Some(prefix) => (prefix.text(line), Anchored::Yes),
                None => return Vec::new(),
            }
        } else {
            (line, Anchored::No)
        };
        let re = match (hit.host, &pat.name) {
            (Host::Name(_), Some(path)) => match path.regex() {
                Some((regex, _)) => regex,
                None => return Vec::new(),
            },
            _ => pat.full.get(),
        };
        let mut caps = re.create_captures();
        re.search_captures(&Input::new(hay).anchored(mode), &mut caps);
        let info = re.group_info();
        info.pattern_names(regex_automata::PatternID::ZERO)
            .enumerate()
            .filter_map(|(i, name)| {
                let name = name?;
                if name == pattern::HOST_GROUP {
                    return None;
                }
                let span = caps.get_group(i)?;
                Some((name.to_owned(), hay[span.range()].to_vec()))
            })
            .collect()
    }

    /// Puts the named captures (`<F-USER>`, `(?P<user>...)`) of `line`, whose
    /// offence is `hit`, into `out` (cleared first), bounded ([`capture`]). Call it
    /// only for a line that matched: a pattern without named groups costs
    /// nothing, one with them runs one capturing search with the scratch's slots.
    /// An offence that a session carried over from an earlier line gets the
    /// captures its own pattern finds on this line, usually none.
    pub fn captures_into(&self, line: &[u8], hit: &Hit, scratch: &mut Scratch, out: &mut Captures) {
        out.clear();
        if let Some(k) = self.fail2ban.iter().position(|(id, _)| *id == hit.filter) {
            out.clone_from(&scratch.fail2ban[k].captures);
            return;
        }
        self.regex_captures(line, hit, scratch, |name, raw| out.push(name, raw));
    }

    /// The captures [`captures_into`](Self::captures_into) would keep, handed
    /// to `each` (name, value) in the same order, with no [`Captures`] between:
    /// a caller that only counts or compares them (`log2drop test`) copies
    /// nothing and touches no reference count. A value is raw, not bounded
    /// yet ([`capture::bound_in`] bounds it as `captures_into` would); a
    /// fail2ban filter's come bounded already, which bounding leaves as they
    /// are. At most [`capture::MAX_CAPTURES`] with distinct names, as
    /// `captures_into` keeps them: a pattern keeps no more of its groups, and
    /// a regex's group names are distinct.
    pub fn each_capture(
        &self,
        line: &[u8],
        hit: &Hit,
        scratch: &mut Scratch,
        mut each: impl FnMut(&Arc<str>, &[u8]),
    ) {
        if let Some(k) = self.fail2ban.iter().position(|(id, _)| *id == hit.filter) {
            for c in scratch.fail2ban[k].captures.iter() {
                each(c.name, c.value.as_bytes());
            }
            return;
        }
        self.regex_captures(line, hit, scratch, each);
    }

    /// The named captures of a line that one of this matcher's own patterns
    /// (not a fail2ban filter) matched, raw, in the pattern's order.
    #[inline]
    fn regex_captures(
        &self,
        line: &[u8],
        hit: &Hit,
        scratch: &mut Scratch,
        mut each: impl FnMut(&Arc<str>, &[u8]),
    ) {
        let line = strip_newline(line);
        let Some(p) = self.pattern_of(hit) else {
            return;
        };
        let pat = &self.patterns[p];
        if pat.named.is_empty() {
            return;
        }
        // Where the fast path found this hit's address on this line: the named
        // groups are all before it, so only that text is searched, and the
        // syslog prefix need not be read again.
        if let (Some(before), Some(at)) = (&pat.before_captures, scratch.host_at)
            && at.pattern == p
            && at.line_len == line.len()
            && hit.host == Host::Addr(at.addr)
            && let Some(text) = line.get(at.offset..at.offset + at.start)
        {
            // What the address path settled, else what the plan's walks find.
            let settled = match at.group {
                GroupAt::At(a, b) => Some(Some(a..b)),
                GroupAt::Absent => Some(None),
                GroupAt::Unknown => before
                    .plan
                    .as_ref()
                    .and_then(|plan| plan.span(text).ok().flatten()),
            };
            if let Some(span) = settled {
                if let Some(span) = span {
                    each(&before.groups[0].1, &text[span]);
                }
                return;
            }
            if let Some(regex) = before.regex() {
                let (cache, caps) = lazy_search(&mut scratch.before_search[p], regex);
                let input = Input::new(text).anchored(Anchored::Yes);
                regex.search_captures_with(cache, &input, caps);
                if caps.is_match() {
                    for (i, name) in before.groups.iter() {
                        if let Some(span) = caps.get_group(*i) {
                            each(name, &text[span.range()]);
                        }
                    }
                    return;
                }
            }
        }
        let (hay, mode) = if self.filters[hit.filter.index()].syslog {
            // The line was just examined: its stamp is the cached one.
            match syslog::parse_cached(line, &mut scratch.stamp) {
                Some(prefix) => (prefix.text(line), Anchored::Yes),
                None => return,
            }
        } else {
            (line, Anchored::No)
        };
        let input = Input::new(hay).anchored(mode);
        match (hit.host, pat.name.as_ref().and_then(NamePath::regex)) {
            // A name hit matched the name path, whose groups are numbered
            // apart from the address regex's: look the names up there.
            (Host::Name(_), Some((regex, _))) => {
                let (cache, caps) = lazy_search(&mut scratch.name_search[p], regex);
                regex.search_captures_with(cache, &input, caps);
                let info = regex.group_info();
                for (_, name) in pat.named.iter() {
                    let span = info
                        .to_index(regex_automata::PatternID::ZERO, name)
                        .and_then(|i| caps.get_group(i));
                    if let Some(span) = span {
                        each(name, &hay[span.range()]);
                    }
                }
            }
            _ => {
                let caps = &mut scratch.captures[p];
                let full = pat.full.get();
                full.search_captures_with(lazy_cache(&mut scratch.full[p], full), &input, caps);
                for (i, name) in pat.named.iter() {
                    if let Some(span) = caps.get_group(*i) {
                        each(name, &hay[span.range()]);
                    }
                }
            }
        }
    }

    /// Compiles now every part that is otherwise compiled at its first use.
    #[cfg(test)]
    fn build_now(&self) {
        for pat in &self.patterns {
            pat.full.get();
            if let Some(path) = &pat.name {
                path.regex();
            }
            if let Some(before) = &pat.before_captures {
                before.regex();
                if let Some(plan) = &before.plan {
                    plan.build_now();
                }
            }
            if let Some(fast) = &pat.fast {
                fast.build_now();
            }
        }
    }

    /// The pattern that made `hit`: its filter's patterns are contiguous, in
    /// role order, so this is an addition. `None` for a fail2ban filter's hit
    /// (its regexes are not patterns here).
    fn pattern_of(&self, hit: &Hit) -> Option<usize> {
        let f = self.filters.get(hit.filter.index())?;
        let role = hit.role.index();
        let p = f.role_first[role].checked_add(hit.regex)?;
        (p < f.role_first[role + 1]).then_some(p)
    }

    /// The name of a filter, as given to [`SourceMatcher::build`].
    pub fn filter_name(&self, id: FilterId) -> &str {
        self.filters.get(id.index()).map_or("", |f| &f.name)
    }

    /// How many filters this matcher runs.
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }
}

/// The dispatch table of an anchored group: for each first byte, the patterns
/// (in priority order) whose matches can start with it.
fn first_byte_group<'a>(members: &[usize], literals: impl Fn(usize) -> &'a Literals) -> Group {
    let mut by_first_byte: Vec<Vec<Candidate>> = vec![Vec::new(); 256];
    let mut on_empty = Vec::new();
    for &p in members {
        let lits = literals(p);
        let tails: Box<[Box<[u8]>]> = lits
            .tails
            .iter()
            .flatten()
            .map(|t| t.as_slice().into())
            .collect();
        match &lits.heads {
            Some(heads) => {
                // Per first byte, what all the heads starting with it start
                // with.
                let mut common: Vec<Option<&[u8]>> = vec![None; 256];
                for h in heads {
                    let slot = &mut common[usize::from(h[0])];
                    *slot = Some(slot.map_or(h, |c| shared_prefix(c, h)));
                }
                for (b, head) in common.into_iter().enumerate() {
                    if let Some(head) = head {
                        by_first_byte[b].push(Candidate {
                            pattern: p,
                            head: head.into(),
                            tails: tails.clone(),
                        });
                    }
                }
            }
            None => {
                for list in &mut by_first_byte {
                    list.push(Candidate {
                        pattern: p,
                        head: Box::default(),
                        tails: tails.clone(),
                    });
                }
                on_empty.push(p);
            }
        }
    }
    Group::Anchored {
        by_first_byte: by_first_byte
            .into_iter()
            .map(Vec::into_boxed_slice)
            .collect(),
        on_empty: on_empty.into_boxed_slice(),
    }
}

/// Most texts a [`Candidate`] compares the text end with.
const MAX_TAILS: usize = 4;

/// `tails` cut down to at most [`MAX_TAILS`] (a text that ends with a tail
/// ends with every shorter cut of it, so the check stays sound): tails that
/// differ only in their first byte lose it, so `\d: x` (ten tails) becomes
/// `: x`; failing that, the longest lose theirs. `None` when they cannot be
/// cut that far.
fn few_tails(mut tails: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
    loop {
        tails.sort_unstable();
        tails.dedup();
        // Ending with a longer tail that ends with a shorter one is ending
        // with the shorter: the longer one adds nothing.
        let all = tails.clone();
        tails.retain(|t| !all.iter().any(|o| o.len() < t.len() && t.ends_with(o)));
        if tails.len() <= MAX_TAILS {
            return Some(tails);
        }
        let rest = |t: &Vec<u8>| t.get(1..).filter(|r| !r.is_empty()).map(<[u8]>::to_vec);
        let shared: Vec<bool> = tails
            .iter()
            .enumerate()
            .map(|(i, t)| {
                rest(t).is_some_and(|r| {
                    tails
                        .iter()
                        .enumerate()
                        .any(|(j, o)| j != i && rest(o).as_ref() == Some(&r))
                })
            })
            .collect();
        if shared.contains(&true) {
            for (t, cut) in tails.iter_mut().zip(shared) {
                if cut {
                    t.remove(0);
                }
            }
            continue;
        }
        let longest = tails.iter().map(Vec::len).max()?;
        if longest <= 1 {
            return None;
        }
        for t in tails.iter_mut().filter(|t| t.len() == longest) {
            t.remove(0);
        }
    }
}

/// The longest text all of `texts` start with; `None` if there are none.
#[cfg(test)]
fn common_prefix<'a>(mut texts: impl Iterator<Item = &'a Vec<u8>>) -> Option<&'a [u8]> {
    let first: &[u8] = texts.next()?;
    Some(texts.fold(first, |common, t| shared_prefix(common, t)))
}

/// The longest text both `a` and `b` start with.
fn shared_prefix<'a>(a: &'a [u8], b: &[u8]) -> &'a [u8] {
    &a[..a.iter().zip(b).take_while(|(x, y)| x == y).count()]
}

/// What a pattern's matches start and end with, as far as the regex parser's
/// literal extraction finds out.
#[derive(Debug, Default, PartialEq, Eq)]
struct Literals {
    /// Every match starts with one of these, none of them empty; `None`
    /// when not known or the pattern may match the empty string.
    heads: Option<Vec<Vec<u8>>>,
    /// Every match ends at the text end with one of these, none of them
    /// empty; `None` when not known (or the pattern need not end there).
    tails: Option<Vec<Vec<u8>>>,
}

impl Literals {
    fn of(pattern: &str) -> Literals {
        match regex_automata::util::syntax::parse_with(pattern, &pattern::syntax_config()) {
            Ok(hir) => Literals::of_hir(&hir),
            Err(_) => Literals::default(),
        }
    }

    /// [`Literals::of`] a pattern as the parser read it.
    fn of_hir(hir: &regex_syntax::hir::Hir) -> Literals {
        use regex_syntax::hir::literal::{ExtractKind, Extractor};
        use regex_syntax::hir::{HirKind, Look};
        let extract = |kind| {
            let seq = Extractor::new().kind(kind).extract(hir);
            let lits: Vec<Vec<u8>> = seq
                .literals()?
                .iter()
                .map(|l| l.as_bytes().to_vec())
                .collect();
            (!lits.iter().any(Vec::is_empty)).then_some(lits)
        };
        // `$` without `(?m)` is the end of the text: the match's last bytes
        // are the text's.
        let ends_at_end = matches!(
            hir.kind(),
            HirKind::Concat(subs) if matches!(subs.last().map(|h| h.kind()), Some(HirKind::Look(Look::End)))
        );
        Literals {
            heads: extract(ExtractKind::Prefix),
            tails: if ends_at_end {
                extract(ExtractKind::Suffix).and_then(few_tails)
            } else {
                None
            },
        }
    }
}

/// A pattern's named groups in the regex of its text before `<HOST>`.
#[derive(Debug)]
struct BeforeCaptures {
    /// `\A(?:A)\z`.
    text: Box<str>,
    /// Its regex, compiled for the first line whose groups the address path
    /// and `plan` leave unsettled (`None` inside if it does not compile).
    regex: OnceLock<Option<Regex>>,
    /// With one named group, the DFA walks that find it without `regex`
    /// where they can.
    plan: Option<CapturePlan>,
    /// Group index in `regex`, and name, for each of the pattern's named
    /// groups.
    groups: Box<[(usize, Arc<str>)]>,
}

impl BeforeCaptures {
    /// `None` when some group of `named` is not in `before`, or it does not
    /// parse, or it looks at the text around it (other than `^`): cut at the
    /// address, the text would read differently there.
    fn build(
        before: &str,
        hir: &regex_syntax::hir::Hir,
        named: &[(usize, Arc<str>)],
    ) -> Option<BeforeCaptures> {
        use regex_syntax::hir::Look;
        if named.is_empty() {
            return None;
        }
        if !hir.properties().look_set().remove(Look::Start).is_empty() {
            return None;
        }
        // `\A(?:A)\z` numbers its groups as `A` does.
        let groups = named
            .iter()
            .map(|(_, name)| Some((capture_index(hir, name)?, Arc::clone(name))))
            .collect::<Option<Box<[_]>>>()?;
        let plan = match &*groups {
            [(_, name)] => CapturePlan::of_hir(hir, name),
            _ => None,
        };
        Some(BeforeCaptures {
            text: format!(r"\A(?:{before})\z").into(),
            regex: OnceLock::new(),
            plan,
            groups,
        })
    }

    /// The regex (compiled at the first call), if it compiles.
    fn regex(&self) -> Option<&Regex> {
        self.regex
            .get_or_init(|| builder().build(&self.text).ok())
            .as_ref()
    }
}

/// The index of the group named `name` in `hir`, as the regex engine numbers
/// groups (the whole match is 0, then each group by its opening parenthesis).
fn capture_index(hir: &regex_syntax::hir::Hir, name: &str) -> Option<usize> {
    use regex_syntax::hir::HirKind;
    match hir.kind() {
        HirKind::Capture(c) if c.name.as_deref() == Some(name) => usize::try_from(c.index).ok(),
        HirKind::Capture(c) => capture_index(&c.sub, name),
        HirKind::Repetition(r) => capture_index(&r.sub, name),
        HirKind::Concat(v) | HirKind::Alternation(v) => {
            v.iter().find_map(|h| capture_index(h, name))
        }
        _ => None,
    }
}

/// A pattern's capturing search state for a regex built on first use
/// (its name path, its [`BeforeCaptures`]) in its scratch slot, made at its
/// first search.
fn lazy_search<'a>(
    slot: &'a mut Option<(meta::Cache, Slots)>,
    regex: &Regex,
) -> (&'a mut meta::Cache, &'a mut Slots) {
    let (cache, caps) = slot.get_or_insert_with(|| (regex.create_cache(), regex.create_captures()));
    (cache, caps)
}

/// Where a pattern found a host name, in the searched text.
#[derive(Debug, Clone, Copy)]
struct NameCandidate {
    pattern: usize,
    start: usize,
    end: usize,
}

/// The name path of one regex: the regex with `<HOST>` matching names only,
/// behind the gate its split allows. `None` if it cannot be written; whether
/// it compiles is found out at its first use.
fn name_path(text: &str, split: Option<&pattern::Split>, anchored: bool) -> Option<NamePath> {
    let expanded = pattern::expand_with(text, HostRule::Required, pattern::NAME_REGEX).ok()?;
    let suffix = split.and_then(|s| s.before_suffix.as_deref());
    let at_start = split.is_some_and(|s| s.before_empty && (anchored || s.before_anchored));
    Some(NamePath::new(expanded, suffix, at_start))
}

/// Inlined: `each_capture`, made in the caller's crate, calls it per offence.
#[inline]
fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests;
