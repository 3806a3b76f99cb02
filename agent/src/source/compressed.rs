//! Opening one-shot inputs as text, whatever their compression: plain files,
//! `.gz` (every member of a multi-member file), `.zst` (every frame), `.xz` (every
//! stream), `.bz2` (every stream), and stdin.
//!
//! `log2drop test`, `log2drop report` and backfills read rotated logs, which are
//! usually compressed and not always named for it (`auth.log.2` may be gzip; a
//! pipe has no name at all). So the format is told by the first bytes (the magic
//! numbers), never by the extension.
//!
//! Whatever is not text must be refused rather than matched as garbage: a
//! compressed format we recognise but do not read (lz4, zip, 7z, lzip, compress)
//! fails to open with its name, and decoded data with a NUL byte in its first
//! [`TEXT_WINDOW`] bytes fails on read. A run of NUL bytes at the very start is
//! allowed: a log truncated under a writer that does not append (copytruncate)
//! starts with one.
//!
//! Every error names the input: opening fails with [`OpenError`], and a read error
//! in the middle of a stream (a corrupt or cut-off archive, binary data) is an
//! `io::Error` whose inner error is a [`DecodeError`] carrying the path and format.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Buffer size of the readers handed out.
const BUF: usize = 64 * 1024;

/// How many decoded bytes (after a leading NUL run) must be free of NUL bytes for
/// the input to count as text. Random binary data has a NUL in 8 KiB with a
/// probability of 1 - 2.6e-14.
pub const TEXT_WINDOW: usize = 8192;

/// Bytes read to tell the format: the longest magic we test.
const SNIFF: usize = 10;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// "BZh" and the block size digit, then a block header or the end-of-stream
/// marker (an empty file), so a text line starting with "BZh1" is not bzip2.
const BZIP2_BLOCK: [u8; 6] = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
const BZIP2_END: [u8; 6] = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];

/// Formats we recognise and refuse, with the command that turns them into text.
const REFUSED: &[(&[u8], &str, &str)] = &[
    (&[0x04, 0x22, 0x4d, 0x18], "lz4", "lz4 -dc"),
    (b"PK\x03\x04", "zip", "unzip -p"),
    (&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c], "7z", "7z x -so"),
    (b"LZIP", "lzip", "lzip -dc"),
    (&[0x1f, 0x9d], "compress (.Z)", "uncompress -c"),
];

/// How an input is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text.
    Plain,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard, possibly several frames.
    Zstd,
    /// xz (LZMA2), possibly several streams.
    Xz,
    /// bzip2, possibly several streams.
    Bzip2,
}

impl Format {
    /// The format whose magic number `prefix` starts with. A prefix shorter than a
    /// magic number (a tiny file) is plain text; so is a format we do not read
    /// ([`refused`] tells those).
    pub fn sniff(prefix: &[u8]) -> Format {
        if prefix.starts_with(&ZSTD_MAGIC) {
            Format::Zstd
        } else if prefix.starts_with(&GZIP_MAGIC) {
            Format::Gzip
        } else if prefix.starts_with(&XZ_MAGIC) {
            Format::Xz
        } else if is_bzip2(prefix) {
            Format::Bzip2
        } else {
            Format::Plain
        }
    }
}

fn is_bzip2(prefix: &[u8]) -> bool {
    match prefix {
        [b'B', b'Z', b'h', level, rest @ ..] if (b'1'..=b'9').contains(level) => {
            rest.starts_with(&BZIP2_BLOCK) || rest.starts_with(&BZIP2_END)
        }
        _ => false,
    }
}

/// The name of a compressed format we recognise by `prefix` but do not read, and
/// the command that decompresses it.
pub fn refused(prefix: &[u8]) -> Option<(&'static str, &'static str)> {
    REFUSED
        .iter()
        .find(|(magic, _, _)| prefix.starts_with(magic))
        .map(|(_, name, cmd)| (*name, *cmd))
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Plain => "plain",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Xz => "xz",
            Format::Bzip2 => "bzip2",
        })
    }
}

/// An input could not be opened or its first bytes read, or it is in a format
/// log2drop does not read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct OpenError {
    /// The input (`-` for stdin).
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// A read failed in the middle of an input: returned inside the `io::Error`s the
/// readers of [`open_lines`] produce, so the message names the input.
#[derive(Debug, thiserror::Error)]
#[error("{}: reading {format} data: {source}", path.display())]
pub struct DecodeError {
    /// The input (`-` for stdin).
    pub path: PathBuf,
    /// The format it was read as.
    pub format: Format,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// The decoded data is not text.
#[derive(Debug, thiserror::Error)]
#[error(
    "not a text log: a NUL byte at offset {offset} of the decoded data (log2drop reads plain \
     text, gzip, zstd, xz and bzip2)"
)]
pub struct NotText {
    /// Offset of the NUL byte in the decoded data.
    pub offset: u64,
}

