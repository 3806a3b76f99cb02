//! One filter regex as the user wrote it, turned into what the matcher runs.
//!
//! This module owns the placeholder syntax (`<HOST>`, fail2ban-style `<F-NAME>`
//! captures) and the analysis that makes the hot path cheap: a regex is split at its
//! `<HOST>` into the part before (`A`) and the part after (`B`), and from those the
//! literal text that must end `A` and start `B` is extracted. The matcher then finds
//! the address by scanning for that literal instead of running a capturing regex
//! engine over the whole line (see `extract`).

use regex_automata::util::syntax;
use regex_syntax::ast::{self, Ast};
use regex_syntax::hir::Hir;
use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::PatternError;

/// The placeholder a filter regex uses for the offending address.
pub const HOST_PLACEHOLDER: &str = "<HOST>";

/// The capture group `<HOST>` expands to.
pub const HOST_GROUP: &str = "host";

/// What `<HOST>` expands to: dotted IPv4, or IPv6 text (with an optional dotted
/// tail for mapped forms). Deliberately loose and small (no counted repetition of
/// the IPv6 alphabet, which would blow up the automata): [`crate::addr::parse_ip`]
/// has the last word on the text, so this only needs to accept every real address.
pub const HOST_REGEX: &str = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*";

/// What `<HOST>` expands to on the name path (`use_dns`): a DNS name whose last
/// label starts with a letter, so no address, whole or cut, matches it. Loose on
/// purpose; [`crate::addr::is_host_name`] has the last word on the text.
pub const NAME_REGEX: &str =
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9-]*\.?";

/// Whether a pattern must name the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRule {
    /// Exactly one `<HOST>` (offence regexes).
    Required,
    /// At most one `<HOST>` (ignore regexes).
    Optional,
}

/// The regex syntax every filter pattern is compiled with: bytes, not Unicode, so
/// `.` steps over invalid UTF-8 an attacker wrote, and ASCII classes, which is what
/// log formats use.
pub fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// Expands `<F-NAME>...</F-NAME>` into `(?P<name>...)` (name lower-cased), the
/// fail2ban spelling of a named capture.
fn expand_named(pattern: &str) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(ch) = pattern[i..].chars().next() {
        let rest = &pattern[i..];
        let (closing, tag_len) = if rest.starts_with("<F-") {
            (false, 3)
        } else if rest.starts_with("</F-") {
            (true, 4)
        } else {
            out.push(ch);
            i += ch.len_utf8();
            continue;
        };
        let Some(end) = rest[tag_len..].find('>') else {
            return Err(tag_error(format!("unterminated tag at offset {i}")));
        };
        let name = &rest[tag_len..tag_len + end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(tag_error(format!(
                "invalid capture name {name:?} at offset {i}"
            )));
        }
        let lower = name.to_ascii_lowercase();
        if closing {
            if open.pop().as_deref() != Some(lower.as_str()) {
                return Err(tag_error(format!(
                    "</F-{name}> does not close the innermost open <F-...>"
                )));
            }
            out.push(')');
        } else {
            if lower == HOST_GROUP {
                return Err(tag_error("<F-HOST> is reserved; write <HOST>".into()));
            }
            out.push_str("(?P<");
            out.push_str(&lower);
            out.push('>');
            open.push(lower);
        }
        i += tag_len + end + 1;
    }
    if let Some(o) = open.pop() {
        return Err(tag_error(format!(
            "<F-{}> is never closed",
            o.to_ascii_uppercase()
        )));
    }
    Ok(out)
}

fn tag_error(message: String) -> PatternError {
    PatternError::Syntax {
        message: format!("bad capture tag: {message}"),
    }
}

/// Counts `<HOST>`, checking the rule.
fn count_hosts(pattern: &str, rule: HostRule) -> Result<usize, PatternError> {
    let count = pattern.matches(HOST_PLACEHOLDER).count();
    match (rule, count) {
        (HostRule::Required, 0) => Err(PatternError::NoHost),
        (_, n) if n > 1 => Err(PatternError::ManyHosts { count: n }),
        (_, n) => Ok(n),
    }
}

