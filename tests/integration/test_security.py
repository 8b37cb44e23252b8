"""Security over real sockets: the token attack matrix, rotation, roles and the audit log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import time

import pytest
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import SECRET, make_token
from tests.unit.test_auth import readme_token

GET_SHOWS = "/show.ShowInterface/GetShows"
NOW = int(time.time())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw_token(header: dict, payload: dict, key: bytes = SECRET.encode(),
              digest=hashlib.sha256) -> str:
    """A token assembled by hand, for headers and keys no library would sign."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
VALID = make_token()
HEADER, PAYLOAD, SIGNATURE = VALID.split(".")


def tampered() -> str:
    """The valid token with its payload changed (role escalated), signature kept."""
    claims = json.loads(base64.urlsafe_b64decode(PAYLOAD + "=="))
    claims["role"] = "admin"
    return f"{HEADER}.{b64(json.dumps(claims).encode())}.{SIGNATURE}"


def alg_none(signed: bool) -> str:
    token = raw_token({"alg": "none", "typ": "JWT"}, {"sub": "x", "exp": NOW + 600})
    head, body, sig = token.split(".")
    return f"{head}.{body}.{sig if signed else ''}"


ATTACKS = {
    "alg none, no signature": (alg_none(False), "algorithm 'none' is not accepted"),
    "alg none, with signature": (alg_none(True), "algorithm 'none' is not accepted"),
    "wrong secret": (make_token(secret="not-the-secret" * 4), "signature is invalid"),
    "RS256": (make_token(secret=RSA_KEY, algorithm="RS256"), "'RS256' is not accepted"),
    "ES256": (make_token(secret=EC_KEY, algorithm="ES256"), "'ES256' is not accepted"),
    "PS256": (make_token(secret=RSA_KEY, algorithm="PS256"), "'PS256' is not accepted"),
    "HMAC with the public key": (raw_token({"alg": "HS256", "typ": "JWT"},
                                           {"sub": "x", "exp": NOW + 600}, key=PUBLIC_PEM),
                                 "signature is invalid"),
    "tampered payload": (tampered(), "signature is invalid"),
    "missing exp": (readme_token(SECRET, {"sub": "x"}), "no 'exp' claim"),
    "expired": (make_token(exp=NOW - 3600), "has expired"),
    "nbf in the future": (make_token(nbf=NOW + 3600), "not valid yet (nbf"),
    "iat in the future": (make_token(iat=NOW + 3600), "not valid yet (iat"),
    "malformed base64": ("@@@.###.$$$", "not a well-formed JWT"),
    "two parts": (f"{HEADER}.{PAYLOAD}", "not a well-formed JWT"),
    "four parts": (f"{VALID}.{SIGNATURE}", "not a well-formed JWT"),
    "larger than 8 KiB": (make_token(pad="x" * 9000), "larger than 8192 bytes"),
    "exp as a string": (make_token(exp=str(NOW + 3600)), "'exp' claim must be a number"),
    "exp infinite": (readme_token(SECRET, {"exp": float("inf")}), "'exp' claim must be a number"),
    "exp true": (make_token(exp=True), "'exp' claim must be a number"),
    "nbf as a string": (make_token(nbf=str(NOW)), "'nbf' claim must be a number"),
    "iat as a string": (make_token(iat=str(NOW)), "'iat' claim must be a number"),
    "kid of a non-string": (raw_token({"alg": "HS256", "kid": 5}, {"exp": NOW + 600}),
                            "not a well-formed JWT"),
}
# Tokens these tests sign with keys a gateway holding public keys would have configured.
SIGNED_WITH_CONFIGURED_KEYS = {"RS256", "ES256", "PS256"}


@pytest.mark.parametrize("case", sorted(ATTACKS))
@pytest_twisted.ensureDeferred
async def test_attack_matrix_is_rejected(gateway, cuebot, case):
    """Each forged, broken or unacceptable token is a 401 with code 16 and a reason."""
    token, reason = ATTACKS[case]
    response = await gateway.post(GET_SHOWS, token=token)
    assert response.status == 401
    body = response.json()
    assert body["code"] == 16 and reason in body["message"], body
    assert 'error="invalid_token"' in response.header("www-authenticate")
    assert token not in response.body.decode() and token not in response.header(
        "www-authenticate")
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_attack_matrix_holds_with_public_keys_configured(start_gateway, cuebot, tmp_path):
    """With the public keys and their algorithms configured too, every other attack still fails."""
    key_file = tmp_path / "keys.pem"
    key_file.write_bytes(PUBLIC_PEM + EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_PUBLIC_KEY_FILE=str(key_file),
                            JWT_ALGORITHMS="HS256,HS384,HS512,RS256,PS256,ES256")
    for case, (token, reason) in sorted(ATTACKS.items()):
        response = await gateway.post(GET_SHOWS, token=token)
        if case in SIGNED_WITH_CONFIGURED_KEYS:
            assert response.status == 200, case
        else:
            assert response.status == 401 and reason in response.json()["message"], case
    assert len(cuebot.received) == len(SIGNED_WITH_CONFIGURED_KEYS)


