//! The `dry-run` backend: logs what would be enforced and enforces nothing, for
//! trying a config on a production host before trusting it.

use std::time::SystemTime;

use ipnet::IpNet;

use super::{Backend, BackendError, DropCounts, ReconcileReport};
use crate::engine::{Ban, Decision};

/// Logs decisions through `tracing`.
#[derive(Debug, Default)]
pub struct DryRun;

impl Backend for DryRun {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn apply(&mut self, batch: &[Decision], _now: SystemTime) -> Result<(), BackendError> {
        for d in batch {
            match d {
                Decision::Ban(b) => {
                    tracing::info!(target = %b.target, jail = %b.jail, "dry-run: would ban")
                }
                Decision::Unban(b) => {
                    tracing::info!(target = %b.target, jail = %b.jail, "dry-run: would unban")
                }
            }
        }
        Ok(())
    }

    fn reconcile(
        &mut self,
        active: &[Ban],
        _now: SystemTime,
    ) -> Result<ReconcileReport, BackendError> {
        Ok(ReconcileReport {
            kept: active.len(),
            ..Default::default()
        })
    }

    fn gc(&mut self, _now: SystemTime) -> Result<usize, BackendError> {
        Ok(0)
    }

    fn counters(&self) -> Result<Vec<(IpNet, DropCounts)>, BackendError> {
        Ok(Vec::new())
    }
}
