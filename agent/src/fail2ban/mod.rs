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
pub mod regex;

pub use filter::{Definition, LineState, LoadError, Matcher, Verdict, parse_reference};

use std::collections::BTreeMap;
use std::path::Path;

/// Reads and compiles a fail2ban filter file with its options: what config
/// validation and the agent both call, so `check` reports what `run` would hit.
pub fn load(path: &Path, options: &BTreeMap<String, String>) -> Result<Matcher, LoadError> {
    Matcher::build(&Definition::read(path, options)?)
}