/// Expands the placeholders into plain regex syntax: `<HOST>` into the `host`
/// capture group, `<F-NAME>` tags into named groups.
pub fn expand(pattern: &str, rule: HostRule) -> Result<String, PatternError> {
    expand_with(pattern, rule, HOST_REGEX)
}

/// Like [`expand`], with `<HOST>` standing for `host_regex` ([`HOST_REGEX`] or
/// [`NAME_REGEX`]).
pub fn expand_with(
    pattern: &str,
    rule: HostRule,
    host_regex: &str,
) -> Result<String, PatternError> {
    count_hosts(pattern, rule)?;
    let named = expand_named(pattern)?;
    Ok(named.replace(HOST_PLACEHOLDER, &format!("(?P<{HOST_GROUP}>{host_regex})")))
}

/// Checks that a pattern compiles the way the matcher will compile it, with error
/// offsets pointing into the text the user wrote.
pub fn check(pattern: &str, rule: HostRule) -> Result<(), PatternError> {
    parse(pattern, rule).map(|_| ())
}

/// [`check`], giving the pattern expanded ([`expand`]) and as the parser read
/// it: what the matcher compiles, parsed once.
pub fn parse(pattern: &str, rule: HostRule) -> Result<(String, Hir), PatternError> {
    count_hosts(pattern, rule)?;
    // First the pattern as written, with `<HOST>` swapped for a group of the same
    // length and the capture tags for groups, so a syntax error's offset points into
    // what the user wrote (tags change lengths, so only without tags).
    if !pattern.contains("<F-") && !pattern.contains("</F-") {
        let same_length = pattern.replace(HOST_PLACEHOLDER, "(HOST)");
        syntax::parse_with(&same_length, &syntax_config()).map_err(|e| PatternError::Syntax {
            message: describe_syntax_error(&e.to_string()),
        })?;
    }
    let expanded = expand(pattern, rule)?;
    let hir =
        syntax::parse_with(&expanded, &syntax_config()).map_err(|e| PatternError::Syntax {
            message: describe_syntax_error(&e.to_string()),
        })?;
    Ok((expanded, hir))
}

/// The regex engine prints syntax errors over several lines with a caret under the
/// pattern; a config error is one line, so keep the message and the offset.
pub fn describe_syntax_error(text: &str) -> String {
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

/// A regex split at its `<HOST>`: `A <HOST> B`, each half valid on its own and the
/// whole equal to their concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The regex before `<HOST>` (placeholders expanded).
    pub before: String,
    /// The regex after `<HOST>` (placeholders expanded).
    pub after: String,
    /// Literal text every match of `before` starts with, if any.
    pub before_prefix: Option<Box<[u8]>>,
    /// Literal text every match of `before` ends with, if any.
    pub before_suffix: Option<Box<[u8]>>,
    /// Literal text every match of `after` starts with, if any.
    pub after_prefix: Option<Box<[u8]>>,
    /// `before` matches only the empty string (such as `^`), so the address starts
    /// where the match starts.
    pub before_empty: bool,
    /// `before` starts with a start-of-text anchor (`^`).
    pub before_anchored: bool,
    /// `before` as `HEAD .* REST` at its first top-level `.*` or `.+` (perhaps
    /// inside a group, as in `<F-USER>.*</F-USER>`): then `before` matches a text
    /// exactly when `HEAD` matches at its start, `REST` at its end, and they do not
    /// overlap, which two short searches decide.
    pub gap: Option<Gap>,
    /// `before` when it is plain literal text (such as `"Received disconnect
    /// from "`): then no automaton is needed to check it.
    pub before_literal: Option<Box<[u8]>>,
    /// `before` as the parser read it, for whatever is built from it
    /// (parsing is most of what building the small pieces costs).
    pub before_hir: Hir,
    /// `after` as the parser read it.
    pub after_hir: Hir,
}

/// `before` split at its first top-level `.*` or `.+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The regex before the gap.
    pub head: String,
    /// The regex after the gap.
    pub rest: String,
    /// Fewest bytes the gap takes (1 for `.+`).
    pub min: usize,
    /// `rest` when it is plain literal text (such as `" from "`): then no
    /// automaton is needed to check it.
    pub rest_literal: Option<Box<[u8]>>,
}

