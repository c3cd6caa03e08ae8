"""Where a benchmark's CPU goes: CPU time per process over a timed window, read from ``/proc``.

On this 2-core machine a figure such as "two instances reach 1.3 times one" means something only
beside what else used the cores meanwhile (the broker, PostgreSQL, the benchmark's producer). A
:class:`CpuMeter` reads every process's user + system time when the window opens and closes and
reports the cores each kind of process used on average, and the machine's busy share from
``/proc/stat``. A process that exits inside the window is not counted (its time left with it).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> tuple[str, int] | None:
    """(command name, user + system ticks) of a process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _kind(pid: int, name: str, named: Mapping[int, str]) -> str:
    if pid in named:
        return named[pid]
    if pid == os.getpid():
        return "bench"
    if name == "postgres":
        return "postgresql"
    if name.startswith("redis"):
        return "redis"
    if name == "java":
        line = _command_line(pid)
        return "opensearch" if "opensearch" in line else "kafka" if "kafka" in line else "java"
    return "other"


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def _snapshot() -> dict[int, tuple[str, int]]:
    found: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ticks = _cpu_ticks(int(entry.name))
            if ticks is not None:
                found[int(entry.name)] = ticks
    return found


class CpuMeter:
    """Cores used per kind of process between ``__enter__`` and ``__exit__``.

    Args:
        named: Processes to report under their own name (e.g. the workers under test);
            the rest are grouped as bench (this process), kafka, postgresql, opensearch, redis,
            other.
    """

    def __init__(self, named: Mapping[int, str] | None = None) -> None:
        """Remember which processes to name."""
        self._named = dict(named or {})
        self._before: dict[int, tuple[str, int]] = {}
        self._machine_before = (0, 0)
        self._started = 0.0
        self.cores: dict[str, float] = {}
        """Average cores used per kind over the window (set on exit)."""
        self.machine_busy = 0.0
        """Share of all cores busy over the window, 0-1 (set on exit)."""

    def __enter__(self) -> CpuMeter:
        """Open the window."""
        self._before = _snapshot()
        self._machine_before = _machine_ticks()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the window and work out the figures."""
        elapsed = time.perf_counter() - self._started
        after = _snapshot()
        busy, total = _machine_ticks()
        used: dict[str, int] = defaultdict(int)
        for pid, (name, ticks) in after.items():
            # By pid alone: kernel workers rename themselves. A pid reused inside the window
            # shows fewer ticks than before, and then all of its ticks are new.
            start = self._before.get(pid, (name, 0))[1]
            used[_kind(pid, name, self._named)] += ticks - start if ticks >= start else ticks
        seconds = max(elapsed, 1e-9) * _TICKS_PER_S
        self.cores = {kind: round(ticks / seconds, 2) for kind, ticks in sorted(used.items())}
        spent = max(total - self._machine_before[1], 1)
        self.machine_busy = round((busy - self._machine_before[0]) / spent, 2)

    def report(self) -> dict[str, object]:
        """The figures as a results-file object."""
        return {"cores_used": self.cores, "machine_busy": self.machine_busy}


def describe(report: Mapping[str, object]) -> str:
    """A report as one line of prose: the cores each kind used, busiest first."""
    cores = report["cores_used"]
    assert isinstance(cores, dict)
    used = ", ".join(
        f"{kind} {value}" for kind, value in sorted(cores.items(), key=lambda kv: -kv[1]) if value
    )
    return f"cores used: {used}; machine busy {report['machine_busy']:.0%}"
