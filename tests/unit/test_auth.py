"""Authentication through twisted.cred: the checker, the realm, headers and challenges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import grpc
import jwt
import pytest
import pytest_twisted
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm
from zope.interface.verify import verifyObject

from opencue_gateway.auth import (
    Authenticator,
    BearerToken,
    GatewayRealm,
    IPrincipal,
    JWTChecker,
    TokenRejected,
    bearer_from_header,
    challenge,
    make_portal,
    sign_token,
)
from opencue_gateway.config import HMAC_ALGORITHMS, PUBLIC_KEY_ALGORITHMS, ConfigError
from opencue_gateway.errors import GatewayError
from opencue_gateway.keys import public_key
from tests.conftest import SECRET, make_config, make_token
from tests.idp import EC384_KEY, EC_KEY, ED_KEY, RSA_KEY, RSA_KEY_2, jwk, pem, sign
from tests.sandbox.sandbox_support import FakeClock


@pytest.fixture
def checker() -> JWTChecker:
    return JWTChecker([SECRET.encode()])


def readme_token(secret: str, payload: dict) -> str:
    """The README's hand-rolled HS256 snippet, verbatim in spirit."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def test_checker_and_realm_provide_their_interfaces(checker):
    """The checker and realm really implement twisted.cred's interfaces."""
    assert verifyObject(ICredentialsChecker, checker)
    assert verifyObject(IRealm, GatewayRealm())


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_are_accepted(checker, algorithm):
    """HS256, HS384 and HS512 tokens signed with the secret verify."""
    claims = checker.requestAvatarId(BearerToken(make_token(algorithm=algorithm, role="admin")))
    assert claims["role"] == "admin"


def test_readme_snippet_token_is_accepted(checker):
    """A token from the README's hand-rolled Python snippet verifies."""
    token = readme_token(SECRET, {"sub": "user", "exp": int(time.time()) + 3600})
    assert checker.requestAvatarId(BearerToken(token))["sub"] == "user"


@pytest.mark.parametrize(("token", "reason"), [
    (make_token(exp=int(time.time()) - 3600), "the token has expired"),
    (make_token(secret="x" * 40), "the token signature is invalid"),
    (make_token(nbf=int(time.time()) + 3600), "not valid yet (nbf"),
    (make_token(iat=int(time.time()) + 3600), "not valid yet (iat"),
    ("abc", "not a well-formed JWT"),
])
def test_bad_tokens_are_rejected_with_a_reason(checker, token, reason):
    """Each way a token fails has its own message."""
    with pytest.raises(TokenRejected) as caught:
        checker.requestAvatarId(BearerToken(token))
    assert reason in caught.value.reason


def test_token_without_exp_is_rejected(checker):
    """exp is required (the Go gateway does not require it; the contract does)."""
    token = readme_token(SECRET, {"sub": "user"})
    with pytest.raises(TokenRejected, match="no 'exp' claim"):
        checker.requestAvatarId(BearerToken(token))


def test_alg_none_is_rejected(checker):
    """An unsigned token never verifies."""
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(
        json.dumps({"exp": int(time.time()) + 60}).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenRejected, match="algorithm 'none' is not accepted"):
        checker.requestAvatarId(BearerToken(f"{header}.{body}."))


def test_leeway_tolerates_small_clock_skew():
    """A token expired a few seconds ago still passes within the leeway."""
    checker = JWTChecker([SECRET.encode()], leeway=30)
    checker.requestAvatarId(BearerToken(make_token(exp=int(time.time()) - 5)))


def test_realm_builds_the_principal():
    """sub and role come from the claims; missing ones are empty strings."""
    realm = GatewayRealm()
    _iface, principal, _logout = realm.requestAvatar({"sub": "ann", "role": "ops", "x": 1}, None,
                                                     IPrincipal)
    assert (principal.sub, principal.role, principal.claims["x"]) == ("ann", "ops", 1)
    _iface, anonymous, _logout = realm.requestAvatar({"user": "test"}, None, IPrincipal)
    assert (anonymous.sub, anonymous.role) == ("", "")


@pytest.mark.parametrize(("header", "token"), [
    (b"Bearer abc", "abc"), (b"bearer abc", "abc"), (b"BEARER  abc ", "abc"),
])
def test_bearer_scheme_is_case_insensitive(header, token):
    """The scheme word is case-insensitive and blanks around the token are tolerated."""
    assert bearer_from_header(header).token == token


