//! Splitting a byte stream into bounded lines: the one place every source (files,
//! the journal, commands, stdin, compressed files) turns bytes into lines, so they
//! all bound memory and treat over-long lines the same way.
//!
//! # Over-long lines are cut, counted and never matched
//!
//! A line longer than the bound keeps its first `max` bytes; the rest, up to the
//! next `\n`, is dropped as it arrives, so memory stays at `max` bytes whatever an
//! attacker writes. The cut line is handed out once, at its real end, flagged
//! [`Line::truncated`], so callers count it and may show it (`log2drop test
//! --print-missed`), and positions only ever sit on real line ends (a restart never
//! hands the same cut line out twice).
//!
//! The source threads never run filters on a cut line. The text near the cut is
//! text the attacker chose: in `Invalid user <16 KiB ending in "from 203.0.113.9
//! port 22"> from 198.51.100.7 port 22` the cut line ends exactly like a genuine
//! sshd line about the victim 203.0.113.9, and even unanchored filters with a
//! greedy `.*` pick a different `<HOST>` in the cut line than in the whole line.
//! No marker appended after the cut fixes that for every possible regex, so a cut
//! line is simply not evidence. What this costs is small: the daemons that write
//! these logs cap their own lines well below the 16 KiB default (rsyslog at 8 KiB,
//! nginx request lines at 8 KiB), and `max_line_bytes` can be raised per source.

//!
//! # NUL runs before a line are dropped
//!
//! A writer without `O_APPEND` keeps writing at its old offset after a
//! copytruncate, so the file starts with a hole that reads as NUL bytes, directly
//! followed by the next real line. No daemon writes NUL into a text log, so a run
//! of NULs where a line starts is skipped rather than glued onto that line (which
//! would make it over-long and never matched, or hide its syslog prefix).

/// Default bound on one line, in bytes (`max_line_bytes`).
pub const DEFAULT_MAX_LINE: usize = 16 * 1024;

/// One line, without its `\n` and without a trailing `\r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The bytes, at most the bound; not necessarily UTF-8.
    pub bytes: &'a [u8],
    /// The line was longer than the bound and these are only its first bytes.
    pub truncated: bool,
}

/// Assembles lines from chunks of bytes, keeping at most `max` bytes of an
/// unfinished line. Reused for the life of a stream: no allocation per line once
/// the partial buffer has grown to the longest line seen (at most `max`).
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    /// The unfinished line so far, at most `max` bytes.
    partial: Vec<u8>,
    /// The unfinished line has passed `max`: its remaining bytes are dropped.
    cut: bool,
}