/// The path that names stdin.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` (or stdin for `-`) as buffered text, decompressing gzip, zstd, xz
/// and bzip2.
pub fn open_lines(path: &Path) -> Result<Box<dyn BufRead + Send>, OpenError> {
    if is_stdin(path) {
        return open_reader(io::stdin(), path);
    }
    let file = File::open(path).map_err(|source| OpenError {
        path: path.to_owned(),
        source,
    })?;
    open_reader(file, path)
}

/// Like [`open_lines`] over any reader; `name` is used in errors.
pub fn open_reader<R: Read + Send + 'static>(
    mut reader: R,
    name: &Path,
) -> Result<Box<dyn BufRead + Send>, OpenError> {
    // Read the magic without losing it: a pipe cannot seek back.
    let mut magic = [0u8; SNIFF];
    let mut got = 0;
    while got < magic.len() {
        match reader.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(OpenError {
                    path: name.to_owned(),
                    source,
                });
            }
        }
    }
    let format = Format::sniff(&magic[..got]);
    if format == Format::Plain
        && let Some((kind, command)) = refused(&magic[..got])
    {
        return Err(OpenError {
            path: name.to_owned(),
            source: io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{kind} data, which log2drop does not read; decompress it first, for \
                     example `{command} FILE | log2drop test FILTER -`"
                ),
            ),
        });
    }
    let whole = io::Cursor::new(magic).take(got as u64).chain(reader);
    let buffered = |r| BufReader::with_capacity(BUF, r);
    let decoded: Box<dyn Read + Send> = match format {
        Format::Plain => Box::new(whole),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered(whole))),
        Format::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered(whole)).map_err(|source| {
                OpenError {
                    path: name.to_owned(),
                    source,
                }
            })?,
        ),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(buffered(whole))),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(buffered(whole))),
    };
    Ok(Box::new(BufReader::with_capacity(
        BUF,
        Named {
            inner: decoded,
            path: name.to_owned(),
            format,
            text: TextCheck::default(),
        },
    )))
}

/// Watches the first [`TEXT_WINDOW`] decoded bytes (after a leading NUL run) for
/// a NUL byte.
#[derive(Debug, Default)]
struct TextCheck {
    /// Decoded bytes seen so far.
    offset: u64,
    /// Bytes seen since the first non-NUL byte.
    text: usize,
}

impl TextCheck {
    /// The offset of a NUL byte in `chunk`, the next bytes of the stream, that
    /// makes the input binary.
    fn scan(&mut self, chunk: &[u8]) -> Option<u64> {
        let mut rest = chunk;
        let start = self.offset;
        self.offset += chunk.len() as u64;
        if self.text >= TEXT_WINDOW {
            return None;
        }
        if self.text == 0 {
            let lead = rest.iter().take_while(|&&b| b == 0).count();
            rest = &rest[lead..];
            if rest.is_empty() {
                return None;
            }
        }
        let skipped = chunk.len() - rest.len();
        let window = &rest[..rest.len().min(TEXT_WINDOW - self.text)];
        self.text += window.len();
        memchr::memchr(0, window).map(|i| start + (skipped + i) as u64)
    }
}

/// Puts the input's name and format into every read error.
struct Named {
    inner: Box<dyn Read + Send>,
    path: PathBuf,
    format: Format,
    text: TextCheck,
}

