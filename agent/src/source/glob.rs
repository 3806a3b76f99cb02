//! File source paths: one file, or a glob such as `/var/log/nginx/*access.log`
//! whose matches are looked up again while the agent runs, so files created later
//! are picked up.
//!
//! What a glob never matches, because [`super::file::FileFollower`] already reads
//! it through the file it came from: compressed rotated files (`.gz`, `.zst`, ...)
//! and the rotated siblings of another match (`access.log.1` when `access.log`
//! matches too). Without this, `/var/log/app/*` would read every rotated file a
//! second time as a new file.

use std::path::{Path, PathBuf};

/// A `path` that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} is not a valid glob: {message} (at character {position})")]
pub struct GlobError {
    /// The path as written.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// Character position of the problem, from 0.
    pub position: usize,
}

/// A validated file source path.
#[derive(Debug, Clone)]
pub struct Pattern {
    path: PathBuf,
    glob: Option<glob::Pattern>,
}

impl Pattern {
    /// Parses `path`: a plain path unless it contains `*`, `?` or `[`.
    pub fn new(path: &Path) -> Result<Pattern, GlobError> {
        let Some(text) = path.to_str() else {
            // Not UTF-8: only a plain path can be like that.
            return Ok(Pattern {
                path: path.to_owned(),
                glob: None,
            });
        };
        if !text.contains(['*', '?', '[']) {
            return Ok(Pattern {
                path: path.to_owned(),
                glob: None,
            });
        }
        let glob = glob::Pattern::new(text).map_err(|e| GlobError {
            path: text.to_owned(),
            message: e.msg.to_owned(),
            position: e.pos,
        })?;
        Ok(Pattern {
            path: path.to_owned(),
            glob: Some(glob),
        })
    }

    /// Whether `path` is one the pattern names (for a plain path: equal).
    pub fn matches(&self, path: &Path) -> bool {
        match &self.glob {
            None => path == self.path,
            Some(g) => path.to_str().is_some_and(|p| {
                g.matches_with(
                    p,
                    glob::MatchOptions {
                        case_sensitive: true,
                        require_literal_separator: true,
                        require_literal_leading_dot: false,
                    },
                )
            }),
        }
    }

    /// The path as configured.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is one plain path.
    pub fn is_literal(&self) -> bool {
        self.glob.is_none()
    }

    /// The deepest directory of the pattern without wildcards: where new matches
    /// appear (watched for changes).
    pub fn watch_dir(&self) -> PathBuf {
        let mut dir = PathBuf::new();
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        for c in parent.components() {
            let s = c.as_os_str().to_string_lossy();
            if self.glob.is_some() && s.contains(['*', '?', '[']) {
                break;
            }
            dir.push(c);
        }
        if dir.as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            dir
        }
    }

    /// Whether any file the pattern names exists now.
    pub fn any_exists(&self) -> bool {
        self.expand().iter().any(|p| p.exists())
    }

    /// The files the pattern names now, sorted: for a plain path, the path itself
    /// (whether it exists or not); for a glob, the regular files that match, less
    /// compressed files and rotated siblings of other matches.
    pub fn expand(&self) -> Vec<PathBuf> {
        let Some(glob) = &self.glob else {
            return vec![self.path.clone()];
        };
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let Ok(paths) = glob::glob_with(glob.as_str(), options) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = paths
            .flatten()
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(super::file::is_compressed_name)
            })
            .collect();
        found.sort();
        let names: Vec<(PathBuf, String)> = found
            .iter()
            .filter_map(|p| Some((p.parent()?.to_owned(), p.file_name()?.to_str()?.to_owned())))
            .collect();
        found.retain(|p| {
            let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str()))
            else {
                return true;
            };
            !names.iter().any(|(d, other)| {
                d == dir
                    && name.len() > other.len()
                    && name.starts_with(other.as_str())
                    && name[other.len()..].starts_with(['.', '-', '_'])
            })
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::write(p, "").expect("touch");
    }

    #[test]
    fn plain_paths_are_literal_and_expand_to_themselves() {
        let p = Pattern::new(Path::new("/var/log/auth.log")).expect("valid");
        assert!(p.is_literal());
        assert_eq!(p.expand(), [PathBuf::from("/var/log/auth.log")]);
        assert_eq!(p.watch_dir(), Path::new("/var/log"));
    }

    #[test]
    fn invalid_glob_reports_the_position() {
        let e = Pattern::new(Path::new("/var/log/[nginx/*.log")).expect_err("invalid");
        assert_eq!(e.position, 9);
        assert!(e.to_string().contains("at character 9"), "{e}");
    }

    #[test]
    fn glob_matches_files_but_not_compressed_or_rotated_siblings() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "access.log",
            "access.log.1",
            "access.log.2.gz",
            "site-access.log",
            "site-access.log-20250101",
            "error.log",
        ] {
            touch(&dir.path().join(name));
        }
        std::fs::create_dir(dir.path().join("sub-access.log")).expect("mkdir");
        let pat = dir.path().join("*access.log*");
        let p = Pattern::new(&pat).expect("valid");
        assert!(!p.is_literal());
        assert_eq!(p.watch_dir(), dir.path());
        let names: Vec<String> = p
            .expand()
            .iter()
            .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["access.log", "site-access.log"]);
    }

    #[test]
    fn wildcard_directories_are_not_watched_below_the_wildcard() {
        let p = Pattern::new(Path::new("/srv/*/logs/access.log")).expect("valid");
        assert_eq!(p.watch_dir(), Path::new("/srv"));
    }
}
