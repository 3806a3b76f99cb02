//! `log2drop test`: runs one filter (built-in, from a config, or regexes given on
//! the command line) over a log file, a compressed rotated log or stdin, and says
//! what it matched, the way `fail2ban-regex` does. It runs the exact matcher the
//! agent runs, so what it shows is what the agent would ban.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use hashbrown::HashMap;

use log2drop::config::{FilterConfig, LinePrefix};
use log2drop::dns::{DnsConfig, Hickory, LookupError, Lookups, UseDns};
use log2drop::filter::{self, Captures, Host, Outcome, SourceMatcher, builtin, capture};
use log2drop::source::compressed;
use log2drop::source::line::{DEFAULT_MAX_LINE, Line, for_each_line};

/// How many addresses the summary lists.
const TOP: usize = 10;

/// `log2drop test` arguments.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// FILTER and FILE. FILTER is a built-in filter or a [filters.NAME] of
    /// --config, optionally in a mode (`sshd[mode=aggressive]`, or --mode);
    /// leave it out when giving --regex. FILE is a log file (plain, gzip,
    /// zstd, xz or bzip2, told by its content) or - for stdin (the default).
    #[arg(value_name = "FILTER|FILE", num_args = 0..=2)]
    args: Vec<String>,
    /// Test this regex (with <HOST>) instead of a named filter; repeat for more.
    #[arg(long, value_name = "RE")]
    regex: Vec<String>,
    /// Lines matching this regex do not count; repeat for more. Added to the
    /// named filter's own ignore list.
    #[arg(long, value_name = "RE")]
    ignore: Vec<String>,
    /// With --regex: the lines carry a syslog prefix, and the regexes match the
    /// message after it.
    #[arg(long, value_name = "KIND", value_parser = ["none", "syslog"], default_value = "none")]
    prefix: String,
    /// With --regex --prefix syslog: only lines of this program; repeat for more.
    #[arg(long, value_name = "NAME")]
    program: Vec<String>,
    /// With --regex: how to read each line's time (iso8601, syslog, clf, epoch or
    /// a strftime pattern).
    #[arg(long, value_name = "PATTERN")]
    datepattern: Option<String>,
    /// Time zone of timestamps without an offset (local, UTC, +02:00, an IANA
    /// name). Default: the filter's own, else local.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// Run FILTER in this mode (e.g. `--mode aggressive` for sshd); the same as
    /// writing FILTER[mode=MODE].
    #[arg(long, value_name = "MODE")]
    mode: Option<String>,
    /// Read FILTER as a fail2ban filter of this directory: NAME or
    /// NAME[option=value,...] stands for DIR/filter.d/NAME.conf (with its .local).
    /// A FILTER that is a path to a .conf or .local file is read as a fail2ban
    /// filter without this.
    #[arg(long, value_name = "DIR")]
    fail2ban_dir: Option<PathBuf>,
    /// Config file whose [filters.NAME] tables FILTER may name.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print one JSON object per offence and nothing else: {"line": N, "host":
    /// "TEXT", "addresses": ["ADDR", ...], "filter": "NAME", "time": "RFC 3339" or
    /// null, "captures": {"user": "..."}}. "host" is the text the filter matched:
    /// an address, or a host name where the log has one; "addresses" is what the
    /// agent would count: the address, or the name's addresses (empty when it did
    /// not resolve or with --no-dns: then nothing is banned). "captures" only when
    /// the regex has named groups that took part (values cut at 64 bytes). A
    /// session line that does not count on its own prints nothing; a session that
    /// counts when it ends is printed at the line that ended it.
    #[arg(long, conflicts_with_all = ["print_missed", "print_ignored"])]
    json: bool,
    /// How a host name where <HOST> stands counts: no (the line is ignored),
    /// warn or yes (resolved; the agent counts it for the name's addresses).
    /// Default: [dns] use_dns of --config, else warn.
    #[arg(long, value_name = "MODE", value_parser = ["no", "warn", "yes"])]
    use_dns: Option<String>,
    /// Look nothing up: host names are shown with no addresses, and allow_rdns
    /// filters (apache-fakegooglebot) count every line they match.
    #[arg(long, conflicts_with = "dns_server")]
    no_dns: bool,
    /// Name server to ask (ADDRESS or ADDRESS:PORT); repeat for more. Default:
    /// [dns] servers of --config, else the system's (/etc/resolv.conf).
    #[arg(long, value_name = "ADDR")]
    dns_server: Vec<String>,
    /// Print the lines no regex matched.
    #[arg(long)]
    print_missed: bool,
    /// Print the lines a regex matched but an ignore regex discarded.
    #[arg(long)]
    print_ignored: bool,
}

