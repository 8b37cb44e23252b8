"""TLS material is checked at start-up: missing, mismatched, expired and future certificates."""

from __future__ import annotations

import datetime

import pytest

from opencue_gateway.config import ConfigError
from opencue_gateway.tls import cuebot_credentials, load_server_tls
from tests.certs import NOW, make_ca, make_leaf


@pytest.fixture
def ca(tmp_path):
    return make_ca(tmp_path)


def test_valid_certificate_loads(tmp_path, ca):
    """A current certificate with its key loads, and its expiry is known."""
    leaf = make_leaf(tmp_path, *ca)
    tls = load_server_tls(str(leaf.cert), str(leaf.key), NOW)
    assert tls.not_after == leaf.certificate.not_valid_after_utc
    assert not tls.expires_soon(NOW)
    assert tls.expires_soon(NOW + datetime.timedelta(days=20))


def test_expired_certificate_is_refused(tmp_path, ca):
    """An expired certificate stops start-up with the date."""
    leaf = make_leaf(tmp_path, *ca, not_before=datetime.timedelta(days=-30),
                     not_after=datetime.timedelta(days=-1))
    with pytest.raises(ConfigError, match="TLS_CERT_FILE: the certificate expired on"):
        load_server_tls(str(leaf.cert), str(leaf.key), NOW)


def test_future_certificate_is_refused(tmp_path, ca):
    """A certificate not valid yet stops start-up too."""
    leaf = make_leaf(tmp_path, *ca, not_before=datetime.timedelta(days=2))
    with pytest.raises(ConfigError, match="not valid before"):
        load_server_tls(str(leaf.cert), str(leaf.key), NOW)


def test_key_of_another_certificate_is_refused(tmp_path, ca):
    """A key that does not belong to the certificate is named."""
    one = make_leaf(tmp_path, *ca, name="one")
    other = make_leaf(tmp_path, *ca, name="other")
    with pytest.raises(ConfigError, match=r"TLS_KEY_FILE: .* is not the key of"):
        load_server_tls(str(one.cert), str(other.key), NOW)


@pytest.mark.parametrize("which", ["cert", "key"])
def test_missing_or_garbage_files_are_refused(tmp_path, ca, which):
    """Unreadable and non-PEM files are named."""
    leaf = make_leaf(tmp_path, *ca)
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="cannot read"):
        load_server_tls(missing if which == "cert" else str(leaf.cert),
                        missing if which == "key" else str(leaf.key), NOW)
    (tmp_path / "garbage").write_text("hello")
    with pytest.raises(ConfigError, match=r"no (unencrypted )?PEM"):
        load_server_tls(str(tmp_path / "garbage") if which == "cert" else str(leaf.cert),
                        str(tmp_path / "garbage") if which == "key" else str(leaf.key), NOW)


def test_cuebot_client_certificate_needs_both_halves(tmp_path, ca):
    """A client certificate without its key (or the reverse) is refused."""
    leaf = make_leaf(tmp_path, *ca)
    with pytest.raises(ConfigError, match="together"):
        cuebot_credentials(str(ca[0].cert), str(leaf.cert), None)
    assert cuebot_credentials(str(ca[0].cert), str(leaf.cert), str(leaf.key)) is not None
