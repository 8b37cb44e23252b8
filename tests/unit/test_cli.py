"""The opencue-gateway command: the static OpenAPI copy and tokens for scripts."""

from __future__ import annotations

import json

import jwt
import pytest

from opencue_gateway.catalog import MethodCatalog
from opencue_gateway.cli import main
from opencue_gateway.openapi import openapi_json
from tests.conftest import SECRET


def test_openapi_command_writes_the_served_document(capsysbinary):
    """`opencue-gateway openapi` prints the same document the gateway serves."""
    assert main(["openapi"]) == 0
    printed = capsysbinary.readouterr().out
    assert printed.strip() == openapi_json(MethodCatalog.default(),
                                           __import__("opencue_gateway").__version__)
    assert len(json.loads(printed)["paths"]) == 293


def test_openapi_command_describes_the_configured_set(capsysbinary, monkeypatch, studio):
    """With PROTO_DESCRIPTOR_SET (or its flag) the document is the set's, as the gateway's is."""
    expected = openapi_json(studio.catalog, __import__("opencue_gateway").__version__)
    assert main(["openapi", "--proto-descriptor-set", str(studio.path)]) == 0
    assert capsysbinary.readouterr().out.strip() == expected
    monkeypatch.setenv("PROTO_DESCRIPTOR_SET", str(studio.path))
    assert main(["openapi"]) == 0
    assert sorted(json.loads(capsysbinary.readouterr().out)["paths"]) == sorted(
        studio.catalog.methods)


def test_openapi_command_with_a_bad_set_is_one_line(capsys, tmp_path):
    """A set that cannot be read is one line naming the setting, and exit 1."""
    assert main(["openapi", "--proto-descriptor-set", str(tmp_path / "absent.pb")]) == 1
    assert capsys.readouterr().err == (
        f"opencue-gateway: PROTO_DESCRIPTOR_SET: cannot read '{tmp_path / 'absent.pb'}': "
        "No such file or directory\n")


def test_token_command_signs_with_the_configured_secret(capsys, monkeypatch):
    """`opencue-gateway token` prints a token the gateway accepts, with sub, role and exp."""
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert main(["token", "--sub", "ann", "--role", "dashboard", "--ttl", "60"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("ann", "dashboard")
    assert claims["exp"] - claims["iat"] == 60


def test_token_command_without_a_secret_is_one_line(capsys, monkeypatch):
    """Without a secret the command says so in one line and exits 1."""
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("JWT_SECRET_FILE", raising=False)
    assert main(["token", "--sub", "ann"]) == 1
    assert capsys.readouterr().err.startswith("opencue-gateway: JWT_SECRET: required")


def test_sandbox_token(capsys, monkeypatch):
    """--sandbox signs with the development secret."""
    monkeypatch.delenv("JWT_SECRET", raising=False)
    assert main(["token", "--sub", "me", "--sandbox"]) == 0
    jwt.decode(capsys.readouterr().out.strip(), "default-secret-key", algorithms=["HS256"])


def test_a_command_is_required():
    """No subcommand is a usage error."""
    with pytest.raises(SystemExit):
        main([])