@pytest.mark.parametrize(("header", "status"), [
    ("Bearer", 401), ("Bearer   ", 401), ("Basic dXNlcjpwYXNz", 401), (f"bearer {VALID}", 200),
    (f"BEARER {VALID}", 200), (f"Bearer   {VALID}  ", 200), (f"Bearer\t{VALID}", 200),
])
@pytest_twisted.ensureDeferred
async def test_authorization_header_variants(gateway, header, status):
    """The scheme is case-insensitive and blanks are tolerated; no token or Basic is a 401."""
    response = await gateway.request("POST", GET_SHOWS, b"{}", headers={"Authorization": header})
    assert response.status == status, response.body
    if status == 401:
        assert response.header("www-authenticate") == 'Bearer realm="opencue-gateway"'


@pytest.mark.parametrize(("env", "claims", "status"), [
    ({"JWT_ISSUER": "cueweb"}, {"iss": "cueweb"}, 200),
    ({"JWT_ISSUER": "cueweb"}, {"iss": "evil"}, 401),
    ({"JWT_ISSUER": "cueweb"}, {}, 401),
    ({"JWT_AUDIENCE": "gateway,other"}, {"aud": "gateway"}, 200),
    ({"JWT_AUDIENCE": "gateway"}, {"aud": "somewhere-else"}, 401),
    ({"JWT_AUDIENCE": "gateway"}, {}, 401),
    ({}, {"aud": "anything"}, 200),
])
@pytest_twisted.ensureDeferred
async def test_issuer_and_audience_when_configured(start_gateway, cuebot, env, claims, status):
    """iss and aud are enforced only when configured; without JWT_AUDIENCE aud is ignored."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, **env)
    response = await gateway.post(GET_SHOWS, token=make_token(**claims))
    assert response.status == status, response.body


@pytest_twisted.ensureDeferred
async def test_algorithms_come_from_configuration(start_gateway, cuebot):
    """With JWT_ALGORITHMS=HS512 an HS256 token is refused even though its signature is good."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_ALGORITHMS="HS512")
    assert (await gateway.post(GET_SHOWS, token=make_token(algorithm="HS512"))).status == 200
    refused = await gateway.post(GET_SHOWS, token=make_token(algorithm="HS256"))
    assert refused.status == 401 and "'HS256' is not accepted" in refused.json()["message"]


@pytest_twisted.ensureDeferred
async def test_token_headers_never_fetch_keys(gateway, jwks_server):
    """kid, jku and x5u are never fetched or used to choose a key."""
    url, hits = jwks_server.url, jwks_server.hits
    headers = {"alg": "HS256", "typ": "JWT", "kid": f"{url}/kid", "jku": f"{url}/jwks",
               "x5u": f"{url}/cert"}
    good = raw_token(headers, {"sub": "x", "exp": NOW + 600})
    forged = raw_token(headers, {"sub": "x", "exp": NOW + 600}, key=b"attacker-key")
    assert (await gateway.post(GET_SHOWS, token=good)).status == 200
    assert (await gateway.post(GET_SHOWS, token=forged)).status == 401
    assert hits == []


@pytest_twisted.ensureDeferred
async def test_tokens_from_pyjwt_and_the_readme_snippet_are_accepted(gateway):
    """PyJWT tokens (sub absent or numeric) and the README's hand-rolled snippet verify."""
    for token in (make_token(), make_token(sub=None), make_token(sub=1234),
                  readme_token(SECRET, {"sub": "u", "exp": NOW + 600})):
        assert (await gateway.post(GET_SHOWS, token=token)).status == 200


