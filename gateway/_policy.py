"""Declarative authorization: each route declares its minimum role with ``requires(...)``.

``requires`` returns a FastAPI dependency that authenticates, rate-limits and checks the role,
and carries its ``AccessRule`` on the dependency callable, so ``route_rules(app)`` can read the
whole policy back from the route table (for the docs matrix and the completeness test) and
``create_app`` can refuse to start when an ``/api/v1`` route declares none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from omium.gateway._audit import AUDIT_COMMAND, AUDIT_TARGET, IDEMPOTENCY_KEY, REQUEST_ID
from omium.gateway._auth import authenticate
from omium.gateway._principal import Principal, Role
from omium.gateway.errors import InvalidIdempotencyKeyError, PermissionDeniedError

API_PREFIX = "/api/v1"
RULE_ATTRIBUTE = "__omium_access_rule__"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_RATE_LIMITED = "rate_limited"

# Printable ASCII, 1..255 characters, no leading or trailing space.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")


@dataclass(frozen=True)
class AccessRule:
    """The declared access rule of a route.

    Attributes:
        min_role: The lowest role allowed.
        command: The audit name of the command (write routes); ``None`` means the route name.
    """

    min_role: Role
    command: str | None = None


def requires(role: Role, *, command: str | None = None) -> Any:
    """A dependency that admits only callers holding ``role`` or a higher one.

    Use it as a route dependency (``dependencies=[requires(Role.OPERATOR)]``) or in a parameter
    annotation (``principal: Annotated[Principal, requires(Role.VIEWER)]``), which also hands
    over the principal. On a write route (not GET/HEAD/OPTIONS) the request is recorded in the
    audit trail as command ``command`` (default: the route's name), accepted or refused.

    Args:
        role: The minimum role.
        command: The audit name, e.g. ``"executions.start"``.

    Returns:
        A ``Depends`` marker resolving to the caller's ``Principal``.
    """
    rule = AccessRule(min_role=role, command=command)

    async def check(
        request: Request, response: Response, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if request.method not in _SAFE_METHODS:
            _mark_command(request, rule)
        await _admit(request, response, principal)
        if not principal.has(rule.min_role):
            actual = principal.role.value if principal.role else None
            raise PermissionDeniedError(required_role=rule.min_role.value, actual_role=actual)
        return principal

    setattr(check, RULE_ATTRIBUTE, rule)
    check.__name__ = f"requires_{role.value}"
    return Depends(check)


def _mark_command(request: Request, rule: AccessRule) -> None:
    route = request.scope.get("route")
    name = rule.command or getattr(route, "name", None) or request.url.path
    # With rules on both router and route, the more specific (route) name is kept.
    if rule.command is not None or getattr(request.state, AUDIT_COMMAND, None) is None:
        setattr(request.state, AUDIT_COMMAND, name)


async def _admit(request: Request, response: Response, principal: Principal) -> None:
    # A route may carry several rules (router + route); the request pays for one token.
    if getattr(request.state, _RATE_LIMITED, False):
        return
    setattr(request.state, _RATE_LIMITED, True)
    decision = await request.app.state.services.rate_limiter.acquire(principal)
    if decision.limit:
        response.headers["RateLimit-Limit"] = str(decision.limit)
        response.headers["RateLimit-Remaining"] = str(decision.remaining)
        response.headers["RateLimit-Reset"] = str(decision.reset_after)


async def current_tenant(principal: Annotated[Principal, Depends(authenticate)]) -> str:
    """The caller's tenant: the only tenant a handler may read or write."""
    return principal.tenant_id


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Printable ASCII, 1-255 characters; a repeated key replays the first "
            "result.",
            # Documented, not checked by FastAPI: the handler answers 400 (not 422) when broken.
            json_schema_extra={"pattern": f"^{_IDEMPOTENCY_KEY.pattern}$"},
        ),
    ] = None,
) -> str | None:
    """The validated ``Idempotency-Key`` header, or ``None`` when it was not sent.

    Raises:
        InvalidIdempotencyKeyError: Empty, longer than 255 characters or not printable ASCII.
    """
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidIdempotencyKeyError(
            "Idempotency-Key must be 1-255 printable ASCII characters without surrounding spaces"
        )
    setattr(request.state, IDEMPOTENCY_KEY, key)
    return key


