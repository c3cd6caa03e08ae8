"""Idempotency keys: the store contract (in memory and PostgreSQL) and the handlers' behaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    StoredEvent,
)
from eventsourcing.utils import Environment

from omium.commands import (
    CommandResult,
    ExecutionsApplication,
    IdempotencyKeyReusedError,
    IdempotencyRecord,
    IdempotencyStore,
    InvalidCommandError,
    command_fingerprint,
)
from omium.commands._idempotency import IDEMPOTENCY_KWARG
from omium.commands._persistence import construct_idempotent_recorder
from tests.commands.helpers import log_position

# Store contract --------------------------------------------------------------------------


def stored_event(originator_id: Any = None, version: int = 1) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id or uuid4(), originator_version=version, topic="t", state=b"{}"
    )


def record(key: str, *, tenant: str = "acme", scope: str = "Executions") -> IdempotencyRecord:
    result = CommandResult(uuid4(), 3, ("StepStarted",), {"checkpoint_id": "cp-1"})
    return IdempotencyRecord(tenant, scope, key, "f" * 64, result, datetime.now(UTC))


class IdempotencyStoreContract:
    """What every idempotency store does; subclasses provide the ``recorder`` fixture."""

    def test_an_unused_key_has_no_record(self, recorder: Any) -> None:
        assert recorder.get_idempotency_record("acme", "Executions", "never") is None

    def test_a_key_is_recorded_with_the_events(self, recorder: Any) -> None:
        first = record("k1")

        recorder.insert_events([stored_event()], **{IDEMPOTENCY_KWARG: first})

        found = recorder.get_idempotency_record("acme", "Executions", "k1")
        assert (found.fingerprint, found.result) == (first.fingerprint, first.result)
        assert found.result.data == {"checkpoint_id": "cp-1"}

    def test_a_used_key_refuses_the_whole_write(self, recorder: Any) -> None:
        recorder.insert_events([stored_event()], **{IDEMPOTENCY_KWARG: record("k2")})
        before = recorder.max_notification_id()

        with pytest.raises(IntegrityError):
            recorder.insert_events([stored_event()], **{IDEMPOTENCY_KWARG: record("k2")})

        assert recorder.max_notification_id() == before

    def test_a_refused_event_write_records_no_key(self, recorder: Any) -> None:
        taken = stored_event()
        recorder.insert_events([taken])

        with pytest.raises(IntegrityError):
            recorder.insert_events([taken], **{IDEMPOTENCY_KWARG: record("k3")})

        assert recorder.get_idempotency_record("acme", "Executions", "k3") is None

    def test_keys_are_scoped_by_tenant_and_scope(self, recorder: Any) -> None:
        recorder.insert_events([stored_event()], **{IDEMPOTENCY_KWARG: record("k4")})
        recorder.insert_events([stored_event()], **{IDEMPOTENCY_KWARG: record("k4", tenant="b")})
        recorder.insert_events([stored_event()], **{IDEMPOTENCY_KWARG: record("k4", scope="W")})

        assert recorder.get_idempotency_record("b", "Executions", "k4") is not None
        assert recorder.get_idempotency_record("acme", "W", "k4") is not None


class TestPopoIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    def recorder(self, event_store_env_factory: Callable[[str], dict[str, str]]) -> Any:
        return self.build(event_store_env_factory("popo"))

    @staticmethod
    def build(env: dict[str, str]) -> ApplicationRecorder:
        name = f"Contract{uuid4().hex[:8]}"
        factory = InfrastructureFactory.construct(Environment(name, env))
        recorder = construct_idempotent_recorder(factory)
        assert isinstance(recorder, IdempotencyStore)
        return recorder


@pytest.mark.integration
class TestPostgresIdempotencyStore(IdempotencyStoreContract):
    @pytest.fixture
    def recorder(self, event_store_env_factory: Callable[[str], dict[str, str]]) -> Iterator[Any]:
        recorder = TestPopoIdempotencyStore.build(event_store_env_factory("postgres"))
        yield recorder
        recorder.datastore.close()  # type: ignore[attr-defined]


# Handlers --------------------------------------------------------------------------------


@pytest.fixture
def executions(app_factory: Callable[..., Any]) -> ExecutionsApplication:
    return app_factory(ExecutionsApplication)  # type: ignore[no-any-return]


def test_the_same_key_returns_the_first_result_and_writes_nothing(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant, workflow_id = tenant_factory(), uuid4()

    first = executions.start_execution(
        tenant, workflow_id=workflow_id, workflow_version=1, idempotency_key="start-1"
    )
    position = log_position(executions)
    again = executions.start_execution(
        tenant, workflow_id=workflow_id, workflow_version=1, idempotency_key="start-1"
    )

    assert (again.aggregate_id, again.version, again.events) == (
        first.aggregate_id,
        first.version,
        first.events,
    )
    assert (first.replayed, again.replayed) == (False, True)
    assert log_position(executions) == position


def test_a_replay_keeps_generated_values_and_ignores_the_current_state(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    run = executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1).aggregate_id
    executions.schedule_step(tenant, run, step_id="a")
    checkpoint: dict[str, Any] = {"step_id": "a", "position": "before", "checksum": "0" * 64}
    checkpoint |= {"size": 1}
    checkpoint |= {"storage": "object", "object_key": "blobs/0"}

    first = executions.create_checkpoint(tenant, run, idempotency_key="cp", **checkpoint)
    executions.start_step(tenant, run, step_id="a", idempotency_key="start-a")
    executions.complete_step(tenant, run, step_id="a")
    again = executions.create_checkpoint(tenant, run, idempotency_key="cp", **checkpoint)
    restarted = executions.start_step(tenant, run, step_id="a", idempotency_key="start-a")

    assert again.data == first.data
    assert (restarted.replayed, restarted.events) == (True, ("StepStarted",))
    assert len(executions.get_execution(tenant, run).checkpoints) == 1


def test_a_key_reused_for_a_different_command_is_refused(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()
    executions.start_execution(tenant, workflow_id=uuid4(), workflow_version=1, idempotency_key="k")
    position = log_position(executions)

    with pytest.raises(IdempotencyKeyReusedError) as reused:
        executions.start_execution(
            tenant, workflow_id=uuid4(), workflow_version=1, idempotency_key="k"
        )

    assert (reused.value.key, reused.value.reason) == ("k", "idempotency_key_reused")
    assert log_position(executions) == position


def test_keys_belong_to_one_tenant(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    one, two, workflow_id = tenant_factory(), tenant_factory(), uuid4()

    first = executions.start_execution(
        one, workflow_id=workflow_id, workflow_version=1, idempotency_key="same"
    )
    second = executions.start_execution(
        two, workflow_id=workflow_id, workflow_version=1, idempotency_key="same"
    )

    assert not second.replayed
    assert second.aggregate_id != first.aggregate_id


def test_a_refused_command_does_not_use_up_its_key(
    executions: ExecutionsApplication, tenant_factory: Callable[[], str]
) -> None:
    tenant = tenant_factory()

    with pytest.raises(InvalidCommandError):
        executions.start_execution(
            tenant, workflow_id=uuid4(), workflow_version=0, idempotency_key="retry-me"
        )
    accepted = executions.start_execution(
        tenant, workflow_id=uuid4(), workflow_version=1, idempotency_key="retry-me"
    )

    assert not accepted.replayed


def test_the_fingerprint_ignores_argument_order() -> None:
    assert command_fingerprint("c", {"a": 1, "b": [1, 2]}) == command_fingerprint(
        "c", {"b": [1, 2], "a": 1}
    )
    assert command_fingerprint("c", {"a": 1}) != command_fingerprint("d", {"a": 1})
