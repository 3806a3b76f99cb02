use super::*;
use std::collections::VecDeque;
use std::io::Write;
use std::net::Ipv4Addr;

/// Matches lines `bad ADDR`.
struct Fake;
impl LineMatcher for Fake {
    fn match_line(&mut self, line: &[u8], _now: SystemTime) -> Option<(Arc<str>, IpAddr)> {
        let rest = line.strip_prefix(b"bad ")?;
        let addr = std::str::from_utf8(rest).ok()?.parse().ok()?;
        Some((Arc::from("fake"), addr))
    }
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("write");
}

/// Source `auth` on `path`, polled every 20 ms, no saved position.
fn auth_spec(path: &Path) -> FileSourceSpec {
    FileSourceSpec {
        name: Arc::from("auth"),
        path: path.to_owned(),
        options: FollowOptions::default(),
        poll_interval: Duration::from_millis(20),
        resume: HashMap::new(),
    }
}

#[tokio::test]
async fn thread_sends_offences_then_position_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth.log");
    append(&path, "bad 192.0.2.1\n");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let handle = spawn_file_source(auth_spec(&path), Fake, tx).expect("spawn");
    // Give the thread its first poll (at end of file), then append.
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&path, "good 192.0.2.2\nbad 198.51.100.7\n");
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("offence in time")
        .expect("channel open");
    match ev {
        SourceEvent::Offences(batch) => {
            let [o] = &batch[..] else {
                panic!("expected one offence, got {batch:?}");
            };
            assert_eq!(o.addr, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
            assert_eq!(&*o.filter, "fake");
            assert_eq!(&*o.source, "auth");
        }
        other => panic!("expected an offence, got {other:?}"),
    }
    let stopper = tokio::task::spawn_blocking(move || handle.stop());
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("position in time")
        .expect("channel open");
    match ev {
        SourceEvent::Position(SourcePosition::File {
            at: position,
            path: p,
        }) => {
            assert_eq!(p, path);
            let len = std::fs::metadata(&path).expect("meta").len();
            assert_eq!(position.offset, len);
        }
        other => panic!("expected a position, got {other:?}"),
    }
    stopper.await.expect("stop");
}

/// The next offence, from `pending` (the rest of the last batch) or the channel.
async fn next_offence(
    rx: &mut tokio::sync::mpsc::Receiver<SourceEvent>,
    pending: &mut VecDeque<Offence>,
) -> Offence {
    loop {
        if let Some(o) = pending.pop_front() {
            return o;
        }
        let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("event in time")
            .expect("channel open");
        if let SourceEvent::Offences(batch) = ev {
            pending.extend(batch);
        }
    }
}

/// A stand-in for journalctl: prints its arguments to a file and a few JSON
/// entries, continuing after the cursor it was given.
fn fake_journalctl(dir: &Path) -> PathBuf {
    let script = dir.join("journalctl");
    std::fs::write(
        &script,
        r#"#!/bin/sh
echo "$@" >> "$(dirname "$0")/args"
case "$*" in
  *--after-cursor=c2*) start=3 ;;
  *) start=1 ;;
esac
i=$start
while [ $i -le 3 ]; do
  printf '{"__CURSOR":"c%s","MESSAGE":"bad 192.0.2.%s","SYSLOG_IDENTIFIER":"x"}\n' $i $i
  i=$((i+1))
done
echo 'not json'
sleep 30
"#,
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

/// Matches `x: bad ADDR` (the journal's line shape).
struct JournalFake;
impl LineMatcher for JournalFake {
    fn match_line(&mut self, line: &[u8], _now: SystemTime) -> Option<(Arc<str>, IpAddr)> {
        let rest = line.strip_prefix(b"x: bad ")?;
        let addr = std::str::from_utf8(rest).ok()?.parse().ok()?;
        Some((Arc::from("fake"), addr))
    }
}

#[tokio::test]
async fn journal_source_reads_entries_sends_cursor_and_resumes_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = fake_journalctl(dir.path());
    let options = journal::JournalOptions {
        program,
        matches: vec!["_SYSTEMD_UNIT=ssh.service".to_owned()],
        start: file::StartAt::End,
        max_line: 1024,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut pending = VecDeque::new();
    let handle = spawn_journal_source(
        JournalSourceSpec {
            name: Arc::from("journal"),
            options: options.clone(),
            cursor: None,
        },
        JournalFake,
        tx,
    )
    .expect("spawn");
    for i in 1..=3 {
        let o = next_offence(&mut rx, &mut pending).await;
        assert_eq!(o.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)));
    }
    let counters = handle.counters();
    let stopper = tokio::task::spawn_blocking(move || handle.stop());
    let mut cursor = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("in time")
    {
        if let SourceEvent::Position(SourcePosition::Journal { cursor: c, .. }) = ev {
            cursor = Some(c);
        }
    }
    stopper.await.expect("stop");
    assert_eq!(cursor.as_deref(), Some("c3"));
    assert_eq!(counters.offences.load(Ordering::Relaxed), 3);
    let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
    assert!(args.contains("--output=json --follow"), "{args}");
    assert!(args.contains("--lines=0"), "{args}");
    assert!(
        args.trim_end().ends_with("_SYSTEMD_UNIT=ssh.service"),
        "{args}"
    );

    // A restart continues after the saved cursor.
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut pending = VecDeque::new();
    let handle = spawn_journal_source(
        JournalSourceSpec {
            name: Arc::from("journal"),
            options,
            cursor: Some("c2".to_owned()),
        },
        JournalFake,
        tx,
    )
    .expect("spawn");
    let o = next_offence(&mut rx, &mut pending).await;
    assert_eq!(o.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)));
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .expect("stop");
    let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
    assert!(args.contains("--after-cursor=c2"), "{args}");
}

