//! [`RedisServer`]: a throwaway Redis server for a test.

use std::{
    fmt,
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use tempfile::TempDir;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::server::{ServerUnavailable, find_binary, free_port, unavailable};

/// The variable naming an existing server to use instead of starting one.
const REDIS_URL_VAR: &str = "XCORE_TEST_REDIS_URL";

/// How long a started server has to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server for one test: a `redis-server` process (`--save '' --appendonly no`) on a
/// free loopback port, in a temporary directory, killed (and the directory removed) on drop.
///
/// - [`start`](Self::start) uses the server named by `XCORE_TEST_REDIS_URL` if set (it is
///   then shared: give each test its own key prefix), else starts one.
/// - [`start_local`](Self::start_local) always starts one, so that the test can
///   [`stop`](Self::stop) it and [`restart`](Self::restart) it on the same port.
/// - If no server can be had (`redis-server` missing, say): with `XCORE_REQUIRE_SERVERS=1`
///   both **panic** (a test must fail in CI, not skip); otherwise they print why and return
///   [`ServerUnavailable`], and the test returns early (a skip).
///
/// `redis-server` is looked for in `XCORE_REDIS_SERVER`, then on `PATH`, then in `/usr/bin`,
/// `/usr/local/bin` and `/usr/sbin`.
///
/// ```no_run
/// use xcore_testkit::RedisServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let Ok(redis) = RedisServer::start_local().await else { return };
/// println!("Redis at {}", redis.url());
/// redis.stop().unwrap();
/// redis.restart().await.unwrap();
/// # }
/// ```
pub struct RedisServer {
    url: String,
    local: Option<Local>,
}

struct Local {
    bin: PathBuf,
    /// Appends every write to a file, synced before the reply (`--appendonly yes
    /// --appendfsync always`), so that a restart keeps every acknowledged write.
    durable: bool,
    dir: TempDir,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url)
            .field("external", &self.local.is_none())
            .finish()
    }
}

impl RedisServer {
    /// The server of `XCORE_TEST_REDIS_URL` if set, else a new local one.
    ///
    /// # Panics
    ///
    /// If no server can be had and `XCORE_REQUIRE_SERVERS=1` is set.
    pub async fn start() -> Result<Self, ServerUnavailable> {
        match std::env::var(REDIS_URL_VAR) {
            Ok(url) if !url.is_empty() => Ok(Self { url, local: None }),
            _ => Self::start_local().await,
        }
    }

    /// A new local server, whatever `XCORE_TEST_REDIS_URL` says.
    ///
    /// # Panics
    ///
    /// If no server can be had and `XCORE_REQUIRE_SERVERS=1` is set.
    pub async fn start_local() -> Result<Self, ServerUnavailable> {
        match Self::try_start_local(false).await {
            Ok(server) => Ok(server),
            Err(why) => unavailable(why),
        }
    }

    /// A new local server that keeps its data across [`stop`](Self::stop) and
    /// [`restart`](Self::restart): every write is appended to a file and synced before the
    /// server replies (`--appendonly yes --appendfsync always`), so a write it acknowledged
    /// survives the kill.
    ///
    /// # Panics
    ///
    /// If no server can be had and `XCORE_REQUIRE_SERVERS=1` is set.
    pub async fn start_local_durable() -> Result<Self, ServerUnavailable> {
        match Self::try_start_local(true).await {
            Ok(server) => Ok(server),
            Err(why) => unavailable(why),
        }
    }

