//! Where a fail2ban filter finds a line's time, and the text it cuts out.
//!
//! fail2ban finds the timestamp first (a `datepattern` of strptime fields, a named
//! form such as `EPOCH`, or its list of common formats), takes it out of the line,
//! and only then runs the regexes: filters are written for the line *without* its
//! date (`^%(__prefix_line)s` starts at the host name). This module does the same
//! with its own patterns for each strptime field.

use std::sync::OnceLock;
use std::time::SystemTime;

use super::regex::FastRe;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use regex_automata::hybrid::{self, LazyStateID, dfa::Cache};
use regex_automata::nfa::thompson;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

/// One way to find a date.
#[derive(Debug)]
struct Template {
    /// Compiled on first use: a filter carries some thirty templates and a
    /// log uses one or two of them, and compiling all of them cost more than
    /// examining thousands of lines. A filter's own pattern is parsed (and so
    /// checked) when the filter is loaded; fail2ban's common forms by a test
    /// (`default_forms_compile`).
    re: OnceLock<Option<FastRe>>,
    /// A line-start form's DFA for the span check of each line, built the
    /// first time a line is checked (see [`LineStart`]).
    line_start: OnceLock<Option<LineStart>>,
    text: String,
    /// Match only at the line start (after up to two non-word characters
    /// for `{^LN-BEG}`).
    line_begin: bool,
    /// fail2ban's line-begin or line-end anchor: a match of it wins at once,
    /// wherever it starts.
    anchored: bool,
    /// Check fail2ban's word boundaries around the date.
    bounds: bool,
    epoch: bool,
    /// One of fail2ban's common forms: a line whose date differs from the
    /// memo's only in the minute's two digits (and the seconds') matches
    /// it the same way, so the memo may place other minutes of its hour
    /// (checked by the `same_minute` proptest; a filter's own pattern may
    /// not be as plain).
    minutes: bool,
    /// Its regex has no assertion but a leading `^`, so a match's groups depend
    /// only on the matched text: a line whose match text equals the last one's
    /// reuses that parse (see [`DateMemo`]). Known at load: from the parse
    /// of a pattern of the filter's own; for fail2ban's common forms, whose
    /// only other assertion is the unanchored epoch's `\b` (checked against
    /// the parse by `default_forms_compile`), from the text.
    memo_ok: bool,
}

/// The last date parse of one source: log lines come in time order and mostly
/// repeat the previous line's timestamp text, so the capture run and the civil
/// time conversion are done once per distinct text. Kept by the caller.
#[derive(Debug, Clone)]
pub(crate) struct DateMemo {
    /// The template that parsed it (`usize::MAX`: nothing yet).
    template: usize,
    /// The whole regex match text.
    text: Vec<u8>,
    /// The `date` group, relative to the match start.
    date: (usize, usize),
    /// The `now` the time was computed for (a year-less date depends on it).
    now: Option<SystemTime>,
    time: Option<SystemTime>,
    /// Where in `text` two digits give the seconds (`[0-5][0-9]`), when the
    /// time of another second of the same minute follows from `minute`.
    secs: Option<usize>,
    /// Where the two digits of the minute stand (`[0-5][0-9]`), when the
    /// time of another minute of the same hour follows from `minute` too,
    /// and the minute they give there.
    mins: Option<(usize, u64)>,
    minute: Minute,
    /// The span check's DFA walk over `text` up to the seconds (for a
    /// line-start form: a line whose bytes up to there are `text`'s is in
    /// the same state there). Taken on the first line that needs it.
    walked: Option<Walked>,
}

/// How the time of another second of a parsed minute follows, without a
/// parse: the minute's second 0, where every second of it is that plus its
/// number (no offset change inside the minute). With `hour`, every second
/// of the minute's hour is that plus its distance from it.
#[derive(Debug, Clone, Copy, Default)]
enum Minute {
    /// Not known: parse.
    #[default]
    Unknown,
    /// The year is written (or the form is an epoch): the time of second 0.
    Fixed {
        first: Option<SystemTime>,
        hour: bool,
    },
    /// Year-less: second 0 this year, and last year if it was computed;
    /// the year is chosen again for each second (a day ahead of `now`).
    YearLess {
        this: SystemTime,
        prev: Option<SystemTime>,
        /// The last second after `this` (negative: before) that `this`
        /// takes (`this + s` not past `now` and a day), so the choice is
        /// one compare.
        this_until: i64,
        /// The hour is even this year, and last year where `prev` is known.
        hour: bool,
    },
}

impl Minute {
    /// The time `shift` seconds after second 0 of the parsed minute (the
    /// year chosen again for a year-less one); `None` where it does not
    /// follow from the parse.
    #[inline(always)]
    fn time_at(&self, shift: i64) -> Option<Option<SystemTime>> {
        Some(match *self {
            Minute::Unknown => return None,
            Minute::Fixed { first, .. } => match first {
                Some(f) => Some(add(f, shift)?),
                None => None,
            },
            Minute::YearLess {
                this,
                prev,
                this_until,
                ..
            } => {
                if shift > this_until {
                    Some(add(prev?, shift)?)
                } else {
                    Some(add(this, shift)?)
                }
            }
        })
    }

    /// Whether another minute of the hour follows.
    fn hour(&self) -> bool {
        match self {
            Minute::Unknown => false,
            Minute::Fixed { hour, .. } | Minute::YearLess { hour, .. } => *hour,
        }
    }
}

impl Default for DateMemo {
    fn default() -> Self {
        DateMemo {
            template: usize::MAX,
            text: Vec::new(),
            date: (0, 0),
            now: None,
            time: None,
            secs: None,
            mins: None,
            minute: Minute::Unknown,
            walked: None,
        }
    }
}

/// A filter's date finder.
#[derive(Debug)]
pub struct DateFinder {
    templates: Vec<Template>,
}

/// A found date: the span to cut and the time, when it can be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Byte span of the date text.
    pub start: usize,
    /// End of the date text.
    pub end: usize,
    /// The point in time it names.
    pub time: Option<SystemTime>,
}

/// fail2ban's common formats, as strptime patterns (the list of formats is a fact
/// about which logs exist; the regex for each field is ours).
const DEFAULTS: &[&str] = &[
    r"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?",
    r"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S",
    r"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?",
    r"%m/%d/%ExY:%H:%M:%S",
    r"%m-%d-%ExY %k:%M:%S(?:\.%f)?",
    "EPOCH",
    r"{^LN-BEG}%H:%M:%S",
    r"^<%m/%d/%Exy@%H:%M:%S>",
    r"%Exy%Exm%Exd  ?%H:%M:%S",
    r"%b %d, %ExY %I:%M:%S %p",
    r"^%b-%d-%Exy %k:%M:%S",
    r"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?",
    r"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    r"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?",
    "TAI64N",
];

const MONTHS: &str = "(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";
const DAYS: &str = "(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";

/// The regex for one strptime field, with a named group the parser reads.
fn field(name: &str) -> Option<String> {
    Some(match name {
        "a" | "A" => DAYS.to_owned(),
        "b" | "B" | "h" => format!("(?P<b>{MONTHS})"),
        "d" => "(?P<d>3[01]|[12]\\d|[0 ]?[1-9])".into(),
        "Exd" => "(?P<d>3[01]|[12]\\d|0[1-9])".into(),
        "m" => "(?P<m>1[0-2]|0?[1-9])".into(),
        "Exm" => "(?P<m>1[0-2]|0[1-9])".into(),
        "Y" => "(?P<Y>\\d{4})".into(),
        "ExY" => "(?P<Y>(?:19|20|21)\\d\\d)".into(),
        "y" | "Exy" => "(?P<y>\\d\\d)".into(),
        "H" => "(?P<H>2[0-3]|[01]?\\d)".into(),
        "ExH" => "(?P<H>2[0-3]|[01]\\d)".into(),
        "k" | "Exk" => " ?(?P<H>2[0-3]|[01]?\\d)".into(),
        "I" => "(?P<I>1[0-2]|0?[1-9])".into(),
        "l" | "Exl" => " ?(?P<I>1[0-2]|[1-9])".into(),
        "M" => "(?P<M>[0-5]?\\d)".into(),
        "ExM" => "(?P<M>[0-5]\\d)".into(),
        "S" => "(?P<S>6[01]|[0-5]?\\d)".into(),
        "ExS" => "(?P<S>6[01]|[0-5]\\d)".into(),
        "f" => "(?P<f>\\d{1,6})".into(),
        "p" => "(?P<p>[AaPp][Mm])".into(),
        "z" => "(?P<z>Z|UTC|GMT|[+-][01]\\d(?::?\\d{2})?)".into(),
        "Exz" => "(?P<z>(?:[A-Z]{3,5})?[+-][01]\\d(?::?\\d{2})?|[A-Z]{3,5})".into(),
        "Z" | "ExZ" => "(?P<Z>Z|[A-Z]{3,5})".into(),
        "j" => "(?P<j>36[0-6]|3[0-5]\\d|[12]\\d\\d|0?[1-9]\\d|0{0,2}[1-9])".into(),
        "%" => "%".into(),
        _ => return None,
    })
}

/// Turns a strptime pattern into regex text: `%X` fields become groups; a second
/// use of one field becomes a plain group (the regex crate wants unique names);
/// `(?P=_sep)` repeats the separator group's text as a class.
fn pattern_regex(pattern: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut used: Vec<String> = Vec::new();
    let mut rest = pattern;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, len) = if rest.starts_with("Ex") && rest.len() >= 3 {
            (&rest[..3], 3)
        } else if let Some(c) = rest.chars().next() {
            (&rest[..c.len_utf8()], c.len_utf8())
        } else {
            return Err(format!("datepattern {pattern:?} ends with a lone %"));
        };
        let Some(mut re) = field(name) else {
            return Err(format!("datepattern {pattern:?}: unknown field %{name}"));
        };
        rest = &rest[len..];
        if let Some(g) = re.find("(?P<").map(|s| {
            let e = re[s..].find('>').expect("group name closes") + s;
            re[s + 4..e].to_owned()
        }) {
            if used.contains(&g) {
                re = re.replacen(&format!("(?P<{g}>"), "(?:", 1);
            } else {
                used.push(g);
            }
        }
        out.push_str(&re);
    }
    out.push_str(rest);
    // Backreference to the separator: same choices, a plain class.
    while let Some(s) = out.find("(?P=") {
        let e = out[s..].find(')').ok_or("unterminated (?P=")? + s;
        let name = out[s + 4..e].to_owned();
        let open = format!("(?P<{name}>");
        let body = out
            .find(&open)
            .and_then(|g| {
                let b = g + open.len();
                out[b..].find(')').map(|c| out[b..b + c].to_owned())
            })
            .ok_or_else(|| format!("(?P={name}) names no group"))?;
        out.replace_range(s..=e, &body);
    }
    out = out.replace("(?P<_sep>", "(?:");
    Ok(out)
}

