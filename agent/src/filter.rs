//! Filters: named regexes that turn one log line into an offence by an address.
//!
//! This module owns the meaning of `<HOST>` and the per-line hot path. A source's
//! filters are compiled once into a [`SourceMatcher`]: one multi-pattern regex over
//! every filter's regexes answers "which regexes match this line?" in a single pass,
//! and only those run a capturing search to pull out the address. The caller owns a
//! [`Scratch`] with every cache, capture slot and pattern set the search needs, so a
//! line is matched without allocating.
//!
//! Patterns are compiled without Unicode and without a UTF-8 requirement: log lines
//! are bytes, `.` must step over invalid UTF-8 written by an attacker, and ASCII
//! classes are what log formats use.

use std::net::IpAddr;

use regex_automata::meta::{self, Regex};
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Input, PatternSet};

use crate::addr;
use crate::config::FilterConfig;

/// The placeholder a filter regex uses for the offending address.
pub const HOST_PLACEHOLDER: &str = "<HOST>";

/// The capture group `<HOST>` expands to.
const HOST_GROUP: &str = "host";

/// What `<HOST>` expands to: dotted IPv4 or IPv6 text (with an optional dotted tail
/// for mapped forms). Deliberately a little loose: [`addr::parse_ip`] has the last
/// word on the capture, so this only needs to never cut a real address short.
const HOST_REGEX: &str =
    r"(?P<host>(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,45})";

/// Whether a pattern must name the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRule {
    /// Exactly one `<HOST>` (offence regexes).
    Required,
    /// At most one `<HOST>` (ignore regexes).
    Optional,
}

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
        /// `regex` or `ignore`.
        kind: &'static str,
        /// Position in that list.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: PatternError,
    },
    /// A filter without any regex would never match.
    #[error("filter {filter:?} has no regex")]
    Empty {
        /// Filter name.
        filter: String,
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

/// One line's offence: who, and which filter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The offending address (IPv4-mapped IPv6 already normalised).
    pub addr: IpAddr,
    /// The filter that matched.
    pub filter: FilterId,
}

/// Counts `<HOST>` and expands it into the capturing group, checking the rule.
pub fn expand_host(pattern: &str, rule: HostRule) -> Result<String, PatternError> {
    let count = pattern.matches(HOST_PLACEHOLDER).count();
    match (rule, count) {
        (HostRule::Required, 0) => return Err(PatternError::NoHost),
        (_, n) if n > 1 => return Err(PatternError::ManyHosts { count: n }),
        _ => {}
    }
    Ok(pattern.replace(HOST_PLACEHOLDER, HOST_REGEX))
}

/// Checks one pattern the way [`SourceMatcher::build`] will compile it, so config
/// validation reports exactly the errors the running agent would hit.
pub fn check_pattern(pattern: &str, rule: HostRule) -> Result<(), PatternError> {
    let expanded = expand_host(pattern, rule)?;
    // First the pattern as written, with `<HOST>` swapped for a group of the same
    // length, so a syntax error's offset points into what the user wrote.
    let same_length = pattern.replace(HOST_PLACEHOLDER, "(HOST)");
    if let Err(e) = builder().build(&same_length) {
        return Err(PatternError::Syntax {
            message: describe_build_error(&e),
        });
    }
    builder()
        .build(&expanded)
        .map(|_| ())
        .map_err(|e| PatternError::Syntax {
            message: describe_build_error(&e),
        })
}

fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

fn builder() -> meta::Builder {
    let mut b = Regex::builder();
    b.syntax(syntax_config())
        .configure(Regex::config().utf8_empty(false));
    b
}