@dataclass(frozen=True)
class CommandContext:
    """What a command route hands its handler: who, which tenant, which idempotency key.

    Attributes:
        principal: The authenticated caller.
        idempotency_key: The validated ``Idempotency-Key``, or ``None``.
        request_id: The request's id (also the audit entry's), for correlation.
    """

    principal: Principal
    idempotency_key: str | None
    request_id: str | None
    _request: Request

    @property
    def tenant_id(self) -> str:
        """The caller's tenant."""
        return self.principal.tenant_id

    def set_target(self, target: object) -> None:
        """Name the resource the command addressed (e.g. the aggregate id) in the audit entry."""
        setattr(self._request.state, AUDIT_TARGET, str(target))


async def command_context(
    request: Request,
    principal: Annotated[Principal, Depends(authenticate)],
    key: Annotated[str | None, Depends(idempotency_key)],
) -> CommandContext:
    """Bundle the principal, tenant and idempotency key of a command request."""
    return CommandContext(
        principal=principal,
        idempotency_key=key,
        request_id=getattr(request.state, REQUEST_ID, None),
        _request=request,
    )


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
TenantId = Annotated[str, Depends(current_tenant)]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]
Command = Annotated[CommandContext, Depends(command_context)]


def _rules_in(dependant: Dependant | None) -> Iterator[AccessRule]:
    if dependant is None:
        return
    rule = getattr(dependant.call, RULE_ATTRIBUTE, None)
    if rule is not None:
        yield rule
    for sub in dependant.dependencies:
        yield from _rules_in(sub)


def rule_of(route: Any) -> AccessRule | None:
    """The effective rule of an API route (or route context): its strictest rule, or ``None``."""
    rules = list(_rules_in(getattr(route, "dependant", None)))
    if not rules:
        return None
    strictest = max(rules, key=lambda rule: rule.min_role.rank)
    command = next((rule.command for rule in reversed(rules) if rule.command), None)
    return AccessRule(min_role=strictest.min_role, command=command)


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of the app with its full path, routers included (flattened).

    FastAPI keeps included routers as lazy branches in ``app.routes``; ``iter_route_contexts``
    resolves them into routes carrying the final path and the merged dependencies.
    """
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def route_rules(app: FastAPI) -> dict[tuple[str, str], AccessRule | None]:
    """``(method, path) -> rule`` for every API route of the app (``None``: no rule declared)."""
    table: dict[tuple[str, str], AccessRule | None] = {}
    for route in api_routes(app):
        rule = rule_of(route)
        for method in sorted(route.methods or ()):
            table[(method, route.path)] = rule
    return table


def unguarded_routes(app: FastAPI, *, prefix: str = API_PREFIX) -> list[tuple[str, str]]:
    """The ``(method, path)`` pairs under ``prefix`` that declare no rule."""
    return sorted(
        key for key, rule in route_rules(app).items() if rule is None and key[1].startswith(prefix)
    )


def access_matrix(app: FastAPI, *, prefix: str = API_PREFIX) -> str:
    """The route table as Markdown: method, path, minimum role, audit name (for docs/api.md)."""
    rows = []
    for route in api_routes(app):
        rule = rule_of(route)
        if not route.path.startswith(prefix) or rule is None:
            continue
        for method in sorted(route.methods or ()):
            audited = "—" if method in _SAFE_METHODS else f"`{rule.command or route.name}`"
            rows.append((route.path, method, rule.min_role.value, audited))
    lines = ["| method | path | minimum role | audited as |", "|---|---|---|---|"]
    lines += [
        f"| {method} | `{path}` | {role} | {audited} |"
        for path, method, role, audited in sorted(rows)
    ]
    return "\n".join(lines) + "\n"
