"""Who is calling: bearer JWTs verified through twisted.cred (COMPATIBILITY.md section 5).

The flow follows twisted.web's HTTPAuthSessionWrapper, rendered our way: the
app turns the ``Authorization`` header into :class:`BearerToken` credentials,
the :class:`Portal` asks the :class:`JWTChecker`, whose avatar id is the
verified claims, and the :class:`GatewayRealm` turns the claims into a
:class:`Principal`.  Authorization decisions look at the Principal, never at
raw headers.  Failures carry a reason safe to show the client: it never
echoes the token.
"""

from __future__ import annotations

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
from zope.interface import Attribute, Interface, implementer

from opencue_gateway.config import HMAC_ALGORITHMS, GatewayConfig
from opencue_gateway.errors import GatewayError

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
    role = Attribute("The token's role claim, '' when absent.")
    claims = Attribute("Every verified claim.")


@implementer(IPrincipal)
@dataclass(frozen=True, slots=True)
class Principal:
    """The avatar the realm hands out: who the caller is and what its token says."""

    sub: str
    role: str
    claims: Mapping[str, Any] = field(repr=False)


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
    """Verifies HMAC-signed JWTs; the avatar id is the dict of verified claims.

    The accepted algorithms come from configuration and never from the token
    (an ``alg: none`` or RS256 token fails before any key is used), ``exp`` is
    required, and ``nbf``/``iat`` may not lie in the future beyond ``leeway``.
    ``iss`` and ``aud`` are enforced only when configured.  Several secrets may
    be given for rotation: the first is current and tried first, the others
    are only accepted.  Nothing in a token's header (``kid``, ``jku``,
    ``x5u``) is ever fetched or used to choose a key.
    """

    credentialInterfaces = (IBearerToken,)

    def __init__(
        self,
        secrets: Sequence[bytes],
        algorithms: Sequence[str] = HMAC_ALGORITHMS,
        leeway: float = 30.0,
        issuer: str | None = None,
        audience: Sequence[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.set_secrets(secrets)
        self._algorithms = list(algorithms)
        self._leeway = leeway
        self._issuer = issuer
        self._audience = list(audience) if audience else None
        required = ["exp"] + (["iss"] if issuer else []) + (["aud"] if audience else [])
        # The Go gateway ignores `aud`; PyJWT would reject every token carrying
        # one when no audience is configured, so audience checking is only on
        # when JWT_AUDIENCE is set.  Nor does it type-check `sub` and `jti`,
        # which PyJWT would: a numeric `sub` from another issuer stays valid
        # (the realm turns it into text).
        self._options = {
            "require": required,
            "verify_aud": self._audience is not None,
            "verify_sub": False,
            "verify_jti": False,
        }

    def set_secrets(self, secrets: Sequence[bytes]) -> None:
        """Replace the secrets (SIGHUP re-reads the secret file); the first is current.

        Tokens verified with the old secrets are forgotten, so a token whose
        secret was just retired stops working at once.
        """
        if not secrets or not all(secrets):
            raise ValueError("JWTChecker needs at least one non-empty secret")
        self._secrets = tuple(secrets)
        self._verified: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()

    def requestAvatarId(self, credentials: IBearerToken) -> dict[str, Any]:
        """Verify the token and return its claims, or raise :class:`TokenRejected`.

        A token that verified is remembered until its ``exp`` (plus leeway):
        clients send the same token on every call, and an HMAC over the
        header and payload plus JSON parsing is most of what a small request
        costs.  Expiry is still checked on every use.
        """
        token = credentials.token
        cached = self._verified.get(token)
        if cached is not None:
            claims, expires = cached
            if self._clock() < expires:
                self._verified.move_to_end(token)
                return claims
            del self._verified[token]
        claims = self._verify(token)
        self._remember(token, claims)
        return claims

    def _remember(self, token: str, claims: dict[str, Any]) -> None:
        """Keep a verified token until it expires; the least recently used go first."""
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)):
            return
        self._verified[token] = (claims, float(expires) + self._leeway)
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)

    def _verify(self, token: str) -> dict[str, Any]:
        """The full check: size, algorithm, signature against each secret, claims."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"the token is larger than {MAX_TOKEN_BYTES} bytes",
                                kind="too_large")
        last_error: jwt.PyJWTError | None = None
        for secret in self._secrets:
            try:
                return jwt.decode(
                    token,
                    secret,
                    algorithms=self._algorithms,
                    options=self._options,
                    leeway=self._leeway,
                    issuer=self._issuer,
                    audience=self._audience,
                )
            except jwt.InvalidSignatureError as error:
                last_error = error
            except jwt.PyJWTError as error:
                raise _rejection(error, token, self._algorithms) from None
        assert last_error is not None
        raise _rejection(last_error, token, self._algorithms)


@implementer(IRealm)
class GatewayRealm:
    """Turns verified claims into a :class:`Principal`."""

    def __init__(self, role_claim: str = "role") -> None:
        self._role_claim = role_claim

    def requestAvatar(
        self, avatarId: Mapping[str, Any], mind: object, *interfaces: type[Interface]
    ) -> tuple[type[Interface], Principal, Callable[[], None]]:
        """Build the principal; there is nothing to clean up at logout."""
        if IPrincipal not in interfaces:
            raise NotImplementedError("GatewayRealm only provides IPrincipal")
        principal = Principal(
            sub=_claim_text(avatarId.get("sub")),
            role=_claim_text(avatarId.get(self._role_claim)),
            claims=dict(avatarId),
        )
        return IPrincipal, principal, _no_logout


def _no_logout() -> None:
    """Principals hold no resources, so logging out does nothing."""


def _claim_text(value: object) -> str:
    """A claim as text: tokens from other tools put numbers or nothing in ``sub``."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


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


def make_portal(checker: JWTChecker, realm: GatewayRealm | None = None) -> Portal:
    """A Portal with the gateway's realm and the given JWT checker."""
    return Portal(realm or GatewayRealm(), [checker])


def sign_token(config: GatewayConfig, sub: str, role: str | None, lifetime: int) -> str:
    """A token this gateway accepts: its secret, first algorithm and role claim.

    For people trying the gateway (the sandbox's start-up line, ``opencue-gateway
    token``); real tokens come from the studio's issuer (CueWeb).
    """
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "iat": now, "exp": now + lifetime}
    if role:
        claims[config.jwt_role_claim] = role
    return jwt.encode(claims, config.jwt_secret, algorithm=config.jwt_algorithms[0])
