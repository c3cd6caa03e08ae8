"""The OpenAPI document tells the truth about errors: every error is ``application/problem+json``.

FastAPI documents its own ``HTTPValidationError`` for 422; the gateway answers problem details,
so the document is rewritten once, when first served: each guarded route lists the problems it
can answer (401, 403, 429, 503; plus 400, 413, 415, 422 when it takes a body), all with the
``Problem`` schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from gateway._problems import PROBLEM_MEDIA_TYPE

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


class Problem(BaseModel):
    """RFC 9457 problem details; extension members (``errors``, ``retry_after`` ...) may follow."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI identifying the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="Explanation of this occurrence.")
    instance: str = Field(description="The request path this occurred on.")


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _document_operation(operation: dict[str, Any], *, guarded: bool) -> None:
    responses = operation.setdefault("responses", {})
    extra = dict(_GUARDED) if guarded else {}
    if "requestBody" in operation or "parameters" in operation:
        extra.update(_WITH_BODY)
    for status, description in extra.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"] = _problem_content()


def install_openapi(app: FastAPI, *, guarded_prefix: str) -> None:
    """Replace ``app.openapi`` with a generator that documents problem responses."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
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