@pytest.mark.parametrize("header", [None, b"Basic dXNlcjpwYXNz", b"Bearer", b"Bearer   "])
def test_missing_tokens_get_a_bare_challenge(header):
    """No bearer token at all: a bare RFC 6750 challenge without an error attribute."""
    with pytest.raises(TokenRejected) as caught:
        bearer_from_header(header)
    assert challenge(caught.value) == 'Bearer realm="opencue-gateway"'


def test_invalid_token_challenge_names_the_error():
    """A bad token's challenge carries error="invalid_token" and the reason."""
    value = challenge(TokenRejected('the token "has" expired'))
    assert value == ('Bearer realm="opencue-gateway", error="invalid_token", '
                     "error_description=\"the token 'has' expired\"")


def test_token_never_appears_in_repr():
    """Credentials cannot leak their token through repr or logs."""
    assert "secret-token" not in repr(BearerToken("secret-token"))


@pytest_twisted.ensureDeferred
async def test_authenticator_turns_rejections_into_401(checker):
    """The app-facing authenticator raises a 401 GatewayError with the challenge header."""
    authenticator = Authenticator(make_portal(checker))
    principal = await authenticator.authenticate(f"Bearer {make_token(sub='ann')}".encode())
    assert principal.sub == "ann"
    with pytest.raises(GatewayError) as caught:
        await authenticator.authenticate(b"Bearer nope")
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.headers["WWW-Authenticate"].startswith('Bearer realm="opencue-gateway", ')


def test_verified_tokens_are_remembered_until_they_expire():
    """A verified token is not re-verified on the next call, only after exp (plus leeway)."""
    clock = FakeClock(time.time())
    checker = JWTChecker([SECRET.encode()], leeway=30, clock=clock)
    token = make_token(exp=int(clock.now) + 60)
    claims = checker.requestAvatarId(BearerToken(token))
    assert checker.requestAvatarId(BearerToken(token)) is claims
    clock.now += 60 + 31
    assert checker.requestAvatarId(BearerToken(token)) is not claims  # verified afresh


def test_new_secrets_forget_remembered_tokens():
    """After set_secrets (SIGHUP), a token of the retired secret fails even if it was cached."""
    checker = JWTChecker([SECRET.encode()])
    token = make_token()
    checker.requestAvatarId(BearerToken(token))
    checker.set_secrets([b"y" * 40])
    with pytest.raises(TokenRejected, match="signature"):
        checker.requestAvatarId(BearerToken(token))


def test_remembered_tokens_are_bounded():
    """At most VERIFIED_TOKENS tokens are remembered."""
    from opencue_gateway import auth

    checker = JWTChecker([SECRET.encode()])
    for n in range(auth.VERIFIED_TOKENS + 50):
        checker._remember(f"token-{n}", {"exp": time.time() + 60})
    assert len(checker._verified) == auth.VERIFIED_TOKENS


def test_signed_tokens_follow_the_configured_algorithm_and_role_claim():
    """The sandbox's start-up token and `opencue-gateway token` must pass this gateway's own
    checks even with JWT_ALGORITHMS=HS512 and a custom role claim."""
    config = make_config(JWT_ALGORITHMS="HS512", JWT_ROLE_CLAIM="groups")
    token = sign_token(config, "ann", "dashboard", 60)
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    checker = JWTChecker([config.jwt_secret], algorithms=config.jwt_algorithms)
    claims = checker.requestAvatarId(BearerToken(token))
    assert claims["sub"] == "ann" and claims["groups"] == "dashboard"


# --- Public keys, algorithm binding, claim types and identity strings (issue 17) ---

ALL_ALGORITHMS = HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS


SECRETS = (SECRET.encode(),)


def public_checker(*private_keys, algorithms=ALL_ALGORITHMS, secrets=SECRETS,
                   **kwargs) -> JWTChecker:
    """A checker holding the public halves of these keys (as from a PEM file) and the secret."""
    keys = [public_key(k.public_key(), algorithms, "JWT_PUBLIC_KEY_FILE") for k in private_keys]
    return JWTChecker(secrets, algorithms=algorithms, public_keys=keys, **kwargs)


@pytest.mark.parametrize(("key", "algorithm"), [
    (RSA_KEY, "RS256"), (RSA_KEY, "RS512"), (RSA_KEY, "PS256"), (RSA_KEY, "PS384"),
    (EC_KEY, "ES256"), (EC384_KEY, "ES384"), (ED_KEY, "EdDSA"),
])
def test_public_key_tokens_are_accepted(key, algorithm):
    """Tokens signed with a configured key's private half verify in every supported algorithm."""
    checker = public_checker(RSA_KEY, EC_KEY, EC384_KEY, ED_KEY)
    claims = checker.requestAvatarId(BearerToken(sign(key, algorithm, sub="svc")))
    assert claims["sub"] == "svc"