impl DateFinder {
    /// The finder for a filter's `datepattern` (one pattern a line), or fail2ban's
    /// common formats when it has none. `None` means the filter reads no date.
    pub fn new(datepattern: Option<&str>) -> Result<Option<DateFinder>, String> {
        let mut templates = Vec::new();
        let lines: Vec<&str> = match datepattern {
            Some(d) => d.lines().map(str::trim).filter(|l| !l.is_empty()).collect(),
            None => Vec::new(),
        };
        if lines.iter().any(|l| l.eq_ignore_ascii_case("{NONE}")) {
            return Ok(None);
        }
        // fail2ban's default list: a line-start copy of each unanchored form
        // (tried first: a date at the line start is the likely one), then
        // every form in its order. `{^LN-BEG}` takes the line-start ones.
        let is_anchored = |p: &str| p.starts_with('^') || p.starts_with("{^LN-BEG}");
        let defaults = |line_begin_only: bool| {
            let copies = DEFAULTS
                .iter()
                .filter(|p| !is_anchored(p))
                .map(|p| format!("{{^LN-BEG}}{p}"));
            let own = DEFAULTS
                .iter()
                .filter(move |p| !line_begin_only || is_anchored(p))
                .map(|p| (*p).to_owned());
            copies.chain(own).collect::<Vec<String>>()
        };
        let mut patterns: Vec<String> = Vec::new();
        if lines.is_empty() {
            patterns = defaults(false);
        }
        for l in lines {
            if l == "{^LN-BEG}" {
                patterns.extend(defaults(true));
            } else if l.contains("{DATE}") {
                // A regex around the date: one template per common format.
                for p in DEFAULTS {
                    if matches!(*p, "EPOCH" | "TAI64N") {
                        // fail2ban wraps only these forms' names: `^{DATE}`
                        // gives the line-start epoch, `{DATE}` the plain one;
                        // any other context leaves no usable form.
                        match l {
                            "^{DATE}" => patterns.push(format!("^{p}")),
                            "{DATE}" => patterns.push((*p).to_owned()),
                            _ => {}
                        }
                        continue;
                    }
                    let p = p.trim_start_matches("{^LN-BEG}");
                    patterns.push(l.replace("{DATE}", p));
                }
            } else {
                patterns.push(l.to_owned());
            }
        }
        // A form listed twice (`{^LN-BEG}EPOCH` then `{^LN-BEG}`) counts once,
        // where it first stood.
        for p in patterns {
            let t = template(&p)?;
            if !templates
                .iter()
                .any(|o: &Template| o.text == t.text && o.epoch == t.epoch)
            {
                templates.push(t);
            }
        }
        Ok(Some(DateFinder { templates }))
    }

    /// The date fail2ban's detector would find in `line` as the first line
    /// of a log.
    pub fn find(&self, line: &str, zone: &TimeZone, now: SystemTime) -> Option<Found> {
        self.detect(line, zone, now, &mut DateState::default())
    }

    /// The date fail2ban's detector finds in `line`, given what it found in
    /// the source's earlier lines (`state`, updated).
    ///
    /// fail2ban's rule, from its `datedetector.py`: the template that found
    /// the last line's date is tried first and kept when it matches at the
    /// same place. Otherwise the templates are tried in order: a line-anchored
    /// one, or the last one, wins when it matches; an unanchored one wins
    /// when it matches no further into the line than where it last won and
    /// where the last date stood (before any date: at 0 or 1). A match
    /// further in is held back, and when nothing wins the earliest-starting
    /// one held back is taken, so `UTC Jun 22 09:56:12` is cut whole, not
    /// as `Jun 22 09:56:12` (the first form in the list).
    #[inline]
    pub(crate) fn detect(
        &self,
        line: &str,
        zone: &TimeZone,
        now: SystemTime,
        st: &mut DateState,
    ) -> Option<Found> {
        match self.hot(line, now, st) {
            Some(found) => Some(found),
            None => self.detect_slow(line, zone, now, st),
        }
    }

    /// [`detect`](DateFinder::detect) where [`Hot`] does not answer: kept
    /// out of line, so the common case sets up no frame for it.
    #[inline(never)]
    fn detect_slow(
        &self,
        line: &str,
        zone: &TimeZone,
        now: SystemTime,
        st: &mut DateState,
    ) -> Option<Found> {
        st.hot = None;
        let n = self.templates.len();
        if st.stats.len() != n {
            st.stats = vec![Stats::default(); n];
        }
        // An unanchored form is searched only where the last date stood, so
        // the same bytes there give the same span. A line-start form is
        // searched in the whole line: what follows may lengthen its match
        // (`Jun 22 09:56:12 2024`), so its span is checked by a DFA run. Not
        // after a line-end form: it could match earlier in the line.
        // The byte compare goes first: it is cheaper, and both must hold.
        // The bytes before the minute or seconds are the memo's: the DFA
        // walk starts there, in the state the memo's text left it.
        if let Some(l) = st.last {
            let t = &self.templates[l.index];
            if (!t.anchored || t.line_begin)
                && let Some(same) = st.same_minute(line, now)
                && (!t.anchored || {
                    // (A line-start form's match starts at 0.)
                    let at = if l.start == 0 { same.vary } else { 0 };
                    let m = t.line_start_match_from(
                        l.index,
                        line,
                        at,
                        &mut st.memo.walked,
                        &mut st.span_cache,
                    );
                    m == Some((l.start, l.end))
                })
            {
                let found = st.keep(line, same);
                st.hot = self.make_hot(line, now, st);
                return Some(found);
            }
        }
        // The best match held back: template, match, whole match span.
        let mut held: Option<(usize, Found, (usize, usize))> = None;
        let mut skip = usize::MAX;
        if let Some(last) = st.last {
            let t = &self.templates[last.index];
            let hit = if t.anchored {
                skip = last.index;
                t.find(last.index, line, 0, line.len(), zone, now, &mut st.memo)
            } else if last.fits(line) {
                // Same surroundings: search only where the last date stood.
                t.find(
                    last.index,
                    line,
                    last.start,
                    last.end,
                    zone,
                    now,
                    &mut st.memo,
                )
            } else {
                skip = last.index;
                t.find(last.index, line, 0, line.len(), zone, now, &mut st.memo)
            };
            if let Some((found, whole)) = hit {
                st.stats[last.index].matched = true;
                if n == 1 || t.anchored || whole == (last.start, last.end) {
                    return Some(st.win(last.index, line, found, whole));
                }
                held = Some((last.index, found, whole));
            }
        }
        let last_start = st.last.map_or(1, |l| l.start);
        for (i, t) in self.templates.iter().enumerate() {
            if i == skip {
                continue;
            }
            let Some((found, whole)) = t.find(i, line, 0, line.len(), zone, now, &mut st.memo)
            else {
                continue;
            };
            st.stats[i].matched = true;
            let at = whole.0;
            // The last template, an anchored one, or a line-start match of a
            // template that won before while the next one never matched.
            let wins_now = i + 1 == n
                || t.anchored
                || (at == 0 && st.stats[i].wins > 0 && !st.stats[i + 1].matched);
            if !wins_now && (at > st.stats[i].distance || at > last_start) {
                if held.as_ref().is_none_or(|h| at < h.2.0) {
                    held = Some((i, found, whole));
                }
                continue;
            }
            return Some(st.win(i, line, found, whole));
        }
        held.map(|(i, found, whole)| st.win(i, line, found, whole))
    }
}

impl DateFinder {
    /// The line's date by [`Hot`], recorded as [`DateState::keep`] records
    /// it (the memo keeps the parse it was set up from: its text and time
    /// agree); `None` where it does not answer.
    #[inline]
    fn hot(&self, line: &str, now: SystemTime, st: &mut DateState) -> Option<Found> {
        let h = st.hot.as_mut()?;
        let b = line.as_bytes();
        if h.now != now
            || b.len() < h.to
            || (h.eol && b.len() != h.to)
            || !h.bytes.eq(&b[h.from..h.to])
        {
            return None;
        }
        let digits = h.digits(b);
        let time = if digits == h.second.0 {
            h.second.1
        } else {
            let time = h.time(b)?;
            h.second = (digits, time);
            time
        };
        if let Some(w) = h.walked
            && !h.tail.is_some_and(|t| t.eq(b, w.at))
        {
            let ls = self.templates[h.index].line_start.get()?.as_ref()?;
            let c = st.span_cache.as_mut()?;
            if c.template != h.index
                || c.cache.clear_count() != w.clears
                || ls.walk(&mut c.cache, b, w) != Ok(Some(h.whole_end))
            {
                return None;
            }
        }
        let s = st.stats.get_mut(h.index)?;
        s.wins += 1;
        if let Some(last) = &mut st.last {
            if h.first_varies {
                last.first = Some(char::from(b[last.start]));
            }
            if h.last_varies {
                last.last = Some(char::from(b[h.secs_at + 1]));
            }
        }
        Some(Found {
            start: h.date.0,
            end: h.date.1,
            time,
        })
    }

    /// The [`Hot`] for the lines after `line`, which
    /// [`DateState::same_minute`] has just answered.
    fn make_hot(&self, line: &str, now: SystemTime, st: &mut DateState) -> Option<Hot> {
        let last = st.last?;
        let memo = &st.memo;
        if memo.template != last.index || memo.now != Some(now) {
            return None;
        }
        let t = &self.templates[last.index];
        let secs = memo.secs?;
        let mins = match memo.mins {
            Some((m_at, m0)) if m_at + 2 <= secs && memo.minute.hour() => {
                Some((last.start + m_at, m0))
            }
            _ => None,
        };
        let secs_at = last.start + secs;
        let vary = mins.map_or(secs_at, |(at, _)| at);
        let from = last.start - last.before.map_or(0, char::len_utf8);
        let to = last.end + last.after.map_or(0, char::len_utf8);
        let b = line.as_bytes();
        let mut pairs: Vec<usize> = mins.iter().map(|&(at, _)| at).collect();
        pairs.push(secs_at);
        let (walked, tail) = if t.line_begin {
            if last.start != 0 {
                return None;
            }
            let ls = t.line_start()?;
            let c = st
                .span_cache
                .as_mut()
                .filter(|c| c.template == last.index)?;
            let w = ls.walk_fields(&mut c.cache, b, &pairs, secs_at + 2)?;
            (Some(w), ls.tail(&mut c.cache, b, w, last.end))
        } else {
            (None, None)
        };
        let rel: Vec<usize> = pairs.iter().map(|p| p - from).collect();
        Some(Hot {
            index: last.index,
            now,
            second: (NO_DIGITS, None),
            from,
            to,
            eol: last.after.is_none(),
            bytes: Masked::new(b.get(from..to)?, &rel),
            mins,
            secs_at,
            minute: memo.minute,
            date: (last.start + memo.date.0, last.start + memo.date.1),
            whole_end: last.end,
            walked,
            tail,
            first_varies: vary == last.start,
            last_varies: secs_at + 2 == last.end,
        })
    }
}

/// What one source's date finding keeps between lines: fail2ban's detector
/// state (which template won, where, and the characters around it) and the
/// last parse.
#[derive(Debug, Clone, Default)]
pub(crate) struct DateState {
    last: Option<LastWin>,
    /// Per template, by index.
    stats: Vec<Stats>,
    memo: DateMemo,
    span_cache: Option<SpanCache>,
    /// The shape of the lines [`same_minute`](DateState::same_minute)
    /// answers, as set when it last did: the line of the next minute or
    /// second is answered by one compare (see [`DateFinder::hot`]).
    hot: Option<Hot>,
}

