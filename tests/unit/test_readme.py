"""The README stays current: its configuration table lists every setting with its default."""

from __future__ import annotations

import re
from pathlib import Path

from opencue_gateway.config import SETTINGS

README = Path(__file__).resolve().parents[2] / "README.md"
ENV_EXAMPLE = README.parent / "etc" / "opencue-gateway.env.example"


def config_table() -> dict[str, str]:
    """Variable -> default column of the README's configuration table."""
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", README.read_text(), re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented_with_its_default():
    """Each variable of config.SETTINGS has a row whose default matches the code."""
    table = config_table()
    for setting in SETTINGS:
        assert setting.variable in table, setting.variable
        if setting.default is not None:
            assert table[setting.variable] == f"`{setting.default}`", setting.variable


def test_no_row_documents_a_setting_that_does_not_exist():
    """The table has no stale rows."""
    known = {s.variable for s in SETTINGS}
    assert set(config_table()) <= known


def test_the_env_example_lists_every_setting_once_with_its_default():
    """etc/opencue-gateway.env.example: each variable set or shown commented at its default."""
    lines = re.findall(r"^#?([A-Z][A-Z0-9_]+)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    names = [name for name, _ in lines]
    assert sorted(names) == sorted(s.variable for s in SETTINGS)
    shown = dict(lines)
    for setting in SETTINGS:
        if f"#{setting.variable}=" in ENV_EXAMPLE.read_text():
            assert shown[setting.variable] == (setting.default or ""), setting.variable


def test_ci_runs_exactly_the_readmes_second_command():
    """.ci/run's command is the README's second command, character for character."""
    blocks = re.findall(r"```bash\n(.*?)\n```", README.read_text(), re.DOTALL)
    ci_lines = (README.parent / ".ci" / "run").read_text().splitlines()
    assert blocks[1] in ci_lines
    assert "set -euo pipefail" in ci_lines


def test_readme_lists_exactly_the_sandbox_methods():
    """The README's list of sandbox methods matches what the sandbox implements."""
    from opencue_gateway.sandbox.handlers import HANDLERS

    listed = set()
    for service, methods in re.findall(r"^- `([\w.]+)`: (.+)$", README.read_text(), re.MULTILINE):
        listed |= {f"/{service}/{m.strip()}" for m in methods.split(",")}
    assert listed == set(HANDLERS)