def test_hmac_and_public_key_tokens_verify_side_by_side():
    """CueWeb's HS256 tokens and the identity provider's RS256 tokens verify in one gateway."""
    checker = public_checker(RSA_KEY)
    assert checker.requestAvatarId(BearerToken(make_token(sub="cueweb")))["sub"] == "cueweb"
    assert checker.requestAvatarId(BearerToken(sign(RSA_KEY, "RS256", sub="idp")))["sub"] == "idp"


def confusion_tokens() -> dict[str, str]:
    """HS256 tokens 'signed' with every public form of the RSA key (algorithm confusion)."""
    public = RSA_KEY.public_key()
    forms = {
        "PEM": pem(RSA_KEY),
        "PEM without newline": pem(RSA_KEY).strip(),
        "DER": public.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo),
        "PKCS#1 PEM": public.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.PKCS1),
        "JWK JSON": json.dumps(jwk(RSA_KEY, None)).encode(),
        "modulus": public.public_numbers().n.to_bytes(256, "big"),
    }
    claims = {"sub": "attacker", "role": "admin", "exp": int(time.time()) + 600}
    tokens = {}
    for name, secret in forms.items():
        header = {"alg": "HS256", "typ": "JWT"}
        signing_input = (f"{b64(json.dumps(header).encode())}."
                         f"{b64(json.dumps(claims).encode())}")
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        tokens[name] = f"{signing_input}.{b64(signature)}"
    return tokens


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize(("name", "token"), sorted(confusion_tokens().items()))
def test_algorithm_confusion_never_verifies(name, token):
    """HS256 keyed with the public key's bytes is tried against HMAC secrets only, and fails."""
    checker = public_checker(RSA_KEY)
    with pytest.raises(TokenRejected, match="the token signature is invalid"):
        checker.requestAvatarId(BearerToken(token))


ATTACKER_RSA = RSA_KEY_2
ATTACKER_EC = ec.generate_private_key(ec.SECP256R1())


def rsa_signature_under_es256_header() -> str:
    """A token claiming ES256 that carries an RSA signature."""
    head, body, _ = sign(EC_KEY, "ES256").split(".")
    return f"{head}.{body}.{sign(RSA_KEY, 'RS256').split('.')[2]}"


@pytest.mark.parametrize(("case", "token", "reason"), [
    ("another RSA key", sign(ATTACKER_RSA, "RS256"), "the token signature is invalid"),
    ("another P-256 key", sign(ATTACKER_EC, "ES256"), "the token signature is invalid"),
    ("a kid naming a held key", sign(ATTACKER_EC, "ES256", kid="k1"),
     "the token signature is invalid"),
    ("the attacker's key embedded as jwk", jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 600}, ATTACKER_RSA, algorithm="RS256",
        headers={"jwk": jwk(ATTACKER_RSA, None), "x5c": ["AAAA"]}),
     "the token signature is invalid"),
    ("an RSA signature under ES256", rsa_signature_under_es256_header(),
     "the token signature is invalid"),
    ("a curve no key has", sign(EC384_KEY, "ES384"), "no key of this gateway verifies ES384"),
])
def test_tokens_no_configured_key_signed_are_refused(case, token, reason):
    """Another key, an embedded key, a borrowed kid or a mismatched curve never verifies."""
    checker = public_checker(RSA_KEY, EC_KEY)
    with pytest.raises(TokenRejected, match=reason):
        checker.requestAvatarId(BearerToken(token))


IDP = "https://idp.example"


@pytest.mark.parametrize(("token", "refusal"), [
    (make_token(), None),
    (make_token(iss="https://other.example"), None),
    (sign(RSA_KEY, "RS256", iss=IDP, aud=["opencue", "account"]), None),
    (sign(RSA_KEY, "RS256", iss=IDP, aud="account"), "the token's audience is not accepted"),
    (sign(RSA_KEY, "RS256", iss=IDP), "the token has no 'aud' claim"),
    (sign(RSA_KEY, "RS256", iss="https://evil.example", aud="opencue"),
     "the token's issuer is not accepted"),
    (sign(RSA_KEY, "RS256", aud="opencue"), "the token has no 'iss' claim"),
])
def test_idp_issuer_and_audience_apply_to_public_key_tokens_only(token, refusal):
    """JWT_IDP_ISSUER/AUDIENCE check the provider's tokens; CueWeb's HS256 tokens need neither."""
    checker = public_checker(RSA_KEY, idp_issuer=IDP, idp_audience=["opencue"])
    if refusal is None:
        assert checker.requestAvatarId(BearerToken(token))
    else:
        with pytest.raises(TokenRejected) as caught:
            checker.requestAvatarId(BearerToken(token))
        assert caught.value.reason == refusal


