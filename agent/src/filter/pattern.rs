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
///
/// A tag must make a group of its own: one after a backslash or inside a
/// character class is refused (spliced in there, its `(?P<name>` would be
/// literal text or an escaped parenthesis), and so are tags that pair with
/// the pattern's own parentheses instead of each other (`<F-USER>)` ...
/// `(</F-USER>`). Either would give a regex that parses but has no such
/// group, or a different one.
fn expand_named(pattern: &str) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len());
    // The open groups, innermost last: a tag's name, or `None` for one the
    // pattern opened with `(`.
    let mut open: Vec<Option<String>> = Vec::new();
    let mut context = SyntaxContext::default();
    let mut i = 0;
    while let Some(ch) = pattern[i..].chars().next() {
        let rest = &pattern[i..];
        let (closing, tag_len) = if rest.starts_with("<F-") {
            (false, 3)
        } else if rest.starts_with("</F-") {
            (true, 4)
        } else {
            match context.step(ch) {
                Some(Paren::Open) => open.push(None),
                Some(Paren::Close) => {
                    if let Some(Some(tag)) = open.pop() {
                        return Err(tag_error(format!(
                            "the `)` at offset {i} closes <F-{}>'s group",
                            tag.to_ascii_uppercase()
                        )));
                    }
                }
                None => {}
            }
            out.push(ch);
            i += ch.len_utf8();
            continue;
        };
        if context.escaped || context.class > 0 {
            return Err(tag_error(format!(
                "a tag at offset {i} is {}, where it cannot make a group",
                if context.escaped {
                    "escaped"
                } else {
                    "inside a character class"
                }
            )));
        }
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
            match open.pop() {
                Some(Some(tag)) if tag == lower => {}
                Some(None) => {
                    return Err(tag_error(format!(
                        "</F-{name}> at offset {i} closes a group the pattern opened with `(`"
                    )));
                }
                _ => {
                    return Err(tag_error(format!(
                        "</F-{name}> does not close the innermost open <F-...>"
                    )));
                }
            }
            out.push(')');
        } else {
            if lower == HOST_GROUP {
                return Err(tag_error("<F-HOST> is reserved; write <HOST>".into()));
            }
            out.push_str("(?P<");
            out.push_str(&lower);
            out.push('>');
            open.push(Some(lower));
        }
        i += tag_len + end + 1;
    }
    if let Some(o) = open.into_iter().rev().flatten().next() {
        return Err(tag_error(format!(
            "<F-{}> is never closed",
            o.to_ascii_uppercase()
        )));
    }
    Ok(out)
}

/// A group's parenthesis, as [`SyntaxContext::step`] reads it.
enum Paren {
    Open,
    Close,
}

/// Where a walk over a regex's text stands: after a backslash, or inside
/// how many nested character classes. Enough to tell where a tag would be
/// read as a group and which parentheses open and close groups, not a full
/// parse.
#[derive(Debug, Default)]
struct SyntaxContext {
    escaped: bool,
    class: usize,
    /// A class was just opened: `[` (1) or `[^` (2). A `]` here is literal.
    class_start: u8,
}

