use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

use crate::server::{ServerUnavailable, find_binary, free_port, is_root, unavailable};

/// A Postgres server for tests: a throwaway one started in a temporary directory on a free
/// loopback port, or the one named by `XCORE_TEST_POSTGRES_URL`.
///
/// Each test takes its own database with [`database`](Self::database), so tests sharing one
/// server do not see each other's tables. A server this type started is stopped on drop.
#[derive(Debug)]
pub struct PostgresServer {
    base_url: String,
    owned: Option<Owned>,
}

#[derive(Debug)]
struct Owned {
    ctl: Ctl,
    _dir: TempDir,
}

/// How to start and stop an owned server.
#[derive(Debug, Clone)]
struct Ctl {
    pg_ctl: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    /// The `-o` options of `pg_ctl start` (port, socket directory), for a restart.
    options: String,
    log: PathBuf,
}

impl Ctl {
    fn pg_ctl(&self) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&self.pg_ctl);
            c
        } else {
            Command::new(&self.pg_ctl)
        }
    }

    fn start(&self) -> Result<(), String> {
        run(
            self.pg_ctl()
                .arg("-D")
                .arg(&self.data)
                .args(["-o", &self.options, "-w", "-t", "30", "-l"])
                .arg(&self.log)
                .arg("start"),
            "pg_ctl start",
        )
    }

    /// Stops the server at once, as a crash would (`-m immediate`).
    fn halt(&self) -> Result<(), String> {
        run(
            self.pg_ctl()
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "stop"]),
            "pg_ctl stop",
        )
    }
}

fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl PostgresServer {
    /// Uses `XCORE_TEST_POSTGRES_URL` if set, else starts a server (`initdb` + `pg_ctl`,
    /// through `runuser -u postgres` when running as root).
    ///
    /// # Panics
    ///
    /// If no server can be had and `XCORE_REQUIRE_SERVERS=1` is set.
    pub async fn start() -> Result<Self, ServerUnavailable> {
        if let Ok(url) = std::env::var("XCORE_TEST_POSTGRES_URL") {
            return Ok(Self {
                base_url: url.trim_end_matches('/').to_owned(),
                owned: None,
            });
        }
        match tokio::task::spawn_blocking(Self::start_owned).await {
            Ok(Ok(server)) => Ok(server),
            Ok(Err(why)) => unavailable(why),
            Err(join) => unavailable(format!("starting Postgres panicked: {join}")),
        }
    }

    fn start_owned() -> Result<Self, String> {
        let dirs = postgres_bin_dirs();
        let (Some(initdb), Some(pg_ctl)) =
            (find_binary("initdb", &dirs), find_binary("pg_ctl", &dirs))
        else {
            return Err(
                "Postgres is not installed (no initdb/pg_ctl; apt-get install postgresql)".into(),
            );
        };
        let dir = tempfile::Builder::new()
            .prefix("xcore-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres")
                    .arg(dir.path()),
                "chown",
            )?;
        }
        let cmd = |program: &PathBuf| {
            if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            } else {
                Command::new(program)
            }
        };
        run(
            cmd(&initdb).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        )?;
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -F -c max_connections=200",
            dir.path().display()
        );
        let owned = Owned {
            ctl: Ctl {
                pg_ctl,
                data,
                as_postgres,
                options,
                log: dir.path().join("log"),
            },
            _dir: dir,
        };
        owned.ctl.start()?;
        Ok(Self {
            base_url: format!("postgres://postgres@127.0.0.1:{port}"),
            owned: Some(owned),
        })
    }

    /// Starts a throwaway server of its own, whatever `XCORE_TEST_POSTGRES_URL` says: for a
    /// test that stops and restarts the server ([`halt`](Self::halt),
    /// [`restart`](Self::restart)), which must never touch a shared one.
    ///
    /// # Panics
    ///
    /// If no server can be started and `XCORE_REQUIRE_SERVERS=1` is set.
    pub async fn start_own() -> Result<Self, ServerUnavailable> {
        match tokio::task::spawn_blocking(Self::start_owned).await {
            Ok(Ok(server)) => Ok(server),
            Ok(Err(why)) => unavailable(why),
            Err(join) => unavailable(format!("starting Postgres panicked: {join}")),
        }
    }

    /// Stops a server this value started, at once, as a crash or an outage would, keeping
    /// its data for [`restart`](Self::restart). An error for a server it did not start.
    pub async fn halt(&self) -> Result<(), ServerUnavailable> {
        self.on_owned("halt", Ctl::halt).await
    }

    /// Starts again, on the same port with the same data, a server [`halt`](Self::halt)
    /// stopped. An error for a server this value did not start.
    pub async fn restart(&self) -> Result<(), ServerUnavailable> {
        self.on_owned("restart", Ctl::start).await
    }

    async fn on_owned(
        &self,
        what: &str,
        act: fn(&Ctl) -> Result<(), String>,
    ) -> Result<(), ServerUnavailable> {
        let Some(owned) = &self.owned else {
            return Err(ServerUnavailable(format!(
                "cannot {what} a server this value did not start (use `PostgresServer::start_own`)"
            )));
        };
        let ctl = owned.ctl.clone();
        tokio::task::spawn_blocking(move || act(&ctl))
            .await
            .map_err(|e| ServerUnavailable(e.to_string()))?
            .map_err(ServerUnavailable)
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("{}/postgres", self.base_url)
    }

    /// Creates a fresh, uniquely named database and returns its URL.
    pub async fn database(&self) -> Result<String, ServerUnavailable> {
        let name = format!("xcore_test_{:016x}", fastrand_u64());
        let url = self.url();
        let psql = find_binary("psql", &postgres_bin_dirs())
            .ok_or_else(|| ServerUnavailable("psql is not installed".into()))?;
        let create = format!("CREATE DATABASE {name}");
        tokio::task::spawn_blocking(move || {
            run(
                Command::new(psql).arg(&url).args(["-qc", &create]),
                "CREATE DATABASE",
            )
        })
        .await
        .map_err(|e| ServerUnavailable(e.to_string()))?
        .map_err(ServerUnavailable)?;
        Ok(format!("{}/{name}", self.base_url))
    }

    /// Whether this value started the server (and so can stop it).
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Stops a server this value started (immediately, as a crash would).
    pub fn stop(&mut self) {
        if let Some(owned) = self.owned.take() {
            let _ = owned.ctl.halt();
            // Give the postmaster a moment to release the directory before it is removed.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
