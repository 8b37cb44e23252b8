"""Every curl example of the Go gateway's README, and every curl line of our README's
"Try it", against the gateway on the sandbox, one at a time and in order.

Placeholders (``job-id``, ``hostname``, ...) are replaced with the sandbox's
seed entities, which are the README's own example entities.  Examples whose
method exists answer 200; the ones that are wrong about the protos get what
COMPATIBILITY.md says: a 404 naming the nearest methods, a 400 naming the
field, or a 200 with the dropped fields reported.  Never a 5xx.  Run in the
README's order on one sandbox (the still README farm, then the lively one the
first command starts), each still gets its answer: a kill leaves its proc for
the next line's Unbook, as Cuebot's does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_twisted

from opencue_gateway.sandbox.factory import sandbox_server

JOB = "00000000-0000-0000-0000-000000000001"
FRAME = "00000000-0000-0000-0000-000000000002"
LAYER = "00000000-0000-0000-0000-000000000003"
GROUP = "00000000-0000-0000-0000-000000000004"
HOST = "00000000-0000-0000-0000-000000000005"
PROC = "00000000-0000-0000-0000-000000000006"
DEED = "00000000-0000-0000-0000-000000000007"

# (path as the README writes it, body, expected status, expected ignored fields or words)
EXAMPLES = [
    ("/show.ShowInterface/GetShows", "{}", 200, None),
    ("/show.ShowInterface/FindShow", '{"name": "testing"}', 200, None),
    ("/job.JobInterface/GetJobs", '{"r": {"show": {"name": "testing"}}}', 200, "r.show"),
    ("/job.JobInterface/FindJob", '{"name": "testing-job-001"}', 200, None),
    ("/job.JobInterface/GetFrames",
     f'{{"job": {{"id": "{JOB}"}}, "req": {{"include_finished": true, "page": 1, '
     '"limit": 100}}', 200, None),
    ("/job.JobInterface/Kill", f'{{"job": {{"id": "{JOB}"}}}}', 200, None),
    ("/job.JobInterface/Pause", f'{{"job": {{"id": "{JOB}"}}}}', 200, None),
    ("/job.JobInterface/Resume", f'{{"job": {{"id": "{JOB}"}}}}', 200, None),
    ("/frame.FrameInterface/GetFrame", f'{{"id": "{FRAME}"}}', 200, None),
    ("/frame.FrameInterface/Retry", f'{{"frame": {{"id": "{FRAME}"}}}}', 200, None),
    ("/frame.FrameInterface/Kill", f'{{"frame": {{"id": "{FRAME}"}}}}', 200, None),
    ("/frame.FrameInterface/Eat", f'{{"frame": {{"id": "{FRAME}"}}}}', 200, None),
    ("/layer.LayerInterface/GetLayer", f'{{"id": "{LAYER}"}}', 200, None),
    ("/layer.LayerInterface/FindLayer", f'{{"job": {{"id": "{JOB}"}}, "layer": "layer_name"}}',
     400, "field 'job': expected a string"),
    ("/layer.LayerInterface/GetFrames", f'{{"layer": {{"id": "{LAYER}"}}, "req": '
     '{"page": 1, "limit": 100}}', 200, "req"),  # the field is called `s`
    ("/layer.LayerInterface/Kill", f'{{"layer": {{"id": "{LAYER}"}}}}', 404, "KillFrames"),
    ("/group.GroupInterface/FindGroup", '{"show": {"name": "testing"}, "name": "default"}', 400,
     "field 'show': expected a string"),
    ("/group.GroupInterface/GetGroup", f'{{"id": "{GROUP}"}}', 200, None),
    ("/group.GroupInterface/SetMinCores", f'{{"group": {{"id": "{GROUP}"}}, "cores": 10}}', 200,
     "cores"),
    ("/group.GroupInterface/SetMaxCores", f'{{"group": {{"id": "{GROUP}"}}, "cores": 100}}', 200,
     "cores"),
    ("/host.HostInterface/GetHosts", "{}", 200, None),
    ("/host.HostInterface/FindHost", '{"name": "render-host-001"}', 200, None),
    ("/host.HostInterface/GetHost", f'{{"id": "{HOST}"}}', 200, None),
    ("/host.HostInterface/Lock", f'{{"host": {{"id": "{HOST}"}}}}', 200, None),
    ("/host.HostInterface/Unlock", f'{{"host": {{"id": "{HOST}"}}}}', 200, None),
    ("/owner.OwnerInterface/GetOwner", '{"name": "artist1"}', 200, None),
    ("/owner.OwnerInterface/SetMaxCores", '{"owner": {"name": "artist1"}, "cores": 50}', 404,
     "did you mean"),
    ("/owner.OwnerInterface/TakeOwnership",
     f'{{"host": {{"id": "{HOST}"}}, "owner": {{"name": "artist1"}}}}', 400,
     "field 'host': expected a string"),
    ("/proc.ProcInterface/GetProc", f'{{"id": "{PROC}"}}', 404, "GetProcs"),
    ("/proc.ProcInterface/Kill", f'{{"proc": {{"id": "{PROC}"}}}}', 200, None),
    ("/proc.ProcInterface/Unbook", f'{{"proc": {{"id": "{PROC}"}}}}', 200, None),
    ("/deed.DeedInterface/GetOwner", f'{{"deed": {{"id": "{DEED}"}}}}', 200, None),
    ("/deed.DeedInterface/GetHost", f'{{"deed": {{"id": "{DEED}"}}}}', 200, None),
]
README = Path(__file__).resolve().parents[2] / "README.md"
# One curl line of our README: path and body (continuation lines already joined).
CURL = re.compile(r"^curl -X POST localhost:8448(/\S+) .*-d '(.*)'$")


def try_it_lines() -> list[tuple[str, str]]:
    """(path, body) of each curl line of our README's "Try it" section, top to bottom."""
    section = README.read_text().split("\n## Try it\n", 1)[1].split("\n## ", 1)[0]
    joined = section.replace("\\\n", " ")
    lines = [CURL.match(" ".join(line.split())) for line in joined.splitlines()
             if line.startswith("curl -X POST")]
    assert all(lines), "a curl line of Try it does not read as POST path -d body"
    return [(match.group(1), match.group(2)) for match in lines]