/// Splits a pattern at `<HOST>` if `<HOST>` sits at the top level of the regex (not
/// inside a group or an alternation, and with no bare flag group like `(?i)` before
/// it that would change the meaning of the part after). Returns `None` otherwise;
/// the matcher then uses the slower capturing search for that pattern.
pub fn split(pattern: &str) -> Option<Split> {
    let (a, b) = pattern.split_once(HOST_PLACEHOLDER)?;
    if !top_level_concat(a) || !top_level_concat(b) {
        return None;
    }
    let before = expand_named(a).ok()?;
    let after = expand_named(b).ok()?;
    let hir_a = syntax::parse_with(&before, &syntax_config()).ok()?;
    let hir_b = syntax::parse_with(&after, &syntax_config()).ok()?;
    let suffixes = Extractor::new().kind(ExtractKind::Suffix).extract(&hir_a);
    let heads = Extractor::new().kind(ExtractKind::Prefix).extract(&hir_a);
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(&hir_b);
    let nonempty = |l: Option<&[u8]>| l.filter(|l| !l.is_empty()).map(Box::from);
    let props = hir_a.properties();
    Some(Split {
        before_prefix: nonempty(heads.longest_common_prefix()),
        before_suffix: nonempty(suffixes.longest_common_suffix()),
        after_prefix: nonempty(prefixes.longest_common_prefix()),
        before_empty: props.maximum_len() == Some(0),
        before_anchored: props
            .look_set_prefix()
            .contains(regex_syntax::hir::Look::Start),
        gap: gap(&before),
        before_literal: literal_of(&hir_a),
        before,
        after,
        before_hir: hir_a,
        after_hir: hir_b,
    })
}

/// The text a regex matches, if it is plain literal text.
fn literal_of(hir: &Hir) -> Option<Box<[u8]>> {
    match hir.kind() {
        regex_syntax::hir::HirKind::Literal(lit) => Some(lit.0.clone()),
        _ => None,
    }
}

/// Finds the first top-level `.*` / `.+` of `text` (bare or as the whole of a
/// group) and splits around it.
fn gap(text: &str) -> Option<Gap> {
    let parsed = ast::parse::Parser::new().parse(text).ok()?;
    let items: &[Ast] = match &parsed {
        Ast::Concat(c) => &c.asts,
        other => std::slice::from_ref(other),
    };
    for item in items {
        let mut inner = item;
        while let Ast::Group(g) = inner {
            if matches!(g.kind, ast::GroupKind::NonCapturing(ref f) if !f.items.is_empty()) {
                break;
            }
            inner = &g.ast;
        }
        let Ast::Repetition(rep) = inner else {
            continue;
        };
        let min = match rep.op.kind {
            ast::RepetitionKind::ZeroOrMore => 0,
            ast::RepetitionKind::OneOrMore => 1,
            _ => continue,
        };
        if !matches!(*rep.ast, Ast::Dot(_)) {
            continue;
        }
        let span = item.span();
        let rest = text[span.end.offset..].to_owned();
        let rest_literal = syntax::parse_with(&rest, &syntax_config())
            .ok()
            .and_then(|hir| literal_of(&hir));
        return Some(Gap {
            head: text[..span.start.offset].to_owned(),
            rest,
            min,
            rest_literal,
        });
    }
    None
}

