"""What every command route does: find the applications, run the handler off the event loop, and
answer with the aggregate's version as ``ETag`` (and ``Location`` for creations).

Route functions stay one call long: they take a ``Create``, ``Update`` or ``Read`` dependency and
pass the handler and its arguments. The caller's tenant and ``Idempotency-Key`` are added here,
never read from the body, and ``If-Match`` is merged with the body's ``expected_version``.

Responses hold only values stored with the command's result (id, version, events, generated
data), so a replayed ``Idempotency-Key`` answers the same status and the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from omium.commands import CommandApplications, CommandResult
from omium.gateway._policy import CommandContext, command_context, current_tenant
from omium.gateway.api._models import VersionedRequest
from omium.gateway.errors import MalformedRequestError
from omium.kernel.errors import ConfigurationError

T = TypeVar("T")

# One strong entity tag: the gateway's ETags are aggregate versions ("3").
_ETAG = re.compile(r'"(\d{1,10})"')
# What ``if_match`` takes, surrounding spaces included: one strong tag, or ``*``.
_IF_MATCH_PATTERN = r'^\s*(?:"\d{1,10}"|\*)\s*$'


async def applications(request: Request) -> CommandApplications:
    """The app's command applications (async: a sync dependency would cost a thread hop).

    Raises:
        ConfigurationError: The app was built with services that have none (a wiring bug).
    """
    commands: CommandApplications | None = request.app.state.services.commands
    if commands is None:
        raise ConfigurationError("the gateway's services have no command applications")
    return commands


async def if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=64,
            description='The version the command was decided on, as an entity tag ("3"); '
            "a different current version answers 409 conflict.",
            # Documented, not checked by FastAPI: the handler answers 400 (not 422) when broken.
            json_schema_extra={"pattern": _IF_MATCH_PATTERN},
        ),
    ] = None,
) -> int | None:
    """The version named by ``If-Match``; ``None`` when absent or ``*``.

    Raises:
        MalformedRequestError: Not one strong entity tag (weak tags and lists are refused:
            a command needs one exact version).
    """
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.fullmatch(value.strip())
    if match is None:
        raise MalformedRequestError(
            'If-Match must be one strong entity tag such as "3", or *', reason="if_match"
        )
    return int(match.group(1))


def etag(version: int) -> str:
    """The entity tag of an aggregate version."""
    return f'"{version}"'


def expected_version(body: VersionedRequest | None, header: int | None) -> int | None:
    """The version a command must find: from the body or ``If-Match``, which must agree.

    Raises:
        MalformedRequestError: Both are given and differ.
    """
    from_body = body.expected_version if body is not None else None
    if from_body is not None and header is not None and from_body != header:
        raise MalformedRequestError(
            "If-Match and expected_version name different versions", reason="if_match"
        )
    return from_body if from_body is not None else header


@dataclass(frozen=True)
class CommandCall:
    """A command request: who sends it, the applications, and the response to decorate."""

    context: CommandContext
    apps: CommandApplications
    response: Response
    if_match: int | None = None

    async def create(
        self, handler: Callable[..., CommandResult], where: Callable[[UUID], str], **arguments: Any
    ) -> CommandResult:
        """Run a creating handler; sets the audit target, ``ETag`` and ``Location``.

        Args:
            handler: An application's handler taking ``tenant_id`` first.
            where: The new resource's path, from its id.
            **arguments: The handler's keyword arguments.
        """
        result = await self._run(handler, **arguments)
        self.context.set_target(result.aggregate_id)
        self.response.headers["Location"] = where(result.aggregate_id)
        return result

    async def update(
        self,
        handler: Callable[..., CommandResult],
        aggregate_id: UUID,
        body: VersionedRequest | None,
        **arguments: Any,
    ) -> CommandResult:
        """Run a handler on an existing aggregate, with its expected version if one was sent."""
        self.context.set_target(aggregate_id)
        version = expected_version(body, self.if_match)
        return await self._run(handler, aggregate_id, expected_version=version, **arguments)

    async def _run(
        self, handler: Callable[..., CommandResult], *args: Any, **kwargs: Any
    ) -> CommandResult:
        # Handlers block on PostgreSQL: run them in the thread pool, never on the loop.
        result = await run_in_threadpool(
            handler,
            self.context.tenant_id,
            *args,
            idempotency_key=self.context.idempotency_key,
            **kwargs,
        )
        self.response.headers["ETag"] = etag(result.version)
        return result


@dataclass(frozen=True)
class ReadCall:
    """A query request: the caller's tenant, the applications, and the response."""

    tenant_id: str
    apps: CommandApplications
    response: Response

    async def run(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a query for the caller's tenant off the loop; ``ETag`` from the view's version."""
        view = await run_in_threadpool(query, self.tenant_id, *args, **kwargs)
        version = getattr(view, "version", None)
        if isinstance(version, int):
            self.response.headers["ETag"] = etag(version)
        return view


async def create_call(
    context: Annotated[CommandContext, Depends(command_context)],
    apps: Annotated[CommandApplications, Depends(applications)],
    response: Response,
) -> CommandCall:
    """The ``Create`` dependency."""
    return CommandCall(context, apps, response)


async def update_call(
    context: Annotated[CommandContext, Depends(command_context)],
    apps: Annotated[CommandApplications, Depends(applications)],
    response: Response,
    version: Annotated[int | None, Depends(if_match)],
) -> CommandCall:
    """The ``Update`` dependency (also reads ``If-Match``)."""
    return CommandCall(context, apps, response, version)


async def read_call(
    tenant_id: Annotated[str, Depends(current_tenant)],
    apps: Annotated[CommandApplications, Depends(applications)],
    response: Response,
) -> ReadCall:
    """The ``Read`` dependency."""
    return ReadCall(tenant_id, apps, response)


Create = Annotated[CommandCall, Depends(create_call)]
Update = Annotated[CommandCall, Depends(update_call)]
Read = Annotated[ReadCall, Depends(read_call)]
