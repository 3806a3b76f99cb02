//! Positions in the config file. Validation speaks in key paths
//! (`jails.ssh.filters[1]`); users need `FILE:LINE:COL`. This module maps one to the
//! other both ways over the span-carrying document the `toml` crate parses, so the
//! config structs themselves stay plain data.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A key path such as `jails.ssh.filters[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// The path made of these table keys.
    pub fn of(keys: &[&str]) -> Self {
        Self(keys.iter().map(|k| Seg::Key((*k).to_owned())).collect())
    }

    /// This path extended by a key.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
}

/// Bare keys print as written; anything TOML would need quotes for gets them.
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// Turns a byte offset into a line and column.
pub fn position(text: &str, offset: usize) -> Position {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// The parsed document with its spans, for looking positions up.
pub(crate) struct Locator<'i> {
    root: Option<Spanned<DeTable<'i>>>,
}

impl<'i> Locator<'i> {
    /// Wraps a document (or nothing, when the text did not parse at all).
    pub fn new(root: Option<Spanned<DeTable<'i>>>) -> Self {
        Self { root }
    }

    /// Where the value at `path` starts. When the path does not exist (a default
    /// was used), the nearest ancestor that does exist; the file's start if none.
    pub(crate) fn offset_of(&self, path: &KeyPath) -> usize {
        let Some(root) = &self.root else {
            return 0;
        };
        let mut best = 0;
        let mut table: Option<&DeTable<'_>> = Some(root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
        for seg in &path.0 {
            let next = match (seg, table, array) {
                (Seg::Key(k), Some(t), _) => t.get(k.as_str()),
                (Seg::Index(i), _, Some(a)) => a.get(*i),
                _ => None,
            };
            let Some(value) = next else { break };
            best = value.span().start;
            table = None;
            array = None;
            match value.get_ref() {
                DeValue::Table(t) => table = Some(t),
                DeValue::Array(a) => array = Some(a),
                _ => {}
            }
        }
        best
    }

    /// The deepest key path whose key or value covers `offset`: where a
    /// deserialisation error happened, in the words the user wrote.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let mut path = KeyPath::default();
        if let Some(root) = &self.root {
            descend_table(root.get_ref(), offset, &mut path);
        }
        path
    }
}

fn covers(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && (offset < span.end || span.is_empty() && offset == span.start)
}

fn descend_table(table: &DeTable<'_>, offset: usize, path: &mut KeyPath) {
    for (key, value) in table.iter() {
        if covers(&key.span(), offset) {
            path.0.push(Seg::Key(key.get_ref().to_string()));
            return;
        }
        let inner_hit = match value.get_ref() {
            DeValue::Table(t) => contains_deep_table(t, offset),
            DeValue::Array(a) => a.iter().any(|v| contains_deep(v, offset)),
            _ => false,
        };
        if covers(&value.span(), offset) || inner_hit {
            path.0.push(Seg::Key(key.get_ref().to_string()));
            descend_value(value, offset, path);
            return;
        }
    }
}

fn descend_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut KeyPath) {
    match value.get_ref() {
        DeValue::Table(t) => descend_table(t, offset, path),
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                if contains_deep(v, offset) {
                    path.0.push(Seg::Index(i));
                    descend_value(v, offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Header tables (`[jails.ssh]`) span only their header, so a value's own span
/// does not tell whether its children cover an offset: look inside too.
fn contains_deep(value: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    if covers(&value.span(), offset) {
        return true;
    }
    match value.get_ref() {
        DeValue::Table(t) => contains_deep_table(t, offset),
        DeValue::Array(a) => a.iter().any(|v| contains_deep(v, offset)),
        _ => false,
    }
}

fn contains_deep_table(table: &DeTable<'_>, offset: usize) -> bool {
    table
        .iter()
        .any(|(k, v)| covers(&k.span(), offset) || contains_deep(v, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locator(text: &str) -> Locator<'_> {
        Locator::new(Some(DeTable::parse(text).expect("valid toml")))
    }

    #[test]
    fn key_paths_display_like_toml() {
        let p = KeyPath::of(&["jails", "ssh", "filters"]).index(1);
        assert_eq!(p.to_string(), "jails.ssh.filters[1]");
        assert_eq!(
            KeyPath::of(&["jails", "my jail"]).to_string(),
            "jails.\"my jail\""
        );
        assert_eq!(
            KeyPath::of(&["backends", "dry-run"]).to_string(),
            "backends.dry-run"
        );
    }

    #[test]
    fn positions_are_one_based_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(position(text, 0), Position { line: 1, column: 1 });
        let off = text.find('"').expect("quote");
        assert_eq!(position(text, off), Position { line: 2, column: 6 });
        assert_eq!(position(text, 10_000).line, 3);
    }

    #[test]
    fn offset_of_array_element_in_header_table() {
        let text = "[jails.ssh]\nfilters = [\"a\", \"b\"]\n";
        let l = locator(text);
        let off = l.offset_of(&KeyPath::of(&["jails", "ssh", "filters"]).index(1));
        assert_eq!(&text[off..off + 3], "\"b\"");
    }

    #[test]
    fn offset_of_missing_key_falls_back_to_ancestor() {
        let text = "x = 1\n[jails.ssh]\nfilters = []\n";
        let l = locator(text);
        let off = l.offset_of(&KeyPath::of(&["jails", "ssh", "maxretry"]));
        assert_eq!(position(text, off).line, 2);
        assert_eq!(l.offset_of(&KeyPath::of(&["nothing"])), 0);
    }

    #[test]
    fn path_at_finds_deepest_key() {
        let text = "[agent]\nallow = [\"a\", \"b\"]\n[jails.ssh]\nmaxretry = 3\n";
        let l = locator(text);
        let b = text.find("\"b\"").expect("b");
        assert_eq!(l.path_at(b).to_string(), "agent.allow[1]");
        let m = text.find("maxretry").expect("key");
        assert_eq!(l.path_at(m).to_string(), "jails.ssh.maxretry");
        let three = text.find('3').expect("value");
        assert_eq!(l.path_at(three).to_string(), "jails.ssh.maxretry");
        assert_eq!(
            l.path_at(text.find("[jails").expect("h")).to_string(),
            "jails.ssh"
        );
    }
}
