//! What to send: the differences between what the kernel sets hold and what they
//! should hold, as a list of element operations. Pure: no netlink, time injected.
//!
//! Prefix bans are compared as [`Segment`]s of the interval sets; single-address bans
//! as keys of the hash sets. An operation marked `joined` must travel in the same
//! transaction as the one before it (the removal and re-addition of an element whose
//! deadline changes), so the address is never unbanned in between.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::segments::{Family, Segment, Span, Until};
use super::wire::SetId;
use crate::backend::ReconcileReport;

/// Two deadlines closer than this are the same: the kernel counts in jiffies and
/// reports milliseconds left, read a little after we computed ours.
pub(crate) const TOLERANCE: Duration = Duration::from_secs(2);

/// One element operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Op {
    /// The set.
    pub set: SetId,
    /// Remove (true) or add.
    pub del: bool,
    /// The addresses (one address in an exact set).
    pub span: Span,
    /// Deadline of an addition.
    pub until: Until,
    /// Must share the previous operation's transaction.
    pub joined: bool,
}

/// Operations and what they amount to.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub ops: Vec<Op>,
    pub report: ReconcileReport,
}

impl Plan {
    fn del(&mut self, set: SetId, span: Span, until: Until) {
        self.ops.push(Op {
            set,
            del: true,
            span,
            until,
            joined: false,
        });
    }

    fn add(&mut self, set: SetId, span: Span, until: Until, joined: bool) {
        self.ops.push(Op {
            set,
            del: false,
            span,
            until,
            joined,
        });
    }

    /// Adds what turns `current` into `desired` in a prefix set (both sorted and
    /// disjoint).
    pub(crate) fn segments(&mut self, family: Family, current: &[Segment], desired: &[Segment]) {
        let set = SetId::Prefixes(family);
        let want: BTreeMap<Span, Until> = desired.iter().map(|s| (s.span, s.until)).collect();
        let have: BTreeMap<Span, Until> = current.iter().map(|s| (s.span, s.until)).collect();
        for seg in current {
            match want.get(&seg.span) {
                None => {
                    self.del(set, seg.span, seg.until);
                    self.report.removed += 1;
                }
                Some(u) if same_until(*u, seg.until) => self.report.kept += 1,
                Some(u) => {
                    self.del(set, seg.span, seg.until);
                    self.add(set, seg.span, *u, true);
                    self.report.updated += 1;
                }
            }
        }
        for seg in desired {
            if !have.contains_key(&seg.span) {
                self.add(set, seg.span, seg.until, false);
                self.report.added += 1;
            }
        }
    }

    /// Adds what turns the exact sets' listed contents into the wanted addresses.
    /// `listed` holds (address, set it was found in, deadline), `desired` (address,
    /// deadline); both sorted by address, `desired` without duplicates. A listed
    /// address in a set other than its own (put there by hand) is removed: no packet
    /// is ever looked up there. Sorted merging keeps a million-ban reconcile to one
    /// pass without hashing. `sharded` says which sets are the addresses' own; an
    /// address that moves is re-added in the transaction that removes it.
    pub(crate) fn exact_merge(
        &mut self,
        family: Family,
        listed: &[(u128, u8, Until)],
        desired: &[(u128, Until)],
        sharded: bool,
    ) {
        let one = |addr| Span {
            first: addr,
            last: addr,
        };
        let mut want = desired.iter().peekable();
        for &(addr, shard, until) in listed {
            let set = SetId::Exact(family, shard);
            while let Some(&&(w, wu)) = want.peek() {
                if w >= addr {
                    break;
                }
                let moved = self.just_removed(w);
                self.add(SetId::exact(family, w, sharded), one(w), wu, moved);
                self.report.added += 1;
                want.next();
            }
            let wanted = match want.peek() {
                Some(&&(w, wu)) if w == addr && SetId::exact(family, addr, sharded) == set => {
                    want.next();
                    Some(wu)
                }
                _ => None,
            };
            match wanted {
                None => {
                    self.del(set, one(addr), until);
                    self.report.removed += 1;
                }
                Some(u) if same_until(u, until) => self.report.kept += 1,
                Some(u) => {
                    self.del(set, one(addr), until);
                    self.add(set, one(addr), u, true);
                    self.report.updated += 1;
                }
            }
        }
        for &(w, wu) in want {
            let moved = self.just_removed(w);
            self.add(SetId::exact(family, w, sharded), one(w), wu, moved);
            self.report.added += 1;
        }
    }

    /// Whether the last operation removed the single address `addr` (from a set
    /// that is not its own): its re-addition must join that transaction.
    fn just_removed(&self, addr: u128) -> bool {
        self.ops
            .last()
            .is_some_and(|o| o.del && o.span.first == addr && o.span.last == addr)
    }