/// Whether `text` parses as a regex whose top level is a plain sequence: no
/// top-level `|` and no bare flag group, so `A` then `B` means exactly `AB`.
fn top_level_concat(text: &str) -> bool {
    let Ok(parsed) = ast::parse::Parser::new().parse(text) else {
        return false;
    };
    match &parsed {
        Ast::Alternation(_) | Ast::Flags(_) => false,
        Ast::Concat(c) => !c.asts.iter().any(|a| matches!(a, Ast::Flags(_))),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_host_once() {
        let e = expand("from <HOST> port", HostRule::Required).expect("one host");
        assert!(e.contains("(?P<host>"));
        assert!(!e.contains(HOST_PLACEHOLDER));
    }

    #[test]
    fn host_count_rules() {
        assert_eq!(
            expand("no host here", HostRule::Required),
            Err(PatternError::NoHost)
        );
        assert_eq!(
            expand("<HOST> and <HOST>", HostRule::Required),
            Err(PatternError::ManyHosts { count: 2 })
        );
        assert!(expand("no host here", HostRule::Optional).is_ok());
    }

    #[test]
    fn named_capture_tags_become_groups() {
        let e =
            expand("user <F-USER>\\S+</F-USER> from <HOST>", HostRule::Required).expect("expands");
        assert!(e.starts_with("user (?P<user>\\S+) from (?P<host>"), "{e}");
        for bad in [
            "<F-USER>x from <HOST>",
            "x</F-USER> from <HOST>",
            "<F-A><F-B>x</F-A></F-B> <HOST>",
            "<F-HOST>x</F-HOST> <HOST>",
            "<F-a b>x</F-a b> <HOST>",
        ] {
            assert!(
                matches!(
                    expand(bad, HostRule::Required),
                    Err(PatternError::Syntax { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn syntax_errors_are_one_line_with_offset_in_original() {
        let err = check("from <HOST> port (\\d+", HostRule::Required).expect_err("unclosed group");
        let PatternError::Syntax { message } = err else {
            panic!("wrong error kind: {err:?}");
        };
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("unclosed group"), "{message}");
        assert!(message.contains("offset 17"), "{message}");
    }

    #[test]
    fn splits_at_top_level_host() {
        let s = split(r"Failed password for .* from <HOST> port \d+$").expect("splits");
        assert_eq!(s.before, r"Failed password for .* from ");
        assert_eq!(s.after, r" port \d+$");
        assert_eq!(s.before_suffix.as_deref(), Some(&b" from "[..]));
        assert_eq!(
            s.before_prefix.as_deref(),
            Some(&b"Failed password for "[..])
        );
        assert_eq!(s.after_prefix.as_deref(), Some(&b" port "[..]));
        assert!(!s.before_empty);
        assert_eq!(s.before_literal, None);
        let s = split(r"Received disconnect from <HOST> port").expect("splits");
        assert_eq!(
            s.before_literal.as_deref(),
            Some(&b"Received disconnect from "[..])
        );
        let s = split(r"^<HOST> - \S+ \[").expect("splits");
        assert!(s.before_empty && s.before_anchored);
        assert_eq!(s.before_suffix, None);
    }

    #[test]
    fn finds_the_gap_of_a_user_field() {
        let s =
            split(r"Failed password for (?:invalid user )?<F-USER>.*</F-USER> from <HOST> port")
                .expect("splits");
        let g = s.gap.expect("has a gap");
        assert_eq!(g.head, "Failed password for (?:invalid user )?");
        assert_eq!(g.rest, " from ");
        assert_eq!(g.min, 0);
        assert_eq!(g.rest_literal.as_deref(), Some(&b" from "[..]));
        let g = split(r"a(?:.+)b <HOST>").expect("splits").gap.expect("gap");
        assert_eq!((g.head.as_str(), g.rest.as_str(), g.min), ("a", "b ", 1));
        assert_eq!(split(r"a\S+ <HOST>").expect("splits").gap, None);
        assert_eq!(split(r"a(?s:.*) <HOST>").expect("splits").gap, None);
    }

    #[test]
    fn refuses_to_split_inside_groups_alternations_and_flags() {
        assert_eq!(split(r"(?:from <HOST>|by x)"), None);
        assert_eq!(split(r"a|from <HOST>"), None);
        assert_eq!(split(r"(?i)from <HOST> port"), None);
        assert_eq!(split(r"no host"), None);
    }

    #[test]
    fn host_regex_accepts_every_address_form() {
        let re = regex_automata::meta::Regex::new(&format!("^(?:{HOST_REGEX})$")).expect("re");
        for a in [
            "203.0.113.4",
            "::",
            "::1",
            "2001:db8::1",
            "::ffff:203.0.113.4",
            "2001:DB8:0:0:0:0:0:1",
            "1:2:3:4:5:6:7:8",
            "64:ff9b::192.0.2.1",
        ] {
            assert!(re.is_match(a), "{a}");
        }
    }
}
