"""Configuration: defaults, environment, flags over environment, and one-line errors."""

from __future__ import annotations

import os

import pytest

from opencue_gateway.config import (
    REDACTED,
    SANDBOX_SECRET,
    SETTINGS,
    ConfigError,
    load_config,
    parse_duration,
    parse_size,
)
from opencue_gateway.cors import CorsPolicy

SECRET_ENV = {"JWT_SECRET": "s" * 40}


def test_defaults_match_the_readme():
    """Without variables the gateway uses the README's defaults."""
    config = load_config(SECRET_ENV, {})
    assert config.cuebot_endpoints == ("localhost:8443",)
    assert config.rest_port == 8448
    assert config.grpc_timeout == 30.0
    assert config.max_concurrent_streams == 100
    assert config.keepalive_time == 30.0 and config.keepalive_timeout == 5.0
    assert config.grpc_max_recv_msg_mb == 256
    assert config.max_request_bytes == 4 * 1024 * 1024
    assert config.strict_json is False


def test_environment_variables_are_read():
    """Each variable sets its value."""
    config = load_config({**SECRET_ENV, "CUEBOT_ENDPOINT": "cuebot:9000", "REST_PORT": "9001",
                          "GRPC_TIMEOUT": "1m30s", "STRICT_JSON": "true",
                          "MAX_REQUEST_BYTES": "512KiB", "LOG_LEVEL": "WARNING"}, {})
    assert (config.cuebot_endpoints, config.rest_port) == (("cuebot:9000",), 9001)
    assert config.grpc_timeout == 90.0
    assert config.strict_json is True
    assert config.max_request_bytes == 512 * 1024
    assert config.log_level == "warn"


def test_flags_win_over_environment():
    """A twistd flag overrides the variable of the same name."""
    config = load_config({**SECRET_ENV, "GRPC_TIMEOUT": "10s"}, {"grpc_timeout": "2s"})
    assert config.grpc_timeout == 2.0


@pytest.mark.parametrize(("env", "words"), [
    ({"GRPC_TIMEOUT": "30"},
     "GRPC_TIMEOUT: expected a duration like 500ms, 30s, 5m or 1h, got '30'"),
    ({"GRPC_TIMEOUT": "0"}, "GRPC_TIMEOUT: expected a duration longer than zero"),
    ({"REST_PORT": "http"}, "REST_PORT: expected a whole number from 0 to 65535"),
    ({"REST_PORT": "70000"}, "REST_PORT: expected a whole number from 0 to 65535"),
    ({"CUEBOT_ENDPOINT": "cuebot"}, "CUEBOT_ENDPOINT: expected host:port"),
    ({"MAX_CONCURRENT_STREAMS": "0"}, "MAX_CONCURRENT_STREAMS: expected a whole number from 1"),
    ({"STRICT_JSON": "maybe"}, "STRICT_JSON: expected true or false"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: expected one of debug, info, warn, error"),
    ({"MAX_REQUEST_BYTES": "4 megs"}, "MAX_REQUEST_BYTES: expected a size in bytes"),
])
def test_bad_values_name_the_variable_and_the_form(env, words):
    """A bad value raises one message naming the variable and what it accepts."""
    with pytest.raises(ConfigError) as caught:
        load_config({**SECRET_ENV, **env}, {})
    assert str(caught.value).startswith(words)
    assert "\n" not in str(caught.value)


def test_bad_flag_is_named_as_a_flag():
    """A bad flag value names the flag, not the variable."""
    with pytest.raises(ConfigError, match=r"^--grpc-timeout: "):
        load_config(SECRET_ENV, {"grpc_timeout": "soon"})


def test_secret_is_required_outside_the_sandbox():
    """Without JWT_SECRET or JWT_SECRET_FILE start-up fails, naming both."""
    with pytest.raises(ConfigError, match=r"JWT_SECRET: required: set JWT_SECRET or"):
        load_config({}, {})


def test_sandbox_defaults_the_secret():
    """The sandbox uses the README's development secret when none is given."""
    assert load_config({"SANDBOX": "true"}, {}).jwt_secret == SANDBOX_SECRET


def test_empty_secret_is_refused():
    """An empty secret would accept tokens signed with an empty key: refused."""
    with pytest.raises(ConfigError, match="JWT_SECRET: must not be empty"):
        load_config({"JWT_SECRET": ""}, {})


def test_secret_file_is_read_and_stripped(tmp_path):
    """JWT_SECRET_FILE is read with surrounding whitespace stripped (Docker secrets end in \\n)."""
    path = tmp_path / "secret"
    path.write_text("  file-secret\n")
    assert load_config({"JWT_SECRET_FILE": str(path)}, {}).jwt_secret == b"file-secret"


@pytest.mark.parametrize(("content", "words"), [(None, "cannot read"), ("\n", "is empty")])
def test_unusable_secret_file_is_refused(tmp_path, content, words):
    """A missing or empty secret file stops start-up with its name."""
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"JWT_SECRET_FILE: .*{words}"):
        load_config({"JWT_SECRET_FILE": str(path)}, {})


