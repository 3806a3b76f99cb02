//! nf_tables messages, built and parsed by libnftnl through the `nftnl` crate. The
//! crate's safe types cover chains, rules and their expressions; what it lacks (set
//! flags, element timeouts and interval ends, table user data, the message types
//! `DESTROY*`, parsing dumps) is done here on `nftnl-sys`, each raw object owned by
//! a small type that frees it on drop. Everything unsafe in the backend lives here
//! and in [`super::socket`].

use std::cell::Cell;
use std::ffi::{CStr, CString, c_void};
use std::os::raw::{c_char, c_int};
use std::ptr::NonNull;

use nftnl::expr::Expression;
use nftnl::nftnl_sys as sys;
use nftnl::{Batch, MsgType, NlMsg, ProtoFamily, Rule};

use super::segments::Family;
use super::socket::{NLM_F_DUMP, NLM_F_REQUEST};

/// `enum nf_tables_msg_types` values we send.
pub(crate) mod msg {
    pub(crate) const NEWTABLE: u16 = 0;
    pub(crate) const GETTABLE: u16 = 1;
    pub(crate) const DELTABLE: u16 = 2;
    pub(crate) const GETCHAIN: u16 = 4;
    pub(crate) const GETRULE: u16 = 7;
    pub(crate) const NEWSET: u16 = 9;
    pub(crate) const NEWSETELEM: u16 = 12;
    pub(crate) const GETSETELEM: u16 = 13;
    pub(crate) const DELSETELEM: u16 = 14;
    /// Linux 6.3+: delete if present, no error otherwise.
    pub(crate) const DESTROYSETELEM: u16 = 30;
}

const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
/// `NFT_SET_INTERVAL | NFT_SET_TIMEOUT`.
const SET_FLAGS: u32 = 0x4 | 0x10;
/// `NFT_SET_TIMEOUT`.
const SET_TIMEOUT: u32 = 0x10;
/// `NFT_SET_MAP`.
const SET_MAP: u32 = 0x8;
/// `NFT_DATA_VERDICT`: the map's values are verdicts.
const DATA_VERDICT: u32 = 0xffff_ff00;
/// `NFT_JUMP`.
const NFT_JUMP: i32 = -3;
/// `NFT_SET_ELEM_INTERVAL_END`.
pub(crate) const ELEM_INTERVAL_END: u32 = 0x1;
/// nft's data type ids for the set keys (`ipv4_addr`, `ipv6_addr`).
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_IPV6_ADDR: u32 = 8;
/// `NFTNL_UDATA_TABLE_COMMENT`: nft shows it as the table's comment.
const UDATA_TABLE_COMMENT: u8 = 0;
/// The comment that marks a table as created by log2drop.
pub(crate) const OWNER_COMMENT: &str = "managed by log2drop";

/// The two kinds of table the backend owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableFamily {
    /// `inet`, input hook.
    Inet,
    /// `netdev`, ingress hook.
    Netdev,
}

impl TableFamily {
    pub(crate) fn proto(self) -> ProtoFamily {
        match self {
            TableFamily::Inet => ProtoFamily::Inet,
            TableFamily::Netdev => ProtoFamily::NetDev,
        }
    }

    pub(crate) fn raw(self) -> u16 {
        self.proto() as u16
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TableFamily::Inet => "inet",
            TableFamily::Netdev => "netdev",
        }
    }

    pub(crate) fn other(self) -> TableFamily {
        match self {
            TableFamily::Inet => TableFamily::Netdev,
            TableFamily::Netdev => TableFamily::Inet,
        }
    }
}

/// How many hash sets (and chains) exact-address bans of one family are spread
/// over once there are many of them. The kernel lists a set's elements by walking it
/// from the start for every dump message, so reading one big set back costs time
/// quadratic in its size (a million addresses in one set: over a minute); spread
/// over 32 sets the restart's read-back is 32 times cheaper. The price is a map
/// lookup and a jump per packet, so a family holds its addresses in one set
/// ([`SINGLE`]) until it has more than the backend's threshold.
pub(crate) const SHARDS: u8 = 32;

