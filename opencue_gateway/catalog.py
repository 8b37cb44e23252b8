"""The catalog of Cuebot RPCs the gateway exposes, read from protobuf descriptors.

Routes are never typed by hand: the catalog walks the files of a
FileDescriptorSet once at start-up (see :mod:`.descriptor_sets`: the installed
opencue-proto's, or a studio's own set given by PROTO_DESCRIPTOR_SET), keeps
every unary method of every Cuebot-facing service, and resolves HTTP paths to
them.  A studio's own Cuebot fork gets its extra RPCs and fields this way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from opencue_gateway.config import ConfigError
from opencue_gateway.descriptor_sets import (
    DescriptorSetError,
    installed_files,
    installed_source,
    load_set,
    read_set,
)
from opencue_gateway.errors import GatewayError

# RQD's own services are served by RQD on every render host, not by Cuebot, and
# RqdReportInterface is how RQD reports host state to Cuebot: exposing it over
# HTTP would let any client forge host reports (COMPATIBILITY.md section 1).
EXCLUDED_PACKAGES = frozenset({"rqd"})
EXCLUDED_SERVICES = frozenset({"report.RqdReportInterface"})

# Read-only means "cannot change farm state".  The rule is the verb that starts
# the method name: OpenCue names every query Get*/Find*/List*/Is*/Has*.
READ_ONLY_PREFIXES = ("Get", "Find", "List", "Is", "Has")
# Longest name quoted back in a 404 (the longest real method path has about 70).
MAX_SHOWN = 120


def is_read_only_name(method: str) -> bool:
    """Classify a method as read-only from its name alone.

    ``GetSomething`` is read-only but ``Getaway`` is not: the prefix must be
    followed by an upper-case letter or end the name.
    """
    for prefix in READ_ONLY_PREFIXES:
        if method.startswith(prefix):
            rest = method[len(prefix):]
            if not rest or rest[0].isupper():
                return True
    return False


@dataclass(frozen=True, slots=True)
class RpcMethod:
    """One unary RPC: its HTTP path and the message classes on both sides."""

    path: str
    service: str
    name: str
    input_type: type[Message]
    output_type: type[Message]
    read_only: bool


@dataclass(slots=True)
class MethodCatalog:
    """Every exposed RPC, indexed for the lookups a request needs."""

    methods: dict[str, RpcMethod]
    # Where the descriptors came from ("opencue-proto 1.37.0", a set's path), and its files.
    source: str = "descriptors"
    files: tuple[FileDescriptor, ...] = ()
    _by_simple_service: dict[str, list[str]] = field(default_factory=dict)
    _services: dict[str, dict[str, RpcMethod]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Build the secondary indexes once, so resolving a path never scans."""
        for method in self.methods.values():
            self._services.setdefault(method.service, {})[method.name] = method
        for service in self._services:
            simple = service.rsplit(".", 1)[-1]
            self._by_simple_service.setdefault(simple, []).append(service)

    @classmethod
    def from_file_descriptors(cls, files: Iterable[FileDescriptor],
                              source: str = "descriptors") -> MethodCatalog:
        """Collect every unary method of every Cuebot-facing service in ``files``."""
        files = tuple(files)
        methods: dict[str, RpcMethod] = {}
        for file in files:
            if file.package in EXCLUDED_PACKAGES:
                continue
            for service in file.services_by_name.values():
                if service.full_name in EXCLUDED_SERVICES:
                    continue
                for method in _unary_methods(service):
                    methods[method.path] = method
        if not methods:
            raise DescriptorSetError(f"no Cuebot-facing service in {source} (no unary method "
                                     "outside RQD's services)")
        return cls(methods=methods, source=source, files=files)

    @classmethod
    def from_descriptor_set(cls, files: descriptor_pb2.FileDescriptorSet,
                            pool: descriptor_pool.DescriptorPool,
                            source: str) -> MethodCatalog:
        """Load a set into ``pool`` and collect its methods: how the gateway makes its catalog."""
        return cls.from_file_descriptors(load_set(files, pool), source)

    @classmethod
    def default(cls) -> MethodCatalog:
        """The catalog of the installed ``opencue-proto``, whose classes are in the default pool.

        Its files are taken from the default pool as they are: no set to build and load back.
        """
        return cls.from_file_descriptors(installed_files(), installed_source())

    @classmethod
    def from_set(cls, files: descriptor_pb2.FileDescriptorSet, source: str) -> MethodCatalog:
        """The catalog of a descriptor set, in a pool of its own.

        A fresh pool, because a fork may redefine files the default pool
        already holds from opencue-proto.
        """
        return cls.from_descriptor_set(files, descriptor_pool.DescriptorPool(), source)

    @classmethod
    def from_set_file(cls, path: str) -> MethodCatalog:
        """The catalog of a serialized FileDescriptorSet (see :meth:`from_set`)."""
        return cls.from_set(read_set(path), path)

    @classmethod
    def configured(cls, descriptor_set: str | None) -> MethodCatalog:
        """The methods to serve: PROTO_DESCRIPTOR_SET's when given, else the installed protos'."""
        if descriptor_set is None:
            return cls.default()
        try:
            return cls.from_set_file(descriptor_set)
        except DescriptorSetError as error:
            raise ConfigError("PROTO_DESCRIPTOR_SET", str(error)) from None

    def __len__(self) -> int:
        return len(self.methods)

    def __iter__(self) -> Iterator[RpcMethod]:
        return iter(self.methods.values())

    @property
    def services(self) -> list[str]:
        """Full names of the exposed services, sorted."""
        return sorted(self._services)

    def describe(self) -> dict[str, Any]:
        """Where the protos came from and what they hold (GET /config, the start-up line)."""
        return {"source": self.source, "services": len(self._services),
                "methods": len(self.methods)}

    def resolve(self, path: str) -> RpcMethod:
        """Find the method for an HTTP path, or raise a 404 ``GatewayError``.

        ``/show.ShowInterface/GetShows`` is the canonical spelling.  The README
        of the Go gateway also uses packages that do not exist
        (``/frame.FrameInterface/Retry``); such a path resolves by the simple
        service name when exactly one service has that name.
        """
        method = self.methods.get(path)
        if method is not None:
            return method
        service, _, name = path.lstrip("/").partition("/")
        if not service or not name or "/" in name:
            raise GatewayError(
                grpc.StatusCode.NOT_FOUND,
                f"no RPC at {_shown(path)}: paths look like /<package>.<Service>/<Method>, "
                "e.g. /show.ShowInterface/GetShows",
            )
        full_service = self._resolve_service(service)
        if full_service is None:
            raise GatewayError(grpc.StatusCode.NOT_FOUND, self._unknown_service(service))
        method = self._services[full_service].get(name)
        if method is None:
            raise GatewayError(
                grpc.StatusCode.NOT_FOUND, self._unknown_method(full_service, name)
            )
        return method

    def _resolve_service(self, service: str) -> str | None:
        """Map a written service name to a real one, exactly or by unique simple name."""
        if service in self._services:
            return service
        candidates = self._by_simple_service.get(service.rsplit(".", 1)[-1], [])
        return candidates[0] if len(candidates) == 1 else None

    def _unknown_service(self, service: str) -> str:
        """Say that a service does not exist and suggest the closest real ones."""
        near = _close_matches(service, self.services)
        return f"unknown service {_shown(service)}" + _did_you_mean(near)

    def _unknown_method(self, service: str, name: str) -> str:
        """Say that a method does not exist and name the nearest real methods.

        Methods of the same service come first; then the same method name on
        other services, because that is the usual mistake
        (``OwnerInterface/SetMaxCores`` exists on GroupInterface and JobInterface).
        """
        own = self._services[service]
        near = [f"/{service}/{m}" for m in _close_matches(name, list(own))]
        elsewhere = sorted(
            m.path for s, ms in self._services.items() if s != service
            for m in ms.values() if m.name == name
        )
        suggestions = (near + elsewhere)[:3]
        return f"{service} has no method {_shown(name)}" + _did_you_mean(suggestions)


def _did_you_mean(suggestions: list[str]) -> str:
    """Render suggestions as a sentence tail, or nothing when there are none."""
    if not suggestions:
        return ""
    return "; did you mean " + ", ".join(suggestions) + "?"


def _unary_methods(service: ServiceDescriptor) -> Iterator[RpcMethod]:
    """Yield the unary methods of one service; streaming ones cannot map to one POST."""
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            continue
        yield RpcMethod(
            path=f"/{service.full_name}/{method.name}",
            service=service.full_name,
            name=method.name,
            input_type=GetMessageClass(method.input_type),
            output_type=GetMessageClass(method.output_type),
            read_only=is_read_only_name(method.name),
        )


def _close_matches(word: str, candidates: list[str]) -> list[str]:
    """Up to three real names close to ``word``; none for absurdly long words, which no
    real name resembles and which would cost the reactor a long comparison."""
    if len(word) > MAX_SHOWN:
        return []
    return difflib.get_close_matches(word, candidates, n=3, cutoff=0.5)


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut short past MAX_SHOWN characters.

    A URL may be 16 KiB; the 404 should not send it back twice (message and error).
    """
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "...")