def test_without_idp_settings_jwt_issuer_applies_to_every_token():
    """JWT_ISSUER alone binds the provider's tokens as well as HMAC ones."""
    checker = public_checker(RSA_KEY, issuer=IDP)
    assert checker.requestAvatarId(BearerToken(sign(RSA_KEY, "RS256", iss=IDP)))
    for token in (sign(RSA_KEY, "RS256"), make_token()):
        with pytest.raises(TokenRejected, match="no 'iss' claim"):
            checker.requestAvatarId(BearerToken(token))


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [str(int(time.time()) + 3600), "soon", True, None, [1], 1e400])
def test_numeric_date_claims_must_be_numbers(claim, value):
    """exp, nbf and iat given as strings, booleans, null, lists or infinity are refused."""
    token = readme_token(SECRET, {"sub": "x", "exp": int(time.time()) + 3600, claim: value})
    with pytest.raises(TokenRejected, match=f"the token's '{claim}' claim must be a number"):
        JWTChecker([SECRET.encode()]).requestAvatarId(BearerToken(token))


def test_numeric_dates_may_be_fractional():
    """A NumericDate may carry fractions of a second (RFC 7519 section 2)."""
    token = readme_token(SECRET, {"exp": time.time() + 60.5, "iat": time.time() - 0.25})
    assert JWTChecker([SECRET.encode()]).requestAvatarId(BearerToken(token))


def test_new_public_keys_make_remembered_tokens_verify_again():
    """After set_public_keys (SIGHUP) a token of a retired key fails, even if it was remembered."""
    checker = public_checker(RSA_KEY)
    token = sign(RSA_KEY, "RS256")
    checker.requestAvatarId(BearerToken(token))
    checker.set_public_keys([public_key(RSA_KEY_2.public_key(), ALL_ALGORITHMS, "file")])
    with pytest.raises(TokenRejected, match="signature is invalid"):
        checker.requestAvatarId(BearerToken(token))


def test_a_checker_needs_some_key():
    """No secret and no public key source would refuse every token: refused at construction."""
    with pytest.raises(ValueError, match="needs a non-empty secret or public keys"):
        JWTChecker([])
    assert public_checker(RSA_KEY, secrets=(), algorithms=("RS256",)).requestAvatarId(
        BearerToken(sign(RSA_KEY, "RS256")))


def test_key_descriptions_name_every_source():
    """describe_keys lists the secret (no material) and each public key with its fingerprint."""
    described = public_checker(RSA_KEY, EC_KEY).describe_keys()
    assert [(d["source"], d["type"]) for d in described] == [
        ("JWT_SECRET", "HMAC secret"), ("JWT_PUBLIC_KEY_FILE", "RSA 2048"),
        ("JWT_PUBLIC_KEY_FILE", "EC P-256")]
    assert "fingerprint" not in described[0] and SECRET not in repr(described)
    assert all(d["fingerprint"].startswith("sha256:") for d in described[1:])


def principal_of(claims: dict, role_claim: str = "role"):
    """The principal the realm makes of these claims (or the TokenRejected it raises)."""
    return GatewayRealm(role_claim).requestAvatar(claims, None, IPrincipal)[1]


