"""Errors raised while starting, stopping or checking the local stack."""

from __future__ import annotations

from pathlib import Path

from omium.kernel.errors import OmiumError


class StackError(OmiumError):
    """Something about the local stack went wrong (base class of this package's errors)."""


class PrerequisiteError(StackError):
    """A program the stack needs (Java, Maven, PostgreSQL, Redis, moto) is not installed."""


class ComponentStartError(StackError):
    """One component did not start or did not become ready in time.

    Attributes:
        component: Name of the component, e.g. ``kafka``.
        log_path: The component's log file, where the cause usually is.
        log_tail: The last lines of that log at the time of failure.
    """

    def __init__(self, component: str, reason: str, log_path: Path, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        message = f"{component} failed to start: {reason} (log: {log_path})"
        if log_tail:
            message += f"\n--- last lines of {log_path} ---\n{log_tail}"
        super().__init__(message)


class StackStartError(StackError):
    """One or more components failed during ``omium up``; the others may be running.

    Attributes:
        failures: One error per failed component.
    """

    def __init__(self, failures: list[ComponentStartError]) -> None:
        self.failures = failures
        names = ", ".join(f.component for f in failures)
        details = "\n\n".join(str(f) for f in failures)
        super().__init__(f"failed to start: {names}\n\n{details}")


class StackNotRunningError(StackError):
    """The stack (or part of it) is not up; raised by readiness checks such as test fixtures.

    Attributes:
        components: Names of the components that are not ready.
    """

    def __init__(self, components: list[str], profile: str) -> None:
        self.components = components
        super().__init__(
            f"local stack is not ready: {', '.join(components)} not running or not answering. "
            f"Start it with `.venv/bin/omium up --profile {profile}` (or `make up`), "
            "then check `.venv/bin/omium status`."
        )
