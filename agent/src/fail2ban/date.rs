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

/// One way to find a date.
#[derive(Debug)]
struct Template {
    /// Compiled on first use: a filter carries some thirty templates and a
    /// log uses one or two of them, and compiling all of them cost more than
    /// examining thousands of lines. The text is parsed (and so checked) when
    /// the filter is loaded.
    re: OnceLock<Option<FastRe>>,
    text: String,
    /// Match only at the line start (after up to two non-word characters).
    line_begin: bool,
    /// Check fail2ban's word boundaries around the date.
    bounds: bool,
    epoch: bool,
    /// Its regex has no assertion but a leading `^`, so a match's groups depend
    /// only on the matched text: a line whose match text equals the last one's
    /// reuses that parse (see [`DateMemo`]).
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
    text: String,
    /// The `date` group, relative to the match start.
    date: (usize, usize),
    /// The `now` the time was computed for (a year-less date depends on it).
    now: Option<SystemTime>,
    time: Option<SystemTime>,
}

impl Default for DateMemo {
    fn default() -> Self {
        DateMemo {
            template: usize::MAX,
            text: String::new(),
            date: (0, 0),
            now: None,
            time: None,
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
        let anchored_defaults = |templates: &mut Vec<Template>| -> Result<(), String> {
            // Anchored variants first: a date at the line start is the likely one.
            for p in DEFAULTS {
                let anchored = if p.starts_with('^') || p.starts_with("{^LN-BEG}") {
                    (*p).to_owned()
                } else {
                    format!("{{^LN-BEG}}{p}")
                };
                templates.push(template(&anchored)?);
            }
            Ok(())
        };
        if lines.is_empty() {
            anchored_defaults(&mut templates)?;
            for p in DEFAULTS {
                if !p.starts_with('^') && !p.starts_with("{^LN-BEG}") {
                    templates.push(template(p)?);
                }
            }
        }
        for l in lines {
            if l == "{^LN-BEG}" {
                anchored_defaults(&mut templates)?;
            } else if l.contains("{DATE}") {
                // A regex around the date: one template per common format.
                for p in DEFAULTS {
                    if matches!(*p, "EPOCH" | "TAI64N") {
                        // fail2ban wraps only these forms' names: `^{DATE}`
                        // gives the line-start epoch, `{DATE}` the plain one;
                        // any other context leaves no usable form.
                        match l {
                            "^{DATE}" => templates.push(template(&format!("^{p}"))?),
                            "{DATE}" => templates.push(template(p)?),
                            _ => {}
                        }
                        continue;
                    }
                    let p = p.trim_start_matches("{^LN-BEG}").trim_start_matches('^');
                    templates.push(template(&l.replace("{DATE}", p))?);
                }
            } else {
                templates.push(template(l)?);
            }
        }
        Ok(Some(DateFinder { templates }))
    }

    /// The first date found, fail2ban's way (templates in order).
    pub fn find(&self, line: &str, zone: &TimeZone, now: SystemTime) -> Option<Found> {
        self.find_from(line, zone, now, &mut 0, &mut DateMemo::default())
    }

    /// [`find`](Self::find), trying first the template that found the last line's
    /// date (`last`, updated): a log's lines share one format, and fail2ban's
    /// detector also prefers the template that hit.
    pub(crate) fn find_from(
        &self,
        line: &str,
        zone: &TimeZone,
        now: SystemTime,
        last: &mut usize,
        memo: &mut DateMemo,
    ) -> Option<Found> {
        if let Some(f) = self
            .templates
            .get(*last)
            .and_then(|t| t.find(*last, line, zone, now, memo))
        {
            return Some(f);
        }
        for (i, t) in self.templates.iter().enumerate() {
            if let Some(f) = t.find(i, line, zone, now, memo) {
                *last = i;
                return Some(f);
            }
        }
        None
    }
}

fn template(p: &str) -> Result<Template, String> {
    let mut p = p.trim();
    let mut line_begin = false;
    let mut bounds = true;
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
            line_begin = true;
            (r"@[0-9a-f]{24}".to_owned(), false)
        }
        "ISO8601" => (pattern_regex(DEFAULTS[0])?, false),
        _ => {
            let (body, anchored) = match p.strip_prefix('^') {
                Some(r) => (r, true),
                None => (p, false),
            };
            line_begin |= anchored;
            (pattern_regex(body)?, false)
        }
    };
    // The date is the pattern's first group, or all of it.
    let body = match first_plain_group(&body) {
        Some(at) => format!("{}(?P<date>{}", &body[..at], &body[at + 1..]),
        None => format!("(?P<date>{body})"),
    };
    let text = if line_begin {
        format!(r"(?i)^(?:\W{{0,2}})?{body}")
    } else {
        format!(r"(?i){body}")
    };
    let hir = regex_syntax::parse(&text).map_err(|e| format!("datepattern {p:?}: {e}"))?;
    let memo_ok = hir
        .properties()
        .look_set()
        .remove(regex_syntax::hir::Look::Start)
        .is_empty();
    Ok(Template {
        re: OnceLock::new(),
        text,
        line_begin,
        bounds,
        epoch,
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
    /// The regex, compiled on first use. Its text parsed at load; only a
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
    fn find(
        &self,
        index: usize,
        line: &str,
        zone: &TimeZone,
        now: SystemTime,
        memo: &mut DateMemo,
    ) -> Option<Found> {
        let mut from = 0;
        loop {
            // The DFA finds the match; its groups come from the memo when the
            // same template matched the same text last time.
            let re = self.re()?;
            let whole = re.find_at(line, from)?;
            let whole_text = &line[whole.0..whole.1];
            let remembered =
                self.memo_ok && memo.template == index && memo.text.as_str() == whole_text;
            // The time when already known for this `now`.
            let (start, end, known) = if remembered {
                let known = (memo.now == Some(now)).then_some(memo.time);
                (whole.0 + memo.date.0, whole.0 + memo.date.1, known)
            } else {
                let caps = Caps::new(re, line, from)?;
                let m = caps.span("date")?;
                let time = self.time(&caps, &line[m.0..m.1], zone, now);
                memo.template = usize::MAX;
                if self.memo_ok {
                    memo.template = index;
                    memo.text.clear();
                    memo.text.push_str(whole_text);
                    memo.date = (m.0 - whole.0, m.1 - whole.0);
                    memo.now = Some(now);
                    memo.time = time;
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
                        let t = self.time(&caps, &line[start..end], zone, now);
                        memo.now = Some(now);
                        memo.time = t;
                        t
                    }
                };
                return Some(Found { start, end, time });
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

impl Template {
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
    ) -> Option<SystemTime> {
        if self.epoch {
            date.split('.')
                .next()
                .and_then(|s| s.parse::<u64>().ok())
                .map(|s| {
                    let s = if s > 99_999_999_999 { s / 1000 } else { s };
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s)
                })
        } else {
            civil(caps, zone, now)
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

/// The point in time the fields name. A year-less date is placed in the year
/// that puts it not more than a day in the future.
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

fn civil(caps: &Caps<'_>, zone: &TimeZone, now: SystemTime) -> Option<SystemTime> {
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
    let zone_of_line = caps.name("z").and_then(offset);
    let at = |year: i32| -> Option<SystemTime> {
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
        let z = zone_of_line.clone().unwrap_or_else(|| zone.clone());
        let ts = dt.to_zoned(z).ok()?.timestamp();
        Some(SystemTime::from(ts))
    };
    match explicit_year {
        Some(y) => at(y),
        None => {
            let t = at(this_year as i32)?;
            if t > now + std::time::Duration::from_secs(86_400) {
                at(this_year as i32 - 1)
            } else {
                Some(t)
            }
        }
    }
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
        let (mut last, mut memo) = (0, DateMemo::default());
        let at = |t: &str| SystemTime::from(t.parse::<jiff::Timestamp>().unwrap());
        let mut find = |line: &str, now| {
            let f = d
                .find_from(line, &TimeZone::UTC, now, &mut last, &mut memo)
                .unwrap();
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
        let fresh = DateFinder::new(None).unwrap().unwrap();
        let glued = "xJun 02 10:00:00z";
        assert_eq!(
            d.find_from(
                glued,
                &TimeZone::UTC,
                at("2024-06-01T12:00:00Z"),
                &mut last,
                &mut memo
            ),
            fresh.find(glued, &TimeZone::UTC, at("2024-06-01T12:00:00Z"))
        );
    }
}
