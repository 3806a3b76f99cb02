//! Replays every seed corpus file and every crash reproducer kept in the
//! repository through the fuzzing entry points, on stable and without libFuzzer,
//! so CI runs them on every change. Seeds live in `corpus/<target>/`, reproducers
//! of fixed crashes in `regressions/<target>/` (named after what they found).

use std::fs;
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str, min_per_target: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(kind);
    for (name, entry) in log2drop_fuzz::TARGETS {
        let inputs = files(&root.join(name));
        assert!(
            inputs.len() >= min_per_target,
            "{kind}/{name} holds {} files, expected at least {min_per_target}",
            inputs.len()
        );
        for input in inputs {
            let data = fs::read(&input).expect("a readable corpus file");
            // A panic names the file through this message's backtrace frame.
            eprintln!("replaying {}", input.display());
            entry(&data);
        }
    }
    // A directory not named after a target would never be replayed.
    if let Ok(dirs) = fs::read_dir(&root) {
        for dir in dirs {
            let dir = dir.expect("a readable directory entry");
            if !dir.path().is_dir() {
                continue;
            }
            let name = dir.file_name();
            let name = name.to_string_lossy();
            assert!(
                log2drop_fuzz::target(&name).is_some(),
                "{kind}/{name} is not a fuzz target"
            );
        }
    }
}

#[test]
fn seed_corpus_replays_without_panic() {
    replay("corpus", 2);
}

#[test]
fn crash_reproducers_replay_without_panic() {
    replay("regressions", 0);
}

#[test]
fn every_builtin_filter_compiles_into_the_matcher_target() {
    // The matcher target builds all built-ins on one source; an empty input still
    // builds it, so a built-in that stops compiling together fails here.
    log2drop_fuzz::matcher(b"");
}
