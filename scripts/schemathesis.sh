#!/usr/bin/env bash
# Property-based test of the REST API against its own OpenAPI document: schemathesis (PyPI, pinned) generates
# valid and invalid requests from GET /api/v2/openapi.json of the running reference server and fails on any 5xx
# and on any response that the document does not allow (status, content type, headers, body schema).
#
#   scripts/schemathesis.sh                     # builds avb-server (debug) and runs every pass
#   AVB_SERVER_BIN=target/release/avb-server scripts/schemathesis.sh
#   SCHEMATHESIS_MAX_EXAMPLES=50 scripts/schemathesis.sh
#
# Three passes, each against a fresh server (in-memory storage, fixed JWT secret, generous rate limits so that the
# run tests the API rather than the limiter, the demo tenant lifted to enterprise so quotas do not stop it): the
# demo tenant's admin token, the demo API key in `X-API-Key`, and the sysadmin token on the admin routes. Each pass
# is bounded by SCHEMATHESIS_MAX_TIME seconds (about 3½ minutes in all on 2 cores). Reports and server logs go to
# target/schemathesis/. Needs only PyPI (by package name) and cargo.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="${AVB_PEERS_DIR:-$REPO_ROOT/.peers}"
VENV="$PEERS_DIR/venv-schemathesis"
SCHEMATHESIS_VERSION="4.32.5"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-25}"
MAX_TIME="${SCHEMATHESIS_MAX_TIME:-60}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
OUT="$TARGET_DIR/schemathesis"
# The checks: no 5xx; status, content type, headers and body as documented; 405 with `Allow` for undocumented
# methods; 401 without credentials; created resources readable, deleted ones gone.
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance"
CHECKS+=",response_schema_conformance,unsupported_method,allow_header_conformance,missing_required_header"
CHECKS+=",ignored_auth,use_after_free,ensure_resource_availability"

log() { printf '[schemathesis] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- schemathesis, pinned, in its own venv (a stamp makes a second run a no-op) ---------------------------------
if [[ ! -x "$VENV/bin/schemathesis" || "$(cat "$VENV/.installed" 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]]; then
  command -v python3 >/dev/null || die "python3 (with venv) is required"
  log "installing schemathesis==$SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "schemathesis==$SCHEMATHESIS_VERSION"
  printf '%s\n' "$SCHEMATHESIS_VERSION" >"$VENV/.installed"
fi

# --- the reference server ----------------------------------------------------------------------------------------
BIN="${AVB_SERVER_BIN:-}"
if [[ -z "$BIN" ]]; then
  # The same selection as `cargo test --workspace --all-features` (tests included, so dev-dependency features
  # unify the same way): right after the test suite this only links the server binary.
  log "building avb-server"
  (cd "$REPO_ROOT" && cargo build --quiet --locked --workspace --all-features --bins --tests)
  BIN="$TARGET_DIR/debug/avb-server"
fi
[[ -x "$BIN" ]] || die "no server binary at $BIN"

mkdir -p "$OUT"
SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

# Starts a fresh server (each pass gets its own in-memory state: one pass revoking the demo key or suspending the
# demo tenant cannot blind the next) and reads the credentials it prints. Sets BASE, ADMIN_TOKEN, SYSADMIN_TOKEN,
# API_KEY and SERVER_LOG.
start_server() {
  local name="$1" port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  BASE="http://127.0.0.1:$port"
  SERVER_LOG="$OUT/server-$name.log"
  AVB_HOST=127.0.0.1 AVB_PORT="$port" AVB_HTTP=axum \
    AVB_JWT_SECRET="schemathesis-fixed-secret-of-at-least-32-bytes" \
    RATE_LIMIT_DEFAULT_PER_MINUTE=1000000 RATE_LIMIT_DEFAULT_PER_HOUR=10000000 \
    RATE_LIMIT_API_KEY_PER_MINUTE=1000000 RATE_LIMIT_API_KEY_PER_HOUR=10000000 \
    RATE_LIMIT_ADMIN_PER_MINUTE=1000000 RATE_LIMIT_ADMIN_PER_HOUR=10000000 \
    RUST_LOG="${RUST_LOG:-error}" NO_COLOR=1 \
    "$BIN" serve >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  local printed_key=""
  for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; die "the server exited"; }
    printed_key="$(printed 'api key')"
    if [[ -n "$printed_key" ]] && curl -fsS -o /dev/null "$BASE/health" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  ADMIN_TOKEN="$(printed 'admin token')"
  SYSADMIN_TOKEN="$(printed 'sysadmin token')"
  API_KEY="$(printed 'api key')"
  local tenant
  tenant="$(sed -n 's/^demo tenant:.*(\([0-9a-f-]*\)).*/\1/p' "$SERVER_LOG" | head -n1)"
  [[ -n "$ADMIN_TOKEN" && -n "$SYSADMIN_TOKEN" && -n "$API_KEY" && -n "$tenant" ]] ||
    { cat "$SERVER_LOG" >&2; die "no credentials printed"; }
  # The demo tenant is on the free tier (1 project, 3 users): lift it to enterprise so that generated requests
  # reach the services' logic instead of stopping at quotas.
  curl -fsS -o /dev/null -X PATCH -H "Authorization: Bearer $SYSADMIN_TOKEN" -H 'Content-Type: application/json' \
    -d '{"tier": "enterprise"}' "$BASE/api/v2/admin/tenants/$tenant" || die "could not upgrade the demo tenant"
  log "server for '$name' on $BASE (log $SERVER_LOG)"
}
printed() { sed -n "s/^$1:[[:space:]]*\\([^[:space:]]*\\).*/\\1/p" "$SERVER_LOG" | head -n1; }

# Error lines of the server log (5xx causes), leaving out the printed credentials.
server_errors() { grep -v -E '^(demo tenant|sysadmin token|admin token|api key|try):' "$SERVER_LOG" | grep 'ERROR' || true; }

# --- the passes --------------------------------------------------------------------------------------------------
passed=0
failed=0
run() {
  local name="$1" header ok=1
  start_server "$name"
  header="$2 ${!3}"
  shift 3
  log "pass '$name'"
  "$VENV/bin/schemathesis" run "$BASE/api/v2/openapi.json" \
    -H "$header" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers 1 \
    --seed 20240611 \
    --generation-database none \
    --generation-with-security-parameters false \
    --request-timeout 10 \
    --suppress-health-check all \
    --no-color \
    --report junit --report-junit-path "$OUT/$name.junit.xml" \
    "$@" || ok=0
  stop_server
  if server_errors | grep -q .; then
    log "the server logged errors in '$name':"
    server_errors | head -n 20 >&2
    ok=0
  fi
  if [[ $ok -eq 1 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
run tenant-admin "Authorization: Bearer" ADMIN_TOKEN --exclude-path-regex '^/api/v2/admin/'
run api-key "X-API-Key:" API_KEY --exclude-path-regex '^/api/v2/admin/|^/(health|metrics)|/docs'
run sysadmin "Authorization: Bearer" SYSADMIN_TOKEN --include-path-regex '^/api/v2/admin/'

printf 'schemathesis: %d passed, %d failed\n' "$passed" "$failed"
if [[ $failed -ne 0 ]]; then
  die "schemathesis found problems (reports in $OUT)"
fi
log "no 5xx and every response conforms to the document"
