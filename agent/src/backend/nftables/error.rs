//! Errors of the nftables backend. The three a user meets first (no nf_tables in the
//! kernel, no CAP_NET_ADMIN, a table of the same name that is not ours) get their own
//! variants with the fix in the message; the rest name the table, set or step that
//! failed and carry the kernel's errno.

use std::io;

/// Errors of the nftables backend.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The kernel has no nf_tables (module missing or not built).
    #[error(
        "the kernel has no nf_tables support (load the nf_tables module, or use the xdp backend)"
    )]
    NoNfTables {
        /// The errno that said so.
        #[source]
        source: io::Error,
    },

    /// The kernel refused for lack of privilege.
    #[error("not permitted to {action}: the nftables backend needs CAP_NET_ADMIN (run as root)")]
    NotPermitted {
        /// What was being done.
        action: String,
    },

    /// A table of the configured name exists and log2drop did not create it.
    #[error(
        "table {family} {table} exists and was not created by log2drop; refusing to take it over \
         (choose another [backends.nftables] table name, or delete that table)"
    )]
    NotOurTable {
        /// `inet` or `netdev`.
        family: &'static str,
        /// The table name.
        table: String,
    },

    /// A configured interface does not exist (ingress hook).
    #[error("interface `{interface}` does not exist")]
    UnknownInterface {
        /// The configured name.
        interface: String,
        /// Why the lookup failed.
        #[source]
        source: nix::Error,
    },

    /// A name contains a NUL byte (config validation prevents it).
    #[error("{what} name {name:?} contains a NUL byte")]
    BadName {
        /// `table` or `interface`.
        what: &'static str,
        /// The name.
        name: String,
    },

    /// A netlink socket operation failed.
    #[error("netlink socket: cannot {action}")]
    Socket {
        /// What was being done.
        action: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// The kernel refused a transaction.
    #[error("nftables refused to {action} in table {family} {table}")]
    Transaction {
        /// What the transaction did.
        action: String,
        /// `inet` or `netdev`.
        family: &'static str,
        /// The table.
        table: String,
        /// The kernel's errno (and message, when it sent one).
        #[source]
        source: io::Error,
    },

    /// Reading something back from the kernel failed.
    #[error("cannot list {what} of table {family} {table}")]
    Dump {
        /// What was listed.
        what: &'static str,
        /// `inet` or `netdev`.
        family: &'static str,
        /// The table.
        table: String,
        /// The errno.
        #[source]
        source: io::Error,
    },

    /// A netlink reply could not be parsed.
    #[error("malformed netlink reply while {action}")]
    Malformed {
        /// What was being read.
        action: &'static str,
    },
}