/// One matched line, as `--json` prints it.
#[derive(serde::Serialize)]
struct JsonHit<'a> {
    line: u64,
    host: &'a str,
    addresses: &'a [IpAddr],
    filter: &'a str,
    time: Option<String>,
    /// The named captures (`user`...), bounded; JSON escapes them.
    #[serde(skip_serializing_if = "Captures::is_empty")]
    captures: &'a Captures,
}

/// Most distinct capture values counted for the summary; the rest are counted
/// together (an attacker chooses them).
const MAX_CAPTURE_VALUES: usize = 100_000;

/// What was seen, for the summary. Counted per matched line, so nothing here
/// hashes slowly or allocates: hits per regex by position, addresses with a fast
/// hasher, a capture value already counted looked up by reference.
#[derive(Default)]
struct Tally {
    read: u64,
    matched: u64,
    ignored: u64,
    missed: u64,
    cut: u64,
    /// Lines of the filter's sessions that did not count on their own.
    held: u64,
    /// Offences: lines that counted, and sessions that ended and counted.
    offences: u64,
    /// Lines matched by the filter's regex `i` of each role (in
    /// `Role::ALL` order; the matcher runs one filter).
    per_regex: [Vec<u64>; 6],
    per_addr: HashMap<IpAddr, u64, foldhash::fast::RandomState>,
    /// Offences by host names, those ignored (use_dns = no), those that gave no
    /// address, and allow_rdns lines from genuine clients.
    names: u64,
    names_ignored: u64,
    unresolved: u64,
    genuine: u64,
    /// Offences per capture value.
    per_capture: CaptureTally,
    /// With `--json`, the captures of the offence being printed (reused).
    captures: Captures,
}

impl Tally {
    fn count_regex(&mut self, hit: &filter::Hit) {
        let list = &mut self.per_regex[hit.role.index()];
        if list.len() <= hit.regex {
            list.resize(hit.regex + 1, 0);
        }
        list[hit.regex] += 1;
    }

    /// Counts one offence, `counted`, with the captures of the line that
    /// released it (`own`: that line and its own hit; `None` for a session
    /// that ended without a line), printing it with `--json`. A host name is
    /// resolved as `use_dns` says; an allow_rdns filter's address is checked
    /// first. The captures are read only for an offence that counts, straight
    /// from the line (no [`Captures`] is filled but the one `--json` prints).
    #[allow(clippy::too_many_arguments)]
    fn offence(
        &mut self,
        out: &mut impl Write,
        json: bool,
        n: u64,
        counted: &filter::Hit,
        own: Option<(&[u8], &filter::Hit)>,
        matcher: &SourceMatcher,
        scratch: &mut filter::Scratch,
        names: &Names,
    ) -> std::io::Result<()> {
        // The common case, an address, needs no text and no vector: the text is
        // made only for `--json`.
        let one: [IpAddr; 1];
        let resolved: Vec<IpAddr>;
        let mut name = None;
        let addresses: &[IpAddr] = match counted.host {
            Host::Addr(a) => {
                if !names.allow_rdns.is_empty() && self.genuine(n, a, json, names) {
                    return Ok(());
                }
                one = [a];
                &one
            }
            Host::Name(r) => {
                let Some((text, found)) = self.resolve(n, r, json, scratch, names) else {
                    return Ok(());
                };
                resolved = found;
                name = Some(text);
                &resolved
            }
        };
        self.offences += 1;
        for a in addresses {
            *self.per_addr.entry(*a).or_default() += 1;
        }
        let Tally {
            per_capture,
            captures,
            ..
        } = self;
        if json {
            captures.clear();
        }
        if let Some((line, own)) = own {
            matcher.each_capture(line, own, scratch, |group, raw| {
                per_capture.count(group, raw);
                if json {
                    captures.push(group, raw);
                }
            });
        }
        if json {
            print_json(out, n, counted, name, addresses, matcher, &self.captures)
        } else {
            Ok(())
        }
    }

