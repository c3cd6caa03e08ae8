"""What every local-stack component provides: how to prepare, launch and probe it."""

from __future__ import annotations

import signal
import string
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from omium.infra.localstack._paths import StackPaths
from omium.infra.localstack._proc import RunAs
from omium.kernel.settings import OmiumSettings

INFRA_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Launch:
    """How to start a component's server process.

    Attributes:
        cmd: Program and arguments (no shell).
        cwd: Working folder (must be reachable by ``account``).
        env: Variables added to the inherited environment.
        account: Unprivileged account to run as, None for the current user.
    """

    cmd: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    account: RunAs | None = None


class Component(ABC):
    """One server of the local stack (Kafka, PostgreSQL, Redis, OpenSearch, the AWS emulator).

    Subclasses set ``name`` (used for ``<data_dir>/<name>``, ``logs/<name>.log`` and
    ``run/<name>.pid``) and ``marker`` (a substring of the server's command line that guards
    against pid reuse).
    """

    name: ClassVar[str]
    marker: ClassVar[str]
    stop_signal: ClassVar[int] = signal.SIGTERM
    needs_service_user: ClassVar[bool] = False

    def __init__(self, settings: OmiumSettings, paths: StackPaths, account: RunAs | None) -> None:
        self.settings = settings
        self.paths = paths
        self.account = account if self.needs_service_user else None

    @property
    def home(self) -> Path:
        """The component's data folder."""
        return self.paths.home(self.name)

    @property
    def log_path(self) -> Path:
        """Where the server's stdout and stderr go."""
        return self.paths.log(self.name)

    @property
    def pid_file(self) -> Path:
        """Pid file written by ``omium up``."""
        return self.paths.pid(self.name)

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients connect, for humans (``status`` table)."""

    @abstractmethod
    def ports(self) -> list[tuple[str, int]]:
        """Every ``(host, port)`` the server listens on; used to detect foreign occupants."""

    @abstractmethod
    def prepare(self) -> Launch:
        """Install and initialise what is missing (idempotent), then describe the launch."""

    @abstractmethod
    def probe(self, timeout_s: float) -> str | None:
        """Check readiness the way a client would.

        Returns:
            None when ready, else a short reason why not (never raises for "not ready").
        """

    def startup_probe(self, timeout_s: float) -> str | None:
        """Readiness right after start, before :meth:`after_start` (defaults to :meth:`probe`)."""
        return self.probe(timeout_s)

    def after_start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """One-off work once the server answers (e.g. creating roles); must be idempotent."""


def render(template: str, target: Path, **values: object) -> Path:
    """Fill a ``string.Template`` file from ``infra/`` and write it to ``target``.

    Args:
        template: Path relative to ``infra/``, e.g. ``kafka/server.properties``.
        target: Where to write the result.
        **values: The ``${name}`` values.

    Returns:
        ``target``.
    """
    text = string.Template((INFRA_DIR / template).read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.substitute({k: str(v) for k, v in values.items()}))
    return target


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host:port`` or a URL (``redis://h:p/0``, ``http://h:p``) into host and port."""
    if "://" not in address:
        address = f"//{address}"
    parts = urlsplit(address)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def error_text(exc: BaseException) -> str:
    """A one-line reason from an exception, for ``probe`` results."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip(": ")
