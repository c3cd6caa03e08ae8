"""Pydantic building blocks shared by the command routes: strict field types, bases, results.

Request models refuse unknown fields (a ``tenant_id`` in a body is a 422, never ignored) and use
strict scalar types: FastAPI validates bodies in Python mode, where lax pydantic would turn
``"3"`` into ``3`` or ``1`` into ``True``; a client that sends the wrong type should hear so.
UUIDs and datetimes stay lax, because JSON can only carry them as strings.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from omium.commands import CommandResult

MAX_ID_LENGTH = 200
"""Longest step id, agent name, participant, checkpoint id or workflow/policy name."""

MAX_TEXT_LENGTH = 2_000
"""Longest free text (reasons, comments, prompts, subjects, descriptions)."""

MAX_ERROR_LENGTH = 10_000
"""Longest error message a worker may report (tracebacks get truncated by the caller)."""

MAX_VERSION = 2**31 - 1

# No surrounding whitespace and no control characters: ids end up in logs, URLs, Kafka keys
# and PostgreSQL text/jsonb columns (which refuse NUL).
ID_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
# Free text may span lines, but NUL has no place in it (PostgreSQL text refuses it).
_TEXT_PATTERN = r"^[^\x00]*$"

Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN),
]
"""An id or name chosen by the client (step id, agent, participant, checkpoint id)."""

Text = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_TEXT_LENGTH, pattern=_TEXT_PATTERN),
]
"""Free text for people (reason, comment, prompt)."""

ErrorText = Annotated[
    str,
    StringConstraints(
        strict=True, min_length=1, max_length=MAX_ERROR_LENGTH, pattern=_TEXT_PATTERN
    ),
]
"""An error message reported by a worker."""

Version = Annotated[int, Field(strict=True, ge=0, le=MAX_VERSION)]
"""An aggregate version (``0``: the aggregate must not exist yet)."""

DefinitionVersion = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION)]
"""A workflow definition or policy version number (1, 2, ...)."""


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    # ``json.loads`` accepts NaN/Infinity and lone surrogates ("\ud800"), which the event
    # store cannot encode as UTF-8 JSON: refuse them here as a 422 instead of failing at save.
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:  # UnicodeEncodeError is a ValueError too
        raise ValueError(
            "must be plain JSON: no NaN or Infinity, no unpaired surrogates in strings"
        ) from exc
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
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
        'version answers 409 conflict. Same as sending If-Match: "<version>".',
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