    /// Whether `addr` is a genuine client of the filter's allow_rdns names (the
    /// line then does not count).
    #[cold]
    fn genuine(&mut self, n: u64, addr: IpAddr, json: bool, names: &Names) -> bool {
        let Some(why) = names.genuine(addr) else {
            return false;
        };
        self.genuine += 1;
        if !json {
            eprintln!("log2drop: line {n}: {addr} is {why}: genuine, not counted");
        }
        true
    }

    /// The host name of a hit and its addresses (none when it does not
    /// resolve), or `None` when names do not count.
    #[cold]
    fn resolve(
        &mut self,
        n: u64,
        r: filter::NameRef,
        json: bool,
        scratch: &filter::Scratch,
        names: &Names,
    ) -> Option<(String, Vec<IpAddr>)> {
        let text = scratch.host_name(r).unwrap_or_default().to_owned();
        // As the agent: allow_rdns filters take no names.
        if names.use_dns == UseDns::No || !names.allow_rdns.is_empty() {
            self.names_ignored += 1;
            return None;
        }
        self.names += 1;
        let resolved = match names.addresses(&text) {
            Ok(a) => a,
            Err(why) => {
                self.unresolved += 1;
                if !json {
                    eprintln!("log2drop: line {n}: {why}; nothing would be banned");
                }
                Vec::new()
            }
        };
        Some((text, resolved))
    }

    /// Counts the offences of sessions that ended without a line, reported at
    /// line `n` (where they ended). Inlined: it runs after every line, and
    /// almost always finds none.
    #[inline]
    fn deferred(
        &mut self,
        out: &mut impl Write,
        json: bool,
        n: u64,
        matcher: &SourceMatcher,
        scratch: &mut filter::Scratch,
        names: &Names,
    ) -> std::io::Result<()> {
        while let Some(hit) = matcher.take_deferred(scratch) {
            // No line of its own: no captures.
            self.offence(out, json, n, &hit, None, matcher, scratch, names)?;
        }
        Ok(())
    }
}

/// One `--json` line.
#[allow(clippy::too_many_arguments)]
fn print_json(
    out: &mut impl Write,
    n: u64,
    hit: &filter::Hit,
    name: Option<String>,
    addresses: &[IpAddr],
    matcher: &SourceMatcher,
    captures: &Captures,
) -> std::io::Result<()> {
    let host = match name {
        Some(name) => name,
        None => addresses
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
    };
    let record = JsonHit {
        line: n,
        host: &host,
        addresses,
        filter: matcher.filter_name(hit.filter),
        time: hit.time.and_then(rfc3339),
        captures,
    };
    serde_json::to_writer(&mut *out, &record)?;
    out.write_all(b"\n")
}

/// Slots of [`CaptureTally::recent`]: more than the named patterns of a
/// built-in filter (sshd's modes have about twenty).
const RECENT_NAMES: usize = 32;

/// Offences per capture value, one table per capture name.
#[derive(Default)]
struct CaptureTally {
    tables: Vec<CaptureCounts>,
    /// Names the matcher handed out lately, by pointer (a slot per pointer),
    /// and their tables. Its own regexes share one name per pattern, so a
    /// name's text is compared only when its pattern is new to its slot; a
    /// fail2ban filter's names are made afresh per line and always miss.
    recent: [Option<(Arc<str>, usize)>; RECENT_NAMES],
    /// Distinct values in `tables`, bounded by [`MAX_CAPTURE_VALUES`].
    values: usize,
    /// Offences whose capture value did not fit in `tables`.
    others: u64,
    /// Where a value that is not kept whole is bounded (reused).
    bounded: String,
}