impl DateState {
    /// Forgets the parse memo (not the detector state): for comparisons of
    /// the memo against fresh parses.
    #[cfg(test)]
    pub(crate) fn forget_memo(&mut self) {
        self.memo = DateMemo::default();
        self.hot = None;
    }

    /// The common case, in a compare of the stamp's bytes: the last template
    /// found its date where it stands now, the characters around it are the
    /// same, and the text is the memo's but for the two digits of the
    /// seconds. fail2ban keeps that template then (its search where the last
    /// date stood finds the same span: only a seconds field's digits
    /// changed, each still `[0-5][0-9]`), and the time is the memo's minute
    /// plus the seconds, the year chosen again. Changes nothing: [`keep`]
    /// records it once the caller has checked the rest.
    ///
    /// [`keep`]: DateState::keep
    fn same_minute(&self, line: &str, now: SystemTime) -> Option<SameMinute> {
        let last = self.last?;
        let memo = &self.memo;
        let secs_at = memo.secs?;
        if memo.template != last.index
            || memo.now != Some(now)
            || memo.text.len() != last.end - last.start
            || !line.is_char_boundary(last.end)
        {
            return None;
        }
        let b = line.as_bytes();
        let old = memo.text.as_slice();
        let new = &b[last.start..last.end];
        let secs = seconds(&new[secs_at..secs_at + 2])?;
        // The bytes other than the seconds' (and the minute's, where another
        // minute's time follows) are the memo's.
        let (vary, shift) = match memo.mins {
            Some((m_at, m0)) if m_at + 2 <= secs_at && memo.minute.hour() => {
                let m = seconds(&new[m_at..m_at + 2])?;
                if new[..m_at] != old[..m_at] || new[m_at + 2..secs_at] != old[m_at + 2..secs_at] {
                    return None;
                }
                (m_at, (m as i64 - m0 as i64) * 60 + secs as i64)
            }
            _ => {
                if new[..secs_at] != old[..secs_at] {
                    return None;
                }
                (secs_at, secs as i64)
            }
        };
        if new[secs_at + 2..] != old[secs_at + 2..] {
            return None;
        }
        if line[..last.start].chars().next_back() != last.before
            || line[last.end..].chars().next() != last.after
        {
            return None;
        }
        let time = memo.minute.time_at(shift)?;
        Some(SameMinute {
            index: last.index,
            whole: (last.start, last.end),
            secs_at: last.start + secs_at,
            vary: last.start + vary,
            found: Found {
                start: last.start + memo.date.0,
                end: last.start + memo.date.1,
                time,
            },
            changed: new[vary..secs_at + 2] != old[vary..secs_at + 2],
        })
    }

    /// Records a [`same_minute`](DateState::same_minute) find as the line's
    /// date: the memo takes its seconds, the template its win.
    ///
    /// What [`win`](DateState::win) records, by what changed: the span and
    /// the characters around it are the last win's, and its first or last
    /// character is new only where the minute or seconds stand (ASCII
    /// digits).
    fn keep(&mut self, line: &str, same: SameMinute) -> Found {
        let s = &mut self.stats[same.index];
        s.wins += 1;
        s.distance = same.whole.0;
        if same.changed {
            let at = same.vary - same.whole.0;
            let digits = &line.as_bytes()[same.vary..same.secs_at + 2];
            self.memo.text[at..at + digits.len()].copy_from_slice(digits);
            self.memo.time = same.found.time;
            if let Some(last) = &mut self.last {
                if at == 0 {
                    last.first = Some(char::from(digits[0]));
                }
                if same.secs_at + 2 == same.whole.1 {
                    last.last = Some(char::from(digits[digits.len() - 1]));
                }
            }
        }
        same.found
    }

    fn win(&mut self, index: usize, line: &str, found: Found, whole: (usize, usize)) -> Found {
        let s = &mut self.stats[index];
        s.wins += 1;
        s.distance = whole.0;
        self.last = Some(LastWin {
            index,
            start: whole.0,
            end: whole.1,
            before: line[..whole.0].chars().next_back(),
            first: line[whole.0..].chars().next(),
            last: line[..whole.1].chars().next_back(),
            after: line[whole.1..].chars().next(),
        });
        found
    }
}

/// A line whose date is the last one's but for its seconds.
#[derive(Debug, Clone, Copy)]
struct SameMinute {
    /// The template, its whole match, and where in the line the seconds stand.
    index: usize,
    whole: (usize, usize),
    secs_at: usize,
    /// Where the bytes that may differ from the memo's start: the minute's
    /// or the seconds' digits.
    vary: usize,
    found: Found,
    /// Whether the minute's or seconds' digits differ from the memo's.
    changed: bool,
}

/// What [`DateState::same_minute`] and the span check's DFA walk ask of a
/// line, set up once for the lines after the one they answered: the bytes
/// of the last whole match and the characters beside it, but for the
/// minute's and seconds' digits, compared a word at a time; and for a
/// line-start form the DFA's state past the seconds, which every value of
/// those digits leads to (checked when it is set up), so the walk goes on
/// from there. A line it answers is one `same_minute` answers, with the
/// span and time it gives; any other line drops it.
#[derive(Debug, Clone)]
struct Hot {
    index: usize,
    now: SystemTime,
    /// The bytes compared: the whole match and the characters beside it.
    from: usize,
    to: usize,
    /// No character followed the match: the line ends at `to`.
    eol: bool,
    bytes: Masked,
    /// Where the minute's digits stand in the line, and the minute they
    /// gave, when another minute of the hour follows.
    mins: Option<(usize, u64)>,
    secs_at: usize,
    minute: Minute,
    /// The date's span in the line, and the whole match's end.
    date: (usize, usize),
    whole_end: usize,
    /// The minute's and seconds' digits of the last line answered
    /// ([`Hot::digits`]), and the time they gave: log lines come in
    /// bursts within one second (two in three of them in a busy auth.log),
    /// and the same digits give the same time.
    second: (u32, Option<SystemTime>),
    /// A line-start form's walk up to the end of the seconds.
    walked: Option<Walked>,
    /// The bytes that walk went on to read on the line that set this up,
    /// up to the one that ended the match: a line with the same bytes
    /// there ends its match where that line did (a DFA walk is a function
    /// of its state and the bytes), so the walk is not repeated. Most logs
    /// follow the stamp with the same host name.
    tail: Option<Tail>,
    /// The whole match starts at the varying digits, or ends with the
    /// seconds: the characters [`DateState::keep`] records there.
    first_varies: bool,
    last_varies: bool,
}

/// No line's [`Hot::digits`]: those are ASCII digits.
const NO_DIGITS: u32 = u32::MAX;

impl Hot {
    /// The minute's (where it varies) and seconds' two digits of `b`, a
    /// line whose bytes around them [`Hot::bytes`] matched: the time
    /// depends on nothing else.
    #[inline]
    fn digits(&self, b: &[u8]) -> u32 {
        let pair = |at: usize| u32::from(b[at]) | u32::from(b[at + 1]) << 8;
        pair(self.secs_at) | self.mins.map_or(0, |(at, _)| pair(at) << 16)
    }

    /// The time of `b`'s date (as [`Hot::digits`] reads it), by its minute
    /// and seconds; `None` where they are not a time of the minute's hour.
    #[inline]
    fn time(&self, b: &[u8]) -> Option<Option<SystemTime>> {
        let secs = seconds(&b[self.secs_at..self.secs_at + 2])?;
        let shift = match self.mins {
            Some((at, m0)) => (seconds(&b[at..at + 2])? as i64 - m0 as i64) * 60 + secs as i64,
            None => secs as i64,
        };
        self.minute.time_at(shift)
    }
}

/// Bytes compared eight at a time, with some masked out: a word for each
/// eight bytes from the start, the last one overlapping the one before
/// (or padded with zeros when there are fewer than eight).
#[derive(Debug, Clone)]
struct Masked {
    len: usize,
    /// Offset, mask and masked value.
    words: Vec<(usize, u64, u64)>,
}

impl Masked {
    /// `bytes`, but for the two bytes at each of `pairs`.
    fn new(bytes: &[u8], pairs: &[usize]) -> Masked {
        let mut mask = vec![0xffu8; bytes.len()];
        for &p in pairs {
            mask[p..p + 2].fill(0);
        }
        let words = Masked::offsets(bytes.len())
            .map(|o| {
                let m = load(&mask, o);
                (o, m, load(bytes, o) & m)
            })
            .collect();
        Masked {
            len: bytes.len(),
            words,
        }
    }

    fn offsets(len: usize) -> impl Iterator<Item = usize> {
        (0..len.max(1))
            .step_by(8)
            .map(move |o| o.min(len.saturating_sub(8)))
    }

    /// Whether `b` (of the same length) has the bytes outside the mask.
    #[inline]
    fn eq(&self, b: &[u8]) -> bool {
        b.len() == self.len && self.words.iter().all(|&(o, m, v)| load(b, o) & m == v)
    }
}

/// Up to eight bytes after the seconds whose walk ended a line-start
/// form's match (see [`Hot::tail`]).
#[derive(Debug, Clone, Copy)]
struct Tail {
    len: usize,
    mask: u64,
    value: u64,
}

impl Tail {
    /// The tail of `line` read from `at` through `last`, if it fits a word.
    fn new(line: &[u8], at: usize, last: usize) -> Option<Tail> {
        let len = (last + 1).checked_sub(at).filter(|l| (1..=8).contains(l))?;
        let mask = u64::MAX >> (64 - 8 * len);
        Some(Tail {
            len,
            mask,
            value: load(line, at) & mask,
        })
    }

    /// Whether `line` has these bytes at `at`.
    #[inline]
    fn eq(&self, line: &[u8], at: usize) -> bool {
        line.len() >= at + self.len && load(line, at) & self.mask == self.value
    }
}

/// The eight bytes at `at` as a word, padded with zeros past the end.
/// Inlined: each line's stamp compare reads a few words, and a call per
/// word cost as much as the compare.
#[inline(always)]
fn load(b: &[u8], at: usize) -> u64 {
    match b.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("eight bytes")),
        None => load_short(b, at),
    }
}

/// [`load`] of fewer than eight bytes: a stamp this short is rare.
#[cold]
#[inline(never)]
fn load_short(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(&b[at..]) {
        *d = *s;
    }
    u64::from_le_bytes(w)
}

/// The last winning match: its template, span and the characters at and
/// around both ends.
#[derive(Debug, Clone, Copy)]
struct LastWin {
    index: usize,
    start: usize,
    end: usize,
    before: Option<char>,
    first: Option<char>,
    last: Option<char>,
    after: Option<char>,
}

impl LastWin {
    /// fail2ban's check that a line's date may stand where the last one did:
    /// on each side the character outside is the same, or the one inside is
    /// the same and no letter or digit (a separator).
    fn fits(&self, line: &str) -> bool {
        if self.end > line.len()
            || !line.is_char_boundary(self.start)
            || !line.is_char_boundary(self.end)
        {
            return false;
        }
        let sep = |c: Option<char>| c.is_some_and(|c| !c.is_alphanumeric());
        let begin = line[..self.start].chars().next_back() == self.before
            || (line[self.start..].chars().next() == self.first && sep(self.first));
        let end = line[self.end..].chars().next() == self.after
            || (line[..self.end].chars().next_back() == self.last && sep(self.last));
        begin && end
    }
}

/// One template's record in a source.
#[derive(Debug, Clone, Copy)]
struct Stats {
    /// How often it found the date.
    wins: u32,
    /// Where its last winning match started (`usize::MAX`: never won).
    distance: usize,
    /// Whether it ever matched a line (won or not).
    matched: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            wins: 0,
            distance: usize::MAX,
            matched: false,
        }
    }
}

/// Whether a pattern is one of fail2ban's common forms, as
/// [`DateFinder::new`] places them (as listed, line-start, or `^` anchored).
fn is_default(p: &str) -> bool {
    DEFAULTS.iter().any(|d| {
        p == *d || p.strip_prefix("{^LN-BEG}") == Some(d) || p.strip_prefix('^') == Some(d)
    })
}

/// A regex whose only assertion is a leading `^` (see [`Template::memo_ok`]).
fn look_free(hir: &regex_syntax::hir::Hir) -> bool {
    hir.properties()
        .look_set()
        .remove(regex_syntax::hir::Look::Start)
        .is_empty()
}

fn template(pattern: &str) -> Result<Template, String> {
    let mut p = pattern.trim();
    let mut line_begin = false;
    let mut bounds = true;
    let mut caret = false;
    if let Some(r) = p.strip_prefix("{^LN-BEG}") {
        p = r;
        line_begin = true;
    }
    if p.contains("{UNB}") {
        bounds = false;
    }
    let p = p.replace("{UNB}", "");
    let p = p.strip_prefix("**").unwrap_or(&p);
    let p = p.strip_suffix("**").unwrap_or(p);
    let upper = p.to_ascii_uppercase();
    let (body, epoch) = match upper.as_str() {
        "EPOCH" | "LEPOCH" | "^EPOCH" | "^LEPOCH" => {
            line_begin |= upper.starts_with('^');
            let digits = if upper.contains("LEPOCH") {
                r"(\d{13,14}(?:\.\d{3,6})?)"
            } else {
                r"(\d{10,11}(?:\.\d{3,6})?)"
            };
            // Unanchored, fail2ban still takes a number only at the line start,
            // inside a `[` opening the line, or in SELinux's `audit(`: a
            // bracketed number mid-line (a request time) is no date.
            // [`Template::epoch_context`] checks what must follow.
            let body = if line_begin {
                digits.to_owned()
            } else {
                format!(r"(?:^|^\[|\baudit\(){digits}")
            };
            (body, true)
        }
        "TAI64N" | "^TAI64N" => {
            // Unanchored, fail2ban looks for it anywhere.
            line_begin |= upper.starts_with('^');
            (r"@[0-9a-f]{24}".to_owned(), false)
        }
        "ISO8601" => (pattern_regex(DEFAULTS[0])?, false),
        _ => {
            // A pattern's own `^` anchors it as written: unlike `{^LN-BEG}`,
            // it skips no leading non-word characters.
            let body = match p.strip_prefix('^') {
                Some(r) if !line_begin => {
                    caret = true;
                    r
                }
                _ => p,
            };
            (pattern_regex(body)?, false)
        }
    };
    // The date is the pattern's first group, or all of it.
    let body = match first_plain_group(&body) {
        Some(at) => format!("{}(?P<date>{}", &body[..at], &body[at + 1..]),
        None => format!("(?P<date>{body})"),
    };
    let text = if caret {
        format!(r"(?i)^{body}")
    } else if line_begin {
        format!(r"(?i)^(?:\W{{0,2}})?{body}")
    } else {
        format!(r"(?i){body}")
    };
    // A form of fail2ban's list is checked by a test; parsing the thirty of
    // them cost more than all else in the filter's date setup, and one
    // parse at the first line cost as much as a few thousand lines.
    let memo_ok = if is_default(pattern) {
        !text.contains(r"\b")
    } else {
        let hir = regex_syntax::parse(&text).map_err(|e| format!("datepattern {p:?}: {e}"))?;
        look_free(&hir)
    };
    // fail2ban's line-end anchor: a pattern ending in an unescaped `$`.
    let line_end = p.ends_with('$') && !p.ends_with("\\$");
    Ok(Template {
        re: OnceLock::new(),
        line_start: OnceLock::new(),
        text,
        anchored: line_begin || caret || line_end,
        line_begin: line_begin || caret,
        bounds,
        epoch,
        minutes: is_default(pattern),
        memo_ok,
    })
}

