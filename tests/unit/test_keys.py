"""Verification keys: PEM files, JWKs, and each key bound to its own algorithms."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from opencue_gateway.config import HMAC_ALGORITHMS, PUBLIC_KEY_ALGORITHMS, ConfigError
from opencue_gateway.keys import (
    RSA_ALGORITHMS,
    UnusableKeyError,
    candidates,
    jwk_key,
    load_public_key_file,
    public_key,
    read_public_key_file,
    secret_keys,
)
from tests.certs import make_ca
from tests.conftest import make_config
from tests.idp import EC384_KEY, EC_KEY, ED_KEY, RSA_KEY, RSA_KEY_2, jwk, pem, private_pem

ALL = HMAC_ALGORITHMS + PUBLIC_KEY_ALGORITHMS


@pytest.mark.parametrize(("key", "kind", "algorithms"), [
    (RSA_KEY, "RSA 2048", set(RSA_ALGORITHMS)),
    (EC_KEY, "EC P-256", {"ES256"}),
    (EC384_KEY, "EC P-384", {"ES384"}),
    (ec.generate_private_key(ec.SECP521R1()), "EC P-521", {"ES512"}),
    (ED_KEY, "Ed25519", {"EdDSA"}),
])
def test_each_key_type_verifies_only_its_own_algorithms(key, kind, algorithms):
    """RSA keys verify RS*/PS*, an EC key only its curve's ES algorithm, Ed25519 only EdDSA."""
    bound = public_key(key.public_key(), ALL, "test")
    assert bound.kind == kind
    assert bound.algorithms == algorithms
    assert not bound.algorithms & set(HMAC_ALGORITHMS)


def test_secrets_verify_only_hmac():
    """A secret is bound to the accepted HMAC algorithms, never to a public-key one."""
    first, previous = secret_keys([b"a" * 32, b"b" * 32], ("HS256", "RS256", "HS512"))
    assert first.algorithms == {"HS256", "HS512"} == previous.algorithms
    assert (first.source, previous.source) == ("JWT_SECRET", "JWT_PREVIOUS_SECRETS[0]")


def test_keys_are_narrowed_to_the_accepted_algorithms():
    """An RSA key with JWT_ALGORITHMS=RS256,ES256 verifies RS256 only; none accepted is refused."""
    assert public_key(RSA_KEY.public_key(), ("RS256", "ES256"), "t").algorithms == {"RS256"}
    with pytest.raises(UnusableKeyError, match="an RSA 2048 key, but JWT_ALGORITHMS accepts none"):
        public_key(RSA_KEY.public_key(), ("ES256",), "t")


def test_short_rsa_keys_and_unusual_curves_are_refused():
    """RSA under 2048 bits and curves without a JWT algorithm cannot verify tokens."""
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(UnusableKeyError, match="1024 bits is too short"):
        public_key(small.public_key(), ALL, "t")
    with pytest.raises(UnusableKeyError, match="the curve secp256k1 has no JWT algorithm"):
        public_key(ec.generate_private_key(ec.SECP256K1()).public_key(), ALL, "t")


def test_fingerprint_is_the_sha256_of_the_public_key_der():
    """The fingerprint is what `openssl pkey -pubin -outform der | sha256sum` prints."""
    der = RSA_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    bound = public_key(RSA_KEY.public_key(), ALL, "t")
    assert bound.fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()


def test_descriptions_hold_no_key_material():
    """describe() names source, type, kid, algorithms and a public fingerprint; never a key."""
    secret = secret_keys([b"hunter2-" * 5], HMAC_ALGORITHMS)[0].describe()
    assert secret == {"source": "JWT_SECRET", "type": "HMAC secret",
                      "algorithms": ["HS256", "HS384", "HS512"]}
    described = jwk_key(jwk(RSA_KEY, "k1"), ALL, "JWT_JWKS_URL").describe()
    assert set(described) == {"source", "type", "algorithms", "kid", "fingerprint"}
    assert jwk(RSA_KEY, "k1")["n"][:40] not in repr(described)


def test_a_pem_file_holds_several_keys_and_certificates(tmp_path):
    """Public keys (SPKI and PKCS#1) and certificates in one file each become a key."""
    ca, _ = make_ca(tmp_path)
    pkcs1 = RSA_KEY_2.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.PKCS1)
    path = tmp_path / "keys.pem"
    path.write_bytes(b"comment line\n" + pem(RSA_KEY) + pkcs1 + pem(EC_KEY) + pem(ED_KEY)
                     + ca.cert.read_bytes())
    keys = read_public_key_file(str(path), ALL)
    assert [k.kind for k in keys] == ["RSA 2048", "RSA 2048", "EC P-256", "Ed25519", "EC P-256"]
    assert all(k.source == "JWT_PUBLIC_KEY_FILE" and k.kid is None for k in keys)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "holds no PEM public key or certificate"),
    (b"not a key", "holds no PEM public key or certificate"),
    (private_pem(RSA_KEY), "key 1: a private key; give the gateway the public key only"),
    (pem(EC_KEY) + b"-----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n",
     "key 2: a DH PARAMETERS, not a public key or certificate"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
     "key 1: the PUBLIC KEY cannot be read"),
])
def test_unusable_pem_files_stop_start_up(tmp_path, content, message):
    """An empty file, a private key, another PEM type or a broken key stop start-up, named."""
    path = tmp_path / "keys.pem"
    path.write_bytes(content)
    config = make_config(JWT_PUBLIC_KEY_FILE=str(path), JWT_ALGORITHMS="HS256,RS256,ES256")
    with pytest.raises(ConfigError, match=f"JWT_PUBLIC_KEY_FILE: .*{message}"):
        load_public_key_file(config)


def test_a_missing_pem_file_stops_start_up(tmp_path):
    """A file that cannot be read is named with the reason."""
    config = make_config(JWT_PUBLIC_KEY_FILE=str(tmp_path / "absent.pem"),
                         JWT_ALGORITHMS="HS256,RS256")
    with pytest.raises(ConfigError, match=r"JWT_PUBLIC_KEY_FILE: cannot read .*No such file"):
        load_public_key_file(config)


@pytest.mark.parametrize(("members", "algorithms"), [
    ({}, set(RSA_ALGORITHMS)),
    ({"alg": "PS384"}, {"PS384"}),
    ({"use": "sig", "key_ops": ["verify"]}, set(RSA_ALGORITHMS)),
])
def test_a_jwk_alg_binds_its_key_to_that_algorithm(members, algorithms):
    """A JWK's alg narrows its key to exactly that algorithm (RFC 7517 section 4.4)."""
    assert jwk_key(jwk(RSA_KEY, "k", **members), ALL, "s").algorithms == algorithms


@pytest.mark.parametrize(("document", "message"), [
    ({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, "a symmetric \\(oct\\) key is never taken"),
    (jwk(RSA_KEY, "k", use="enc"), "it is not a signing key"),
    (jwk(RSA_KEY, "k", key_ops=["encrypt"]), "its key_ops do not include verify"),
    ({**jwk(EC_KEY, "k"), "d": "AAAA"}, "it holds a private key"),
    (jwk(RSA_KEY, "k", alg="ES256"), "its alg 'ES256' does not fit an RSA 2048 key"),
    (jwk(EC_KEY, "k", alg="ES384"), "its alg 'ES384' does not fit an EC P-256 key"),
    ({"kty": "RSA", "kid": "k", "n": "AQAB"}, "its RSA parameters are not a valid key"),
    ({"kty": "XYZ"}, "key type 'XYZ' is not RSA, EC or OKP"),
    (jwk(RSA_KEY, 17), "its kid is not a short printable string"),
    (jwk(RSA_KEY, "a\nb"), "its kid is not a short printable string"),
    (["not", "an", "object"], "not a JSON object"),
])
def test_unusable_jwks_are_refused_with_a_reason(document, message):
    """Keys that must not or cannot verify tokens are refused, saying why."""
    with pytest.raises(UnusableKeyError, match=message):
        jwk_key(document, ALL, "s")


def test_candidates_follow_algorithm_then_kid():
    """Only keys bound to the token's alg are tried; a kid picks its key, kid-less keys stay."""
    secret = secret_keys([b"s" * 32], ALL)[0]
    pem_key = public_key(RSA_KEY_2.public_key(), ALL, "file")
    k1 = jwk_key(jwk(RSA_KEY, "k1"), ALL, "jwks")
    k2 = jwk_key(jwk(RSA_KEY_2, "k2"), ALL, "jwks")
    ec_key = jwk_key(jwk(EC_KEY, "e1"), ALL, "jwks")
    keys = [secret, pem_key, k1, k2, ec_key]
    assert candidates(keys, "HS256", "k1") == [secret]
    assert candidates(keys, "RS256", "k2") == [k2, pem_key]
    assert candidates(keys, "RS256", "unknown") == [pem_key]
    assert candidates(keys, "RS256", None) == [pem_key, k1, k2]
    assert candidates(keys, "ES256", "k1") == []
