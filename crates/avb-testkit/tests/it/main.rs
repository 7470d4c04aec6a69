//! Integration tests of the peer launchers against the real peers (one test binary; see `scripts/install-peers.sh`).

mod blackbox;
mod keycloak;
mod realtime;
mod spicedb;
mod ws_v2;
