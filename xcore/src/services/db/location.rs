//! Where a database lives and how its pools open it: the SQLite file or in-memory database
//! of each tenant, the Postgres schema of each tenant.
//!
//! Both maps are injective: two distinct tenant ids never share a file, an in-memory
//! database or a schema.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::TenantId;

/// Postgres' longest identifier, in bytes: longer names are silently truncated by the server.
const PG_MAX_IDENT: usize = 63;

/// The Postgres schema of a tenant, unquoted.
///
/// `tenant_<id>` while it fits in 63 bytes (ids of up to 56 characters); longer ids become
/// `tenant_<first 35 characters>~<80-bit hash of the whole id>`. `~` cannot appear in a tenant
/// id, so a hashed name never equals a plain one, and two long ids share a schema only if
/// their SHA-256 digests share 80 bits.
pub(crate) fn tenant_schema_name(tenant: &TenantId) -> String {
    let id = tenant.as_str();
    let plain = format!("tenant_{id}");
    if plain.len() <= PG_MAX_IDENT {
        return plain;
    }
    let digest = Sha256::digest(id.as_bytes());
    let hash: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("tenant_{}~{hash}", &id[..35]);
    debug_assert!(name.len() <= PG_MAX_IDENT);
    name
}

/// The Postgres schema of a tenant, quoted for SQL (the name holds no quote).
pub(crate) fn tenant_schema(tenant: &TenantId) -> String {
    format!("\"{}\"", tenant_schema_name(tenant))
}

/// A SQLite database: a file, or an in-memory database of this process.
///
/// In-memory databases use SQLite's `memdb` VFS under a random name, so every connection of
/// the process opened on that name shares one database, and the database lives as long as one
/// connection is open on it: xcore keeps one open (see `Keeper`) for the life of the service,
/// whatever happens to pooled connections (a request cancelled mid-query closes its
/// connection). Unlike shared-cache in-memory databases, `memdb` locks like a file, so a
/// writer waits for another (busy timeout) instead of failing with `database is deadlocked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqliteLocation {
    /// The file path, or the memdb name (it starts with `/`).
    path: String,
    memory: bool,
}

impl SqliteLocation {
    /// Parses `sqlite::memory:`, `sqlite://:memory:`, `sqlite:…?mode=memory`, `sqlite:path` or
    /// `sqlite://path` (query parameters other than `mode` and `cache` are refused: xcore sets
    /// them itself).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| "expected `sqlite:…`".to_owned())?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut memory = path == ":memory:" || path.is_empty();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("mode", "memory") => memory = true,
                ("mode", "ro" | "rw" | "rwc") | ("cache", "shared" | "private") => {}
                (key, _) => {
                    return Err(format!(
                        "unsupported parameter `{key}`: xcore opens SQLite databases itself \
                         (read-write pools with `mode=rwc`, read-only pools with `mode=ro`)"
                    ));
                }
            }
        }
        if memory {
            return Ok(Self {
                path: format!(
                    "/xcore-mem-{:016x}{:016x}",
                    fastrand::u64(..),
                    fastrand::u64(..)
                ),
                memory: true,
            });
        }
        let path = path.strip_prefix("file:").unwrap_or(path);
        if path.is_empty() {
            return Err("no file path".to_owned());
        }
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        Ok(Self {
            path: path.to_owned(),
            memory: false,
        })
    }

    /// Whether this is an in-memory database.
    pub(crate) fn is_memory(&self) -> bool {
        self.memory
    }

    /// The URL of read-write connections (creating the database if missing).
    pub(crate) fn rw_url(&self) -> String {
        self.url("rwc")
    }

    /// The URL of read-only connections: SQLite opens them with `SQLITE_OPEN_READONLY`, so no
    /// statement (not even `PRAGMA query_only = 0`) can make them write.
    pub(crate) fn ro_url(&self) -> String {
        self.url("ro")
    }

    fn url(&self, mode: &str) -> String {
        if self.memory {
            format!("sqlite:{}?vfs=memdb&mode={mode}", self.path)
        } else {
            format!("sqlite:{}?mode={mode}", self.path)
        }
    }

    /// The database of `tenant`, beside this one: `app.tenant-<id>.db` for `app.db`, a memdb
    /// name with `-tenant-<id>` appended in memory. Tenant ids are validated (a-z, 0-9, `_`,
    /// `-`; at most 63 characters), so each id maps to its own name.
    pub(crate) fn for_tenant(&self, tenant: &TenantId) -> Self {
        let id = tenant.as_str();
        let path = if self.memory {
            format!("{}-tenant-{id}", self.path)
        } else {
            let file = Path::new(&self.path);
            match (file.file_stem(), file.extension()) {
                (Some(stem), Some(ext)) => file
                    .with_file_name(format!(
                        "{}.tenant-{id}.{}",
                        stem.to_string_lossy(),
                        ext.to_string_lossy()
                    ))
                    .to_string_lossy()
                    .into_owned(),
                _ => format!("{}-tenant-{id}", self.path),
            }
        };
        Self {
            path,
            memory: self.memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str) -> TenantId {
        TenantId::new(id).unwrap()
    }

    #[test]
    fn schemas_fit_and_never_collide() {
        assert_eq!(tenant_schema_name(&t("acme")), "tenant_acme");
        let a = format!("{}{}", "a".repeat(56), "1111");
        let b = format!("{}{}", "a".repeat(56), "2222");
        let (sa, sb) = (tenant_schema_name(&t(&a)), tenant_schema_name(&t(&b)));
        assert_ne!(sa, sb);
        assert!(sa.len() <= 63 && sb.len() <= 63, "{sa} {sb}");
        let longest = "z".repeat(63);
        assert!(tenant_schema_name(&t(&longest)).len() <= 63);
        // 56 characters still fit as they are.
        let fits = "b".repeat(56);
        assert_eq!(tenant_schema_name(&t(&fits)), format!("tenant_{fits}"));
        // A plain id can never spell a hashed name: `~` is not a tenant-id character.
        assert!(TenantId::new(&sa["tenant_".len()..]).is_err());
    }

    #[test]
    fn sqlite_locations() {
        let mem = SqliteLocation::parse("sqlite::memory:").unwrap();
        assert!(mem.is_memory());
        assert!(mem.rw_url().contains("vfs=memdb&mode=rwc"));
        assert!(mem.ro_url().ends_with("mode=ro"));
        assert_ne!(mem, SqliteLocation::parse("sqlite::memory:").unwrap());
        let acme = mem.for_tenant(&t("acme"));
        assert!(acme.is_memory() && acme.path.ends_with("-tenant-acme"));

        let dir = std::env::temp_dir().join(format!("xcore-loc-{}", fastrand::u64(..)));
        let url = format!("sqlite://{}/app.db", dir.display());
        let file = SqliteLocation::parse(&url).unwrap();
        assert!(!file.is_memory());
        assert_eq!(
            file.for_tenant(&t("acme")).path,
            format!("{}/app.tenant-acme.db", dir.display())
        );
        assert!(SqliteLocation::parse("sqlite:x.db?vfs=unix").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
