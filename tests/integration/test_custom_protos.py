"""A studio's protos end to end: `python -m proto_gen`, then twistd with PROTO_DESCRIPTOR_SET.

The set is built by the command the README gives, the gateway runs as operators run
it, and the Cuebot double serves the set's catalog over real gRPC; a set the gateway
cannot serve stops twistd with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest_twisted

from opencue_gateway.catalog import MethodCatalog
from tests.conftest import SECRET
from tests.cuebot_double import CuebotDouble
from tests.integration.conftest import TWISTD, wait_for_port
from tests.studio_protos import GET_BUDGET, write_protos


@pytest_twisted.ensureDeferred
async def test_twistd_serves_a_set_built_by_proto_gen(tmp_path, twistd, client):
    """The studio's method answers as JSON through real HTTP and gRPC, /openapi.json lists
    it, and the start-up line names the set."""
    built = subprocess.run(
        [sys.executable, "-m", "proto_gen", str(write_protos(tmp_path / "protos")), "-o",
         str(tmp_path / "studio.pb")], capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, built.stderr
    catalog = MethodCatalog.from_set_file(str(tmp_path / "studio.pb"))
    cuebot = CuebotDouble(catalog).start()
    try:
        reply = catalog.methods[GET_BUDGET].output_type()
        reply.budget.core_hours = 7
        cuebot.behave(GET_BUDGET, reply=reply)
        process = twistd({"JWT_SECRET": SECRET, "CUEBOT_ENDPOINT": cuebot.address,
                          "PROTO_DESCRIPTOR_SET": str(tmp_path / "studio.pb")})
        gateway = client(f"http://127.0.0.1:{await wait_for_port(process, tmp_path)}")
        response = await gateway.post(GET_BUDGET, '{"show": {"studioCode": "PLT"}}')
        assert (response.status, response.json()) == (
            200, {"budget": {"showId": "", "coreHours": "7", "until": None}})
        assert cuebot.last().request.show.studio_code == "PLT"
        document = (await gateway.request("GET", "/openapi.json", None)).json()
        assert GET_BUDGET in document["paths"]
    finally:
        cuebot.stop()
    log = (tmp_path / "twistd.log").read_text()
    assert f"(4 methods in 2 services from {tmp_path / 'studio.pb'})" in log


def test_a_bad_set_exits_1_with_one_line(tmp_path):
    """A file that is no descriptor set stops twistd at once, one line naming the setting."""
    (tmp_path / "studio.pb").write_text("not a descriptor set\n")
    result = subprocess.run(
        [*TWISTD, "-n", "--pidfile=", "opencue-gateway", "--proto-descriptor-set",
         str(tmp_path / "studio.pb")], capture_output=True, text=True,
        env={**os.environ, "JWT_SECRET": SECRET}, cwd=tmp_path, timeout=60,
    )
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip() == (
        f"opencue-gateway: PROTO_DESCRIPTOR_SET: '{tmp_path / 'studio.pb'}' is not a "
        "FileDescriptorSet (build one with: python -m proto_gen PROTO_DIR -o FILE)")
