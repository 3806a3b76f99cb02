//! The `log2drop` command: the daemon (`run`), the config checker (`check`), and the
//! clients that talk to a running agent over its control socket (`status`, `bans`,
//! `ban`, `unban`, `reload`, `stats`, `flush`). Parsing and printing live here and
//! in [`cli`]; everything else is the library's.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Default config file.
pub(crate) const DEFAULT_CONFIG: &str = "/etc/log2drop/log2drop.toml";

/// log2drop watches log files and bans misbehaving addresses straight in the kernel
/// (XDP maps), without forking a firewall command per ban.
#[derive(Debug, Parser)]
#[command(name = "log2drop", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the agent in the foreground.
    ///
    /// Follows the configured logs, bans offenders, serves the control socket. Stops cleanly on SIGTERM or SIGINT; bans stay
    /// enforced in the kernel and are picked up again on the next start.
    ///
    /// Log verbosity follows RUST_LOG (default "info"). The log goes to standard error: human-readable lines (coloured on a
    /// terminal), or with --log-format json one JSON object per line for journald and log shippers. Either way each ban and
    /// unban is one line the built-in recidive filter and `report --log` read.
    Run {
        /// Config file.
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Log format: "human" (time, level, target, message, key=value fields) or "json" (one object per line: timestamp,
        /// level, message, the fields, target).
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t = cli::LogFormat::Human)]
        log_format: cli::LogFormat,
    },
    /// Check a config file.
    ///
    /// Loads it the way `run` would (syntax, keys, values, regexes), without touching the system. Prints "FILE: ok", or every problem
    /// as FILE:LINE:COL: KEY: message and exits 78 (EX_CONFIG); exits 66
    /// (EX_NOINPUT) if the file cannot be read. `run` exits the same way.
    Check {
        /// Config file.
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show the running agent's status.
    ///
    /// Uptime, config file, its sources (lines read, offences), its jails (active bans) and its backends (health, what the last reconciliation
    /// did and how long it took).
    ///
    /// Read-only: members of agent.socket_group may use it.
    Status {
        /// Print the raw JSON status.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the running agent's active bans.
    ///
    /// A table, or with --json a JSON array
    /// of {"address","jail","since","until","origin"} plus "filter",
    /// "first_offence", "last_offence" and "captures" (the filter's named
    /// captures, such as {"user":"root"}) for jail bans and "forced" for forced
    /// ones (until is null when permanent; times are RFC 3339 UTC). The table
    /// shows the captures escaped (attacker-written text).
    ///
    /// Read-only: members of agent.socket_group may use it.
    Bans {
        /// Only the bans of this jail ("manual" for bans made by hand).
        #[arg(long, value_name = "JAIL")]
        jail: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ban an address or prefix now.
    ///
    /// The ban is recorded and in the kernel when this returns.
    ///
    /// Without --jail the ban is filed under "manual" and is permanent unless
    /// --for is given. With --jail it is filed under that jail, enforced by its
    /// backends, and lasts its bantime unless --for is given. Targets the
    /// allowlist covers are refused unless --force is given. 0.0.0.0/0 and ::/0
    /// are always refused.
    Ban {
        /// Address (198.51.100.7, 2001:db8::1) or prefix (203.0.113.0/24).
        #[arg(value_name = "ADDR[/LEN]")]
        target: String,
        /// File the ban under this configured jail.
        #[arg(long, value_name = "JAIL")]
        jail: Option<String>,
        /// How long: 30s, 10m, 1h, 2d, 1w or compounds like 1h30m.
        #[arg(long = "for", value_name = "DUR")]
        duration: Option<String>,
        /// Ban a single address even if the allowlist covers it (loopback, the
        /// host's own addresses, agent.allow). The ban is marked forced and survives
        /// restarts and reloads. Prefixes over the allowlist are refused even so.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Lift a ban, or every ban (of a jail).
    ///
    /// `unban ADDR` lifts the ban on ADDR whichever jail set it; `unban --all`
    /// lifts every ban; `unban --all --jail J` every ban of jail J. A ban this
    /// host shared with the fleet is lifted on the fleet too; a ban received from
    /// the fleet is lifted here only, unless --fleet is given.
    #[command(group = clap::ArgGroup::new("what").required(true).args(["target", "all"]))]
    Unban {
        /// Address or prefix, as `bans` lists it.
        #[arg(value_name = "ADDR[/LEN]")]
        target: Option<String>,
        /// Lift every ban (of --jail, if given).
        #[arg(long)]
        all: bool,
        /// Only bans of this jail; with an address, refuse if another jail owns it.
        #[arg(long, value_name = "JAIL")]
        jail: Option<String>,
        /// Lift the ban on ADDR on every host of the fleet, whoever banned it
        /// (needs [fleet]).
        #[arg(long, conflicts_with = "all")]
        fleet: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ban sharing with other hosts through Redis ([fleet] in the config).
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// Run a filter over a log and show what it matches, like fail2ban-regex:
    /// lines read, matched, ignored and missed, hits per regex, top addresses,
    /// time taken. FILE may be plain, gzip, zstd, xz or bzip2 (told by its first
    /// bytes, not its name), or - for stdin; binary data is refused.
    ///
    /// Examples: `log2drop test sshd /var/log/auth.log`,
    /// `log2drop test --regex 'from <HOST> port' auth.log.2.gz`,
    /// `log2drop test --config /etc/log2drop/log2drop.toml my-filter - < x.log`.
    Test(cli::test::TestArgs),
    /// Reports on bans: per address, subnet, jail, day, repeat offenders,
    /// filter, ASN or country, from the agent's state database (default),
    /// fail2ban's logs (--fail2ban-log, rotated .gz ones included) or log2drop's
    /// own logs (--log). The database also holds offence counts, so --by filter
    /// and --by jail show what addresses did before any ban, and --by user which
    /// accounts are being guessed (the filters' user captures, escaped).
    ///
    /// Terminal tables with bar charts, --json, --csv, or a self-contained
    /// --html page with charts. Examples: `log2drop report`,
    /// `log2drop report --fail2ban-log /var/log/fail2ban.log* --by subnet --prefix 16`,
    /// `log2drop report --today --by jail --json`, `log2drop report --by user`.
    Report(cli::report::ReportArgs),
    /// List the built-in filters, or show one in full.
    ///
    /// Without a subcommand: every built-in filter with what it counts, the
    /// services and versions its regexes were written against, and its modes.
    /// Name one in a source's and a jail's `filters` list; no [filters.NAME]
    /// table is needed.
    ///
    /// `show NAME` prints its settings, every regex under its session role
    /// (failure `regex`, `attempt`, `address`, `end`, `success`, `carry`),
    /// its ignore regexes, what each mode adds and its sample lines.
    ///
    /// Examples: `log2drop filters`, `log2drop filters show sshd`,
    /// `log2drop filters show sshd --mode aggressive`,
    /// `log2drop filters show sshd --toml > my-sshd.toml`, `log2drop filters --json`.
    Filters(cli::filters::FiltersArgs),
    /// Write a log2drop config from a fail2ban configuration (jail.conf,
    /// jail.local, jail.d, filter.d), saying per jail what did not carry over.
    ///
    /// Filters stay fail2ban's own files, referenced by path. Exit status 0 with
    /// notes; non-zero only when no jail could be imported.
    ///
    /// Example: `log2drop import-fail2ban -o /etc/log2drop/log2drop.toml`, then
    /// `log2drop check --config /etc/log2drop/log2drop.toml`.
    ImportFail2ban(cli::import::ImportArgs),
    /// Re-read the running agent's config file (as SIGHUP does).
    ///
    /// Prints what changed. Only what changed is rebuilt: unchanged sources keep reading,
    /// unchanged jails keep their offence counters, unchanged backends are left
    /// alone, and every ban stays. A config with errors is refused: the errors are
    /// printed and the running config stays in force.
    Reload {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show the running agent's counters.
    ///
    /// Lines read, offences, bans issued, expired and lifted,
    /// per-source and per-backend counts, hook outcomes, and packets dropped per
    /// ban (XDP). --json prints them as one JSON object whose "lines",
    /// "offences", "bans_active" and "bans_total" keys are stable.
    ///
    /// Read-only: members of agent.socket_group may use it.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove every kernel object log2drop created, for uninstalling.
    ///
    /// The XDP program's links and pinned maps go. A running agent does it and then stops;
    /// with no agent running, the objects named in the config (--config, default
    /// /etc/log2drop/log2drop.toml) are removed directly. Bans stay in the state
    /// database and come back on the next `log2drop run`.
    Flush {
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a config file.
    ///
    /// `log2drop config --default` prints the full default config: every key with
    /// its default value and a one-line comment, an sshd jail read from the journal
    /// and enforced with nftables, and commented examples of the optional keys. It
    /// passes `log2drop check` as printed:
    /// `log2drop config --default > /etc/log2drop/log2drop.toml`.
    Config {
        /// Print the default config (currently the only form).
        #[arg(long, required = true)]
        default: bool,
    },
    /// Print a shell completion script.
    ///
    /// For example `log2drop completions bash > /etc/bash_completion.d/log2drop`,
    /// `log2drop completions zsh > "${fpath[1]}/_log2drop"` or
    /// `log2drop completions fish > ~/.config/fish/completions/log2drop.fish`.
    /// The Debian package installs them already.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (log2drop.1 and log2drop-COMMAND.1) into DIR.
    #[command(hide = true)]
    Manpage {
        /// Directory to write them to (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `log2drop fleet ...`.
#[derive(Debug, clap::Subcommand)]
enum FleetCmd {
    /// Show the fleet link: connected or not, lag, last stream ID read, bans
    /// published and received, remote bans refused (allowlist, prefix too
    /// wide), the outgoing queue, and the peers seen on the stream.
    ///
    /// Read-only: members of agent.socket_group may use it.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

/// How a client command finds the agent.
#[derive(Debug, Args)]
struct Conn {
    /// Control socket of the agent [default: /run/log2drop/log2drop.sock].
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    socket: Option<PathBuf>,
    /// Read the socket path from this config file instead.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // OpenBSD's PF helper is this binary started again by the agent (see
    // docs/openbsd.md); it runs before anything starts threads.
    #[cfg(target_os = "openbsd")]
    {
        let mut args = std::env::args_os().skip(1);
        if args.next().as_deref()
            == Some(std::ffi::OsStr::new(log2drop_openbsd::privsep::SUBCOMMAND))
        {
            return log2drop_openbsd::privsep::helper::main(args);
        }
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run { config, log_format } => cli::run(&config, log_format),
        Cmd::Check { config } => return cli::check(&config),
        Cmd::Status { json, conn } => cli::status(&conn.socket_path(), json),
        Cmd::Bans { jail, json, conn } => cli::bans(&conn.socket_path(), jail.as_deref(), json),
        Cmd::Ban {
            target,
            jail,
            duration,
            force,
            conn,
        } => cli::ban(
            &conn.socket_path(),
            &cli::BanArgs {
                target: &target,
                duration: duration.as_deref(),
                jail: jail.as_deref(),
                force,
            },
        ),
        Cmd::Unban {
            target,
            all,
            jail,
            fleet,
            conn,
        } => cli::unban(
            &conn.socket_path(),
            target.as_deref(),
            all,
            jail.as_deref(),
            fleet,
        ),
        Cmd::Fleet(FleetCmd::Status { json, conn }) => cli::fleet_status(&conn.socket_path(), json),
        Cmd::Reload { conn } => cli::reload(&conn.socket_path()),
        Cmd::Stats { json, conn } => cli::stats(&conn.socket_path(), json),
        Cmd::Flush { conn } => {
            cli::flush(&conn.socket_path(), std::path::Path::new(DEFAULT_CONFIG))
        }
        Cmd::Test(args) => cli::test::run(&args),
        Cmd::Report(args) => cli::report::run(&args),
        Cmd::Filters(args) => cli::filters::run(&args),
        Cmd::Config { default: _ } => cli::default_config::print_default(),
        Cmd::Completions { shell } => cli::generate::completions(Cli::command(), shell),
        Cmd::Manpage { dir } => cli::generate::manpages(Cli::command(), &dir),
        Cmd::ImportFail2ban(args) => cli::import::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log2drop: {}", error_chain(&e));
            cli::exit::for_error(&e).map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the
/// message before it already shows (library errors often embed their source).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !prev.is_empty() && prev.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
        prev = msg;
    }
    out
}

impl Conn {
    /// `--socket`, else the socket named in `--config`, else the default.
    fn socket_path(&self) -> cli::SocketArg {
        match (&self.socket, &self.config) {
            (Some(s), _) => cli::SocketArg::Path(s.clone()),
            (None, Some(c)) => cli::SocketArg::FromConfig(c.clone()),
            (None, None) => cli::SocketArg::Path(PathBuf::from(cli::DEFAULT_SOCKET)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn client_commands_parse_with_socket_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "log2drop",
            "ban",
            "--socket",
            "/tmp/s",
            "198.51.100.7",
            "--for",
            "1h",
        ])
        .expect("parse");
        match cli.command {
            Cmd::Ban {
                target,
                duration,
                conn,
                ..
            } => {
                assert_eq!(target, "198.51.100.7");
                assert_eq!(duration.as_deref(), Some("1h"));
                assert_eq!(conn.socket, Some(PathBuf::from("/tmp/s")));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn socket_and_config_conflict() {
        let err = Cli::try_parse_from([
            "log2drop", "bans", "--socket", "/tmp/s", "--config", "/tmp/c",
        ])
        .expect_err("conflict");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn error_chain_skips_causes_already_shown() {
        let io = std::io::Error::other("connection refused");
        let e = anyhow::Error::new(io)
            .context("cannot reach the agent at /s: connection refused")
            .context("cannot ban 198.51.100.7");
        assert_eq!(
            error_chain(&e),
            "cannot ban 198.51.100.7: cannot reach the agent at /s: connection refused"
        );
        let e = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot save");
        assert_eq!(error_chain(&e), "cannot save: disk full");
    }

    #[test]
    fn unban_needs_a_target_or_all_and_not_both() {
        let err = Cli::try_parse_from(["log2drop", "unban"]).expect_err("nothing to unban");
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err =
            Cli::try_parse_from(["log2drop", "unban", "198.51.100.7", "--all"]).expect_err("both");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli =
            Cli::try_parse_from(["log2drop", "unban", "--all", "--jail", "ssh"]).expect("parse");
        assert!(matches!(
            cli.command,
            Cmd::Unban { target: None, all: true, jail: Some(ref j), .. } if j == "ssh"
        ));
    }

    #[test]
    fn ban_takes_jail_for_and_force() {
        let cli = Cli::try_parse_from([
            "log2drop",
            "ban",
            "192.0.2.7",
            "--jail",
            "ssh",
            "--for",
            "2h",
            "--force",
        ])
        .expect("parse");
        match cli.command {
            Cmd::Ban {
                target,
                jail,
                duration,
                force,
                ..
            } => {
                assert_eq!(target, "192.0.2.7");
                assert_eq!(jail.as_deref(), Some("ssh"));
                assert_eq!(duration.as_deref(), Some("2h"));
                assert!(force);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn every_command_has_help() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "`log2drop {}` has no help text",
                sub.get_name()
            );
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some() || arg.get_id() == "help" || arg.get_id() == "version",
                    "`log2drop {} {}` has no help text",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn man_pages_and_completions_generate() {
        let dir = tempfile::tempdir().expect("tempdir");
        cli::generate::manpages(Cli::command(), dir.path()).expect("man pages");
        let pages = std::fs::read_dir(dir.path()).expect("read dir").count();
        let main = std::fs::read_to_string(dir.path().join("log2drop.1")).expect("log2drop.1");
        assert!(
            main.starts_with(".ie") || main.contains(".TH log2drop 1"),
            "{main}"
        );
        // Every visible subcommand has its page, with its own options in it.
        let ban = std::fs::read_to_string(dir.path().join("log2drop-ban.1")).expect("ban page");
        assert!(
            ban.contains("\\-\\-force") && ban.contains("log2drop ban"),
            "{ban}"
        );
        assert!(!dir.path().join("log2drop-manpage.1").exists());
        // One page per visible subcommand (nested ones such as `filters` add their own).
        for sub in Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
        {
            let page = dir.path().join(format!("log2drop-{}.1", sub.get_name()));
            assert!(page.is_file(), "no man page {}", page.display());
        }
        assert!(pages > 1);
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "log2drop", &mut out);
            let text = String::from_utf8(out).expect("utf-8");
            for word in ["unban", "--jail", "completions"] {
                assert!(text.contains(word), "{shell} completion lacks {word}");
            }
        }
    }

    #[test]
    fn run_defaults_to_the_system_config() {
        let cli = Cli::try_parse_from(["log2drop", "run"]).expect("parse");
        match cli.command {
            Cmd::Run { config, log_format } => {
                assert_eq!(config, PathBuf::from(DEFAULT_CONFIG));
                assert_eq!(log_format, cli::LogFormat::Human);
            }
            other => panic!("parsed as {other:?}"),
        }
    }
}
