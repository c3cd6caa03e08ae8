"""Where the local stack keeps binaries, data, logs and pid files (all under one folder)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackPaths:
    """The layout of ``settings.stack.data_dir``.

    Attributes:
        root: The data folder itself (``<repo>/.omium`` by default).
    """

    root: Path

    @property
    def dist(self) -> Path:
        """Downloaded binaries: Kafka jars and the unpacked OpenSearch distribution."""
        return self.root / "dist"

    @property
    def logs(self) -> Path:
        """One ``<component>.log`` per component (its stdout and stderr)."""
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Pid files and the lock that serialises ``up``/``down``."""
        return self.root / "run"

    def home(self, component: str) -> Path:
        """The component's own data folder, e.g. ``.omium/kafka``."""
        return self.root / component

    def log(self, component: str) -> Path:
        """The component's log file."""
        return self.logs / f"{component}.log"

    def pid(self, component: str) -> Path:
        """The component's pid file."""
        return self.run / f"{component}.pid"

    def ensure(self) -> None:
        """Create the shared folders (root-owned; components create their own)."""
        for folder in (self.root, self.dist, self.logs, self.run):
            folder.mkdir(parents=True, exist_ok=True)
