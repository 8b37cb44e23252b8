"""Running grpcio-tools' bundled protoc over a directory of .proto sources.

protoc runs in a child process (``python -m grpc_tools.protoc``): it writes
its diagnostics straight to the process's stderr, which only a child's can be
captured from, and it then leaves nothing behind in this process.  Its
diagnostics are kept one per line, as protoc words them (``file:line:column:
message``), so an error names the place to fix.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

from google.protobuf import descriptor_pb2


class ProtocError(Exception):
    """protoc (or what it was given) failed; ``lines`` are its diagnostics, one per line."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def proto_files(root: Path) -> list[Path]:
    """Every ``.proto`` file under ``root``, sorted, so every build compiles the same list."""
    if not root.is_dir():
        raise ProtocError([f"{root}: not a directory"])
    found = sorted(path for path in root.rglob("*.proto") if path.is_file())
    if not found:
        raise ProtocError([f"{root}: no .proto file under it"])
    return found


def compile_protos(root: Path) -> tuple[descriptor_pb2.FileDescriptorSet, list[str]]:
    """Compile every ``.proto`` under ``root`` into one set with its imports.

    ``root`` is the import root (``import "job.proto"`` finds ``root/job.proto``);
    the well-known types (``google/protobuf/*.proto``) come from grpcio-tools.
    Returns the set and protoc's warnings; raises :class:`ProtocError` with
    protoc's errors.
    """
    sources = proto_files(root)
    well_known = files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="proto_gen-") as scratch:
        output = Path(scratch) / "set.pb"
        run = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={root}",
             f"--proto_path={well_known}", "--include_imports",
             f"--descriptor_set_out={output}", *map(str, sources)],
            capture_output=True, text=True, errors="replace", check=False,
        )
        diagnostics = _lines(run.stderr + run.stdout)
        if run.returncode != 0:
            raise ProtocError(diagnostics or [f"protoc failed with exit status {run.returncode}"])
        return descriptor_pb2.FileDescriptorSet.FromString(output.read_bytes()), diagnostics


def _lines(output: str) -> list[str]:
    """protoc's diagnostics, one per line, each once (it repeats some warnings)."""
    return list(dict.fromkeys(line.strip() for line in output.splitlines() if line.strip()))
