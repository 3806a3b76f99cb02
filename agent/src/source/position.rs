//! Where a source got to: the one shape a position has from the source thread
//! through the engine task and the commit thread into the store, and back.
//!
//! A file's position and a journal's cursor used to travel as two parallel pairs
//! (`(PathBuf, FilePosition)`, `(String, String)`) through every layer, each
//! with its own maps, store calls and restore loop. One type keeps them in step:
//! whatever kind of source is added next carries its position in a new variant
//! and gets saving, merging and restoring for free.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::FilePosition;
use super::files;
use super::glob::Pattern;

/// How far one source (or one file of a file source) has been read: every line
/// before it has been handed to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourcePosition {
    /// A followed file.
    File {
        /// The followed path, or [`files::rotated_key`] for a rotated file still
        /// being read.
        path: PathBuf,
        /// Where to resume.
        at: FilePosition,
    },
    /// A journal source.
    Journal {
        /// Source name from the config.
        source: String,
        /// journalctl's cursor of the last entry read.
        cursor: String,
    },
    /// The fleet link (see [`crate::fleet`]): the last entry read from its
    /// Redis stream, saved with the decisions that entry caused.
    Fleet {
        /// The stream key.
        stream: String,
        /// The stream ID of the last entry read.
        id: String,
    },
}

/// What identifies a [`SourcePosition`]: a newer position with the same key
/// replaces the older one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PositionKey {
    /// A file's path or rotated key.
    File(PathBuf),
    /// A journal source's name.
    Journal(String),
    /// A fleet stream's key.
    Fleet(String),
}

impl SourcePosition {
    /// The key this position is saved under.
    pub fn key(&self) -> PositionKey {
        match self {
            SourcePosition::File { path, .. } => PositionKey::File(path.clone()),
            SourcePosition::Journal { source, .. } => PositionKey::Journal(source.clone()),
            SourcePosition::Fleet { stream, .. } => PositionKey::Fleet(stream.clone()),
        }
    }
}

/// Positions by key, the newest of each kept: what is pending for the store, what
/// the store holds, what a restarted source resumes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(HashMap<PositionKey, SourcePosition>);

impl Positions {
    /// Keeps `p`, replacing an older position under the same key.
    pub fn insert(&mut self, p: SourcePosition) {
        self.0.insert(p.key(), p);
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Takes every position out.
    pub fn take(&mut self) -> Vec<SourcePosition> {
        self.0.drain().map(|(_, p)| p).collect()
    }

    /// Every position held.
    pub fn iter(&self) -> impl Iterator<Item = &SourcePosition> {
        self.0.values()
    }

    /// Whether a file position is held for `path`.
    pub fn has_file(&self, path: &Path) -> bool {
        self.0.contains_key(&PositionKey::File(path.to_owned()))
    }

    /// The file positions of the paths `pattern` matches, and of the rotated
    /// files that were still open for them (under their rotated keys).
    pub fn files_for(&self, pattern: &Pattern) -> HashMap<PathBuf, FilePosition> {
        self.iter()
            .filter_map(|p| match p {
                SourcePosition::File { path, at } => Some((path, at)),
                SourcePosition::Journal { .. } | SourcePosition::Fleet { .. } => None,
            })
            .filter(|(path, _)| pattern.matches(files::split_key(path).0))
            .map(|(path, at)| (path.clone(), *at))
            .collect()
    }

    /// The saved stream ID of the fleet link on `stream`.
    pub fn fleet_id(&self, stream: &str) -> Option<String> {
        match self.0.get(&PositionKey::Fleet(stream.to_owned())) {
            Some(SourcePosition::Fleet { id, .. }) => Some(id.clone()),
            _ => None,
        }
    }

    /// The saved cursor of journal source `name`.
    pub fn cursor(&self, name: &str) -> Option<String> {
        match self.0.get(&PositionKey::Journal(name.to_owned())) {
            Some(SourcePosition::Journal { cursor, .. }) => Some(cursor.clone()),
            _ => None,
        }
    }
}

impl Extend<SourcePosition> for Positions {
    fn extend<I: IntoIterator<Item = SourcePosition>>(&mut self, iter: I) {
        for p in iter {
            self.insert(p);
        }
    }
}

impl FromIterator<SourcePosition> for Positions {
    fn from_iter<I: IntoIterator<Item = SourcePosition>>(iter: I) -> Self {
        let mut out = Positions::default();
        out.extend(iter);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, offset: u64) -> SourcePosition {
        SourcePosition::File {
            path: PathBuf::from(path),
            at: FilePosition {
                dev: 1,
                inode: 2,
                offset,
                ..FilePosition::NONE
            },
        }
    }

    fn journal(name: &str, cursor: &str) -> SourcePosition {
        SourcePosition::Journal {
            source: name.into(),
            cursor: cursor.into(),
        }
    }

    #[test]
    fn a_newer_position_replaces_the_older_under_its_key_only() {
        let mut p: Positions = [file("/a", 1), file("/b", 1), journal("j", "c1")]
            .into_iter()
            .collect();
        p.extend([file("/a", 9), journal("j", "c2"), journal("/a", "x")]);
        assert_eq!(p.len(), 4, "a journal named like a path is its own key");
        assert_eq!(p.cursor("j").as_deref(), Some("c2"));
        assert_eq!(p.cursor("/b"), None);
        let pattern = Pattern::new(Path::new("/a")).expect("pattern");
        let files = p.files_for(&pattern);
        assert_eq!(files.len(), 1);
        assert_eq!(files[Path::new("/a")].offset, 9);
    }
}