async def _check(gateway, path: str, body: str, status: int, detail: str | None) -> None:
    """One README line gets its documented answer."""
    response = await gateway.post(path, body)
    assert response.status == status, (path, response.body)
    if status == 200 and detail:
        assert response.header("Opencue-Gateway-Ignored-Fields") == detail
    elif status == 200:
        assert response.header("Opencue-Gateway-Ignored-Fields") is None
    else:
        assert detail in response.json()["message"]


@pytest.fixture
def lively_gateway(start_gateway):
    """A gateway in front of the lively sandbox, simulating, as the README's first command
    starts it (the seed farm of the ``sandbox_gateway`` fixture is the still README one)."""
    server = sandbox_server(preset="lively")
    server.start()
    yield start_gateway(CUEBOT_ENDPOINT=server.address)
    server.stop(grace=None)


@pytest.mark.parametrize(("path", "body", "status", "detail"), EXAMPLES,
                         ids=[e[0] for e in EXAMPLES])
@pytest_twisted.ensureDeferred
async def test_readme_example(sandbox_gateway, path, body, status, detail):
    """The README's curl line gets its documented answer from the sandbox."""
    await _check(sandbox_gateway, path, body, status, detail)


@pytest_twisted.ensureDeferred
async def test_readme_examples_in_order_on_one_sandbox(sandbox_gateway):
    """Run top to bottom on one still sandbox, every example still gets its answer: the job
    Kill (no reason) changes nothing, and the proc Kill leaves the proc for Unbook."""
    for path, body, status, detail in EXAMPLES:
        await _check(sandbox_gateway, path, body, status, detail)


@pytest_twisted.ensureDeferred
async def test_readme_examples_in_order_on_the_lively_sandbox(lively_gateway):
    """The same, on the lively farm that moves while the examples run."""
    for path, body, status, detail in EXAMPLES:
        await _check(lively_gateway, path, body, status, detail)


@pytest_twisted.ensureDeferred
async def test_our_try_it_lines_in_order_all_answer_200(lively_gateway):
    """Our README's "Try it" curl lines, top to bottom, each answer 200 on the lively farm."""
    lines = try_it_lines()
    assert len(lines) >= 7
    for path, body in lines:
        response = await lively_gateway.post(path, body)
        assert response.status == 200, (path, response.body)


@pytest_twisted.ensureDeferred
async def test_get_shows_matches_the_readme_response(sandbox_gateway):
    """GetShows answers the README's show with its ids, names and grpc-gateway shapes."""
    show = (await sandbox_gateway.post("/show.ShowInterface/GetShows")).json()["shows"]["shows"][0]
    assert show["id"] == "00000000-0000-0000-0000-000000000000"
    assert (show["name"], show["defaultMinCores"], show["defaultMaxCores"]) == ("testing", 1, 2000)
    assert show["showStats"]["pendingJobs"] == 1
    assert isinstance(show["showStats"]["createdJobCount"], str)


@pytest_twisted.ensureDeferred
async def test_pause_then_get_jobs_shows_paused(sandbox_gateway):
    """State changes are visible on the next read: Pause, then GetJobs says isPaused."""
    pause = await sandbox_gateway.post("/job.JobInterface/Pause", f'{{"job": {{"id": "{JOB}"}}}}')
    assert pause.json() == {}
    jobs = (await sandbox_gateway.post("/job.JobInterface/GetJobs",
                                       '{"r": {"shows": ["testing"]}}')).json()["jobs"]["jobs"]
    assert [(j["id"], j["isPaused"]) for j in jobs] == [(JOB, True)]


@pytest_twisted.ensureDeferred
async def test_unknown_ids_are_404_with_cuebot_wording(sandbox_gateway):
    """Unknown names and ids are NOT_FOUND in Cuebot's words."""
    response = await sandbox_gateway.post("/show.ShowInterface/FindShow", '{"name": "nope"}')
    assert response.status == 404
    assert response.json()["message"] == "Incorrect result size: expected 1, actual 0"
    job = await sandbox_gateway.post("/job.JobInterface/Pause", '{"job": {"id": "nope"}}')
    assert (job.status, job.json()["message"]) == (404, "Job not found")


@pytest_twisted.ensureDeferred
async def test_unimplemented_sandbox_methods_are_501(sandbox_gateway, catalog):
    """Methods the sandbox lacks answer 501 naming the method."""
    from opencue_gateway.sandbox.handlers import HANDLERS

    missing = sorted(m.path for m in catalog if m.path not in HANDLERS)
    if not missing:
        pytest.skip("the sandbox implements every method")
    response = await sandbox_gateway.post(missing[0], "{}")
    assert response.status == 501
    assert missing[0][1:] in response.json()["message"]
