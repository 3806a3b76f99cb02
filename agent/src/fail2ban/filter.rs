//! A fail2ban filter file, read and compiled into something that examines lines
//! the way fail2ban does: cut the date out, run `prefregex` and keep its
//! `<F-CONTENT>`, drop lines an `ignoreregex` matches, take the first `failregex`
//! that matches, and read the address from its `ip4`/`ip6`/`dns` groups.
//!
//! A line whose match captured `<F-MLFID>` belongs to a session: the matcher
//! reports it as [`Verdict::Session`] with its `<F-NOFAIL>`, `<F-MLFGAINED>`
//! and `<F-MLFFORGET>` flags and the id in [`LineState::mlfid`], and the
//! source's one session table ([`crate::filter::session`]) decides what counts,
//! as fail2ban's multi-line cache does. Without an id, `<F-NOFAIL>` lines and
//! lines with no address are never offences.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jiff::tz::TimeZone;

use super::date::{DateFinder, DateState};
use super::ini::{Ini, IniError};
use super::regex::{
    AsciiDfa, ContentSplit, F2bRegex, Groups, Known, MACHINERY, NoAnswer, OwnCache, Split,
    resolve_tags,
};

/// Why a fail2ban filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file (or an include) cannot be read or parsed.
    #[error(transparent)]
    Ini(#[from] IniError),
    /// No `[Definition]` with a `failregex`.
    #[error("{path}: no [Definition] failregex")]
    NoFailregex {
        /// The filter file.
        path: PathBuf,
    },
    /// A regex neither engine runs.
    #[error("{place}: {key} #{index}: {message}")]
    Regex {
        /// `file:line` of the option.
        place: String,
        /// `failregex`, `prefregex` or `ignoreregex`.
        key: &'static str,
        /// 1-based position in that option's lines.
        index: usize,
        /// Why.
        message: String,
    },
    /// A `datepattern`, `maxlines` or tag problem.
    #[error("{place}: {key}: {message}")]
    Setting {
        /// `file:line` of the option, or the file.
        place: String,
        /// The option.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// One regex line with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexLine {
    /// The regex after `%(x)s` and `<x>` substitution (fail2ban tags kept).
    pub text: String,
    /// `file:line` of the option that holds it.
    pub place: String,
    /// 1-based position among the option's lines.
    pub index: usize,
}

/// A filter file's settings after includes and substitution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    /// The filter file.
    pub path: PathBuf,
    /// Every file read, in merge order.
    pub files: Vec<PathBuf>,
    /// `prefregex`.
    pub prefregex: Option<RegexLine>,
    /// `failregex` lines.
    pub failregex: Vec<RegexLine>,
    /// `ignoreregex` lines.
    pub ignoreregex: Vec<RegexLine>,
    /// `datepattern`.
    pub datepattern: Option<String>,
    /// `maxlines` (1 when unset).
    pub maxlines: usize,
    /// `journalmatch`, as written.
    pub journalmatch: Option<String>,
    /// `logtype = journal`: lines come from the journal, whose entry carries
    /// the time. fail2ban's systemd backend then runs no date detection on the
    /// message, so a date inside it stays for the regexes to match; log2drop
    /// cuts only the time its journal source writes at the line start.
    pub journal: bool,
}

/// The options whose final values a filter definition consists of.
const DEF_KEYS: &[&str] = &[
    "prefregex",
    "failregex",
    "ignoreregex",
    "datepattern",
    "maxlines",
    "journalmatch",
];

/// Tags of the regex language itself, never option names.
fn is_regex_tag(tag: &str) -> bool {
    matches!(
        tag,
        "HOST" | "ADDR" | "IP4" | "IP6" | "DNS" | "CIDR" | "SUBNET" | "SKIPLINES"
    ) || tag.starts_with("F-")
        || tag.starts_with("/F-")
}

impl Definition {
    /// Reads the filter file at `path` (with includes and `.local`), with the
    /// jail's `options` (`mode`, ...) taking precedence as in fail2ban.
    pub fn read(path: &Path, options: &BTreeMap<String, String>) -> Result<Definition, LoadError> {
        let ini = Ini::load(path)?;
        Self::from_ini(path, &ini, options)
    }

