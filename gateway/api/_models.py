"""Pydantic building blocks shared by the command routes: strict field types, bases, results.

Request models refuse unknown fields (a ``tenant_id`` in a body is a 422, never ignored) and use
strict scalar types: FastAPI validates bodies in Python mode, where lax pydantic would turn
``"3"`` into ``3`` or ``1`` into ``True``; a client that sends the wrong type should hear so.
UUIDs and datetimes stay lax, because JSON can only carry them as strings.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from commands import CommandResult

MAX_ID_LENGTH = 200
"""Longest step id, agent name, participant, checkpoint id or workflow/policy name."""

MAX_TEXT_LENGTH = 2_000
"""Longest free text (reasons, comments, prompts, subjects, descriptions)."""

MAX_ERROR_LENGTH = 10_000
"""Longest error message a worker may report (tracebacks get truncated by the caller)."""

MAX_VERSION = 2**31 - 1

# No surrounding whitespace and no line breaks: ids end up in logs, keys and URLs.
_ID_PATTERN = r"^\S(?:.*\S)?$"

Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH, pattern=_ID_PATTERN),
]
"""An id or name chosen by the client (step id, agent, participant, checkpoint id)."""

Text = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=MAX_TEXT_LENGTH)]
"""Free text for people (reason, comment, prompt)."""

ErrorText = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=MAX_ERROR_LENGTH)
]
"""An error message reported by a worker."""

Version = Annotated[int, Field(strict=True, ge=0, le=MAX_VERSION)]
"""An aggregate version (``0``: the aggregate must not exist yet)."""

DefinitionVersion = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)]
"""A workflow definition or policy version number (1, 2, ...)."""

JsonObject = dict[str, Any]
"""Any JSON object (inputs, outputs, definitions); the body size limit bounds it."""

Flag = StrictBool


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class VersionedRequest(RequestModel):
    """A command on an existing aggregate; ``expected_version`` guards against lost updates."""

    expected_version: Version | None = Field(
        default=None,
        description="The aggregate version the caller last saw (ETag); a different current "
        "version answers 409 conflict. Same as sending If-Match: \"<version>\".",
    )


class EmptyRequest(VersionedRequest):
    """A command with no arguments besides the optional ``expected_version``."""


VersionAfter = Annotated[
    int, Field(description="Aggregate version after the command; also the ETag (If-Match).")
]
"""The ``version`` member of every accepted command's answer."""

EventNames = Annotated[
    list[str], Field(description="Events the command recorded, in order (empty: no change).")
]
"""The ``events`` member of every accepted command's answer."""


def accepted_fields(result: CommandResult) -> dict[str, Any]:
    """``version`` and ``events`` of a result (stored values only, so replays match)."""
    return {"version": result.version, "events": list(result.events)}


def sorted_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """A copy with sorted keys: the idempotency store (jsonb) does not keep key order."""
    return dict(sorted(mapping.items()))


def location(*parts: object) -> str:
    """The ``Location`` of a resource under ``/api/v1``."""
    return "/api/v1/" + "/".join(str(part) for part in parts)