/// The index of the one unsharded exact-address set of a family (`ban4_all`,
/// `ban6_all`), as `SetId::Exact(family, SINGLE)`: the shards are `0..SHARDS`.
pub(crate) const SINGLE: u8 = SHARDS;

/// Which of our sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SetId {
    /// `ban4`/`ban6`: prefixes (interval set).
    Prefixes(Family),
    /// `ban4_K`/`ban6_K`: single addresses whose low bits are K (hash set), or
    /// `ban4_all`/`ban6_all` for K = [`SINGLE`].
    Exact(Family, u8),
}

impl SetId {
    /// The exact-address set an address belongs to: its shard when the family is
    /// sharded, the single set otherwise.
    pub(crate) fn exact(family: Family, addr: u128, sharded: bool) -> SetId {
        if sharded {
            SetId::Exact(family, (addr % u128::from(SHARDS)) as u8)
        } else {
            SetId::Exact(family, SINGLE)
        }
    }

    pub(crate) fn family(self) -> Family {
        match self {
            SetId::Prefixes(f) | SetId::Exact(f, _) => f,
        }
    }

    /// Its name (also the name of an exact set's chain).
    pub(crate) fn name(self) -> CString {
        let text = match self {
            SetId::Prefixes(Family::V4) => "ban4".to_owned(),
            SetId::Prefixes(Family::V6) => "ban6".to_owned(),
            SetId::Exact(Family::V4, SINGLE) => "ban4_all".to_owned(),
            SetId::Exact(Family::V6, SINGLE) => "ban6_all".to_owned(),
            SetId::Exact(Family::V4, k) => format!("ban4_{k}"),
            SetId::Exact(Family::V6, k) => format!("ban6_{k}"),
        };
        CString::new(text).unwrap_or_default()
    }

    /// Every set of `family`.
    pub(crate) fn all(family: Family) -> impl Iterator<Item = SetId> {
        std::iter::once(SetId::Prefixes(family))
            .chain((0..=SINGLE).map(move |k| SetId::Exact(family, k)))
    }
}

/// The verdict map that sends a packet to the chain of its exact-address set.
pub(crate) fn shard_map_name(family: Family) -> &'static CStr {
    match family {
        Family::V4 => c"shard4",
        Family::V6 => c"shard6",
    }
}

/// Table user data: one nftnl udata TLV holding [`OWNER_COMMENT`], NUL-terminated.
pub(crate) fn owner_udata() -> Vec<u8> {
    let mut v = Vec::with_capacity(OWNER_COMMENT.len() + 3);
    v.push(UDATA_TABLE_COMMENT);
    v.push(u8::try_from(OWNER_COMMENT.len() + 1).unwrap_or(u8::MAX));
    v.extend_from_slice(OWNER_COMMENT.as_bytes());
    v.push(0);
    v
}

/// Whether table user data carries our comment.
pub(crate) fn udata_is_ours(mut data: &[u8]) -> bool {
    while let [kind, len, rest @ ..] = data {
        let len = usize::from(*len);
        let Some(value) = rest.get(..len) else {
            return false;
        };
        if *kind == UDATA_TABLE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return text == OWNER_COMMENT.as_bytes();
        }
        data = &rest[len..];
    }
    false
}

/// Writes the header of an nf_tables message into `buf` and returns it.
///
/// # Safety
/// `buf` must have room for `nftnl::nft_nlmsg_maxsize()` bytes.
unsafe fn header(
    buf: *mut c_void,
    kind: u16,
    family: u16,
    flags: u16,
    seq: u32,
) -> *mut sys::libc::nlmsghdr {
    // SAFETY: the caller guarantees the buffer size.
    unsafe { sys::nftnl_nlmsg_build_hdr(buf.cast::<c_char>(), kind, family, flags, seq) }
}