@pytest.fixture(scope="session")
def node_jsonwebtoken(tmp_path_factory):
    """Node with the jsonwebtoken package (CueWeb's), installed into a temporary folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("Node.js and npm are not installed; CueWeb's jsonwebtoken cannot be tried")
    folder = tmp_path_factory.mktemp("node")
    result = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund",
                             "--prefix", str(folder), "jsonwebtoken@9"],
                            capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.skip(f"npm could not install jsonwebtoken: {result.stderr.strip()[:200]}")
    return node, folder


@pytest_twisted.ensureDeferred
async def test_tokens_from_node_jsonwebtoken_are_accepted(gateway, node_jsonwebtoken):
    """A token made exactly as CueWeb makes it (jsonwebtoken, sub/role/iat/exp) verifies."""
    node, folder = node_jsonwebtoken
    script = (
        "const jwt = require('jsonwebtoken');"
        "const now = Math.floor(Date.now() / 1000);"
        "process.stdout.write(jwt.sign({sub: 'user-id', role: 'user-role', iat: now,"
        " exp: now + 3600}, process.env.SECRET));"
    )
    token = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True,
                           cwd=folder, env={"SECRET": SECRET, "NODE_PATH":
                                            str(folder / "node_modules")}, timeout=60).stdout
    response = await gateway.post(GET_SHOWS, token=token)
    assert response.status == 200, response.body


@pytest_twisted.ensureDeferred
async def test_rotation_accepts_old_and_new_then_only_new(start_gateway, cuebot, tmp_path):
    """While rotating both secrets verify; after SIGHUP-style reload without the old, it fails."""
    old, new = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32
    secret_file = tmp_path / "secret"
    secret_file.write_text(new + "\n")
    rotating = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_SECRET=None,
                             JWT_SECRET_FILE=str(secret_file), JWT_PREVIOUS_SECRETS=old)
    for secret in (old, new):
        assert (await rotating.post(GET_SHOWS, token=make_token(secret=secret))).status == 200
    after = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_SECRET=new)
    assert (await after.post(GET_SHOWS, token=make_token(secret=new))).status == 200
    assert (await after.post(GET_SHOWS, token=make_token(secret=old))).status == 401
    newest = "newest-secret-" + "x" * 32
    secret_file.write_text(newest)
    rotating.process.reload()
    assert (await rotating.post(GET_SHOWS, token=make_token(secret=newest))).status == 200
    assert (await rotating.post(GET_SHOWS, token=make_token(secret=new))).status == 401


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[roles.admin]\nallow = ["*"]\n\n[roles.dashboard]\nallow = ["@readonly"]\n'
                    '\n[default]\nallow = ["show.ShowInterface/Get*"]\n')
    return path


@pytest_twisted.ensureDeferred
async def test_readonly_role_over_the_whole_catalog(start_gateway, cuebot, catalog, policy_file):
    """A dashboard token reaches Cuebot for every read-only method and for no mutating one."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, AUTH_POLICY_FILE=str(policy_file))
    token = make_token(role="dashboard")
    for method in catalog:
        response = await gateway.post(method.path, "{}", token=token)
        if method.read_only:
            assert response.status == 200, method.path
        else:
            assert response.status == 403, method.path
            assert response.json()["message"] == (
                f"role 'dashboard' may not call {method.path[1:]}")
            assert response.json()["code"] == 7
    assert {r.path for r in cuebot.received} == {m.path for m in catalog if m.read_only}


@pytest_twisted.ensureDeferred
async def test_roles_and_default(start_gateway, cuebot, policy_file):
    """Admin may kill; an unlisted role falls back to [default]; no role likewise."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, AUTH_POLICY_FILE=str(policy_file))
    kill = "/job.JobInterface/Kill"
    assert (await gateway.post(kill, token=make_token(role="admin"))).status == 200
    assert (await gateway.post(kill, token=make_token(role="intern"))).status == 403
    assert (await gateway.post(GET_SHOWS, token=make_token(role="intern"))).status == 200
    assert (await gateway.post("/host.HostInterface/GetHosts", token=make_token())).status == 403


@pytest_twisted.ensureDeferred
async def test_audit_records_each_mutating_call_once(start_gateway, cuebot, policy_file,
                                                     tmp_path, captured_logs):
    """Mutating calls (done, denied, malformed) are audited once each; reads are not."""
    audit_file = tmp_path / "audit.jsonl"
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, AUTH_POLICY_FILE=str(policy_file),
                            AUDIT_LOG_FILE=str(audit_file), LOG_LEVEL="error")
    await gateway.post("/job.JobInterface/Pause", token=make_token(sub="ann", role="admin"))
    await gateway.post("/job.JobInterface/Kill", token=make_token(sub="bob", role="dashboard"))
    await gateway.post("/job.JobInterface/Resume", '{"job": 5}',
                       token=make_token(sub="ann", role="admin"))
    await gateway.post(GET_SHOWS, token=make_token(sub="ann", role="admin"))
    records = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [(r["sub"], r["role"], r["method"], r["code"]) for r in records] == [
        ("ann", "admin", "job.JobInterface/Pause", "OK"),
        ("bob", "dashboard", "job.JobInterface/Kill", "PERMISSION_DENIED"),
        ("ann", "admin", "job.JobInterface/Resume", "INVALID_ARGUMENT"),
    ]
    assert all(r["duration_ms"] >= 0 and r["client"] == "127.0.0.1" and r["time"]
               for r in records)
    audit_events = [e for e in captured_logs if e.get("log_namespace") == "opencue_gateway.audit"]
    assert len(audit_events) == 3
