"""Cuebot's units, so every figure the sandbox holds, sends and takes is in them.

Memory is in kilobytes (KiB, which Cuebot calls KB) everywhere: in every
memory field of every message (host, proc, frame, layer, job and layer stats,
service, render partition, GPU memory alike), in every memory a request gives
(``SetMinMemory``, service definitions, filter actions, render partitions,
proc search ranges) and in the farm's own booking arithmetic.  That is what
Cuebot's database columns (``int_mem_*``, ``int_gpu_mem_*``), RQD's reports
(report.proto: "in kB") and Cuebot's ``CueUtil.GB`` (1,048,576, "gigabyte
values in KB") hold, and what CueGUI's and CueWeb's formatters expect.
Times are epoch seconds; cores are plain floats (see :mod:`.records`).
"""

from __future__ import annotations

KB_PER_MIB = 1024
# Cuebot's CueUtil.GB: one gigabyte (GiB) in KB.
KB_PER_GIB = 1024 * 1024


def gib(amount: float) -> int:
    """``amount`` GiB in KB, the unit every sandbox memory figure is kept in."""
    return int(amount * KB_PER_GIB)