/// Byte offset of the first `(` that opens a plain capturing group.
fn first_plain_group(re: &str) -> Option<usize> {
    let b = re.as_bytes();
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class && b.get(i + 1) != Some(&b'?') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

impl Template {
    /// The regex, compiled on first use. Its text is known to parse; only a
    /// size limit could still refuse it, and then it finds nothing.
    fn re(&self) -> Option<&FastRe> {
        self.re
            .get_or_init(|| {
                FastRe::new(&self.text)
                    .inspect_err(|e| tracing::warn!("date template {:?}: {e}", self.text))
                    .ok()
            })
            .as_ref()
    }

    /// The first acceptable date at or after the line start; `index` names this
    /// template in `memo`.
    ///
    /// Only `line[..to]` is searched, from `from` on (fail2ban's search of
    /// where the last date stood). Returns the date and the whole match's
    /// span, where fail2ban measures the match's place in the line.
    #[allow(clippy::too_many_arguments)]
    fn find(
        &self,
        index: usize,
        line: &str,
        mut from: usize,
        to: usize,
        zone: &TimeZone,
        now: SystemTime,
        memo: &mut DateMemo,
    ) -> Option<(Found, (usize, usize))> {
        let line = line.get(..to)?;
        loop {
            // The DFA finds the match; its groups come from the memo when the
            // same template matched the same text last time.
            let re = self.re()?;
            let whole = re.find_at(line, from)?;
            let whole_text = &line[whole.0..whole.1];
            let remembered =
                self.memo_ok && memo.template == index && memo.text == whole_text.as_bytes();
            // The time when already known for this `now`.
            let (start, end, known) = if remembered {
                let known = (memo.now == Some(now)).then_some(memo.time);
                (whole.0 + memo.date.0, whole.0 + memo.date.1, known)
            } else {
                let caps = Caps::new(re, line, from)?;
                let m = caps.span("date")?;
                // Whether other minutes follow is worth its look at the
                // zone's transitions only where this template's parse was
                // the memo too (or none was): where forms take turns, the
                // memo does not last a minute.
                let hours = memo.template == index || memo.template == usize::MAX;
                let (time, minute) = self.time(&caps, &line[m.0..m.1], zone, now, hours);
                memo.template = usize::MAX;
                if self.memo_ok {
                    memo.template = index;
                    memo.walked = None;
                    memo.text.clear();
                    memo.text.extend_from_slice(whole_text.as_bytes());
                    memo.date = (m.0 - whole.0, m.1 - whole.0);
                    memo.now = Some(now);
                    memo.time = time;
                    memo.minute = minute;
                    memo.secs = two_digits(&caps, "S", whole).map(|(at, _)| at);
                    memo.mins = two_digits(&caps, "M", whole);
                }
                (m.0, m.1, Some(time))
            };
            let before = line[..start].chars().next_back();
            let first = line[start..].chars().next();
            let last = line[..end].chars().next_back();
            let after = line[end..].chars().next();
            // fail2ban's boundaries: the date is not glued to a word on either side.
            let begin_ok = self.line_begin || !(is_word(before) && is_word(first));
            let end_ok = !(is_word(last) && is_word(after));
            let ok = (!self.bounds || (begin_ok && end_ok)) && self.epoch_context(line, start, end);
            if ok {
                let time = match known {
                    Some(t) => t,
                    None => {
                        // Remembered text, another `now`: the year choice may differ.
                        let caps = Caps::new(re, line, from)?;
                        let (t, minute) = self.time(&caps, &line[start..end], zone, now, true);
                        memo.now = Some(now);
                        memo.time = t;
                        memo.minute = minute;
                        memo.mins = two_digits(&caps, "M", whole);
                        t
                    }
                };
                // An epoch's context is looked at, not matched, by fail2ban.
                let whole = if self.epoch { (start, end) } else { whole };
                return Some((Found { start, end, time }, whole));
            }
            if self.line_begin {
                return None;
            }
            from = start + first.map_or(1, char::len_utf8);
            if from > line.len() {
                return None;
            }
        }
    }
}

/// A line-start template's regex as a lazy DFA over ASCII, for the span
/// check the detector runs on almost every line: the same leftmost-first
/// match end the regex engine finds, without its per-search setup. Lazy:
/// a log's lines visit a few dozen of its states, and building them all (a
/// dense DFA) cost more than thousands of lines; a line's walk mostly starts
/// at its minute, in the state saved for the stamp's text before it.
///
/// It answers only while every byte it examines is ASCII: there the ASCII
/// form of the pattern and Python's Unicode reading agree (as for
/// [`FastRe`]'s ASCII form); otherwise the regex engine decides.
#[derive(Debug)]
struct LineStart {
    dfa: hybrid::dfa::DFA,
}

impl LineStart {
    /// `None` where the pattern has no ASCII form.
    fn new(text: &str) -> Option<LineStart> {
        if !text.is_ascii() {
            return None;
        }
        let dfa = hybrid::dfa::Builder::new()
            .configure(hybrid::dfa::Config::new().match_kind(MatchKind::LeftmostFirst))
            .syntax(
                regex_automata::util::syntax::Config::new()
                    .unicode(false)
                    .utf8(false),
            )
            .thompson(
                thompson::Config::new()
                    .utf8(false)
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build(text)
            .ok()?;
        Some(LineStart { dfa })
    }

    /// The anchored start state at the start of the text (a line-start
    /// form's match starts there).
    fn start(&self, cache: &mut Cache) -> Option<Walked> {
        let sid = self
            .dfa
            .start_state(cache, &start::Config::new().anchored(Anchored::Yes))
            .ok()?;
        Some(Walked {
            sid,
            end: None,
            at: 0,
            clears: cache.clear_count(),
        })
    }

    /// The end of the match at the line start: `Ok(None)` for no match,
    /// `Err(())` where a byte it would look at is not ASCII.
    #[cfg(test)]
    fn end(&self, cache: &mut Cache, line: &[u8]) -> Result<Option<usize>, ()> {
        let w = self.start(cache).ok_or(())?;
        self.walk(cache, line, w)
    }

    /// Where the walk of `line[..at]` from the start leaves the DFA, when
    /// it is still live there and every byte was ASCII: a line with the
    /// same first `at` bytes is there too (while the cache keeps its
    /// states: `clears`).
    fn walk_to(&self, cache: &mut Cache, line: &[u8], at: usize) -> Option<Walked> {
        let mut w = self.start(cache)?;
        for (i, &b) in line.get(..at)?.iter().enumerate() {
            if !b.is_ascii() {
                return None;
            }
            w.sid = self.dfa.next_state(cache, w.sid, b).ok()?;
            if w.sid.is_tagged() {
                if w.sid.is_match() {
                    w.end = Some(i);
                } else if w.sid.is_dead() || w.sid.is_quit() || w.sid.is_unknown() {
                    return None;
                }
            }
        }
        w.at = at;
        w.clears = cache.clear_count();
        Some(w)
    }

    /// The walk of `line[..to]` when each two-digit field at `pairs` (in
    /// order, before `to`) takes it to the same states for every value
    /// `[0-5][0-9]` it may hold: then it is the walk of any line that
    /// differs from `line` only there. `None` otherwise, or where a byte is
    /// not ASCII, the DFA stops, or its cache is cleared meanwhile.
    fn walk_fields(
        &self,
        cache: &mut Cache,
        line: &[u8],
        pairs: &[usize],
        to: usize,
    ) -> Option<Walked> {
        let clears = cache.clear_count();
        let mut w = self.walk_to(cache, line, *pairs.first()?)?;
        let mut i = w.at;
        let mut pairs = pairs.iter().peekable();
        while i < to {
            if pairs.next_if_eq(&&i).is_some() {
                let mut end = w.end;
                let first = self.step(cache, w.sid, b'0', i, &mut end)?;
                for d in b'1'..=b'5' {
                    if self.step(cache, w.sid, d, i, &mut end)? != first {
                        return None;
                    }
                }
                let second = self.step(cache, first, b'0', i + 1, &mut end)?;
                for d in b'1'..=b'9' {
                    if self.step(cache, first, d, i + 1, &mut end)? != second {
                        return None;
                    }
                }
                w.sid = second;
                w.end = end;
                i += 2;
            } else {
                let b = *line.get(i)?;
                if !b.is_ascii() {
                    return None;
                }
                w.sid = self.step(cache, w.sid, b, i, &mut w.end)?;
                i += 1;
            }
        }
        if pairs.next().is_some() || cache.clear_count() != clears {
            return None;
        }
        w.at = to;
        Some(w)
    }

    /// One byte of a walk at `i`: the next state, with a match recorded in
    /// `end`; `None` where the DFA stops.
    fn step(
        &self,
        cache: &mut Cache,
        sid: LazyStateID,
        b: u8,
        i: usize,
        end: &mut Option<usize>,
    ) -> Option<LazyStateID> {
        let next = self.dfa.next_state(cache, sid, b).ok()?;
        if next.is_tagged() {
            if next.is_match() {
                *end = Some(i);
            } else if next.is_dead() || next.is_quit() || next.is_unknown() {
                return None;
            }
        }
        Some(next)
    }

    /// The bytes [`walk`](LineStart::walk) from `from` reads of `line`,
    /// where it ends the match at `end` on a dead state within eight bytes
    /// (not at the line's end): another line with those bytes there walks
    /// the same way.
    fn tail(&self, cache: &mut Cache, line: &[u8], from: Walked, end: usize) -> Option<Tail> {
        let dfa = &self.dfa;
        let (mut sid, mut found) = (from.sid, from.end);
        for (i, &b) in line.iter().enumerate().skip(from.at).take(8) {
            if !b.is_ascii() {
                return None;
            }
            sid = dfa.next_state(cache, sid, b).ok()?;
            if sid.is_tagged() {
                if sid.is_match() {
                    found = Some(i);
                } else if sid.is_dead() {
                    return (found == Some(end))
                        .then(|| Tail::new(line, from.at, i))
                        .flatten();
                } else {
                    return None;
                }
            }
        }
        None
    }

    /// [`end`](LineStart::end), with the walk of the bytes before `from.at`
    /// done (by [`walk_to`](LineStart::walk_to) on the same bytes).
    #[inline]
    fn walk(&self, cache: &mut Cache, line: &[u8], from: Walked) -> Result<Option<usize>, ()> {
        let dfa = &self.dfa;
        let Walked {
            mut sid,
            mut end,
            at: mut i,
            ..
        } = from;
        loop {
            let Some(&b) = line.get(i) else {
                if dfa.next_eoi_state(cache, sid).map_err(|_| ())?.is_match() {
                    end = Some(line.len());
                }
                return Ok(end);
            };
            if !b.is_ascii() {
                return Err(());
            }
            sid = dfa.next_state(cache, sid, b).map_err(|_| ())?;
            if sid.is_tagged() {
                if sid.is_match() {
                    // A DFA reports a match one byte late.
                    end = Some(i);
                } else if sid.is_dead() {
                    return Ok(end);
                } else if sid.is_quit() || sid.is_unknown() {
                    return Err(());
                }
            }
            i += 1;
        }
    }
}

/// A [`LineStart`] walk stopped before byte `at`: its state, and the end of
/// the last match it passed.
#[derive(Debug, Clone, Copy)]
struct Walked {
    sid: LazyStateID,
    end: Option<usize>,
    at: usize,
    /// The cache's clear count when `sid` was taken: a clear drops it.
    clears: usize,
}

/// A source's lazy DFA states, for the template that last won.
#[derive(Debug, Clone)]
pub(crate) struct SpanCache {
    template: usize,
    cache: Cache,
}

impl Template {
    /// The match of a line-start template (`line_begin`) in `line`: what
    /// `re().find_at(line, 0)` gives, by [`LineStart`] where it can.
    #[cfg(test)]
    fn line_start_match(&self, line: &str) -> Option<(usize, usize)> {
        let end = self.line_start().map(|ls| {
            let mut cache = ls.dfa.create_cache();
            ls.end(&mut cache, line.as_bytes())
        });
        match end {
            Some(Ok(end)) => end.map(|e| (0, e)),
            _ => self.re().and_then(|re| re.find_at(line, 0)),
        }
    }

    fn line_start(&self) -> Option<&LineStart> {
        self.line_start
            .get_or_init(|| LineStart::new(&self.text))
            .as_ref()
    }

    /// The line-start match on a line whose bytes before `at` are those
    /// `saved` was walked over (`None`: not walked yet; it is then, and
    /// saved where it can be). `cache` holds the states of template
    /// `index`'s DFA (it is made anew for another).
    fn line_start_match_from(
        &self,
        index: usize,
        line: &str,
        at: usize,
        saved: &mut Option<Walked>,
        cache: &mut Option<SpanCache>,
    ) -> Option<(usize, usize)> {
        let b = line.as_bytes();
        let end = self.line_start().ok_or(()).and_then(|ls| {
            if cache.as_ref().is_none_or(|c| c.template != index) {
                *cache = Some(SpanCache {
                    template: index,
                    cache: ls.dfa.create_cache(),
                });
                *saved = None;
            }
            let c = &mut cache.as_mut().expect("just made").cache;
            if saved.is_some_and(|w| w.clears != c.clear_count()) {
                *saved = None;
            }
            let walked = match saved {
                Some(w) if w.at == at => Ok(*w),
                _ => ls
                    .walk_to(c, b, at)
                    .inspect(|w| *saved = Some(*w))
                    .ok_or(()),
            };
            walked.and_then(|w| ls.walk(c, b, w))
        });
        match end {
            Ok(end) => end.map(|e| (0, e)),
            Err(()) => self.re().and_then(|re| re.find_at(line, 0)),
        }
    }

    /// fail2ban's context of an epoch date: opened by a `[` at the line start,
    /// it must be closed by `]`; after `audit(`, followed by `:SERIAL)`.
    fn epoch_context(&self, line: &str, start: usize, end: usize) -> bool {
        if !self.epoch {
            return true;
        }
        let rest = &line[end..];
        if start == 1 && line.starts_with('[') {
            return rest.starts_with(']');
        }
        if line[..start].ends_with("audit(") {
            let serial = rest.strip_prefix(':').unwrap_or_default();
            let digits = serial.bytes().take_while(u8::is_ascii_digit).count();
            return digits > 0 && serial[digits..].starts_with(')');
        }
        true
    }

    /// The point in time a match names (`date`: its date text).
    fn time(
        &self,
        caps: &Caps<'_>,
        date: &str,
        zone: &TimeZone,
        now: SystemTime,
        hours: bool,
    ) -> (Option<SystemTime>, Minute) {
        if self.epoch {
            let time = date
                .split('.')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .map(|s| {
                    let s = if s > 99_999_999_999 { s / 1000 } else { s };
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s)
                });
            (time, Minute::Unknown)
        } else {
            civil(caps, zone, now, hours && self.minutes)
        }
    }
}

fn month(name: &str) -> Option<i8> {
    let l = name.get(..3)?.to_ascii_lowercase();
    let i = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| *m == l)?;
    Some(i as i8 + 1)
}

/// A template match's groups.
struct Caps<'h> {
    re: &'h FastRe,
    line: &'h str,
    spans: super::regex::Spans,
}

impl<'h> Caps<'h> {
    fn new(re: &'h FastRe, line: &'h str, from: usize) -> Option<Caps<'h>> {
        let spans = re.captures_at(line, from)?;
        Some(Caps { re, line, spans })
    }

    fn span(&self, name: &str) -> Option<(usize, usize)> {
        let i = self.re.capture_names().position(|n| n == Some(name))?;
        self.spans.get(i)?.1
    }

    fn name(&self, name: &str) -> Option<&'h str> {
        self.span(name).map(|(a, b)| &self.line[a..b])
    }
}

/// The point in time the fields name, and how the other seconds of its
/// minute follow. A year-less date is placed in the year that puts it not
/// more than a day in the future.
///
/// With `hours`, whether every second of the hour follows as well is found
/// (see [`even_hour`]).
fn civil(
    caps: &Caps<'_>,
    zone: &TimeZone,
    now: SystemTime,
    hours: bool,
) -> (Option<SystemTime>, Minute) {
    civil_fields(caps, zone, now, hours).unwrap_or((None, Minute::Unknown))
}

/// Where a group of two digits `[0-5][0-9]` stands in the whole match,
/// relative to its start, and their value.
fn two_digits(caps: &Caps<'_>, name: &str, whole: (usize, usize)) -> Option<(usize, u64)> {
    let s = caps.span(name)?;
    if s.0 < whole.0 || s.1 > whole.1 {
        return None;
    }
    let v = seconds(&caps.line.as_bytes()[s.0..s.1])?;
    Some((s.0 - whole.0, v))
}

/// `t` moved by `secs` (negative: back).
#[inline]
fn add(t: SystemTime, secs: i64) -> Option<SystemTime> {
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        t.checked_add(d)
    } else {
        t.checked_sub(d)
    }
}

