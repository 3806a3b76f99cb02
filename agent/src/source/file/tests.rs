use super::*;
use std::io::Write;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

fn truncate(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("truncate");
}

fn collect_at(f: &mut FileFollower, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    f.poll_at(now, &mut |l| {
        out.push(String::from_utf8_lossy(l.bytes).into_owned())
    })
    .expect("poll");
    out
}

fn collect(f: &mut FileFollower) -> Vec<String> {
    collect_at(f, Instant::now())
}

fn follower(path: &Path, start_at: StartAt) -> FileFollower {
    FileFollower::new(
        path.to_path_buf(),
        FollowOptions {
            start_at,
            ..FollowOptions::default()
        },
        None,
    )
}

#[test]
fn existing_content_is_skipped_by_default_and_appends_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "old 1\nold 2\n");
    let mut f = follower(&p, StartAt::End);
    assert!(collect(&mut f).is_empty());
    append(&p, "new 1\nnew 2\n");
    assert_eq!(collect(&mut f), ["new 1", "new 2"]);
    assert!(collect(&mut f).is_empty());
}

#[test]
fn beginning_reads_existing_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "old 1\nold 2\n");
    let mut f = follower(&p, StartAt::Beginning);
    assert_eq!(collect(&mut f), ["old 1", "old 2"]);
}

#[test]
fn partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "Failed pass");
    assert!(collect(&mut f).is_empty());
    assert_eq!(f.position().map(|p| p.offset), Some(0));
    append(&p, "word\r\nnext");
    assert_eq!(collect(&mut f), ["Failed password"]);
    assert_eq!(f.position().map(|p| p.offset), Some(17));
    append(&p, "\n");
    assert_eq!(collect(&mut f), ["next"]);
}

#[test]
fn rename_and_create_reads_old_tail_then_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "a\n");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rename");
    // The writer still holds the old file and writes one more line there.
    append(&dir.path().join("log.1"), "b\n");
    append(&p, "c\n");
    assert_eq!(collect(&mut f), ["a", "b", "c"]);
    assert_eq!(f.stats().rotations, 1);
    append(&p, "d\n");
    assert_eq!(collect(&mut f), ["d"]);
}

/// Regression (issue 2 gap): a line written to the rotated file more than a few
/// seconds after the rotation was lost.
#[test]
fn rotated_file_is_read_until_idle_for_long() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let old = dir.path().join("log.1");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    let t0 = Instant::now();
    collect_at(&mut f, t0);
    std::fs::rename(&p, &old).expect("rename");
    append(&p, "");
    collect_at(&mut f, t0);
    append(&old, "late\n");
    assert_eq!(collect_at(&mut f, t0 + Duration::from_secs(60)), ["late"]);
    append(&old, "later\n");
    assert_eq!(collect_at(&mut f, t0 + Duration::from_secs(300)), ["later"]);
    // Idle for longer than the limit: closed.
    collect_at(&mut f, t0 + Duration::from_secs(601));
    assert_eq!(f.open_ids().count(), 1);
    append(&old, "too late\n");
    assert!(collect_at(&mut f, t0 + Duration::from_secs(602)).is_empty());
}

/// Regression (model seed 2794): a writer that never reopened its log keeps
/// writing to it after logrotate deleted it as the oldest rotation.
#[test]
fn deleted_rotated_file_is_read_until_idle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let old = dir.path().join("log.1");
    append(&p, "");
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .expect("open");
    let mut f = follower(&p, StartAt::End);
    let t0 = Instant::now();
    collect_at(&mut f, t0);
    std::fs::rename(&p, &old).expect("rename");
    writer.write_all(b"last words\n").expect("write");
    append(&p, "");
    std::fs::remove_file(&old).expect("remove");
    assert_eq!(collect_at(&mut f, t0), ["last words"]);
    assert!(collect_at(&mut f, t0).is_empty());
    writer
        .write_all(b"written after the delete\n")
        .expect("write");
    let later = t0 + DEFAULT_ROTATED_IDLE / 2;
    assert_eq!(collect_at(&mut f, later), ["written after the delete"]);
    assert_eq!(f.open_ids().count(), 2);
    collect_at(&mut f, later + DEFAULT_ROTATED_IDLE);
    assert_eq!(f.open_ids().count(), 1, "closed once idle");
}

#[test]
fn rotated_descriptors_are_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = FileFollower::new(
        p.clone(),
        FollowOptions {
            max_rotated: 2,
            ..FollowOptions::default()
        },
        None,
    );
    collect(&mut f);
    for i in 0..5 {
        append(&p, &format!("{i}\n"));
        std::fs::rename(&p, dir.path().join(format!("log-{i}"))).expect("rename");
        append(&p, "");
        assert_eq!(collect(&mut f), [i.to_string()]);
        assert!(f.open_ids().count() <= 3);
    }
}

