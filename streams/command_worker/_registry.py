"""The commands the worker may apply: name -> command handler, with argument conversion.

A command names ``<application>.<handler>``; only the handlers listed here can be reached from
Kafka, so a message on ``omium.commands`` can never call anything else.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from omium.commands import CommandApplications, CommandResult
from omium.commands.errors import InvalidCommandError


@dataclass(frozen=True)
class CommandSpec:
    """How to call one command handler.

    Attributes:
        application: Attribute of :class:`omium.commands.CommandApplications` (``executions``, ...).
        handler: Method name on that application.
        datetimes: Arguments sent as ISO-8601 text that the handler takes as ``datetime``.
    """

    application: str
    handler: str
    datetimes: tuple[str, ...] = ()


COMMANDS: Mapping[str, CommandSpec] = {
    "consensus.decide_round": CommandSpec("consensus", "decide_round", ("now",)),
    "executions.halt_execution": CommandSpec("executions", "halt_execution"),
    "executions.fail_execution": CommandSpec("executions", "fail_execution"),
    "executions.cancel_execution": CommandSpec("executions", "cancel_execution"),
    "executions.schedule_step": CommandSpec("executions", "schedule_step"),
    "executions.roll_back_to_checkpoint": CommandSpec("executions", "roll_back_to_checkpoint"),
    "executions.request_human_approval": CommandSpec(
        "executions", "request_human_approval", ("deadline", "now")
    ),
    "executions.apply_approval_default": CommandSpec(
        "executions", "apply_approval_default", ("now",)
    ),
}
"""Every command the worker applies."""


class UnknownCommandError(InvalidCommandError):
    """A command name the worker does not know, or arguments its handler does not take."""

    def __init__(self, message: str) -> None:
        """Name the problem; the reason code is ``unknown_command``."""
        super().__init__(message, reason="unknown_command", field="command")


def apply_command(
    apps: CommandApplications,
    *,
    command: str,
    tenant_id: str,
    target_id: str,
    args_json: str,
    idempotency_key: str,
) -> CommandResult:
    """Apply one command with the same handlers the gateway calls.

    Raises:
        UnknownCommandError: The command is not in :data:`COMMANDS` or its arguments are wrong.
        DomainError: The handler refused it (not found, invalid transition, ...).
        PersistenceError: The event store is unavailable (the caller retries).
    """
    spec = COMMANDS.get(command)
    if spec is None:
        raise UnknownCommandError(f"unknown command {command!r}")
    handler: Callable[..., CommandResult] = getattr(getattr(apps, spec.application), spec.handler)
    args = _arguments(spec, args_json)
    try:
        target = UUID(target_id)
    except ValueError:
        raise UnknownCommandError(f"target {target_id!r} is not a UUID") from None
    try:
        inspect.signature(handler).bind(tenant_id, target, idempotency_key=idempotency_key, **args)
    except TypeError as exc:
        raise UnknownCommandError(f"bad arguments for {command}: {exc}") from None
    return handler(tenant_id, target, idempotency_key=idempotency_key, **args)


def _arguments(spec: CommandSpec, args_json: str) -> dict[str, Any]:
    try:
        args = json.loads(args_json)
    except ValueError as exc:
        raise UnknownCommandError(f"arguments are not JSON: {exc}") from None
    if not isinstance(args, dict):
        raise UnknownCommandError("arguments must be a JSON object")
    for name in spec.datetimes:
        if isinstance(args.get(name), str):
            args[name] = datetime.fromisoformat(args[name])
    return args