/// A table message (`NEWTABLE` with our mark, or `DELTABLE`).
pub(crate) struct TableMsg {
    table: NonNull<sys::nftnl_table>,
    family: u16,
    kind: u16,
}

impl TableMsg {
    /// Creates (or keeps) our table, marked with our comment.
    pub(crate) fn create(name: &CStr, family: TableFamily) -> TableMsg {
        let msg = Self::named(name, family, msg::NEWTABLE);
        let udata = owner_udata();
        // SAFETY: the table is live; libnftnl copies the data.
        unsafe {
            sys::nftnl_table_set_u32(msg.table.as_ptr(), sys::NFTNL_TABLE_FLAGS as u16, 0);
            sys::nftnl_table_set_data(
                msg.table.as_ptr(),
                sys::NFTNL_TABLE_USERDATA as u16,
                udata.as_ptr().cast(),
                u32::try_from(udata.len()).unwrap_or(0),
            );
        }
        msg
    }

    /// Deletes the table and everything in it.
    pub(crate) fn delete(name: &CStr, family: TableFamily) -> TableMsg {
        Self::named(name, family, msg::DELTABLE)
    }

    fn named(name: &CStr, family: TableFamily, kind: u16) -> TableMsg {
        // SAFETY: allocation is checked; strings are copied by libnftnl.
        unsafe {
            let table =
                NonNull::new(sys::nftnl_table_alloc()).unwrap_or_else(|| std::process::abort());
            sys::nftnl_table_set_u32(
                table.as_ptr(),
                sys::NFTNL_TABLE_FAMILY as u16,
                u32::from(family.raw()),
            );
            sys::nftnl_table_set_str(table.as_ptr(), sys::NFTNL_TABLE_NAME as u16, name.as_ptr());
            TableMsg {
                table,
                family: family.raw(),
                kind,
            }
        }
    }
}

// SAFETY: writes one table message, well under the maximum message size.
unsafe impl NlMsg for TableMsg {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _: MsgType) {
        let flags = if self.kind == msg::NEWTABLE {
            NLM_F_CREATE | NLM_F_ACK
        } else {
            NLM_F_ACK
        };
        // SAFETY: the batch hands us a buffer of the maximum message size.
        unsafe {
            let nlh = header(buf, self.kind, self.family, flags, seq);
            sys::nftnl_table_nlmsg_build_payload(nlh, self.table.as_ptr());
        }
    }
}

impl Drop for TableMsg {
    fn drop(&mut self) {
        // SAFETY: we own the table.
        unsafe { sys::nftnl_table_free(self.table.as_ptr()) };
    }
}

/// A raw `nftnl_set` naming one of our sets; carries elements to add or delete.
pub(crate) struct RawSet {
    set: NonNull<sys::nftnl_set>,
    family: u16,
    elements: usize,
}

impl RawSet {
    /// A handle on set `id` of `table`, to queue elements for it.
    pub(crate) fn new(table: &CStr, tfam: TableFamily, id: SetId) -> RawSet {
        Self::named(table, tfam, &id.name())
    }

    fn named(table: &CStr, tfam: TableFamily, name: &CStr) -> RawSet {
        // SAFETY: allocation is checked; strings are copied by libnftnl.
        unsafe {
            let set = NonNull::new(sys::nftnl_set_alloc()).unwrap_or_else(|| std::process::abort());
            let p = set.as_ptr();
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_FAMILY as u16, u32::from(tfam.raw()));
            sys::nftnl_set_set_str(p, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(p, sys::NFTNL_SET_NAME as u16, name.as_ptr());
            RawSet {
                set,
                family: tfam.raw(),
                elements: 0,
            }
        }
    }

    fn key_type(family: Family) -> u32 {
        match family {
            Family::V4 => TYPE_IPV4_ADDR,
            Family::V6 => TYPE_IPV6_ADDR,
        }
    }

