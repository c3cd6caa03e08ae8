"""One working request per ``/api/v1`` route, and the role each route must require.

Every route of the app has a *scenario* here: a function that sets the scene in a caller's tenant
(as admin) and returns the request that must then succeed, with its expected status. The tests
walk this catalogue for the happy paths, the role matrix, tenant isolation, idempotent replays
and malformed bodies; a test fails when a route of the app has no scenario, so a new route
cannot ship untested.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omium.gateway import Role
from tests.gateway.api.fixtures import API, POLICY_MODULE, Caller, Reply, blob_fields, future


@dataclass(frozen=True)
class Call:
    """A request that must succeed once its scenario is set.

    Attributes:
        method: HTTP method.
        path: Concrete path under ``/api/v1`` (query string included).
        body: JSON body, or ``None`` for none.
        status: The success status.
        area: The event table a write lands in (``None`` for reads and API keys).
        aggregate_id: The existing aggregate addressed, if any.
        other_tenant: What another tenant gets for the same request (``None``: not applicable,
            the request creates something in the caller's own tenant).
    """

    method: str
    path: str
    body: Any = None
    status: int = 200
    area: str | None = None
    aggregate_id: str | None = None
    other_tenant: int | None = 404


Scenario = Callable[[Caller], Call]


@dataclass(frozen=True)
class Route:
    """A route of the app, the role it must require, and its scenario."""

    method: str
    template: str
    role: Role
    scenario: Scenario

    @property
    def key(self) -> tuple[str, str]:
        """``(method, "/api/v1" + template)`` as in ``route_rules``."""
        return self.method, "/api/v1" + self.template

    @property
    def is_command(self) -> bool:
        """Whether this is a write of the command API (idempotent, audited, versioned)."""
        area = self.template.split("/")[1]
        return self.method == "POST" and area in {
            "workflows",
            "executions",
            "consensus",
            "policies",
        }

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


ROUTES: list[Route] = []


def route(method: str, template: str, role: Role) -> Callable[[Scenario], Scenario]:
    """Register the scenario of a route."""

    def register(scenario: Scenario) -> Scenario:
        ROUTES.append(Route(method, template, role, scenario))
        return scenario

    return register


def _definition(agent: str = "agents.plan") -> dict[str, Any]:
    return {
        "steps": [
            {"id": "plan", "agent": agent},
            {"id": "act", "agent": "agents.act", "needs": ["plan"]},
        ]
    }


# --- workflows --------------------------------------------------------------------------------


@route("POST", "/workflows", Role.DEVELOPER)
def _register(c: Caller) -> Call:
    body = {"name": f"wf-{uuid.uuid4().hex[:8]}", "definition": _definition()}
    return Call("POST", "/workflows", body, 201, "workflows", other_tenant=None)


@route("POST", "/workflows/{workflow_id}/versions", Role.DEVELOPER)
def _publish_version(c: Caller) -> Call:
    wid = c.workflow()
    return Call(
        "POST",
        f"/workflows/{wid}/versions",
        {"definition": _definition("agents.v2")},
        201,
        "workflows",
        wid,
    )


@route("GET", "/workflows", Role.VIEWER)
def _find_workflow(c: Caller) -> Call:
    name = f"wf-{uuid.uuid4().hex[:8]}"
    c.workflow(name)
    # Another tenant finds nothing under this name: an empty list, never theirs.
    return Call("GET", f"/workflows?name={name}", other_tenant=200)


@route("GET", "/workflows/{workflow_id}", Role.VIEWER)
def _get_workflow(c: Caller) -> Call:
    wid = c.workflow()
    return Call("GET", f"/workflows/{wid}", aggregate_id=wid)


# --- executions -------------------------------------------------------------------------------


@route("POST", "/executions", Role.DEVELOPER)
def _start(c: Caller) -> Call:
    wid = c.workflow()
    body = {"workflow_id": wid, "workflow_version": 1, "input": {"q": "why?"}}
    # Another tenant's workflow id is "not found", like any other foreign id.
    return Call("POST", "/executions", body, 201, "executions")


@route("GET", "/executions/{execution_id}", Role.VIEWER)
def _get_execution(c: Caller) -> Call:
    eid = c.execution()
    return Call("GET", f"/executions/{eid}", aggregate_id=eid)


@route("POST", "/executions/{execution_id}/steps", Role.DEVELOPER)
def _schedule(c: Caller) -> Call:
    eid = c.execution()
    return Call(
        "POST",
        f"/executions/{eid}/steps",
        {"step_id": "plan", "agent": "agents.plan"},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/steps/{step_id}/start", Role.DEVELOPER)
def _start_step(c: Caller) -> Call:
    eid = c.execution()
    c.ok(c.post(f"/executions/{eid}/steps", {"step_id": "plan"}))
    return Call("POST", f"/executions/{eid}/steps/plan/start", area="executions", aggregate_id=eid)


@route("POST", "/executions/{execution_id}/steps/{step_id}/complete", Role.DEVELOPER)
def _complete_step(c: Caller) -> Call:
    eid = c.running()
    return Call(
        "POST",
        f"/executions/{eid}/steps/plan/complete",
        {"output": {"plan": [1, 2]}},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/steps/{step_id}/fail", Role.DEVELOPER)
def _fail_step(c: Caller) -> Call:
    eid = c.running()
    body = {"error": "tool timed out", "error_type": "TimeoutError", "retryable": True}
    return Call(
        "POST", f"/executions/{eid}/steps/plan/fail", body, area="executions", aggregate_id=eid
    )


@route("POST", "/executions/{execution_id}/checkpoints", Role.DEVELOPER)
def _checkpoint(c: Caller) -> Call:
    eid = c.running()
    body = {"step_id": "plan", "position": "before", **blob_fields(b'{"messages": []}')}
    return Call("POST", f"/executions/{eid}/checkpoints", body, 201, "executions", eid)


def _with_checkpoint(c: Caller) -> tuple[str, str]:
    eid = c.running()
    body = {"step_id": "plan", "position": "before", **blob_fields(b"state-1")}
    cid = c.ok(c.post(f"/executions/{eid}/checkpoints", body), 201)["checkpoint_id"]
    return eid, cid


@route("GET", "/executions/{execution_id}/checkpoints/{checkpoint_id}", Role.VIEWER)
def _get_checkpoint(c: Caller) -> Call:
    eid, cid = _with_checkpoint(c)
    return Call("GET", f"/executions/{eid}/checkpoints/{cid}", aggregate_id=eid)


@route("POST", "/executions/{execution_id}/rollback", Role.OPERATOR)
def _roll_back(c: Caller) -> Call:
    eid, cid = _with_checkpoint(c)
    c.ok(c.post(f"/executions/{eid}/steps/plan/complete", {"output": {"x": 1}}))
    return Call(
        "POST",
        f"/executions/{eid}/rollback",
        {"checkpoint_id": cid, "reason": "bad"},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/fork", Role.OPERATOR)
def _fork(c: Caller) -> Call:
    # The new run is the aggregate created; the forked run (in the path) is only read.
    eid, cid = _with_checkpoint(c)
    return Call("POST", f"/executions/{eid}/fork", {"checkpoint_id": cid}, 201, "executions")


def _scheduled(c: Caller, step: str = "act") -> str:
    eid = c.execution()
    c.ok(c.post(f"/executions/{eid}/steps", {"step_id": step}))
    return eid


@route("POST", "/executions/{execution_id}/steps/{step_id}/approval", Role.DEVELOPER)
def _request_approval(c: Caller) -> Call:
    eid = _scheduled(c)
    body = {"deadline": future(), "default_action": "reject", "prompt": "Send the email?"}
    return Call(
        "POST", f"/executions/{eid}/steps/act/approval", body, area="executions", aggregate_id=eid
    )


def _awaiting(c: Caller, deadline: str | None = None) -> str:
    eid = _scheduled(c)
    body = {"deadline": deadline or future(), "default_action": "approve"}
    c.ok(c.post(f"/executions/{eid}/steps/act/approval", body))
    return eid


@route("POST", "/executions/{execution_id}/steps/{step_id}/approval/grant", Role.OPERATOR)
def _grant(c: Caller) -> Call:
    eid = _awaiting(c)
    return Call(
        "POST",
        f"/executions/{eid}/steps/act/approval/grant",
        {"comment": "go"},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/steps/{step_id}/approval/reject", Role.OPERATOR)
def _reject(c: Caller) -> Call:
    eid = _awaiting(c)
    return Call(
        "POST",
        f"/executions/{eid}/steps/act/approval/reject",
        {"comment": "no"},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/steps/{step_id}/approval/apply-default", Role.OPERATOR)
def _apply_default(c: Caller) -> Call:
    # The server's clock decides when the deadline has passed: a short one, then wait it out.
    eid = _awaiting(c, deadline=future(0.4))
    time.sleep(0.5)
    return Call(
        "POST",
        f"/executions/{eid}/steps/act/approval/apply-default",
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/complete", Role.DEVELOPER)
def _complete(c: Caller) -> Call:
    eid = c.running()
    c.ok(c.post(f"/executions/{eid}/steps/plan/complete", {"output": {}}))
    return Call(
        "POST",
        f"/executions/{eid}/complete",
        {"output": {"answer": 42}},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/fail", Role.DEVELOPER)
def _fail(c: Caller) -> Call:
    eid = c.running()
    return Call(
        "POST",
        f"/executions/{eid}/fail",
        {"error": "gave up", "error_type": "Budget"},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/halt", Role.OPERATOR)
def _halt(c: Caller) -> Call:
    eid = c.running()
    return Call(
        "POST",
        f"/executions/{eid}/halt",
        {"reason": "budget", "policy_id": "budget"},
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/cancel", Role.DEVELOPER)
def _cancel(c: Caller) -> Call:
    eid = c.execution()
    return Call(
        "POST",
        f"/executions/{eid}/cancel",
        {"reason": "not needed"},
        area="executions",
        aggregate_id=eid,
    )


# --- consensus --------------------------------------------------------------------------------


@route("POST", "/consensus/rounds", Role.DEVELOPER)
def _open_round(c: Caller) -> Call:
    body = {
        "participants": ["a", "b", "c"],
        "rule": "weighted",
        "deadline": future(),
        "weights": {"a": 2, "b": 1, "c": 1.5},
        "threshold": 0.5,
        "subject": "which plan?",
    }
    return Call("POST", "/consensus/rounds", body, 201, "consensus", other_tenant=None)


@route("GET", "/consensus/rounds/{round_id}", Role.VIEWER)
def _get_round(c: Caller) -> Call:
    rid = c.round()
    return Call("GET", f"/consensus/rounds/{rid}", aggregate_id=rid)


@route("POST", "/consensus/rounds/{round_id}/votes", Role.DEVELOPER)
def _vote(c: Caller) -> Call:
    rid = c.round()
    return Call(
        "POST",
        f"/consensus/rounds/{rid}/votes",
        {"participant": "a", "choice": "yes"},
        area="consensus",
        aggregate_id=rid,
    )


@route("POST", "/consensus/rounds/{round_id}/decide", Role.DEVELOPER)
def _decide(c: Caller) -> Call:
    rid = c.round()
    for participant in ("a", "b"):
        c.ok(
            c.post(f"/consensus/rounds/{rid}/votes", {"participant": participant, "choice": "yes"})
        )
    return Call("POST", f"/consensus/rounds/{rid}/decide", area="consensus", aggregate_id=rid)


# --- policies ---------------------------------------------------------------------------------


@route("POST", "/policies", Role.OPERATOR)
def _publish_policy(c: Caller) -> Call:
    body = {
        "name": f"p-{uuid.uuid4().hex[:8]}",
        "module": POLICY_MODULE,
        "mode": "warn",
        "description": "first",
    }
    return Call("POST", "/policies", body, 201, "policies", other_tenant=None)


@route("GET", "/policies", Role.VIEWER)
def _find_policy(c: Caller) -> Call:
    name = f"p-{uuid.uuid4().hex[:8]}"
    c.policy(name)
    return Call("GET", f"/policies?name={name}", other_tenant=200)


@route("GET", "/policies/{policy_id}", Role.VIEWER)
def _get_policy(c: Caller) -> Call:
    pid = c.policy()
    return Call("GET", f"/policies/{pid}", aggregate_id=pid)


# --- history integrity --------------------------------------------------------------------


@route("GET", "/executions/{execution_id}/verify", Role.VIEWER)
def _verify_execution(c: Caller) -> Call:
    eid = c.execution()
    return Call("GET", f"/executions/{eid}/verify?kafka=false", aggregate_id=eid)


@route("GET", "/verify", Role.OPERATOR)
def _verify_tenant(c: Caller) -> Call:
    c.execution()
    return Call("GET", "/verify?kafka=false", other_tenant=None)


# --- recovery suggestions -----------------------------------------------------------------

_DIAGNOSIS = {
    "probable_cause": "The act agent's tool rejects long prompts.",
    "evidence": [{"source": "error", "quote": "tool rejected the prompt"}],
    "fix": {"action": "retry", "reason": "the tool was down"},
}


def _failed_and_escalated(c: Caller) -> str:
    """A run whose step ``act`` failed and waits for a human; the app's diagnosis model is
    scripted to answer."""
    from omium.sdk.providers import ScriptedProvider
    from omium.streams.recovery import DIAGNOSIS_AGENT

    c.client.app.state.llm_providers = {  # type: ignore[attr-defined]
        "scripted": ScriptedProvider(
            {"rules": [{"agent": DIAGNOSIS_AGENT, "response": json.dumps(_DIAGNOSIS)}]}
        )
    }
    eid = c.execution()
    c.ok(c.post(f"/executions/{eid}/steps", {"step_id": "act"}))
    c.ok(c.post(f"/executions/{eid}/steps/act/start"))
    c.ok(c.post(f"/executions/{eid}/steps/act/fail", {"error": "tool rejected the prompt"}))
    c.ok(c.post(f"/executions/{eid}/steps", {"step_id": "act"}))
    c.ok(
        c.post(
            f"/executions/{eid}/steps/act/approval",
            {"deadline": future(), "default_action": "reject"},
        )
    )
    return eid


def _suggested(c: Caller) -> tuple[str, str]:
    eid = _failed_and_escalated(c)
    sid = c.ok(c.post(f"/executions/{eid}/suggestions", {}), 201)["suggestion_id"]
    return eid, str(sid)


@route("POST", "/executions/{execution_id}/suggestions", Role.DEVELOPER)
def _request_diagnosis(c: Caller) -> Call:
    eid = _failed_and_escalated(c)
    return Call(
        "POST", f"/executions/{eid}/suggestions", {"step_id": "act"}, 201, "executions", eid
    )


@route("GET", "/executions/{execution_id}/suggestions", Role.VIEWER)
def _list_suggestions(c: Caller) -> Call:
    eid, _ = _suggested(c)
    return Call("GET", f"/executions/{eid}/suggestions")


@route("GET", "/executions/{execution_id}/suggestions/{suggestion_id}", Role.VIEWER)
def _get_suggestion(c: Caller) -> Call:
    eid, sid = _suggested(c)
    return Call("GET", f"/executions/{eid}/suggestions/{sid}")


@route("POST", "/executions/{execution_id}/suggestions/{suggestion_id}/approve", Role.OPERATOR)
def _approve_suggestion(c: Caller) -> Call:
    eid, sid = _suggested(c)
    body = {"comment": "looks right"}
    return Call(
        "POST",
        f"/executions/{eid}/suggestions/{sid}/approve",
        body,
        area="executions",
        aggregate_id=eid,
    )


@route("POST", "/executions/{execution_id}/suggestions/{suggestion_id}/reject", Role.OPERATOR)
def _reject_suggestion(c: Caller) -> Call:
    eid, sid = _suggested(c)
    return Call(
        "POST",
        f"/executions/{eid}/suggestions/{sid}/reject",
        {"comment": "not the cause"},
        area="executions",
        aggregate_id=eid,
    )


# --- the foundation's routes (walked too, so the matrix covers the whole table) --------------


@route("GET", "/whoami", Role.VIEWER)
def _whoami(c: Caller) -> Call:
    return Call("GET", "/whoami", other_tenant=None)


@route("GET", "/api-keys", Role.ADMIN)
def _list_keys(c: Caller) -> Call:
    return Call("GET", "/api-keys", other_tenant=None)


@route("POST", "/api-keys", Role.ADMIN)
def _create_key(c: Caller) -> Call:
    return Call("POST", "/api-keys", {"name": "worker", "role": "viewer"}, 201, other_tenant=None)


@route("DELETE", "/api-keys/{key_id}", Role.ADMIN)
def _revoke_key(c: Caller) -> Call:
    key_id = c.ok(c.post("/api-keys", {"name": "worker", "role": "viewer"}), 201)["key_id"]
    return Call("DELETE", f"/api-keys/{key_id}", status=204)


def send(c: Caller, call: Call, *, role: str = "admin", **headers: str) -> Reply:
    """Send a catalogue call as ``role`` (``headers`` as in ``Caller.headers``)."""
    kwargs: dict[str, Any] = {} if call.body is None else {"json": call.body}
    return c.client.request(
        call.method, API + call.path, headers=c.headers(role, **headers), **kwargs
    )