    /// One exact-address decision against what the kernel holds (`current`): add,
    /// rewrite the deadline, remove, or nothing.
    pub(crate) fn exact_change(
        &mut self,
        family: Family,
        addr: u128,
        current: Option<Until>,
        wanted: Option<Until>,
        sharded: bool,
    ) {
        let set = SetId::exact(family, addr, sharded);
        let one = Span {
            first: addr,
            last: addr,
        };
        match (current, wanted) {
            (None, None) => {}
            (None, Some(u)) => self.add(set, one, u, false),
            (Some(c), None) => self.del(set, one, c),
            (Some(c), Some(u)) if same_until(c, u) => {}
            (Some(c), Some(u)) => {
                self.del(set, one, c);
                self.add(set, one, u, true);
            }
        }
    }
}

/// Whether two deadlines are the same within [`TOLERANCE`].
pub(crate) fn same_until(a: Until, b: Until) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let d = a
                .duration_since(b)
                .or_else(|_| b.duration_since(a))
                .unwrap_or_default();
            d < TOLERANCE
        }
        _ => false,
    }
}

/// A listed element with its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listed {
    pub addr: u128,
    pub end: bool,
    pub until: Until,
}

/// Pairs the elements of an interval set into segments. Interval ends without a
/// start (the start expired, or nft's leading `0.0.0.0` end) are skipped; a start
/// without an end runs to the top of the address space.
pub(crate) fn intervals(mut elems: Vec<Listed>, family: Family) -> Vec<Segment> {
    // At one address an end sorts before a start: [a, b) then [b, c).
    elems.sort_unstable_by_key(|e| (e.addr, !e.end));
    let mut out = Vec::with_capacity(elems.len() / 2 + 1);
    let mut open: Option<Listed> = None;
    for e in elems {
        if e.end {
            if let Some(s) = open.take()
                && e.addr > s.addr
            {
                out.push(Segment {
                    span: Span {
                        first: s.addr,
                        last: e.addr - 1,
                    },
                    until: s.until,
                });
            }
        } else {
            if let Some(s) = open.take() {
                // Two starts in a row: the first cannot reach past the second.
                out.push(Segment {
                    span: Span {
                        first: s.addr,
                        last: e.addr.saturating_sub(1).max(s.addr),
                    },
                    until: s.until,
                });
            }
            open = Some(e);
        }
    }
    if let Some(s) = open {
        out.push(Segment {
            span: Span {
                first: s.addr,
                last: family.max(),
            },
            until: s.until,
        });
    }
    out
}