def test_secret_and_secret_file_together_are_refused(tmp_path):
    """Two sources for one secret is ambiguous."""
    path = tmp_path / "secret"
    path.write_text("x")
    with pytest.raises(ConfigError, match="not both"):
        load_config({"JWT_SECRET": "y", "JWT_SECRET_FILE": str(path)}, {})


def test_describe_redacts_secrets():
    """The logged configuration never shows the secret."""
    described = load_config({"JWT_SECRET": "hunter2-hunter2"}, {}).describe()
    assert described["JWT_SECRET"] == REDACTED
    assert "hunter2" not in repr(described)


def test_every_setting_has_a_flag_and_help():
    """Every gateway variable's flag is its name in lower case; sandbox flags are short."""
    for setting in SETTINGS:
        assert setting.help
        if setting.variable.startswith("SANDBOX"):
            assert not setting.flag.startswith("sandbox-")
        else:
            assert setting.flag == setting.variable.lower().replace("_", "-")
    assert len({s.flag for s in SETTINGS}) == len(SETTINGS)


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("0", 0),
])
def test_durations(text, seconds):
    """Go-style durations parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("text", "size"), [("4194304", 4194304), ("4MiB", 4194304),
                                            ("512KiB", 524288), ("1G", 1024**3)])
def test_sizes(text, size):
    """Sizes accept bytes and binary units."""
    assert parse_size(text) == size


def test_algorithms_are_read_as_rfc_7518_spells_them():
    """JWT_ALGORITHMS takes HMAC and public-key algorithms in any case; unknown ones are refused."""
    assert load_config({**SECRET_ENV, "JWT_ALGORITHMS": "hs512"}, {}).jwt_algorithms == ("HS512",)
    config = load_config({**SECRET_ENV, "JWT_PUBLIC_KEY_FILE": "keys.pem",
                          "JWT_ALGORITHMS": "hs256, rs256,eddsa,ES512"}, {})
    assert config.jwt_algorithms == ("HS256", "RS256", "EdDSA", "ES512")
    with pytest.raises(ConfigError, match=r"JWT_ALGORITHMS: expected a comma-separated list of "
                                          r"HS256, .*, EdDSA, got 'HS256,none'"):
        load_config({**SECRET_ENV, "JWT_ALGORITHMS": "HS256,none"}, {})


@pytest.mark.parametrize(("env", "message"), [
    ({**SECRET_ENV, "JWT_ALGORITHMS": "HS256,RS256"},
     "JWT_ALGORITHMS: RS256 needs public keys: set JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL"),
    ({**SECRET_ENV, "JWT_JWKS_URL": "https://idp.example/certs"},
     "JWT_ALGORITHMS: accepts no public-key algorithm, so the keys of JWT_JWKS_URL would verify "
     "nothing"),
    ({**SECRET_ENV, "JWT_JWKS_URL": "https://idp.example/certs", "JWT_ALGORITHMS": "RS256"},
     r"JWT_ALGORITHMS: a JWT secret is set but no HMAC algorithm \(HS256, HS384, HS512\)"),
    ({"JWT_JWKS_URL": "https://idp.example/certs", "JWT_ALGORITHMS": "HS256,RS256"},
     r"JWT_SECRET: required: .* \(or leave HS256 out of JWT_ALGORITHMS to accept only tokens "
     r"signed with the keys of JWT_JWKS_URL\)"),
    ({"JWT_JWKS_URL": "https://idp.example/certs", "JWT_ALGORITHMS": "RS256",
      "JWT_PREVIOUS_SECRETS": "old"},
     "JWT_PREVIOUS_SECRETS: needs JWT_SECRET or JWT_SECRET_FILE"),
    ({**SECRET_ENV, "JWT_IDP_ISSUER": "https://idp.example"},
     "JWT_IDP_ISSUER: applies to tokens verified with a public key"),
    ({**SECRET_ENV, "JWT_IDP_AUDIENCE": "opencue"},
     "JWT_IDP_AUDIENCE: applies to tokens verified with a public key"),
])
def test_every_algorithm_needs_keys_and_every_key_an_algorithm(env, message):
    """Algorithms without keys and keys without algorithms stop start-up, naming the fix."""
    with pytest.raises(ConfigError, match=message):
        load_config(env, {})


def test_public_keys_alone_need_no_secret():
    """With only an identity provider's keys, JWT_SECRET is not required (nor in the sandbox)."""
    env = {"JWT_JWKS_URL": "https://idp.example/certs", "JWT_ALGORITHMS": "RS256,ES256"}
    for sandbox in ("false", "true"):
        config = load_config({**env, "SANDBOX": sandbox}, {})
        assert config.jwt_secret is None and config.jwt_secrets == ()
    assert load_config(env, {}).describe()["JWT_SECRET"] is None
    assert load_config({**SECRET_ENV, "JWT_PREVIOUS_SECRETS": "old"}, {}).jwt_secrets == (
        b"s" * 40, b"old")


@pytest.mark.parametrize("url", ["ftp://idp.example/certs", "https:///certs", "idp.example/certs",
                                 "https://idp.example/certs#x", "https://idp.example/a b",
                                 "https://user:pw@idp.example/certs"])
def test_jwks_url_must_be_http_with_a_host(url):
    """JWT_JWKS_URL is an http(s) URL naming a host, without credentials; else start-up stops."""
    with pytest.raises(ConfigError, match="JWT_JWKS_URL: expected an http:// or https:// URL"):
        load_config({"JWT_JWKS_URL": url, "JWT_ALGORITHMS": "RS256"}, {})


def test_jwks_refresh_defaults_to_five_minutes():
    """JWT_JWKS_REFRESH is 5m unless set, and must be longer than zero."""
    env = {"JWT_JWKS_URL": "https://idp.example/certs", "JWT_ALGORITHMS": "RS256"}
    assert load_config(env, {}).jwt_jwks_refresh == 300
    assert load_config({**env, "JWT_JWKS_REFRESH": "1h"}, {}).jwt_jwks_refresh == 3600
    with pytest.raises(ConfigError, match="JWT_JWKS_REFRESH: expected a duration longer"):
        load_config({**env, "JWT_JWKS_REFRESH": "0"}, {})


@pytest.mark.parametrize(("text", "read"), [
    ("role", "role"), ("realm_access.roles", "realm_access.roles"),
    ("https://studio.example/roles", "https://studio.example/roles"),
    (" role , realm_access.roles", "role,realm_access.roles"),
    ("a..b", None), (".roles", None), ("roles.", None), ("ro\tle", None), (",", None),
])
def test_role_claim_takes_names_and_dotted_paths(text, read):
    """JWT_ROLE_CLAIM takes claim names or dotted paths without empty parts, comma-separated."""
    env = {**SECRET_ENV, "JWT_ROLE_CLAIM": text}
    if read is not None:
        assert load_config(env, {}).jwt_role_claim == read
    else:
        with pytest.raises(ConfigError, match="JWT_ROLE_CLAIM: expected claim names or dotted"):
            load_config(env, {})