@pytest.mark.parametrize(("role_claim", "claims", "role", "roles"), [
    ("role", {"role": "ops"}, "ops", ("ops",)),
    ("role", {}, "", ()),
    ("role", {"role": 7}, "7", ("7",)),
    ("roles", {"roles": ["a", "b"]}, ("a", "b"), ("a", "b")),
    ("roles", {"roles": []}, (), ()),
    ("realm_access.roles", {"realm_access": {"roles": ["wrangler", "offline_access"]}},
     ("wrangler", "offline_access"), ("wrangler", "offline_access")),
    ("realm_access.roles", {"realm_access": {}}, "", ()),
    ("realm_access.roles", {"realm_access": "flat"}, "", ()),
    ("resource_access.opencue.roles",
     {"resource_access": {"opencue": {"roles": ["admin"]}}}, ("admin",), ("admin",)),
    ("https://studio.example/roles", {"https://studio.example/roles": ["lead"]},
     ("lead",), ("lead",)),
    ("role,realm_access.roles", {"role": "admin", "realm_access": {"roles": ["x"]}},
     "admin", ("admin",)),
    ("role,realm_access.roles", {"realm_access": {"roles": ["x", "y"]}}, ("x", "y"), ("x", "y")),
    ("role,realm_access.roles", {}, "", ()),
])
def test_roles_come_from_a_dotted_path_and_may_be_lists(role_claim, claims, role, roles):
    """The role claim is a name or dotted path; lists keep their shape, full names win."""
    principal = principal_of(claims, role_claim)
    assert principal.role == role and principal.roles == roles


@pytest.mark.parametrize("value", [{"admin": True}, True, [["admin"]], ["ok", {"x": 1}], [None]])
def test_role_claims_that_are_not_roles_are_refused(value):
    """An object, a boolean or a list of non-strings is not a role: 401 naming the claim."""
    with pytest.raises(TokenRejected, match="'groups' claim must be a string or a list"):
        principal_of({"groups": value}, "groups")


CONTROLS = ["\n", "\r", "\t", "\x00", "\x1b[31m", "\x7f", "\x85", "\x9b", "\u2028", "\u2029"]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize(("role_claim", "claims", "named"), [
    ("role", {"sub": "ann{c}evil"}, "sub"),
    ("role", {"sub": "ann", "role": "admin{c}"}, "role"),
    ("groups", {"sub": "ann", "groups": ["ok", "x{c}y"]}, "groups"),
    ("realm_access.roles", {"sub": "ann", "realm_access": {"roles": ["{c}"]}},
     "realm_access.roles"),
])
def test_control_characters_in_logged_claims_are_refused(control, role_claim, claims, named):
    """C0, DEL, C1 and line separators in sub or any role refuse the token, naming the claim."""
    filled = json.loads(json.dumps(claims).replace("{c}", json.dumps(control)[1:-1]))
    with pytest.raises(TokenRejected, match=f"the token's '{named}' claim contains a control"):
        principal_of(filled, role_claim)


def test_printable_identities_in_any_script_are_kept():
    """Accented and non-Latin names are identities like any other."""
    principal = principal_of({"sub": "José Müller 田中", "roles": ["ré"]}, "roles")
    assert (principal.sub, principal.role) == ("José Müller 田中", ("ré",))


def test_a_bad_claim_among_several_role_claims_is_named():
    """With several role claims, the one that was read is the one named in the 401."""
    with pytest.raises(TokenRejected, match=r"the token's 'realm_access\.roles' claim contains"):
        principal_of({"realm_access": {"roles": ["a\x1b"]}}, "role,realm_access.roles")


def test_sign_token_needs_a_secret_and_an_hmac_algorithm():
    """`opencue-gateway token` cannot sign for a gateway that only holds public keys."""
    config = make_config(JWT_SECRET=None, JWT_JWKS_URL="https://idp.example/certs",
                         JWT_ALGORITHMS="RS256")
    with pytest.raises(ConfigError, match="signing a token needs JWT_SECRET"):
        sign_token(config, "ann", None, 60)
    mixed = make_config(JWT_JWKS_URL="https://idp.example/certs", JWT_ALGORITHMS="RS256,HS384",
                        JWT_ROLE_CLAIM="role,realm_access.roles")
    token = sign_token(mixed, "ann", "ops", 60)
    assert jwt.get_unverified_header(token)["alg"] == "HS384"
    assert jwt.decode(token, options={"verify_signature": False})["role"] == "ops"


def test_the_realm_makes_each_principal_once_per_claims_object():
    """The checker hands out one claims object per remembered token: the realm reuses the
    principal it made of it, and makes a new one for any other object (same content too)."""
    from opencue_gateway.auth import GatewayRealm, IPrincipal

    realm = GatewayRealm("realm_access.roles")
    claims = {"sub": "ann", "realm_access": {"roles": ["admin", "render"]}}
    _, first, _ = realm.requestAvatar(claims, None, IPrincipal)
    _, again, _ = realm.requestAvatar(claims, None, IPrincipal)
    _, other, _ = realm.requestAvatar(dict(claims), None, IPrincipal)
    assert first is again and other is not first
    assert (first.sub, first.role) == ("ann", ("admin", "render")) == (other.sub, other.role)
