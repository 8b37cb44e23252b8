"""The keys that verify tokens, each bound to the algorithms it may verify.

A key is never chosen by a token's ``alg`` alone.  HMAC secrets verify only
HS256/384/512; an RSA key only RS*/PS*; an EC key only the ES algorithm of its
own curve; an Ed25519/Ed448 key only EdDSA.  So a token "signed" with HS256
using a public key's bytes as the secret (algorithm confusion) is only ever
checked against the HMAC secrets, and fails.  A JWK's own ``alg``, ``use``
and ``key_ops`` narrow its key further (RFC 7517 section 4).

Public keys come from a PEM file (JWT_PUBLIC_KEY_FILE) or a JWKS
(:mod:`opencue_gateway.jwks`).  What is shown about a key (GET /config, the
log) is its source, type, ``kid``, algorithms and, for public keys only, the
SHA-256 fingerprint of its SubjectPublicKeyInfo; never a secret or a hash of
one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

from opencue_gateway.config import ConfigError, GatewayConfig
from opencue_gateway.parsers import HMAC_ALGORITHMS

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
# Each curve signs with one algorithm (RFC 7518 section 3.4), named as `crv` names it.
CURVES = {"secp256r1": ("P-256", "ES256"), "secp384r1": ("P-384", "ES384"),
          "secp521r1": ("P-521", "ES512")}
# RFC 7518 section 3.3: RSA keys of 2048 bits or more.
MIN_RSA_BITS = 2048
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_JWK_READERS = {"RSA": RSAAlgorithm.from_jwk, "EC": ECAlgorithm.from_jwk,
                "OKP": OKPAlgorithm.from_jwk}


class UnusableKeyError(ValueError):
    """A key that cannot verify tokens here; the message says why, without key material."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """One key and the algorithms it may verify; ``key`` is bytes (HMAC) or a public key."""

    key: Any = field(repr=False)
    algorithms: frozenset[str]
    source: str
    kind: str
    kid: str | None = None
    fingerprint: str | None = None

    def describe(self) -> dict[str, Any]:
        """What GET /config and the log show: never key material beyond a public fingerprint."""
        described: dict[str, Any] = {"source": self.source, "type": self.kind,
                                     "algorithms": sorted(self.algorithms)}
        if self.kid is not None:
            described["kid"] = self.kid
        if self.fingerprint is not None:
            described["fingerprint"] = self.fingerprint
        return described


def secret_keys(secrets: Sequence[bytes], accepted: Iterable[str]) -> tuple[VerificationKey, ...]:
    """HMAC secrets as keys: the first is JWT_SECRET, the others JWT_PREVIOUS_SECRETS."""
    algorithms = frozenset(a for a in accepted if a in HMAC_ALGORITHMS)
    return tuple(
        VerificationKey(secret, algorithms,
                        "JWT_SECRET" if i == 0 else f"JWT_PREVIOUS_SECRETS[{i - 1}]",
                        "HMAC secret")
        for i, secret in enumerate(secrets)
    )


def public_key(key: Any, accepted: Iterable[str], source: str, kid: str | None = None,
               alg: str | None = None) -> VerificationKey:
    """Bind a public key to the accepted algorithms of its family (and to ``alg`` if given)."""
    kind, family = _family(key)
    if alg is not None and alg not in family:
        raise UnusableKeyError(f"its alg {alg!r} does not fit an {kind} key")
    usable = [a for a in family if a in set(accepted) and (alg is None or a == alg)]
    if not usable:
        raise UnusableKeyError(f"an {kind} key, but JWT_ALGORITHMS accepts none of "
                         f"{', '.join([alg] if alg else family)}")
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return VerificationKey(key, frozenset(usable), source, kind, kid,
                           "sha256:" + hashlib.sha256(der).hexdigest())


def _family(key: Any) -> tuple[str, tuple[str, ...]]:
    """The key's type as shown, and every algorithm that type can verify."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UnusableKeyError(f"an RSA key of {key.key_size} bits is too short "
                             f"(at least {MIN_RSA_BITS})")
        return f"RSA {key.key_size}", RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in CURVES:
            raise UnusableKeyError(f"the curve {key.curve.name} has no JWT algorithm "
                             "(P-256, P-384 and P-521 do)")
        name, algorithm = CURVES[key.curve.name]
        return f"EC {name}", (algorithm,)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", ("EdDSA",)
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", ("EdDSA",)
    raise UnusableKeyError(f"a {type(key).__name__.lstrip('_')} cannot verify JWTs")


