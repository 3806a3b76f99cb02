//! The `log2drop` command: the daemon (`run`), the config checker (`check`), and the
//! clients that talk to a running agent over its control socket (`bans`, `ban`,
//! `unban`, `status`). Parsing and printing live here and in [`cli`]; everything
//! else is the library's.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Default config file.
const DEFAULT_CONFIG: &str = "/etc/log2drop/log2drop.toml";

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
    /// Run the agent in the foreground: follow the configured logs, ban offenders,
    /// serve the control socket. Stops cleanly on SIGTERM or SIGINT; bans stay
    /// enforced in the kernel and are picked up again on the next start.
    ///
    /// Log verbosity follows RUST_LOG (default "info").
    Run {
        /// Config file.
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Check a config file the way `run` would load it (syntax, keys, values,
    /// regexes), without touching the system. Prints "FILE: ok" or every problem
    /// with its line and column, and exits 1 on problems.
    Check {
        /// Config file.
        #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// List the running agent's active bans: a table, or with --json a JSON array
    /// of {"address","jail","since","until","origin"} (until is null when
    /// permanent; times are RFC 3339 UTC).
    Bans {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ban an address or prefix now (jail "manual"). Allowlisted targets are
    /// refused.
    Ban {
        /// Address (198.51.100.7, 2001:db8::1) or prefix (203.0.113.0/24).
        #[arg(value_name = "ADDR[/LEN]")]
        target: String,
        /// How long: 30s, 10m, 1h, 2d, 1w or compounds like 1h30m. Without it the
        /// ban is permanent.
        #[arg(long = "for", value_name = "DUR")]
        duration: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Lift a ban, whichever jail set it.
    Unban {
        /// Address or prefix, as `bans` lists it.
        #[arg(value_name = "ADDR[/LEN]")]
        target: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Run a filter over a log and show what it matches, like fail2ban-regex:
    /// lines read, matched, ignored and missed, hits per regex, top addresses,
    /// time taken. FILE may be plain, gzip or zstd, or - for stdin.
    ///
    /// Examples: `log2drop test sshd /var/log/auth.log`,
    /// `log2drop test --regex 'from <HOST> port' auth.log.2.gz`,
    /// `log2drop test --config /etc/log2drop/log2drop.toml my-filter - < x.log`.
    Test(cli::test::TestArgs),
    /// Show the running agent's uptime, sources and backends.
    Status {
        /// Print the raw JSON status.
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
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run { config } => cli::run(&config),
        Cmd::Check { config } => return cli::check(&config),
        Cmd::Bans { json, conn } => cli::bans(&conn.socket_path(), json),
        Cmd::Ban {
            target,
            duration,
            conn,
        } => cli::ban(&conn.socket_path(), &target, duration.as_deref()),
        Cmd::Unban { target, conn } => cli::unban(&conn.socket_path(), &target),
        Cmd::Status { json, conn } => cli::status(&conn.socket_path(), json),
        Cmd::Test(args) => cli::test::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("log2drop: {}", error_chain(&e));
            ExitCode::FAILURE
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
    use clap::CommandFactory;

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
    fn run_defaults_to_the_system_config() {
        let cli = Cli::try_parse_from(["log2drop", "run"]).expect("parse");
        match cli.command {
            Cmd::Run { config } => assert_eq!(config, PathBuf::from(DEFAULT_CONFIG)),
            other => panic!("parsed as {other:?}"),
        }
    }
}
