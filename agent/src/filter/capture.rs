//! Named captures (`<F-USER>`, `(?P<user>...)`) carried with an offence: the user
//! name an attacker tried, the mail address, the URL.
//!
//! Their values are attacker-written text. This module owns the two rules that
//! make them safe to keep and to show:
//! - **Bounded**: at most [`MAX_CAPTURES`] per offence, each cut to
//!   [`MAX_VALUE_BYTES`] bytes (on a character boundary, marked with `…`), invalid
//!   UTF-8 replaced. Memory and store rows stay small whatever a line holds.
//! - **Escaped where printed**: [`escape`] turns control characters (newlines, ANSI
//!   escapes), Unicode format characters (bidi overrides, zero-width) and the
//!   backslash into `\u{HEX}` / `\\`, so a value can neither forge a line nor
//!   repaint a terminal; [`escape_token`] also escapes whitespace and quotes, for
//!   `key=value` log fields. [`unescape`] reverses both.
//!
//! Values are kept raw (bounded) and escaped by whoever prints them: JSON writers
//! escape on their own, terminals, logs, CSV, HTML and hook arguments use
//! [`escape`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

/// Most captures kept per offence (in the regex's order).
pub const MAX_CAPTURES: usize = 4;

/// Longest value kept, in bytes, before the `…` marking a cut.
pub const MAX_VALUE_BYTES: usize = 64;

/// The capture `report --by user` and the `{user}` hook placeholder read.
pub const USER: &str = "user";

/// One named capture, borrowed from its [`Captures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture<'a> {
    /// The group's name (lower case, `[a-z0-9_]`).
    pub name: &'a Arc<str>,
    /// Its value, bounded, raw (not escaped).
    pub value: &'a str,
}

/// The named captures of one offence, bounded. Empty costs nothing (no heap),
/// and a cleared one keeps its buffers: filling it line after line (`log2drop
/// test`, a source's loop) allocates nothing once they have grown.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Captures {
    /// The values, one after another.
    text: String,
    /// Each capture's name and where its value ends in `text` (it starts where
    /// the one before ends).
    items: Vec<(Arc<str>, usize)>,
}

impl Clone for Captures {
    fn clone(&self) -> Captures {
        Captures {
            text: self.text.clone(),
            items: self.items.clone(),
        }
    }

    /// Into the buffers `self` has (a fail2ban filter's captures, per line).
    fn clone_from(&mut self, source: &Captures) {
        self.text.clone_from(&source.text);
        self.items.clone_from(&source.items);
    }
}

impl Captures {
    /// No captures.
    pub const fn new() -> Captures {
        Captures {
            text: String::new(),
            items: Vec::new(),
        }
    }

    /// Adds `name = raw` unless [`MAX_CAPTURES`] are already kept or `name` is
    /// already there; the value is bounded here.
    pub fn push(&mut self, name: &Arc<str>, raw: &[u8]) {
        if self.items.len() >= MAX_CAPTURES || self.items.iter().any(|(n, _)| n == name) {
            return;
        }
        bound_into(raw, &mut self.text);
        self.items.push((name.clone(), self.text.len()));
    }

    /// [`push`](Self::push) with a name that is not shared yet.
    pub fn push_named(&mut self, name: &str, raw: &[u8]) {
        if self.items.len() >= MAX_CAPTURES || self.items.iter().any(|(n, _)| &**n == name) {
            return;
        }
        self.push(&Arc::from(name), raw);
    }