    /// The definition of set `id`: prefixes get `flags interval, timeout`, exact
    /// addresses `flags timeout` (a hash set).
    pub(crate) fn definition(table: &CStr, tfam: TableFamily, id: SetId, set_id: u32) -> RawSet {
        let s = Self::new(table, tfam, id);
        let flags = match id {
            SetId::Prefixes(_) => SET_FLAGS,
            SetId::Exact(..) => SET_TIMEOUT,
        };
        // SAFETY: the set is live.
        unsafe {
            let p = s.set.as_ptr();
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_ID as u16, set_id);
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_FLAGS as u16, flags);
            sys::nftnl_set_set_u32(
                p,
                sys::NFTNL_SET_KEY_TYPE as u16,
                Self::key_type(id.family()),
            );
            sys::nftnl_set_set_u32(
                p,
                sys::NFTNL_SET_KEY_LEN as u16,
                id.family().key_len() as u32,
            );
        }
        s
    }

    /// The verdict map `shardN` (address & (SHARDS - 1) -> jump to that set's chain),
    /// with its elements queued.
    pub(crate) fn shard_map(
        table: &CStr,
        tfam: TableFamily,
        family: Family,
        set_id: u32,
    ) -> RawSet {
        let mut s = Self::named(table, tfam, shard_map_name(family));
        // SAFETY: the set is live.
        unsafe {
            let p = s.set.as_ptr();
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_ID as u16, set_id);
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_FLAGS as u16, SET_MAP);
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_KEY_TYPE as u16, Self::key_type(family));
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_KEY_LEN as u16, family.key_len() as u32);
            sys::nftnl_set_set_u32(p, sys::NFTNL_SET_DATA_TYPE as u16, DATA_VERDICT);
        }
        for k in 0..SHARDS {
            let chain = SetId::Exact(family, k).name();
            // SAFETY: as in push; libnftnl copies the chain name.
            unsafe {
                let e = NonNull::new(sys::nftnl_set_elem_alloc())
                    .unwrap_or_else(|| std::process::abort());
                let e = e.as_ptr();
                let key = family.key(u128::from(k));
                sys::nftnl_set_elem_set(
                    e,
                    sys::NFTNL_SET_ELEM_KEY as u16,
                    key.as_ptr().cast(),
                    u32::try_from(key.len()).unwrap_or(0),
                );
                sys::nftnl_set_elem_set_u32(e, sys::NFTNL_SET_ELEM_VERDICT as u16, NFT_JUMP as u32);
                sys::nftnl_set_elem_set_str(e, sys::NFTNL_SET_ELEM_CHAIN as u16, chain.as_ptr());
                sys::nftnl_set_elem_add(s.set.as_ptr(), e);
            }
            s.elements += 1;
        }
        s
    }

    /// Number of elements queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.elements
    }

    /// Queues one element: `key` (network order), `flags` (interval end) and the
    /// timeout in milliseconds (none: permanent).
    pub(crate) fn push(&mut self, key: &[u8], flags: u32, timeout_ms: Option<u64>) {
        // SAFETY: the element is allocated, filled (libnftnl copies the key) and then
        // owned by the set.
        unsafe {
            let e =
                NonNull::new(sys::nftnl_set_elem_alloc()).unwrap_or_else(|| std::process::abort());
            let e = e.as_ptr();
            sys::nftnl_set_elem_set(
                e,
                sys::NFTNL_SET_ELEM_KEY as u16,
                key.as_ptr().cast(),
                u32::try_from(key.len()).unwrap_or(0),
            );
            if flags != 0 {
                sys::nftnl_set_elem_set_u32(e, sys::NFTNL_SET_ELEM_FLAGS as u16, flags);
            }
            if let Some(ms) = timeout_ms {
                sys::nftnl_set_elem_set_u64(e, sys::NFTNL_SET_ELEM_TIMEOUT as u16, ms);
            }
            sys::nftnl_set_elem_add(self.set.as_ptr(), e);
        }
        self.elements += 1;
    }

    /// Adds the set definition (`NEWSET`) to `batch`.
    pub(crate) fn add_definition(&self, batch: &mut Batch) {
        batch.add(&SetDefMsg(self), MsgType::Add);
    }

    /// Adds messages carrying every queued element to `batch`, as `kind`
    /// (`NEWSETELEM`, `DELSETELEM` or `DESTROYSETELEM`).
    pub(crate) fn add_elements(&self, batch: &mut Batch, kind: u16) {
        if self.elements == 0 {
            return;
        }
        // SAFETY: the iterator walks our set's element list; destroyed below.
        let iter = unsafe { sys::nftnl_set_elems_iter_create(self.set.as_ptr()) };
        let Some(iter) = NonNull::new(iter) else {
            std::process::abort();
        };
        let more = Cell::new(true);
        let flags = if kind == msg::NEWSETELEM {
            NLM_F_CREATE
        } else {
            0
        };
        while more.get() {
            batch.add(
                &ElemsMsg {
                    iter: iter.as_ptr(),
                    family: self.family,
                    kind,
                    flags,
                    more: &more,
                },
                MsgType::Add,
            );
        }
        // SAFETY: created above, not used after.
        unsafe { sys::nftnl_set_elems_iter_destroy(iter.as_ptr()) };
    }
}

