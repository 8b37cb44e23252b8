"""``python -m proto_gen PROTO_DIR -o FILE`` and ``python -m proto_gen --installed -o FILE``.

Either way the set is loaded the way the gateway loads PROTO_DESCRIPTOR_SET
before it is written, so a set this command writes is one the gateway starts
with.  Problems are one line each on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from google.protobuf import descriptor_pb2

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.descriptor_sets import DescriptorSetError, installed_set, installed_source
from proto_gen.protoc import ProtocError, compile_protos

PROG = "proto_gen"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Build the FileDescriptorSet opencue-gateway serves with "
                    "PROTO_DESCRIPTOR_SET: from a directory of .proto files (a studio's "
                    "Cuebot fork), or from the installed opencue-proto.")
    parser.add_argument("proto_dir", nargs="?", metavar="PROTO_DIR", type=Path,
                        help="the import root: every .proto under it is compiled")
    parser.add_argument("--installed", action="store_true",
                        help="write the installed opencue-proto's set instead")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE",
                        help="where to write the set")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build, check and write the set; one line per problem and exit 1 when there are any."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    if arguments.installed == (arguments.proto_dir is not None):
        parser.error("give either PROTO_DIR or --installed")
    try:
        if arguments.installed:
            files, source = installed_set(), installed_source()
        else:
            files, source = _compile(arguments.proto_dir), str(arguments.proto_dir)
        catalog = MethodCatalog.from_set(files, source)
    except ProtocError as error:
        return _fail(error.lines)
    except DescriptorSetError as error:
        return _fail([str(error)])
    try:
        _write(arguments.output, files)
    except OSError as error:
        return _fail([f"cannot write {arguments.output}: {error.strerror}"])
    shown = catalog.describe()
    print(f"{PROG}: wrote {arguments.output}: {len(files.file)} files, {shown['services']} "
          f"services and {shown['methods']} methods to serve")
    return 0


def _compile(proto_dir: Path) -> descriptor_pb2.FileDescriptorSet:
    """protoc's set for ``proto_dir``; its warnings go to stderr, the build goes on."""
    files, warnings = compile_protos(proto_dir)
    for line in warnings:
        print(f"{PROG}: {line}", file=sys.stderr)
    return files


def _write(path: Path, files: descriptor_pb2.FileDescriptorSet) -> None:
    """Write the whole set or nothing: a gateway starting meanwhile never reads half of one."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(files.SerializeToString())
    partial.replace(path)


def _fail(lines: list[str]) -> int:
    """Each problem on its own line of stderr, named as this command's; the exit status."""
    for line in lines:
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
