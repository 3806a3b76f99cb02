//! The table's fixed contents, created (or updated) in one transaction at open:
//!
//! ```text
//! table inet log2drop {                       # comment "managed by log2drop"
//!   set ban4 { type ipv4_addr; flags interval, timeout }   # prefix bans
//!   set ban4_0 .. ban4_31 { type ipv4_addr; flags timeout } # single addresses
//!   map shard4 { type ipv4_addr : verdict }   # 0.0.0.K : jump ban4_K
//!   chain input { type filter hook input priority -10
//!     meta nfproto ipv4 ip saddr @ban4 drop
//!     meta nfproto ipv4 ip saddr & 0.0.0.31 vmap @shard4 }
//!   chain ban4_K { ip saddr @ban4_K drop }
//!   (the same for IPv6)
//! }
//! ```
//!
//! With the ingress hook the table is `netdev`, there is one base chain per
//! interface, and `meta protocol` takes the place of `meta nfproto`. Sets and their
//! elements are never touched here (bans survive a restart); base chains are
//! deleted and recreated and the other chains' rules replaced, so a changed hook,
//! priority, action or counter applies, all within the one transaction.

use std::ffi::{CStr, CString};
use std::net::{Ipv4Addr, Ipv6Addr};

use nftnl::expr::Meta;
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, Rule, Table, nft_expr};

use super::segments::Family;
use super::wire::{self, LookupByName, RawSet, RejectIcmpx, SHARDS, SetId, TableFamily, TableMsg};
use crate::config::{NftAction, NftablesConfig};

/// Name of the input-hook chain.
pub(crate) const INPUT_CHAIN: &str = "input";

/// Name of the ingress chain of `interface`.
pub(crate) fn ingress_chain(interface: &str) -> String {
    format!("ingress-{interface}")
}

/// Whether a chain of our table is a base chain (recreated at open).
pub(crate) fn is_base_chain(name: &str) -> bool {
    name == INPUT_CHAIN || name.starts_with("ingress-")
}

/// What the open transaction must know about the kernel's current state.
pub(crate) struct Existing {
    /// Our table exists in the other family (the hook changed): delete it.
    pub stale_other_family: bool,
    /// Chains our table already has.
    pub chains: Vec<String>,
}

/// Adds the whole open transaction to `batch`. `bases` are the base chains to
/// create: name and, for ingress, the device.
pub(crate) fn build(
    batch: &mut Batch,
    table: &CStr,
    tfam: TableFamily,
    cfg: &NftablesConfig,
    bases: &[(CString, Option<CString>)],
    existing: &Existing,
) {
    if existing.stale_other_family {
        batch.add(&TableMsg::delete(table, tfam.other()), MsgType::Add);
    }
    batch.add(&TableMsg::create(table, tfam), MsgType::Add);
    let mut id = 1;
    for family in [Family::V4, Family::V6] {
        for set in SetId::all(family) {
            RawSet::definition(table, tfam, set, id).add_definition(batch);
            id += 1;
        }
    }
    let nft_table = Table::new(table, tfam.proto());
    for name in &existing.chains {
        let Ok(cname) = CString::new(name.as_str()) else {
            continue;
        };
        let chain = Chain::new(&cname, &nft_table);
        // No handle: deletes every rule of the chain.
        batch.add(&Rule::new(&chain), MsgType::Del);
        if is_base_chain(name) {
            batch.add(&chain, MsgType::Del);
        }
    }
    for family in [Family::V4, Family::V6] {
        for k in 0..SHARDS {
            let set = SetId::Exact(family, k);
            let name = set.name();
            let chain = Chain::new(&name, &nft_table);
            batch.add(&chain, MsgType::Add);
            let mut rule = Rule::new(&chain);
            load_saddr(&mut rule, family);
            rule.add_expr(&LookupByName {
                set: name.clone(),
                verdict: false,
            });
            verdict(&mut rule, cfg);
            batch.add(&rule, MsgType::Add);
        }
        let map = RawSet::shard_map(table, tfam, family, id);
        id += 1;
        map.add_definition(batch);
        map.add_elements(batch, wire::msg::NEWSETELEM);
    }
    for (name, dev) in bases {
        let mut chain = Chain::new(name, &nft_table);
        match dev {
            // NF_NETDEV_INGRESS is hook 0, the value nftnl names PreRouting.
            Some(dev) => {
                chain.set_hook(Hook::PreRouting, cfg.priority);
                chain.set_device(dev);
            }
            None => chain.set_hook(Hook::In, cfg.priority),
        }
        chain.set_type(ChainType::Filter);
        chain.set_policy(Policy::Accept);
        batch.add(&chain, MsgType::Add);
        for family in [Family::V4, Family::V6] {
            let mut prefixes = Rule::new(&chain);
            match_family(&mut prefixes, tfam, family);
            load_saddr(&mut prefixes, family);
            prefixes.add_expr(&LookupByName {
                set: SetId::Prefixes(family).name(),
                verdict: false,
            });
            verdict(&mut prefixes, cfg);
            batch.add(&prefixes, MsgType::Add);

            let mut dispatch = Rule::new(&chain);
            match_family(&mut dispatch, tfam, family);
            load_saddr(&mut dispatch, family);
            let low = u128::from(SHARDS - 1);
            match family {
                Family::V4 => dispatch.add_expr(&nft_expr!(
                    bitwise mask Ipv4Addr::from(u32::try_from(low).unwrap_or(0)),
                    xor Ipv4Addr::UNSPECIFIED
                )),
                Family::V6 => dispatch.add_expr(&nft_expr!(
                    bitwise mask Ipv6Addr::from(low),
                    xor Ipv6Addr::UNSPECIFIED
                )),
            }
            dispatch.add_expr(&LookupByName {
                set: wire::shard_map_name(family).to_owned(),
                verdict: true,
            });
            batch.add(&dispatch, MsgType::Add);
        }
    }
}

/// `meta nfproto ipvN` (inet) or `meta protocol ip/ip6` (netdev).
fn match_family(rule: &mut Rule<'_>, tfam: TableFamily, family: Family) {
    match (tfam, family) {
        (TableFamily::Inet, Family::V4) => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV4 as u8));
        }
        (TableFamily::Inet, Family::V6) => {
            rule.add_expr(&nft_expr!(meta nfproto));
            rule.add_expr(&nft_expr!(cmp == libc::NFPROTO_IPV6 as u8));
        }
        (TableFamily::Netdev, Family::V4) => {
            rule.add_expr(&Meta::Protocol);
            rule.add_expr(&nft_expr!(cmp == &[0x08u8, 0x00][..]));
        }
        (TableFamily::Netdev, Family::V6) => {
            rule.add_expr(&Meta::Protocol);
            rule.add_expr(&nft_expr!(cmp == &[0x86u8, 0xdd][..]));
        }
    }
}

fn load_saddr(rule: &mut Rule<'_>, family: Family) {
    match family {
        Family::V4 => rule.add_expr(&nft_expr!(payload ipv4 saddr)),
        Family::V6 => rule.add_expr(&nft_expr!(payload ipv6 saddr)),
    }
}

/// `[counter] drop|reject`.
fn verdict(rule: &mut Rule<'_>, cfg: &NftablesConfig) {
    if cfg.counter {
        rule.add_expr(&nft_expr!(counter));
    }
    match cfg.action {
        NftAction::Drop => rule.add_expr(&nft_expr!(verdict drop)),
        NftAction::Reject => rule.add_expr(&RejectIcmpx),
    }
}
