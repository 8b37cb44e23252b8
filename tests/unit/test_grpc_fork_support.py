"""grpcio's fork support is off wherever the project forks children while gRPC is busy.

With it on, about one fork in a thousand dies with SIGABRT before its exec (grpc/grpc#43055):
a Cuebot stand-in or gateway that never starts, failing a test or a benchmark at random.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bench import ROOT
from tests import GRPC_IMPORTED_FIRST


def test_the_suite_turns_it_off_before_grpc_is_imported():
    """Set after ``import grpc`` it would be too late: the handlers are registered then."""
    assert not GRPC_IMPORTED_FIRST
    assert os.environ["GRPC_ENABLE_FORK_SUPPORT"] == "false"


def test_the_bench_harness_turns_it_off_unless_told_otherwise():
    """``python -m bench`` forks its servers from a process that talks gRPC."""
    env = {k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"}
    code = ("import os, sys, bench; "
            "print('grpc' in sys.modules, os.environ['GRPC_ENABLE_FORK_SUPPORT'])")
    seen = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()
    assert seen == ["False", "false"]
    env["GRPC_ENABLE_FORK_SUPPORT"] = "true"
    told = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()
    assert told == ["False", "true"]