impl CaptureTally {
    /// Counts one capture, `group = raw`, bounded as [`Captures`] bounds it.
    fn count(&mut self, group: &Arc<str>, raw: &[u8]) {
        // Heap blocks are 16-byte aligned: the bits above are the spread ones.
        let slot = (Arc::as_ptr(group).cast::<u8>() as usize >> 4) % RECENT_NAMES;
        let k = match &self.recent[slot] {
            Some((g, k)) if Arc::ptr_eq(g, group) => *k,
            _ => {
                let k = self.table(group);
                self.recent[slot] = Some((group.clone(), k));
                k
            }
        };
        let value = capture::bound_in(raw, &mut self.bounded);
        let values = &mut self.tables[k].values;
        // A value seen before (most: attackers repeat user names) is found
        // by reference; only a new one is copied.
        if let Some(v) = values.get_mut(value) {
            *v += 1;
        } else if self.values < MAX_CAPTURE_VALUES {
            values.insert(value.into(), 1);
            self.values += 1;
        } else {
            self.others += 1;
        }
    }

    /// The table of `group`'s name, made if it is new.
    fn table(&mut self, group: &Arc<str>) -> usize {
        match self.tables.iter().position(|t| t.name == *group) {
            Some(k) => k,
            None => {
                self.tables.push(CaptureCounts {
                    name: group.clone(),
                    values: HashMap::default(),
                });
                self.tables.len() - 1
            }
        }
    }
}

/// Offences per value of one capture name.
struct CaptureCounts {
    name: Arc<str>,
    values: HashMap<Box<str>, u64, foldhash::fast::RandomState>,
}

/// Host names and reverse-DNS checks, as the agent would do them.
struct Names {
    use_dns: UseDns,
    allow_rdns: Vec<String>,
    /// `None` with --no-dns.
    lookups: Option<(tokio::runtime::Runtime, Lookups<Hickory>)>,
}

impl Names {
    fn new(args: &TestArgs, cfg: &FilterConfig) -> Result<Names> {
        let mut dns = match &args.config {
            Some(path) => {
                log2drop::config::load(path)
                    .with_context(|| format!("cannot use {}", path.display()))?
                    .dns
            }
            None => DnsConfig::default(),
        };
        if let Some(u) = &args.use_dns {
            dns.use_dns = match u.as_str() {
                "no" => UseDns::No,
                "yes" => UseDns::Yes,
                _ => UseDns::Warn,
            };
        }
        if !args.dns_server.is_empty() {
            dns.servers.clone_from(&args.dns_server);
        }
        if let Some((key, message)) = dns.problems().into_iter().next() {
            bail!("dns {key}: {message}");
        }
        let lookups = if args.no_dns {
            None
        } else {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the resolver's runtime")?;
            // hickory needs the runtime to build its connections.
            let lookups = {
                let _in = rt.enter();
                dns.build().context("cannot set up the resolver")?
            };
            Some((rt, lookups))
        };
        Ok(Names {
            use_dns: dns.use_dns,
            allow_rdns: cfg.allow_rdns.clone(),
            lookups,
        })
    }

    /// The addresses of `name`, or why there are none.
    fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let Some((rt, l)) = &self.lookups else {
            return Err(format!("{name}: not looked up (--no-dns)"));
        };
        rt.block_on(l.addresses(name))
            .answer
            .map(|a| a.to_vec())
            .map_err(|e| e.to_string())
    }

    /// Why `addr` is a genuine client of an allow_rdns filter, if it is.
    fn genuine(&self, addr: IpAddr) -> Option<String> {
        if self.allow_rdns.is_empty() {
            return None;
        }
        let (rt, l) = self.lookups.as_ref()?;
        match rt.block_on(l.confirmed_name(addr, &self.allow_rdns)) {
            Ok(Some(name)) => Some(name),
            Ok(None) | Err(LookupError::NotFound(_)) => None,
            Err(e) => {
                eprintln!("log2drop: {e}; counted");
                None
            }
        }
    }
}

/// What a run reads and counts, line after line.
struct Pass<'a, W> {
    args: &'a TestArgs,
    matcher: &'a SourceMatcher,
    scratch: filter::Scratch,
    names: &'a Names,
    out: W,
    tally: Tally,
    /// The first failure to write to stdout: the lines after it are only
    /// counted as read.
    write_error: Option<std::io::Error>,
    now: SystemTime,
}

