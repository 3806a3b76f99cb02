//! fail2ban compatibility: its filter files run as log2drop filters, and its jail
//! configuration and ban database are imported.
//!
//! The pieces follow fail2ban's own layers: [`ini`] reads its configparser dialect
//! (includes, `.local`, interpolation), [`regex`] turns its tags and Python regex
//! syntax into our engines' syntax, [`date`] finds and cuts out line dates the way
//! its date detector does, and [`filter`] puts them together into a matcher.

pub mod date;
pub mod filter;
pub mod ini;
pub mod jail;
pub mod regex;
pub mod state;

pub use filter::{Definition, LineState, LoadError, Matcher, Verdict};

use std::collections::BTreeMap;
use std::path::Path;

/// Reads and compiles a fail2ban filter file with its options: what config
/// validation and the agent both call, so `check` reports what `run` would hit.
pub fn load(path: &Path, options: &BTreeMap<String, String>) -> Result<Matcher, LoadError> {
    Matcher::build(&Definition::read(path, options)?)
}

/// The fail2ban filter a `[filters.NAME]` table names, compiled, if it names one
/// (`fail2ban = FILE` or `fail2ban_inline = TEXT`).
pub fn load_config(cfg: &crate::config::FilterConfig) -> Option<Result<Matcher, LoadError>> {
    if let Some(file) = &cfg.fail2ban {
        return Some(load(file, &cfg.options));
    }
    let text = cfg.fail2ban_inline.as_deref()?;
    let name = Path::new("fail2ban_inline");
    Some(
        ini::Ini::from_text(name, text)
            .map_err(LoadError::from)
            .and_then(|ini| Definition::from_ini(name, &ini, &cfg.options))
            .and_then(|d| Matcher::build(&d)),
    )
}

/// A digest of the files a `fail2ban = FILE` filter reads (the file, its
/// includes and `.local`s; a file that cannot be read counts by its error), or
/// `None` for other filters. Two loads give the same digest exactly when the
/// filter would compile from the same text.
pub fn digest(cfg: &crate::config::FilterConfig) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let path = cfg.fail2ban.as_ref()?;
    // A fixed-key hasher: the digest is compared across reloads of one run.
    let mut h = std::hash::DefaultHasher::new();
    match ini::Ini::load(path) {
        Ok(ini) => {
            for file in &ini.files {
                file.hash(&mut h);
                match std::fs::read(file) {
                    Ok(bytes) => bytes.hash(&mut h),
                    Err(e) => e.kind().hash(&mut h),
                }
            }
        }
        Err(e) => e.to_string().hash(&mut h),
    }
    Some(h.finish())
}

/// Whether the table names a fail2ban filter.
pub fn is_fail2ban(cfg: &crate::config::FilterConfig) -> bool {
    cfg.fail2ban.is_some() || cfg.fail2ban_inline.is_some()
}
