//! The `dry-run` backend: logs what would be enforced and enforces nothing, for
//! trying a config on a production host before trusting it.

pub mod config;

use std::time::SystemTime;

use ipnet::IpNet;

use self::config::DryRunConfig;
use super::{Backend, BackendConfig, BackendError, DropCounts, ReconcileReport};
use crate::config::locate::KeyPath;
use crate::engine::{Ban, Decision};

/// No kernel state: opening and flushing cannot fail.
impl BackendConfig for DryRunConfig {
    fn check(&self, _at: &KeyPath) -> Vec<(KeyPath, String)> {
        Vec::new()
    }

    fn open(&self) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(DryRun))
    }

    fn flush(&self) -> Result<usize, BackendError> {
        Ok(0)
    }
}

/// Logs decisions through `tracing`.
#[derive(Debug, Default)]
pub struct DryRun;

impl Backend for DryRun {
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
