"""Who is calling: bearer JWTs verified through twisted.cred (COMPATIBILITY.md section 5).

The flow follows twisted.web's HTTPAuthSessionWrapper, rendered our way: the
app turns the ``Authorization`` header into :class:`BearerToken` credentials,
the :class:`Portal` asks the :class:`JWTChecker`, whose avatar id is the
verified claims, and the :class:`GatewayRealm` turns the claims into a
:class:`Principal`.  Authorization decisions look at the Principal, never at
raw headers.  Failures carry a reason safe to show the client: it never
echoes the token.

Tokens verify with HMAC secrets (CueWeb's HS256) and with public keys (the
studio's identity provider: a PEM file, a JWKS), each key bound to its own
algorithms by :mod:`opencue_gateway.keys`.  The identity a token carries
(``sub``, its roles) ends up in log lines and gRPC metadata, so the realm
refuses control characters in it.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import jwt
from jwt.warnings import InsecureKeyLengthWarning
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ICredentials
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface, implementer

from opencue_gateway.config import ConfigError, GatewayConfig
from opencue_gateway.errors import GatewayError
from opencue_gateway.jwks import JwksKeys
from opencue_gateway.keys import VerificationKey, candidates, secret_keys
from opencue_gateway.parsers import HMAC_ALGORITHMS

REALM = "opencue-gateway"
# A short JWT secret is named once at start-up, by the variable that holds it
# (config.short_secrets); PyJWT would repeat that on signing and verifying, with a
# library file path in the log.
warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
# Real tokens are a few hundred bytes; anything this large is refused before
# any parsing, so a hostile header cannot make the gateway decode megabytes.
MAX_TOKEN_BYTES = 8192
# Verified tokens remembered until they expire (each holds a few hundred bytes).
VERIFIED_TOKENS = 10_000


class IBearerToken(ICredentials):
    """Credentials made of one bearer token taken from the Authorization header."""

    token = Attribute("The raw token text (never log or echo it).")


@implementer(IBearerToken)
@dataclass(frozen=True, slots=True)
class BearerToken:
    """A bearer token as sent by the client; ``repr`` hides it so it cannot reach a log."""

    token: str = field(repr=False)


class IPrincipal(Interface):
    """The authenticated caller, as the rest of the gateway sees it."""

    sub = Attribute("The token's subject (``sub`` claim), '' when absent.")
    role = Attribute("The role claim as the token holds it: one role ('' when absent) "
                     "or a tuple of roles.")
    roles = Attribute("Every role the principal holds, as a tuple.")
    claims = Attribute("Every verified claim.")


@implementer(IPrincipal)
@dataclass(frozen=True, slots=True)
class Principal:
    """The avatar the realm hands out: who the caller is and what its token says.

    ``role`` keeps the claim's shape (a string, or a tuple when the token
    lists roles) so that the audit log records a list as a list.
    """

    sub: str
    role: str | tuple[str, ...]
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def roles(self) -> tuple[str, ...]:
        """Every role held: the policy allows a call when any of them allows it."""
        if isinstance(self.role, tuple):
            return self.role
        return (self.role,) if self.role else ()


class TokenRejected(UnauthorizedLogin):
    """Authentication failed for a reason the client may read.

    ``token_sent`` is False when there was no bearer token at all (no header,
    another scheme, an empty token): RFC 6750 then wants a bare challenge
    without an ``error`` attribute.
    """

    def __init__(self, reason: str, token_sent: bool = True, kind: str = "invalid") -> None:
        super().__init__(reason)
        self.reason = reason
        self.token_sent = token_sent
        self.kind = "missing" if not token_sent else kind


def bearer_from_header(header: bytes | None) -> BearerToken:
    """Extract the bearer token from an Authorization header value.

    The scheme word is case-insensitive (RFC 7235), and blanks around and
    between the parts are tolerated, so ``bearer \t<token>`` works as
    ``Bearer <token>`` does.
    """
    if header is None:
        raise TokenRejected("missing Authorization header", token_sent=False)
    parts = header.decode("latin-1").split(None, 1)
    if not parts or parts[0].lower() != "bearer":
        raise TokenRejected("the Authorization header must use the Bearer scheme", False)
    token = parts[1].strip() if len(parts) > 1 else ""
    if not token:
        raise TokenRejected("the Authorization header holds no bearer token", False)
    return BearerToken(token)


def challenge(rejection: TokenRejected) -> str:
    """The WWW-Authenticate value for a rejection (RFC 6750 section 3)."""
    if not rejection.token_sent:
        return f'Bearer realm="{REALM}"'
    description = rejection.reason.replace("\\", "").replace('"', "'")
    return (
        f'Bearer realm="{REALM}", error="invalid_token", '
        f'error_description="{description}"'
    )


_SAFE_ALG = re.compile(r"[A-Za-z0-9+_-]{1,16}\Z")


def _rejection(error: jwt.PyJWTError, token: str, algorithms: Sequence[str]) -> TokenRejected:
    """Say what was wrong with a token, in words safe to send back and a word for metrics."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return TokenRejected("the token has expired", kind="expired")
    if isinstance(error, jwt.MissingRequiredClaimError):
        return TokenRejected(f"the token has no {error.claim!r} claim", kind="claims")
    if isinstance(error, jwt.ImmatureSignatureError):
        claim = "iat" if "iat" in str(error) else "nbf"
        return TokenRejected(f"the token is not valid yet ({claim} is in the future)",
                             kind="not_yet_valid")
    if isinstance(error, jwt.InvalidSignatureError):
        return TokenRejected("the token signature is invalid", kind="signature")
    if isinstance(error, jwt.InvalidAlgorithmError):
        alg = _header_alg(token)
        shown = repr(alg) if isinstance(alg, str) and _SAFE_ALG.match(alg) else "its algorithm"
        return TokenRejected(
            f"the token's algorithm {shown} is not accepted (accepted: {', '.join(algorithms)})",
            kind="algorithm")
    if isinstance(error, jwt.InvalidIssuerError):
        return TokenRejected("the token's issuer is not accepted", kind="claims")
    if isinstance(error, jwt.InvalidAudienceError):
        return TokenRejected("the token's audience is not accepted", kind="claims")
    return TokenRejected("the token is not a well-formed JWT", kind="malformed")


