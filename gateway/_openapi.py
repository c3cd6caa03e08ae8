"""The OpenAPI document tells the truth about errors: every error is ``application/problem+json``.

FastAPI documents its own ``HTTPValidationError`` for 422; the gateway answers problem details,
so the document is rewritten once, when first served: each guarded route lists the problems it
can answer (401, 403, 429, 503; plus 400, 413, 415, 422 when it takes a body or parameters; 404
when its path names a resource), all with the ``Problem`` schema. Problems only some routes answer
(409 refused in the resource's state, 410 pruned, 404 for an id in the body) are declared on the
route with ``responses=problems(...)``. A creating route names the operations that take the
new resource's id with OpenAPI ``links`` (``created(...)``), so clients and stateful fuzzers can
follow create -> read.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from omium.gateway._policy import API_PREFIX
from omium.gateway._problems import PROBLEM_MEDIA_TYPE

_GUARDED = {
    "401": "No or invalid credentials.",
    "403": "Role too low for this route.",
    "429": "Rate limit exceeded; see Retry-After.",
    "503": "Rate limiter or a backing store unavailable.",
}
_WITH_BODY = {
    "400": "Malformed request (body is not JSON, bad header).",
    "413": "Request body too large.",
    "415": "Request body is not JSON.",
    "422": "Request does not match the schema; see errors.",
}
_IN_PATH = {"404": "No such resource in the caller's tenant."}

_ROUTE_PROBLEMS = {
    404: "A resource the request names does not exist in the caller's tenant.",
    409: "Refused in the resource's current state: it already exists, the command is not "
    "allowed in this state, or it changed since the version sent (If-Match, expected_version).",
    410: "The checkpoint's state was pruned by retention.",
    502: "The model provider failed, or its answer was not a diagnosis.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for problems that only some routes answer (404, 409, 410).

    Raises:
        KeyError: A status without a description here (add it to ``_ROUTE_PROBLEMS``).
    """
    return {status: {"description": _ROUTE_PROBLEMS[status]} for status in statuses}


class Problem(BaseModel):
    """RFC 9457 problem details; extension members (``errors``, ``retry_after`` ...) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI identifying the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="Explanation of this occurrence.")
    instance: str = Field(description="The request path this occurred on.")


def link(
    path: str, method: str = "get", *, body: dict[str, Any] | None = None, **parameters: str
) -> dict[str, Any]:
    """An OpenAPI link to the operation ``method`` at ``/api/v1`` + ``path``.

    Args:
        path: The target's path template below the API prefix (``"/workflows/{workflow_id}"``).
        method: The target's HTTP method.
        body: The target's request body, its values constants or runtime expressions.
        **parameters: Target parameter -> runtime expression (``"$response.body#/workflow_id"``).
    """
    pointer = (API_PREFIX + path).replace("~", "~0").replace("/", "~1")
    target: dict[str, Any] = {"operationRef": f"#/paths/{pointer}/{method}"}
    if parameters:
        target["parameters"] = parameters
    if body is not None:
        target["requestBody"] = body
    return target


_CREATED_HEADERS = {
    "Location": {
        "description": "The new resource's path.",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{API_PREFIX}/"},
    },
    "ETag": {
        "description": 'The new aggregate\'s version as an entity tag ("1"), for If-Match.',
        "required": True,
        "schema": {"type": "string", "pattern": r'^"\d+"$'},
    },
}


def created(description: str, **links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """A creating command route's ``responses=`` entry for 201: its description, ``Location``
    and ``ETag`` headers (set by ``CommandCall.create``) and ``links``."""
    return {201: {"description": description, "headers": _CREATED_HEADERS, "links": links}}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _not_nullable(parameter: dict[str, Any]) -> None:
    # ``x: str | None = None`` is an optional parameter, documented by FastAPI as nullable
    # (``anyOf: [string, null]``); a header or query value is never null, and a client that
    # believes it may be sends the text "null".
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return
    kept = [branch for branch in branches if branch != {"type": "null"}]
    if len(kept) == 1 and len(kept) < len(branches):
        outer = {key: value for key, value in schema.items() if key != "anyOf"}
        parameter["schema"] = {**outer, **kept[0]}


def _document_operation(operation: dict[str, Any], *, guarded: bool) -> None:
    for parameter in operation.get("parameters", []):
        if not parameter.get("required", False):
            _not_nullable(parameter)
    responses = operation.setdefault("responses", {})
    extra = dict(_GUARDED) if guarded else {}
    if "requestBody" in operation or "parameters" in operation:
        extra.update(_WITH_BODY)
    if guarded and any(param.get("in") == "path" for param in operation.get("parameters", [])):
        extra.update(_IN_PATH)
    for status, description in extra.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = _problem_content()
    if "429" in responses:
        responses["429"].setdefault("headers", _RETRY_AFTER)


def install_openapi(app: FastAPI, *, guarded_prefix: str) -> None:
    """Replace ``app.openapi`` with a generator that documents problem responses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema()
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                _document_operation(operation, guarded=path.startswith(guarded_prefix))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
