//! `log2drop report --html` in a real browser: the page parses as HTML5 without
//! a single parse error (html5lib, strict), refers to nothing outside itself,
//! and headless Chromium builds its SVG charts and paints them (the screenshot
//! holds the chart colours, not a blank page).
//!
//! Needs `chromium` and `python3-html5lib` (Debian packages `.ci/run` installs);
//! without them the test says so and returns, except under CI=true, where a skip
//! is a failure.

mod report_common;

use std::path::Path;
use std::process::Command;

use report_common::{arg, report_ok};

/// The first jail's colour in the page's charts, and the bar colour of the
/// subnet chart.
const FIRST_COLOUR: [u8; 3] = [0x4e, 0x79, 0xa7];

fn tool_missing(what: &str) -> bool {
    let missing = match what {
        "chromium" => Command::new("chromium").arg("--version").output().is_err(),
        _ => !Command::new("/usr/bin/python3")
            .args(["-c", "import html5lib"])
            .status()
            .is_ok_and(|s| s.success()),
    };
    if missing {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} is missing under CI=true (.ci/run installs it)"
        );
        eprintln!("skipping: {what} is not installed (apt-get install chromium python3-html5lib)");
    }
    missing
}

fn chromium(args: &[&str], page: &Path) -> std::process::Output {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1000,1400",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_html_report_parses_and_renders_its_charts_in_chromium() {
    if tool_missing("chromium") || tool_missing("html5lib") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("fail2ban.log");
    let mut text = String::new();
    let jails = ["sshd", "nginx-http-auth", "postfix"];
    for day in 1..=10u32 {
        for k in 0..(day * 3) {
            // A jail name with markup in it (escaping is tested on it).
            let jail = if k % 4 == 3 {
                "x<b>y"
            } else {
                jails[(k % 3) as usize]
            };
            let addr = match k % 4 {
                0 => format!("192.0.2.{}", 10 + k),
                1 => format!("198.51.100.{}", k),
                2 => format!("2001:db8::{k:x}"),
                _ => "203.0.113.7".to_owned(),
            };
            text.push_str(&format!(
                "2026-11-{day:02} 10:{:02}:00,000 fail2ban.actions        [9]: NOTICE  [{jail}] Ban {addr}\n",
                k % 60
            ));
        }
    }
    std::fs::write(&log, text).expect("write log");
    let page = dir.path().join("report.html");
    report_ok(&[
        "--by",
        "ip,jail,day",
        "--html",
        arg(&page),
        "--fail2ban-log",
        arg(&log),
    ]);
    let html = std::fs::read_to_string(&page).expect("read page");

    // Self-contained: no scripts, no links or sources to fetch; the one URL is
    // the SVG namespace name.
    for needle in ["<script", " src=", " href=", "url(", "@import"] {
        assert!(!html.contains(needle), "page holds {needle:?}");
    }
    assert!(
        !html
            .replace("http://www.w3.org/2000/svg", "")
            .contains("://"),
        "page names a URL"
    );

    // HTML5 parse errors fail the strict parser.
    let check = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys, html5lib; html5lib.HTMLParser(strict=True).parse(open(sys.argv[1], 'rb'))",
        ])
        .arg(&page)
        .output()
        .expect("run html5lib");
    assert!(
        check.status.success(),
        "the page does not parse cleanly: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The browser's DOM holds both charts with their bars.
    let dom = String::from_utf8(chromium(&["--dump-dom"], &page).stdout).expect("utf-8 DOM");
    for id in ["chart-days", "chart-subnets"] {
        assert!(
            dom.contains(&format!("<svg class=\"chart\" id=\"{id}\"")),
            "no {id} in the DOM"
        );
    }
    let bars = dom.matches("<rect class=\"bar\"").count();
    // 10 days x 3 jails stacked, plus the subnet bars.
    assert!(bars >= 30, "only {bars} bars in the DOM");
    // Addresses are text, never markup.
    assert!(!dom.contains("<b>"), "log text became markup");
    assert!(dom.contains("x&lt;b&gt;y"), "the jail name is missing");

    // The screenshot is painted: many pixels of the first jail's colour, and
    // not one flat colour.
    let shot = dir.path().join("shot.png");
    chromium(&[&format!("--screenshot={}", shot.display())], &page);
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("open screenshot"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let (mut coloured, mut white, mut total) = (0usize, 0usize, 0usize);
    for p in pixels {
        total += 1;
        if p[..3]
            .iter()
            .zip(FIRST_COLOUR)
            .all(|(a, b)| a.abs_diff(b) <= 6)
        {
            coloured += 1;
        }
        if p[..3] == [255, 255, 255] {
            white += 1;
        }
    }
    assert!(coloured > 2000, "chart colour on only {coloured} pixels");
    assert!(
        white < total * 95 / 100,
        "the page is blank ({white}/{total} white)"
    );
}
