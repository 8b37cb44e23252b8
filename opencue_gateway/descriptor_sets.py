"""FileDescriptorSets: the one form the gateway reads its protos in.

The catalog is always read from a ``FileDescriptorSet`` loaded into a
descriptor pool.  By default that set is made at start-up from the installed
``opencue-proto`` package and loaded into protobuf's default pool, which
already holds those very files (the generated ``*_pb2`` modules put them
there), so the message classes stay opencue-proto's.  A studio's own set
(``PROTO_DESCRIPTOR_SET``, built with ``python -m proto_gen``) is loaded into a
fresh pool instead: a fork may redefine ``job.proto`` or ``show.proto``, which
the default pool cannot hold twice.

Making the default set from the installed package, rather than shipping a
generated file, means it can never describe another opencue-proto than the
one whose classes are imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

from google.protobuf import descriptor_database, descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import DecodeError

# How the descriptor pool words a file it cannot build; the rest of its message says why.
_POOL_PREFIX = "Couldn't build proto file into descriptor pool"
BUILD_HINT = "build one with: python -m proto_gen PROTO_DIR -o FILE"


class DescriptorSetError(ValueError):
    """A descriptor set the gateway cannot serve from; the message says why, in one line."""


def installed_source() -> str:
    """How the installed protos are named in /config and the start-up line."""
    return f"opencue-proto {version('opencue_proto')}"


def installed_files() -> list[FileDescriptor]:
    """The installed opencue-proto's files and their imports, as the default pool holds them."""
    import opencue_proto

    return with_imports(module.DESCRIPTOR for module in _pb2_modules(opencue_proto))


def installed_set() -> descriptor_pb2.FileDescriptorSet:
    """The installed opencue-proto's files and their imports, as one set."""
    return file_set(installed_files())


def with_imports(files: Iterable[FileDescriptor]) -> list[FileDescriptor]:
    """``files`` and everything they import, each once, imports before their importers.

    That order is protoc's (``--include_imports``) and the one a pool can be
    built in file by file, as Envoy's is.
    """
    ordered: list[FileDescriptor] = []
    seen: set[str] = set()

    def visit(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        ordered.append(file)

    for file in files:
        visit(file)
    return ordered


def file_set(files: Iterable[FileDescriptor]) -> descriptor_pb2.FileDescriptorSet:
    """``files`` and everything they import as one set, in :func:`with_imports`' order."""
    return descriptor_pb2.FileDescriptorSet(
        file=[descriptor_pb2.FileDescriptorProto.FromString(f.serialized_pb)
              for f in with_imports(files)])


def read_set(path: str) -> descriptor_pb2.FileDescriptorSet:
    """Read a serialized FileDescriptorSet, refusing what is not one."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DescriptorSetError(f"cannot read {path!r}: {error.strerror}") from None
    try:
        parsed = descriptor_pb2.FileDescriptorSet.FromString(data)
    except DecodeError:
        parsed = None
    # Some bytes that are no descriptor set still parse, as unknown fields and no file.
    if parsed is None or not parsed.file or any(not f.name for f in parsed.file):
        raise DescriptorSetError(f"{path!r} is not a FileDescriptorSet ({BUILD_HINT})")
    return parsed


def load_set(files: descriptor_pb2.FileDescriptorSet,
             pool: DescriptorPool) -> list[FileDescriptor]:
    """Add every file of the set to ``pool``, imports first, and return them in set order.

    A file the pool already holds identically is left as it is (the default
    pool and the installed set); a different file of the same name is an error.
    """
    protos: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for proto in files.file:
        if proto.name in protos:
            raise DescriptorSetError(f"{proto.name} is in the set twice")
        protos[proto.name] = proto
    loaded: dict[str, FileDescriptor] = {}
    loading: set[str] = set()

    def load(name: str) -> None:
        if name in loaded:
            return
        if name in loading:
            raise DescriptorSetError(f"{name} imports itself (through a cycle of imports)")
        loading.add(name)
        proto = protos[name]
        for dependency in proto.dependency:
            if dependency not in protos:
                raise DescriptorSetError(
                    f"{name} imports {dependency}, which the set does not hold (build it "
                    "with protoc's --include_imports, as python -m proto_gen does)")
            load(dependency)
        loaded[name] = _add(pool, proto)

    for name in protos:
        load(name)
    return [loaded[name] for name in protos]


def _add(pool: DescriptorPool, proto: descriptor_pb2.FileDescriptorProto) -> FileDescriptor:
    """Add one file whose imports are in the pool; the pool's complaint becomes one line.

    protobuf's upb pool checks the file as it is added (TypeError); its pure-Python
    one stores it and builds it when first looked up (KeyError, or a conflict error).
    """
    try:
        pool.Add(proto)
        return pool.FindFileByName(proto.name)
    except (TypeError, KeyError, descriptor_database.Error) as error:
        reason = " ".join(str(error).split()).removeprefix(_POOL_PREFIX).lstrip("!: ")
        raise DescriptorSetError(f"{proto.name}: {reason}") from None


def _pb2_modules(package: ModuleType) -> list[ModuleType]:
    """Import every ``*_pb2`` module of a generated package, sorted by name."""
    names = sorted(
        info.name for info in pkgutil.iter_modules(package.__path__)
        if info.name.endswith("_pb2")
    )
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]
