"""Steps without round trips, the parts that need no server: the combined save on the in-memory
event store, the worker's decision to go on, the orchestrator's view of a pipelined step, and the
policy gate on real regopy bundles."""

from __future__ import annotations

import hashlib
import json
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypedDict

import pytest

from omium.commands import CommandApplications, ConflictError, event_store_env
from omium.commands.executions import ExecutionView
from omium.kernel.errors import DomainError
from omium.kernel.settings import OmiumSettings
from omium.sdk.workflow import parse_workflow_dict
from omium.streams.policy import CompiledPolicy, PolicyRegistry
from omium.worker import _tracker as tracker
from omium.worker._pipeline import next_step
from omium.worker._policy_gate import PolicyGate
from omium.worker._tracker import Dispatch, Schedule

T = "acme"
STATE = b"{}"


class InlineBlob(TypedDict):
    """``create_checkpoint``'s keywords for a state stored inline."""

    checksum: str
    size: int
    storage: str
    inline_state: bytes


CHECKPOINT: InlineBlob = {
    "checksum": hashlib.sha256(STATE).hexdigest(),
    "size": len(STATE),
    "storage": "inline",
    "inline_state": STATE,
}


@pytest.fixture
def apps(settings: OmiumSettings) -> Iterator[CommandApplications]:
    with CommandApplications.create(event_store_env(settings, backend="popo")) as built:
        yield built


def chain(*steps: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "chain",
        "agents": {"a": {"entrypoint": "tests.worker.agents:record"}},
        "steps": [{"id": step, "agent": "a", **extra.get(step, {})} for step in steps],
    }


def running(apps: CommandApplications, *steps: str) -> uuid.UUID:
    """A run whose steps ``steps`` are completed but the last, which is running."""
    run = apps.executions.start_execution(T, workflow_id=uuid.uuid4(), workflow_version=1)
    rid = run.aggregate_id
    for index, step in enumerate(steps):
        apps.executions.schedule_step(T, rid, step_id=step, agent="a")
        apps.executions.start_step(T, rid, step_id=step)
        if index < len(steps) - 1:
            apps.executions.complete_step(T, rid, step_id=step, output={})
    return rid


def names(apps: CommandApplications, rid: uuid.UUID) -> list[str]:
    return [type(e).__name__ for e in apps.executions.repository.event_store.get(rid)]


# ---------------------------------------------------------------------------- the combined save


def test_advance_step_records_completion_checkpoints_and_the_next_start_in_one_save(
    apps: CommandApplications,
) -> None:
    rid = running(apps, "s1")
    version = apps.executions.get_execution(T, rid).version
    result = apps.executions.advance_step(
        T,
        rid,
        step_id="s1",
        output={"x": 1},
        checkpoint={"checkpoint_id": "after-1", **CHECKPOINT},
        next_step_id="s2",
        next_agent="a",
        next_checkpoint={"checkpoint_id": "before-2", **CHECKPOINT},
        expected_version=version,
    )
    assert result.events == (
        "StepCompleted",
        "CheckpointCreated",
        "StepScheduled",
        "StepStarted",
        "CheckpointCreated",
    )
    assert result.version == version + 5
    assert dict(result.data) == {"next_step": "s2", "attempt": 1, "halted": False}
    view = apps.executions.get_execution(T, rid)
    assert {s.step_id: (s.status, s.attempts) for s in view.steps} == {
        "s1": ("completed", 1),
        "s2": ("running", 1),
    }
    assert [(c.step_id, c.position) for c in view.checkpoints] == [
        ("s1", "after"),
        ("s2", "before"),
    ]


def test_advance_step_conflicts_when_anyone_wrote_to_the_run_since(
    apps: CommandApplications,
) -> None:
    rid = running(apps, "s1")
    seen = apps.executions.get_execution(T, rid).version
    apps.executions.halt_execution(T, rid, reason="operator")
    before = names(apps, rid)
    with pytest.raises(ConflictError):
        apps.executions.advance_step(
            T, rid, step_id="s1", output={}, next_step_id="s2", expected_version=seen
        )
    assert names(apps, rid) == before  # nothing of it was written


