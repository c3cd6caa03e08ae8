"""Every error is an RFC 9457 problem, mapped by class through one table; bad input never 500s."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from omium.commands.errors import (
    ConflictError,
    EventStoreError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
    InvalidPolicyError,
    InvalidTransitionError,
    NotFoundError,
    VoteRejectedError,
)
from omium.gateway import (
    PROBLEM_MEDIA_TYPE,
    Command,
    ProblemSpec,
    Role,
    default_table,
    register_error,
    requires,
)
from omium.gateway._problems import problem_table
from omium.kernel.errors import DomainError, OmiumError

AGGREGATE = uuid.UUID("00000000-0000-0000-0000-000000000042")


class SecretLeakError(RuntimeError):
    """An unexpected fault whose message must never reach the client."""


class NotFoundErrorLookalike(Exception):
    """Same-named classes outside Omium's tree are not matched by name."""


NotFoundErrorLookalike.__name__ = "NotFoundError"

FAULTS: dict[str, Callable[[], BaseException]] = {
    "not_found": lambda: NotFoundError(AGGREGATE, aggregate_type="Execution"),
    "transition": lambda: InvalidTransitionError(
        command="complete_step", current_state="cancelled", aggregate_id=AGGREGATE
    ),
    "conflict": lambda: ConflictError(AGGREGATE, expected_version=3, actual_version=4),
    "invalid": lambda: InvalidCommandError(
        "step b is unknown", reason="unknown_step", field="steps"
    ),
    "policy": lambda: InvalidPolicyError("rego_parse_error: line 3"),
    "reused": lambda: IdempotencyKeyReusedError("k1"),
    "vote": lambda: VoteRejectedError(
        reason="duplicate_vote", round_id=AGGREGATE, participant="agent-a"
    ),
    "domain": lambda: DomainError("a rule nobody mapped yet"),
    "store": lambda: EventStoreError("connection to postgresql://omium:hunter2@db failed"),
    "unexpected": lambda: SecretLeakError("password=hunter2 at /srv/app.py:12"),
    "lookalike": lambda: NotFoundErrorLookalike("not ours"),
}

router = APIRouter(prefix="/faults", tags=["test"])


@router.post("/{name}", dependencies=[requires(Role.VIEWER, command="test.fault")])
async def raise_fault(name: str, ctx: Command) -> dict[str, str]:
    """Raise the named fault."""
    raise FAULTS[name]()


@pytest.fixture
def client(
    client_factory: Callable[..., TestClient], auth_factory: Callable[..., dict[str, str]]
) -> TestClient:
    client = client_factory(extra_routers=[router])
    client.headers.update(auth_factory("viewer"))
    return client


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:omium:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"].startswith("/")
    return body


@pytest.mark.parametrize(
    ("name", "status", "slug", "extensions"),
    [
        ("not_found", 404, "not-found", {"aggregate_type": "Execution"}),
        (
            "transition",
            409,
            "invalid-transition",
            {"current_state": "cancelled", "command": "complete_step"},
        ),
        ("conflict", 409, "conflict", {"expected_version": 3, "actual_version": 4}),
        ("invalid", 422, "invalid-command", {"reason": "unknown_step", "field": "steps"}),
        ("policy", 422, "invalid-policy", {"compiler_message": "rego_parse_error: line 3"}),
        ("reused", 422, "idempotency-key-reused", {"key": "k1"}),
        ("vote", 409, "vote-rejected", {"reason": "duplicate_vote", "participant": "agent-a"}),
        ("domain", 409, "domain-rule-violated", {}),
    ],
)
def test_write_side_errors_map_by_class(
    client: TestClient, name: str, status: int, slug: str, extensions: dict[str, Any]
) -> None:
    body = assert_problem(client.post(f"/api/v1/faults/{name}"), status, slug)
    for key, value in extensions.items():
        assert body[key] == value
    assert body["instance"] == f"/api/v1/faults/{name}"


def test_aggregate_ids_are_serialised(client: TestClient) -> None:
    body = assert_problem(client.post("/api/v1/faults/transition"), 409, "invalid-transition")
    assert body["aggregate_id"] == str(AGGREGATE)


@pytest.mark.parametrize("name", ["unexpected", "lookalike"])
def test_unknown_errors_are_500_without_internals(client: TestClient, name: str) -> None:
    with capture_logs() as logs:
        response = client.post(f"/api/v1/faults/{name}")
    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text and "app.py" not in response.text
    assert "not ours" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]
    # The cause is in the log, under the id the client was given.
    failures = [entry for entry in logs if entry["event"] == "request failed"]
    assert [entry["request_id"] for entry in failures] == [body["request_id"]]
    assert isinstance(failures[0]["exc_info"], Exception)


def test_store_faults_are_503_without_internals(client: TestClient) -> None:
    response = client.post("/api/v1/faults/store")
    assert_problem(response, 503, "store-unavailable")
    assert "hunter2" not in response.text and "postgresql://" not in response.text
    assert response.headers["retry-after"] == "1"


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/api/v1/api-keys", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 400, "malformed-request")
    assert body["reason"] == "json_invalid"


