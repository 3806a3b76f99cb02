//! Opening one-shot inputs as text, whatever their compression: plain files,
//! `.gz` (every member of a multi-member file), `.zst` (every frame), and stdin.
//!
//! `log2drop test`, `log2drop report` and backfills read rotated logs, which are
//! usually compressed and not always named for it (`auth.log.2` may be gzip; a
//! pipe has no name at all). So the format is told by the first bytes (the magic
//! numbers), never by the extension.
//!
//! Every error names the input: opening fails with [`OpenError`], and a read error
//! in the middle of a stream (a corrupt or cut-off archive) is an `io::Error` whose
//! inner error is a [`DecodeError`] carrying the path and format.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Buffer size of the readers handed out.
const BUF: usize = 64 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How an input is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text.
    Plain,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// Zstandard, possibly several frames.
    Zstd,
}

impl Format {
    /// The format whose magic number `prefix` starts with. A prefix shorter than a
    /// magic number (a tiny file) is plain text.
    pub fn sniff(prefix: &[u8]) -> Format {
        if prefix.starts_with(&ZSTD_MAGIC) {
            Format::Zstd
        } else if prefix.starts_with(&GZIP_MAGIC) {
            Format::Gzip
        } else {
            Format::Plain
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Plain => "plain",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
        })
    }
}

/// An input could not be opened or its first bytes read.
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

/// The path that names stdin.
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` (or stdin for `-`) as buffered text, decompressing gzip and zstd.
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
    let mut magic = [0u8; 4];
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
    let whole = io::Cursor::new(magic).take(got as u64).chain(reader);
    let decoded: Box<dyn Read + Send> = match format {
        Format::Plain => Box::new(whole),
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            BUF, whole,
        ))),
        Format::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(BufReader::with_capacity(BUF, whole))
                .map_err(|source| OpenError {
                    path: name.to_owned(),
                    source,
                })?,
        ),
    };
    Ok(Box::new(BufReader::with_capacity(
        BUF,
        Named {
            inner: decoded,
            path: name.to_owned(),
            format,
        },
    )))
}

/// Puts the input's name and format into every read error.
struct Named {
    inner: Box<dyn Read + Send>,
    path: PathBuf,
    format: Format,
}

impl Read for Named {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|source| {
            if source.kind() == io::ErrorKind::Interrupted {
                return source;
            }
            io::Error::new(
                source.kind(),
                DecodeError {
                    path: self.path.clone(),
                    format: self.format,
                    source,
                },
            )
        })
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