def test_a_refused_part_refuses_the_whole_save(apps: CommandApplications) -> None:
    rid = running(apps, "s1")
    apps.executions.schedule_step(T, rid, step_id="s2")  # someone scheduled it meanwhile
    before = names(apps, rid)
    with pytest.raises(DomainError) as refused:
        apps.executions.advance_step(T, rid, step_id="s1", output={}, next_step_id="s2")
    assert getattr(refused.value, "reason", None) == "step_scheduled"
    assert names(apps, rid) == before


def test_advance_step_can_halt_the_run_instead(apps: CommandApplications) -> None:
    rid = running(apps, "s1")
    result = apps.executions.advance_step(
        T, rid, step_id="s1", output={}, halt_reason="p v1: no", halt_policy_id="p"
    )
    assert result.events == ("StepCompleted", "ExecutionHalted")
    assert result.data["halted"] is True and result.data["next_step"] is None
    view = apps.executions.get_execution(T, rid)
    assert view.state == "halted" and view.outcome == {"reason": "p v1: no", "policy_id": "p"}


def test_schedule_new_step_never_retries_a_failed_step(apps: CommandApplications) -> None:
    rid = running(apps, "s1")
    apps.executions.fail_step(T, rid, step_id="s1", error="boom")
    with pytest.raises(DomainError) as refused:
        apps.executions.schedule_new_step(T, rid, step_id="s1")
    assert getattr(refused.value, "reason", None) == "step_failed"
    apps.executions.schedule_new_step(T, rid, step_id="s2")  # a step the run does not have
    apps.executions.schedule_step(T, rid, step_id="s1")  # the retry is recovery's command


# ---------------------------------------------------------------------------- going on or not


def view_of(apps: CommandApplications, rid: uuid.UUID) -> ExecutionView:
    return apps.executions.get_execution(T, rid)


def test_the_worker_goes_on_to_the_step_that_became_ready(apps: CommandApplications) -> None:
    definition = parse_workflow_dict(chain("s1", "s2", "s3"))
    rid = running(apps, "s1")
    following, why = next_step(definition, view_of(apps, rid), "s1")
    assert following is not None and following.step.id == "s2" and following.attempt == 1, why
    rid = running(apps, "s1", "s2", "s3")
    assert next_step(definition, view_of(apps, rid), "s3") == (None, "no step became ready")


def test_the_worker_leaves_the_next_step_to_others_when_someone_else_must_decide(
    apps: CommandApplications,
) -> None:
    vote = {"consensus": {"participants": ["a"], "deadline_s": 5}}
    with_vote = {**chain("s1", "s2"), "steps": [chain("s1")["steps"][0], {"id": "s2", **vote}]}
    following, why = next_step(
        parse_workflow_dict(with_vote), view_of(apps, running(apps, "s1")), "s1"
    )
    assert following is None and "consensus" in why

    definition = parse_workflow_dict(
        {**chain("x", "s1", "s2"), "steps": [*chain("x", "s1", "s2")["steps"]]}
    )
    rid = running(apps, "x")
    apps.executions.fail_step(T, rid, step_id="x", error="boom")  # recovery decides
    apps.executions.schedule_step(T, rid, step_id="s1")
    apps.executions.start_step(T, rid, step_id="s1")
    assert next_step(definition, view_of(apps, rid), "s1") == (
        None,
        "a failed step waits for recovery",
    )

    rid = running(apps, "s1")
    apps.executions.halt_execution(T, rid, reason="stop")
    assert next_step(definition, view_of(apps, rid), "s1") == (None, "the run is halted")

    diamond = parse_workflow_dict(
        {
            **chain("a", "b", "c", "d"),
            "steps": [
                {"id": "a", "agent": "a"},
                {"id": "b", "agent": "a", "needs": ["a"]},
                {"id": "c", "agent": "a", "needs": ["a"]},
                {"id": "d", "agent": "a", "needs": ["b", "c"]},
            ],
        }
    )
    rid = running(apps, "a", "b")
    apps.executions.schedule_step(T, rid, step_id="c")
    following, _ = next_step(diamond, view_of(apps, rid), "b")
    assert following is None  # d still needs c