impl SyntaxContext {
    fn step(&mut self, ch: char) -> Option<Paren> {
        let start = std::mem::take(&mut self.class_start);
        if std::mem::take(&mut self.escaped) {
            return None;
        }
        match ch {
            '\\' => self.escaped = true,
            '[' => {
                self.class += 1;
                self.class_start = 1;
            }
            '^' if start == 1 => self.class_start = 2,
            ']' if self.class > 0 && start == 0 => self.class -= 1,
            '(' if self.class == 0 => return Some(Paren::Open),
            ')' if self.class == 0 => return Some(Paren::Close),
            _ => {}
        }
        None
    }
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

/// A pattern read by the parser once: its expanded text ([`expand`]), its
/// syntax tree and what the matcher compiles. Everything the build derives
/// from the text (the split at `<HOST>`, the literals, the name path's
/// regex) starts from here: parsing was most of what building a matcher
/// cost, and each piece used to parse the text again.
#[derive(Debug)]
pub struct Parsed {
    /// The pattern with its placeholders expanded.
    pub expanded: String,
    /// `expanded` as the parser read it.
    pub hir: Hir,
    ast: Ast,
}

/// [`check`], giving the pattern expanded ([`expand`]) and as the parser read
/// it: what the matcher compiles, parsed once.
pub fn parse(pattern: &str, rule: HostRule) -> Result<Parsed, PatternError> {
    count_hosts(pattern, rule)?;
    let expanded = expand(pattern, rule)?;
    if let Some((ast, hir)) = parse_text(&expanded) {
        // The pattern as written (below) parses whenever its expansion
        // does: `<HOST>` becomes a group either way, and the group's text
        // parses on its own wherever a group can stand (see the test
        // `the_written_pattern_parses_where_its_expansion_does`).
        return Ok(Parsed { expanded, hir, ast });
    }
    // First the pattern as written, with `<HOST>` swapped for a group of the same
    // length and the capture tags for groups, so a syntax error's offset points into
    // what the user wrote (tags change lengths, so only without tags).
    if !pattern.contains("<F-") && !pattern.contains("</F-") {
        let same_length = pattern.replace(HOST_PLACEHOLDER, "(HOST)");
        syntax::parse_with(&same_length, &syntax_config()).map_err(|e| PatternError::Syntax {
            message: describe_syntax_error(&e.to_string()),
        })?;
    }
    let hir =
        syntax::parse_with(&expanded, &syntax_config()).map_err(|e| PatternError::Syntax {
            message: describe_syntax_error(&e.to_string()),
        })?;
    // The two parsers agree (a test holds them to it): not reached.
    let ast = ast_parser()
        .parse(&expanded)
        .map_err(|e| PatternError::Syntax {
            message: describe_syntax_error(&e.to_string()),
        })?;
    Ok(Parsed { expanded, hir, ast })
}

/// The syntax tree parser of [`syntax_config`].
fn ast_parser() -> ast::parse::Parser {
    let c = syntax_config();
    ast::parse::ParserBuilder::new()
        .ignore_whitespace(c.get_ignore_whitespace())
        .nest_limit(c.get_nest_limit())
        .octal(c.get_octal())
        .build()
}

/// `text` parsed as `syntax::parse_with(text, &syntax_config())` parses it,
/// keeping the syntax tree it reads on the way; `None` where that fails
/// (the error is then worked out as before, see [`parse`]).
fn parse_text(text: &str) -> Option<(Ast, Hir)> {
    let c = syntax_config();
    let ast = ast_parser().parse(text).ok()?;
    let hir = regex_syntax::hir::translate::TranslatorBuilder::new()
        .unicode(c.get_unicode())
        .case_insensitive(c.get_case_insensitive())
        .multi_line(c.get_multi_line())
        .crlf(c.get_crlf())
        .dot_matches_new_line(c.get_dot_matches_new_line())
        .line_terminator(c.get_line_terminator())
        .swap_greed(c.get_swap_greed())
        .utf8(c.get_utf8())
        .build()
        .translate(text, &ast)
        .ok()?;
    Some((ast, hir))
}

impl Parsed {
    /// The top-level items of the syntax tree and which of them is
    /// `<HOST>`'s group, when it is one of them and no bare flag group
    /// (`(?i)`) changes how the items around it read: then the text before
    /// the group and the text after it each mean on their own what they
    /// mean in the whole.
    fn host_item(&self) -> Option<(&[Ast], usize)> {
        let items: &[Ast] = match &self.ast {
            Ast::Concat(c) => &c.asts,
            Ast::Alternation(_) | Ast::Flags(_) => return None,
            other => std::slice::from_ref(other),
        };
        if items.iter().any(|a| matches!(a, Ast::Flags(_))) {
            return None;
        }
        let k = items.iter().position(|a| {
            matches!(a, Ast::Group(g) if matches!(&g.kind,
                ast::GroupKind::CaptureName { name, .. } if name.name == HOST_GROUP))
        })?;
        Some((items, k))
    }

    /// The top-level items of the parsed regex and which of them is
    /// `<HOST>`'s group, when [`Parsed::host_item`] finds it.
    fn host_hir(&self) -> Option<(&[Hir], usize)> {
        use regex_syntax::hir::HirKind;
        self.host_item()?;
        let items: &[Hir] = match self.hir.kind() {
            HirKind::Concat(items) => items,
            _ => std::slice::from_ref(&self.hir),
        };
        let k = items.iter().position(
            |h| matches!(h.kind(), HirKind::Capture(c) if c.name.as_deref() == Some(HOST_GROUP)),
        )?;
        Some((items, k))
    }

