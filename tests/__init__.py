"""The test suite.

Importing this package comes before any test module or conftest imports grpc: grpcio's fork
handlers restart a poller thread in the child of every fork, which a subprocess's close_fds
then breaks, killing the child with SIGABRT before it can exec (grpc/grpc#43055, about one
fork in a thousand while gRPC is busy). The tests run gRPC servers while they fork children
(the bench harness's spawn forks for its preexec_fn), so fork support is off here.
"""

import os
import sys

GRPC_IMPORTED_FIRST = "grpc" in sys.modules
os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