def test_after_a_rollback_the_next_attempt_number_is_left_to_the_save(
    apps: CommandApplications,
) -> None:
    definition = parse_workflow_dict(chain("s1", "s2"))
    rid = running(apps, "s1")
    apps.executions.create_checkpoint(
        T, rid, step_id="s1", position="before", checkpoint_id="b1", **CHECKPOINT
    )
    apps.executions.advance_step(T, rid, step_id="s1", output={}, next_step_id="s2")
    apps.executions.roll_back_to_checkpoint(T, rid, checkpoint_id="b1")
    apps.executions.start_step(T, rid, step_id="s1")
    following, _ = next_step(definition, view_of(apps, rid), "s1")
    assert following is not None and following.attempt is None
    result = apps.executions.advance_step(T, rid, step_id="s1", output={}, next_step_id="s2")
    assert result.data["attempt"] == 2  # the aggregate still counts s2's first attempt


# ---------------------------------------------------------------------------- the orchestrator


def event(kind: str, **payload: Any) -> dict[str, Any]:
    return {"event_type": kind, "payload": payload, "occurred_at": datetime(2025, 1, 1, tzinfo=UTC)}


def test_a_pipelined_step_is_not_dispatched_and_rollbacks_still_mirror_the_run() -> None:
    state = tracker.new_run(
        tenant_id=T,
        workflow_id="w",
        workflow_version=1,
        needs={"a": [], "b": ["a"], "c": ["b"]},
        agents={"a": "x", "b": "x", "c": "x"},
    )
    state = json.loads(json.dumps(state))
    tracker.start(state)
    assert tracker.apply(state, event("StepScheduled", step_id="a")) == [Dispatch("a", "scheduled")]
    tracker.apply(state, event("StepStarted", step_id="a", attempt=1))
    # The worker's save: a completed, its after checkpoint, b scheduled and started.
    assert tracker.apply(state, event("StepCompleted", step_id="a", output_json="{}")) == [
        Schedule("b", "x")
    ]
    tracker.pipelined(state, "b")  # the orchestrator's schedule_new_step was refused
    tracker.apply(
        state, event("CheckpointCreated", checkpoint_id="a-after", step_id="a", position="after")
    )
    assert tracker.apply(state, event("StepScheduled", step_id="b", agent="x")) == []
    assert tracker.apply(state, event("StepStarted", step_id="b", attempt=1)) == []
    assert state["steps"] == {"a": "completed", "b": "running"}
    # The checkpoint was taken before b existed: rolling back to it asks for b again.
    assert tracker.apply(state, event("ExecutionRolledBack", checkpoint_id="a-after")) == [
        Schedule("b", "x")
    ]
    # A step taken over after its worker died is dispatched again like any other.
    tracker.apply(state, event("StepScheduled", step_id="b", agent="x"))
    tracker.apply(state, event("StepStarted", step_id="b", attempt=2))
    tracker.apply(state, event("StepFailed", step_id="b", attempt=2))
    assert tracker.apply(state, event("StepScheduled", step_id="b")) == [Dispatch("b", "scheduled")]


def test_only_a_requested_step_becomes_pipelined() -> None:
    state = tracker.new_run(
        tenant_id=T, workflow_id="w", workflow_version=1, needs={"a": []}, agents={"a": "x"}
    )
    tracker.pipelined(state, "a")  # not asked for: nothing to mark
    assert state["steps"] == {}


# ---------------------------------------------------------------------------- the policy gate

NO_SECRETS = """package omium.nosecret
deny contains msg if {
  contains(input.output, "secret")
  msg := sprintf("step %s leaks a secret", [input.step])
}
"""
BROKEN = """package omium.broken
deny contains msg if {
  x := to_number(input.output)
  msg := sprintf("%v", [x])
}
"""


