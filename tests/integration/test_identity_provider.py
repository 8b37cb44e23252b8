"""Tokens from a studio's identity provider, over real sockets: key files, a JWKS, roles.

The JWKS is served by a loopback HTTP server; the gateway fetches it as it
would Keycloak's.  Rotation is driven by tokens naming new kids (the early
fetch), not by waiting for the refresh interval, so no test waits on time.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted
from twisted.logger import formatEvent

from opencue_gateway.jwks import JwksKeys
from tests.conftest import SECRET, Gateway, make_token
from tests.idp import EC_KEY, ED_KEY, RSA_KEY, RSA_KEY_2, jwk, pem, sign
from tests.unit.test_auth import ATTACKER_EC, confusion_tokens

GET_SHOWS = "/show.ShowInterface/GetShows"
PAUSE = "/job.JobInterface/Pause"
KILL = "/job.JobInterface/Kill"
IDP_ALGORITHMS = "HS256,RS256,PS256,ES256,EdDSA"


async def loaded(gateway: Gateway) -> JwksKeys:
    """The gateway's JWKS source once its first fetch is over."""
    source = gateway.process.gateway.jwks
    assert source is not None
    if not source.keys:
        await source.fetch()
    return source


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "idp.pem"
    path.write_bytes(pem(RSA_KEY) + pem(ED_KEY))
    return path


@pytest.fixture
def file_gateway(start_gateway, cuebot, key_file):
    """A gateway holding CueWeb's secret and the identity provider's keys from a PEM file."""
    return start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_PUBLIC_KEY_FILE=str(key_file),
                         JWT_ALGORITHMS=IDP_ALGORITHMS)


@pytest.fixture
def jwks_gateway(start_gateway, cuebot, jwks_server):
    """A gateway holding CueWeb's secret and the keys of a JWKS on loopback (kid k1: EC P-256)."""
    jwks_server.document = {"keys": [jwk(EC_KEY, "k1"), jwk(ED_KEY, "d1")]}
    return start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_JWKS_URL=jwks_server.url,
                         JWT_ALGORITHMS=IDP_ALGORITHMS)


@pytest.mark.parametrize(("key", "algorithm"), [(RSA_KEY, "RS256"), (RSA_KEY, "PS256"),
                                                 (ED_KEY, "EdDSA")])
@pytest_twisted.ensureDeferred
async def test_tokens_signed_with_a_key_file_key_are_accepted(file_gateway, cuebot, key, algorithm):
    """RS256, PS256 and EdDSA tokens verify against JWT_PUBLIC_KEY_FILE, beside CueWeb's HS256."""
    response = await file_gateway.post(GET_SHOWS, token=sign(key, algorithm, sub="pipeline"))
    assert response.status == 200, response.body
    assert (await file_gateway.post(GET_SHOWS, token=make_token(sub="cueweb"))).status == 200
    assert [r.metadata["opencue-gateway-sub"] for r in cuebot.received] == ["pipeline", "cueweb"]


@pytest_twisted.ensureDeferred
async def test_es256_and_eddsa_tokens_verify_through_the_jwks(jwks_gateway, jwks_server):
    """ES256 and EdDSA tokens naming JWKS kids verify; CueWeb's HS256 tokens still do."""
    await loaded(jwks_gateway)
    for token in (sign(EC_KEY, "ES256", kid="k1"), sign(ED_KEY, "EdDSA", kid="d1"),
                  sign(EC_KEY, "ES256"), make_token()):
        response = await jwks_gateway.post(GET_SHOWS, token=token)
        assert response.status == 200, response.body
    assert len(jwks_server.hits) == 1


@pytest_twisted.ensureDeferred
async def test_key_rotation_a_new_kid_appears_and_the_old_one_disappears(jwks_gateway,
                                                                        jwks_server):
    """A token with a new kid makes the gateway fetch the set; the retired key stops verifying."""
    old_token = sign(EC_KEY, "ES256", kid="k1")
    await loaded(jwks_gateway)
    assert (await jwks_gateway.post(GET_SHOWS, token=old_token)).status == 200
    jwks_server.document = {"keys": [jwk(RSA_KEY_2, "k2")]}
    new = await jwks_gateway.post(GET_SHOWS, token=sign(RSA_KEY_2, "RS256", kid="k2"))
    assert new.status == 200, new.body
    assert len(jwks_server.hits) == 2
    retired = await jwks_gateway.post(GET_SHOWS, token=old_token)
    assert retired.status == 401
    assert retired.json()["message"] == "the token's signing key (kid 'k1') is not known"
    assert len(jwks_server.hits) == 2  # at most one early fetch per JWT_JWKS_REFRESH


