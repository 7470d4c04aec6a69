//! Launchers for real peers. Each starts a process listening on 127.0.0.1 with port 0, waits for its ready line
//! (a JSON object on stdout), and kills the process when the handle is dropped.

pub mod keycloak;
pub mod spicedb;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Why a peer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// `AVB_SKIP_PEERS` is set: the test must not pass silently, so this is an error carrying the reason.
    #[error("peers skipped by AVB_SKIP_PEERS: {0}")]
    Skipped(String),
    /// The peer's files are not installed (run `scripts/install-peers.sh`).
    #[error("peer {peer} is not installed: {hint}")]
    NotInstalled {
        /// Which peer.
        peer: &'static str,
        /// What to run.
        hint: String,
    },
    /// The process failed to start or to become ready.
    #[error("peer {peer} failed to start: {reason}")]
    Start {
        /// Which peer.
        peer: &'static str,
        /// What happened (including the tail of its stderr when available).
        reason: String,
    },
}

/// Root of the repository (peers and scripts are found relative to it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where installed peer artifacts live (`$AVB_PEERS_DIR`, default `<repo>/.peers`).
pub fn peers_dir() -> PathBuf {
    std::env::var_os("AVB_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".peers"))
}

/// Fails with [`PeerError::Skipped`] when `AVB_SKIP_PEERS` is set.
pub fn check_not_skipped() -> Result<(), PeerError> {
    match std::env::var("AVB_SKIP_PEERS") {
        Ok(reason) if !reason.is_empty() => Err(PeerError::Skipped(reason)),
        _ => Ok(()),
    }
}

/// Spawns `cmd` (stdout piped, stderr inherited), and waits up to `timeout` for the first stdout line that parses
/// as a JSON object with `"ready": true`. Returns the child (killed on drop) and that object.
pub async fn spawn_until_ready(
    peer: &'static str,
    mut cmd: Command,
    timeout: Duration,
) -> Result<(Child, serde_json::Value), PeerError> {
    check_not_skipped()?;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| PeerError::Start {
        peer,
        reason: e.to_string(),
    })?;
    let stdout = child.stdout.take().ok_or_else(|| PeerError::Start {
        peer,
        reason: "no stdout".into(),
    })?;
    let mut lines = BufReader::new(stdout).lines();
    let wait = async {
        while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&line)
                && value.get("ready").and_then(serde_json::Value::as_bool) == Some(true)
            {
                return Ok(value);
            }
        }
        Err("process exited before its ready line".to_owned())
    };
    let ready = match tokio::time::timeout(timeout, wait).await {
        Ok(Ok(value)) => value,
        Ok(Err(reason)) => return Err(PeerError::Start { peer, reason }),
        Err(_) => {
            return Err(PeerError::Start {
                peer,
                reason: format!("not ready within {timeout:?}"),
            });
        }
    };
    // Keep draining stdout so the peer never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, ready))
}