/// Regression (model seed 10166): at the bound, empty rotated files (here a
/// burst of rotations nobody wrote to) are closed before the writer's file that
/// still gets lines, even though that one is the oldest.
#[test]
fn bound_closes_empty_rotated_files_before_the_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .expect("open");
    let mut f = FileFollower::new(
        p.clone(),
        FollowOptions {
            max_rotated: 2,
            ..FollowOptions::default()
        },
        None,
    );
    collect(&mut f);
    writer.write_all(b"w1\n").expect("write");
    std::fs::rename(&p, dir.path().join("log-w")).expect("rotate");
    append(&p, "");
    assert_eq!(collect(&mut f), ["w1"]);
    for i in 0..4 {
        std::fs::rename(&p, dir.path().join(format!("log-{i}"))).expect("rotate");
        append(&p, "");
        collect(&mut f);
    }
    writer.write_all(b"w2\n").expect("write");
    assert_eq!(collect(&mut f), ["w2"]);
}

/// Regression (issue 2 gap): two rotations between polls lost the middle file.
#[test]
fn two_rotations_between_polls_read_the_middle_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("auth.log");
    let p1 = dir.path().join("auth.log.1");
    let p2 = dir.path().join("auth.log.2");
    append(&p2, "ancient\n");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "a1\n");
    // logrotate twice before we look: A -> .1, B created, B -> .1, A -> .2, C.
    std::fs::rename(&p2, dir.path().join("auth.log.3")).expect("rename");
    std::fs::rename(&p, &p1).expect("rename");
    append(&p, "b1\nb2\n");
    std::fs::rename(&p1, &p2).expect("rename");
    std::fs::rename(&p, &p1).expect("rename");
    append(&p, "c1\n");
    assert_eq!(collect(&mut f), ["a1", "b1", "b2", "c1"]);
    assert_eq!(f.stats().recovered, 1);
    // Nothing is read twice afterwards.
    append(&p, "c2\n");
    assert_eq!(collect(&mut f), ["c2"]);
}

#[test]
fn copytruncate_restarts_at_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "one line that is long\n");
    assert_eq!(collect(&mut f), ["one line that is long"]);
    std::fs::copy(&p, dir.path().join("log.1")).expect("copy");
    truncate(&p);
    append(&p, "x\n");
    assert_eq!(collect(&mut f), ["x"]);
    assert_eq!(f.stats().truncations, 1);
}

/// Regression (issue 2 gap): a copytruncate followed by the file growing past the
/// old offset before the next poll was read from the old offset, in the middle of
/// new content.
#[test]
fn copytruncate_then_growth_past_old_offset_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "Jan 1 00:00:01 first\n");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:01 first"]);
    truncate(&p);
    append(
        &p,
        "Jan 1 00:00:02 second line\nJan 1 00:00:03 third line\n",
    );
    assert_eq!(
        collect(&mut f),
        ["Jan 1 00:00:02 second line", "Jan 1 00:00:03 third line"]
    );
    assert_eq!(f.stats().truncations, 1);
}

/// The lines written between our last read and the truncation are read from the
/// copy, continuing the unfinished line; the copy is not read again later.
#[test]
fn copytruncate_recovers_unread_lines_from_the_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, copy, mut f) = followed_log(dir.path());
    append(&p, "Jan 1 00:00:01 read\nJan 1 00:00:02 unfin");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:01 read"]);
    append(&p, "ished\nJan 1 00:00:03 unread\n");
    std::fs::copy(&p, &copy).expect("copy");
    truncate(&p);
    append(&p, "Jan 1 00:00:04 after\n");
    assert_eq!(
        collect(&mut f),
        [
            "Jan 1 00:00:02 unfinished",
            "Jan 1 00:00:03 unread",
            "Jan 1 00:00:04 after"
        ]
    );
    assert_eq!(f.stats().recovered, 1);
    // A later rotation does not read the copy again.
    std::fs::rename(&copy, dir.path().join("log.2")).expect("rename");
    std::fs::rename(&p, &copy).expect("rename");
    append(&p, "Jan 1 00:00:05 new\n");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:05 new"]);
}

#[test]
fn compressed_siblings_are_never_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "a\n");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rename");
    // Plain text under a compressed name, and gzip under a plain name.
    append(&dir.path().join("log.2.gz"), "not followed\n");
    std::fs::write(dir.path().join("log.3"), [0x1f, 0x8b, 8, 0, b'\n']).expect("write");
    append(&p, "b\n");
    assert_eq!(collect(&mut f), ["a", "b"]);
}

#[test]
fn delete_and_recreate_reads_new_file_from_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "before\n");
    assert_eq!(collect(&mut f), ["before"]);
    std::fs::remove_file(&p).expect("remove");
    assert!(collect(&mut f).is_empty());
    append(&p, "after 1\nafter 2\n");
    let t0 = Instant::now();
    assert_eq!(collect_at(&mut f, t0), ["after 1", "after 2"]);
    collect_at(&mut f, t0 + DEFAULT_ROTATED_IDLE);
    assert_eq!(
        f.open_ids().count(),
        1,
        "the deleted file is closed once idle"
    );
}

#[test]
fn missing_file_is_read_from_start_once_it_appears() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("later.log");
    let mut f = follower(&p, StartAt::End);
    assert!(collect(&mut f).is_empty());
    assert_eq!(f.position(), None);
    append(&p, "first\n");
    assert_eq!(collect(&mut f), ["first"]);
}