    /// The same from an already read file set.
    pub fn from_ini(
        path: &Path,
        ini: &Ini,
        options: &BTreeMap<String, String>,
    ) -> Result<Definition, LoadError> {
        let vars: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        // Tag values: jail options first, then [Init], then the definition keys.
        let mut tags: BTreeMap<String, String> = BTreeMap::new();
        for key in DEF_KEYS {
            if let Some(v) = ini.get("Definition", key, &vars)? {
                tags.insert((*key).to_owned(), v);
            }
        }
        if let Some(init) = ini.own("Init") {
            for k in init.keys() {
                if let Some(v) = ini.get("Init", k, &vars)? {
                    tags.insert(format!("known/{k}"), v.clone());
                    tags.insert(k.clone(), v);
                }
            }
        }
        for (k, v) in &vars {
            tags.insert(k.clone(), v.clone());
        }
        let mut fallback_cache: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut resolve = |text: &str, key: &str| -> Result<String, LoadError> {
            substitute(text, &tags, &mut |tag| {
                if is_regex_tag(tag) {
                    return Ok(None);
                }
                if let Some(v) = fallback_cache.get(tag) {
                    return Ok(v.clone());
                }
                // Option names are lower-case; section names keep their case.
                let key = match tag.rsplit_once('/') {
                    Some((sec, opt)) => format!("{sec}/{}", opt.to_ascii_lowercase()),
                    None => tag.to_ascii_lowercase(),
                };
                let v = ini.get("Definition", &key, &vars)?;
                fallback_cache.insert(tag.to_owned(), v.clone());
                Ok(v)
            })
            .map_err(|e| match e {
                Subst::Ini(e) => LoadError::Ini(e),
                Subst::Loop(tag) => LoadError::Setting {
                    place: place(ini, path, key),
                    key: DEF_KEYS
                        .iter()
                        .find(|k| **k == key)
                        .copied()
                        .unwrap_or("tag"),
                    message: format!("<{tag}> refers to itself"),
                },
            })
        };
        let mut single_raw = |key: &'static str| -> Result<Option<String>, LoadError> {
            match tags.get(key).cloned() {
                Some(raw) => resolve(&raw, key).map(Some),
                None => Ok(None),
            }
        };
        let mut lines_of = |key: &'static str| -> Result<Vec<RegexLine>, LoadError> {
            let Some(text) = single_raw(key)? else {
                return Ok(Vec::new());
            };
            let at = place(ini, path, key);
            Ok(text
                .lines()
                .map(str::trim)
                .enumerate()
                .filter(|(_, l)| !l.is_empty())
                .map(|(i, l)| RegexLine {
                    text: l.to_owned(),
                    place: at.clone(),
                    index: i + 1,
                })
                .collect())
        };
        let failregex = lines_of("failregex")?;
        let ignoreregex = lines_of("ignoreregex")?;
        let prefregex = lines_of("prefregex")?.into_iter().next();
        if failregex.is_empty() {
            return Err(LoadError::NoFailregex {
                path: path.to_owned(),
            });
        }
        let mut single = |key: &'static str| -> Result<Option<String>, LoadError> {
            Ok(single_raw(key)?.filter(|v| !v.trim().is_empty()))
        };
        let datepattern = single("datepattern")?;
        let journalmatch = single("journalmatch")?;
        let journal = single("logtype")?.is_some_and(|t| t.trim().eq_ignore_ascii_case("journal"));
        let maxlines = match single("maxlines")? {
            Some(m) => m.trim().parse().map_err(|_| LoadError::Setting {
                place: place(ini, path, "maxlines"),
                key: "maxlines",
                message: format!("{m:?} is not a number"),
            })?,
            None => 1,
        };
        Ok(Definition {
            path: path.to_owned(),
            files: ini.files.clone(),
            prefregex,
            failregex,
            ignoreregex,
            datepattern,
            maxlines,
            journalmatch,
            journal,
        })
    }
}

fn place(ini: &Ini, path: &Path, key: &str) -> String {
    ini.place("Definition", key).map_or_else(
        || path.display().to_string(),
        |(p, l)| format!("{}:{l}", p.display()),
    )
}

enum Subst {
    Ini(IniError),
    Loop(String),
}

impl From<IniError> for Subst {
    fn from(e: IniError) -> Self {
        Subst::Ini(e)
    }
}

