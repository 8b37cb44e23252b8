"""The README stays current: settings tables, CI command, sandbox methods."""

from __future__ import annotations

import re
from pathlib import Path

from opencue_gateway.config import SETTINGS
from opencue_gateway.settings_doc import env_example, markdown_tables

README = Path(__file__).resolve().parents[2] / "README.md"
ENV_EXAMPLE = README.parent / "etc" / "opencue-gateway.env.example"


def test_the_readme_holds_the_generated_settings_tables():
    """The README's configuration tables are exactly `opencue-gateway settings`' output."""
    assert markdown_tables() in README.read_text()


def test_the_env_example_is_the_generated_one():
    """etc/opencue-gateway.env.example is exactly `opencue-gateway settings --format env`."""
    assert ENV_EXAMPLE.read_text() == env_example()


def test_every_setting_appears_in_both():
    """Each declared setting has a README row and an env example line at its default."""
    readme = README.read_text()
    example = ENV_EXAMPLE.read_text()
    for setting in SETTINGS:
        assert f"| `{setting.variable}` |" in readme, setting.variable
        assert re.search(rf"^#?{setting.variable}=", example, re.MULTILINE), setting.variable


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
