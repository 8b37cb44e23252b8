"""Every curl example of the Go gateway's README, against the gateway with --sandbox.

Placeholders (``job-id``, ``hostname``, ...) are replaced with the sandbox's
seed entities, which are the README's own example entities.  Examples whose
method exists answer 200; the ones that are wrong about the protos get what
COMPATIBILITY.md says: a 404 naming the nearest methods, a 400 naming the
field, or a 200 with the dropped fields reported.  Never a 5xx.
"""

from __future__ import annotations

import pytest
import pytest_twisted

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
    ("/job.JobInterface/Kill", f'{{"job": {{"id": "{JOB}"}}}}', 200, None),
]


@pytest.mark.parametrize(("path", "body", "status", "detail"), EXAMPLES,
                         ids=[e[0] for e in EXAMPLES])
@pytest_twisted.ensureDeferred
async def test_readme_example(sandbox_gateway, path, body, status, detail):
    """The README's curl line gets its documented answer from the sandbox."""
    response = await sandbox_gateway.post(path, body)
    assert response.status == status, response.body
    if status == 200 and detail:
        assert response.header("Opencue-Gateway-Ignored-Fields") == detail
    elif status == 200:
        assert response.header("Opencue-Gateway-Ignored-Fields") is None
    else:
        assert detail in response.json()["message"]


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
