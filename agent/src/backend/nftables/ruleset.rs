//! The table's fixed contents, created (or updated) in one transaction at open:
//!
//! ```text
//! table inet log2drop {                       # comment "managed by log2drop"
//!   set ban4 { type ipv4_addr; flags interval, timeout }   # prefix bans
//!   set ban4_all { type ipv4_addr; flags timeout }         # single addresses
//!   set ban4_0 .. ban4_31 { type ipv4_addr; flags timeout } # the same, sharded
//!   map shard4 { type ipv4_addr : verdict }   # 0.0.0.K : jump ban4_K
//!   chain input { type filter hook input priority -10
//!     meta nfproto ipv4 ip saddr @ban4_all drop        # Layout::Single, Both
//!     meta nfproto ipv4 ip saddr @ban4 drop
//!     meta nfproto ipv4 ip saddr & 0.0.0.31 vmap @shard4 }  # Sharded, Both
//!   chain ban4_K { ip saddr @ban4_K drop }
//!   (the same for IPv6)
//! }
//! ```
//!
//! Which rules the base chains hold follows where the single addresses live
//! ([`Layout`]): a packet from a banned address then costs one rule and one set
//! lookup, as with a plain set, until a family has so many addresses that they are
//! sharded (see [`super::wire::SHARDS`]).
//!
//! With `hook = "forward"` or `"prerouting"` the table is the same with the base
//! chain `forward` or `prerouting` on that hook instead of `input`.
//! With the ingress hook the table is `netdev`, there is one base chain per
//! interface, and `meta protocol` takes the place of `meta nfproto`. Sets and their
//! elements are never touched here (bans survive a restart); base chains are
//! deleted and recreated and the other chains' rules replaced, so a changed hook,
//! priority, action or counter applies, all within the one transaction.

use std::ffi::{CStr, CString};
use std::net::{Ipv4Addr, Ipv6Addr};

use nftnl::expr::Meta;
use nftnl::{Batch, Chain, ChainType, Hook, MsgType, Policy, Rule, Table, nft_expr};

use super::config::{NftAction, NftHook, NftablesConfig};
use super::segments::Family;
use super::wire::{
    self, LookupByName, RawSet, RejectIcmpx, SHARDS, SINGLE, SetId, TableFamily, TableMsg,
};

/// Name of the input-hook chain.
pub(crate) const INPUT_CHAIN: &str = "input";
/// Name of the forward-hook chain.
pub(crate) const FORWARD_CHAIN: &str = "forward";
/// Name of the prerouting-hook chain.
pub(crate) const PREROUTING_CHAIN: &str = "prerouting";

/// Name of the base chain of an `inet` table's hook (input, forward, prerouting).
pub(crate) fn inet_chain(hook: NftHook) -> &'static str {
    match hook {
        NftHook::Forward => FORWARD_CHAIN,
        NftHook::Prerouting => PREROUTING_CHAIN,
        NftHook::Input | NftHook::Ingress => INPUT_CHAIN,
    }
}

/// Name of the ingress chain of `interface`.
pub(crate) fn ingress_chain(interface: &str) -> String {
    format!("ingress-{interface}")
}

/// Whether a chain of our table is a base chain (recreated at open).
pub(crate) fn is_base_chain(name: &str) -> bool {
    name == INPUT_CHAIN
        || name == FORWARD_CHAIN
        || name == PREROUTING_CHAIN
        || name.starts_with("ingress-")
}

/// Which exact-address sets the base chains look in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `ban4_all`/`ban6_all` only: one lookup per packet.
    Single,
    /// The shards behind the verdict maps.
    Sharded,
    /// Both, while addresses move between them (and after open, until the
    /// reconcile has put them where they belong).
    Both,
}

impl Layout {
    /// The rules for addresses kept sharded or not.
    pub(crate) fn of(sharded: bool) -> Layout {
        if sharded {
            Layout::Sharded
        } else {
            Layout::Single
        }
    }
}

/// A base chain: its name and, for ingress, its device.
pub(crate) type Base = (CString, Option<CString>);

/// What the open transaction must know about the kernel's current state.
pub(crate) struct Existing {
    /// Our table exists in the other family (the hook changed): delete it.
    pub stale_other_family: bool,
    /// Chains our table already has.
    pub chains: Vec<String>,
}

/// Adds the whole open transaction to `batch`. `bases` are the base chains to
/// create: name and, for ingress, the device. Their rules look in both layouts
/// until [`replace_rules`] narrows them.
pub(crate) fn build(
    batch: &mut Batch,
    table: &CStr,
    tfam: TableFamily,
    cfg: &NftablesConfig,
    bases: &[Base],
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
            None => chain.set_hook(
                match cfg.hook {
                    NftHook::Forward => Hook::Forward,
                    NftHook::Prerouting => Hook::PreRouting,
                    NftHook::Input | NftHook::Ingress => Hook::In,
                },
                cfg.priority,
            ),
        }
        chain.set_type(ChainType::Filter);
        chain.set_policy(Policy::Accept);
        batch.add(&chain, MsgType::Add);
        base_rules(batch, &chain, tfam, cfg, Layout::Both);
    }
}

/// Replaces the rules of every base chain with those of `layout`, in `batch` (one
/// transaction: no packet sees a chain half rewritten).
pub(crate) fn replace_rules(
    batch: &mut Batch,
    table: &CStr,
    tfam: TableFamily,
    cfg: &NftablesConfig,
    bases: &[Base],
    layout: Layout,
) {
    let nft_table = Table::new(table, tfam.proto());
    for (name, _) in bases {
        let chain = Chain::new(name, &nft_table);
        // No handle: deletes every rule of the chain.
        batch.add(&Rule::new(&chain), MsgType::Del);
        base_rules(batch, &chain, tfam, cfg, layout);
    }
}

/// A base chain's rules: per family, the single-address set, the prefix set and the
/// dispatch to the shards, as `layout` asks.
fn base_rules(
    batch: &mut Batch,
    chain: &Chain<'_>,
    tfam: TableFamily,
    cfg: &NftablesConfig,
    layout: Layout,
) {
    for family in [Family::V4, Family::V6] {
        let lookup = |set: SetId| {
            let mut rule = Rule::new(chain);
            match_family(&mut rule, tfam, family);
            load_saddr(&mut rule, family);
            rule.add_expr(&LookupByName {
                set: set.name(),
                verdict: false,
            });
            verdict(&mut rule, cfg);
            rule
        };
        if layout != Layout::Sharded {
            batch.add(&lookup(SetId::Exact(family, SINGLE)), MsgType::Add);
        }
        batch.add(&lookup(SetId::Prefixes(family)), MsgType::Add);
        if layout == Layout::Single {
            continue;
        }
        let mut dispatch = Rule::new(chain);
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