#[test]
fn long_lines_are_cut_flagged_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = FileFollower::new(
        p.clone(),
        FollowOptions {
            max_line: 8,
            ..FollowOptions::default()
        },
        None,
    );
    collect(&mut f);
    append(&p, "short\n0123456789abc\nok\n");
    let mut got = Vec::new();
    f.poll(&mut |l| got.push((l.bytes.to_vec(), l.truncated)))
        .expect("poll");
    assert_eq!(
        got,
        [
            (b"short".to_vec(), false),
            (b"01234567".to_vec(), true),
            (b"ok".to_vec(), false)
        ]
    );
    // Over the limit across two reads: the position stays on the line start
    // until the line ends, so a restart never hands the cut line out twice.
    append(&p, "01234");
    assert!(collect(&mut f).is_empty());
    let before = f.position().expect("position").offset;
    append(&p, "56789\nfine\n");
    assert_eq!(collect(&mut f), ["01234567", "fine"]);
    assert!(f.position().expect("position").offset > before);
    assert_eq!(f.stats().long_lines, 2);
    assert_eq!(f.stats().lines, 5);
}

#[test]
fn resume_continues_at_saved_offset_of_same_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "a\nb\npart");
    assert_eq!(collect(&mut f), ["a", "b"]);
    let saved = f.position().expect("position");
    drop(f);
    // Written while the agent was down.
    append(&p, "ial\nc\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), Some(saved));
    assert_eq!(collect(&mut f), ["partial", "c"]);
}

/// Regression: two restarts while the file was missing lost the saved position,
/// so the file that then appeared was read from its end.
#[test]
fn saved_position_survives_restarts_while_the_file_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "a\n");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    std::fs::remove_file(&p).expect("remove");
    collect(&mut f);
    let saved = f.position();
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    collect(&mut f);
    let saved = f.position();
    assert!(saved.is_some());
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    append(&p, "written while down\n");
    assert_eq!(collect(&mut f), ["written while down"]);
}

/// Regression: a file deleted while the agent was down and recreated with the
/// same inode number (common on ext4/tmpfs) was resumed at the old offset.
#[test]
fn resume_on_recreated_file_with_same_inode_and_other_content_reads_from_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "old 1\n");
    collect(&mut f);
    let saved = f.position().expect("position");
    assert_eq!(saved.fingerprint_len, 6);
    drop(f);
    std::fs::remove_file(&p).expect("remove");
    append(&p, "new 1\nnew 2\n");
    // Pretend the inode was reused (it often is): only the fingerprint differs.
    let meta = std::fs::metadata(&p).expect("meta");
    let forged = FilePosition {
        dev: meta.dev(),
        inode: meta.ino(),
        ..saved
    };
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), Some(forged));
    assert_eq!(collect(&mut f), ["new 1", "new 2"]);
}

/// A file rotated while the agent was down: the rest of the old file (found as
/// a sibling), then every file rotated after it, then the new file; nothing
/// older than the saved file.
#[test]
fn resume_after_rotations_while_down_reads_old_tail_middle_files_and_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&dir.path().join("log.1"), "ancient\n");
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "a1\n");
    let mut f = follower(&p, StartAt::Beginning);
    assert_eq!(collect(&mut f), ["a1"]);
    let saved = f.position();
    drop(f);
    append(&p, "a2\n");
    std::fs::rename(dir.path().join("log.1"), dir.path().join("log.3")).expect("rename");
    std::fs::rename(&p, dir.path().join("log.2")).expect("rename");
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "b1\n");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rename");
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "c1\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(collect(&mut f), ["a2", "b1", "c1"]);
    append(&p, "c2\n");
    assert_eq!(collect(&mut f), ["c2"]);
}

#[test]
fn resume_on_replaced_file_whose_predecessor_is_gone_reads_it_from_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "a\n");
    let mut f = follower(&p, StartAt::Beginning);
    collect(&mut f);
    let saved = f.position().expect("position");
    drop(f);
    let tmp = dir.path().join("new");
    append(&tmp, "x\ny\n");
    std::fs::rename(&tmp, &p).expect("replace");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), Some(saved));
    assert_eq!(collect(&mut f), ["x", "y"]);
}

#[test]
fn position_fingerprint_covers_the_unfinished_line_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "ab\ncd");
    collect(&mut f);
    let pos = f.position().expect("position");
    assert_eq!(pos.offset, 3);
    assert_eq!(pos.fingerprint_len, 5);
    assert_eq!(pos.fingerprint, fnv1a(b"ab\ncd"));
}

mod model;

#[test]
fn resume_after_copytruncate_while_down_reads_the_rest_from_the_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "00000001 a\n");
    assert_eq!(collect(&mut f), ["00000001 a"]);
    let saved = f.position();
    drop(f);
    append(&p, "00000002 b\n");
    std::fs::copy(&p, dir.path().join("log.1")).expect("copy");
    truncate(&p);
    append(&p, "00000003 c\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(collect(&mut f), ["00000002 b", "00000003 c"]);
}