def _header_alg(token: str) -> object:
    """The ``alg`` a token claims, for the error message only (never to choose a key)."""
    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError:
        return None


@implementer(ICredentialsChecker)
class JWTChecker:
    """Verifies JWTs against the configured keys; the avatar id is the dict of verified claims.

    The accepted algorithms come from configuration and never from the token
    (an ``alg: none`` token, or one in an algorithm not configured, fails
    before any key is used); each key verifies only the algorithms it is
    bound to.  ``exp`` is required, ``exp``/``nbf``/``iat`` must be numbers,
    and ``nbf``/``iat`` may not lie in the future beyond ``leeway``.  ``iss``
    and ``aud`` are enforced only when configured; tokens verified with a
    public key follow ``idp_issuer``/``idp_audience`` where those are set, so
    CueWeb's tokens (no ``iss``, no ``aud``) and the identity provider's can
    be accepted side by side.  Several secrets may be given for rotation: the
    first is current and tried first, the others are only accepted.  A
    ``kid`` only chooses among keys already held; nothing in a token's header
    (``kid``, ``jku``, ``x5u``, ``jwk``) is ever fetched.  A kid the JWKS
    lacks may make it fetch again early (see :mod:`opencue_gateway.jwks`),
    and the token waits for that fetch.
    """

    credentialInterfaces = (IBearerToken,)

    def __init__(
        self,
        secrets: Sequence[bytes] = (),
        algorithms: Sequence[str] = HMAC_ALGORITHMS,
        leeway: float = 30.0,
        issuer: str | None = None,
        audience: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
        public_keys: Sequence[VerificationKey] = (),
        jwks: JwksKeys | None = None,
        idp_issuer: str | None = None,
        idp_audience: Sequence[str] | None = None,
    ) -> None:
        self._clock = clock
        self._algorithms = list(algorithms)
        self._jwks = jwks
        self._generation = 0
        self._public: tuple[VerificationKey, ...] = tuple(public_keys)
        self._secrets: tuple[VerificationKey, ...] = ()
        self.set_secrets(secrets)
        self._leeway = leeway
        self._hmac_rules = ClaimRules.of(issuer, audience)
        # An identity provider's tokens may need their own iss and aud beside CueWeb's.
        self._public_rules = ClaimRules.of(idp_issuer or issuer, idp_audience or audience)
        self._verified: OrderedDict[str, tuple[dict[str, Any], float, tuple[int, int]]] = (
            OrderedDict())

    def set_secrets(self, secrets: Sequence[bytes]) -> None:
        """Replace the secrets (SIGHUP re-reads the secret file); the first is current.

        Tokens verified with the old secrets are verified again on their next
        use, so a token whose secret was just retired stops working at once.
        """
        if not all(secrets) or not (secrets or self._public or self._jwks):
            raise ValueError("JWTChecker needs a non-empty secret or public keys")
        self._secrets = secret_keys(secrets, self._algorithms)
        self._generation += 1

    def set_public_keys(self, keys: Sequence[VerificationKey]) -> None:
        """Replace the keys of JWT_PUBLIC_KEY_FILE (SIGHUP); tokens they verified are redone."""
        self._public = tuple(keys)
        self._generation += 1

    def describe_keys(self) -> list[dict[str, Any]]:
        """Every key held, for GET /config: sources, types, kids, fingerprints; no secrets."""
        jwks = self._jwks.keys if self._jwks is not None else ()
        return [key.describe() for key in (*self._secrets, *self._public, *jwks)]

    @property
    def problem(self) -> str | None:
        """Why some tokens cannot be verified right now (the JWKS is not loaded), for /readyz."""
        return self._jwks.problem if self._jwks is not None else None

    def requestAvatarId(self, credentials: IBearerToken) -> dict[str, Any] | Deferred[Any]:
        """Verify the token and return its claims, or raise :class:`TokenRejected`.

        A token that verified is remembered until its ``exp`` (plus leeway)
        or until the keys change: clients send the same token on every call,
        and a signature check plus JSON parsing is most of what a small
        request costs.  A token whose kid the JWKS lacks waits for one fetch
        of the key set (a Deferred), then is verified again.
        """
        token = credentials.token
        claims = self._remembered(token)
        if claims is not None:
            return claims
        try:
            return self._verify(token, may_refetch=self._jwks is not None)
        except _UnknownKeyError as unknown:
            assert self._jwks is not None
            waiting = self._jwks.fetch_for_unknown_kid()
            if waiting is None:
                raise unknown.rejection from None
            return waiting.addCallback(lambda _: self._verify(token, may_refetch=False))

    def _remembered(self, token: str) -> dict[str, Any] | None:
        """The claims of a token verified before, while it is unexpired and the keys unchanged."""
        cached = self._verified.get(token)
        if cached is None:
            return None
        claims, expires, generation = cached
        if self._clock() < expires and generation == self._keys_generation():
            self._verified.move_to_end(token)
            return claims
        del self._verified[token]
        return None

    def _keys_generation(self) -> tuple[int, int]:
        """Changes whenever any key is added, replaced or retired."""
        return self._generation, self._jwks.generation if self._jwks is not None else 0

    def _remember(self, token: str, claims: dict[str, Any]) -> None:
        """Keep a verified token until it expires; the least recently used go first."""
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)):
            return
        self._verified[token] = (claims, float(expires) + self._leeway, self._keys_generation())
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)

    def _verify(self, token: str, may_refetch: bool) -> dict[str, Any]:
        """The full check: size, algorithm, claim types, signature against each key, claims."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"the token is larger than {MAX_TOKEN_BYTES} bytes",
                                kind="too_large")
        algorithm, kid = self._read(token)
        keys = candidates((*self._secrets, *self._public, *self._jwks_keys()), algorithm, kid)
        rules = self._hmac_rules if algorithm in HMAC_ALGORITHMS else self._public_rules
        for key in keys:
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    options=rules.options,
                    leeway=self._leeway,
                    issuer=rules.issuer,
                    audience=rules.audience,
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as error:
                raise _rejection(error, token, self._algorithms) from None
            self._remember(token, claims)
            return claims
        if (self._jwks is not None and algorithm not in HMAC_ALGORITHMS
                and not self._jwks.knows(kid)):
            rejection = self._no_key(kid)
            raise _UnknownKeyError(rejection) if may_refetch else rejection
        if not keys:
            raise TokenRejected(f"no key of this gateway verifies {algorithm} tokens",
                                kind="unknown_key")
        raise TokenRejected("the token signature is invalid", kind="signature")

    def _jwks_keys(self) -> tuple[VerificationKey, ...]:
        """The keys of the JWKS as last fetched (none without one)."""
        return self._jwks.keys if self._jwks is not None else ()

    def _read(self, token: str) -> tuple[str, str | None]:
        """Parse the token once before any key is used: its ``alg`` and ``kid``, its dates.

        The ``alg`` must be accepted and the dates must be numbers; this only
        changes which reason a forged token is refused with, never whether.
        """
        try:
            parts = jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.PyJWTError as error:
            raise _rejection(error, token, self._algorithms) from None
        header = parts["header"]
        _require_numeric_dates(parts["payload"])
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self._algorithms:
            raise _rejection(jwt.InvalidAlgorithmError(), token, self._algorithms)
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("the token's kid is not a string", kind="malformed")
        return algorithm, kid

    def _no_key(self, kid: str | None) -> TokenRejected:
        """The rejection of a token no held key verifies, when the JWKS might have its key."""
        assert self._jwks is not None
        if self._jwks.problem is not None:
            return TokenRejected("the identity provider's signing keys are not available yet "
                                 "(JWT_JWKS_URL could not be fetched); try again shortly",
                                 kind="keys_unavailable")
        shown = f" (kid {kid!r})" if kid and _SAFE_KID.match(kid) else ""
        return TokenRejected(f"the token's signing key{shown} is not known",
                             kind="unknown_key")


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The ``iss`` and ``aud`` one kind of token must carry, as PyJWT options."""

    issuer: str | None
    audience: list[str] | None
    options: dict[str, Any]

    @classmethod
    def of(cls, issuer: str | None, audience: Sequence[str] | None) -> ClaimRules:
        """Require ``exp`` always, ``iss``/``aud`` when configured.

        The Go gateway ignores ``aud``; PyJWT would reject every token carrying
        one when no audience is configured, so audience checking is only on
        when an audience is set.  Nor does it type-check ``sub`` and ``jti``,
        which PyJWT would: a numeric ``sub`` from another issuer stays valid
        (the realm turns it into text).
        """
        required = ["exp"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
        return cls(issuer, list(audience) if audience else None, {
            "require": required,
            "verify_aud": bool(audience),
            "verify_sub": False,
            "verify_jti": False,
        })


class _UnknownKeyError(Exception):
    """No held key verified the token, and a fresh JWKS might have its key."""

    def __init__(self, rejection: TokenRejected) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


_SAFE_KID = re.compile(r"[A-Za-z0-9._~+/=-]{1,64}\Z")
_NUMERIC_DATES = ("exp", "nbf", "iat")


def _require_numeric_dates(payload: Mapping[str, Any]) -> None:
    """``exp``, ``nbf`` and ``iat`` must be JSON numbers (RFC 7519 NumericDate).

    PyJWT would take ``"exp": "1796..."`` (a string) as a date, and an
    infinite ``exp`` would never expire; both are refused here.
    """
    for claim in _NUMERIC_DATES:
        value = payload.get(claim)
        if claim in payload and (isinstance(value, bool) or not isinstance(value, (int, float))
                                 or not math.isfinite(value)):
            raise TokenRejected(f"the token's {claim!r} claim must be a number "
                                "(seconds since 1970, RFC 7519 NumericDate)", kind="claims")


@implementer(IRealm)
class GatewayRealm:
    """Turns verified claims into a :class:`Principal`.

    The role claim is a name or a dotted path into nested claims
    (``realm_access.roles``, as Keycloak puts them); a claim whose full name
    contains dots (``https://example.com/roles``) is found first.  Several,
    comma-separated, are tried in order and the first the token carries
    counts (``role,realm_access.roles``: CueWeb's tokens and Keycloak's).
    Its value is one role or a list of roles.  ``sub`` and every role name
    end up in log lines and metadata, so a control character in them refuses
    the token.
    """

    def __init__(self, role_claim: str = "role") -> None:
        self._role_claims = tuple(p.strip() for p in role_claim.split(",") if p.strip())
        # The checker hands out one claims object per verified token, for as long as it
        # remembers the token: the principal made of it is remembered with it.
        self._made: OrderedDict[int, tuple[Mapping[str, Any], Principal]] = OrderedDict()

    def requestAvatar(
        self, avatarId: Mapping[str, Any], mind: object, *interfaces: type[Interface]
    ) -> tuple[type[Interface], Principal, Callable[[], None]]:
        """Build the principal (once per claims object); there is nothing to clean up."""
        if IPrincipal not in interfaces:
            raise NotImplementedError("GatewayRealm only provides IPrincipal")
        made = self._made.get(id(avatarId))
        if made is not None and made[0] is avatarId:
            self._made.move_to_end(id(avatarId))
            return IPrincipal, made[1], _no_logout
        principal = Principal(
            sub=_identity("sub", _claim_text(avatarId.get("sub"))),
            role=self._role(avatarId),
            claims=dict(avatarId),
        )
        self._made[id(avatarId)] = (avatarId, principal)
        if len(self._made) > VERIFIED_TOKENS:
            self._made.popitem(last=False)
        return IPrincipal, principal, _no_logout

    def _role(self, claims: Mapping[str, Any]) -> str | tuple[str, ...]:
        """The role claim: '' when absent, one role, or a tuple when the token lists roles."""
        path, value = next(((p, v) for p in self._role_claims
                            if (v := claim_at(claims, p)) is not None), ("", None))
        if isinstance(value, list):
            if not all(_is_scalar(item) for item in value):
                raise _bad_roles(path)
            return tuple(_identity(path, _claim_text(item)) for item in value
                         if _claim_text(item))
        if value is not None and not _is_scalar(value):
            raise _bad_roles(path)
        return _identity(path, _claim_text(value))


def claim_at(claims: Mapping[str, Any], path: str) -> object:
    """The claim named ``path``, else the one its dotted parts lead to, else None."""
    if path in claims:
        return claims[path]
    node: object = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _no_logout() -> None:
    """Principals hold no resources, so logging out does nothing."""


def _claim_text(value: object) -> str:
    """A claim as text: tokens from other tools put numbers or nothing in ``sub``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _is_scalar(value: object) -> bool:
    """A role may be a string or a number, not an object, a list or true/false."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _bad_roles(claim: str) -> TokenRejected:
    """The rejection of a role claim that is neither a role nor a list of roles."""
    return TokenRejected(f"the token's {claim!r} claim must be a string or a list of strings",
                         kind="claims")


# C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _identity(claim: str, text: str) -> str:
    """An identity string that is safe to log and forward, or a 401 naming its claim."""
    if _CONTROL.search(text):
        raise TokenRejected(f"the token's {claim!r} claim contains a control character",
                            kind="claims")
    return text


class Authenticator:
    """The app's one entry point to authentication: a header in, a Principal out."""

    def __init__(self, portal: Portal) -> None:
        self._portal = portal

    async def authenticate(self, header: bytes | None) -> Principal:
        """Log in with the header's bearer token, or raise a 401 ``GatewayError``."""
        try:
            credentials = bearer_from_header(header)
            _interface, principal, _logout = await self._portal.login(
                credentials, None, IPrincipal
            )
        except TokenRejected as rejection:
            raise GatewayError(
                grpc.StatusCode.UNAUTHENTICATED,
                rejection.reason,
                headers={"WWW-Authenticate": challenge(rejection)},
                kind=rejection.kind,
            ) from None
        return principal


def make_checker(config: GatewayConfig, public_keys: Sequence[VerificationKey] = (),
                 jwks: JwksKeys | None = None) -> JWTChecker:
    """The checker of this configuration: its secrets, algorithms and claim rules, and keys."""
    return JWTChecker(
        config.jwt_secrets,
        algorithms=config.jwt_algorithms,
        leeway=config.jwt_leeway,
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        public_keys=public_keys,
        jwks=jwks,
        idp_issuer=config.jwt_idp_issuer,
        idp_audience=config.jwt_idp_audience,
    )


def make_portal(checker: JWTChecker, realm: GatewayRealm | None = None) -> Portal:
    """A Portal with the gateway's realm and the given JWT checker."""
    return Portal(realm or GatewayRealm(), [checker])


def sign_token(config: GatewayConfig, sub: str, role: str | None, lifetime: int) -> str:
    """A token this gateway accepts: its secret, first HMAC algorithm and role claim.

    For people trying the gateway (the sandbox's start-up line, ``opencue-gateway
    token``); real tokens come from the studio's issuer (CueWeb, the identity
    provider).  The role goes in under the first role claim's full name, which
    the realm finds before reading it as a dotted path.
    """
    algorithms = [a for a in config.jwt_algorithms if a in HMAC_ALGORITHMS]
    if config.jwt_secret is None or not algorithms:
        raise ConfigError("JWT_SECRET", "signing a token needs JWT_SECRET or JWT_SECRET_FILE "
                          "and an HMAC algorithm in JWT_ALGORITHMS; tokens for public keys "
                          "come from the identity provider")
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "iat": now, "exp": now + lifetime}
    if role:
        claims[config.jwt_role_claim.split(",")[0]] = role
    return jwt.encode(claims, config.jwt_secret, algorithm=algorithms[0])