@pytest_twisted.ensureDeferred
async def test_a_token_signed_by_an_unknown_key_is_refused(jwks_gateway, jwks_server, cuebot):
    """Unpublished kids get a 401 after one early fetch, a borrowed kid too; Cuebot sees none."""
    await loaded(jwks_gateway)
    attempts = [await jwks_gateway.post(GET_SHOWS, token=sign(RSA_KEY, "RS256", kid=f"x{n}"))
                for n in range(3)]
    assert [r.status for r in attempts] == [401, 401, 401]
    assert attempts[0].json()["message"] == "the token's signing key (kid 'x0') is not known"
    forged_kid = await jwks_gateway.post(GET_SHOWS, token=sign(ATTACKER_EC, "ES256", kid="k1"))
    assert forged_kid.status == 401
    assert forged_kid.json()["message"] == "the token signature is invalid"
    assert len(jwks_server.hits) == 2 and not cuebot.received
    metrics = (await jwks_gateway.request("GET", "/metrics", None)).body.decode()
    assert 'opencue_gateway_auth_failures_total{reason="unknown_key"} 3.0' in metrics


@pytest_twisted.ensureDeferred
async def test_the_gateway_starts_while_the_jwks_cannot_be_fetched(start_gateway, cuebot,
                                                                   jwks_server):
    """Without the provider's keys the gateway runs, /readyz says why, IdP tokens get a 401."""
    jwks_server.status = 503
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_JWKS_URL=jwks_server.url,
                            JWT_ALGORITHMS=IDP_ALGORITHMS)
    await gateway.process.gateway.jwks.fetch()
    reason = "the signing keys of JWT_JWKS_URL are not loaded yet"
    ready = await gateway.request("GET", "/readyz", None)
    assert ready.status == 503 and reason in ready.json()["reasons"]
    refused = await gateway.post(GET_SHOWS, token=sign(EC_KEY, "ES256", kid="k1"))
    assert refused.status == 401
    assert "identity provider's signing keys are not available yet" in refused.json()["message"]
    assert (await gateway.post(GET_SHOWS, token=make_token())).status == 200
    jwks_server.status = 200
    jwks_server.document = {"keys": [jwk(EC_KEY, "k1")]}
    await gateway.process.gateway.jwks.fetch()
    assert reason not in (await gateway.request("GET", "/readyz", None)).body.decode()
    assert (await gateway.post(GET_SHOWS, token=sign(EC_KEY, "ES256", kid="k1"))).status == 200


@pytest_twisted.ensureDeferred
async def test_the_confusion_attack_fails_over_http(file_gateway, cuebot):
    """HS256 'signed' with any public form of the configured RSA key is a 401."""
    for name, token in confusion_tokens().items():
        response = await file_gateway.post(GET_SHOWS, token=token)
        assert response.status == 401, name
        assert response.json()["message"] == "the token signature is invalid"
    assert not cuebot.received


@pytest.fixture
def policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[roles.admin]\nallow = ["*"]\n\n'
                    '[roles.wrangler]\nallow = ["@readonly", "job.JobInterface/*"]\n'
                    'deny = ["job.JobInterface/Kill"]\n\n'
                    '[default]\nallow = ["show.ShowInterface/Get*"]\n')
    return path


