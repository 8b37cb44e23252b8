"""The Cuebot stand-in: a grpcio server that answers every catalog method with canned bytes.

It runs in its own process (``python -m bench.standin``) so that its CPU is
never counted as the gateway's.  Replies are serialized once at start-up and
handlers are registered without serializers, so grpcio hands the raw request
bytes in and sends the stored reply bytes out: Python does no protobuf work
per request, and what is measured is the gateway, not the stand-in.

A request selects its reply by its bytes (GetFrames for 1,000 or for 10,000
frames share a method).  The first time a byte string is seen that is not
the stand-in's own serialization, it is parsed once and compared with the
known requests, and the answer is cached: Envoy's C++ protobuf and the
gateway's may encode the same request differently.  Unknown requests get the
method's first canned reply, or the empty reply for methods without data.

Every served call is counted per method.  The harness reads the counts over
a control RPC, ``/bench.Control/Calls``, which returns JSON: that is the
fan-in scenario's "Cuebot calls per client request".

The same answer carries the calls that gRPC ended with a status other than
OK, as gRPC core counts them for channelz: errors raised by a handler, and
also those no handler sees (unknown method, a request over the size limit,
a deadline or a cancelled call).  Behind every target of the benchmark
stands this one server, so that count is the gRPC-level errors of a direct
gRPC run (whatever HTTP status carried them) and the failed Cuebot calls of
a run through a gateway.

The production-size replies (:data:`bench.data.LARGE_JOBS`) are built only
when named with ``--large``: they take seconds and hundreds of MB to build.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections import Counter
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc._cython import cygrpc

from bench import ROOT, procs
from bench.data import LARGE_JOBS, build_replies
from opencue_gateway.catalog import MethodCatalog

CONTROL_CALLS = "/bench.Control/Calls"
MAX_CACHED_REQUESTS = 64
# grpcio's synchronous server is fastest here with few threads: handlers only
# look up bytes, and more threads only contend for the GIL (4 threads gave
# ~3,700 small calls/s on 2 cores, 32 threads ~2,600, grpc.aio ~2,000).
DEFAULT_THREADS = 4
STARTUP_SECONDS = 60.0
# The stand-in never outlives a benchmark by much, even if nobody stops it.
DEFAULT_LIFETIME_SECONDS = 6 * 3600


class ReplyTable:
    """Canned reply bytes per method, selected by the request bytes."""

    def __init__(self, catalog: MethodCatalog) -> None:
        self._exact: dict[str, dict[bytes, bytes]] = {m.path: {} for m in catalog}
        self._known: dict[str, list[tuple[Message, bytes]]] = {}
        self._default: dict[str, bytes] = {m.path: b"" for m in catalog}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.sizes: dict[str, int] = {}

    def add(self, key: str, path: str, request: Message, reply: Message) -> None:
        """Serialize one reply now, once, and remember which request selects it."""
        body = reply.SerializeToString()
        self._exact[path][request.SerializeToString()] = body
        self._known.setdefault(path, []).append((request, body))
        if not self._default[path]:
            self._default[path] = body
        self.sizes[key] = len(body)

    def answer(self, path: str, request: bytes) -> bytes:
        """The reply bytes for a request; counts the call."""
        with self._lock:
            self.calls[path] += 1
        body = self._exact[path].get(request)
        if body is None:
            body = self._match(path, request)
        return body

    def _match(self, path: str, request: bytes) -> bytes:
        """Slow path, once per distinct request encoding: parse and compare."""
        body = self._default[path]
        candidates = self._known.get(path, [])
        if candidates:
            parsed = candidates[0][0].FromString(request)
            body = next((b for known, b in candidates if known == parsed), body)
        with self._lock:
            if len(self._exact[path]) < MAX_CACHED_REQUESTS:
                self._exact[path][request] = body
        return body

    def counts(self) -> bytes:
        """The call counts and the server's failed calls as JSON, for the control RPC."""
        with self._lock:
            calls = dict(self.calls)
        return json.dumps({"calls": calls, "total": sum(calls.values()),
                           "failed": failed_calls(), "sizes": self.sizes}).encode()


def failed_calls() -> int:
    """Calls this process's gRPC server ended with a non-OK status (gRPC core's channelz count).

    Read through grpcio's own binding, the function the ``grpcio-channelz``
    servicer wraps, so that the stand-in needs nothing beyond grpcio (the
    test extra runs it too).  The process runs exactly one server.
    """
    servers = json.loads(cygrpc.channelz_get_servers(0)).get("server", [])
    if len(servers) != 1:
        raise RuntimeError(f"channelz lists {len(servers)} gRPC servers in the stand-in, not 1")
    return int(servers[0].get("data", {}).get("callsFailed", 0))


class _Router(grpc.GenericRpcHandler):
    """One dictionary lookup per call, for all 293 methods and the control RPC."""

    def __init__(self, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._handlers = handlers

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return self._handlers.get(handler_call_details.method)


def make_router(table: ReplyTable, catalog: MethodCatalog) -> grpc.GenericRpcHandler:
    """Handlers with no (de)serializers: raw bytes in, canned bytes out."""

    def handler_for(path: str) -> grpc.RpcMethodHandler:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            return table.answer(path, request)

        return grpc.unary_unary_rpc_method_handler(handle)

    handlers = {method.path: handler_for(method.path) for method in catalog}
    handlers[CONTROL_CALLS] = grpc.unary_unary_rpc_method_handler(
        lambda request, context: table.counts()
    )
    return _Router(handlers)


def build_table(catalog: MethodCatalog, large: list[str]) -> ReplyTable:
    """The reply table with the small canned replies of :mod:`bench.data` and ``large``."""
    table = ReplyTable(catalog)
    for reply in build_replies(catalog, large).values():
        table.add(reply.key, reply.path, reply.request, reply.reply)
    return table


def serve(port_file: Path, threads: int, lifetime: float, large: list[str]) -> None:
    """Serve on a free loopback port until SIGTERM/SIGINT or ``lifetime`` seconds."""
    catalog = MethodCatalog.default()
    table = build_table(catalog, large)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        options=[("grpc.max_send_message_length", -1),
                 ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                 ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers([make_router(table, catalog)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    # Written last and renamed into place: the harness sees the port only when serving.
    partial = port_file.with_suffix(".tmp")
    partial.write_text(str(port))
    os.replace(partial, port_file)
    done.wait(lifetime)
    server.stop(grace=1).wait(5)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.standin --port-file PATH``: what the harness runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-file", type=Path, required=True,
                        help="where to write the port once serving")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="grpcio server worker threads")
    parser.add_argument("--lifetime", type=float, default=DEFAULT_LIFETIME_SECONDS,
                        help="exit after this many seconds even if never stopped")
    parser.add_argument("--large", default="",
                        help="comma-separated production-size replies to serve too: "
                             + ", ".join(LARGE_JOBS))
    args = parser.parse_args(argv)
    large = [key for key in args.large.split(",") if key]
    unknown = [key for key in large if key not in LARGE_JOBS]
    if unknown:
        parser.error(f"unknown large reply {', '.join(unknown)}; they are {', '.join(LARGE_JOBS)}")
    serve(args.port_file, args.threads, args.lifetime, large)


if __name__ == "__main__":
    main()


@dataclass(frozen=True, slots=True)
class StandIn:
    """The running stand-in as the harness sees it."""

    pid: int
    address: str
    log_path: Path


def start_standin(
    processes: procs.Processes, workdir: Path, threads: int = DEFAULT_THREADS,
    lifetime: float = DEFAULT_LIFETIME_SECONDS, large: list[str] | None = None,
) -> StandIn:
    """Run ``python -m bench.standin`` and wait until it serves (it writes its port)."""
    port_file = workdir / "standin.port"
    port_file.unlink(missing_ok=True)  # a stale file would name a dead server's port
    log_path = workdir / "standin.log"
    process = processes.add("standin", procs.spawn(
        [sys.executable, "-m", "bench.standin", "--port-file", str(port_file),
         "--threads", str(threads), "--lifetime", str(int(lifetime)),
         "--large", ",".join(large or [])],
        log_path, cwd=ROOT,
    ))
    procs.wait_for(port_file.exists, STARTUP_SECONDS, "the Cuebot stand-in", process, log_path)
    return StandIn(process.pid, f"127.0.0.1:{port_file.read_text().strip()}", log_path)