#[test]
fn resume_after_several_copytruncates_while_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let shift = |n: usize| {
        for i in (1..n).rev() {
            let from = dir.path().join(format!("log.{i}"));
            if from.exists() {
                std::fs::rename(&from, dir.path().join(format!("log.{}", i + 1))).expect("shift");
            }
        }
    };
    let copytruncate = || {
        shift(6);
        std::fs::copy(&p, dir.path().join("log.1")).expect("copy");
        truncate(&p);
    };
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "00000001 a\n00000002 b\n");
    collect(&mut f);
    let saved = f.position();
    drop(f);
    append(&p, "00000003 c\n00000004 d\n");
    copytruncate();
    copytruncate();
    append(&p, "00000005 e\n");
    copytruncate();
    append(&p, "00000006 f\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(
        collect(&mut f),
        ["00000003 c", "00000004 d", "00000005 e", "00000006 f"]
    );
}

/// Regression (model seeds 339, 570 and others): the agent stopped while the
/// file held only part of its first line, so the saved fingerprint (that part)
/// says little; then, while it was down, the line was finished, the file was
/// copytruncated, grew again from a line that starts alike, and was renamed
/// away. The file itself still matches the saved position by inode and
/// fingerprint, but its bytes are new: the rest is in the copy, which is newer
/// than the saved position and numbered older than the renamed file.
#[test]
fn resume_after_copytruncate_then_rename_while_down_with_a_partial_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "0");
    assert!(collect(&mut f).is_empty());
    let saved = f.position().expect("position");
    assert_eq!((saved.offset, saved.fingerprint_len), (0, 1));
    drop(f);
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "0000036 copied\n");
    std::fs::copy(&p, dir.path().join("log.1")).expect("copy");
    truncate(&p);
    append(&p, "00000037 after the truncation\n");
    std::fs::rename(dir.path().join("log.1"), dir.path().join("log.2")).expect("shift");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    append(&p, "00000038 new file\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), Some(saved));
    assert_eq!(
        collect(&mut f),
        [
            "00000036 copied",
            "00000037 after the truncation",
            "00000038 new file"
        ]
    );
}

/// The same with the truncated file still at the path.
#[test]
fn resume_after_copytruncate_while_down_with_a_partial_first_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "000");
    collect(&mut f);
    let saved = f.position();
    drop(f);
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "00018 copied\n");
    std::fs::copy(&p, dir.path().join("log.1")).expect("copy");
    truncate(&p);
    append(&p, "00000019 after\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(collect(&mut f), ["00000018 copied", "00000019 after"]);
}

/// What the copy rule must not take for a copytruncate: an older rotated file
/// that starts like the saved one (it was there before the stop), and a plain
/// copy of a file that was not truncated (a backup taken while the agent was
/// down).
#[test]
fn resume_ignores_older_look_alikes_and_backups_of_an_untruncated_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&dir.path().join("log.1"), "00000001 older file\n");
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "0");
    collect(&mut f);
    let saved = f.position();
    drop(f);
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "0000002 finished while down\n");
    std::fs::copy(&p, dir.path().join("log.bak")).expect("backup");
    append(&p, "00000003 after the backup\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(
        collect(&mut f),
        ["00000002 finished while down", "00000003 after the backup"]
    );
}

/// Regression (model seeds 352, 1957, 1984): a new, empty rotated file that
/// reused the inode of a file read before was taken for that file, so the lines
/// its writer then wrote were never read.
#[test]
fn empty_sibling_on_a_reused_inode_is_a_new_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "a\n");
    assert_eq!(collect(&mut f), ["a"]);
    // Pretend `log.1`, created empty later, reused the inode of a file known
    // with other bytes (inode numbers are reused at once on ext4 and tmpfs),
    // born before it.
    let sib = dir.path().join("log.1");
    append(&sib, "");
    let meta = std::fs::metadata(&sib).expect("meta");
    f.known.insert(
        (meta.dev(), meta.ino()),
        (b"old bytes\n".to_vec(), 0, Some(std::time::UNIX_EPOCH)),
    );
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&sib)
        .expect("open");
    std::fs::rename(&p, dir.path().join("log.2")).expect("rotate");
    append(&p, "");
    assert_eq!(collect(&mut f), Vec::<String>::new());
    writer.write_all(b"late\n").expect("write");
    assert_eq!(collect(&mut f), ["late"]);
}

/// Regression (model seed 480): an empty sibling known while empty, deleted and
/// its inode reused by a new empty file that a writer then filled. An empty file
/// is known only while its modification time is the one we knew.
#[test]
fn empty_file_is_known_only_while_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let sib = dir.path().join("log.1");
    append(&sib, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    let sibling = |mtime_shift: i128| {
        let reader = Reader::open(&sib, 100).expect("open");
        let mut s = Sibling {
            head: Vec::new(),
            len: 0,
            path: sib.clone(),
            reader,
        };
        s.reader.mtime += mtime_shift;
        s
    };
    assert!(f.is_known(&sibling(0)));
    assert!(!f.is_known(&sibling(1)), "a new file on the same inode");
}

