//! Test support for running `avb-server` processes against real PostgreSQL and Redis:
//!
//! - [`Database`]: a fresh database on the machine's shared PostgreSQL (dropped at the end);
//! - [`RedisPrefix`]: a unique key prefix on the machine's shared Redis (its keys deleted at the end);
//! - [`PrivatePostgres`] / [`PrivateRedis`]: instances of our own on free ports, which a fault test may stop
//!   and restart without disturbing other tests that use the shared ones;
//! - [`Replica`]: the freshly built `avb-server` binary on a free port, killed at the end.
//!
//! Everything is cleaned up on drop, including when a test fails.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The machine's shared PostgreSQL (trust auth).
pub const SHARED_PG_HOST: &str = "127.0.0.1";
/// Its port.
pub const SHARED_PG_PORT: u16 = 5432;
/// The machine's shared Redis.
pub const SHARED_REDIS_URL: &str = "redis://127.0.0.1:6379/0";
/// The secret every replica of one test shares, so a token minted by one is valid on all.
pub const JWT_SECRET: &str = "scale-out-test-secret-0123456789abcdef";

/// A port free right now on 127.0.0.1 (the OS picks it; the listener is closed before returning).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A short unique name (`{prefix}_{12 hex}`), valid as a SQL identifier and a Redis key segment.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} exited with {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn psql(host: &str, port: u16, sql: &str) -> Result<String, String> {
    run(Command::new("psql")
        .args([
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]))
}

/// Runs `sql` in `database` on the shared PostgreSQL as the superuser; the rows as `|`-separated lines.
pub fn query(database: &str, sql: &str) -> String {
    run(Command::new("psql")
        .args([
            "-h",
            SHARED_PG_HOST,
            "-p",
            &SHARED_PG_PORT.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql]))
    .expect("psql")
}

/// Runs a command on the shared Redis with `redis-cli`; its output.
pub fn redis_cli(args: &[&str]) -> String {
    run(Command::new("redis-cli")
        .args(["-u", SHARED_REDIS_URL])
        .args(args))
    .expect("redis-cli")
}

/// A fresh database on the shared PostgreSQL, dropped (connections and all) on drop.
#[derive(Debug)]
pub struct Database {
    /// Its name.
    pub name: String,
}

impl Database {
    /// Creates `avbt_<unique>`.
    pub fn create() -> Self {
        let name = unique("avbt");
        psql(SHARED_PG_HOST, SHARED_PG_PORT, &format!("CREATE DATABASE {name}"))
            .expect("create a test database on the shared PostgreSQL (127.0.0.1:5432)");
        Self { name }
    }

    /// `postgres://postgres@127.0.0.1:5432/<name>`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@{SHARED_PG_HOST}:{SHARED_PG_PORT}/{}",
            self.name
        )
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(err) = psql(SHARED_PG_HOST, SHARED_PG_PORT, &sql) {
            eprintln!("could not drop test database {}: {err}", self.name);
        }
    }
}

/// A unique key prefix on the shared Redis; its keys are deleted on drop.
#[derive(Debug)]
pub struct RedisPrefix {
    /// The prefix (`AVB_REDIS_KEY_PREFIX`).
    pub prefix: String,
}