/// fail2ban's recursive `<tag>` substitution: the innermost `<name>` (no spaces
/// or angle brackets inside) is replaced first, so `<mdre-<mode>>` works; tags
/// that name nothing stay.
fn substitute(
    text: &str,
    tags: &BTreeMap<String, String>,
    fallback: &mut dyn FnMut(&str) -> Result<Option<String>, IniError>,
) -> Result<String, Subst> {
    let mut value = text.to_owned();
    let mut rounds = 0;
    let mut from = 0;
    loop {
        let Some((s, e)) = next_tag(&value, from) else {
            return Ok(value);
        };
        let tag = value[s + 1..e].to_owned();
        let repl = match tags.get(&tag) {
            Some(v) => Some(v.clone()),
            None => fallback(&tag)?,
        };
        match repl {
            Some(r) => {
                rounds += 1;
                if rounds > 1000 || r.contains(&format!("<{tag}>")) {
                    return Err(Subst::Loop(tag));
                }
                value = value.replace(&format!("<{tag}>"), &r);
                from = 0;
            }
            None => from = e + 1,
        }
    }
}

fn next_tag(s: &str, from: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let mut start = None;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match c {
            b'<' => start = Some(i),
            b'>' => {
                if let Some(st) = start
                    && i > st + 1
                {
                    return Some((st, i));
                }
                start = None;
            }
            b' ' => start = None,
            _ => {}
        }
    }
    None
}

/// `h.trim_matches(['[', ']'])` by bytes: a char set decodes each char and
/// tests it against the set (half the cost of reading a dotted quad); both
/// are ASCII, so bytes tell, and the cuts fall on char boundaries.
fn trim_brackets(h: &str) -> &str {
    let bracket = |b: &u8| *b == b'[' || *b == b']';
    let b = h.as_bytes();
    let start = b.iter().position(|c| !bracket(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !bracket(c)).map_or(start, |e| e + 1);
    &h[start..end]
}

/// The address in a host group (`<HOST>`'s brackets taken off). A dotted quad
/// with leading zeros (`192.030.0.6`, as some devices pad their logs) is read
/// in decimal, as it was written: fail2ban reports the text as it is, and its
/// DNS fallback (getaddrinfo) would read `030` as octal 24 — an address the
/// log never meant.
fn parse_host(h: &str) -> Option<IpAddr> {
    let h = trim_brackets(h);
    crate::addr::parse_ip(h.as_bytes()).or_else(|| {
        let mut octets = [0u8; 4];
        let mut parts = h.split('.');
        for o in &mut octets {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *o = p.parse().ok()?;
        }
        parts.next().is_none().then(|| IpAddr::from(octets))
    })
}

/// Per regex: what its groups say about the line.
#[derive(Debug)]
struct Fail {
    re: F2bRegex,
    /// It has a group of the multi-line tags (`<F-NOFAIL>`, `<F-MLFID>`...),
    /// so its matches are looked at for them.
    tagged: bool,
    named: Named,
}

/// The named groups of a regex that a failure line's captures and user
/// come from, found by index once: reading them by name on each failure
/// (every named group's name compared with fail2ban's machinery, an
/// iterator chain over all groups, a fresh shared name per capture) cost
/// more than the rest of a matched line's bookkeeping.
#[derive(Debug, Default)]
struct Named {
    /// The groups carried as captures (named, not fail2ban's machinery),
    /// in group order, with their names ready to share.
    carried: Box<[(usize, std::sync::Arc<str>)]>,
    /// The `alt_user` groups, in group order.
    alt_users: Box<[usize]>,
}

impl Named {
    fn new(names: &[Option<Box<str>>]) -> Named {
        let named = || {
            names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| Some((i, n.as_deref()?)))
        };
        Named {
            carried: named()
                .filter(|(_, n)| !MACHINERY.contains(n))
                .map(|(i, n)| (i, std::sync::Arc::from(n)))
                .collect(),
            alt_users: named()
                .filter(|(_, n)| is_alt_user(n))
                .map(|(i, _)| i)
                .collect(),
        }
    }

    /// `g.named()` but fail2ban's machinery, the groups a failure carries.
    fn carried<'a, 'h>(
        &'a self,
        g: &'a Groups<'h>,
    ) -> impl Iterator<Item = (&'a std::sync::Arc<str>, &'h str)> + 'a {
        self.carried
            .iter()
            .filter_map(|(i, n)| Some((n, g.at(*i)?)))
    }

    /// The first `alt_user` group of `g` that took a non-empty text.
    fn alt_user<'h>(&self, g: &Groups<'h>) -> Option<&'h str> {
        self.alt_users
            .iter()
            .find_map(|&i| g.at(i).filter(|v| !v.is_empty()))
    }
}