class FakeFeed:
    def __init__(self, *policies: CompiledPolicy) -> None:
        self.registry = PolicyRegistry()
        for policy in policies:
            self.registry.publish(policy)
        self.polls = 0

    def poll(self) -> int:
        self.polls += 1
        return 0

    def close(self) -> None:
        pass


def compiled(name: str, module: str, mode: str, tenant: str = T) -> CompiledPolicy:
    package = module.split()[1]
    return CompiledPolicy.compile(
        tenant_id=tenant,
        policy_id=name,
        version=1,
        mode=mode,
        targets=[],
        package=package,
        module=module,
    )


def check(gate: PolicyGate, output: Any, tenant: str = T) -> Any:
    return gate.check_output(
        tenant_id=tenant,
        execution_id=str(uuid.uuid4()),
        workflow_id=str(uuid.uuid4()),
        workflow_version=1,
        step_id="write",
        attempt=1,
        output=output,
    )


def test_the_gate_denies_with_deny_mode_policies_only_and_fails_closed() -> None:
    feed = FakeFeed(
        compiled("nosecret", NO_SECRETS, "deny"),
        compiled("warned", NO_SECRETS.replace("nosecret", "warned"), "warn"),
    )
    gate = PolicyGate(lambda: feed)  # type: ignore[arg-type, return-value]
    assert not check(gate, {"text": "fine"}).known  # not started: leave it to the processor
    assert gate.start()
    assert check(gate, {"text": "fine"}).allowed
    denied = check(gate, {"text": "the secret is 42"})
    assert denied.known and not denied.allowed
    assert denied.halt_reason == "nosecret v1: step write leaks a secret"
    assert denied.policy_id == "nosecret"
    assert check(gate, {"text": "secret"}, tenant="other").allowed  # another tenant's policies
    assert feed.polls >= 4  # new versions are picked up before every decision

    broken = PolicyGate(lambda: FakeFeed(compiled("broken", BROKEN, "deny")))  # type: ignore[arg-type, return-value]
    broken.start()
    failed = check(broken, {"text": "x"})
    assert failed.known and failed.denied == ("broken v1 could not be evaluated",)


NO_PASSWORDS_ASKED = """package omium.nopasswords
deny contains msg if {
  input.target == "llm_call"
  contains(input.output, "password")
  msg := sprintf("%s was told a password", [input.agent])
}
"""


def test_the_gate_judges_the_attempts_calls_too() -> None:
    from omium.worker import Span

    gate = PolicyGate(lambda: FakeFeed(compiled("nopasswords", NO_PASSWORDS_ASKED, "deny")))  # type: ignore[arg-type, return-value]
    gate.start()
    run = str(uuid.uuid4())
    call = Span(run, T, "llm.chat", "llm_call", step_id="write", agent="writer", model="m")
    call.attributes["output"] = "the password is hunter2"
    quiet = Span(run, T, "llm.chat", "llm_call", step_id="write", agent="writer", model="m")
    quiet.attributes["output"] = "nothing to see"
    denied = gate.check_output(
        tenant_id=T,
        execution_id=run,
        workflow_id=str(uuid.uuid4()),
        workflow_version=1,
        step_id="write",
        attempt=1,
        output={"text": "fine"},
        calls=[quiet.payload(), call.payload()],
    )
    assert denied.denied == ("nopasswords v1: writer was told a password",)
    assert check(gate, {"text": "password"}).allowed  # the output is not an llm_call


def test_a_gate_whose_policies_cannot_be_read_lets_nothing_go_on() -> None:
    class Down(FakeFeed):
        def poll(self) -> int:
            raise RuntimeError("no Kafka")

    gate = PolicyGate(lambda: Down())  # type: ignore[arg-type, return-value]
    assert not gate.start()
    assert not check(gate, {}).known


