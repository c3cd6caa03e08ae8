"""Errors of workflow definitions: invalid files, and entry points that cannot be loaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from omium.kernel.errors import ConfigurationError


@dataclass(frozen=True)
class WorkflowIssue:
    """One problem found in a workflow definition.

    Attributes:
        path: Where the problem is, as a field path (``steps[2].needs[0]``); ``""`` is the root.
        code: A stable machine-readable name of the problem (``unknown_step``, ``cycle``,
            ``missing``, ``yaml_syntax`` ... or pydantic's error type).
        message: What is wrong, for people.
        line: 1-based line in the source file, when known.
        column: 1-based column in the source file, when known.
    """

    path: str
    code: str
    message: str
    line: int | None = None
    column: int | None = None

    def describe(self, source: str) -> str:
        """One line: ``file:line:column: path: message``."""
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path or '<root>'}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The issue as a JSON-compatible dict."""
        return asdict(self)


class WorkflowValidationError(ConfigurationError):
    """A workflow definition could not be parsed or is invalid.

    Attributes:
        source: The file (or other origin) the definition came from.
        errors: Every problem found, in source order where known.
    """

    def __init__(self, source: str, errors: Sequence[WorkflowIssue]) -> None:
        """Build the error; the message lists every issue, one per line."""
        self.source = source
        self.errors: list[WorkflowIssue] = list(errors)
        count = len(self.errors)
        lines = [issue.describe(source) for issue in self.errors]
        header = f"{source}: invalid workflow definition ({count} problem{'s' * (count != 1)})"
        super().__init__("\n  ".join([header, *lines]))

    def as_dicts(self) -> list[dict[str, Any]]:
        """Every issue as a JSON-compatible dict (for APIs and ``--json`` output)."""
        return [issue.as_dict() for issue in self.errors]


class EntrypointError(ConfigurationError):
    """A ``module:function`` reference could not be imported or is not callable.

    Attributes:
        entrypoint: The reference as written.
        reason: ``invalid_format``, ``import_failed``, ``missing_attribute`` or ``not_callable``.
    """

    def __init__(self, entrypoint: str, reason: str, message: str) -> None:
        """Build the error from the reference, a reason code and a message."""
        self.entrypoint = entrypoint
        self.reason = reason
        super().__init__(f"entry point {entrypoint!r}: {message}")
