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
        // Where the next line starts.
        let mut start = 0;
        if self.has_partial() {
            // The end of the line the last chunk began.
            let Some(i) = memchr::memchr(b'\n', chunk) else {
                self.keep(chunk);
                return None;
            };
            self.keep(&chunk[..i]);
            self.emit(sink);
            start = i + 1;
        }
        // From here every line starts in `chunk`: the common case, a whole
        // line handed out in place, checks nothing about the partial buffer.
        // The `\n`s are found a block at a time (see [`newline_mask`]), and
        // each block's handed out from its mask.
        let mut base = start;
        while base < chunk.len() {
            let mut mask = newline_mask(chunk, base);
            while mask != 0 {
                let end = base + mask.trailing_zeros() as usize;
                mask &= mask - 1;
                self.hand_out(&chunk[start..end], sink);
                start = end + 1;
            }
            base += BLOCK;
        }
        // The rest has no `\n`: a line to finish with the next chunk.
        let rest = skip_nuls(&chunk[start..]);
        if !rest.is_empty() {
            self.keep(rest);
        }
        (start > 0).then_some(start)
    }

    /// Hands out `piece`, a whole line in place (its `\n` not included).
    #[inline]
    fn hand_out<F: FnMut(Line<'_>) + ?Sized>(&self, piece: &[u8], sink: &mut F) {
        let piece = skip_nuls(piece);
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

/// Bytes compared at once: one bit of a mask each.
const BLOCK: usize = 64;

/// The `\n`s of the [`BLOCK`] bytes of `chunk` from `base` on (fewer at its
/// end), one bit each (bit `i` for byte `base + i`). A `memchr` call per line
/// pays its set-up (dispatch, alignment, the short-input path) for every line
/// of 80-odd bytes, which cost more than the search; a whole block compared at
/// once costs a line a few bit operations and a block its compares.
#[inline]
fn newline_mask(chunk: &[u8], base: usize) -> u64 {
    match chunk
        .get(base..base + BLOCK)
        .and_then(|b| b.first_chunk::<BLOCK>())
    {
        Some(block) => block_mask(block),
        None => tail_mask(&chunk[base.min(chunk.len())..]),
    }
}

/// [`newline_mask`] of a chunk's last few bytes (fewer than [`BLOCK`]), one by
/// one. Out of line: once per chunk, and its loop (vectorised) would take the
/// registers of the per-line loop around it.
#[cold]
#[inline(never)]
fn tail_mask(tail: &[u8]) -> u64 {
    tail.iter()
        .enumerate()
        .fold(0, |m, (i, &b)| m | (u64::from(b == b'\n') << i))
}

/// `piece` without the NULs it starts with: a hole (see the module doc) is not
/// part of the line that follows it.
#[inline]
fn skip_nuls(piece: &[u8]) -> &[u8] {
    match piece.first() {
        Some(0) => &piece[piece.iter().take_while(|&&b| b == 0).count()..],
        _ => piece,
    }
}

/// One bit per `\n` of a whole block (bit `i` for byte `i`), on x86_64: SSE2 compares sixteen bytes
/// to `\n` in one instruction and gathers their top bits in another. (A plain
/// loop is not vectorised: it measured 930 instructions a line more than
/// `memchr`, and the word-at-a-time form below 150 more.)
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_mask(block: &[u8; BLOCK]) -> u64 {
    // SAFETY: SSE2 is part of the x86_64 baseline, so every x86_64 CPU has
    // the one feature `sse2_block_mask` enables.
    unsafe { sse2_block_mask(block) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn sse2_block_mask(block: &[u8; BLOCK]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let nl = _mm_set1_epi8(b'\n' as i8);
    let mut mask = 0;
    for (lane, bytes) in block.chunks_exact(16).enumerate() {
        // SAFETY: `bytes` is 16 readable bytes, and `loadu` takes any
        // alignment.
        let bytes = unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) };
        let hits = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, nl)) as u16;
        mask |= u64::from(hits) << (16 * lane);
    }
    mask
}