/// The groups fail2ban's multi-line handling reads.
const SESSION_GROUPS: [&str; 4] = ["nofail", "mlfgained", "mlfforget", "mlfid"];
/// The same, by index.
const SESSION_KNOWN: [Known; 4] = [
    Known::Nofail,
    Known::Mlfgained,
    Known::Mlfforget,
    Known::Mlfid,
];

/// The failregexes whose every match starts the content (`^`), on the
/// fast engine with an ASCII form, searched by one DFA: fail2ban tries
/// them one after the other, and an anchored leftmost-first search of them
/// all, in their order, finds the match of the first that matches (a
/// pattern's threads outrank every later one's), with the same end. One
/// walk over the content then replaces a search per regex, and the
/// capture step starts from its match.
#[derive(Debug)]
struct FailScan {
    dfa: AsciiDfa,
    /// Per DFA pattern: its failregex and that regex's own pattern index
    /// ([`F2bRegex::ascii_anchored_patterns`]).
    owner: Vec<(usize, usize)>,
    /// Per failregex: whether the DFA searches it.
    searched: Vec<bool>,
}

impl FailScan {
    fn new(fail: &[Fail]) -> Option<FailScan> {
        let (mut hirs, mut owner, mut searched) = (Vec::new(), Vec::new(), Vec::new());
        for (i, f) in fail.iter().enumerate() {
            let patterns = f.re.ascii_anchored_patterns();
            searched.push(patterns.is_some());
            for (p, hir) in patterns.into_iter().flatten().enumerate() {
                hirs.push(hir);
                owner.push((i, p));
            }
        }
        if hirs.is_empty() {
            return None;
        }
        Some(FailScan {
            dfa: AsciiDfa::new(&hirs)?,
            owner,
            searched,
        })
    }

    /// The first searched failregex that matches `content`: its index,
    /// its pattern and the match's end.
    #[inline]
    fn find(
        &self,
        content: &str,
        own: &mut OwnCache,
    ) -> Result<Option<(usize, usize, usize)>, NoAnswer> {
        Ok(self.dfa.find_anchored_in(content, 0, own)?.map(|(p, end)| {
            let (i, pid) = self.owner[p];
            (i, pid, end)
        }))
    }
}

/// A compiled fail2ban filter.
#[derive(Debug)]
pub struct Matcher {
    date: Option<DateFinder>,
    pref: Option<F2bRegex>,
    /// The prefregex's groups that failures read.
    pref_named: Named,
    /// The prefregex's content found by a DFA run, where its shape allows.
    split: Option<ContentSplit>,
    fail: Vec<Fail>,
    /// Per first byte of the content, the failregexes (in order) that can
    /// match content starting with it; most lines try one or two.
    by_first_byte: Vec<Vec<usize>>,
    /// The failregexes that can match empty content.
    on_empty: Vec<usize>,
    /// One DFA search for the failregexes it can run, built on the first
    /// line that needs it.
    fail_scan: std::sync::OnceLock<Option<FailScan>>,
    ignore: Vec<F2bRegex>,
    /// How many regexes need the backtracking engine.
    pub fancy: usize,
    /// `maxlines` above 1 (multi-line buffers are not run).
    pub maxlines: usize,
}

/// What a line is to a fail2ban filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An offence by `addr`, seen by failregex `regex` (0-based).
    Fail {
        /// The address.
        addr: IpAddr,
        /// The failregex.
        regex: usize,
        /// The line's time, if a date was found.
        time: Option<SystemTime>,
    },
    /// An offence by the host name left in [`LineState::name`] (`<HOST>` took
    /// a name, not an address): whoever runs the filter resolves it as its
    /// `use_dns` says, as fail2ban's `usedns` does.
    FailName {
        /// The failregex.
        regex: usize,
        /// The line's time, if a date was found.
        time: Option<SystemTime>,
    },
    /// A failregex matched on a line of the multi-line session whose id
    /// (`<F-MLFID>`) is left in [`LineState::mlfid`]: the session decides.
    Session {
        /// The failregex.
        regex: usize,
        /// The line's address, if it names one.
        addr: Option<IpAddr>,
        /// The line's time, if a date was found.
        time: Option<SystemTime>,
        /// `<F-NOFAIL>`: the line carries data (the address), not a failure.
        nofail: bool,
        /// `<F-MLFGAINED>`: access was gained; the session's failures waiting
        /// for an address are forgotten.
        gained: bool,
        /// `<F-MLFFORGET>`: the session ends after this line.
        forget: bool,
    },
    /// A failregex matched but the line is not an offence by itself
    /// (`<F-NOFAIL>`, or no address on this line, and no session).
    NotCounted {
        /// The failregex.
        regex: usize,
    },
    /// A failregex matched and an ignoreregex discarded the line.
    Ignored {
        /// The failregex.
        regex: usize,
    },
    /// Nothing matched.
    Miss,
}

