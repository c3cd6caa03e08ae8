"""regopy and RocksDB in one process, in the order that used to abort it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import sys, tempfile
from omium.kernel.rego import Interpreter
from rocksdict import Options, Rdict
db = Rdict(tempfile.mkdtemp(), Options(raw_mode=True))
db.put(b"k", b"v")
assert db.get(b"k") == b"v"
db.close()
print(Interpreter().query("x := 1"))
"""


def test_rocksdb_works_after_regopy_is_loaded() -> None:
    # A subprocess: the failure mode is an abort that would take pytest down with it.
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert '"x":1' in done.stdout


def test_regopy_is_only_imported_through_the_kernel() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("omium", "commands", "streams", "projections", "gateway")
        for path in (root / folder).rglob("*.py")
        if path != root / "omium/kernel/rego.py"
        and any(
            line.startswith(("import regopy", "from regopy"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []
