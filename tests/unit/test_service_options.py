"""twistd options: every setting is a flag, and the sandbox flags need --sandbox."""

from __future__ import annotations

import pytest

from opencue_gateway.config import SETTINGS, ConfigError, load_config
from opencue_gateway.service import Options


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_every_setting_is_a_flag():
    """Each environment variable has its twistd flag, unset unless given."""
    options = parse("--grpc-timeout", "5s")
    flags = options.flags()
    assert flags["grpc_timeout"] == "5s"
    assert all(flags[s.attribute] is None for s in SETTINGS if s.attribute != "grpc_timeout")


def test_switches_and_repeated_listen_flags():
    """--sandbox is a switch; --listen may be given several times."""
    flags = parse("--sandbox", "--listen", "tcp:0", "--listen", "unix:/tmp/x.sock").flags()
    assert flags["enabled"] == "true"
    assert flags["listen"] == "tcp:0,unix:/tmp/x.sock"
    assert parse().flags()["enabled"] is None


def test_sandbox_options_are_typed():
    """Farm sizes and simulation options come out typed, sizes apart."""
    options = parse("--sandbox", "--shows", "2", "--frames-per-layer", "50", "--simulate",
                    "--speed", "10", "--seed", "7", "--preset", "readme", "--log-root", "/tmp/x")
    config = load_config({}, options.flags())
    assert config.sandbox.server_options() == {
        "preset": "readme", "sizes": {"shows": 2, "frames_per_layer": 50}, "simulate": True,
        "speed": 10.0, "seed": 7, "tick_seconds": 1.0, "failure_rate": 0.05,
        "log_root": "/tmp/x",
    }


def test_the_first_command_gets_the_lively_farm():
    """`--sandbox` alone starts the lively preset; `--preset readme` the still README farm."""
    assert load_config({}, parse("--sandbox").flags()).sandbox.preset == "lively"
    with pytest.raises(ConfigError, match=r"^--preset: expected lively or readme"):
        load_config({}, parse("--sandbox", "--preset", "busy").flags())


@pytest.mark.parametrize(("argv", "words"), [
    (("--shows", "2"), "--shows: only applies with --sandbox"),
    (("--simulate",), "--simulate: only applies with --sandbox"),
    (("--sandbox", "--hosts", "many"), "--hosts: expected a whole number from 0 to 1000000, "
                                       "got 'many'"),
])
def test_bad_sandbox_options(argv, words):
    """Sandbox flags without --sandbox, or with a wrong type, are one-line errors."""
    with pytest.raises(ConfigError) as caught:
        load_config({"JWT_SECRET": "s" * 32}, parse(*argv).flags())
    assert str(caught.value) == words
