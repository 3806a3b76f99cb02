//! `log2drop import-fail2ban`: writes a log2drop config from a fail2ban
//! directory, says per jail what did not carry over, and optionally brings
//! fail2ban's bans into the state database.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::Args;

use log2drop::fail2ban::jail::{Enforce, ImportOptions, import};

/// `log2drop import-fail2ban` arguments.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// fail2ban's configuration directory.
    #[arg(value_name = "DIR", default_value = "/etc/fail2ban")]
    dir: PathBuf,
    /// Write the config here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Import every jail, not only the enabled ones (to test all filters).
    #[arg(long)]
    all: bool,
    /// Copy each filter's definition into the config instead of referring to its
    /// file (later fail2ban filter updates are then not picked up).
    #[arg(long)]
    inline: bool,
    /// Where bans take effect: nftables (default) or dry-run (log only).
    #[arg(long, value_name = "KIND", value_parser = ["nftables", "dry-run"], default_value = "nftables")]
    backend: String,
    /// fail2ban's database: its running bans and ban history are written into
    /// log2drop's state database (--state-dir), so escalation continues.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// log2drop's state directory that --state writes to.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/log2drop")]
    state_dir: PathBuf,
}

/// `log2drop import-fail2ban`.
pub fn run(args: &ImportArgs) -> Result<()> {
    let opts = ImportOptions {
        dir: args.dir.clone(),
        all: args.all,
        inline: args.inline,
        enforce: if args.backend == "dry-run" {
            Enforce::DryRun
        } else {
            Enforce::Nftables
        },
    };
    let imported =
        import(&opts).with_context(|| format!("cannot import {}", args.dir.display()))?;
    let mut err = std::io::stderr().lock();
    for n in &imported.notes {
        writeln!(err, "{}: {}", n.jail, n.message)?;
    }
    if imported.jails == 0 {
        bail!(
            "no usable jail in {} (none enabled? --all imports every jail)",
            args.dir.display()
        );
    }
    match &args.output {
        Some(path) => std::fs::write(path, &imported.toml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout()
            .lock()
            .write_all(imported.toml.as_bytes())
            .context("cannot write to stdout")?,
    }
    writeln!(
        err,
        "imported {} jail(s); {} note(s) above",
        imported.jails,
        imported.notes.len()
    )?;
    if let Some(db) = &args.state {
        let config: toml::Table = toml::from_str(&imported.toml).context("imported config")?;
        let jails: BTreeSet<String> = config
            .get("jails")
            .and_then(|j| j.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default();
        let mut store = log2drop::store::Store::open(&args.state_dir)
            .with_context(|| format!("cannot open {}", args.state_dir.display()))?;
        let r = log2drop::fail2ban::state::import_state(db, &mut store, &jails, SystemTime::now())
            .with_context(|| format!("cannot import bans from {}", db.display()))?;
        writeln!(
            err,
            "state: {} running ban(s) and {} ended ban(s) written to {}{}",
            r.active,
            r.history,
            store.path().display(),
            if r.skipped > 0 {
                format!("; {} row(s) without an address skipped", r.skipped)
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}