    /// The value of capture `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|c| &**c.name == name).map(|c| c.value)
    }

    /// The `user` capture.
    pub fn user(&self) -> Option<&str> {
        self.get(USER)
    }

    /// Every capture, in order.
    pub fn iter(&self) -> impl Iterator<Item = Capture<'_>> + '_ {
        let starts = std::iter::once(0).chain(self.items.iter().map(|(_, end)| *end));
        self.items
            .iter()
            .zip(starts)
            .map(|((name, end), start)| Capture {
                name,
                value: &self.text[start..*end],
            })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Forgets them all (keeps the allocations).
    pub fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
    }

    /// `name=value` pairs separated by commas, names and values through
    /// [`escape_token`]: one whitespace-free token, safe for a terminal or a log,
    /// readable back with [`Captures::parse_fields`].
    pub fn to_fields(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}={}", escape_token(c.name), escape_token(c.value));
        }
        out
    }

    /// Reads [`Captures::to_fields`] back (bounded again; malformed pairs skipped).
    pub fn parse_fields(text: &str) -> Captures {
        let mut out = Captures::new();
        for pair in text.split(',') {
            if let Some((k, v)) = pair.split_once('=') {
                out.push_named(&unescape(k), unescape(v).as_bytes());
            }
        }
        out
    }

    /// A JSON object `{"name":"value",...}`, as the store keeps them.
    pub fn to_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .iter()
            .map(|c| (c.name.to_string(), serde_json::Value::from(c.value)))
            .collect();
        serde_json::Value::Object(map).to_string()
    }

    /// Reads [`Captures::to_json`] back (bounded again); anything else is none.
    pub fn from_json(text: &str) -> Captures {
        let mut out = Captures::new();
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text) {
            for (k, v) in map {
                if let Some(v) = v.as_str() {
                    out.push_named(&k, v.as_bytes());
                }
            }
        }
        out
    }
}

impl serde::Serialize for Captures {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.len()))?;
        for c in self.iter() {
            m.serialize_entry(&**c.name, c.value)?;
        }
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for Captures {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let mut out = Captures::new();
        for (k, v) in map {
            out.push_named(&k, v.as_bytes());
        }
        Ok(out)
    }
}

/// `raw` as bounded text: invalid UTF-8 replaced, cut at [`MAX_VALUE_BYTES`] on a
/// character boundary with `…` appended when cut.
pub fn bound(raw: &[u8]) -> Box<str> {
    let mut out = String::new();
    bound_into(raw, &mut out);
    out.into()
}

/// [`bound`]`(raw)`, borrowed from `raw` where it is kept whole (most values)
/// and made in `buf` otherwise: a caller that only looks at the value (counts
/// it) copies nothing, and allocates nothing once `buf` has grown.
/// Inlined (into `log2drop test`'s count, per offence): its common case is a
/// few instructions.
#[inline]
pub fn bound_in<'a>(raw: &'a [u8], buf: &'a mut String) -> &'a str {
    match kept_whole(raw) {
        Some(whole) => whole,
        None => bound_over(raw, buf),
    }
}

/// [`bound_in`]'s value where it is not `raw` itself.
fn bound_over<'a>(raw: &[u8], buf: &'a mut String) -> &'a str {
    buf.clear();
    bound_into(raw, buf);
    buf
}

/// `raw` as text when bounding keeps it as it is and that is quick to see:
/// short ASCII, as most values (user names) are. `from_utf8` reads words only
/// over two aligned ones, so it walks a user name byte by byte; `is_ascii`
/// reads it in one or two unaligned words.
#[inline]
fn kept_whole(raw: &[u8]) -> Option<&str> {
    if raw.len() <= MAX_VALUE_BYTES && raw.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(raw) })
    } else {
        None
    }
}

/// Appends [`bound`]`(raw)` to `out`, without a buffer of its own for valid
/// UTF-8 (a captured value almost always is).
fn bound_into(raw: &[u8], out: &mut String) {
    if let Some(whole) = kept_whole(raw) {
        out.push_str(whole);
        return;
    }
    let raw = &raw[..raw.len().min(MAX_VALUE_BYTES * 4)];
    // `from_utf8` checks ASCII a word at a time; `from_utf8_lossy` walks its
    // chunk iterator even over valid text (most values: user names).
    let text = match std::str::from_utf8(raw) {
        Ok(valid) => Cow::Borrowed(valid),
        Err(_) => String::from_utf8_lossy(raw),
    };
    if text.len() <= MAX_VALUE_BYTES {
        out.push_str(&text);
        return;
    }
    let mut end = MAX_VALUE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&text[..end]);
    out.push('…');
}

/// Characters that change how the text around them is shown without being shown
/// themselves, or break a line without being a control character: bidi marks,
/// embeddings, overrides and isolates, zero-width characters, the byte order
/// mark, the soft hyphen, and the Unicode line and paragraph separators.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn escape_with(s: &str, also: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || c.is_control() || is_format(c) || also(c);
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Attacker-written text made safe to print: see the module docs.
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_with(s, |_| false)
}

