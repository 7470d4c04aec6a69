#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a warm one: installs and starts what the tests need, then runs
# formatting, lint and every test of the workspace. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

# PostgreSQL and Redis run on every machine of ours; start them when absent (fresh Debian boxes, containers).
ensure_services() {
  if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    log "starting PostgreSQL"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    log "starting Redis"
    if ! command -v redis-server >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    fi
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
}

ensure_services
if [ -x scripts/install-peers.sh ]; then
  log "installing test peers"
  scripts/install-peers.sh
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "cargo test"
cargo test --workspace --all-features --locked --no-fail-fast
scripts/schemathesis.sh