impl Read for Named {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wrap = |source: io::Error| {
            io::Error::new(
                source.kind(),
                DecodeError {
                    path: self.path.clone(),
                    format: self.format,
                    source,
                },
            )
        };
        match self.inner.read(buf) {
            Ok(n) => match self.text.scan(&buf[..n]) {
                None => Ok(n),
                Some(offset) => Err(wrap(io::Error::new(
                    io::ErrorKind::InvalidData,
                    NotText { offset },
                ))),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(wrap(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::line::for_each_line;
    use std::io::Write;

    const TEXT: &str = "Jan  1 00:00:01 h sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n\
                        second line\n\
                        last line without newline";

    fn lines(r: &mut dyn BufRead) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for_each_line(r, 1024, &mut |l| {
            out.push(String::from_utf8_lossy(l.bytes).into_owned())
        })?;
        Ok(out)
    }

    fn want() -> Vec<String> {
        TEXT.lines().map(str::to_owned).collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip")
    }

    #[test]
    fn plain_gzip_and_zstd_files_read_alike_whatever_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("auth.log");
        let gz = dir.path().join("auth.log.2");
        let zst = dir.path().join("auth.log.3.gz");
        std::fs::write(&plain, TEXT).expect("write");
        std::fs::write(&gz, gzip(TEXT.as_bytes())).expect("write");
        std::fs::write(&zst, zstd::encode_all(TEXT.as_bytes(), 3).expect("zstd")).expect("write");
        for p in [&plain, &gz, &zst] {
            let mut r = open_lines(p).expect("open");
            assert_eq!(lines(&mut r).expect("read"), want(), "{}", p.display());
        }
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
        enc.write_all(data).expect("xz");
        enc.finish().expect("xz")
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        enc.write_all(data).expect("bzip2");
        enc.finish().expect("bzip2")
    }

    #[test]
    fn xz_and_bzip2_files_read_alike_whatever_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("auth.log.2.xz", xz(TEXT.as_bytes())),
            ("auth.log.3", xz(TEXT.as_bytes())),
            ("auth.log.4.bz2", bzip2(TEXT.as_bytes())),
            ("auth.log.5.gz", bzip2(TEXT.as_bytes())),
        ];
        for (name, data) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, data).expect("write");
            let mut r = open_lines(&p).expect("open");
            assert_eq!(lines(&mut r).expect("read"), want(), "{name}");
        }
    }

    #[test]
    fn sniffing_tells_every_format_apart() {
        assert_eq!(Format::sniff(&xz(b"x\n")), Format::Xz);
        assert_eq!(Format::sniff(&bzip2(b"x\n")), Format::Bzip2);
        assert_eq!(Format::sniff(&bzip2(b"")), Format::Bzip2);
        assert_eq!(Format::sniff(&gzip(b"x\n")), Format::Gzip);
        assert_eq!(Format::sniff(b"BZh91AY&SY"), Format::Bzip2);
        // Text that merely starts like bzip2 or xz is text.
        assert_eq!(Format::sniff(b"BZh1 backup started"), Format::Plain);
        assert_eq!(Format::sniff(b"\xfd7zX"), Format::Plain);
    }

    #[test]
    fn concatenated_xz_and_bzip2_streams_are_all_read() {
        let mut data = xz(b"a\nb\n");
        data.extend(xz(b"c\n"));
        let mut r = open_reader(io::Cursor::new(data), Path::new("x.xz")).expect("open");
        assert_eq!(lines(&mut r).expect("read"), ["a", "b", "c"]);
        // pbzip2 and `cat a.bz2 b.bz2` write several streams.
        let mut data = bzip2(b"a\n");
        data.extend(bzip2(b"b\n"));
        let mut r = open_reader(io::Cursor::new(data), Path::new("x.bz2")).expect("open");
        assert_eq!(lines(&mut r).expect("read"), ["a", "b"]);
    }

    #[test]
    fn corrupt_xz_and_bzip2_errors_name_the_path_and_format() {
        for (name, mut data, format) in [
            ("a.xz", xz(TEXT.as_bytes()), "xz"),
            ("a.bz2", bzip2(TEXT.as_bytes()), "bzip2"),
        ] {
            let n = data.len();
            data.truncate(n - 8);
            data[n / 2] ^= 0x55;
            let mut r = open_reader(io::Cursor::new(data), Path::new(name)).expect("open");
            let err = lines(&mut r).expect_err("corrupt");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{name}: reading {format} data")),
                "{msg}"
            );
        }
    }

    #[test]
    fn formats_we_do_not_read_are_refused_by_name() {
        let mut lz4 = vec![0x04, 0x22, 0x4d, 0x18];
        lz4.extend_from_slice(b"\x64\x40\xa7rest of an lz4 frame");
        let err = open_reader(io::Cursor::new(lz4), Path::new("/var/log/syslog.1"))
            .err()
            .expect("lz4 refused");
        let msg = err.to_string();
        assert!(msg.starts_with("/var/log/syslog.1: lz4 data"), "{msg}");
        assert!(msg.contains("lz4 -dc"), "{msg}");
        let err = open_reader(
            io::Cursor::new(b"PK\x03\x04\x14\x00".to_vec()),
            Path::new("l"),
        )
        .err()
        .expect("zip refused");
        assert_eq!(err.source.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("zip data"), "{err}");
    }

    #[test]
    fn binary_input_is_an_error_not_garbage() {
        // Bytes of no known format: a NUL comes early in any binary file.
        let mut data = b"\x7fELF\x02\x01\x01".to_vec();
        data.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let mut r = open_reader(io::Cursor::new(data.clone()), Path::new("/bin/x")).expect("open");
        let err = lines(&mut r).expect_err("binary");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(
            msg.starts_with("/bin/x: reading plain data: not a text log"),
            "{msg}"
        );
        let offset = data.iter().position(|&b| b == 0).expect("a NUL") as u64;
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<DecodeError>())
            .and_then(|d| d.source.get_ref())
            .and_then(|e| e.downcast_ref::<NotText>())
            .expect("typed NotText");
        assert_eq!(inner.offset, offset);
        // The same binary compressed is just as refused.
        let mut r = open_reader(io::Cursor::new(xz(&data)), Path::new("b.xz")).expect("open");
        let msg = lines(&mut r).expect_err("binary in xz").to_string();
        assert!(
            msg.contains("b.xz: reading xz data: not a text log"),
            "{msg}"
        );
    }

    #[test]
    fn a_leading_nul_run_and_late_nul_bytes_are_text() {
        // copytruncate under a writer without O_APPEND leaves a hole of NULs.
        let mut data = vec![0u8; 20_000];
        data.extend_from_slice(b"a\nb\n");
        let mut r = open_reader(io::Cursor::new(data), Path::new("t")).expect("open");
        let got = lines(&mut r).expect("text after a hole");
        assert_eq!(got.last().map(String::as_str), Some("b"));
        // A NUL past the window (a crash's zero block in a long log) is data.
        let mut data = "x\n".repeat(TEXT_WINDOW).into_bytes();
        data.extend_from_slice(b"\0\0\0\nlast\n");
        let mut r = open_reader(io::Cursor::new(data), Path::new("t")).expect("open");
        assert_eq!(
            lines(&mut r).expect("late NULs").last().map(String::as_str),
            Some("last")
        );
    }

    #[test]
    fn the_text_check_spans_reads() {
        let mut t = TextCheck::default();
        assert_eq!(t.scan(b"\0\0"), None);
        assert_eq!(t.scan(b"\0ab"), None);
        assert_eq!(t.scan(b"c\0"), Some(6));
        let mut t = TextCheck::default();
        assert_eq!(t.scan(&vec![b'a'; TEXT_WINDOW - 1]), None);
        assert_eq!(t.scan(b"b\0"), None, "past the window");
    }

    #[test]
    fn concatenated_gzip_members_and_zstd_frames_are_all_read() {
        let mut gz = gzip(b"a\nb\n");
        gz.extend(gzip(b"c\n"));
        let mut r = open_reader(io::Cursor::new(gz), Path::new("x.gz")).expect("open");
        assert_eq!(lines(&mut r).expect("read"), ["a", "b", "c"]);
        let mut zst = zstd::encode_all(&b"a\n"[..], 1).expect("zstd");
        zst.extend(zstd::encode_all(&b"b\n"[..], 1).expect("zstd"));
        let mut r = open_reader(io::Cursor::new(zst), Path::new("x.zst")).expect("open");
        assert_eq!(lines(&mut r).expect("read"), ["a", "b"]);
    }

    #[test]
    fn tiny_and_empty_inputs_are_plain() {
        for text in ["", "a", "ab\n", "\x1f"] {
            let mut r = open_reader(io::Cursor::new(text.as_bytes().to_vec()), Path::new("t"))
                .expect("open");
            let mut s = String::new();
            r.read_to_string(&mut s).expect("read");
            assert_eq!(s, text);
        }
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = open_lines(Path::new("/nonexistent/log2drop/auth.log"))
            .err()
            .expect("error");
        assert_eq!(err.path, Path::new("/nonexistent/log2drop/auth.log"));
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string()
                .starts_with("/nonexistent/log2drop/auth.log: ")
        );
    }

    #[test]
    fn corrupt_gzip_error_names_the_path_and_format() {
        let mut gz = gzip(TEXT.as_bytes());
        gz.truncate(gz.len() / 2);
        let mut r =
            open_reader(io::Cursor::new(gz), Path::new("/var/log/auth.log.2.gz")).expect("open");
        let err = lines(&mut r).expect_err("cut-off archive");
        let msg = err.to_string();
        assert!(msg.contains("/var/log/auth.log.2.gz"), "{msg}");
        assert!(msg.contains("gzip"), "{msg}");
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<DecodeError>())
            .expect("typed inner error");
        assert_eq!(inner.format, Format::Gzip);
    }

    #[test]
    fn corrupt_zstd_error_names_the_path() {
        let mut zst = zstd::encode_all(TEXT.as_bytes(), 3).expect("zstd");
        let n = zst.len();
        zst[n / 2] ^= 0xff;
        zst[n - 1] ^= 0xff;
        let mut r = open_reader(io::Cursor::new(zst), Path::new("a.zst")).expect("open");
        let err = lines(&mut r).expect_err("corrupt frame");
        assert!(
            err.to_string().contains("a.zst: reading zstd data"),
            "{err}"
        );
    }

    #[test]
    fn a_pipe_delivering_one_byte_at_a_time_is_sniffed() {
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let r = Trickle(io::Cursor::new(gzip(b"x\ny\n")));
        let mut r = open_reader(r, Path::new("-")).expect("open");
        assert_eq!(lines(&mut r).expect("read"), ["x", "y"]);
    }
}