impl<W: Write> Pass<'_, W> {
    /// Reads one line. Inlined into the line reader's loop: a call per line
    /// saved and restored the registers and reloaded the state each time.
    #[inline(always)]
    fn line(&mut self, line: Line<'_>) {
        let Pass {
            args,
            matcher,
            scratch,
            names,
            out,
            tally,
            write_error,
            now,
        } = self;
        tally.read += 1;
        let n = tally.read;
        if write_error.is_some() {
            return;
        }
        let result = if line.truncated {
            // Cut lines are never matched by the agent either.
            tally.cut += 1;
            tally.missed += 1;
            if args.print_missed {
                print_line(out, "missed (cut)", n, line.bytes)
            } else {
                Ok(())
            }
        } else {
            match matcher.examine(line.bytes, *now, scratch) {
                Outcome::Hit(hit) => {
                    tally.matched += 1;
                    tally.count_regex(&hit);
                    let own = Some((line.bytes, &hit));
                    tally.offence(out, args.json, n, &hit, own, matcher, scratch, names)
                }
                Outcome::Ended { line: own, counted } => {
                    tally.matched += 1;
                    tally.count_regex(&own);
                    let own = Some((line.bytes, &own));
                    tally.offence(out, args.json, n, &counted, own, matcher, scratch, names)
                }
                Outcome::Held(hit) => {
                    tally.matched += 1;
                    tally.held += 1;
                    tally.count_regex(&hit);
                    Ok(())
                }
                Outcome::Ignored { .. } => {
                    tally.ignored += 1;
                    if args.print_ignored {
                        print_line(out, "ignored", n, line.bytes)
                    } else {
                        Ok(())
                    }
                }
                Outcome::Miss => {
                    tally.missed += 1;
                    if args.print_missed {
                        print_line(out, "missed", n, line.bytes)
                    } else {
                        Ok(())
                    }
                }
            }
        };
        // Sessions that ended without a line of their own (their window passed).
        let result =
            result.and_then(|()| tally.deferred(out, args.json, n, matcher, scratch, names));
        if let Err(e) = result {
            *write_error = Some(e);
        }
    }
}

/// `log2drop test`.
pub fn run(args: &TestArgs) -> Result<()> {
    let (name, cfg, file) = resolve(args)?;
    let matcher = SourceMatcher::build(&[(name.as_str(), &cfg)])
        .with_context(|| format!("cannot compile filter {name:?}"))?;
    let scratch = matcher.new_scratch();
    let names = Names::new(args, &cfg)?;
    let mut reader = compressed::open_lines(&file).context("cannot open the log")?;

    let stdout = std::io::stdout();
    let regexes = regex_texts(&cfg)?;
    let mut pass = Pass {
        args,
        matcher: &matcher,
        scratch,
        names: &names,
        out: std::io::BufWriter::new(stdout.lock()),
        tally: Tally::default(),
        write_error: None,
        now: SystemTime::now(),
    };
    let started = Instant::now();
    let read = for_each_line(&mut *reader, DEFAULT_MAX_LINE, &mut |line| pass.line(line));
    // The end of the input ends every session still open.
    let Pass {
        mut scratch,
        mut out,
        mut tally,
        mut write_error,
        ..
    } = pass;
    matcher.finish(&mut scratch);
    if write_error.is_none()
        && let Err(e) = tally.deferred(
            &mut out,
            args.json,
            tally.read,
            &matcher,
            &mut scratch,
            &names,
        )
    {
        write_error = Some(e);
    }
    let elapsed = started.elapsed();
    read.with_context(|| format!("cannot read {}", file.display()))?;
    if let Some(e) = write_error {
        return Err(e).context("cannot write to stdout");
    }
    if !args.json {
        summary(
            &mut out,
            &name,
            &cfg,
            &regexes,
            &tally,
            elapsed.as_secs_f64(),
        )?;
    }
    out.flush().context("cannot write to stdout")?;
    // The process ends after the report: freeing the compiled filter (its
    // parse trees and automata) cost 5% of a 2,000-line run of fail2ban's
    // sshd.conf.
    std::mem::forget(matcher);
    Ok(())
}

