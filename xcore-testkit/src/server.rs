//! What the throwaway servers share: ports, binaries, and the "required in CI" switch.

use std::{
    fmt,
    net::TcpListener,
    path::{Path, PathBuf},
};

/// A server a test needs is not available here (its binary is missing, say).
#[derive(Debug, Clone)]
pub struct ServerUnavailable(pub String);

impl fmt::Display for ServerUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerUnavailable {}

/// Whether the environment requires real servers (`XCORE_REQUIRE_SERVERS=1`, as CI sets):
/// then a missing server fails the test instead of skipping it.
pub fn require_servers() -> bool {
    std::env::var("XCORE_REQUIRE_SERVERS").is_ok_and(|v| v == "1" || v == "true")
}

/// Turns "unavailable" into a panic when servers are required, or into `None` (after printing
/// why the test skips) when they are not.
pub(crate) fn unavailable<T>(why: String) -> Result<T, ServerUnavailable> {
    if require_servers() {
        panic!("{why} (XCORE_REQUIRE_SERVERS is set: real servers are required)");
    }
    eprintln!("skipping: {why}");
    Err(ServerUnavailable(why))
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Finds an executable on `PATH` or in the given extra directories.
pub(crate) fn find_binary(name: &str, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra_dirs.iter().cloned())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Whether this process runs as root (Postgres refuses to).
pub(crate) fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