impl LineSplitter {
    /// A splitter that cuts lines longer than `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            partial: Vec::new(),
            cut: false,
        }
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Whether part of a line is waiting for its `\n`.
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.cut
    }

    /// Forgets an unfinished line (the stream it came from was given up or reset).
    pub fn reset(&mut self) {
        self.partial.clear();
        self.cut = false;
    }

    /// Splits `chunk`, handing each line that ends in it to `sink`. Returns the
    /// index just after the last `\n` in `chunk`, if it has one: the caller's stream
    /// position after that index is a line boundary.
    pub fn push(&mut self, chunk: &[u8], sink: &mut dyn FnMut(Line<'_>)) -> Option<usize> {
        self.push_with(chunk, sink)
    }

    /// [`push`](Self::push) with the sink's type known, so a one-shot reader
    /// ([`for_each_line`]) calls it directly rather than through a pointer.
    #[inline]
    fn push_with<F: FnMut(Line<'_>) + ?Sized>(
        &mut self,
        chunk: &[u8],
        sink: &mut F,
    ) -> Option<usize> {
        let mut pos = 0;
        if self.has_partial() {
            // The end of the line the last chunk began.
            let Some(i) = memchr::memchr(b'\n', chunk) else {
                self.keep(chunk);
                return None;
            };
            self.keep(&chunk[..i]);
            self.emit(sink);
            pos = i + 1;
        }
        // From here every line starts in `chunk`: the common case, a whole
        // line handed out in place, checks nothing about the partial buffer.
        let mut boundary = (pos > 0).then_some(pos);
        while let Some(&first) = chunk.get(pos) {
            if first == 0 {
                // A hole of NULs (see the module doc) is not part of the line
                // that follows it.
                pos += chunk[pos..].iter().take_while(|&&b| b == 0).count();
                if pos == chunk.len() {
                    break;
                }
            }
            let rest = &chunk[pos..];
            let Some(i) = memchr::memchr(b'\n', rest) else {
                self.keep(rest);
                break;
            };
            let piece = &rest[..i];
            if piece.len() > self.max {
                sink(Line {
                    bytes: &piece[..self.max],
                    truncated: true,
                });
            } else {
                sink(Line {
                    bytes: strip_cr(piece),
                    truncated: false,
                });
            }
            pos += i + 1;
            boundary = Some(pos);
        }
        boundary
    }

    /// Hands out an unterminated last line, when its stream is over for good.
    /// Returns whether there was one.
    pub fn finish(&mut self, sink: &mut dyn FnMut(Line<'_>)) -> bool {
        self.finish_with(sink)
    }

    fn finish_with<F: FnMut(Line<'_>) + ?Sized>(&mut self, sink: &mut F) -> bool {
        if !self.has_partial() {
            return false;
        }
        self.emit(sink);
        true
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = self.max - self.partial.len();
        if bytes.len() > room {
            self.partial.extend_from_slice(&bytes[..room]);
            self.cut = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }

    fn emit<F: FnMut(Line<'_>) + ?Sized>(&mut self, sink: &mut F) {
        let truncated = self.cut;
        // A cut line keeps its `\r` if the cut removed the real end.
        let bytes = if truncated {
            &self.partial[..]
        } else {
            strip_cr(&self.partial)
        };
        sink(Line { bytes, truncated });
        self.partial.clear();
        self.cut = false;
    }
}

#[inline]
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads `reader` to its end, handing out every line (the last one even without
/// its `\n`). For one-shot inputs: stdin, compressed files, `log2drop test`.
pub fn for_each_line<F: FnMut(Line<'_>) + ?Sized>(
    reader: &mut dyn std::io::BufRead,
    max: usize,
    sink: &mut F,
) -> std::io::Result<()> {
    let mut splitter = LineSplitter::new(max);
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let n = chunk.len();
        splitter.push_with(chunk, sink);
        reader.consume(n);
    }
    splitter.finish_with(sink);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Vec<(Vec<u8>, bool)> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push((l.bytes.to_vec(), l.truncated)));
        }
        s.finish(&mut |l| out.push((l.bytes.to_vec(), l.truncated)));
        out
    }

    #[test]
    fn lines_across_chunks_and_crlf() {
        let got = split_all(&[b"ab", b"c\r\nde", b"f\n", b"tail"], 100);
        assert_eq!(
            got,
            [
                (b"abc".to_vec(), false),
                (b"def".to_vec(), false),
                (b"tail".to_vec(), false)
            ]
        );
    }

    #[test]
    fn long_line_is_cut_at_its_end_and_flagged() {
        let got = split_all(&[b"short\n0123456789abc\nok\n"], 8);
        assert_eq!(
            got,
            [
                (b"short".to_vec(), false),
                (b"01234567".to_vec(), true),
                (b"ok".to_vec(), false)
            ]
        );
        // Across chunks, the partial buffer never exceeds the bound.
        let mut s = LineSplitter::new(8);
        let mut out = Vec::new();
        for _ in 0..1000 {
            s.push(b"xxxxxxxxxxxxxxxx", &mut |l| out.push(l.bytes.to_vec()));
            assert!(s.partial.len() <= 8);
        }
        s.push(b"yy\nz\n", &mut |l| out.push(l.bytes.to_vec()));
        assert_eq!(out, [b"xxxxxxxx".to_vec(), b"z".to_vec()]);
    }

    /// Regression (hardening item 7): the NUL hole copytruncate leaves before a
    /// non-O_APPEND writer's next line turned that line into a "long line".
    #[test]
    fn nul_runs_before_a_line_are_skipped() {
        let hole = vec![0u8; 100];
        let got = split_all(&[&hole, &hole, b"\0\0real line\nnext\n\0\0\n"], 64);
        assert_eq!(
            got,
            [
                (b"real line".to_vec(), false),
                (b"next".to_vec(), false),
                (b"".to_vec(), false)
            ]
        );
        // NULs inside a line are the line's business.
        let got = split_all(&[b"a\0b\n"], 64);
        assert_eq!(got, [(b"a\0b".to_vec(), false)]);
    }

    #[test]
    fn line_of_exactly_max_bytes_is_whole() {
        assert_eq!(split_all(&[b"1234\n"], 4), [(b"1234".to_vec(), false)]);
        assert_eq!(split_all(&[b"12", b"34\n"], 4), [(b"1234".to_vec(), false)]);
        assert_eq!(split_all(&[b"12", b"345\n"], 4), [(b"1234".to_vec(), true)]);
    }

    #[test]
    fn push_reports_the_last_boundary() {
        let mut s = LineSplitter::new(16);
        assert_eq!(s.push(b"abc", &mut |_| {}), None);
        assert_eq!(s.push(b"\nx\ny", &mut |_| {}), Some(3));
        assert!(s.has_partial());
        s.reset();
        assert!(!s.has_partial());
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let got = split_all(&[b"\xff\xfe bad \xc3\n"], 100);
        assert_eq!(got, [(b"\xff\xfe bad \xc3".to_vec(), false)]);
    }

    proptest! {
        /// However the stream is chunked, the lines are those of the whole text
        /// without leading NULs, each cut to the bound and flagged exactly when it
        /// was longer.
        #[test]
        fn chunking_does_not_change_lines(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..8),
            max in 1usize..40,
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain(std::iter::once(text.len())) {
                chunks.push(&text[prev..c]);
                prev = c;
            }
            let got = split_all(&chunks, max);
            let mut want = Vec::new();
            // Leading NULs are no part of a line; an unterminated last line that
            // is nothing but NULs is no line at all.
            let mut pieces: Vec<&[u8]> = text
                .split(|&b| b == b'\n')
                .map(|p| &p[p.iter().take_while(|&&b| b == 0).count()..])
                .collect();
            if pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            for p in pieces {
                if p.len() > max {
                    want.push((p[..max].to_vec(), true));
                } else {
                    want.push((p.strip_suffix(b"\r").unwrap_or(p).to_vec(), false));
                }
            }
            prop_assert_eq!(got, want);
        }
    }
}