#[tokio::test]
async fn command_source_is_restarted_after_it_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = dir.path().join("runs");
    // Each run prints one line naming its run number, then exits.
    let script = dir.path().join("emit");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho x >> {c}\nn=$(wc -l < {c})\necho \"bad 192.0.2.$n\"\n",
            c = counter.display()
        ),
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut pending = VecDeque::new();
    let handle = spawn_command_source(
        CommandSourceSpec {
            name: Arc::from("cmd"),
            argv: vec![script.to_string_lossy().into_owned()],
            max_line: 1024,
        },
        Fake,
        tx,
    )
    .expect("spawn");
    let first = next_offence(&mut rx, &mut pending).await;
    let second = next_offence(&mut rx, &mut pending).await;
    assert_eq!(first.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(second.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .expect("stop");
}

#[tokio::test]
async fn long_lines_are_counted_and_never_matched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth.log");
    append(&path, "");
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut pending = VecDeque::new();
    let handle = spawn_file_source(
        FileSourceSpec {
            name: Arc::from("auth"),
            path: path.clone(),
            options: FollowOptions {
                max_line: 16,
                ..FollowOptions::default()
            },
            poll_interval: Duration::from_millis(20),
            resume: HashMap::new(),
        },
        Fake,
        tx,
    )
    .expect("spawn");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Cut at 16 bytes this would read `bad 192.0.2.123`, a valid address.
    append(&path, "bad 192.0.2.1234567\nbad 198.51.100.7\n");
    let o = next_offence(&mut rx, &mut pending).await;
    assert_eq!(o.addr, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)));
    let counters = handle.counters();
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .expect("stop");
    assert_eq!(counters.long_lines.load(Ordering::Relaxed), 1);
    assert_eq!(counters.lines.load(Ordering::Relaxed), 2);
}

/// The built-in sshd filter through the filter module's matcher, recording the
/// time each hit says its line was logged.
struct Sshd {
    matcher: crate::filter::SourceMatcher,
    scratch: crate::filter::Scratch,
    times: Arc<Mutex<Vec<Option<SystemTime>>>>,
}

impl LineMatcher for Sshd {
    fn match_line(&mut self, line: &[u8], now: SystemTime) -> Option<(Arc<str>, IpAddr)> {
        let hit = self.matcher.match_line(line, now, &mut self.scratch)?;
        if let Ok(mut t) = self.times.lock() {
            t.push(hit.time);
        }
        Some((Arc::from(self.matcher.filter_name(hit.filter)), hit.addr()?))
    }
}

/// Journal entries as journalctl prints them, with their own times, reach the
/// built-in sshd filter end to end: the syslog prefix is parsed, the message
/// matched, and the hit carries the entry's time (not the time it was read).
#[tokio::test]
async fn journal_lines_carry_their_entry_time_through_the_sshd_filter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("journalctl");
    std::fs::write(
        &script,
        r#"#!/bin/sh
echo '{"__CURSOR":"c1","__REALTIME_TIMESTAMP":"1747648800123456","_SYSTEMD_UNIT":"ssh.service","SYSLOG_IDENTIFIER":"sshd","_PID":"812","MESSAGE":"Failed password for root from 192.0.2.7 port 51234 ssh2"}'
echo '{"__CURSOR":"c2","__REALTIME_TIMESTAMP":"1747652400000000","SYSLOG_IDENTIFIER":"sshd","_PID":"813","MESSAGE":"Failed password for invalid user admin from 198.51.100.9 port 40000 ssh2"}'
echo '{"__CURSOR":"c3","__REALTIME_TIMESTAMP":"1747652401000000","SYSLOG_IDENTIFIER":"cron","_PID":"9","MESSAGE":"Failed password for root from 203.0.113.1 port 1 ssh2"}'
sleep 30
"#,
    )
    .expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sshd = crate::filter::builtin::get("sshd").expect("built-in sshd");
    let matcher = crate::filter::SourceMatcher::build(&[("sshd", &sshd)]).expect("builds");
    let times = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut pending = VecDeque::new();
    let handle = spawn_journal_source(
        JournalSourceSpec {
            name: Arc::from("journal"),
            options: journal::JournalOptions {
                program: script,
                matches: Vec::new(),
                start: file::StartAt::End,
                max_line: 1024,
            },
            cursor: None,
        },
        Sshd {
            scratch: matcher.new_scratch(),
            matcher,
            times: times.clone(),
        },
        tx,
    )
    .expect("spawn");
    let first = next_offence(&mut rx, &mut pending).await;
    let second = next_offence(&mut rx, &mut pending).await;
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .expect("stop");
    assert_eq!(first.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    assert_eq!(&*first.filter, "sshd");
    assert_eq!(second.addr, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)));
    // cron's line is not sshd's, whatever it says.
    while let Ok(ev) = rx.try_recv() {
        assert!(!matches!(ev, SourceEvent::Offences(_)), "{ev:?}");
    }
    let at = |us: u64| Some(std::time::UNIX_EPOCH + Duration::from_micros(us));
    let times = times.lock().expect("times").clone();
    assert_eq!(
        times,
        [at(1_747_648_800_123_456), at(1_747_652_400_000_000)]
    );
}