/// [`block_mask`] elsewhere: eight bytes at a time (an
/// exact zero-byte test on the bytes xor `\n`), each word's flags gathered
/// into one byte by a multiply.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_mask(block: &[u8; BLOCK]) -> u64 {
    block_mask_words(block)
}

#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn block_mask_words(block: &[u8; BLOCK]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const NL: u64 = u64::from_ne_bytes([b'\n'; 8]);
    let mut mask = 0;
    for (k, word) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ NL;
        // Bit 7 of each byte that is zero, with no borrow between bytes
        // (unlike the cheaper test, whose higher flags may be false).
        let zero = !((x & LOW7).wrapping_add(LOW7) | x | LOW7);
        // Bit 7 of byte j to bit 56 + j: no two products meet, so nothing
        // carries into the top byte.
        let bits = (zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        mask |= bits << (8 * k);
    }
    mask
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

    /// The `\n` positions `newline_mask` gives for the block at `base`, and
    /// the plain search's.
    fn newlines_both(chunk: &[u8], base: usize) -> (Vec<usize>, Vec<usize>) {
        let mask = newline_mask(chunk, base);
        let got = (0..BLOCK)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| base + i)
            .collect();
        let want = (base..chunk.len().min(base + BLOCK))
            .filter(|&i| chunk[i] == b'\n')
            .collect();
        (got, want)
    }

    /// Line ends on either side of a block's edge, in a chunk's last, short
    /// block, and a line that spans whole blocks, split in chunks of every
    /// length around the block size.
    #[test]
    fn lines_ending_at_block_edges() {
        let mut text = Vec::new();
        let mut want = Vec::new();
        for len in [62, 63, 64, 0, 65, 127, 128, 1, 200] {
            let line = vec![b'a' + (len % 26) as u8; len];
            text.extend_from_slice(&line);
            text.push(b'\n');
            want.push((line, false));
        }
        text.extend_from_slice(b"tail");
        want.push((b"tail".to_vec(), false));
        for size in [1, 7, 63, 64, 65, 128, 129, text.len()] {
            let chunks: Vec<&[u8]> = text.chunks(size).collect();
            assert_eq!(split_all(&chunks, 1000), want, "chunks of {size}");
        }
        for base in [
            0,
            1,
            63,
            64,
            65,
            100,
            text.len() - 64,
            text.len() - 1,
            text.len(),
        ] {
            let (got, want) = newlines_both(&text, base);
            assert_eq!(got, want, "from {base}");
        }
    }

    #[test]
    fn block_mask_is_one_bit_per_newline() {
        let mut block = [b'x'; BLOCK];
        for i in [0, 7, 8, 15, 16, 31, 32, 47, 48, 63] {
            block[i] = b'\n';
        }
        let want = [0, 7, 8, 15, 16, 31, 32, 47, 48, 63]
            .iter()
            .fold(0u64, |m, i| m | 1 << i);
        assert_eq!(block_mask(&block), want);
        assert_eq!(block_mask_words(&block), want);
        // Bytes one off `\n`, and high bytes, flag nothing.
        let block = [0x0b; BLOCK];
        assert_eq!(block_mask(&block), 0);
        assert_eq!(block_mask_words(&[0x8a; BLOCK]), 0);
    }

    proptest! {
        /// A block's mask flags exactly the `\n`s a byte-by-byte search
        /// finds, from any start, whole blocks and a chunk's short last one;
        /// both block masks agree on every block.
        #[test]
        fn newlines_are_the_plain_search(
            chunk in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(0x0b), Just(0x8a), any::<u8>()], 0..300),
            base in 0usize..300,
        ) {
            let base = base.min(chunk.len());
            let (got, want) = newlines_both(&chunk, base);
            prop_assert_eq!(got, want);
            for block in chunk.chunks_exact(BLOCK) {
                let block = block.first_chunk::<BLOCK>().expect("whole block");
                prop_assert_eq!(block_mask(block), block_mask_words(block));
            }
        }

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
