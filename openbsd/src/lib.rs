//! The PF table client for OpenBSD: it will speak the `DIOCR*` ioctls on `/dev/pf`
//! itself, because the `pfctl` crate supports only macOS and has no table ioctls.
//! The crate compiles on every platform so the workspace builds anywhere; the ioctls
//! will run only on OpenBSD. This crate is empty until the OpenBSD PF backend lands;
//! nothing in the agent uses it yet.
