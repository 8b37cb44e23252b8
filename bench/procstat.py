"""What the kernel knows about a server process: CPU time, peak memory, listening ports.

CPU comes from ``/proc/<pid>/stat`` (utime + stime).  For a process that line
sums every thread, living or exited, so the gateway's reactor thread, its
``cuebot-calls`` pool and grpcio's C threads are all counted; children are
not, which is why the Cuebot stand-in runs in a separate process.  The
resolution is one clock tick (10 ms at the usual 100 Hz), negligible over a
measured window of seconds.

Peak RSS is ``VmHWM`` from ``/proc/<pid>/status``.  Writing ``5`` to
``/proc/<pid>/clear_refs`` (Linux 4.0 and later) resets it to the current RSS,
so each measured window reports its own peak instead of the process's
lifetime peak; where that write is refused the lifetime peak is reported
and :func:`reset_peak_rss` says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TCP_LISTEN = "0A"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads) in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = raw[raw.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on processes since boot (``/proc/stat``), plus steal.

    Compared with the CPU of the processes the harness knows, it tells how
    much of the machine something else took during a window: on a shared
    2-core machine that is the first thing to check when figures look off.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system = fields[0], fields[1], fields[2]
    steal = fields[7] if len(fields) > 7 else 0
    # irq and softirq are left out: loopback TCP runs in softirq, mostly on the
    # benchmark's own behalf, and is charged to no process.  Steal (another VM
    # on the host) counts: it is time this machine could not run at all.
    return (user + nice + system + steal) / CLOCK_TICKS


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants now (a gateway with WORKERS may fork).

    Scans ``/proc/*/stat`` for parent links; exited children are not in it,
    so a server whose workers come and go would be under-counted.  Today's
    gateway is one process.
    """
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(raw[raw.rindex(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of several processes together; a process that vanished counts 0."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            total += cpu_seconds(pid)
    return total


def peak_rss_bytes(pid: int) -> int:
    """VmHWM: the resident-set high-water mark since start or the last reset."""
    return _status_bytes(pid, "VmHWM:")


def rss_bytes(pid: int) -> int:
    """VmRSS: the resident set now (memory a process kept from earlier work shows here)."""
    return _status_bytes(pid, "VmRSS:")


def _status_bytes(pid: int, key: str) -> int:
    """One ``kB`` line of ``/proc/<pid>/status``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/{pid}/status has no {key} line")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS; False if the kernel refused (lifetime peak then)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def listening_ports(pid: int) -> list[int]:
    """TCP ports a process listens on, from its socket inodes and /proc/net/tcp{,6}.

    Lets the harness find the gateway's port with ``REST_PORT=0`` even at
    ``LOG_LEVEL=warn``, where the "listening on" line is not logged.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == TCP_LISTEN and parts[9] in inodes:
                ports.append(int(parts[1].rsplit(":", 1)[1], 16))
    return sorted(set(ports))


def wait_until_idle(
    pids: list[int], busy_fraction: float = 0.05, quiet_seconds: float = 0.5,
    limit_seconds: float = 60.0,
) -> float:
    """Wait until processes use less than ``busy_fraction`` of a core for ``quiet_seconds``.

    A gateway keeps serving requests whose clients have gone (wrk closes its
    connections when it stops); that work must not land in the next
    measurement.  Bounded by ``limit_seconds``; returns the seconds waited.
    """
    started = time.monotonic()
    last_cpu, last_time = tree_cpu_seconds(pids), started
    while time.monotonic() - started < limit_seconds:
        time.sleep(quiet_seconds)
        cpu, now = tree_cpu_seconds(pids), time.monotonic()
        if cpu - last_cpu <= busy_fraction * (now - last_time):
            break
        last_cpu, last_time = cpu, now
    return time.monotonic() - started


def background_cpu_percent(seconds: float = 1.0, own: list[int] | None = None) -> float:
    """Percent of one core that processes other than ``own`` use now (sampled for ``seconds``)."""
    pids = own or []
    before_machine, before_own = machine_busy_seconds(), tree_cpu_seconds(pids)
    time.sleep(seconds)
    used = (machine_busy_seconds() - before_machine) - (tree_cpu_seconds(pids) - before_own)
    return max(0.0, used / seconds * 100)
