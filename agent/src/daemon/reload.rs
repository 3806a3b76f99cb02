//! What a reload has to rebuild: the difference between the running config and the
//! new one, per component (Vector's `ConfigDiff` habit). Pure, so every rule is a
//! unit test:
//!
//! - a source is rebuilt when its own settings or any filter it runs changed (its
//!   matcher must be recompiled), a fail2ban filter file it reads included;
//!   otherwise its thread keeps running untouched;
//! - a jail is rebuilt (counts offences afresh) when anything that decides a ban
//!   changed; its notification hooks and backend list do not count, so changing
//!   only those keeps its counters;
//! - a backend is reopened when its table changed (how, the backend decides:
//!   [`crate::backend::BackendConfig::change_to`]);
//! - settings that cannot change while running (state directory, socket, socket
//!   group) are noted as taking effect after a restart.

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::BackendsConfig;
use crate::backend::kind::Step;
use crate::config::{Config, JailConfig};
use crate::control::protocol::Changes;

/// What differs between two configs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConfigDiff {
    /// Sources.
    pub sources: Changes,
    /// Jails.
    pub jails: Changes,
    /// Backends.
    pub backends: Changes,
    /// Settings that need a restart.
    pub notes: Vec<String>,
}

impl ConfigDiff {
    /// Compares the running config `old` with `new`.
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        // A reference may carry options (`sshd[mode=aggressive]`): the table is
        // the name's. A fail2ban filter's table holds the digest of its files,
        // so an edited filter file is a changed filter; built-in filters are
        // part of the binary and never change on a reload.
        let filter_changed = |reference: &str| {
            let name = crate::filter::parse_reference_options(reference)
                .map_or(reference, |(name, _)| name);
            old.filters.get(name) != new.filters.get(name)
        };
        let sources = compare(&old.sources, &new.sources, |a, b| {
            a != b || b.filters.iter().any(|f| filter_changed(f))
        });
        let jails = compare(&old.jails, &new.jails, |a, b| {
            deciding_part(a) != deciding_part(b)
        });
        let mut notes = Vec::new();
        let (a, b) = (&old.agent, &new.agent);
        if a.state_dir != b.state_dir {
            notes.push("agent.state_dir changed: takes effect after a restart".to_owned());
        }
        if a.socket != b.socket {
            notes.push("agent.socket changed: takes effect after a restart".to_owned());
        }
        if a.socket_group != b.socket_group {
            notes.push("agent.socket_group changed: takes effect after a restart".to_owned());
        }
        if old.metrics != new.metrics {
            notes.push("[metrics] changed: takes effect after a restart".to_owned());
        }
        if !a.allow_own_addresses && b.allow_own_addresses {
            notes.push(
                "agent.allow_own_addresses turned on: the host's addresses are read from the next start"
                    .to_owned(),
            );
        }
        ConfigDiff {
            sources,
            jails,
            backends: backend_changes(&old.backends, &new.backends),
            notes,
        }
    }

    /// Names of the jails whose offence windows carry over.
    pub(crate) fn kept_jails(&self) -> BTreeSet<String> {
        self.jails.kept.iter().cloned().collect()
    }
}

/// Per backend: added, removed, changed (its table differs) or kept.
pub(crate) fn backend_changes(old: &BackendsConfig, new: &BackendsConfig) -> Changes {
    let mut out = Changes::default();
    for (kind, step) in old.steps(new) {
        let list = match step {
            Step::Add => &mut out.added,
            Step::Remove => &mut out.removed,
            Step::Keep => &mut out.kept,
            Step::Reopen | Step::Replace | Step::Restart => &mut out.changed,
        };
        list.push(kind.name().to_owned());
    }
    out
}

/// A jail's settings that decide bans: everything but its hooks and backends.
fn deciding_part(j: &JailConfig) -> JailConfig {
    let mut j = j.clone();
    j.notify = None;
    j.backends.clear();
    j
}