#[test]
fn a_file_source_takes_its_paths_and_their_rotated_files_from_what_was_saved() {
    let p = |s: &str| PathBuf::from(s);
    let at = |offset| FilePosition {
        offset,
        ..FilePosition::NONE
    };
    let file = |path: PathBuf, offset| SourcePosition::File {
        path,
        at: at(offset),
    };
    let saved: Positions = [
        file(p("/var/log/nginx/a.access.log"), 1),
        file(
            files::rotated_key(Path::new("/var/log/nginx/a.access.log"), 0),
            2,
        ),
        file(p("/var/log/nginx/error.log"), 3),
        file(
            files::rotated_key(Path::new("/var/log/nginx/error.log"), 0),
            4,
        ),
        file(p("/var/log/auth.log"), 5),
    ]
    .into_iter()
    .collect();
    let pattern = Pattern::new(Path::new("/var/log/nginx/*access.log")).expect("glob");
    let mut got: Vec<u64> = saved
        .files_for(&pattern)
        .into_values()
        .map(|p| p.offset)
        .collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
}

/// Through the source thread: the position of a rotated file still being read
/// is sent under its own key at the stop, and a source started from what was
/// sent reads what its writer wrote to it meanwhile.
#[tokio::test]
async fn rotated_file_positions_go_through_the_channel_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth.log");
    append(&path, "");
    let mut writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    let spec = |resume| FileSourceSpec {
        name: Arc::from("auth"),
        path: path.clone(),
        options: FollowOptions::default(),
        poll_interval: Duration::from_millis(20),
        resume,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut pending = VecDeque::new();
    let handle = spawn_file_source(spec(HashMap::new()), Fake, tx).expect("spawn");
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::rename(&path, dir.path().join("auth.log.1")).expect("rotate");
    append(&path, "");
    writer.write_all(b"bad 192.0.2.1\n").expect("write");
    assert_eq!(
        next_offence(&mut rx, &mut pending).await.addr,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
    );
    let stopper = tokio::task::spawn_blocking(move || handle.stop());
    let mut saved = HashMap::new();
    while let Some(ev) = rx.recv().await {
        if let SourceEvent::Position(SourcePosition::File { path, at: position }) = ev {
            saved.insert(path, position);
        }
    }
    stopper.await.expect("stop");
    assert!(
        saved.contains_key(&files::rotated_key(&path, 0)),
        "{saved:?}"
    );

    writer.write_all(b"bad 192.0.2.2\n").expect("write");
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let mut pending = VecDeque::new();
    let handle = spawn_file_source(spec(saved), Fake, tx).expect("spawn");
    assert_eq!(
        next_offence(&mut rx, &mut pending).await.addr,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))
    );
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .expect("stop");
}

/// Regression (crash soak, issue 16): a file source reported its position only
/// every second, so a kill -9 within a second of a ban read the ban's lines again at
/// the restart, and a ban that had ended by then was applied a second time. The
/// position now follows the offences of each read at once: before any offence of
/// a later read.
#[tokio::test]
async fn the_position_follows_the_offences_of_each_read_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("auth.log");
    append(&path, "");
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let handle = spawn_file_source(auth_spec(&path), Fake, tx).expect("spawn");
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&path, "bad 192.0.2.1\n");
    let first_len = std::fs::metadata(&path).expect("meta").len();
    assert!(matches!(
        next_event(&mut rx).await,
        SourceEvent::Offences(_)
    ));
    // The next read's offence comes only after the position of the first read.
    append(&path, "bad 192.0.2.2\n");
    match next_event(&mut rx).await {
        SourceEvent::Position(SourcePosition::File { at, .. }) => {
            assert_eq!(at.offset, first_len, "the position covers the first read");
        }
        other => panic!("expected the first read's position before anything else, got {other:?}"),
    }
    tokio::task::spawn_blocking(move || handle.stop())
        .await
        .expect("stop");
}

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<SourceEvent>) -> SourceEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("event in time")
        .expect("channel open")
}
