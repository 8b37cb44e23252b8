"""The farm data the Cuebot stand-in serves: shows, jobs and frames with realistic values.

Zero-heavy data flatters JSON (``0`` and ``""`` are short and protobuf omits
them on the wire), so every field a real Cuebot fills is filled here with the
kind of value it holds in production: names built like a studio's, states
spread over their enum, memory in KiB in the gigabytes, epoch times in
seconds.  A seeded ``random.Random`` keeps the bytes identical from run to run,
so response sizes are comparable between runs and between machines.

Each :class:`Reply` pairs a request (as the JSON body the HTTP targets get and
as the protobuf the stand-in matches) with the reply message it answers.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opencue_proto import job_pb2, show_pb2

from opencue_gateway.catalog import MethodCatalog

SEED = 20_240_611
# A fixed "now" (2025-06-01T00:00:00Z) so times look current but never change.
NOW = 1_748_736_000
SHOW_NAMES = ("aurora", "blackbird")
USERS = ("alice", "bmartin", "chen.l", "dpatel", "evasquez", "fkowalski", "gnakamura")
DEPARTMENTS = ("anim", "fx", "lighting", "comp", "layout", "cfx")
LAYERS = ("render", "denoise", "comp", "cache", "preview")
HOSTS = 240


@dataclass(frozen=True, slots=True)
class Reply:
    """One canned answer: the request that selects it and the reply message."""

    key: str
    path: str
    request_json: dict[str, Any]
    request: Message
    reply: Message


def _uuid(rng: random.Random) -> str:
    """A random-looking but reproducible UUID, like Cuebot's ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_shows(rng: random.Random) -> show_pb2.ShowGetShowsResponse:
    """The active shows with their statistics: two, about 1 KB of JSON, like a small studio."""
    shows = []
    for name in SHOW_NAMES:
        shows.append(show_pb2.Show(
            id=_uuid(rng),
            name=name,
            default_min_cores=1.0,
            default_max_cores=float(rng.choice((100, 200, 400, 800))),
            comment_email=f"pst-{name}@studio.example",
            booking_enabled=True,
            dispatch_enabled=True,
            active=True,
            show_stats=show_pb2.ShowStats(
                running_frames=rng.randint(50, 900),
                dead_frames=rng.randint(0, 40),
                pending_frames=rng.randint(1_000, 60_000),
                pending_jobs=rng.randint(5, 120),
                created_job_count=rng.randint(10_000, 90_000),
                created_frame_count=rng.randint(2_000_000, 9_000_000),
                rendered_frame_count=rng.randint(1_500_000, 8_000_000),
                failed_frame_count=rng.randint(10_000, 90_000),
                reserved_cores=round(rng.uniform(100, 3_000), 2),
                reserved_gpus=float(rng.randint(0, 16)),
            ),
            default_min_gpus=0,
            default_max_gpus=rng.choice((0, 4, 8)),
            scheduler_managed=False,
        ))
    return show_pb2.ShowGetShowsResponse(shows=show_pb2.ShowSeq(shows=shows))


def _job_name(rng: random.Random, show: str) -> tuple[str, str]:
    """A job name and its shot, in OpenCue's ``show-shot-user_task`` style."""
    shot = f"sq{rng.randint(1, 40) * 10:03d}_sh{rng.randint(1, 90) * 10:04d}"
    task = f"{rng.choice(DEPARTMENTS)}_v{rng.randint(1, 40):03d}"
    return f"{show}-{shot}-{rng.choice(USERS)}_{task}", shot