/// Regression (model seed 1446): resumed into the saved file, rotated while the
/// agent was down, with the path still missing: the position a second restart
/// resumes from is where that file was read up to, not the first saved one.
#[test]
fn position_while_the_path_is_missing_follows_the_resumed_rotated_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let old = dir.path().join("log.1");
    append(&p, "a\n");
    let mut f = follower(&p, StartAt::Beginning);
    assert_eq!(collect(&mut f), ["a"]);
    let saved = f.position();
    drop(f);
    std::fs::rename(&p, &old).expect("rotate");
    append(&old, "b\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(collect(&mut f), ["b"]);
    append(&old, "c\n");
    assert_eq!(collect(&mut f), ["c"]);
    let saved = f.position();
    assert_eq!(saved.map(|s| s.offset), Some(6));
    drop(f);
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    append(&old, "d\n");
    assert_eq!(collect(&mut f), ["d"]);
    append(&p, "e\n");
    assert_eq!(collect(&mut f), ["e"]);
}

/// Lines written to a rotated file around a stop (its writer has not reopened
/// the log yet) are read after the restart, from where that file was left.
#[test]
fn late_writes_to_a_rotated_file_across_a_restart_are_read_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let old = dir.path().join("log.1");
    append(&p, "");
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&p)
        .expect("open");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    writer.write_all(b"a1\n").expect("write");
    std::fs::rename(&p, &old).expect("rotate");
    append(&p, "b1\n");
    writer.write_all(b"a2\n").expect("write");
    assert_eq!(collect(&mut f), ["a1", "a2", "b1"]);
    let saved = f.position();
    let rotated = f.rotated_positions();
    assert_eq!(rotated.len(), 1);
    drop(f);
    writer.write_all(b"a3 while down\n").expect("write");
    append(&p, "b2 while down\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved).with_rotated(rotated);
    assert_eq!(collect(&mut f), ["a3 while down", "b2 while down"]);
    writer.write_all(b"a4 after\n").expect("write");
    assert_eq!(collect(&mut f), ["a4 after"]);
}

/// Regression (model seed 5071): the file read when the agent stopped was an
/// older one (the path was missing), and newer files rotated away had already
/// been read whole; after the restart they were read whole again, as files
/// rotated after the saved one.
#[test]
fn rotated_files_read_before_a_stop_are_not_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    append(&p, "b1\n");
    std::fs::rename(dir.path().join("log.1"), dir.path().join("log.2")).expect("shift");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    assert_eq!(collect(&mut f), ["b1"]);
    let saved = f.position();
    let rotated = f.rotated_positions();
    drop(f);
    append(&p, "c1\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved).with_rotated(rotated);
    assert_eq!(collect(&mut f), ["c1"]);
}

/// An empty rotated file is not saved: by inode alone it cannot be told from a
/// file that reused its inode while the agent was down.
#[test]
fn empty_rotated_files_are_not_saved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    append(&p, "");
    collect(&mut f);
    assert_eq!(f.open_ids().count(), 2);
    assert!(f.rotated_positions().is_empty());
    let forged = FilePosition {
        fingerprint_len: 0,
        ..FilePosition::NONE
    };
    let f = FileFollower::new(p.clone(), FollowOptions::default(), None).with_rotated(vec![
        FilePosition::NONE,
        FilePosition { inode: 7, ..forged },
    ]);
    assert!(f.resume_rotated.is_empty());
}

/// Regression (model seed 5071): as above, but the newer files were closed as
/// idle before the stop. The position then names the newest file that was at
/// the path, not the older one being read when the path went missing.
#[test]
fn newer_files_read_and_closed_before_a_stop_are_not_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    let t0 = Instant::now();
    collect_at(&mut f, t0);
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    append(&p, "b1\n");
    std::fs::rename(dir.path().join("log.1"), dir.path().join("log.2")).expect("shift");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    assert_eq!(collect_at(&mut f, t0), ["b1"]);
    collect_at(&mut f, t0 + DEFAULT_ROTATED_IDLE * 2);
    let saved = f.position();
    assert!(f.rotated_positions().is_empty());
    drop(f);
    append(&p, "c1\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    assert_eq!(collect(&mut f), ["c1"]);
}

/// Regression (model seeds 3679, 3687): while following, after only part of a
/// first line was read, the file was copytruncated and grew again from a line
/// that starts alike. Every byte read still reads the same, so it looked like
/// an append: the copy's line was lost. The copy tells.
#[test]
fn copytruncate_after_a_partial_first_line_reads_the_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "0000");
    assert!(collect(&mut f).is_empty());
    append(&p, "0012 copied\n");
    std::fs::copy(&p, dir.path().join("log.1")).expect("copy");
    truncate(&p);
    append(&p, "00000013 after\n");
    assert_eq!(collect(&mut f), ["00000012 copied", "00000013 after"]);
    assert_eq!(f.stats().truncations, 1);
}