/// `alt_user` or `alt_user_N`: fail2ban's alternative names for `user`, used
/// when `user` is empty.
fn is_alt_user(name: &str) -> bool {
    name.strip_prefix("alt_user").is_some_and(|rest| {
        rest.is_empty()
            || rest
                .strip_prefix('_')
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The user names each open `<F-MLFID>` session has named, as far as fail2ban
/// looks at them: one, or several. Bounded: fail2ban keeps a session 5 minutes
/// (and at most 100 of them); an attacker opening connections must not grow it.
#[derive(Debug, Default)]
struct SessionUsers {
    /// Session id -> (its first user, whether another one followed, last line's time).
    /// Looked up on every session line: a fast hash, seeded per table.
    open: std::collections::HashMap<
        String,
        (Option<String>, bool, SystemTime),
        foldhash::fast::RandomState,
    >,
}

impl SessionUsers {
    /// How long a session's users are remembered after its last line.
    const KEEP: std::time::Duration = std::time::Duration::from_secs(5 * 60);
    /// Most sessions remembered at once.
    const MAX: usize = 10_000;

    /// Notes that session `id` named `user` at `at`; says whether it has now
    /// named several. A forgetting line ends the session after it counts.
    fn note(&mut self, id: &str, user: Option<&str>, forget: bool, at: SystemTime) -> bool {
        let fresh = |seen: SystemTime| at.duration_since(seen).map_or(true, |d| d <= Self::KEEP);
        if forget {
            // The session ends here: one look-up that takes it out, and the
            // answer the update would have given.
            return match self.open.remove(id) {
                Some((first, several, seen)) if fresh(seen) => {
                    several || matches!((first, user), (Some(f), Some(u)) if f != u)
                }
                _ => false,
            };
        }
        match self.open.get_mut(id) {
            Some(entry) if fresh(entry.2) => {
                entry.2 = at;
                if let Some(u) = user {
                    match &entry.0 {
                        Some(first) if first != u => entry.1 = true,
                        Some(_) => {}
                        None => entry.0 = Some(u.to_owned()),
                    }
                }
                entry.1
            }
            _ => {
                if self.open.len() >= Self::MAX {
                    self.open.retain(|_, e| fresh(e.2));
                    if self.open.len() >= Self::MAX {
                        self.open.clear();
                    }
                }
                self.open
                    .insert(id.to_owned(), (user.map(str::to_owned), false, at));
                false
            }
        }
    }
}

/// What a fail2ban filter keeps between lines of one source: the line with its
/// date cut out, and with `maxlines` above 1 the last lines, searched together.
#[derive(Debug, Default)]
pub struct LineState {
    /// The `<F-MLFID>` of the last [`Verdict::Session`] line.
    pub mlfid: String,
    /// The host name of the last [`Verdict::FailName`] line.
    pub name: String,
    /// The user names of the open sessions.
    users: SessionUsers,
    cut: String,
    lines: std::collections::VecDeque<String>,
    joined: String,
    /// Where the last dates were found, and the last parse.
    date: DateState,
    /// The prefregex split's search on the last line, resumed on the next.
    split: crate::fail2ban::regex::Resume,
    /// The failregexes' one search's cache.
    scan: OwnCache,
    /// The named captures (`<F-USER>`...) of the last line that was a failure,
    /// bounded; filled only for failures.
    pub(crate) captures: crate::filter::Captures,
}

/// A log line's bytes as the matcher's text, and whether they hold no newline
/// (for [`Matcher::examine_text`]). Log lines are ASCII nearly always: one
/// pass a word at a time finds both answers, where `from_utf8` and the
/// split's newline search each walked the line.
pub fn line_text(line: &[u8]) -> (std::borrow::Cow<'_, str>, bool) {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    const NEWLINES: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut high = 0;
    let mut newline = 0;
    let mut words = line.chunks_exact(8);
    let mut look = |w: u64| {
        high |= w;
        // A zero byte of `x` (a newline of `w`) sets its high bit here
        // (bytes above a zero may too; any one set tells the answer).
        let x = w ^ NEWLINES;
        newline |= x.wrapping_sub(ONES) & !x;
    };
    for w in &mut words {
        look(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])));
    }
    // The tail: the line's last word, its bytes read again where it overlaps
    // the words above (a copy into a padded word costs a `memcpy` call).
    match line.last_chunk::<8>() {
        Some(last) => look(u64::from_ne_bytes(*last)),
        None => {
            for &b in line {
                look(u64::from(b));
            }
        }
    }
    if high & HIGH == 0 {
        // SAFETY: no byte has its high bit set, so all are ASCII, which is
        // valid UTF-8.
        let text = unsafe { std::str::from_utf8_unchecked(line) };
        return (std::borrow::Cow::Borrowed(text), newline & HIGH == 0);
    }
    let text = String::from_utf8_lossy(line);
    let unbroken = memchr::memchr(b'\n', text.as_bytes()).is_none();
    (text, unbroken)
}

