"""The fault-injection runner, briefly: the relay and the orchestrator killed under load.

``python -m bench.chaos`` runs as a user runs it, on a stack of its own (a data folder under
pytest's temporary directory, every port shifted by 1000, so neither the shared stack nor a full
runner on the default chaos ports is touched), with two faults once each. The report it writes is
then read: both faults present, every acknowledged command found everywhere exactly once, every
run ended, every fault recovered from, the hash chains intact. Durations are not asserted (they
are in bench/results/chaos.json and docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ("kill-relay", "kill-orchestrator")


@pytest.mark.timeout(900)
def test_a_killed_relay_and_orchestrator_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    report_path = tmp_path / "chaos.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMIUM_")}
    done = subprocess.run(
        [
            sys.executable, "-m", "bench.chaos",
            "--faults", ",".join(FAULTS),
            "--max-per-fault", "1",
            "--duration", "120",
            "--run-every", "6",
            "--settle", "180",
            "--port-offset", "1000",
            "--data-dir", str(tmp_path / "stack"),
            "--output", str(report_path),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    assert report_path.exists(), _what_went_wrong(done)
    report = json.loads(report_path.read_text())

    entries = {entry["fault"]: entry for entry in report["faults"]}
    assert set(entries) == set(FAULTS), report["faults"]
    for fault, entry in entries.items():
        assert entry["count"] == 1, entry
        assert entry["acknowledged"] > 0, entry
        assert (entry["lost"], entry["duplicated"]) == (0, 0), (fault, entry["examples"])
        assert entry["unfinished_runs"] == 0, entry
        assert entry["recovered"], entry
        assert entry["recovery_s"] is not None, entry
    totals = report["totals"]
    assert (totals["lost"], totals["duplicated"], totals["unfinished_runs"]) == (0, 0, 0), totals
    assert totals["effect_duplicates"] == {}, totals
    assert set(totals["run_statuses"]) == {"completed"}, totals
    assert report["verify"]["ok"], report["verify"]
    assert report["ok"] and done.returncode == 0, _what_went_wrong(done)
    assert "machine" in report and report["config"]["brokers"] == 3


def _what_went_wrong(done: subprocess.CompletedProcess[str]) -> str:
    """The runner's output, from its first traceback on (the log tails after it are long)."""
    start = done.stderr.find("Traceback")
    failure = done.stderr[start : start + 6000] if start >= 0 else done.stderr[-4000:]
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{failure}"
