"""Benchmark harness: our gateway against Envoy's gRPC-JSON transcoder and direct gRPC.

Run ``python -m bench`` from the project root (``python -m bench --help`` for the
options).  Every process it needs (a Cuebot stand-in, the gateway under twistd,
Envoy, wrk and h2load) is started and stopped by the harness, all on 127.0.0.1.
Nothing here is imported by the gateway or by its tests, except the smoke test,
which runs ``python -m bench --smoke`` as a subprocess.
"""

import os
import sys
from pathlib import Path

# Before the harness imports grpc: grpcio's fork handlers restart a poller thread in the child
# of every fork, which close_fds then breaks (SIGABRT before exec, grpc/grpc#43055), and
# procs.spawn forks (its preexec_fn rules out vfork) while the harness's gRPC client is busy.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

# The project root: the working directory of the subprocesses that import ``bench``.
ROOT = Path(__file__).resolve().parent.parent


def say(text: str) -> None:
    """Progress and warnings, on stderr so stdout holds only the report."""
    print(text, file=sys.stderr, flush=True)
