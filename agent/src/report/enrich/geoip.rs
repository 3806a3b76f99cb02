//! `--geoip FILE.mmdb`: autonomous system and country of banned addresses, from
//! MaxMind DB files (GeoLite2-ASN / -Country / -City, DB-IP lite ASN and
//! country), read with the `maxminddb` crate. Several files may be given (the
//! free databases split ASN and country): each lookup asks them in order and
//! takes the first answer.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Reader, geoip2};

use super::super::views::GeoLookup;

/// A database that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the GeoIP database {path}: {source}")]
pub struct GeoError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: maxminddb::MaxMindDbError,
}

/// The opened databases.
pub struct GeoDb {
    readers: Vec<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field("databases", &self.readers.len())
            .finish()
    }
}

impl GeoDb {
    /// Opens every file.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<GeoDb, GeoError> {
        let readers = paths
            .iter()
            .map(|p| {
                Reader::open_readfile(p.as_ref()).map_err(|source| GeoError {
                    path: p.as_ref().to_owned(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(GeoDb { readers })
    }
}

impl GeoLookup for GeoDb {
    fn asn(&self, addr: IpAddr) -> Option<(u32, String)> {
        self.readers.iter().find_map(|r| {
            let found = r.lookup(addr).ok()?;
            let asn: geoip2::Asn<'_> = found.decode().ok()??;
            Some((
                asn.autonomous_system_number?,
                asn.autonomous_system_organization.unwrap_or("").to_owned(),
            ))
        })
    }

    fn country(&self, addr: IpAddr) -> Option<(String, String)> {
        self.readers.iter().find_map(|r| {
            let found = r.lookup(addr).ok()?;
            let c: geoip2::Country<'_> = found.decode().ok()??;
            let code = c.country.iso_code?;
            Some((
                code.to_owned(),
                c.country.names.english.unwrap_or(code).to_owned(),
            ))
        })
    }
}