def test_body_that_is_not_utf8_is_4xx(client: TestClient) -> None:
    response = client.post(
        "/api/v1/api-keys",
        content=b"\xff\xfe\x00garbage",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


def test_validation_is_422_with_field_errors(
    client: TestClient, auth_factory: Callable[..., dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/api-keys", json={"name": "", "role": "emperor"}, headers=auth_factory("admin")
    )
    body = assert_problem(response, 422, "validation-error")
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert locations == {("body", "name"), ("body", "role")}
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])


def test_missing_credentials_is_401_with_challenge(
    client_factory: Callable[..., TestClient],
) -> None:
    response = client_factory().get("/api/v1/whoami")
    body = assert_problem(response, 401, "unauthenticated")
    assert body["reason"] == "missing"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_role_too_low_is_403(client: TestClient) -> None:
    body = assert_problem(client.get("/api/v1/api-keys"), 403, "forbidden")
    assert body["required_role"] == "admin" and body["actual_role"] == "viewer"


def test_unknown_path_is_404(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")


def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    response = client.delete("/api/v1/whoami")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


def test_declared_length_over_limit_is_413(
    client_factory: Callable[..., TestClient],
    gateway_settings_factory: Callable[..., Any],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory(settings=gateway_settings_factory(max_body_bytes=64))
    response = client.post(
        "/api/v1/api-keys",
        json={"name": "x" * 100, "role": "viewer"},
        headers=auth_factory("admin"),
    )
    body = assert_problem(response, 413, "request-too-large")
    assert body["max_bytes"] == 64


def test_streamed_body_over_limit_is_413(
    client_factory: Callable[..., TestClient],
    gateway_settings_factory: Callable[..., Any],
    auth_factory: Callable[..., dict[str, str]],
) -> None:
    client = client_factory(settings=gateway_settings_factory(max_body_bytes=64))

    def chunks() -> Any:  # no Content-Length: sent chunked
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 10
        yield b'", "role": "viewer"}'

    response = client.post(
        "/api/v1/api-keys",
        content=chunks(),
        headers={**auth_factory("admin"), "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "request-too-large")


def test_non_json_body_is_415(client: TestClient) -> None:
    response = client.post(
        "/api/v1/api-keys",
        content=b"name=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = assert_problem(response, 415, "unsupported-media-type")
    assert body["content_type"] == "application/x-www-form-urlencoded"


def test_json_suffix_media_types_are_accepted(
    client: TestClient, auth_factory: Callable[..., dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/api-keys",
        content=b'{"name": "w", "role": "viewer"}',
        headers={**auth_factory("admin"), "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("key", ["", " lead", "x" * 256, "tab\there", "caf\u00e9"])
def test_bad_idempotency_key_is_400(client: TestClient, key: str) -> None:
    response = client.post(
        "/api/v1/faults/not_found", headers=[(b"Idempotency-Key", key.encode("utf-8"))]
    )
    body = assert_problem(response, 400, "malformed-request")
    assert body["reason"] == "idempotency_key"


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"content": b"[]"},
        {"content": b"null"},
        {"content": b'{"name": 5, "role": null}'},
        {"content": b'"just a string"'},
        {"content": b'{"name": "a", "role": "viewer", "extra": {"deep": [1, 2, 3]}}'},
        {"content": b"\x00" * 10},
        {"content": b'{"name": "' + b"\xf0\x9f\x92\xa9" * 30 + b'", "role": "admin"}'},
    ],
)
def test_bad_bodies_never_500(
    client: TestClient,
    auth_factory: Callable[..., dict[str, str]],
    request_kwargs: dict[str, Any],
) -> None:
    response = client.post(
        "/api/v1/api-keys",
        **request_kwargs,
        headers={**auth_factory("admin"), "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500 or response.status_code == 201, response.text


def test_registration_api_maps_new_classes() -> None:
    class QuotaExceededError(OmiumError):
        def __init__(self) -> None:
            self.quota = 10
            super().__init__("quota of 10 runs exceeded")

    # The class is local to this test, so its entry in the shared table affects nothing else.
    register_error(
        QuotaExceededError,
        status=429,
        title="Quota exceeded",
        slug="quota-exceeded",
        extensions=("quota",),
    )
    spec = problem_table.lookup(QuotaExceededError())
    assert (spec.status, spec.slug, spec.extensions) == (429, "quota-exceeded", ("quota",))
    assert spec.expose_detail


def test_lookup_walks_the_class_hierarchy() -> None:
    class StepUnknownError(InvalidCommandError):
        pass

    table = default_table()
    assert table.status_of(StepUnknownError("x", reason="r")) == 422
    assert table.status_of(ConflictError(AGGREGATE)) == 409
    table.register(StepUnknownError, ProblemSpec(status=404, slug="nf", title="t"))
    assert table.status_of(StepUnknownError("x", reason="r")) == 404
    assert table.status_of(NotFoundErrorLookalike()) == 500