@pytest_twisted.ensureDeferred
async def test_list_roles_under_a_nested_claim_against_a_policy(start_gateway, cuebot, key_file,
                                                                policy_file, tmp_path):
    """Keycloak-style realm_access.roles: any role may allow, a deny of any role wins, audited."""
    audit_file = tmp_path / "audit.jsonl"
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_PUBLIC_KEY_FILE=str(key_file),
                            JWT_ALGORITHMS=IDP_ALGORITHMS, JWT_ROLE_CLAIM="realm_access.roles",
                            AUTH_POLICY_FILE=str(policy_file), AUDIT_LOG_FILE=str(audit_file))

    def token(*roles: str) -> str:
        return sign(RSA_KEY, "RS256", sub="ann", realm_access={"roles": list(roles)})

    wrangler = token("wrangler", "offline_access")
    assert (await gateway.post(PAUSE, token=wrangler)).status == 200
    refused = await gateway.post(KILL, token=wrangler)
    assert refused.status == 403
    assert refused.json()["message"] == (
        "roles 'wrangler', 'offline_access' may not call job.JobInterface/Kill")
    assert (await gateway.post(KILL, token=token("admin", "wrangler"))).status == 403
    assert (await gateway.post(KILL, token=token("admin"))).status == 200
    assert (await gateway.post(GET_SHOWS, token=token("offline_access"))).status == 200
    assert (await gateway.post(PAUSE, token=token())).status == 403
    records = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [(r["role"], r["method"], r["code"]) for r in records] == [
        (["wrangler", "offline_access"], "job.JobInterface/Pause", "OK"),
        (["wrangler", "offline_access"], "job.JobInterface/Kill", "PERMISSION_DENIED"),
        (["admin", "wrangler"], "job.JobInterface/Kill", "PERMISSION_DENIED"),
        (["admin"], "job.JobInterface/Kill", "OK"),
        ([], "job.JobInterface/Pause", "PERMISSION_DENIED"),
    ]


