//! `[backends.dry-run]`: the dry-run backend's (empty) settings. An empty table
//! still enables the backend, and `deny_unknown_fields` refuses keys meant for
//! another backend.

use serde::Deserialize;

/// `[backends.dry-run]`: no settings yet.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunConfig {}
