"""The UI's component tests (Vitest, ``ui/src/**/*.test.ts``) as part of the Python suite."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[2] / "ui"


def test_the_uis_vitest_suite_passes() -> None:
    npm = shutil.which("npm")
    if npm is None or not (UI / "node_modules" / ".bin" / "vitest").exists():
        pytest.fail("the UI's packages are missing: run `make bootstrap` (npm ci in ui/)")
    done = subprocess.run(
        [npm, "test", "--silent"],
        cwd=UI,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PATH": str(Path(npm).parent) + ":/usr/bin:/bin", "CI": "1", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" not in done.stdout.lower(), done.stdout
