"""A stand-in identity provider for tests: key pairs, tokens they sign, a JWKS over loopback."""

from __future__ import annotations

import json
import ssl
import threading
import time
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

# Made once per test run: RSA key generation is the slow part.
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_KEY_2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC384_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
# A hanging request is released at teardown, or after this long at the latest.
HANG_SECONDS = 30


def pem(private_key: Any) -> bytes:
    """The public half of a key as a PEM SubjectPublicKeyInfo block."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_pem(private_key: Any) -> bytes:
    """The private key as PKCS#8 PEM (what must never be given to the gateway)."""
    return private_key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def jwk(private_key: Any, kid: str | None, **members: Any) -> dict[str, Any]:
    """The public JWK of a key, with a kid and any other members (alg, use)."""
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        document = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        document = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        document = OKPAlgorithm.to_jwk(public, as_dict=True)
    if kid is not None:
        document["kid"] = kid
    document.update(members)
    return document


def sign(private_key: Any, algorithm: str, kid: str | None = None, **claims: Any) -> str:
    """A token signed by the identity provider: ``sub``, and ``exp`` an hour away by default."""
    claims.setdefault("sub", "idp-user")
    claims.setdefault("exp", int(time.time()) + 3600)
    headers = {"kid": kid} if kid is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(claims, private_key, algorithm=algorithm, headers=headers)


@dataclass
class JwksServer:
    """An HTTP server on 127.0.0.1 answering every GET with ``document`` (a JWKS).

    Tests change ``document``, ``status``, ``headers`` or ``body`` between
    requests; ``hits`` counts the requests; ``send_length=False`` ends the
    body by closing the connection; ``hang`` makes answers wait until the
    server stops.
    """

    document: Any = field(default_factory=lambda: {"keys": []})
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    send_length: bool = True
    hang: bool = False
    hits: list[str] = field(default_factory=list)
    certificate: tuple[Path, Path] | None = None  # (cert, key): serve https for localhost

    def __post_init__(self) -> None:
        self._released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                if server.hang:
                    server._released.wait(HANG_SECONDS)
                    return
                body = server.body if server.body is not None else json.dumps(
                    server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                if server.send_length:
                    self.send_header("Content-Length", str(len(body)))
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.certificate)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        if self.certificate is not None:
            return f"https://localhost:{self._server.server_port}/certs"
        return f"http://127.0.0.1:{self._server.server_port}/certs"

    def start(self) -> JwksServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