/// Whole seconds from `a` to `b`, rounded down (negative when `b` is
/// earlier).
fn secs_until(a: SystemTime, b: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// Whether the hour starting (by the zone's reading) at `start` is even:
/// each of its civil seconds is `start` plus its distance from it. It is
/// when the zone changes its offset neither inside the hour nor in the
/// three days before it: then every civil second of the hour has exactly
/// one instant (no gap, and an earlier instant with the same reading would
/// need an offset change within the largest offset difference, 52 hours,
/// before it).
fn even_hour(z: &TimeZone, start: jiff::Timestamp) -> bool {
    let Ok(from) = start.checked_sub(jiff::SignedDuration::from_hours(72)) else {
        return false;
    };
    match z.following(from).next() {
        None => true,
        Some(tr) => tr.timestamp().as_second() > start.as_second() + 3599,
    }
}

fn civil_fields(
    caps: &Caps<'_>,
    zone: &TimeZone,
    now: SystemTime,
    hours: bool,
) -> Option<(Option<SystemTime>, Minute)> {
    let num = |n: &str| caps.name(n).and_then(|m| m.trim().parse::<i32>().ok());
    let now_ts = jiff::Timestamp::try_from(now).ok()?;
    let this_year = now_ts.to_zoned(zone.clone()).year();
    let explicit_year = num("Y").or_else(|| num("y").map(|y| 2000 + y));
    let mon = num("m")
        .map(|m| m as i8)
        .or_else(|| caps.name("b").and_then(month));
    let (mon, day) = match (mon, num("d")) {
        (Some(m), Some(d)) => (m, d as i8),
        _ => {
            let z = now_ts.to_zoned(zone.clone());
            (z.month(), z.day())
        }
    };
    let mut hour = num("H").unwrap_or(0);
    if let Some(i) = num("I") {
        let pm = caps.name("p").is_some_and(|p| p.eq_ignore_ascii_case("pm"));
        hour = i % 12 + if pm { 12 } else { 0 };
    }
    let minute = num("M").unwrap_or(0);
    let second = num("S").unwrap_or(0).min(59);
    // A written offset, else a zone name fail2ban reads as a fixed offset
    // (`UTC Jun 22 09:56:12`; an unknown name leaves the source's zone).
    let zone_of_line = caps
        .name("z")
        .and_then(offset)
        .or_else(|| caps.name("Z").and_then(zone_name));
    let z = zone_of_line.unwrap_or_else(|| zone.clone());
    let stamp = |year: i32, minute: i32, second: i32| -> Option<jiff::Timestamp> {
        let dt = DateTime::new(
            year as i16,
            mon,
            day,
            hour as i8,
            minute as i8,
            second as i8,
            0,
        )
        .ok()?;
        Some(dt.to_zoned(z.clone()).ok()?.timestamp())
    };
    let at = |year: i32, second: i32| stamp(year, minute, second).map(SystemTime::from);
    // Second 0 of the minute in `year`, when each second of it is that
    // plus its number (an offset change inside the minute, as in some
    // zones' history, makes it `None`).
    let uniform = |year: i32| -> Option<SystemTime> {
        let first = at(year, 0)?;
        (at(year, 59)? == first + std::time::Duration::from_secs(59)).then_some(first)
    };
    // Whether each second of the hour in `year` is second 0 of this
    // minute plus its distance from it (`first`: that second 0).
    let hour_even = |year: i32, first: SystemTime| -> bool {
        hours
            && (0..60).contains(&minute)
            && stamp(year, 0, 0).is_some_and(|s| {
                even_hour(&z, s) && add(SystemTime::from(s), i64::from(minute) * 60) == Some(first)
            })
    };
    let secs = std::time::Duration::from_secs(second as u64);
    Some(match explicit_year {
        Some(y) => match uniform(y) {
            Some(first) => {
                let hour = hour_even(y, first);
                (
                    Some(first + secs),
                    Minute::Fixed {
                        first: Some(first),
                        hour,
                    },
                )
            }
            None => (at(y, second), Minute::Unknown),
        },
        None => {
            let Some(this) = uniform(this_year as i32) else {
                let t = at(this_year as i32, second)?;
                let t = if t > now + DAY {
                    at(this_year as i32 - 1, second)
                } else {
                    Some(t)
                };
                return Some((t, Minute::Unknown));
            };
            let this_until = secs_until(this, now + DAY);
            let hour = hour_even(this_year as i32, this);
            if this + secs > now + DAY {
                let prev = uniform(this_year as i32 - 1);
                let t = match prev {
                    Some(p) => Some(p + secs),
                    None => at(this_year as i32 - 1, second),
                };
                let minute = Minute::YearLess {
                    this,
                    prev,
                    this_until,
                    hour: hour && prev.is_some_and(|p| hour_even(this_year as i32 - 1, p)),
                };
                (t, minute)
            } else {
                let minute = Minute::YearLess {
                    this,
                    prev: None,
                    this_until,
                    hour,
                };
                (Some(this + secs), minute)
            }
        }
    })
}

/// How far ahead of now a year-less date may be before it is last year's.
const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The value of a two-digit seconds field that another second of the same
/// minute can replace without changing how the template matches.
fn seconds(b: &[u8]) -> Option<u64> {
    match b {
        [t @ b'0'..=b'5', u @ b'0'..=b'9'] => Some(u64::from((t - b'0') * 10 + (u - b'0'))),
        _ => None,
    }
}

/// Common zone abbreviations, as fixed offsets in minutes east of UTC (the
/// values fail2ban gives them: `CST` is North American, `CEST` is +2 all
/// year, no daylight-saving switch is implied).
const ZONE_NAMES: &[(&str, i32)] = &[
    ("UTC", 0),
    ("UT", 0),
    ("GMT", 0),
    ("Z", 0),
    ("WET", 0),
    ("WEST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("AST", -240),
    ("ADT", -180),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("AKST", -540),
    ("AKDT", -480),
    ("HST", -600),
    ("NST", -210),
    ("NDT", -150),
    ("JST", 540),
    ("KST", 540),
    ("HKT", 480),
    ("SGT", 480),
    ("AWST", 480),
    ("ACST", 570),
    ("ACDT", 630),
    ("AEST", 600),
    ("AEDT", 660),
    ("NZST", 720),
    ("NZDT", 780),
];

fn zone_name(name: &str) -> Option<TimeZone> {
    let (_, minutes) = ZONE_NAMES.iter().find(|(n, _)| *n == name)?;
    let off = jiff::tz::Offset::from_seconds(minutes * 60).ok()?;
    Some(TimeZone::fixed(off))
}

fn offset(z: &str) -> Option<TimeZone> {
    match z {
        "Z" | "UTC" | "GMT" => Some(TimeZone::UTC),
        _ => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            let h: i32 = digits.get(..2)?.parse().ok()?;
            let m: i32 = digits.get(2..4).map_or(Some(0), |m| m.parse().ok())?;
            let off = jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()?;
            Some(TimeZone::fixed(off))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::from("2024-06-01T12:00:00Z".parse::<jiff::Timestamp>().unwrap())
    }

    fn cut(finder: &DateFinder, line: &str) -> Option<(String, String)> {
        let f = finder.find(line, &TimeZone::UTC, now())?;
        let t = jiff::Timestamp::try_from(f.time?).unwrap().to_string();
        Some((format!("{}{}", &line[..f.start], &line[f.end..]), t))
    }

    #[test]
    fn default_formats_are_cut_out() {
        let d = DateFinder::new(None).unwrap().unwrap();
        assert_eq!(
            cut(&d, "May 31 23:59:58 host sshd[1]: x").unwrap(),
            (" host sshd[1]: x".into(), "2024-05-31T23:59:58Z".into())
        );
        assert_eq!(
            cut(&d, "2023-01-02T03:04:05.123+01:00 host x").unwrap(),
            (" host x".into(), "2023-01-02T02:04:05Z".into())
        );
        assert_eq!(
            cut(&d, "192.0.2.1 - - [02/Jan/2023:03:04:05 +0000] \"GET /\"").unwrap(),
            (
                "192.0.2.1 - - [] \"GET /\"".into(),
                "2023-01-02T03:04:05Z".into()
            )
        );
        // A year-less date later than tomorrow is last year's.
        assert_eq!(
            cut(&d, "Dec 24 10:00:00 h x").unwrap().1,
            "2023-12-24T10:00:00Z"
        );
        assert_eq!(
            cut(&d, "1700000000.123 x").unwrap(),
            (" x".into(), "2023-11-14T22:13:20Z".into())
        );
    }

    #[test]
    fn datepattern_forms() {
        let d = DateFinder::new(Some("^%Y/%m/%d %H:%M:%S"))
            .unwrap()
            .unwrap();
        assert!(cut(&d, "2023/01/02 03:04:05 [error] x").is_some());
        assert!(cut(&d, "x 2023/01/02 03:04:05").is_none());
        // A pattern's own `^` skips no leading characters (`{^LN-BEG}` skips
        // up to two non-word ones).
        assert!(cut(&d, "[2023/01/02 03:04:05] x").is_none());
        let d = DateFinder::new(Some("{^LN-BEG}")).unwrap().unwrap();
        assert!(cut(&d, "x 2023-01-02 03:04:05").is_none());
        assert!(cut(&d, "2023-01-02 03:04:05 x").is_some());
        let d = DateFinder::new(Some("{^LN-BEG}EPOCH")).unwrap().unwrap();
        assert_eq!(cut(&d, "1700000000 x").unwrap().0, " x");
        assert!(DateFinder::new(Some("{NONE}")).unwrap().is_none());
        // Regression: fail2ban's unanchored EPOCH takes a number only at the
        // line start, in a `[...]` opening the line, or in `audit(N:serial)`;
        // a bracketed request time mid-line is no date.
        let d = DateFinder::new(Some("EPOCH")).unwrap().unwrap();
        assert_eq!(cut(&d, "1700000000 x").unwrap().0, " x");
        assert_eq!(cut(&d, "[1700000000.123] x").unwrap().0, "[] x");
        assert!(cut(&d, "[1700000000.123 x").is_none());
        assert!(cut(&d, "192.0.2.1 - - [1700000000.123456] x").is_none());
        assert_eq!(
            cut(&d, "type=AVC msg=audit(1700000000.123:42): x")
                .unwrap()
                .0,
            "type=AVC msg=audit(:42): x"
        );
        assert!(cut(&d, "msg=audit(1700000000.123): x").is_none());
        // Regression: `^{DATE}` (recidive) also finds a line-start epoch.
        let d = DateFinder::new(Some("^{DATE}")).unwrap().unwrap();
        assert_eq!(cut(&d, "1700000000.123456 host x").unwrap().0, " host x");
        assert_eq!(cut(&d, "2023-01-02 03:04:05 x").unwrap().0, " x");
        assert!(DateFinder::new(Some("%Q")).is_err());
        let d = DateFinder::new(Some("%%d %d-%b-%Y %H:%M:%S"))
            .unwrap()
            .unwrap();
        assert!(cut(&d, "%d 02-Jan-2023 03:04:05").is_some());
    }

    #[test]
    fn remembered_dates_follow_now() {
        let d = DateFinder::new(None).unwrap().unwrap();
        let mut st = DateState::default();
        let at = |t: &str| SystemTime::from(t.parse::<jiff::Timestamp>().unwrap());
        let mut find = |line: &str, now| {
            let f = d.detect(line, &TimeZone::UTC, now, &mut st).unwrap();
            let t = jiff::Timestamp::try_from(f.time.unwrap())
                .unwrap()
                .to_string();
            (format!("{}{}", &line[..f.start], &line[f.end..]), t)
        };
        let line = "Jun 02 10:00:00 h x";
        let y2024 = find(line, at("2024-06-01T12:00:00Z"));
        // Same text, same now: remembered, same answer.
        assert_eq!(find(line, at("2024-06-01T12:00:00Z")), y2024);
        assert_eq!(y2024.1, "2024-06-02T10:00:00Z");
        // Same text, a year later: the year choice is made again.
        assert_eq!(
            find(line, at("2025-06-01T12:00:00Z")).1,
            "2025-06-02T10:00:00Z"
        );
        // Same date text, glued to a word: not a date here, as without the memo.
        assert_eq!(
            find("Jun 02 10:00:00 h y", at("2024-06-01T12:00:00Z")).0,
            " h y"
        );
        let glued = "xJun 02 10:00:00z";
        assert_eq!(
            d.detect(glued, &TimeZone::UTC, at("2024-06-01T12:00:00Z"), &mut st),
            d.find(glued, &TimeZone::UTC, at("2024-06-01T12:00:00Z"))
        );
    }

    #[test]
    fn other_minutes_of_the_hour_follow_from_the_memo() {
        // The proptest below compares the memo's answers with fresh parses;
        // this checks that the memo answers for another minute at all: the
        // span check's walk, saved at the minute on the second line, stays
        // (a parse would drop it).
        let d = DateFinder::new(Some("{^LN-BEG}")).unwrap().unwrap();
        let mut st = DateState::default();
        let lines = [
            "Jun 02 10:00:00 h x",
            "Jun 02 10:01:05 h x",
            "Jun 02 10:59:59 h x",
            "Jun 02 10:07:30 h x",
        ];
        for (i, l) in lines.iter().enumerate() {
            let f = d.detect(l, &TimeZone::UTC, now(), &mut st).unwrap();
            let t = jiff::Timestamp::try_from(f.time.unwrap()).unwrap();
            assert_eq!(t.to_string(), format!("2024-06-02T{}Z", &l[7..15]));
            assert_eq!(st.memo.mins, Some((10, 0)), "{l}");
            assert_eq!(st.memo.walked.map(|w| w.at), (i > 0).then_some(10), "{l}");
        }
        // Another hour is parsed again.
        d.detect("Jun 02 11:07:30 h x", &TimeZone::UTC, now(), &mut st);
        assert_eq!(st.memo.mins, Some((10, 7)));
        assert!(st.memo.walked.is_none());
        // Near an offset change the hour is not even: minutes are parsed.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let mut st = DateState::default();
        d.detect("Apr 01 10:10:00 h x", &berlin, now(), &mut st);
        assert!(st.memo.mins.is_some() && !st.memo.minute.hour());
        d.detect("Apr 01 10:11:00 h x", &berlin, now(), &mut st);
        assert!(st.memo.walked.is_none());
    }

    #[test]
    fn hot_answers_the_next_lines() {
        // After a line answered by the memo, the lines of other seconds and
        // minutes of the hour are answered by the word compare (and the
        // DFA walk past the seconds for a line-start form); another host
        // name after the stamp does not matter, another hour or a year
        // after the stamp does.
        let d = DateFinder::new(None).unwrap().unwrap();
        let mut st = DateState::default();
        // Each line, and whether a hot shape stands after it.
        let lines = [
            ("Jun 02 10:00:00 web1 sshd[1]: x", false),
            ("Jun 02 10:00:01 web1 sshd[1]: y", true),
            ("Jun 02 10:07:59 web2 sshd[2]: z", true),
            ("Jun 02 10:59:30 mail sshd[2]: z", true),
            ("Jun 02 11:00:00 web1 sshd[1]: x", false),
            ("Jun 02 11:00:01 web1 sshd[1]: y", true),
            ("Jun 02 11:00:02 2031 sshd[1]: y", false),
        ];
        for (l, hot) in lines {
            let f = d.detect(l, &TimeZone::UTC, now(), &mut st).unwrap();
            let t = jiff::Timestamp::try_from(f.time.unwrap()).unwrap();
            let year = if l[15..].starts_with(" 2031") {
                2031
            } else {
                2024
            };
            assert_eq!(t.to_string(), format!("{year}-06-02T{}Z", &l[7..15]));
            assert_eq!(st.hot.is_some(), hot, "{l}");
        }
        // The year after the stamp is part of it: the DFA walk says so.
        let f = d
            .find("Jun 02 11:00:02 2031 sshd[1]: y", &TimeZone::UTC, now())
            .unwrap();
        assert_eq!((f.start, f.end), (0, 20));
        // A stamp inside the line, with the characters beside it.
        let mut st = DateState::default();
        let apache = |t: &str| format!("192.0.2.1 - - [02/Jun/2024:10:{t} +0000] \"GET /\"");
        for t in ["00:00", "00:01", "17:42"] {
            let l = apache(t);
            let f = d.detect(&l, &TimeZone::UTC, now(), &mut st).unwrap();
            assert_eq!(&l[f.start..f.end], &format!("02/Jun/2024:10:{t} +0000"));
        }
        assert!(st.hot.is_some());
        assert!(d.hot(&apache("17:43"), now(), &mut st).is_some());
        let glued = "192.0.2.1 - - [02/Jun/2024:10:17:43 +0000x \"GET /\"";
        assert!(d.hot(glued, now(), &mut st).is_none());
        // The bytes after the stamp that ended the walk's match on the line
        // that set the shape up skip the walk; others are walked.
        let mut st = DateState::default();
        for l in ["Jun 02 10:00:00 web1 x", "Jun 02 10:00:01 web1 x"] {
            d.detect(l, &TimeZone::UTC, now(), &mut st).unwrap();
        }
        assert!(st.hot.as_ref().unwrap().tail.is_some());
        for (l, end) in [
            ("Jun 02 10:00:02 web1 x", Some(15)),
            ("Jun 02 10:00:03 2031 x", None),
            ("Jun 02 10:00:04 web9 x", Some(15)),
            ("Jun 02 10:00:05", None),
        ] {
            assert_eq!(d.hot(l, now(), &mut st).map(|f| f.end), end, "{l}");
        }
        let later = now() + std::time::Duration::from_secs(1);
        assert!(d.hot(&apache("17:43"), later, &mut st).is_none());
    }

    #[test]
    fn hot_reuses_the_last_seconds_time() {
        let d = DateFinder::new(None).unwrap().unwrap();
        let mut st = DateState::default();
        for l in ["Jun 02 10:00:00 web1 x", "Jun 02 10:00:01 web1 x"] {
            d.detect(l, &TimeZone::UTC, now(), &mut st).unwrap();
        }
        assert_eq!(st.hot.as_ref().unwrap().second.0, NO_DIGITS);
        let time = |l: &str, st: &mut DateState| d.hot(l, now(), st).map(|f| f.time);
        let first = time("Jun 02 10:07:09 web1 x", &mut st).unwrap();
        let kept = st.hot.as_ref().unwrap().second;
        assert_eq!(kept.1, first);
        assert_ne!(kept.0, NO_DIGITS);
        // The same second again: the kept time, the same as a parse gives.
        assert_eq!(time("Jun 02 10:07:09 web2 y", &mut st), Some(first));
        let parsed = d
            .find("Jun 02 10:07:09 web2 y", &TimeZone::UTC, now())
            .unwrap();
        assert_eq!(parsed.time, first);
        // Digits that are no time leave it as it was.
        assert_eq!(time("Jun 02 10:07:6x web1 x", &mut st), None);
        assert_eq!(st.hot.as_ref().unwrap().second, kept);
        // Another second replaces it.
        let next = time("Jun 02 10:08:10 web1 x", &mut st).unwrap();
        assert_eq!(next, first.map(|t| t + std::time::Duration::from_secs(61)));
        assert_eq!(st.hot.as_ref().unwrap().second.1, next);
    }

    /// The lines' cut text, each found with the state of the lines before.
    fn cuts(d: &DateFinder, lines: &[&str]) -> Vec<String> {
        let mut st = DateState::default();
        lines
            .iter()
            .map(|l| match d.detect(l, &TimeZone::UTC, now(), &mut st) {
                Some(f) => format!("{}|{}", &l[..f.start], &l[f.end..]),
                None => format!("none: {l}"),
            })
            .collect()
    }

    #[test]
    fn earliest_starting_form_wins() {
        // Regression (issue 11, differential test): a zone name before the
        // stamp. Several default forms match; fail2ban takes the one that
        // starts first, the zone-name form, not the plain syslog form that
        // comes first in the list.
        let d = DateFinder::new(None).unwrap().unwrap();
        assert_eq!(
            cut(&d, "192.0.2.1 - u [UTC Nov 18 21:34:34] \"GET /\" 401")
                .unwrap()
                .0,
            "192.0.2.1 - u [] \"GET /\" 401"
        );
        assert_eq!(
            cuts(
                &d,
                &[
                    "[28325:00010-3735542592] UTC Jun 22 09:56:12   smtp: x",
                    "UTC Sep 08 06:14:27   smtp: x",
                    "UTC Nov 07 22:21:20   smtp: y",
                ]
            ),
            [
                "[28325:00010-3735542592] |   smtp: x",
                "|   smtp: x",
                "|   smtp: y",
            ]
        );
        // The zone name places the time (fail2ban reads it as an offset).
        let d2 = DateFinder::new(None).unwrap().unwrap();
        let f = d2
            .find("PDT Apr 16 21:05:29 h x", &TimeZone::UTC, now())
            .unwrap();
        assert_eq!(
            jiff::Timestamp::try_from(f.time.unwrap())
                .unwrap()
                .to_string(),
            "2024-04-17T04:05:29Z"
        );
        // At the line start, the first form in the list wins at once.
        assert_eq!(cut(&d, "Jun 22 09:56:12 h x").unwrap().0, " h x");
    }

    #[test]
    fn last_form_is_kept_only_where_it_stood() {
        // Regression (domino-smtp, differential test): the month-first form
        // found a stamp mid-line; on a line with a stamp at its start the
        // line-start day-first form wins (as fail2ban: it leaves `.252`),
        // not the remembered form.
        let d = DateFinder::new(None).unwrap().unwrap();
        assert_eq!(
            cuts(
                &d,
                &[
                    "[1:2] 08-22-2014 09:56:12.252   smtp: a",
                    "09-08-2014 06:14:27.252   smtp: b",
                    "11-07-2016 22:21:20.252   smtp: c",
                ]
            ),
            ["[1:2] |   smtp: a", "|.252   smtp: b", "|.252   smtp: c"]
        );
        // Same place, same surroundings: the last form is kept, and searched
        // only there (the year after it is not taken, as in fail2ban).
        assert_eq!(
            cuts(
                &d,
                &["x: Jun 22 09:56:12 h a", "x: Jun 22 09:56:13 2024 h b"]
            ),
            ["x: | h a", "x: | 2024 h b"]
        );
    }

    #[test]
    fn default_order_and_anchors() {
        let d = DateFinder::new(Some("{^LN-BEG}%Y/%m/%d %H:%M:%S"))
            .unwrap()
            .unwrap();
        assert_eq!(cut(&d, "[2023/01/02 03:04:05] x").unwrap().0, "[] x");
        // An unanchored TAI64N stamp is found mid-line.
        let d = DateFinder::new(Some("TAI64N")).unwrap().unwrap();
        assert_eq!(cut(&d, "x @4000000063b2c40d0a3b1a2c y").unwrap().0, "x  y");
        // A form listed twice counts once.
        let d = DateFinder::new(Some("{^LN-BEG}EPOCH\n{^LN-BEG}"))
            .unwrap()
            .unwrap();
        let epochs = d.templates.iter().filter(|t| t.epoch).count();
        assert_eq!(epochs, 1);
    }

    #[test]
    fn default_forms_compile() {
        // Their texts are not parsed at load: each must parse, compile, and
        // have the memo flag the full parse gives.
        for p in [None, Some("{^LN-BEG}"), Some("^{DATE}"), Some("{DATE}")] {
            let d = DateFinder::new(p).unwrap().unwrap();
            for t in &d.templates {
                let hir = regex_syntax::parse(&t.text).unwrap();
                assert!(t.re().is_some(), "{}", t.text);
                assert_eq!(t.memo_ok, look_free(&hir), "{}", t.text);
            }
        }
        let d = DateFinder::new(None).unwrap().unwrap();
        assert!(d.templates.iter().any(|t| !t.memo_ok), "EPOCH's \\b");
        // A filter's own pattern is checked at load.
        assert!(DateFinder::new(Some("^%Y (")).is_err());
        assert!(DateFinder::new(Some("x{DATE}(")).is_err());
    }

    mod line_start {
        //! The DFA span check of a line-start form gives the regex engine's
        //! match, on ASCII lines and others.
        use super::*;
        use proptest::prelude::*;

        /// Stamps, pieces that may lengthen or break a match, and non-ASCII
        /// characters (the Kelvin sign and long s fold onto ASCII letters).
        const PIECES: &[&str] = &[
            "May",
            "Jun",
            "sep",
            "Mon",
            "Tue",
            " ",
            "  ",
            "19",
            "9",
            "00",
            "59",
            "7",
            ":",
            "2024",
            "1999",
            ".",
            "123",
            "-",
            "/",
            "T",
            "+01:00",
            "+0200",
            "Z",
            "UTC",
            "CEST",
            "é",
            "\u{212a}",
            "\u{17f}",
            "x",
            "[",
            "]",
            "<",
            ">",
            "@",
            "PM",
            "am",
            ",",
            "\n",
            "1700000000",
            "4000000063b2c40d0a3b1a2c",
        ];

        const FORMS: &[&str] = &[
            "%b %e %H:%M:%S",
            "%b %d %H:%M:%S.%3f",
            "%a %b %d %H:%M:%S %Y",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S%:z",
            "%Y/%m/%d %H:%M:%S",
            "%d/%b/%Y:%H:%M:%S %z",
            "%m/%d/%Y:%H:%M:%S",
            "%d-%m-%Y %H:%M:%S",
            "%y%m%d %H:%M:%S",
            "%Y%m%dT%H%M%S",
            "%b %d, %Y %I:%M:%S %p",
            "%H:%M:%S",
            "<%m/%d/%y@%H:%M:%S>",
            "%b-%d-%y %H:%M:%S",
            "%s",
        ];

        /// Built once: each template compiles on first use.
        fn finders() -> &'static [DateFinder] {
            static FINDERS: OnceLock<Vec<DateFinder>> = OnceLock::new();
            FINDERS.get_or_init(|| {
                [
                    None,
                    Some("{^LN-BEG}"),
                    Some("^%Y/%m/%d %H:%M:%S"),
                    Some("{^LN-BEG}EPOCH"),
                    Some("^{DATE}"),
                    Some("{^LN-BEG}%d/%b/%Y:%H:%M:%S(?: %z)?\\b"),
                ]
                .into_iter()
                .map(|p| DateFinder::new(p).unwrap().unwrap())
                .collect()
            })
        }

        fn piece() -> impl Strategy<Value = String> {
            prop::sample::select(PIECES).prop_map(str::to_owned)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]
            #[test]
            fn dfa_equals_regex(
                before in proptest::collection::vec(piece(), 0..3),
                form in 0..FORMS.len(),
                t in 0i64..4_102_444_800,
                after in proptest::collection::vec(piece(), 0..6),
            ) {
                let stamp = jiff::Timestamp::from_second(t)
                    .unwrap()
                    .to_zoned(TimeZone::UTC)
                    .strftime(FORMS[form])
                    .to_string();
                let line = format!("{}{stamp}{}", before.concat(), after.concat());
                for d in finders() {
                    for t in d.templates.iter().filter(|t| t.line_begin) {
                        let want = t.re().and_then(|re| re.find_at(&line, 0));
                        prop_assert_eq!(t.line_start_match(&line), want, "{} on {:?}", t.text, line);
                    }
                }
            }
        }
    }

    mod same_minute {
        //! The compare of a stamp's bytes against the last parse gives what a
        //! full detection and parse gives, line after line.
        use super::*;
        use proptest::prelude::*;

        /// Stamp forms (strftime) and where they stand in a line.
        const FORMS: &[(&str, &str, &str)] = &[
            ("", "%b %e %H:%M:%S", " host sshd[1]: x"),
            ("", "%b %e %H:%M:%S", " 2031 host x"),
            ("", "%b %d %H:%M:%S.412", " host sshd[1]: x"),
            ("", "%Y-%m-%d %H:%M:%S", " x"),
            ("", "%Y-%m-%dT%H:%M:%S%:z", " x"),
            ("", "%Y-%m-%dT%H:%M:%S.123456%:z", " x"),
            ("192.0.2.1 - - [", "%d/%b/%Y:%H:%M:%S %z", "] \"GET /\""),
            ("", "UTC %b %d %H:%M:%S", "   smtp: x"),
            ("x: ", "%b %d %H:%M:%S", " h y"),
            ("", "%a %b %d %H:%M:%S %Y", " x"),
            ("", "%y%m%d %H:%M:%S", " x"),
            ("", "%Y%m%dT%H%M%S", " x"),
            ("", "%d-%m-%Y %H:%M:%S", " x"),
            ("[1:2] ", "%m-%d-%Y %H:%M:%S.252", " x"),
            ("x: ", "%b %d %H:%M:%S", " 2031 h y"),
            ("", "%H:%M:%S", " x"),
            ("", "CEST %b %d %H:%M:%S", "   smtp: x"),
            ("[1] ", "PDT %a %b %d %H:%M:%S %Y", " x"),
            ("", "%s", " x"),
            ("", "TAI64N", " x"),
            ("", "%Y/%m/%d %H:%M:%S", " x"),
            ("", "%Y.%m.%d %H:%M:%S,123", " x"),
            ("", "%a %b %d %Y %H:%M:%S", " x"),
            ("", "%d/%m/%y %H:%M:%S", " x"),
            ("", "%d-%b-%Y %H:%M:%S.123", " x"),
            ("[", "%m/%d/%Y:%H:%M:%S", "] x"),
            ("", "<%m/%d/%y@%H:%M:%S>", " x"),
            ("", "%b %d, %Y %I:%M:%S %p", " x"),
            ("", "%b-%d-%y %H:%M:%S", " x"),
            ("", "%z %b %d %H:%M:%S", " x"),
            ("é ", "%b %e %H:%M:%S", " h\u{212a}"),
            // Two stamps on a line.
            ("", "%b %e %H:%M:%S", " host x: Jun 12 10:11:12 y"),
            ("", "%Y-%m-%d %H:%M:%S", " 2020-01-02 03:04:05 x"),
            ("x ", "%Y-%m-%d %H:%M:%S", " Jun 12 10:11:12 y"),
            ("[", "%d/%b/%Y:%H:%M:%S %z", "] 2024-01-02 03:04:05 x"),
        ];

        /// A line's stamp; `TAI64N` as daemontools writes it.
        fn stamp(t: i64, tz: &TimeZone, pattern: &str) -> String {
            if pattern == "TAI64N" {
                return format!("@{:016x}{:08x}", (1u64 << 62) + 10 + t as u64, t % 1000);
            }
            jiff::Timestamp::from_second(t)
                .unwrap()
                .to_zoned(tz.clone())
                .strftime(pattern)
                .to_string()
        }

        const ZONES: &[&str] = &[
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
        ];

        fn zone(name: &str) -> TimeZone {
            TimeZone::get(name).unwrap_or(TimeZone::UTC)
        }

        /// Start instants: anywhere, or a few seconds before the end of a
        /// minute, hour, day or year (in UTC; zones shift the civil ends).
        fn start() -> impl Strategy<Value = i64> {
            let year_end = (1995i16..2090).prop_map(|y| {
                jiff::civil::date(y + 1, 1, 1)
                    .at(0, 0, 0, 0)
                    .to_zoned(TimeZone::UTC)
                    .unwrap()
                    .timestamp()
                    .as_second()
            });
            prop_oneof![
                788_918_400i64..3_786_912_000,
                year_end.prop_flat_map(|e| (e - 130)..(e + 5)),
                (9_000i64..40_000).prop_map(|d| d * 86_400 - 3),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn cached_equals_uncached(
                forms in proptest::collection::vec(0..FORMS.len(), 1..3),
                form_at in proptest::collection::vec(any::<prop::sample::Index>(), 40),
                zone_at in 0..ZONES.len(),
                start in start(),
                steps in proptest::collection::vec(
                    prop_oneof![
                        Just(0i64),
                        Just(1),
                        0i64..70,
                        0i64..4_000,
                        Just(-60),
                        Just(3_600),
                        Just(86_400)
                    ],
                    1..40,
                ),
                now_ahead in -3i64 * 86_400..3 * 86_400,
                pattern in prop::sample::select(vec![
                    None,
                    Some("{^LN-BEG}"),
                    Some("{^LN-BEG}%b %d %H:%M:%S"),
                ]),
                now_moves in proptest::collection::vec(any::<bool>(), 40),
                // Mostly the form's own text after the stamp; else another
                // that a DFA walk past the seconds reads differently.
                tails in proptest::collection::vec(0..7usize, 40),
            ) {
                let tz = zone(ZONES[zone_at]);
                let d = DateFinder::new(pattern).unwrap().unwrap();
                let (mut cached, mut plain) = (DateState::default(), DateState::default());
                let mut t = start;
                let mut now = start + now_ahead;
                for (i, step) in steps.iter().enumerate() {
                    t += step;
                    if now_moves[i] {
                        now += step;
                    }
                    // A line's form: one of the case's few, so forms mix.
                    let (before, pattern, after) = FORMS[*form_at[i].get(&forms)];
                    let stamp = stamp(t, &tz, pattern);
                    let after = match tails[i] {
                        3 => " 2031 x",
                        4 => "",
                        5 => ".5 web1",
                        6 => " web2 y",
                        _ => after,
                    };
                    let line = format!("{before}{stamp}{after}");
                    let now_t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(now as u64);
                    plain.forget_memo();
                    let a = d.detect(&line, &tz, now_t, &mut cached);
                    let b = d.detect(&line, &tz, now_t, &mut plain);
                    prop_assert_eq!(a, b, "{}", line);
                }
            }
        }
    }
}