    async fn try_start_local(durable: bool) -> Result<Self, String> {
        let bin = redis_binary().ok_or_else(|| {
            "redis-server is not installed (looked in XCORE_REDIS_SERVER, PATH, /usr/bin, \
             /usr/local/bin, /usr/sbin); install it (Debian: apt-get install redis-server) or set \
             XCORE_TEST_REDIS_URL"
                .to_owned()
        })?;
        let mut last = String::new();
        // A port found free can be taken by another process before the server binds it.
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("xcore-redis-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let port = free_port().map_err(|e| format!("no free loopback port: {e}"))?;
            let local = Local {
                bin: bin.clone(),
                durable,
                dir,
                port,
                child: Mutex::new(None),
            };
            match local.spawn_and_wait().await {
                Ok(()) => {
                    return Ok(Self {
                        url: format!("redis://127.0.0.1:{port}/0"),
                        local: Some(local),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(format!("redis-server did not start: {last}"))
    }

    /// The server's URL (`redis://127.0.0.1:<port>/0` for a local one).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the server comes from `XCORE_TEST_REDIS_URL` (then it cannot be stopped).
    pub fn is_external(&self) -> bool {
        self.local.is_none()
    }

    fn local(&self) -> Result<&Local, ServerUnavailable> {
        self.local.as_ref().ok_or_else(|| {
            ServerUnavailable(format!(
                "the Redis server comes from {REDIS_URL_VAR}: a test cannot stop or restart it \
                 (use RedisServer::start_local)"
            ))
        })
    }

    /// Kills the server, as a crash would; [`restart`](Self::restart) brings it back.
    pub fn stop(&self) -> Result<(), ServerUnavailable> {
        self.local()?.kill();
        Ok(())
    }

    /// Starts the server again on the same port (empty, unless it was started
    /// [durable](Self::start_local_durable)) and waits until it answers `PING`.
    pub async fn restart(&self) -> Result<(), ServerUnavailable> {
        let local = self.local()?;
        local.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match local.spawn_and_wait().await {
                Ok(()) => return Ok(()),
                // The port may linger for a moment after the kill.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => {
                    return Err(ServerUnavailable(format!(
                        "redis-server did not restart: {e}"
                    )));
                }
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(local) = &self.local {
            local.kill();
        }
    }
}

impl Local {
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn kill(&self) {
        let child = self.child.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn spawn_and_wait(&self) -> Result<(), String> {
        let log = File::create(self.log_path())
            .map_err(|e| format!("cannot create the log file: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot open the log file: {e}"))?;
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(if self.durable {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let own_pid = self
            .child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(std::process::Child::id);
        loop {
            if ping(self.port).await {
                // Another test's server may have taken the port between the check that it
                // was free and this one's bind: only our own process counts.
                return match server_pid(self.port).await {
                    Some(pid) if Some(pid) == own_pid => Ok(()),
                    other => {
                        self.kill();
                        Err(self.failure(&format!(
                            "the port answers for another server (process {other:?}, ours \
                             {own_pid:?})"
                        )))
                    }
                };
            }
            let exited = self
                .child
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.kill();
                return Err(self.failure(&format!("it exited ({status})")));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(self.failure(&format!("no PONG within {START_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn failure(&self, what: &str) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        format!(
            "port {}: {what}; its log ends with:\n{}",
            self.port,
            tail.join("\n")
        )
    }
}

fn redis_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("XCORE_REDIS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let extra = ["/usr/bin", "/usr/local/bin", "/usr/sbin"].map(|d| Path::new(d).to_path_buf());
    find_binary("redis-server", &extra)
}

/// Whether a Redis answers `PING` on the loopback port.
/// The process id of the server answering on `port` (`INFO server`).
async fn server_pid(port: u16) -> Option<u32> {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"INFO server\r\n").await.ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        // A bulk string: `$<len>\r\n<text>\r\n`; read until the pid line is in.
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&reply);
            // The pid line once it is whole (ended by CRLF).
            if let Some(at) = text.find("process_id:") {
                let rest = &text[at + "process_id:".len()..];
                if let Some(end) = rest.find("\r\n") {
                    return rest[..end].trim().parse().ok();
                }
            }
            if reply.len() > 64 * 1024 {
                return None;
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
}

async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        stream.read_exact(&mut buf).await.ok()?;
        (&buf == b"+PONG\r\n").then_some(())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), attempt).await,
        Ok(Some(()))
    )
}
