"""``python -m omium.infra.localstack fetch [core|full]``: download the stack's binaries only.

``infra/bootstrap.sh`` calls this so that ``omium up`` timings measure starting, not downloading.
"""

from __future__ import annotations

import sys

from omium.infra.localstack._stack import LocalStack


def main(argv: list[str]) -> int:
    """Entry point; returns the process exit status."""
    if not argv or argv[0] != "fetch" or len(argv) > 2:
        sys.stderr.write("usage: python -m omium.infra.localstack fetch [core|full]\n")
        return 2
    LocalStack().fetch(argv[1] if len(argv) > 1 else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