/// A backup copy of a file that was not truncated is not taken for one.
#[test]
fn backup_after_a_partial_first_line_is_not_a_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "0000");
    assert!(collect(&mut f).is_empty());
    append(&p, "0012 first\n");
    std::fs::copy(&p, dir.path().join("log.bak")).expect("backup");
    append(&p, "00000013 second\n");
    assert_eq!(collect(&mut f), ["00000012 first", "00000013 second"]);
    assert_eq!(f.stats().truncations, 0);
}

/// Regression (model seed 57830): resumed with the path missing, the saved file
/// and a newer one rotated after it were read; both were closed as idle before
/// the next stop. The position must name the newer one, or the next restart
/// reads it again as a file rotated after the saved one.
#[test]
fn resumed_with_the_path_missing_the_newest_file_read_stands_for_the_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "a1\n");
    let mut f = follower(&p, StartAt::Beginning);
    assert_eq!(collect(&mut f), ["a1"]);
    let saved = f.position();
    drop(f);
    std::fs::rename(&p, dir.path().join("log.2")).expect("rotate");
    std::thread::sleep(Duration::from_millis(20));
    append(&p, "b1\n");
    std::fs::rename(&p, dir.path().join("log.1")).expect("rotate");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved);
    let t0 = Instant::now();
    assert_eq!(collect_at(&mut f, t0), ["b1"]);
    collect_at(&mut f, t0 + DEFAULT_ROTATED_IDLE * 2);
    let saved = f.position();
    let rotated = f.rotated_positions();
    drop(f);
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), saved).with_rotated(rotated);
    assert!(collect(&mut f).is_empty());
    append(&p, "c1\n");
    assert_eq!(collect(&mut f), ["c1"]);
}

/// How a [`fast_copytruncates`] rotator makes its copy.
#[derive(Clone, Copy, Debug)]
enum CopyTo {
    /// `log.1` is removed first: the copy is a new file (logrotate, `rotate 1`).
    NewFile,
    /// `cp log log.1` over the previous copy: same inode, rewritten.
    OverThePrevious,
}

/// A writer appends `per_round` unique lines, then the rotator copies the file
/// and truncates it, `rounds` times, `gap` apart, while the follower polls as
/// fast as it can. Returns how often each line was read, by line number, and
/// the bytes the follower skipped in doubt.
fn fast_copytruncates(
    rounds: usize,
    per_round: usize,
    gap: Duration,
    copy: CopyTo,
) -> (Vec<u32>, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let copy_path = dir.path().join("log.1");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (p, done) = (p.clone(), done.clone());
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .expect("open");
            let mut n = 0;
            for _ in 0..rounds {
                let mut text = String::new();
                for _ in 0..per_round {
                    text.push_str(&format!(
                        "Jan  1 00:00:00 host sshd[1]: Failed password from 198.51.100.{} port {n}\n",
                        n % 250
                    ));
                    n += 1;
                }
                out.write_all(text.as_bytes()).expect("write");
                if matches!(copy, CopyTo::NewFile) {
                    let _ = std::fs::remove_file(&copy_path);
                }
                std::fs::copy(&p, &copy_path).expect("copy");
                truncate(&p);
                std::thread::sleep(gap);
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        })
    };
    let mut seen = vec![0u32; rounds * per_round];
    let mut count = |lines: Vec<String>| {
        for l in lines {
            let n: usize = l
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a line number");
            seen[n] += 1;
        }
    };
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        count(collect(&mut f));
    }
    writer.join().expect("writer");
    for _ in 0..3 {
        count(collect(&mut f));
    }
    (seen, f.stats().skipped_bytes)
}

/// Measures issue 16 item 2 (copytruncates 2 ms apart read lines twice, and
/// banned hosts after a single offence) against the real clock: how many lines
/// were read twice and lost over `LOG2DROP_RUNS` runs (default 10). Racy by
/// nature (the reader against the rotator), so not a pass/fail test: run with
/// `cargo test -p log2drop --lib -- --ignored fast_copytruncates_measure
/// --nocapture`; docs/reliability.md quotes it.
#[test]
#[ignore = "measurement against the real clock; see docs/reliability.md"]
fn fast_copytruncates_measure() {
    let runs: usize = std::env::var("LOG2DROP_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    for copy in [CopyTo::NewFile, CopyTo::OverThePrevious] {
        let (mut with, mut twice, mut lost, mut skipped) = (0, 0, 0, 0);
        for _ in 0..runs {
            let (seen, skipped_bytes) =
                fast_copytruncates(50, 4000, Duration::from_millis(2), copy);
            skipped += skipped_bytes;
            let t = seen.iter().filter(|&&n| n > 1).count();

            with += usize::from(t > 0);
            twice += t;
            lost += seen.iter().filter(|&&n| n == 0).count();
        }
        println!(
            "{copy:?}: {runs} runs of 50 copytruncates x 4000 lines: {with} runs read lines twice, {twice} lines read twice, {lost} lost, {skipped} bytes skipped in doubt"
        );
    }
}