impl Drop for RawSet {
    fn drop(&mut self) {
        // SAFETY: we own the set and, through it, its elements.
        unsafe { sys::nftnl_set_free(self.set.as_ptr()) };
    }
}

struct SetDefMsg<'a>(&'a RawSet);

// SAFETY: a set definition is far below the maximum message size.
unsafe impl NlMsg for SetDefMsg<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _: MsgType) {
        // SAFETY: the batch hands us a buffer of the maximum message size.
        unsafe {
            let nlh = header(
                buf,
                msg::NEWSET,
                self.0.family,
                NLM_F_CREATE | NLM_F_ACK,
                seq,
            );
            sys::nftnl_set_nlmsg_build_payload(nlh, self.0.set.as_ptr());
        }
    }
}

/// One element message: libnftnl fills it with as many elements as fit in one
/// netlink attribute and says whether any are left.
struct ElemsMsg<'a> {
    iter: *mut sys::nftnl_set_elems_iter,
    family: u16,
    kind: u16,
    flags: u16,
    more: &'a Cell<bool>,
}

// SAFETY: libnftnl stops filling before the nested attribute (and so the message)
// exceeds the maximum size.
unsafe impl NlMsg for ElemsMsg<'_> {
    unsafe fn write(&self, buf: *mut c_void, seq: u32, _: MsgType) {
        // SAFETY: the batch hands us a buffer of the maximum message size; the iterator
        // is live for the message's lifetime.
        unsafe {
            let nlh = header(buf, self.kind, self.family, self.flags, seq);
            let ret = sys::nftnl_set_elems_nlmsg_build_payload_iter(nlh, self.iter);
            self.more.set(ret > 0);
        }
    }
}

/// `lookup` of register 1 in a set of the same table; with `verdict`, a map lookup
/// whose value is the verdict (a `vmap`).
pub(crate) struct LookupByName {
    pub set: CString,
    pub verdict: bool,
}

impl Expression for LookupByName {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: allocation is checked; libnftnl copies the name.
        unsafe {
            let e = NonNull::new(sys::nftnl_expr_alloc(c"lookup".as_ptr()))
                .unwrap_or_else(|| std::process::abort());
            sys::nftnl_expr_set_u32(
                e.as_ptr(),
                sys::NFTNL_EXPR_LOOKUP_SREG as u16,
                sys::libc::NFT_REG_1 as u32,
            );
            sys::nftnl_expr_set_str(
                e.as_ptr(),
                sys::NFTNL_EXPR_LOOKUP_SET as u16,
                self.set.as_ptr(),
            );
            if self.verdict {
                sys::nftnl_expr_set_u32(
                    e.as_ptr(),
                    sys::NFTNL_EXPR_LOOKUP_DREG as u16,
                    sys::libc::NFT_REG_VERDICT as u32,
                );
            }
            e
        }
    }
}