impl RedisPrefix {
    /// A new prefix.
    pub fn new() -> Self {
        Self {
            prefix: unique("avbt"),
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let script = "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) n = n + 1 end return n";
        let pattern = format!("{}:*", self.prefix);
        if let Err(err) =
            run(Command::new("redis-cli").args(["-u", SHARED_REDIS_URL, "EVAL", script, "0", &pattern]))
        {
            eprintln!("could not delete test keys {pattern}: {err}");
        }
    }
}

/// A Redis server of our own (no persistence) on a free port; [`PrivateRedis::stop`] and
/// [`PrivateRedis::start`] simulate an outage. Killed on drop.
#[derive(Debug)]
pub struct PrivateRedis {
    /// Its port.
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts it and waits until it answers `PING`.
    pub fn launch() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.start();
        redis
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// (Re)starts the server on the same port.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "PING"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"));
            if matches!(pong, Ok(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "private redis did not answer PING");
            // The launchers are synchronous (they also run from `Drop`); a short blocking wait is fine in tests.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (an outage: connections drop, nothing is persisted).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True when this process runs as root (initdb and postgres then run as the `postgres` user).
fn is_root() -> bool {
    run(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// The PostgreSQL binaries directory (`AVB_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`).
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("AVB_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (or set AVB_PG_BIN)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// A PostgreSQL cluster of our own (trust auth, user `postgres`, fsync off) in a temporary directory on a free
/// port; [`PrivatePostgres::stop`] and [`PrivatePostgres::start`] simulate an outage. Removed on drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    running: bool,
}

impl PrivatePostgres {
    fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// `initdb` and start; waits until it accepts connections.
    pub fn launch() -> Self {
        let dir = std::env::temp_dir().join(unique("avb-pg"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut pg = Self {
            port: free_port(),
            dir,
            running: false,
        };
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir))
            .expect("chown the cluster directory to postgres");
        }
        let initdb = pg_bin().join("initdb");
        run(pg.as_owner(&initdb).arg("-D").arg(pg.dir.join("data")).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ]))
        .expect("initdb");
        pg.start();
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster (again) on the same port and waits for it.
    pub fn start(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
            self.port,
            self.dir.display()
        );
        run(self
            .as_owner(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "start"]))
        .expect("pg_ctl start");
        self.running = true;
    }

    /// Stops the cluster at once (`-m fast`: sessions are terminated, like a database failover).
    pub fn stop(&mut self) {
        if self.running {
            let _ = run(self
                .as_owner(&pg_bin().join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "-t", "60", "stop"]));
            self.running = false;
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `avb-server` process on a free port; killed (SIGKILL) on drop.
#[derive(Debug)]
pub struct Replica {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: tokio::process::Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    /// Starts the binary with exactly `env` (plus host, port and a quiet log level) and waits until `/health`
    /// answers. The environment is cleared first, so the test machine's variables cannot leak in.
    pub async fn start(env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_avb-server"));
        cmd.env_clear()
            .env("AVB_HOST", "127.0.0.1")
            .env("AVB_PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn avb-server");
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    output.lock().unwrap().push(line);
                }
            });
        }
        let mut replica = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            output,
        };
        replica.wait_until_up().await;
        replica
    }

    async fn wait_until_up(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "avb-server exited with {status} before serving:\n{}",
                    self.output()
                );
            }
            if let Ok(resp) = client.get(format!("{}/health", self.base)).send().await
                && resp.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "avb-server did not answer /health within 90 s:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything the process printed so far (stdout and stderr, interleaved by line).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// The value after `label` on the bootstrap banner (`"api key:"`, `"admin token:"`, `"sysadmin token:"`).
    pub fn banner(&self, label: &str) -> String {
        let output = self.output.lock().unwrap();
        output
            .iter()
            .find_map(|line| line.strip_prefix(label))
            .map(|rest| rest.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no {label:?} line in the output:\n{}", output.join("\n")))
    }

    /// True while the process runs (it has neither exited nor panicked its way out).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown hook runs, nothing buffered is flushed.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The environment of a replica sharing `database` (a URL) and, when given, Redis at `redis` with `prefix`.
pub fn replica_env(database: &str, redis: Option<(&str, &str)>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", database.to_owned()),
        ("AVB_JWT_SECRET", JWT_SECRET.to_owned()),
        ("AVB_BOOTSTRAP", "false".to_owned()),
    ];
    if let Some((url, prefix)) = redis {
        env.push(("REDIS_URL", url.to_owned()));
        env.push(("AVB_REDIS_KEY_PREFIX", prefix.to_owned()));
    }
    env
}

/// Sets (or adds) `key` in `env`.
pub fn set(env: &mut Vec<(&'static str, String)>, key: &'static str, value: impl Into<String>) {
    let value = value.into();
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}