/// Regression (issue 16 item 2): a file copied over a rotated file still being
/// followed was read again from its start (its lines twice).
#[test]
fn cp_over_a_followed_rotated_file_is_not_read_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let rotated = dir.path().join("log.1");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "Jan 1 00:00:01 a1\nJan 1 00:00:02 a2\n");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:01 a1", "Jan 1 00:00:02 a2"]);
    std::fs::rename(&p, &rotated).expect("rotate");
    append(&p, "Jan 1 00:00:03 b1\n");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:03 b1"]);
    // `cp log log.1`: the rotated file, still open, now holds the current one.
    std::fs::copy(&p, &rotated).expect("cp over the rotated file");
    assert_eq!(collect(&mut f), Vec::<String>::new());
    append(&p, "Jan 1 00:00:04 b2\n");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:04 b2"]);
    assert_eq!(collect(&mut f), Vec::<String>::new());
}

/// Regression (issue 16 item 2): copytruncate into the same `log.1` each time
/// (`cp log log.1`, then truncate), with the copy seen before the truncation
/// and lines written between our last read and the copy: each line once.
#[test]
fn repeated_copytruncates_into_the_same_copy_read_each_line_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, copy, mut f) = followed_log(dir.path());
    let mut read = Vec::new();
    let mut written = Vec::new();
    for round in 0..6 {
        let line = |i: usize| format!("Jan 1 00:00:0{round} host: round {round} line {i}");
        for i in 0..3 {
            append(&p, &format!("{}\n", line(i)));
            written.push(line(i));
        }
        read.extend(collect(&mut f));
        // Written after our last read: only the copy will hold it.
        append(&p, &format!("{}\n", line(3)));
        written.push(line(3));
        std::fs::copy(&p, &copy).expect("copy");
        if round % 2 == 0 {
            // The copy seen before the truncation.
            read.extend(collect(&mut f));
        }
        truncate(&p);
        read.extend(collect(&mut f));
    }
    read.extend(collect(&mut f));
    assert_eq!(read, written);
}

/// Regression (issue 16 item 7): a rotate+gzip while the agent was down lost
/// the lines of the rotated file not read yet. They are read from the
/// compressed generation, from the saved position, before the new file.
#[test]
fn resume_after_rotate_and_gzip_while_down_reads_the_rest_from_the_compressed_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    append(&p, "Jan 1 00:00:01 read\nJan 1 00:00:02 unfin");
    assert_eq!(collect(&mut f), ["Jan 1 00:00:01 read"]);
    let saved = f.position().expect("position");
    drop(f);
    // While down: more lines, then logrotate with compress (no delaycompress).
    append(&p, "ished\nJan 1 00:00:03 unread\n");
    let text = std::fs::read(&p).expect("read");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).expect("gzip");
    std::fs::write(dir.path().join("log.1.gz"), gz.finish().expect("gzip")).expect("write");
    std::fs::remove_file(&p).expect("remove");
    append(&p, "Jan 1 00:00:04 new\n");
    let mut f = FileFollower::new(p.clone(), FollowOptions::default(), Some(saved));
    assert_eq!(
        collect(&mut f),
        [
            "Jan 1 00:00:02 unfinished",
            "Jan 1 00:00:03 unread",
            "Jan 1 00:00:04 new"
        ]
    );
    assert!(collect(&mut f).is_empty());
}

/// Lines long enough for a head of [`SAME_CONTENT_MIN`] bytes, numbered.
fn numbered(from: usize, to: usize) -> (String, Vec<String>) {
    let lines: Vec<String> = (from..to)
        .map(|i| {
            format!("Jan  1 00:00:00 host sshd[1]: Failed password from 198.51.100.7 port {i}")
        })
        .collect();
    let text = lines.iter().map(|l| format!("{l}\n")).collect();
    (text, lines)
}

/// An empty `log` followed from its end, and the path of its copy `log.1`.
fn followed_log(dir: &Path) -> (PathBuf, PathBuf, FileFollower) {
    let p = dir.join("log");
    append(&p, "");
    let mut f = follower(&p, StartAt::End);
    collect(&mut f);
    (p, dir.join("log.1"), f)
}

/// The end of a copytruncate: `p` truncated, lines `range` written into it
/// (and to `written`), and read until quiet (into `read`).
fn truncate_then_write(
    p: &Path,
    f: &mut FileFollower,
    range: std::ops::Range<usize>,
    read: &mut Vec<String>,
    written: &mut Vec<String>,
) {
    truncate(p);
    let (more, lines) = numbered(range.start, range.end);
    append(p, &more);
    written.extend(lines);
    read.extend(collect(f));
    read.extend(collect(f));
}

/// Regression (issue 16 item 2, fast copytruncates with `cp` over `log.1`): a
/// copy of the followed file caught while `cp` was still writing it, seen
/// before the truncation, was read as a file rotated away, and the followed
/// file itself then handed out the same lines again.
#[test]
fn a_copy_of_the_followed_file_caught_half_written_is_not_read_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, copy, mut f) = followed_log(dir.path());
    let (text, mut written) = numbered(0, 8);
    append(&p, &text);
    // `cp log log.1` has written part of the file, cutting a line.
    std::fs::write(&copy, &text.as_bytes()[..text.len() / 2 + 7]).expect("half a copy");
    let mut read = collect(&mut f);
    // The copy completes, the file is truncated and written again.
    std::fs::write(&copy, &text).expect("the whole copy");
    truncate_then_write(&p, &mut f, 8..12, &mut read, &mut written);
    assert_eq!(read, written);
}

/// Regression (issue 16 item 2): the same race, but the copy was first seen
/// empty (`cp` had only created it), so it was opened as a rotated file and
/// read as `cp` filled it, while the followed file handed out the same lines.
#[test]
fn a_copy_of_the_followed_file_first_seen_empty_is_not_read_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, copy, mut f) = followed_log(dir.path());
    let (text, mut written) = numbered(0, 8);
    append(&p, &text);
    append(&copy, "");
    let mut read = collect(&mut f);
    // `cp` writes the first half, then the rest.
    append(&copy, &text[..text.len() / 2 + 7]);
    read.extend(collect(&mut f));
    append(&copy, &text[text.len() / 2 + 7..]);
    read.extend(collect(&mut f));
    // Lines written after our last read, then the truncation.
    let (late, lines) = numbered(8, 10);
    append(&p, &late);
    append(&copy, &late);
    written.extend(lines);
    truncate_then_write(&p, &mut f, 10..12, &mut read, &mut written);
    assert_eq!(read, written);
}

/// Regression (issue 16 item 2): a copy first seen empty, then filled by `cp`
/// and the followed file truncated, both before the next look. The copy no
/// longer looks like the followed file, but its first lines were handed out
/// from the followed file already: only the lines past them are read from it.
#[test]
fn a_copy_filled_after_it_was_seen_empty_is_read_only_past_what_was_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, copy, mut f) = followed_log(dir.path());
    let (text, mut written) = numbered(0, 6);
    append(&p, &text);
    append(&copy, "");
    let mut read = collect(&mut f);
    // Written after our last read, then `cp` and the truncation.
    let (late, lines) = numbered(6, 8);
    append(&p, &late);
    written.extend(lines);
    std::fs::copy(&p, &copy).expect("cp");
    truncate_then_write(&p, &mut f, 8..10, &mut read, &mut written);
    assert_eq!(read, written);
}

/// Regression (issue 16 item 2, found by `fast_copytruncates_measure`): a
/// truncation and new writes between the look for a rewrite and the read (or
/// between two reads of a long backlog) made the read go on at the old offset
/// in the new content: lines of a later generation were handed out, and read
/// again from its copy. The first bytes are checked after each read.
#[test]
fn a_read_racing_a_truncation_hands_out_nothing_of_the_new_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log");
    let (text, lines) = numbered(0, 4);
    append(&p, &text);
    let mut reader = Reader::open(&p, DEFAULT_MAX_LINE).expect("open");
    let mut buf = vec![0; READ_CHUNK];
    let mut stats = FollowStats::default();
    let mut read = Vec::new();
    let mut sink = |l: Line<'_>| read.push(String::from_utf8_lossy(l.bytes).into_owned());
    reader
        .drain(&mut buf, &mut stats, &mut sink)
        .expect("drain");
    assert_eq!(read, lines);
    // Truncated and written again past our offset, unseen by the caller.
    truncate(&p);
    let (again, _) = numbered(100, 110);
    append(&p, &again);
    let mut later = Vec::new();
    let mut sink = |l: Line<'_>| later.push(String::from_utf8_lossy(l.bytes).into_owned());
    reader
        .drain(&mut buf, &mut stats, &mut sink)
        .expect("drain");
    assert_eq!(later, Vec::<String>::new());
    let meta = std::fs::metadata(&p).expect("meta");
    assert!(
        reader.rewritten(&meta).expect("look"),
        "left for the caller to see"
    );
}

/// Regression (issue 16 item 2, found by `fast_copytruncates_measure`): a
/// rotated file looked at while still empty (or short) and then filled by
/// `cp` before the read was read to its new end, past what had been checked.
/// A rotated file is read only up to the length looked at, and a read from its
/// start must find the first bytes looked at.
#[test]
fn a_rotated_file_is_read_only_as_far_as_it_was_looked_at() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("log.1");
    let (text, lines) = numbered(0, 4);
    append(&p, &text);
    let mut reader = Reader::open(&p, DEFAULT_MAX_LINE).expect("open");
    let mut buf = vec![0; READ_CHUNK];
    let mut stats = FollowStats::default();
    let mut read = Vec::new();
    let mut sink = |l: Line<'_>| read.push(String::from_utf8_lossy(l.bytes).into_owned());
    // Looked at with other first bytes (rewritten since): nothing is read.
    let (other, _) = numbered(50, 51);
    reader
        .drain_checked(&mut buf, &mut stats, &mut sink, 1 << 20, other.as_bytes())
        .expect("drain");
    assert!(read.is_empty());
    // Looked at with two lines in it: only those are read.
    let two = (lines[0].len() + lines[1].len() + 2) as u64;
    let mut sink = |l: Line<'_>| read.push(String::from_utf8_lossy(l.bytes).into_owned());
    reader
        .drain_checked(&mut buf, &mut stats, &mut sink, two, text.as_bytes())
        .expect("drain");
    assert_eq!(read, lines[..2]);
}