/// The timeout to give an element added at `sent_at`: `None` for permanent, and
/// `Err(())` when the deadline already passed (skip the element).
pub(crate) fn timeout_ms(until: Until, sent_at: SystemTime) -> Result<Option<u64>, ()> {
    match until {
        None => Ok(None),
        Some(u) => match u.duration_since(sent_at) {
            Ok(left) if !left.is_zero() => Ok(Some(
                u64::try_from(left.as_millis().max(1)).unwrap_or(u64::MAX),
            )),
            _ => Err(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::nftables::wire;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn seg(first: u128, last: u128, until: Until) -> Segment {
        Segment {
            span: Span { first, last },
            until,
        }
    }

    fn el(addr: u128, end: bool, until: Until) -> Listed {
        Listed { addr, end, until }
    }

    #[test]
    fn intervals_pair_starts_with_ends_and_skip_orphans() {
        let got = intervals(
            vec![
                el(0, true, None),  // nft's leading end
                el(20, true, None), // closes 10
                el(10, false, Some(t(105))),
                el(20, false, None), // adjacent interval [20, 30)
                el(30, true, None),
                el(50, true, None),   // orphan: its start expired
                el(100, false, None), // runs to the top
            ],
            Family::V4,
        );
        assert_eq!(
            got,
            vec![
                seg(10, 19, Some(t(105))),
                seg(20, 29, None),
                seg(100, u128::from(u32::MAX), None),
            ]
        );
    }

    #[test]
    fn segment_diff_keeps_updates_removes_and_adds() {
        let current = [
            seg(1, 1, Some(t(10))),
            seg(2, 2, Some(t(10))),
            seg(3, 3, None),
        ];
        let desired = [
            seg(1, 1, Some(t(11))),
            seg(2, 2, Some(t(50))),
            seg(4, 4, None),
        ];
        let mut plan = Plan::default();
        plan.segments(Family::V4, &current, &desired);
        assert_eq!(
            plan.report,
            ReconcileReport {
                added: 1,
                removed: 1,
                updated: 1,
                kept: 1
            }
        );
        let kinds: Vec<(bool, u128, bool)> = plan
            .ops
            .iter()
            .map(|o| (o.del, o.span.first, o.joined))
            .collect();
        assert_eq!(
            kinds,
            [
                (true, 2, false),
                (false, 2, true),
                (true, 3, false),
                (false, 4, false)
            ]
        );
    }

    #[test]
    fn exact_merge_removes_strays_and_misfiled_addresses() {
        // 7 and 39 belong in set 7 (39 % 32 == 7); 71 is a stranger; 8 sits in set 7
        // although it belongs in set 8; 9 is missing.
        let listed = [
            (7, 7, None),
            (8, 7, None),
            (39, 7, Some(t(10))),
            (71, 7, None),
        ];
        let desired = [(7, None), (8, None), (9, Some(t(60))), (39, Some(t(50)))];
        let mut plan = Plan::default();
        plan.exact_merge(Family::V4, &listed, &desired, true);
        assert_eq!(
            plan.report,
            ReconcileReport {
                added: 2,
                removed: 2,
                updated: 1,
                kept: 1
            }
        );
        let ops: Vec<(SetId, u128, bool)> = plan
            .ops
            .iter()
            .map(|o| (o.set, o.span.first, o.del))
            .collect();
        let v4 = |k| SetId::Exact(Family::V4, k);
        assert_eq!(
            ops,
            [
                (v4(7), 8, true),
                (v4(8), 8, false),
                (v4(9), 9, false),
                (v4(7), 39, true),
                (v4(7), 39, false),
                (v4(7), 71, true),
            ]
        );
    }

    proptest::proptest! {
        /// Applying the merge's operations to the listed contents yields exactly the
        /// desired addresses, each in its own set (a shard or the single set) with its
        /// deadline; an address that moves is re-added in the same transaction.
        #[test]
        fn exact_merge_reaches_the_desired_state(
            listed in proptest::collection::btree_map(0u128..200, (0u8..=32, proptest::option::of(1u64..4)), 0..40),
            desired in proptest::collection::btree_map(0u128..200, proptest::option::of(1u64..4), 0..40),
            sharded in proptest::bool::ANY,
        ) {
            let listed: Vec<(u128, u8, Until)> = listed.into_iter().map(|(a, (s, u))| (a, s, u.map(|u| t(u * 10)))).collect();
            let desired: Vec<(u128, Until)> = desired.into_iter().map(|(a, u)| (a, u.map(|u| t(u * 10)))).collect();
            let mut plan = Plan::default();
            plan.exact_merge(Family::V4, &listed, &desired, sharded);
            let mut state: std::collections::BTreeMap<(u8, u128), Until> = listed.iter().map(|&(a, s, u)| ((s, a), u)).collect();
            let kept: std::collections::BTreeSet<u128> = listed.iter().map(|&(a, _, _)| a).collect();
            for (i, op) in plan.ops.iter().enumerate() {
                let SetId::Exact(_, k) = op.set else { panic!("prefix op") };
                if !op.del && kept.contains(&op.span.first) && desired.iter().any(|&(a, _)| a == op.span.first) {
                    // Listed somewhere and wanted: a rewrite or a move, never a gap.
                    proptest::prop_assert!(op.joined, "op {} not joined: {:?}", i, plan.ops);
                }
                if op.del {
                    proptest::prop_assert!(state.remove(&(k, op.span.first)).is_some());
                } else {
                    proptest::prop_assert!(state.insert((k, op.span.first), op.until).is_none());
                }
            }
            let home = |a: u128| if sharded { (a % 32) as u8 } else { 32 };
            let want: std::collections::BTreeMap<(u8, u128), Until> = desired.iter().map(|&(a, u)| ((home(a), a), u)).collect();
            proptest::prop_assert_eq!(state, want);
        }
    }

    #[test]
    fn exact_change_covers_every_case() {
        let mut plan = Plan::default();
        plan.exact_change(Family::V6, 5, None, None, true);
        plan.exact_change(Family::V6, 5, Some(None), Some(None), true);
        assert!(plan.ops.is_empty());
        plan.exact_change(Family::V6, 5, None, Some(None), true);
        plan.exact_change(Family::V6, 6, Some(None), None, false);
        plan.exact_change(Family::V6, 7, Some(Some(t(1))), Some(Some(t(100))), true);
        let kinds: Vec<(bool, bool)> = plan.ops.iter().map(|o| (o.del, o.joined)).collect();
        assert_eq!(
            kinds,
            [(false, false), (true, false), (true, false), (false, true)]
        );
        let sets: Vec<SetId> = plan.ops.iter().map(|o| o.set).collect();
        assert_eq!(
            sets,
            [
                SetId::Exact(Family::V6, 5),
                SetId::Exact(Family::V6, wire::SINGLE),
                SetId::Exact(Family::V6, 7),
                SetId::Exact(Family::V6, 7)
            ]
        );
    }

    #[test]
    fn permanent_and_timed_are_never_the_same() {
        assert!(!same_until(None, Some(t(1))));
        assert!(same_until(Some(t(10)), Some(t(11))));
        assert!(!same_until(Some(t(10)), Some(t(13))));
    }

    #[test]
    fn timeouts_count_from_the_send_time() {
        assert_eq!(timeout_ms(None, t(5)), Ok(None));
        assert_eq!(timeout_ms(Some(t(10)), t(5)), Ok(Some(5000)));
        assert_eq!(timeout_ms(Some(t(5)), t(5)), Err(()));
        assert_eq!(timeout_ms(Some(t(4)), t(5)), Err(()));
    }
}