/// The filter to run, its name, and the file to read.
fn resolve(args: &TestArgs) -> Result<(String, FilterConfig, PathBuf)> {
    let mut positional = args.args.iter();
    let (name, cfg) = if args.regex.is_empty() {
        let Some(name) = positional.next() else {
            bail!("name a filter (a built-in one or one from --config) or give --regex");
        };
        if let Some(found) =
            fail2ban_filter(name, args.fail2ban_dir.as_deref(), args.mode.as_deref())?
        {
            return finish(args, positional, name.clone(), found);
        }
        let filters = match &args.config {
            Some(path) => {
                log2drop::config::load(path)
                    .with_context(|| format!("cannot use filters from {}", path.display()))?
                    .filters
            }
            None => Default::default(),
        };
        let (base, mut options) = filter::parse_reference_options(name)?;
        if let Some(cfg) = filter::lookup(&filters, base)
            && log2drop::fail2ban::is_fail2ban(&cfg)
        {
            // A fail2ban filter of --config takes every option, mode among them.
            if let Some(m) = &args.mode {
                if options.contains_key("mode") {
                    bail!("give the mode once: in {name:?} or with --mode");
                }
                options.insert("mode".into(), m.clone());
            }
            let mut cfg = cfg.into_owned();
            cfg.options.extend(options);
            return finish(args, positional, name.clone(), cfg);
        }
        let (base, mode) = filter::parse_reference(name)?;
        let (name, mode) = match (mode, &args.mode) {
            (Some(_), Some(_)) => bail!("give the mode once: in {name:?} or with --mode"),
            (Some(m), None) => (name.clone(), m),
            (None, Some(m)) => (format!("{base}[mode={m}]"), m.clone()),
            (None, None) => (name.clone(), filter::NORMAL_MODE.to_owned()),
        };
        let Some(cfg) = filter::lookup(&filters, base) else {
            let builtins: Vec<&str> = builtin::names().collect();
            bail!(
                "unknown filter {base:?}: not a built-in filter ({}){}",
                builtins.join(", "),
                if args.config.is_some() {
                    " nor in --config"
                } else {
                    "; for a filter of your config add --config FILE"
                }
            );
        };
        let Some(cfg) = filter::with_mode(&cfg, &mode) else {
            bail!(
                "filter {base:?} has no mode {mode:?} (its modes: {})",
                filter::modes(&cfg).join(", ")
            );
        };
        if args.prefix != "none" || !args.program.is_empty() || args.datepattern.is_some() {
            bail!(
                "--prefix, --program and --datepattern go with --regex; a named filter has its own"
            );
        }
        (name, cfg)
    } else {
        if args.mode.is_some() {
            bail!("--mode goes with a named filter, not with --regex");
        }
        let prefix = if args.prefix == "syslog" {
            LinePrefix::Syslog
        } else {
            LinePrefix::None
        };
        let cfg = FilterConfig {
            regex: args.regex.clone(),
            prefix,
            programs: args.program.clone(),
            datepattern: args.datepattern.clone(),
            ..FilterConfig::default()
        };
        ("--regex".to_owned(), cfg)
    };
    finish(args, positional, name, cfg)
}

/// The regexes `log2drop test` lists: a fail2ban filter's failregex lines.
fn regex_texts(cfg: &FilterConfig) -> Result<Vec<String>> {
    match &cfg.fail2ban {
        Some(file) => Ok(log2drop::fail2ban::Definition::read(file, &cfg.options)
            .with_context(|| format!("cannot read {}", file.display()))?
            .failregex
            .into_iter()
            .map(|l| l.text)
            .collect()),
        None => Ok(cfg.regex.clone()),
    }
}

/// FILTER as a fail2ban filter: a path to a filter file, or a name with
/// --fail2ban-dir. `None` when it is neither.
fn fail2ban_filter(
    name: &str,
    dir: Option<&std::path::Path>,
    mode: Option<&str>,
) -> Result<Option<FilterConfig>> {
    let (base, mut options) = filter::parse_reference_options(name)?;
    let looks_like_path = base.contains('/') || base.ends_with(".conf") || base.ends_with(".local");
    let file = if looks_like_path {
        PathBuf::from(&base)
    } else if let Some(dir) = dir {
        dir.join("filter.d").join(format!("{base}.conf"))
    } else {
        return Ok(None);
    };
    if !file.exists() && !file.with_extension("local").exists() {
        bail!("no fail2ban filter file {}", file.display());
    }
    if let Some(m) = mode {
        if options.contains_key("mode") {
            bail!("give the mode once: in {name:?} or with --mode");
        }
        options.insert("mode".into(), m.to_owned());
    }
    Ok(Some(FilterConfig {
        fail2ban: Some(file),
        options,
        ..FilterConfig::default()
    }))
}

