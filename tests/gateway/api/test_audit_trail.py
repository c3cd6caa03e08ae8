"""Commands sent over HTTP land on ``<prefix>.audit``, accepted or refused, with their target."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer

from omium.kernel.kafka import consumer_config
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from tests.gateway.api.fixtures import Caller

pytestmark = pytest.mark.integration


def audit_events(settings: OmiumSettings, tenant: str, expected: int) -> list[dict[str, Any]]:
    """The decoded audit events of ``tenant``, once ``expected`` arrived (or after 30 s)."""
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    consumer = Consumer(consumer_config(settings.kafka, f"audit-{uuid.uuid4()}"))
    consumer.subscribe([f"{settings.kafka.topic_prefix}.audit"])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for message in consumer.consume(100, 1.0):
                value = message.value()
                if message.error() is None and value is not None:
                    event = serde.decode(value)
                    if event["tenant_id"] == tenant:
                        found.append(event)
    finally:
        consumer.close()
    return found


def test_commands_are_audited_with_their_target(
    caller: Caller, api_settings: OmiumSettings
) -> None:
    wid = caller.workflow()
    eid = caller.execution(wid)
    refused = caller.post(f"/executions/{eid}/halt", {"reason": "x"}, role="developer")
    assert refused.status_code == 403
    events = audit_events(api_settings, caller.tenant, expected=3)
    by_command = {event["payload"]["command"]: event for event in events}
    assert set(by_command) == {"workflows.register", "executions.start", "executions.halt"}
    register = by_command["workflows.register"]
    assert register["payload"]["target"] == wid
    assert register["payload"]["result"] == "accepted"
    assert register["payload"]["status_code"] == 201
    assert by_command["executions.start"]["payload"]["target"] == eid
    halt = by_command["executions.halt"]["payload"]
    assert (halt["result"], halt["status_code"], halt["reason"]) == ("refused", 403, "forbidden")
    # Refused before the route ran, so the target is the request path (which names the run).
    assert eid in halt["target"]