fn compare<T>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
    changed: impl Fn(&T, &T) -> bool,
) -> Changes {
    let mut out = Changes::default();
    for (name, a) in old {
        match new.get(name) {
            None => out.removed.push(name.clone()),
            Some(b) if changed(a, b) => out.changed.push(name.clone()),
            Some(_) => out.kept.push(name.clone()),
        }
    }
    out.added = new
        .keys()
        .filter(|n| !old.contains_key(*n))
        .cloned()
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[agent]
state_dir = "/var/lib/log2drop"
[filters.f]
regex = ['f <HOST>$']
[filters.g]
regex = ['g <HOST>$']
[sources.a]
path = "/var/log/a.log"
filters = ["f"]
[sources.b]
path = "/var/log/b.log"
filters = ["g"]
[jails.one]
filters = ["f"]
maxretry = 3
[jails.two]
filters = ["g"]
maxretry = 3
"#;

    /// Plain config data: a diff needs no validation (so these configs need no
    /// backend; how backends move is the backends' own test, in `backend::kind`).
    fn cfg(text: &str) -> Config {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn edited(from: &str, to: &str) -> Config {
        assert!(BASE.contains(from), "BASE lacks {from:?}");
        cfg(&BASE.replacen(from, to, 1))
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn identical_configs_keep_everything() {
        let d = ConfigDiff::between(&cfg(BASE), &cfg(BASE));
        assert_eq!(d.sources.kept, names(&["a", "b"]));
        assert_eq!(d.jails.kept, names(&["one", "two"]));
        assert!(d.sources.changed.is_empty() && d.jails.changed.is_empty());
        assert!(d.notes.is_empty());
    }

    #[test]
    fn a_changed_filter_rebuilds_the_sources_running_it_only() {
        let d = ConfigDiff::between(
            &cfg(BASE),
            &edited("regex = ['g <HOST>$']", "regex = ['G <HOST>$']"),
        );
        assert_eq!(d.sources.changed, names(&["b"]));
        assert_eq!(d.sources.kept, names(&["a"]));
        // The jails' own settings did not change: their counters stay.
        assert_eq!(d.jails.kept, names(&["one", "two"]));
    }

    #[test]
    fn jail_changes_that_decide_bans_rebuild_it_hooks_and_backends_do_not() {
        let d = ConfigDiff::between(
            &cfg(BASE),
            &edited("maxretry = 3\n[jails.two]", "maxretry = 4\n[jails.two]"),
        );
        assert_eq!(d.jails.changed, names(&["one"]));
        assert_eq!(d.jails.kept, names(&["two"]));
        let d = ConfigDiff::between(
            &cfg(BASE),
            &edited(
                "filters = [\"g\"]\nmaxretry = 3",
                "filters = [\"g\"]\nmaxretry = 3\nbackends = [\"b\"]\nnotify = { exec = [\"/bin/true\"] }",
            ),
        );
        assert_eq!(d.jails.kept, names(&["one", "two"]));
    }

    #[test]
    fn added_and_removed_components_are_listed() {
        let new = cfg(&BASE.replacen(
            "[jails.two]\nfilters = [\"g\"]\nmaxretry = 3\n",
            "[jails.three]\nfilters = [\"g\"]\n",
            1,
        ));
        let d = ConfigDiff::between(&cfg(BASE), &new);
        assert_eq!(d.jails.removed, names(&["two"]));
        assert_eq!(d.jails.added, names(&["three"]));
    }

    #[test]
    fn restart_only_settings_are_noted() {
        let d = ConfigDiff::between(
            &cfg(BASE),
            &edited(
                "state_dir = \"/var/lib/log2drop\"",
                "state_dir = \"/srv/l2d\"\nsocket_group = \"adm\"",
            ),
        );
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert!(d.notes[0].contains("agent.state_dir"));
        assert!(d.notes[1].contains("agent.socket_group"));
        let metrics = format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:9641\"\n");
        let d = ConfigDiff::between(&cfg(BASE), &cfg(&metrics));
        assert_eq!(d.notes, ["[metrics] changed: takes effect after a restart"]);
    }

    #[test]
    fn an_edited_fail2ban_file_changes_its_filter_and_a_mode_reference_is_its_name() {
        let old = edited(
            "[filters.g]\nregex = ['g <HOST>$']",
            "[filters.g]\nfail2ban = \"/x/g.conf\"",
        );
        let mut new = old.clone();
        old_digest(&mut new, 1);
        let mut old = old;
        old_digest(&mut old, 2);
        let d = ConfigDiff::between(&old, &new);
        assert_eq!(d.sources.changed, names(&["b"]));
        assert_eq!(d.sources.kept, names(&["a"]));
        // The same digest: nothing to rebuild.
        let d = ConfigDiff::between(&new, &new.clone());
        assert!(d.sources.changed.is_empty());
        // `g[mode=x]` runs filter g: its edit rebuilds the source too.
        let mut with_mode = new.clone();
        with_mode.sources.get_mut("b").expect("b").filters = vec!["g[mode=aggressive]".into()];
        let mut edited_mode = with_mode.clone();
        old_digest(&mut edited_mode, 3);
        let d = ConfigDiff::between(&with_mode, &edited_mode);
        assert_eq!(d.sources.changed, names(&["b"]));
    }

    fn old_digest(c: &mut Config, d: u64) {
        c.filters.get_mut("g").expect("g").fail2ban_digest = Some(d);
    }
}