def make_jobs(
    rng: random.Random, count: int, shows: tuple[str, ...] = SHOW_NAMES[:1],
) -> job_pb2.JobGetJobsResponse:
    """``count`` jobs in a mix of states, with filled-in statistics, spread over ``shows``.

    With one show no random draw picks it, so the 100-job reply keeps the
    bytes it had before shows could be several.
    """
    jobs = []
    for _ in range(count):
        show = shows[0] if len(shows) == 1 else rng.choice(shows)
        name, shot = _job_name(rng, show)
        total = rng.randint(24, 2_400)
        succeeded = rng.randint(0, total)
        running = rng.randint(0, total - succeeded)
        dead = rng.randint(0, (total - succeeded - running) // 10)
        waiting = total - succeeded - running - dead
        start = NOW - rng.randint(600, 14 * 86_400)
        finished = succeeded == total
        avg_frame = rng.randint(120, 7_200)
        jobs.append(job_pb2.Job(
            id=_uuid(rng),
            state=job_pb2.FINISHED if finished else job_pb2.PENDING,
            name=name,
            shot=shot,
            show=show,
            user=name.split("-")[2].split("_")[0],
            group=f"{show}_{rng.choice(DEPARTMENTS)}",
            facility="local",
            os="rhel9",
            uid=rng.randint(10_000, 60_000),
            priority=rng.choice((50, 100, 100, 100, 200, 300)),
            min_cores=float(rng.choice((1, 2, 4, 8))),
            max_cores=float(rng.choice((100, 200, 400))),
            log_dir=f"/shots/{show}/{shot}/logs/{name}--{_uuid(rng)}",
            is_paused=rng.random() < 0.1,
            has_comment=rng.random() < 0.2,
            auto_eat=rng.random() < 0.05,
            start_time=start,
            stop_time=start + rng.randint(3_600, 86_400) if finished else 0,
            job_stats=job_pb2.JobStats(
                total_layers=rng.randint(1, 6),
                total_frames=total,
                waiting_frames=waiting,
                running_frames=running,
                dead_frames=dead,
                eaten_frames=rng.randint(0, 3),
                depend_frames=rng.randint(0, waiting),
                succeeded_frames=succeeded,
                pending_frames=waiting + running,
                avg_frame_sec=avg_frame,
                high_frame_sec=avg_frame * rng.randint(2, 5),
                avg_core_sec=avg_frame * 8,
                rendered_frame_count=succeeded,
                failed_frame_count=rng.randint(0, 50),
                remaining_core_sec=(waiting + running) * avg_frame * 8,
                total_core_sec=total * avg_frame * 8,
                rendered_core_sec=succeeded * avg_frame * 8,
                failed_core_sec=rng.randint(0, 500_000),
                max_rss=rng.randint(2_000_000, 48_000_000),
                reserved_cores=float(running * 8),
                total_gpu_sec=0,
                rendered_gpu_sec=0,
                failed_gpu_sec=0,
                reserved_gpus=0.0,
                max_gpu_memory=0,
                max_pss=rng.randint(1_500_000, 40_000_000),
            ),
            min_gpus=0,
            max_gpus=0,
            loki_url="",
            eligible_time=start + rng.randint(0, 30),
        ))
    return job_pb2.JobGetJobsResponse(jobs=job_pb2.JobSeq(jobs=jobs))


_FRAME_STATES = (
    (job_pb2.SUCCEEDED, 55), (job_pb2.RUNNING, 10), (job_pb2.WAITING, 25),
    (job_pb2.DEPEND, 5), (job_pb2.DEAD, 4), (job_pb2.EATEN, 1),
)


def make_frames(rng: random.Random, count: int) -> job_pb2.JobGetFramesResponse:
    """``count`` frames of one job over a few layers, in a realistic mix of states."""
    states = [s for s, _ in _FRAME_STATES]
    weights = [w for _, w in _FRAME_STATES]
    per_layer = max(1, count // len(LAYERS))
    frames = []
    for index in range(count):
        layer = LAYERS[min(index // per_layer, len(LAYERS) - 1)]
        number = 1001 + index % per_layer
        state = rng.choices(states, weights)[0]
        started = state in (job_pb2.SUCCEEDED, job_pb2.RUNNING, job_pb2.DEAD)
        start = NOW - rng.randint(60, 86_400) if started else 0
        runtime = rng.randint(90, 7_200)
        max_rss = rng.randint(1_200_000, 32_000_000) if started else 0
        frames.append(job_pb2.Frame(
            id=_uuid(rng),
            name=f"{number:04d}-{layer}",
            layer_name=layer,
            number=number,
            state=state,
            retry_count=rng.choice((0, 0, 0, 1, 2)) if started else 0,
            exit_status=(rng.choice((1, 137, 255)) if state == job_pb2.DEAD else 0),
            dispatch_order=index,
            start_time=start,
            stop_time=start + runtime if state in (job_pb2.SUCCEEDED, job_pb2.DEAD) else 0,
            max_rss=max_rss,
            used_memory=rng.randint(max_rss // 2, max_rss) if state == job_pb2.RUNNING else 0,
            reserved_memory=rng.choice((4_194_304, 8_388_608, 16_777_216, 33_554_432)),
            reserved_gpu_memory=0,
            last_resource=(f"render-{rng.randint(1, HOSTS):04d}/8.00/0" if started else ""),
            checkpoint_state=job_pb2.DISABLED,
            checkpoint_count=0,
            total_core_time=runtime * 8 if started else 0,
            llu_time=start + rng.randint(0, runtime) if started else 0,
            total_gpu_time=0,
            max_gpu_memory=0,
            used_gpu_memory=0,
            max_pss=max_rss * 9 // 10,
            used_pss=rng.randint(0, max_rss) if state == job_pb2.RUNNING else 0,
            eligible_time=NOW - rng.randint(86_400, 2 * 86_400),
            submission_time=NOW - 2 * 86_400,
        ))
    return job_pb2.JobGetFramesResponse(frames=job_pb2.FrameSeq(frames=frames))


def _frames_request(job_id: str, limit: int) -> dict[str, Any]:
    """The GetFrames body CueWeb sends for one page of a job's frames."""
    return {"job": {"id": job_id}, "req": {"include_finished": True, "page": 1, "limit": limit}}


# Production-size job lists (issue: CueWeb on a busy facility gets tens of MB): a
# show's whole history, and every job of the facility.  Built only when a
# scenario asks for them (60,000 jobs take a few seconds and ~200 MB to build),
# each from its own seed so that the small replies keep their bytes.
LARGE_JOBS = {
    "jobs20k": (20_000, SHOW_NAMES[1:],
                {"r": {"shows": [SHOW_NAMES[1]], "include_finished": True}}),
    "jobs60k": (60_000, SHOW_NAMES, {"r": {"include_finished": True}}),
}
GET_JOBS = "/job.JobInterface/GetJobs"


def build_replies(catalog: MethodCatalog, large: Iterable[str] = ()) -> dict[str, Reply]:
    """Every small canned reply of the stand-in, and the large ones named; deterministic.

    The request protobuf is parsed from the very JSON the HTTP targets are
    sent, so the stand-in recognises what both gateways make of it.
    """
    rng = random.Random(SEED)
    jobs = make_jobs(rng, 100)
    table = [
        ("shows", "/show.ShowInterface/GetShows", {}, make_shows(rng)),
        ("jobs100", GET_JOBS, {"r": {"shows": [SHOW_NAMES[0]], "include_finished": True}}, jobs),
        ("frames1k", "/job.JobInterface/GetFrames",
         _frames_request(jobs.jobs.jobs[0].id, 1_000), make_frames(rng, 1_000)),
        ("frames10k", "/job.JobInterface/GetFrames",
         _frames_request(jobs.jobs.jobs[1].id, 10_000), make_frames(rng, 10_000)),
    ]
    for key in large:
        count, shows, body = LARGE_JOBS[key]
        table.append((key, GET_JOBS, body, make_jobs(random.Random(SEED + count), count, shows)))
    replies = {}
    for key, path, body, reply in table:
        request = json_format.ParseDict(body, catalog.methods[path].input_type())
        replies[key] = Reply(key, path, body, request, reply)
    return replies