/// `reject with icmpx port-unreachable`: ICMP for IPv4, ICMPv6 for IPv6, in inet and
/// netdev tables alike.
pub(crate) struct RejectIcmpx;

impl Expression for RejectIcmpx {
    fn to_expr(&self, _rule: &Rule) -> NonNull<sys::nftnl_expr> {
        // SAFETY: allocation is checked.
        unsafe {
            let e = NonNull::new(sys::nftnl_expr_alloc(c"reject".as_ptr()))
                .unwrap_or_else(|| std::process::abort());
            sys::nftnl_expr_set_u32(
                e.as_ptr(),
                sys::NFTNL_EXPR_REJECT_TYPE as u16,
                sys::libc::NFT_REJECT_ICMPX_UNREACH as u32,
            );
            sys::nftnl_expr_set_u8(
                e.as_ptr(),
                sys::NFTNL_EXPR_REJECT_CODE as u16,
                sys::libc::NFT_REJECT_ICMPX_PORT_UNREACH as u8,
            );
            e
        }
    }
}

/// A dump request (`GET*` with `NLM_F_DUMP`) for `family`; `set` names the set for
/// element dumps.
pub(crate) fn dump_request(
    kind: u16,
    family: u16,
    table_and_set: Option<(&CStr, &CStr)>,
    seq: u32,
) -> Vec<u8> {
    let mut buf = vec![0u8; nftnl::nft_nlmsg_maxsize() as usize];
    // SAFETY: buf has the maximum message size; the set is freed below.
    unsafe {
        let nlh = header(
            buf.as_mut_ptr().cast(),
            kind,
            family,
            NLM_F_DUMP | NLM_F_REQUEST,
            seq,
        );
        if let Some((table, set)) = table_and_set {
            let s = sys::nftnl_set_alloc();
            if s.is_null() {
                std::process::abort();
            }
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_TABLE as u16, table.as_ptr());
            sys::nftnl_set_set_str(s, sys::NFTNL_SET_NAME as u16, set.as_ptr());
            sys::nftnl_set_elems_nlmsg_build_payload(nlh, s);
            sys::nftnl_set_free(s);
        }
        let len = (*nlh).nlmsg_len as usize;
        buf.truncate(len);
    }
    buf
}

/// A table as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableInfo {
    pub name: String,
    pub ours: bool,
}

/// Parses one `NEWTABLE` dump message.
pub(crate) fn parse_table(message: &[u8]) -> Option<TableInfo> {
    // SAFETY: message is a whole, length-checked netlink message; the table is freed.
    unsafe {
        let t = NonNull::new(sys::nftnl_table_alloc())?;
        let info = (|| {
            if sys::nftnl_table_nlmsg_parse(message.as_ptr().cast(), t.as_ptr()) < 0 {
                return None;
            }
            let name = cstr(sys::nftnl_table_get_str(
                t.as_ptr(),
                sys::NFTNL_TABLE_NAME as u16,
            ))?;
            let mut len = 0u32;
            let data =
                sys::nftnl_table_get_data(t.as_ptr(), sys::NFTNL_TABLE_USERDATA as u16, &mut len);
            let ours = !data.is_null()
                && udata_is_ours(std::slice::from_raw_parts(data.cast::<u8>(), len as usize));
            Some(TableInfo { name, ours })
        })();
        sys::nftnl_table_free(t.as_ptr());
        info
    }
}