class FakeContext:
    """The orchestrator's view of one event: its run state and the work items it sends.

    Records for its admission stage (tenant limits) are handed back to it once the handler
    returned, as the internal topic would.
    """

    def __init__(
        self,
        tables: dict[tuple[str, str], str],
        event: dict[str, Any],
        sent: list[Any],
        orchestrator: Any,
        source: str = "t.executions",
    ) -> None:
        self.event, self._tables, self._sent = event, tables, sent
        self._orchestrator = orchestrator
        self.source = types.SimpleNamespace(topic=source)
        self._loop: list[dict[str, Any]] = []

    def handle(self) -> None:
        """Hand the event to the orchestrator, then what it sent to its admission stage."""
        self._orchestrator.handle(self)
        for record in self._loop:
            FakeContext(
                self._tables, record, self._sent, self._orchestrator, "t.orch.admission"
            ).handle()

    def get(self, table: str, key: str) -> Any:
        value = self._tables.get((table, key))
        return None if value is None else json.loads(value)

    def put(self, table: str, key: str, value: Any) -> None:
        self._tables[table, key] = json.dumps(value, sort_keys=True)

    def send_internal(self, suffix: str, *, key: str, record: dict[str, Any]) -> None:
        if suffix == "admission":
            self._loop.append(record)
        else:
            self._sent.append(record)


def decoded(event: Any, tenant: str) -> dict[str, Any]:
    """A stored domain event as the orchestrator receives it from Kafka (what it reads of it)."""
    kind = type(event).__name__
    fields = {k: v for k, v in vars(event).items() if not k.startswith("originator")}
    if "output" in fields:
        fields["output_json"] = json.dumps(fields.pop("output"))
    return {
        "event_type": kind,
        "event_id": str(uuid.uuid5(event.originator_id, str(event.originator_version))),
        "aggregate_id": str(event.originator_id),
        "tenant_id": tenant,
        "occurred_at": event.timestamp,
        "payload": fields,
    }


def test_the_orchestrator_never_dispatches_a_pipelined_step_not_even_on_replay(
    apps: CommandApplications,
) -> None:
    from omium.worker import Orchestrator

    workflow = parse_workflow_dict(chain("a", "b", "c"))
    wid = apps.workflows.register_workflow(
        T, name=workflow.name, definition=workflow.to_definition()
    ).aggregate_id
    rid = apps.executions.start_execution(T, workflow_id=wid, workflow_version=1).aggregate_id
    orchestrator = Orchestrator(apps)
    tables: dict[tuple[str, str], str] = {}
    sent: list[Any] = []

    def feed(since: int) -> int:
        events = list(apps.executions.repository.event_store.get(rid, gt=since))
        for stored_event in events:
            FakeContext(tables, decoded(stored_event, T), sent, orchestrator).handle()
        return events[-1].originator_version if events else since

    seen = feed(0)  # ExecutionStarted: a scheduled; StepScheduled(a): a dispatched
    seen = feed(seen)
    assert [item["step_id"] for item in sent] == ["a"]
    # The worker runs a and goes on to b in one save.
    apps.executions.start_step(T, rid, step_id="a")
    apps.executions.advance_step(T, rid, step_id="a", output={}, next_step_id="b", next_agent="a")
    checkpoint = dict(tables)  # the orchestrator's state as last committed
    seen_before = seen
    seen = feed(seen)
    assert [item["step_id"] for item in sent] == ["a"]  # nothing handed out for b
    assert orchestrator.stats["pipelined"] == 1
    # Restarted from its last committed state, it reads the same events again: same decision.
    tables.clear()
    tables.update(checkpoint)
    feed(seen_before)
    assert [item["step_id"] for item in sent] == ["a"]
    assert orchestrator.stats["pipelined"] == 2
    # b goes on to c, c completes alone: the orchestrator completes the run.
    apps.executions.advance_step(T, rid, step_id="b", output={}, next_step_id="c", next_agent="a")
    apps.executions.complete_step(T, rid, step_id="c", output={"done": True})
    feed(seen)
    assert [item["step_id"] for item in sent] == ["a"]
    view = apps.executions.get_execution(T, rid)
    assert view.state == "completed" and view.outcome == {"output": {"c": {"done": True}}}
