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