@pytest_twisted.ensureDeferred
async def test_config_shows_key_sources_and_no_key_material(jwks_gateway, key_file,
                                                            start_gateway, cuebot, jwks_server):
    """GET /config lists every key's source, type, kid and fingerprint; never a secret or key."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_JWKS_URL=jwks_server.url,
                            JWT_PUBLIC_KEY_FILE=str(key_file), JWT_ALGORITHMS=IDP_ALGORITHMS,
                            JWT_PREVIOUS_SECRETS="x" * 40)
    await loaded(gateway)
    response = await gateway.request("GET", "/config", None, token=make_token())
    config = response.json()
    assert [(k["source"], k["type"], k.get("kid")) for k in config["JWT_KEYS"]] == [
        ("JWT_SECRET", "HMAC secret", None), ("JWT_PREVIOUS_SECRETS[0]", "HMAC secret", None),
        ("JWT_PUBLIC_KEY_FILE", "RSA 2048", None), ("JWT_PUBLIC_KEY_FILE", "Ed25519", None),
        ("JWT_JWKS_URL", "EC P-256", "k1"), ("JWT_JWKS_URL", "Ed25519", "d1")]
    assert all(k["fingerprint"].startswith("sha256:") for k in config["JWT_KEYS"][2:])
    assert config["JWT_JWKS"] == {"url": jwks_server.url, "refresh_seconds": 300.0, "keys": 2,
                                  "error": None}
    text = response.body.decode()
    for material in (SECRET, "x" * 40, jwk(EC_KEY, None)["x"], jwk(RSA_KEY, None)["n"][:32],
                     pem(RSA_KEY).decode().splitlines()[1]):
        assert material not in text


CONTROLS = {"newline and a fake record": "\n2026-11-29T06:40:00+0000 [opencue_gateway.audit#info]",
            "terminal escape": "\x1b[31m", "NUL": "\x00", "DEL": "\x7f", "C1 NEL": "\x85",
            "line separator": "\u2028"}


@pytest.mark.parametrize(("named", "claims"), [
    ("sub", {"sub": "ann{c}"}),
    ("role", {"sub": "ann", "role": "admin{c}"}),
])
@pytest_twisted.ensureDeferred
async def test_control_characters_in_logged_claims_are_401(gateway, cuebot, captured_logs,
                                                           named, claims):
    """A validly signed token with a control character in sub or role is a 401 naming the claim."""
    for control in CONTROLS.values():
        filled = {k: v.replace("{c}", control) for k, v in claims.items()}
        response = await gateway.post(KILL, token=make_token(**filled))
        assert response.status == 401
        assert response.json()["message"] == (
            f"the token's '{named}' claim contains a control character")
    assert not cuebot.received
    lines = [formatEvent(e) for e in captured_logs]
    assert all(line.isprintable() for line in lines), lines


@pytest_twisted.ensureDeferred
async def test_control_characters_in_a_listed_nested_role_are_401(start_gateway, cuebot,
                                                                  key_file):
    """The same holds for every role of a list under a nested claim."""
    gateway = start_gateway(CUEBOT_ENDPOINT=cuebot.address, JWT_PUBLIC_KEY_FILE=str(key_file),
                            JWT_ALGORITHMS=IDP_ALGORITHMS, JWT_ROLE_CLAIM="realm_access.roles")
    for control in CONTROLS.values():
        token = sign(RSA_KEY, "RS256", realm_access={"roles": ["ok", f"x{control}"]})
        response = await gateway.post(GET_SHOWS, token=token)
        assert response.status == 401
        assert response.json()["message"] == (
            "the token's 'realm_access.roles' claim contains a control character")
    assert not cuebot.received


@pytest_twisted.ensureDeferred
async def test_any_printable_sub_reaches_cuebot_as_ascii_metadata(gateway, cuebot, captured_logs):
    """Non-ASCII subs are percent-encoded for Cuebot (no 500 'Invalid metadata'), logged as is."""
    subs = {"José": "Jos%C3%A9", "田中": "%E7%94%B0%E4%B8%AD", "100%": "100%25", "a b": "a b"}
    for sub, sent in subs.items():
        response = await gateway.post(PAUSE, token=make_token(sub=sub))
        assert response.status == 200, response.body
        assert cuebot.last().metadata["opencue-gateway-sub"] == sent
    audit = [e for e in captured_logs if e.get("log_namespace") == "opencue_gateway.audit"]
    assert [e["audit"]["sub"] for e in audit] == list(subs)
    assert formatEvent(audit[0]).startswith("audit: José (role (none))")


@pytest_twisted.ensureDeferred
async def test_the_readme_keycloak_setup_with_cueweb_alongside(start_gateway, cuebot, jwks_server,
                                                               policy_file):
    """The README's Keycloak example: provider tokens need its iss and aud, CueWeb's do not."""
    realm = "https://keycloak.studio.example/realms/studio"
    jwks_server.document = {"keys": [jwk(RSA_KEY, "kc-1", alg="RS256", use="sig")]}
    gateway = start_gateway(
        CUEBOT_ENDPOINT=cuebot.address, JWT_ALGORITHMS="HS256,RS256",
        JWT_JWKS_URL=jwks_server.url, JWT_IDP_ISSUER=realm, JWT_IDP_AUDIENCE="opencue",
        JWT_ROLE_CLAIM="role,realm_access.roles", AUTH_POLICY_FILE=str(policy_file))
    await loaded(gateway)

    def keycloak(**claims: object) -> str:
        claims.setdefault("realm_access", {"roles": ["wrangler", "default-roles-studio"]})
        return sign(RSA_KEY, "RS256", kid="kc-1", sub="f81d4fae-7dec", **claims)

    assert (await gateway.post(KILL, token=make_token(role="admin"))).status == 200
    assert (await gateway.post(PAUSE, token=keycloak(iss=realm, aud=["opencue", "account"]))
            ).status == 200
    assert (await gateway.post(KILL, token=keycloak(iss=realm, aud="opencue"))).status == 403
    for token, reason in ((keycloak(iss=realm, aud="account"), "audience is not accepted"),
                          (keycloak(iss=realm + "2", aud="opencue"), "issuer is not accepted"),
                          (keycloak(aud="opencue"), "no 'iss' claim")):
        response = await gateway.post(PAUSE, token=token)
        assert response.status == 401 and reason in response.json()["message"]


@pytest_twisted.ensureDeferred
async def test_sighup_rereads_the_key_file_and_keeps_it_when_broken(file_gateway, key_file,
                                                                    captured_logs):
    """A rotated key file takes effect on SIGHUP; a broken one is refused and the old kept."""
    old, new = sign(RSA_KEY, "RS256"), sign(RSA_KEY_2, "RS256")
    assert (await file_gateway.post(GET_SHOWS, token=old)).status == 200
    key_file.write_bytes(pem(RSA_KEY_2))
    file_gateway.process.reload()
    assert (await file_gateway.post(GET_SHOWS, token=new)).status == 200
    assert (await file_gateway.post(GET_SHOWS, token=old)).status == 401
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    file_gateway.process.reload()
    assert (await file_gateway.post(GET_SHOWS, token=new)).status == 200
    assert any("SIGHUP: kept the previous settings: JWT_PUBLIC_KEY_FILE" in formatEvent(e)
               for e in captured_logs)