def test_previous_secrets_and_audience_are_lists():
    """Rotation secrets and audiences are comma-separated lists."""
    config = load_config({**SECRET_ENV, "JWT_PREVIOUS_SECRETS": "old1, old2",
                          "JWT_AUDIENCE": "gateway,cueweb"}, {})
    assert config.jwt_previous_secrets == (b"old1", b"old2")
    assert config.jwt_audience == ("gateway", "cueweb")
    assert config.describe()["JWT_PREVIOUS_SECRETS"] == REDACTED


def test_short_secrets_are_reported():
    """Secrets under 32 bytes are named for the start-up warning; long ones are not."""
    from opencue_gateway.config import short_secrets

    config = load_config({"JWT_SECRET": "short", "JWT_PREVIOUS_SECRETS": "x" * 40 + ",tiny"}, {})
    assert short_secrets(config) == ["JWT_SECRET", "JWT_PREVIOUS_SECRETS[1]"]
    assert short_secrets(load_config(SECRET_ENV, {})) == []


def test_metrics_port_and_workers_do_not_mix():
    """Each worker would need METRICS_PORT: refused at start-up."""
    with pytest.raises(ConfigError, match=r"METRICS_PORT: cannot be combined with WORKERS > 1"):
        load_config({**SECRET_ENV, "WORKERS": "2", "METRICS_PORT": "9100"}, {})


def test_worker_environment_turns_flags_into_variables():
    """A worker gets the supervisor's environment plus its flags as variables."""
    from opencue_gateway.config import process_environment

    environment = process_environment({"grpc_timeout": "5s", "rest_port": None}, {"WORKERS": "1"})
    assert environment["GRPC_TIMEOUT"] == "5s" and environment["WORKERS"] == "1"
    assert "REST_PORT" not in environment or environment["REST_PORT"] == os.environ["REST_PORT"]


@pytest.mark.parametrize("variable, attribute", [("CORS_ORIGINS", "cors_origins"),
                                                 ("CORS_HEADERS", "cors_headers")])
def test_an_empty_cors_list_means_none_not_the_permissive_default(variable, attribute):
    """CORS_ORIGINS= turns CORS off; it must never fall back to the default '*'."""
    from_env = load_config({"JWT_SECRET": "s" * 32, variable: ""}, {})
    from_flag = load_config({"JWT_SECRET": "s" * 32}, {attribute: ""})
    assert getattr(from_env, attribute) == () == getattr(from_flag, attribute)


def test_with_no_cors_origins_no_origin_is_allowed():
    config = load_config({"JWT_SECRET": "s" * 32, "CORS_ORIGINS": ""}, {})
    assert CorsPolicy(config.cors_origins, (), 600).allowed_origin("http://evil.example") is None


def test_an_empty_value_elsewhere_still_means_the_default():
    """REST_PORT= in an env file keeps the documented default rather than failing."""
    assert load_config({"JWT_SECRET": "s" * 32, "REST_PORT": ""}, {}).rest_port == 8448


def test_the_sandbox_listens_on_loopback_unless_told_otherwise():
    """Its signing secret is public: --sandbox binds 127.0.0.1 unless REST_HOST says otherwise."""
    assert load_config({"SANDBOX": "true"}, {}).rest_host == "127.0.0.1"
    assert load_config({"SANDBOX": "true", "REST_HOST": "0.0.0.0"}, {}).rest_host == "0.0.0.0"
    assert load_config(SECRET_ENV, {}).rest_host == "0.0.0.0"