fn finish(
    args: &TestArgs,
    mut positional: std::slice::Iter<'_, String>,
    name: String,
    mut cfg: FilterConfig,
) -> Result<(String, FilterConfig, PathBuf)> {
    if !args.ignore.is_empty() && cfg.fail2ban.is_some() {
        bail!("--ignore does not apply to a fail2ban filter (add an ignoreregex to its .local)");
    }
    cfg.ignore.extend(args.ignore.iter().cloned());
    if args.timezone.is_some() {
        cfg.timezone.clone_from(&args.timezone);
    }
    let file = positional
        .next()
        .map_or_else(|| PathBuf::from("-"), PathBuf::from);
    if let Some(extra) = positional.next() {
        bail!("unexpected argument {extra:?} (with --regex, give only the FILE)");
    }
    Ok((name, cfg, file))
}

fn print_line(out: &mut impl Write, what: &str, n: u64, bytes: &[u8]) -> std::io::Result<()> {
    write!(out, "{what} {n}: ")?;
    out.write_all(bytes)?;
    out.write_all(b"\n")
}

fn rfc3339(t: SystemTime) -> Option<String> {
    jiff::Timestamp::try_from(t).ok().map(|ts| ts.to_string())
}

/// The first [`TOP`] of `all` in `order`, sorted. Only those are sorted: the
/// rest (an attack's thousands of addresses and user names) are only
/// partitioned off. `order` must be total on `all`'s items (its ties broken by
/// a distinct key), so the result is the one a full sort would give.
fn top_by<T>(all: &mut [T], mut order: impl FnMut(&T, &T) -> std::cmp::Ordering) -> &[T] {
    if all.len() > TOP {
        all.select_nth_unstable_by(TOP - 1, &mut order);
    }
    let n = all.len().min(TOP);
    let top = &mut all[..n];
    top.sort_unstable_by(order);
    top
}