/// Parses one `NEWCHAIN` dump message into (table, chain).
pub(crate) fn parse_chain(message: &[u8]) -> Option<(String, String)> {
    // SAFETY: as in parse_table.
    unsafe {
        let c = NonNull::new(sys::nftnl_chain_alloc())?;
        let out = (|| {
            if sys::nftnl_chain_nlmsg_parse(message.as_ptr().cast(), c.as_ptr()) < 0 {
                return None;
            }
            let table = cstr(sys::nftnl_chain_get_str(
                c.as_ptr(),
                sys::NFTNL_CHAIN_TABLE as u16,
            ))?;
            let name = cstr(sys::nftnl_chain_get_str(
                c.as_ptr(),
                sys::NFTNL_CHAIN_NAME as u16,
            ))?;
            Some((table, name))
        })();
        sys::nftnl_chain_free(c.as_ptr());
        out
    }
}

/// Parses one `NEWRULE` dump message: its table and the packets and bytes of every
/// `counter` expression in it.
pub(crate) fn parse_rule_counters(message: &[u8]) -> Option<(String, u64, u64)> {
    // SAFETY: as in parse_table; the expression iterator is destroyed before the rule.
    unsafe {
        let r = NonNull::new(sys::nftnl_rule_alloc())?;
        let out = (|| {
            if sys::nftnl_rule_nlmsg_parse(message.as_ptr().cast(), r.as_ptr()) < 0 {
                return None;
            }
            let table = cstr(sys::nftnl_rule_get_str(
                r.as_ptr(),
                sys::NFTNL_RULE_TABLE as u16,
            ))?;
            let it = sys::nftnl_expr_iter_create(r.as_ptr());
            if it.is_null() {
                return None;
            }
            let (mut packets, mut bytes) = (0u64, 0u64);
            let mut e = sys::nftnl_expr_iter_next(it);
            while !e.is_null() {
                let name = cstr(sys::nftnl_expr_get_str(e, sys::NFTNL_EXPR_NAME as u16));
                if name.as_deref() == Some("counter") {
                    packets += sys::nftnl_expr_get_u64(e, sys::NFTNL_EXPR_CTR_PACKETS as u16);
                    bytes += sys::nftnl_expr_get_u64(e, sys::NFTNL_EXPR_CTR_BYTES as u16);
                }
                e = sys::nftnl_expr_iter_next(it);
            }
            sys::nftnl_expr_iter_destroy(it);
            Some((table, packets, bytes))
        })();
        sys::nftnl_rule_free(r.as_ptr());
        out
    }
}

/// One set element as the kernel lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListedElem {
    /// The key as an address.
    pub addr: u128,
    /// Whether it closes an interval (`NFT_SET_ELEM_INTERVAL_END`).
    pub end: bool,
    /// Milliseconds left before the kernel drops it; none: permanent.
    pub expires_ms: Option<u64>,
}

struct ParseCtx {
    family: Family,
    out: Vec<ListedElem>,
    bad: bool,
}

unsafe extern "C" fn collect_elem(e: *mut sys::nftnl_set_elem, data: *mut c_void) -> c_int {
    // SAFETY: data is the ParseCtx passed by parse_elems; e is a live element.
    unsafe {
        let ctx = &mut *data.cast::<ParseCtx>();
        let mut len = 0u32;
        let key = sys::nftnl_set_elem_get(e, sys::NFTNL_SET_ELEM_KEY as u16, &mut len);
        if key.is_null() {
            ctx.bad = true;
            return 0;
        }
        let key = std::slice::from_raw_parts(key.cast::<u8>(), len as usize);
        let Some(addr) = ctx.family.addr(key) else {
            ctx.bad = true;
            return 0;
        };
        let flags = if sys::nftnl_set_elem_is_set(e, sys::NFTNL_SET_ELEM_FLAGS as u16) {
            sys::nftnl_set_elem_get_u32(e, sys::NFTNL_SET_ELEM_FLAGS as u16)
        } else {
            0
        };
        let has_timeout = sys::nftnl_set_elem_is_set(e, sys::NFTNL_SET_ELEM_TIMEOUT as u16);
        let expires_ms = if has_timeout {
            if sys::nftnl_set_elem_is_set(e, sys::NFTNL_SET_ELEM_EXPIRATION as u16) {
                Some(sys::nftnl_set_elem_get_u64(
                    e,
                    sys::NFTNL_SET_ELEM_EXPIRATION as u16,
                ))
            } else {
                Some(sys::nftnl_set_elem_get_u64(
                    e,
                    sys::NFTNL_SET_ELEM_TIMEOUT as u16,
                ))
            }
        } else {
            None
        };
        ctx.out.push(ListedElem {
            addr,
            end: flags & ELEM_INTERVAL_END != 0,
            expires_ms,
        });
        0
    }
}