/// The regex engine prints syntax errors over several lines with a caret under the
/// pattern; a config error is one line, so keep the message and the offset.
fn describe_build_error(e: &meta::BuildError) -> String {
    let Some(syntax) = e.syntax_error() else {
        return match e.size_limit() {
            Some(limit) => format!("compiled regex exceeds the size limit of {limit} bytes"),
            None => e.to_string(),
        };
    };
    let text = syntax.to_string();
    let lines: Vec<&str> = text.lines().collect();
    let message = lines
        .iter()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::trim);
    let caret = lines.iter().find_map(|l| {
        let t = l.trim_start();
        (!t.is_empty() && t.chars().all(|c| c == '^')).then(|| l.len() - t.len())
    });
    match (message, caret) {
        // The engine indents the pattern and caret lines by four spaces.
        (Some(m), Some(col)) => format!("{m} at offset {}", col.saturating_sub(4)),
        (Some(m), None) => m.to_owned(),
        _ => lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// One offence regex, compiled on its own for the capturing search.
#[derive(Debug)]
struct Capturer {
    regex: Regex,
    filter: FilterId,
    host_group: usize,
}

/// Every filter of one source, compiled together.
#[derive(Debug)]
pub struct SourceMatcher {
    /// All offence regexes of all filters, one pattern each, in filter order.
    set: Regex,
    /// The same regexes, indexed by pattern id, for the capturing search.
    capturers: Vec<Capturer>,
    /// Per filter: its ignore regexes as one multi-pattern regex.
    ignores: Vec<Option<Regex>>,
    names: Vec<Box<str>>,
}

/// Per-thread search state for one [`SourceMatcher`]; reuse it for every line.
#[derive(Debug)]
pub struct Scratch {
    set_cache: meta::Cache,
    hits: PatternSet,
    caches: Vec<meta::Cache>,
    captures: Vec<Captures>,
    ignore_caches: Vec<Option<meta::Cache>>,
}

impl SourceMatcher {
    /// Compiles the filters that feed one source. Filter order is priority order:
    /// when several regexes match a line, the first in `filters` (then in its
    /// `regex` list) that yields a valid address wins.
    pub fn build(filters: &[(&str, &FilterConfig)]) -> Result<SourceMatcher, FilterError> {
        let mut expanded = Vec::new();
        let mut capturers = Vec::new();
        let mut ignores = Vec::new();
        let mut names: Vec<Box<str>> = Vec::new();
        for (fi, (name, cfg)) in filters.iter().enumerate() {
            let id = FilterId(u16::try_from(fi).map_err(|_| FilterError::TooBig {
                filters: filters.iter().map(|(n, _)| (*n).to_owned()).collect(),
                message: "more than 65535 filters on one source".into(),
            })?);
            if cfg.regex.is_empty() {
                return Err(FilterError::Empty {
                    filter: (*name).to_owned(),
                });
            }
            let pattern_error = |kind, index, source| FilterError::Pattern {
                filter: (*name).to_owned(),
                kind,
                index,
                source,
            };
            for (ri, pattern) in cfg.regex.iter().enumerate() {
                check_pattern(pattern, HostRule::Required)
                    .map_err(|e| pattern_error("regex", ri, e))?;
                let text = expand_host(pattern, HostRule::Required)
                    .map_err(|e| pattern_error("regex", ri, e))?;
                let regex = builder().build(&text).map_err(|e| {
                    pattern_error(
                        "regex",
                        ri,
                        PatternError::Syntax {
                            message: describe_build_error(&e),
                        },
                    )
                })?;
                let host_group = regex
                    .group_info()
                    .to_index(regex_automata::PatternID::ZERO, HOST_GROUP)
                    .ok_or_else(|| pattern_error("regex", ri, PatternError::NoHost))?;
                capturers.push(Capturer {
                    regex,
                    filter: id,
                    host_group,
                });
                expanded.push(text);
            }
            let mut ignore_texts = Vec::new();
            for (ii, pattern) in cfg.ignore.iter().enumerate() {
                check_pattern(pattern, HostRule::Optional)
                    .map_err(|e| pattern_error("ignore", ii, e))?;
                ignore_texts.push(
                    expand_host(pattern, HostRule::Optional)
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
                            message: describe_build_error(&e),
                        })?,
                )
            };
            ignores.push(ignore);
            names.push(Box::from(*name));
        }
        // MatchKind::All: the set must report every pattern that matches, not
        // only the leftmost-first one, so a later regex can still supply the
        // address when an earlier one's capture is not an address or is ignored.
        let mut set_builder = builder();
        set_builder.configure(
            Regex::config()
                .utf8_empty(false)
                .match_kind(regex_automata::MatchKind::All),
        );
        let set = set_builder
            .build_many(&expanded)
            .map_err(|e| FilterError::TooBig {
                filters: names.iter().map(|n| n.to_string()).collect(),
                message: describe_build_error(&e),
            })?;
        Ok(SourceMatcher {
            set,
            capturers,
            ignores,
            names,
        })
    }

    /// Search state sized for this matcher.
    pub fn new_scratch(&self) -> Scratch {
        Scratch {
            set_cache: self.set.create_cache(),
            hits: PatternSet::new(self.set.pattern_len()),
            caches: self
                .capturers
                .iter()
                .map(|c| c.regex.create_cache())
                .collect(),
            captures: self
                .capturers
                .iter()
                .map(|c| c.regex.create_captures())
                .collect(),
            ignore_caches: self
                .ignores
                .iter()
                .map(|i| i.as_ref().map(Regex::create_cache))
                .collect(),
        }
    }

    /// The offence on this line, if any. A trailing `\n` or `\r\n` is not part of
    /// the line (so `$` anchors work either way). Lines a filter's `ignore` regexes
    /// match do not count for that filter.
    pub fn match_line(&self, line: &[u8], scratch: &mut Scratch) -> Option<Hit> {
        let line = strip_newline(line);
        let input = Input::new(line);
        scratch.hits.clear();
        self.set
            .which_overlapping_matches_with(&mut scratch.set_cache, &input, &mut scratch.hits);
        if scratch.hits.is_empty() {
            return None;
        }
        for pid in scratch.hits.iter() {
            let i = pid.as_usize();
            let capturer = &self.capturers[i];
            let caps = &mut scratch.captures[i];
            capturer
                .regex
                .search_captures_with(&mut scratch.caches[i], &input, caps);
            let Some(span) = caps.get_group(capturer.host_group) else {
                continue;
            };
            let Some(addr) = addr::parse_ip(&line[span.range()]) else {
                continue;
            };
            let fi = capturer.filter.index();
            if let (Some(ignore), Some(cache)) =
                (&self.ignores[fi], scratch.ignore_caches[fi].as_mut())
                && ignore.search_half_with(cache, &input).is_some()
            {
                continue;
            }
            return Some(Hit {
                addr,
                filter: capturer.filter,
            });
        }
        None
    }

    /// The name of a filter, as given to [`SourceMatcher::build`].
    pub fn filter_name(&self, id: FilterId) -> &str {
        self.names.get(id.index()).map_or("", |n| n)
    }

    /// How many filters this matcher runs.
    pub fn filter_count(&self) -> usize {
        self.names.len()
    }
}

fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(regex: &[&str], ignore: &[&str]) -> FilterConfig {
        FilterConfig {
            regex: regex.iter().map(|s| (*s).to_owned()).collect(),
            ignore: ignore.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The sshd regexes shipped in examples/log2drop.toml.
    fn sshd() -> FilterConfig {
        filter(
            &[
                r"sshd\[[0-9]+\]: Failed (?:password|publickey) for (?:invalid user )?.* from <HOST> port [0-9]+(?: ssh2)?$",
                r"sshd\[[0-9]+\]: Invalid user .* from <HOST> port [0-9]+$",
            ],
            &[],
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn one(cfg: &FilterConfig, line: &str) -> Option<IpAddr> {
        let m = SourceMatcher::build(&[("f", cfg)]).expect("builds");
        let mut s = m.new_scratch();
        m.match_line(line.as_bytes(), &mut s).map(|h| h.addr)
    }

    #[test]
    fn expands_host_once() {
        let e = expand_host("from <HOST> port", HostRule::Required).expect("one host");
        assert!(e.contains("(?P<host>"));
        assert!(!e.contains(HOST_PLACEHOLDER));
    }

    #[test]
    fn host_count_rules() {
        assert_eq!(
            expand_host("no host here", HostRule::Required),
            Err(PatternError::NoHost)
        );
        assert_eq!(
            expand_host("<HOST> and <HOST>", HostRule::Required),
            Err(PatternError::ManyHosts { count: 2 })
        );
        assert!(expand_host("no host here", HostRule::Optional).is_ok());
        assert_eq!(
            expand_host("<HOST><HOST>", HostRule::Optional),
            Err(PatternError::ManyHosts { count: 2 })
        );
    }

    #[test]
    fn syntax_errors_are_one_line_with_offset_in_original() {
        let err = check_pattern("from <HOST> port (\\d+", HostRule::Required)
            .expect_err("unclosed group");
        let PatternError::Syntax { message } = err else {
            panic!("wrong error kind: {err:?}");
        };
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("unclosed group"), "{message}");
        assert!(message.contains("offset 17"), "{message}");
    }

    #[test]
    fn failed_password_lines() {
        let cfg = sshd();
        assert_eq!(
            one(
                &cfg,
                "May 19 10:00:00 host sshd[123]: Failed password for root from 203.0.113.4 port 22 ssh2"
            ),
            Some(ip("203.0.113.4"))
        );
        assert_eq!(
            one(
                &cfg,
                "May 19 10:00:00 host sshd[123]: Failed password for invalid user admin from 2001:db8::7 port 50022 ssh2\n"
            ),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            one(
                &cfg,
                "May 19 10:00:00 host sshd[9]: Invalid user oracle from 198.51.100.23 port 40000"
            ),
            Some(ip("198.51.100.23"))
        );
    }

    #[test]
    fn mapped_addresses_come_out_as_ipv4() {
        assert_eq!(
            one(
                &sshd(),
                "sshd[1]: Failed password for root from ::ffff:203.0.113.4 port 22 ssh2"
            ),
            Some(ip("203.0.113.4"))
        );
    }

    #[test]
    fn unrelated_lines_do_not_match() {
        let cfg = sshd();
        for line in [
            "May 19 10:00:00 host sshd[123]: Accepted password for root from 203.0.113.4 port 22 ssh2",
            "May 19 10:00:00 host CRON[77]: pam_unix(cron:session): session opened for user root",
            "",
            "sshd[1]: Failed password for root from 203.0.113.999 port 22 ssh2",
        ] {
            assert_eq!(one(&cfg, line), None, "{line}");
        }
    }

    #[test]
    fn user_controlled_text_never_supplies_the_address() {
        let cfg = sshd();
        assert_eq!(
            one(
                &cfg,
                "sshd[5]: Failed password for invalid user 198.51.100.9 from 203.0.113.4 port 22 ssh2"
            ),
            Some(ip("203.0.113.4"))
        );
        // A user name that imitates the tail of the line.
        assert_eq!(
            one(
                &cfg,
                "sshd[5]: Failed password for invalid user x from 198.51.100.9 port 22 from 203.0.113.4 port 22 ssh2"
            ),
            Some(ip("203.0.113.4"))
        );
        assert_eq!(
            one(
                &cfg,
                "sshd[5]: Invalid user admin from 198.51.100.9 from 203.0.113.4 port 22"
            ),
            Some(ip("203.0.113.4"))
        );
        // Trailing junk after the real tail: the anchored regex must refuse the line
        // rather than take an address from inside the user name.
        assert_eq!(
            one(&cfg, "sshd[5]: Invalid user a from 198.51.100.9 port 22 x"),
            None
        );
    }

    #[test]
    fn invalid_utf8_is_tolerated() {
        let line =
            b"sshd[5]: Failed password for invalid user \xff\xfe from 203.0.113.4 port 22 ssh2";
        let cfg = sshd();
        let m = SourceMatcher::build(&[("ssh", &cfg)]).expect("builds");
        let mut s = m.new_scratch();
        assert_eq!(
            m.match_line(line, &mut s).map(|h| h.addr),
            Some(ip("203.0.113.4"))
        );
    }

    #[test]
    fn ignore_suppresses_a_hit() {
        let cfg = filter(
            &[r"Failed password for .* from <HOST> port [0-9]+"],
            &[r"for backup-robot from"],
        );
        assert_eq!(
            one(
                &cfg,
                "Failed password for backup-robot from 203.0.113.4 port 22"
            ),
            None
        );
        assert_eq!(
            one(&cfg, "Failed password for root from 203.0.113.4 port 22"),
            Some(ip("203.0.113.4"))
        );
    }

    #[test]
    fn ignore_of_one_filter_does_not_hide_another() {
        let a = filter(&[r"from <HOST> port"], &[r"port"]);
        let b = filter(&[r"from <HOST> port"], &[]);
        let m = SourceMatcher::build(&[("a", &a), ("b", &b)]).expect("builds");
        let mut s = m.new_scratch();
        let hit = m
            .match_line(b"from 203.0.113.4 port 22", &mut s)
            .expect("b matches");
        assert_eq!(m.filter_name(hit.filter), "b");
    }

    #[test]
    fn first_filter_wins_and_names_resolve() {
        let a = filter(&[r"login failure from <HOST>$"], &[]);
        let b = filter(&[r"failure from <HOST>$"], &[]);
        let m = SourceMatcher::build(&[("a", &a), ("b", &b)]).expect("builds");
        let mut s = m.new_scratch();
        let hit = m
            .match_line(b"login failure from 192.0.2.1", &mut s)
            .expect("hit");
        assert_eq!(m.filter_name(hit.filter), "a");
        let hit = m
            .match_line(b"auth failure from 192.0.2.1", &mut s)
            .expect("hit");
        assert_eq!(m.filter_name(hit.filter), "b");
        assert_eq!(m.filter_count(), 2);
    }

    #[test]
    fn a_regex_whose_capture_is_not_an_address_falls_through() {
        // The first regex's <HOST> captures 999.1.1.1 (not an address); the second
        // regex finds the real one.
        let cfg = filter(&[r"client <HOST> ", r"peer <HOST>$"], &[]);
        assert_eq!(
            one(&cfg, "client 999.1.1.1 peer 192.0.2.8"),
            Some(ip("192.0.2.8"))
        );
    }

    #[test]
    fn build_errors_name_filter_and_index() {
        let bad = filter(&[r"from <HOST>", r"no host"], &[]);
        let err = SourceMatcher::build(&[("ssh-fail", &bad)]).expect_err("no host");
        assert_eq!(
            err,
            FilterError::Pattern {
                filter: "ssh-fail".into(),
                kind: "regex",
                index: 1,
                source: PatternError::NoHost
            }
        );
        let empty = filter(&[], &[]);
        assert!(matches!(
            SourceMatcher::build(&[("e", &empty)]),
            Err(FilterError::Empty { .. })
        ));
    }

    #[test]
    fn scratch_is_reusable_across_many_lines() {
        let cfg = sshd();
        let m = SourceMatcher::build(&[("ssh", &cfg)]).expect("builds");
        let mut s = m.new_scratch();
        for i in 0..200u32 {
            let line = format!(
                "sshd[1]: Failed password for root from 198.51.100.{} port 22 ssh2",
                i % 250
            );
            let hit = m.match_line(line.as_bytes(), &mut s).expect("hit");
            assert_eq!(hit.addr, IpAddr::from([198, 51, 100, (i % 250) as u8]));
            assert_eq!(m.match_line(b"noise line", &mut s), None);
        }
    }
}