/// [`escape`] that also escapes whitespace, `"`, `=` and `,`: one `key=value`
/// token of a comma-separated list.
pub fn escape_token(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| c.is_whitespace() || matches!(c, '"' | '=' | ','))
}

/// The inverse of [`escape`] and [`escape_token`]; a malformed escape stays as
/// written.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\\\\") {
            out.push('\\');
            rest = after;
        } else if let Some(c) = tail
            .strip_prefix("\\u{")
            .and_then(|t| t.find('}').map(|e| (&t[..e], &t[e + 1..])))
            .and_then(|(hex, after)| {
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map(|c| (c, after))
            })
        {
            out.push(c.0);
            rest = c.1;
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(100);
        let v = bound(long.as_bytes());
        assert!(v.len() <= MAX_VALUE_BYTES + '…'.len_utf8(), "{}", v.len());
        assert!(v.ends_with('…'));
        assert!(v.starts_with("éé"));
        assert_eq!(&*bound(b"root"), "root");
        assert_eq!(&*bound(b"a\xffb"), "a\u{fffd}b");
        // A megabyte of user name costs no more than the bound.
        let huge = vec![b'x'; 1 << 20];
        assert_eq!(bound(&huge).len(), MAX_VALUE_BYTES + '…'.len_utf8());
        // Cut values of 62, 63 and 64 bytes (plus the ellipsis) are past the
        // bound themselves: bounding them again cuts them where they were.
        for pad in 0..4 {
            let v = bound(format!("{}{}", "x".repeat(pad), "é".repeat(40)).as_bytes());
            assert!(v.len() > MAX_VALUE_BYTES, "{v}");
            assert_eq!(bound(v.as_bytes()), v);
        }
    }

    #[test]
    fn at_most_max_captures_each_name_once() {
        let mut c = Captures::new();
        for i in 0..10 {
            c.push_named(&format!("n{i}"), b"v");
        }
        c.push_named("n0", b"other");
        assert_eq!(c.len(), MAX_CAPTURES);
        assert_eq!(c.get("n0"), Some("v"));
    }

    #[test]
    fn hostile_values_are_escaped() {
        for (raw, shown) in [
            ("root\nFAKE log line", "root\\u{a}FAKE log line"),
            ("\x1b[31mred\x1b[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("a\rb\tc\0", "a\\u{d}b\\u{9}c\\u{0}"),
            ("evil\u{202e}txt.exe", "evil\\u{202e}txt.exe"),
            ("back\\slash", "back\\\\slash"),
            ("\u{85}next", "\\u{85}next"),
            ("line\u{2028}sep", "line\\u{2028}sep"),
        ] {
            assert_eq!(escape(raw), shown, "{raw:?}");
            assert!(!escape(raw).chars().any(|c| c.is_control()));
        }
        assert!(matches!(escape("plain user"), Cow::Borrowed(_)));
        assert_eq!(escape_token("a b=c\"d"), "a\\u{20}b\\u{3d}c\\u{22}d");
    }

    #[test]
    fn fields_and_json_round_trip() {
        let mut c = Captures::new();
        c.push_named("user", "ro ot,\n\x1b[2J=\\".as_bytes());
        c.push_named("mail", b"a@example.org");
        let fields = c.to_fields();
        assert!(
            !fields.contains('\n') && !fields.contains('\x1b'),
            "{fields}"
        );
        assert!(!fields.contains(' '), "{fields}");
        assert_eq!(fields.split(',').count(), 2, "{fields}");
        assert_eq!(Captures::parse_fields(&fields), c);
        let mut sorted = Captures::new();
        sorted.push_named("mail", b"a@example.org");
        sorted.push_named("user", "ro ot,\n\x1b[2J=\\".as_bytes());
        assert_eq!(Captures::from_json(&c.to_json()), sorted);
        assert_eq!(Captures::from_json("not json"), Captures::new());
    }

    /// What the captures hold after `pushes`, by the rules alone: each value
    /// bounded on its own, the first of each name, at most [`MAX_CAPTURES`].
    fn model(pushes: &[(String, Vec<u8>)]) -> Vec<(String, Box<str>)> {
        let mut out: Vec<(String, Box<str>)> = Vec::new();
        for (name, raw) in pushes {
            if out.len() < MAX_CAPTURES && !out.iter().any(|(n, _)| n == name) {
                out.push((name.clone(), bound(raw)));
            }
        }
        out
    }

    /// The model `bound` must agree with: the lossy text of the first bytes,
    /// cut at a character boundary with an ellipsis when it is too long.
    fn lossy_cut(raw: &[u8]) -> String {
        let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_VALUE_BYTES * 4)]);
        if text.len() <= MAX_VALUE_BYTES {
            return text.into_owned();
        }
        let end = (0..=MAX_VALUE_BYTES)
            .rev()
            .find(|&e| text.is_char_boundary(e))
            .unwrap_or(0);
        format!("{}\u{2026}", &text[..end])
    }

    proptest! {
        /// A value is what the lossy conversion of its first bytes makes of
        /// it, whether the bytes are valid UTF-8 (borrowed) or not (copied).
        #[test]
        fn bound_is_the_lossy_text_cut(
            raw in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(0xc3), Just(0xa9), Just(0xe2), Just(0xff), any::<u8>()],
                0..300,
            ),
        ) {
            let want = lossy_cut(&raw);
            prop_assert_eq!(&*bound(&raw), want.as_str());
        }

        /// Bounding in place gives what `bound` gives, whatever the buffer
        /// held, and bounding a bounded value leaves it as it is (a fail2ban
        /// filter's captures reach `each_capture`'s callers bounded).
        #[test]
        fn bound_in_is_bound_and_bounding_twice_is_once(
            raw in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(0xc3), Just(0xa9), Just(0xe2), Just(0xff), any::<u8>()],
                0..300,
            ),
            stale in "[a-z\u{e9}]{0,80}",
        ) {
            let want = bound(&raw);
            let mut buf = stale;
            prop_assert_eq!(bound_in(&raw, &mut buf), &*want);
            let mut again = String::new();
            prop_assert_eq!(bound_in(want.as_bytes(), &mut again), &*want);
        }

        /// Short ASCII values, which take the fast path, read back whole, and
        /// longer ones are cut as any other text is.
        #[test]
        fn ascii_values_are_kept_whole_up_to_the_bound(
            raw in proptest::collection::vec(0u8..0x80, 0..100),
            tail in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            for raw in [raw.clone(), [raw, tail].concat()] {
                let want = lossy_cut(&raw);
                prop_assert_eq!(&*bound(&raw), want.as_str());
            }
        }

        /// The values share one buffer: each still reads back as its own
        /// bounded value, and a cleared, refilled set equals a fresh one.
        #[test]
        fn shared_buffer_reads_back_each_value(
            pushes in proptest::collection::vec(
                ("[a-e]", proptest::collection::vec(
                    prop_oneof![Just(b'a'), Just(0xc3), Just(0xa9), Just(0xff), any::<u8>()],
                    0..300,
                )),
                0..8,
            ),
            before in proptest::collection::vec(("[a-e]", "[a-z\u{e9}]{0,80}"), 0..5),
        ) {
            let mut fresh = Captures::new();
            for (name, raw) in &pushes {
                fresh.push(&Arc::from(name.as_str()), raw);
            }
            let got: Vec<(String, Box<str>)> =
                fresh.iter().map(|c| (c.name.to_string(), c.value.into())).collect();
            prop_assert_eq!(&got, &model(&pushes));
            for (name, value) in &got {
                prop_assert_eq!(fresh.get(name), Some(&**value));
            }
            let mut reused = Captures::new();
            for (name, value) in &before {
                reused.push_named(name, value.as_bytes());
            }
            reused.clear();
            prop_assert!(reused.is_empty());
            for (name, raw) in &pushes {
                reused.push_named(name, raw);
            }
            prop_assert_eq!(&reused, &fresh);
            prop_assert_eq!(reused.len(), got.len());
        }

        #[test]
        fn escape_round_trips_and_prints_no_control(s in "\\PC*|[\\x00-\\x1f\\\\ \u{202e}a-z]{0,40}") {
            let e = escape(&s);
            prop_assert!(!e.chars().any(|c| c.is_control() || is_format(c)));
            prop_assert_eq!(unescape(&e), s.as_str());
            let t = escape_token(&s);
            prop_assert!(!t.chars().any(char::is_whitespace));
            prop_assert_eq!(unescape(&t), s.as_str());
        }
    }
}