def jwk_key(jwk: Any, accepted: Iterable[str], source: str) -> VerificationKey:
    """A JWK from a key set as a verification key, or :class:`UnusableKeyError` saying why not.

    Symmetric (``oct``) keys are refused: a shared secret published at a URL
    is no secret.  So are private keys, encryption keys, and keys whose
    ``key_ops`` do not include ``verify``.
    """
    if not isinstance(jwk, Mapping):
        raise UnusableKeyError("an entry of 'keys' is not a JSON object")
    kid = jwk.get("kid")
    if kid is not None and not (isinstance(kid, str) and kid.isprintable() and len(kid) <= 256):
        raise UnusableKeyError("its kid is not a short printable string")
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if kty == "oct":
        raise UnusableKeyError("a symmetric (oct) key is never taken from a key set")
    if kty not in _JWK_READERS:
        raise UnusableKeyError(f"key type {str(kty)[:20]!r} is not RSA, EC or OKP")
    if jwk.get("use", "sig") != "sig":
        raise UnusableKeyError(f"it is not a signing key (use {str(jwk.get('use'))[:20]!r})")
    if "verify" not in jwk.get("key_ops", ["verify"]):
        raise UnusableKeyError("its key_ops do not include verify")
    if "d" in jwk:
        raise UnusableKeyError("it holds a private key; a key set must publish public keys only")
    if alg is not None and not isinstance(alg, str):
        raise UnusableKeyError("its alg is not a string")
    try:
        key = _JWK_READERS[kty](dict(jwk))
    except (InvalidKeyError, ValueError, TypeError, KeyError) as error:
        raise UnusableKeyError(
            f"its {kty} parameters are not a valid key ({_short(error)})") from None
    return public_key(key, accepted, source, kid, alg)


def read_public_key_file(path: str, accepted: Iterable[str]) -> tuple[VerificationKey, ...]:
    """Every public key of a PEM file (public keys or certificates, one or several).

    A private key in the file is refused: the gateway verifies and never needs
    one, and a private key left where a public one belongs is a leak waiting.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise UnusableKeyError(f"cannot read {path!r}: {error.strerror}") from None
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise UnusableKeyError(f"{path!r} holds no PEM public key or certificate")
    keys = []
    for number, block in enumerate(blocks, 1):
        try:
            keys.append(public_key(_pem_public_key(block), accepted, "JWT_PUBLIC_KEY_FILE"))
        except UnusableKeyError as problem:
            raise UnusableKeyError(f"{path!r}, key {number}: {problem}") from None
    return tuple(keys)


def _pem_public_key(block: re.Match[bytes]) -> Any:
    """The public key of one PEM block: a public key or a certificate, never a private key."""
    label = block.group(1).decode("ascii")
    try:
        if label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            return serialization.load_pem_public_key(block.group(0))
        if label == "CERTIFICATE":
            return x509.load_pem_x509_certificate(block.group(0)).public_key()
    except ValueError as error:
        raise UnusableKeyError(f"the {label} cannot be read ({_short(error)})") from None
    if "PRIVATE KEY" in label:
        raise UnusableKeyError("a private key; give the gateway the public key only "
                         "(openssl pkey -in key.pem -pubout)")
    raise UnusableKeyError(f"a {label}, not a public key or certificate")


def load_public_key_file(config: GatewayConfig) -> tuple[VerificationKey, ...]:
    """JWT_PUBLIC_KEY_FILE's keys (none when unset); a bad file stops start-up with one line."""
    if config.jwt_public_key_file is None:
        return ()
    try:
        return read_public_key_file(config.jwt_public_key_file, config.jwt_algorithms)
    except UnusableKeyError as problem:
        raise ConfigError("JWT_PUBLIC_KEY_FILE", str(problem)) from None


def candidates(keys: Iterable[VerificationKey], algorithm: str,
               kid: str | None) -> list[VerificationKey]:
    """The keys that may verify a token with this ``alg`` and ``kid``, the named key first.

    A key without a kid (a secret, a PEM key) is a candidate whatever the
    token's kid; a key with one, only for tokens naming it or naming none.
    """
    usable = [k for k in keys if algorithm in k.algorithms]
    if kid is None:
        return usable
    return [k for k in usable if k.kid == kid] + [k for k in usable if k.kid is None]


def _short(error: Exception) -> str:
    """An exception's message cut to one short line, for start-up errors and the log."""
    return " ".join(str(error).split())[:120] or type(error).__name__