fn compile(line: &RegexLine, key: &'static str, multi: bool) -> Result<F2bRegex, LoadError> {
    F2bRegex::new(&python_text(line, multi)).map_err(|e| LoadError::Regex {
        place: line.place.clone(),
        key,
        index: line.index,
        message: e.message,
    })
}

/// The regex text (Python syntax) a line compiles from.
fn python_text(line: &RegexLine, multi: bool) -> String {
    let text = resolve_tags(&line.text, true);
    if multi { format!("(?m){text}") } else { text }
}

/// Failregex candidates by the content's first byte: a regex whose matches
/// all start with known literals is listed under their first bytes only.
fn dispatch(fail: &[Fail]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut by_first_byte = vec![Vec::new(); 256];
    let mut on_empty = Vec::new();
    for (i, f) in fail.iter().enumerate() {
        match f.re.first_bytes() {
            Some(seen) => {
                for (b, list) in by_first_byte.iter_mut().enumerate() {
                    if seen[b] {
                        list.push(i);
                    }
                }
            }
            None => {
                for list in &mut by_first_byte {
                    list.push(i);
                }
                on_empty.push(i);
            }
        }
    }
    (by_first_byte, on_empty)
}

impl Matcher {
    /// Compiles a definition. Every regex either runs on one of the engines or
    /// the whole filter is refused with that regex's file and line.
    pub fn build(def: &Definition) -> Result<Matcher, LoadError> {
        let datepattern = if def.journal {
            // The journal source's `TIME IDENTIFIER[PID]: MESSAGE`: its TIME only.
            Some("{^LN-BEG}ISO8601")
        } else {
            def.datepattern.as_deref()
        };
        let date = DateFinder::new(datepattern).map_err(|m| LoadError::Setting {
            place: def.path.display().to_string(),
            key: "datepattern",
            message: m,
        })?;
        let multi = def.maxlines > 1;
        let pref = def
            .prefregex
            .as_ref()
            .map(|l| compile(l, "prefregex", multi))
            .transpose()?;
        let mut fail = Vec::new();
        for l in &def.failregex {
            let re = compile(l, "failregex", multi)?;
            let tagged = SESSION_GROUPS.iter().any(|g| re.has_group(g));
            let named = Named::new(re.group_names());
            fail.push(Fail { re, tagged, named });
        }
        let split = def
            .prefregex
            .as_ref()
            .zip(pref.as_ref())
            .and_then(|(l, full)| ContentSplit::new(&python_text(l, multi), full));
        let (by_first_byte, on_empty) = dispatch(&fail);
        let ignore = def
            .ignoreregex
            .iter()
            .map(|l| compile(l, "ignoreregex", multi))
            .collect::<Result<Vec<_>, _>>()?;
        let fancy = usize::from(pref.as_ref().is_some_and(F2bRegex::is_fancy))
            + fail.iter().filter(|f| f.re.is_fancy()).count()
            + ignore.iter().filter(|r| r.is_fancy()).count();
        Ok(Matcher {
            date,
            pref_named: pref
                .as_ref()
                .map(|p| Named::new(p.group_names()))
                .unwrap_or_default(),
            pref,
            split,
            fail,
            by_first_byte,
            on_empty,
            fail_scan: std::sync::OnceLock::new(),
            ignore,
            fancy,
            maxlines: def.maxlines,
        })
    }

    /// Examines one line (without its newline). `state` is what the caller keeps
    /// between the lines of one source.
    pub fn examine(
        &self,
        line: &str,
        zone: &TimeZone,
        now: SystemTime,
        state: &mut LineState,
    ) -> Verdict {
        self.examine_text(line, false, zone, now, state)
    }