/// Parses one `NEWSETELEM` dump message, appending its elements to `out`.
pub(crate) fn parse_elems(message: &[u8], family: Family, out: &mut Vec<ListedElem>) -> bool {
    let mut ctx = ParseCtx {
        family,
        out: std::mem::take(out),
        bad: false,
    };
    // SAFETY: message is a whole, length-checked netlink message; the set (and the
    // elements parsed into it) are freed before returning.
    let ok = unsafe {
        let s = sys::nftnl_set_alloc();
        if s.is_null() {
            std::process::abort();
        }
        let parsed = sys::nftnl_set_elems_nlmsg_parse(message.as_ptr().cast(), s) >= 0;
        if parsed {
            sys::nftnl_set_elem_foreach(s, Some(collect_elem), (&raw mut ctx).cast());
        }
        sys::nftnl_set_free(s);
        parsed
    };
    *out = ctx.out;
    ok && !ctx.bad
}

unsafe fn cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: libnftnl returns NUL-terminated strings it owns.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_mark_round_trips_and_others_are_not_ours() {
        assert!(udata_is_ours(&owner_udata()));
        let mut other = vec![UDATA_TABLE_COMMENT, 6];
        other.extend_from_slice(b"mine!\0");
        assert!(!udata_is_ours(&other));
        assert!(!udata_is_ours(&[]));
        assert!(
            !udata_is_ours(&[UDATA_TABLE_COMMENT, 200, 1, 2]),
            "truncated TLV"
        );
        // Another TLV first, then ours.
        let mut two = vec![7, 2, 0xaa, 0xbb];
        two.extend_from_slice(&owner_udata());
        assert!(udata_is_ours(&two));
    }

    /// Many elements are split over several messages, each within netlink's 64 KiB
    /// attribute limit, all inside one batch (begin and end included).
    #[test]
    fn many_elements_fill_several_messages_of_one_batch() {
        let mut set = RawSet::new(c"log2drop", TableFamily::Inet, SetId::Exact(Family::V6, 3));
        for i in 0..20_000u128 {
            set.push(&Family::V6.key(i), 0, Some(60_000));
        }
        assert_eq!(set.len(), 20_000);
        let mut batch = Batch::new();
        set.add_elements(&mut batch, msg::NEWSETELEM);
        let fin = batch.finalize();
        let bytes: Vec<u8> = fin.iter().flat_map(|p| p.iter().copied()).collect();
        let mut kinds = Vec::new();
        for m in super::super::socket::Messages::new(&bytes) {
            let m = m.expect("well formed");
            let whole = m.whole();
            assert!(
                whole.len() <= 65536 + 4096,
                "message of {} bytes",
                whole.len()
            );
            kinds.push(u16::from_ne_bytes([whole[4], whole[5]]));
        }
        let elems = kinds
            .iter()
            .filter(|k| **k & 0xff == msg::NEWSETELEM && **k >> 8 == 10)
            .count();
        assert!(elems > 5, "{elems} element messages for 20,000 elements");
        // NFNL_MSG_BATCH_BEGIN and _END frame them.
        assert_eq!(kinds.first(), Some(&0x10));
        assert_eq!(kinds.last(), Some(&0x11));
    }
}