fn summary(
    out: &mut impl Write,
    name: &str,
    cfg: &FilterConfig,
    regexes: &[String],
    t: &Tally,
    secs: f64,
) -> Result<()> {
    writeln!(out, "filter {name}")?;
    writeln!(
        out,
        "lines: {} read, {} matched, {} ignored, {} missed",
        t.read, t.matched, t.ignored, t.missed
    )?;
    writeln!(
        out,
        "offences: {} ({} matched session lines did not count on their own: one attempt, one offence)",
        t.offences, t.held
    )?;
    if t.names + t.names_ignored > 0 {
        writeln!(
            out,
            "host names: {} offences by names ({} gave no address, so no ban), {} lines ignored (use_dns = no)",
            t.names, t.unresolved, t.names_ignored
        )?;
    }
    if t.genuine > 0 {
        writeln!(
            out,
            "genuine clients: {} lines from addresses whose reverse name is confirmed in {} (allow_rdns): not counted",
            t.genuine,
            cfg.allow_rdns.join(", ")
        )?;
    }
    if t.cut > 0 {
        writeln!(
            out,
            "       {} over-long lines (more than {DEFAULT_MAX_LINE} bytes) cut and not matched",
            t.cut
        )?;
    }
    writeln!(out, "regexes (lines matched):")?;
    let mut lists = cfg.counting_lists().map(Vec::as_slice);
    lists[0] = regexes;
    for ((role, list), counts) in filter::Role::ALL.iter().zip(lists).zip(&t.per_regex) {
        for (i, re) in list.iter().enumerate() {
            let hits = counts.get(i).copied().unwrap_or(0);
            writeln!(out, "  {:<7} {i:>2} {hits:>10}  {re}", role.key())?;
        }
    }
    if !t.per_addr.is_empty() {
        let mut all: Vec<(&IpAddr, &u64)> = t.per_addr.iter().collect();
        let top = top_by(&mut all, |a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        writeln!(
            out,
            "addresses: {} distinct; top {}:",
            t.per_addr.len(),
            top.len()
        )?;
        for (addr, n) in top {
            writeln!(out, "  {n:>10}  {addr}")?;
        }
    }
    if t.per_capture.values > 0 {
        // Attacker-written values: escaped, so a user name cannot forge a line
        // or send escape sequences to the terminal.
        let mut tables: Vec<&CaptureCounts> = t
            .per_capture
            .tables
            .iter()
            .filter(|c| !c.values.is_empty())
            .collect();
        tables.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for table in tables {
            let mut all: Vec<(&str, u64)> = table.values.iter().map(|(v, c)| (&**v, *c)).collect();
            let distinct = all.len();
            let top = top_by(&mut all, |a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            writeln!(
                out,
                "captures {}: {} distinct; top {}:",
                capture::escape(&table.name),
                distinct,
                top.len()
            )?;
            for (value, n) in top {
                writeln!(out, "  {n:>10}  {}", capture::escape(value))?;
            }
        }
        if t.per_capture.others > 0 {
            writeln!(
                out,
                "  ({} more offences had values past the first {MAX_CAPTURE_VALUES} distinct ones)",
                t.per_capture.others
            )?;
        }
    }
    let rate = if secs > 0.0 {
        t.read as f64 / secs
    } else {
        0.0
    };
    writeln!(out, "time: {secs:.3} s, {rate:.0} lines/s")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tables as the summary reads them: name, then value and count.
    fn tables(t: &CaptureTally) -> Vec<(String, Vec<(String, u64)>)> {
        let mut out: Vec<_> = t
            .tables
            .iter()
            .map(|c| {
                let mut v: Vec<_> = c.values.iter().map(|(k, n)| (k.to_string(), *n)).collect();
                v.sort();
                (c.name.to_string(), v)
            })
            .collect();
        out.sort();
        out
    }

    proptest! {
        /// Counting does not depend on how the matcher shares its names: one
        /// name for all, a fresh one per capture (a fail2ban filter's), or
        /// one per pattern with more patterns than slots (pointers that
        /// share a slot).
        #[test]
        fn counts_do_not_depend_on_shared_names(
            captures in proptest::collection::vec(
                (0usize..80, "user|mail|x", "[a-c]{0,2}|\\PC{60,70}"),
                0..200,
            ),
        ) {
            let patterns: Vec<Vec<Arc<str>>> = (0..80)
                .map(|_| ["user", "mail", "x"].map(Arc::from).to_vec())
                .collect();
            let shared: Vec<Arc<str>> = ["user", "mail", "x"].map(Arc::from).to_vec();
            let (mut by_pattern, mut fresh, mut one) =
                (CaptureTally::default(), CaptureTally::default(), CaptureTally::default());
            for (p, name, value) in &captures {
                let k = ["user", "mail", "x"].iter().position(|n| n == name).expect("a name");
                by_pattern.count(&patterns[*p][k], value.as_bytes());
                fresh.count(&Arc::from(name.as_str()), value.as_bytes());
                one.count(&shared[k], value.as_bytes());
            }
            let want = tables(&one);
            prop_assert_eq!(&tables(&by_pattern), &want);
            prop_assert_eq!(&tables(&fresh), &want);
            // Each value counted as `Captures` keeps it: bounded.
            for (_, name, value) in &captures {
                let kept = capture::bound(value.as_bytes());
                prop_assert!(want
                    .iter()
                    .any(|(n, vs)| n == name && vs.iter().any(|(v, _)| **v == *kept)));
            }
        }

        /// The partial selection lists what a full sort's first [`TOP`] are,
        /// in the same order, as the summary orders them (count down, then
        /// value up), with many ties on the count.
        #[test]
        fn top_is_the_full_sort_head(
            counts in proptest::collection::hash_map(any::<u16>(), 0u64..5, 0..60),
        ) {
            let order = |a: &(u16, u64), b: &(u16, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
            let mut all: Vec<(u16, u64)> = counts.into_iter().collect();
            let mut sorted = all.clone();
            sorted.sort_by(order);
            sorted.truncate(TOP);
            prop_assert_eq!(top_by(&mut all, order), &sorted[..]);
        }
    }
}