    /// As [`Matcher::examine`], told by `unbroken` that `line` holds no newline
    /// (its caller's reading of the bytes, [`line_text`], found none), which
    /// spares the prefregex split its own search for one.
    pub fn examine_text(
        &self,
        line: &str,
        unbroken: bool,
        zone: &TimeZone,
        now: SystemTime,
        state: &mut LineState,
    ) -> Verdict {
        let verdict = self.examine_inner(line, unbroken, zone, now, state);
        if self.maxlines > 1
            && matches!(
                verdict,
                Verdict::Fail { .. }
                    | Verdict::Session {
                        nofail: false,
                        gained: false,
                        ..
                    }
            )
        {
            // The lines that made this failure do not make another.
            state.lines.clear();
        }
        verdict
    }

    fn examine_inner(
        &self,
        line: &str,
        unbroken: bool,
        zone: &TimeZone,
        now: SystemTime,
        state: &mut LineState,
    ) -> Verdict {
        let mut time = None;
        // The line without its date: a slice where the date leads the line
        // (or there is none), a copy only where it stands inside.
        let found = self
            .date
            .as_ref()
            .and_then(|d| d.detect(line, zone, now, &mut state.date));
        let buf: &str = match found {
            Some(found) => {
                time = found.time;
                if found.start == 0 {
                    &line[found.end..]
                } else {
                    state.cut.clear();
                    state.cut.push_str(&line[..found.start]);
                    state.cut.push_str(&line[found.end..]);
                    &state.cut
                }
            }
            None => line,
        };
        let text = if self.maxlines > 1 {
            if state.lines.len() >= self.maxlines {
                state.lines.pop_front();
            }
            state.lines.push_back(buf.to_owned());
            state.joined.clear();
            for (i, l) in state.lines.iter().enumerate() {
                if i > 0 {
                    state.joined.push('\n');
                }
                state.joined.push_str(l);
            }
            state.joined.as_str()
        } else {
            buf
        };
        // The prefregex's content: by a DFA run where its shape allows, else
        // (and for its groups, read only once a failregex matched) by captures.
        let mut pref = None;
        let mut split_at = None;
        let content = match (&self.pref, &self.split) {
            (None, _) => text,
            (Some(p), Some(split)) => match split.split_resumed(
                text,
                &mut state.split,
                // Joined lines stand apart by newlines.
                unbroken && self.maxlines <= 1,
            ) {
                Split::Miss => return Verdict::Miss,
                Split::Content { at, group } => {
                    split_at = Some(group.map(|(start, xend)| (start, xend, at)));
                    &text[at..]
                }
                Split::Unknown => match p.captures(text) {
                    Some(g) => pref.insert(g).get(Known::Content).unwrap_or(text),
                    None => return Verdict::Miss,
                },
            },
            (Some(p), None) => match p.captures(text) {
                Some(g) => pref.insert(g).get(Known::Content).unwrap_or(text),
                None => return Verdict::Miss,
            },
        };
        // In order, each on its own: most are anchored on a literal and fail at
        // the first bytes (a multi-pattern set runs slower here, on the NFA);
        // only those whose leading literals fit the content's first byte run.
        let candidates = match content.as_bytes().first() {
            Some(b) => &self.by_first_byte[usize::from(*b)],
            None => &self.on_empty,
        };
        // The scan's DFA searches the regexes it runs at once, when the
        // first of them comes up.
        let scan = self.fail_scan().filter(|_| !candidates.is_empty());
        let mut hit = None;
        for &i in candidates {
            let f = &self.fail[i];
            let found = match scan.filter(|s| s.searched[i]) {
                Some(s) => match *hit.get_or_insert_with(|| s.find(content, &mut state.scan)) {
                    Ok(Some((j, pid, end))) if j == i => Some((pid, end)),
                    // A later one matches first, or none does.
                    Ok(Some((j, ..))) if j > i => continue,
                    Ok(None) => continue,
                    Ok(Some(_)) | Err(NoAnswer) => None,
                },
                None => None,
            };
            let Some(g) = f.re.captures_found(content, found) else {
                continue;
            };
            // prefregex groups (the address may be there) count for every failregex.
            if pref.is_none() {
                pref = match (&self.pref, &self.split) {
                    (Some(_), Some(split)) if split_at.is_some() => {
                        split.captures_split(text, split_at.flatten())
                    }
                    (Some(p), _) => p.captures(text),
                    (None, _) => None,
                };
            }
            let pref_host = pref.as_ref().and_then(|g| {
                g.get(Known::Ip4)
                    .or_else(|| g.get(Known::Ip6))
                    .or_else(|| g.get(Known::Dns))
                    .or_else(|| g.get(Known::Fid))
            });
            let pref_tagged = pref.as_ref().is_some_and(|g| g.any(&SESSION_KNOWN));
            if self.ignore.iter().any(|r| r.is_match(text)) {
                return Verdict::Ignored { regex: i };
            }
            let addr = g
                .get(Known::Ip4)
                .or_else(|| g.get(Known::Ip6))
                .or_else(|| g.get(Known::Dns))
                .or_else(|| g.get(Known::Fid))
                .or(pref_host)
                .and_then(parse_host);
            // No address: a host name where `<HOST>`/`<DNS>` took one.
            let name = g
                .get(Known::Dns)
                .or_else(|| pref.as_ref().and_then(|p| p.get(Known::Dns)))
                .filter(|n| addr.is_none() && crate::addr::is_host_name(n.as_bytes()));
            if addr.is_some() || name.is_some() {
                state.captures.clear();
                let pref_carried = pref.iter().flat_map(|p| self.pref_named.carried(p));
                for (name, value) in pref_carried.chain(f.named.carried(&g)) {
                    state.captures.push(name, value.as_bytes());
                }
            }
            if !(pref_tagged || f.tagged) {
                return match (addr, name) {
                    (Some(addr), _) => Verdict::Fail {
                        addr,
                        regex: i,
                        time,
                    },
                    (None, Some(n)) => {
                        state.name.clear();
                        state.name.push_str(n);
                        Verdict::FailName { regex: i, time }
                    }
                    (None, None) => Verdict::NotCounted { regex: i },
                };
            }
            // The line's group, else the prefregex's; as in fail2ban, an empty
            // capture does not set a flag.
            let group = |k: Known| g.get(k).or_else(|| pref.as_ref().and_then(|p| p.get(k)));
            let flag = |k: Known| group(k).is_some_and(|t| !t.is_empty());
            let (nofail, gained, forget) = (
                flag(Known::Nofail),
                flag(Known::Mlfgained),
                flag(Known::Mlfforget),
            );
            if let Some(id) = group(Known::Mlfid) {
                // The user (`<F-USER>`, else an `<F-ALT_USER>`) this line names.
                let user = group(Known::User)
                    .filter(|u| !u.is_empty())
                    .or_else(|| pref.as_ref().and_then(|p| self.pref_named.alt_user(p)))
                    .or_else(|| f.named.alt_user(&g));
                let several = state.users.note(id, user, forget, time.unwrap_or(now));
                state.mlfid.clear();
                state.mlfid.push_str(id);
                // As fail2ban: a session that tried several user names turns
                // a line that would not count (a success among them) into a
                // failure, so a login after guessing does not wipe the guesses.
                let (nofail, gained) = if several {
                    (false, false)
                } else {
                    (nofail, gained)
                };
                return Verdict::Session {
                    regex: i,
                    addr,
                    time,
                    nofail,
                    gained,
                    forget,
                };
            }
            return match addr {
                Some(addr) if !nofail && !gained => Verdict::Fail {
                    addr,
                    regex: i,
                    time,
                },
                _ => Verdict::NotCounted { regex: i },
            };
        }
        Verdict::Miss
    }

    /// The same filter without the shortcuts (prefregex split, first-byte
    /// dispatch): the reference the shortcuts are tested against.
    #[cfg(test)]
    fn without_shortcuts(mut self) -> Matcher {
        self.split = None;
        self.fail_scan = std::sync::OnceLock::from(None);
        let all: Vec<usize> = (0..self.fail.len()).collect();
        self.by_first_byte = vec![all.clone(); 256];
        self.on_empty = all;
        self
    }

    /// The failregexes' one DFA search, built on first use; none for
    /// multi-line buffers (their `^` is a line's start).
    fn fail_scan(&self) -> Option<&FailScan> {
        self.fail_scan
            .get_or_init(|| {
                if self.maxlines > 1 {
                    None
                } else {
                    FailScan::new(&self.fail)
                }
            })
            .as_ref()
    }

    /// How many failregexes it has.
    pub fn regex_count(&self) -> usize {
        self.fail.len()
    }
}

#[cfg(test)]
mod tests;