    /// The regex with `<HOST>`'s group matching `sub` instead, as the
    /// parser would read the pattern expanded that way ([`expand_with`]);
    /// `None` where the group is not a top-level item (see
    /// [`Parsed::host_item`]): then the caller parses that text.
    pub fn with_host(&self, sub: &Hir) -> Option<Hir> {
        use regex_syntax::hir::{Capture, HirKind};
        let (items, k) = self.host_hir()?;
        let HirKind::Capture(c) = items[k].kind() else {
            return None;
        };
        let group = Hir::capture(Capture {
            index: c.index,
            name: c.name.clone(),
            sub: Box::new(sub.clone()),
        });
        let mut all = items.to_vec();
        all[k] = group;
        Some(Hir::concat(all))
    }

    /// [`split`] of the pattern this was parsed from.
    pub fn split(&self) -> Option<Split> {
        let (asts, k) = self.host_item()?;
        let (hirs, h) = self.host_hir()?;
        let span = asts[k].span();
        let before = self.expanded[..span.start.offset].to_owned();
        let after = self.expanded[span.end.offset..].to_owned();
        let hir_a = Hir::concat(hirs[..h].to_vec());
        let hir_b = Hir::concat(hirs[h + 1..].to_vec());
        // Groups after `<HOST>` are numbered from 1 when `B` is read on its
        // own, as `split` always did.
        let hir_b = if hir_b.properties().explicit_captures_len() > 0 {
            syntax::parse_with(&after, &syntax_config()).ok()?
        } else {
            hir_b
        };
        let gap = gap_of(&asts[..k], &before);
        Some(split_of(before, after, hir_a, hir_b, gap))
    }
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
    parse(pattern, HostRule::Required).ok()?.split()
}

/// [`split`] as it was written before [`Parsed::split`]: each half parsed
/// on its own. What the tests hold [`Parsed::split`] to.
#[cfg(test)]
fn split_slowly(pattern: &str) -> Option<Split> {
    let (a, b) = pattern.split_once(HOST_PLACEHOLDER)?;
    // A pattern that does not parse whole has none (halves that each parse
    // but name the same group, say).
    syntax::parse_with(&expand(pattern, HostRule::Required).ok()?, &syntax_config()).ok()?;
    // The halves with their tags made groups: a flag group inside a tag's
    // group (`<F-USER>(?x)</F-USER>`) is not at the top level.
    let before = expand_named(a).ok()?;
    let after = expand_named(b).ok()?;
    if !top_level_concat(&before) || !top_level_concat(&after) {
        return None;
    }
    let hir_a = syntax::parse_with(&before, &syntax_config()).ok()?;
    let hir_b = syntax::parse_with(&after, &syntax_config()).ok()?;
    let gap = gap(&before);
    Some(split_of(before, after, hir_a, hir_b, gap))
}

/// The [`Split`] of `before <HOST> after`, given each half parsed.
fn split_of(before: String, after: String, hir_a: Hir, hir_b: Hir, gap: Option<Gap>) -> Split {
    let suffixes = Extractor::new().kind(ExtractKind::Suffix).extract(&hir_a);
    let heads = Extractor::new().kind(ExtractKind::Prefix).extract(&hir_a);
    let prefixes = Extractor::new().kind(ExtractKind::Prefix).extract(&hir_b);
    let nonempty = |l: Option<&[u8]>| l.filter(|l| !l.is_empty()).map(Box::from);
    let props = hir_a.properties();
    Split {
        before_prefix: nonempty(heads.longest_common_prefix()),
        before_suffix: nonempty(suffixes.longest_common_suffix()),
        after_prefix: nonempty(prefixes.longest_common_prefix()),
        before_empty: props.maximum_len() == Some(0),
        before_anchored: props
            .look_set_prefix()
            .contains(regex_syntax::hir::Look::Start),
        gap,
        before_literal: literal_of(&hir_a),
        before,
        after,
        before_hir: hir_a,
        after_hir: hir_b,
    }
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
#[cfg(test)]
fn gap(text: &str) -> Option<Gap> {
    let parsed = ast::parse::Parser::new().parse(text).ok()?;
    let items: &[Ast] = match &parsed {
        Ast::Concat(c) => &c.asts,
        other => std::slice::from_ref(other),
    };
    gap_of(items, text)
}

/// [`gap`] of `text`, whose top-level syntax items are `items`.
fn gap_of(items: &[Ast], text: &str) -> Option<Gap> {
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
#[cfg(test)]
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

    /// Regression: `(?:\<F-USER></F-USER>` after `<HOST>` expanded to
    /// `(?:\(?P<user>)`, which parses (an escaped parenthesis, no group), and
    /// `<F-USER>)<HOST>(</F-USER>` to a `user` group that is empty: the split
    /// of the parse and the split of the text disagreed (found by
    /// `split_agrees_with_splitting_the_text`). A tag that cannot make a
    /// group of its own is an error.
    #[test]
    fn tags_escaped_or_in_a_class_are_refused() {
        for p in [
            r"<HOST>(?:\<F-USER></F-USER>",
            r"<HOST> [<F-USER></F-USER>]",
            r"<HOST> (?:[<F-USER>]</F-USER>",
            r"<HOST> [^]<F-USER>]</F-USER>",
            r"<HOST> [[:alpha:]<F-USER>]</F-USER>",
            r"<F-USER>)<HOST>(</F-USER>",
            r"<HOST> (<F-USER>)</F-USER>",
            r"<HOST> <F-USER>(</F-USER>)",
        ] {
            let err = expand(p, HostRule::Required).expect_err(p);
            assert!(err.to_string().contains("bad capture tag"), "{p}: {err}");
            assert_eq!(split(p), None, "{p}");
            assert_eq!(split_slowly(p), None, "{p}");
        }
        // Outside a class, after an escaped backslash or a closed class
        // (including one whose first member is `]`), a tag is a group.
        for p in [
            r"<HOST> \\<F-USER>\S+</F-USER>",
            r"<HOST> []a]<F-USER>\S+</F-USER>",
            r"<HOST> [^]]<F-USER>\S+</F-USER>",
            r"<HOST> [\]]<F-USER>\S+</F-USER>",
            r"<HOST> [[:alpha:]]<F-USER>\S+</F-USER>",
            r"<HOST> (?:a|(b))<F-USER>\S+</F-USER>",
            r"<HOST> \(<F-USER>\S+</F-USER>",
            r"<HOST> [(]<F-USER>\S+</F-USER>",
        ] {
            let e = expand(p, HostRule::Required).expect(p);
            assert!(e.ends_with(r"(?P<user>\S+)"), "{p}: {e}");
        }
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

    /// Every regex of every built-in filter, in every mode.
    fn builtin_patterns() -> Vec<String> {
        let mut out = Vec::new();
        for name in crate::filter::builtin::names() {
            for cfg in crate::filter::builtin_in_every_mode(name) {
                for list in cfg.counting_lists() {
                    out.extend(list.iter().cloned());
                }
            }
        }
        out
    }

    /// Patterns at the edges of what splits: flags, alternations, groups
    /// around or after `<HOST>`, tags, anchors, gaps, empty halves.
    const EDGES: &[&str] = &[
        r"<HOST>",
        r"^<HOST>$",
        r"a<HOST>",
        r"<HOST>b",
        r"(?i)from <HOST> port",
        r"from <HOST> port(?i)x",
        r"from (?i:x)<HOST> (?s:.)port",
        r"a|from <HOST>",
        r"from <HOST>|b",
        r"(?:from <HOST>|by x)",
        r"x(?:y)<HOST>(?:z)w",
        r"user <F-USER>.*</F-USER> from <HOST> port \d+",
        r"user <F-USER>\S+</F-USER> from <HOST> <F-PORT>\d+</F-PORT>$",
        r"<F-X>a <HOST> b</F-X>",
        r"a(?:.+)b <HOST>",
        r"a.*b.+c <HOST> .*",
        r"\<HOST>",
        r"[<HOST>]",
        r"x{<HOST>}",
        r"<HOST>{2}",
        r"<HOST>*",
        r"(?x) a <HOST> b",
        r"(<HOST>)",
        r"(a)(b)<HOST>(c)(?P<d>e)",
        r"(?:)<HOST>(?:)",
    ];

    #[test]
    fn parsing_once_splits_as_parsing_each_half() {
        for p in builtin_patterns()
            .iter()
            .map(String::as_str)
            .chain(EDGES.iter().copied())
        {
            assert_eq!(split(p), split_slowly(p), "{p}");
        }
        // The built-in patterns do split (the comparison above is not
        // between two `None`s).
        assert!(
            builtin_patterns()
                .iter()
                .filter(|p| split(p).is_some())
                .count()
                > 300
        );
    }

    #[test]
    fn the_parse_keeping_the_tree_is_the_engines_parse() {
        let either = format!("{HOST_REGEX}|{NAME_REGEX}");
        for p in builtin_patterns()
            .iter()
            .map(String::as_str)
            .chain(EDGES.iter().copied())
            .chain([
                either.as_str(),
                "",
                "(",
                r"\pL",
                "a{2,1}",
                "(?P<x>a)(?P<x>b)",
            ])
        {
            let ours = parse_text(p).map(|(_, hir)| hir);
            let theirs = syntax::parse_with(p, &syntax_config()).ok();
            assert_eq!(ours, theirs, "{p}");
        }
    }

    #[test]
    fn swapping_the_host_group_is_parsing_the_swapped_text() {
        let either = format!("{HOST_REGEX}|{NAME_REGEX}");
        let sub = syntax::parse_with(&either, &syntax_config()).expect("parses");
        let mut swapped = 0;
        for p in builtin_patterns()
            .iter()
            .map(String::as_str)
            .chain(EDGES.iter().copied())
        {
            let Ok(parsed) = parse(p, HostRule::Optional) else {
                continue;
            };
            let text = expand_with(p, HostRule::Optional, &either).expect("expands");
            let want = syntax::parse_with(&text, &syntax_config()).expect("parses");
            if let Some(hir) = parsed.with_host(&sub) {
                assert_eq!(hir, want, "{p}");
                swapped += 1;
            }
        }
        assert!(swapped > 300, "{swapped}");
    }

    /// Regex pieces around `<HOST>` for the property tests.
    fn pieces() -> impl proptest::strategy::Strategy<Value = String> {
        let piece = proptest::prop_oneof![
            proptest::strategy::Just("a".to_owned()),
            proptest::strategy::Just(" from ".to_owned()),
            proptest::strategy::Just(r"\d+".to_owned()),
            proptest::strategy::Just(".*".to_owned()),
            proptest::strategy::Just("(?:.+)".to_owned()),
            proptest::strategy::Just("(".to_owned()),
            proptest::strategy::Just(")".to_owned()),
            proptest::strategy::Just("(?:".to_owned()),
            proptest::strategy::Just("(?i)".to_owned()),
            proptest::strategy::Just("(?i:".to_owned()),
            proptest::strategy::Just("|".to_owned()),
            proptest::strategy::Just("[".to_owned()),
            proptest::strategy::Just("]".to_owned()),
            proptest::strategy::Just("\\".to_owned()),
            proptest::strategy::Just("{2}".to_owned()),
            proptest::strategy::Just("?".to_owned()),
            proptest::strategy::Just("^".to_owned()),
            proptest::strategy::Just("$".to_owned()),
            proptest::strategy::Just("<F-USER>".to_owned()),
            proptest::strategy::Just("</F-USER>".to_owned()),
            proptest::strategy::Just("(?P<n>".to_owned()),
            proptest::strategy::Just("(?x)".to_owned()),
            proptest::strategy::Just(" ".to_owned()),
        ];
        proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn split_agrees_with_splitting_the_text(a in pieces(), b in pieces()) {
            let p = format!("{a}{HOST_PLACEHOLDER}{b}");
            proptest::prop_assert_eq!(split(&p), split_slowly(&p), "{}", p);
        }

        #[test]
        fn the_written_pattern_parses_where_its_expansion_does(a in pieces(), b in pieces()) {
            let p = format!("{a}{HOST_PLACEHOLDER}{b}");
            proptest::prop_assume!(!p.contains("<F-") && !p.contains("</F-"));
            let expanded = expand(&p, HostRule::Required).expect("no tags");
            if syntax::parse_with(&expanded, &syntax_config()).is_ok() {
                let same_length = p.replace(HOST_PLACEHOLDER, "(HOST)");
                proptest::prop_assert!(syntax::parse_with(&same_length, &syntax_config()).is_ok(), "{}", p);
            }
        }

        #[test]
        fn parse_errors_are_the_engines(a in pieces(), b in pieces()) {
            let p = format!("{a}{HOST_PLACEHOLDER}{b}");
            let ours = parse(&p, HostRule::Required).map(|parsed| parsed.hir);
            let want = (|| {
                if !p.contains("<F-") && !p.contains("</F-") {
                    let same_length = p.replace(HOST_PLACEHOLDER, "(HOST)");
                    syntax::parse_with(&same_length, &syntax_config()).map_err(|e| PatternError::Syntax {
                        message: describe_syntax_error(&e.to_string()),
                    })?;
                }
                let expanded = expand(&p, HostRule::Required)?;
                syntax::parse_with(&expanded, &syntax_config()).map_err(|e| PatternError::Syntax {
                    message: describe_syntax_error(&e.to_string()),
                })
            })();
            proptest::prop_assert_eq!(ours, want, "{}", p);
        }
    }
}
