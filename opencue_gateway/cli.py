"""The ``opencue-gateway`` command: tools around the daemon (which runs under twistd).

``opencue-gateway openapi > openapi.json`` writes the API description for
client generators (of PROTO_DESCRIPTOR_SET's protos when that is set);
``opencue-gateway token --sub ann --role dashboard`` prints a token signed
with the configured secret, for scripts and curl;
``opencue-gateway settings --format env`` prints every setting.
"""

from __future__ import annotations

import argparse
import sys

from opencue_gateway import __version__
from opencue_gateway.auth import sign_token
from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.config import ConfigError, config_from_process, setting_from_process
from opencue_gateway.openapi import openapi_json
from opencue_gateway.settings_doc import env_example, markdown_tables


def _openapi(arguments: argparse.Namespace) -> int:
    """Write the OpenAPI document of the served protos (PROTO_DESCRIPTOR_SET's) to stdout."""
    catalog = MethodCatalog.configured(setting_from_process("PROTO_DESCRIPTOR_SET",
                                                            arguments.proto_descriptor_set))
    sys.stdout.buffer.write(openapi_json(catalog, __version__, strict=arguments.strict) + b"\n")
    return 0


def _token(arguments: argparse.Namespace) -> int:
    """Print a token signed with JWT_SECRET / JWT_SECRET_FILE (or the sandbox secret)."""
    config = config_from_process({"enabled": "true"} if arguments.sandbox else {})
    print(sign_token(config, arguments.sub, arguments.role, arguments.ttl))
    return 0


def _settings(arguments: argparse.Namespace) -> int:
    """Print every setting as the README's tables or as an environment file."""
    sys.stdout.write(env_example() if arguments.format == "env" else markdown_tables())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opencue-gateway",
        description="Tools for opencue-gateway. The gateway itself runs as: "
                    "twistd -n --pidfile= opencue-gateway",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    openapi = commands.add_parser("openapi", help="write the OpenAPI 3.1 document to stdout")
    openapi.add_argument("--strict", action="store_true",
                         help="describe STRICT_JSON=true (unknown fields refused)")
    openapi.add_argument("--proto-descriptor-set", metavar="FILE",
                         help="describe this FileDescriptorSet's services instead of the "
                              "installed opencue-proto's [PROTO_DESCRIPTOR_SET]")
    openapi.set_defaults(run=_openapi)
    token = commands.add_parser("token", help="print a token signed with the configured secret")
    token.add_argument("--sub", required=True, help="the caller's name (sub claim)")
    token.add_argument("--role", help="the caller's role (JWT_ROLE_CLAIM, default 'role')")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.add_argument("--sandbox", action="store_true",
                       help="sign with the sandbox's development secret when none is set")
    token.set_defaults(run=_token)
    settings = commands.add_parser("settings", help="print every setting with its default")
    settings.add_argument("--format", choices=("markdown", "env"), default="markdown",
                          help="the README's tables or an environment file (default markdown)")
    settings.set_defaults(run=_settings)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; configuration errors are one line and exit 1."""
    arguments = _parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except ConfigError as error:
        print(f"opencue-gateway: {error}", file=sys.stderr)
        return 1
