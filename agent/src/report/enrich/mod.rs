//! What a report adds to the addresses it counts: prefix ban suggestions,
//! reverse DNS names and GeoIP (ASN, country).

pub mod geoip;
pub mod resolve;
pub mod suggest;
