"""``/api/v1/dlq``: dead letters indexed from the real DLQ topic, tenant-scoped and paged, and a
re-drive that puts a message back on its source topic once (audited).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fastapi import FastAPI

from omium.gateway import InMemoryAuditSink
from omium.kernel.kafka import Area, DeadLetter, ensure_topics, topic_name, topic_specs
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.projections import ReadStores
from omium.testing.samples import sample_event
from tests.gateway.read.conftest import ReadModel

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

Auth = Callable[..., dict[str, str]]


def letter(
    source: str, offset: int, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
) -> DeadLetter:
    return DeadLetter(
        reason=f"cannot handle offset {offset}",
        error_type="ValueError",
        source_topic=source,
        source_partition=1,
        source_offset=offset,
        key=b"agg-1",
        value=value,
        consumer_group="omium.streams.test",
        original_headers=headers,
    )


@pytest.fixture
def dead_letters(read_model: ReadModel, live_kafka: object) -> dict[str, Any]:
    """Four dead letters on the test prefix's DLQ: two of tenant A, one of B, one of nobody."""
    settings = read_model.settings
    kafka = settings.kafka
    wanted = {topic_name(kafka, Area.DLQ), topic_name(kafka, Area.EXECUTIONS)}
    ensure_topics(kafka, specs=[s for s in topic_specs(kafka) if s.name in wanted])
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    source = topic_name(kafka, Area.EXECUTIONS)
    avro = serde.encode(sample_event("ExecutionCancelled", tenant_id=a))
    relay_json = json.dumps({"application": "executions", "state": {"tenant_id": b}}).encode()
    letters = [
        letter(source, 5, avro, (("tenant_id", a.encode()), ("event_type", b"ExecutionCancelled"))),
        letter(source, 6, b'{"tenant_id": "' + a.encode() + b'", "n": 1}'),
        letter("event_store.executions_events", 7, relay_json),
        letter(source, 8, b"\x00\xff\xfe not decodable"),
    ]
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for item in letters:
        producer.produce(
            topic_name(kafka, Area.DLQ),
            key=item.key,
            value=item.value,
            headers=list(item.headers()),
            partition=0,
        )
    assert producer.flush(15) == 0
    return {"a": a, "b": b, "source": source, "avro": avro}


@pytest.fixture
async def app_client(
    read_model: ReadModel,
    app_factory: Callable[..., FastAPI],
    async_client_factory: Callable[[FastAPI], httpx.AsyncClient],
) -> Any:
    app = app_factory(read_model.settings)
    app.state.read_stores = ReadStores(read_model.settings)
    client = async_client_factory(app)
    yield app, client
    await client.aclose()
    await app.state.read_stores.aclose()
    import psycopg

    from omium.gateway.api._dlq_store import dlq_schema

    with psycopg.connect(read_model.settings.postgres.dsn(), autocommit=True) as conn:
        conn.execute(
            f"DROP SCHEMA IF EXISTS {dlq_schema(read_model.settings.kafka.topic_prefix)} CASCADE"
        )


async def test_letters_are_listed_per_tenant_and_paged(
    app_client: Any, dead_letters: dict[str, Any], auth_factory: Auth
) -> None:
    _, client = app_client
    a, b = dead_letters["a"], dead_letters["b"]
    dev_a = auth_factory("developer", tenant=a)
    page = (await client.get("/api/v1/dlq", headers=dev_a)).json()
    assert [i["source_offset"] for i in page["items"]] == [6, 5]
    assert page["unattributed"] is None
    avro = page["items"][1]
    assert avro["preview_kind"] == "avro"
    assert avro["event_type"] == "ExecutionCancelled"
    assert avro["payload_preview"].startswith('{\n  "aggregate_id"')
    assert (avro["reason"], avro["source_topic"], avro["source_partition"]) == (
        "cannot handle offset 5",
        dead_letters["source"],
        1,
    )
    first = (await client.get("/api/v1/dlq", headers=dev_a, params={"limit": 1})).json()
    rest = await client.get(
        "/api/v1/dlq", headers=dev_a, params={"limit": 1, "cursor": first["next_cursor"]}
    )
    assert [i["source_offset"] for i in first["items"] + rest.json()["items"]] == [6, 5]
    assert rest.json()["next_cursor"] is None
    only_b = (await client.get("/api/v1/dlq", headers=auth_factory("developer", tenant=b))).json()
    assert [(i["source_offset"], i["preview_kind"]) for i in only_b["items"]] == [(7, "json")]
    admin = (await client.get("/api/v1/dlq", headers=auth_factory("admin", tenant=a))).json()
    assert admin["unattributed"] == 1
    detail = await client.get(f"/api/v1/dlq/{avro['letter_id']}", headers=dev_a)
    assert detail.status_code == 200
    assert detail.json()["key"] == "agg-1"
    assert '"tenant_id": "' + a in detail.json()["payload_preview"]
    assert ["tenant_id", a] in detail.json()["headers"]
    hidden = await client.get(f"/api/v1/dlq/{only_b['items'][0]['letter_id']}", headers=dev_a)
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/dlq", {"cursor": "nope"}, 422),
        ("/api/v1/dlq", {"state": "lost"}, 422),
        ("/api/v1/dlq", {"limit": "0"}, 422),
        ("/api/v1/dlq", {"q": "a\x00b"}, 400),
        ("/api/v1/dlq", {"source_topic": "t\x00"}, 400),
        ("/api/v1/dlq/not-an-id", {}, 404),
        ("/api/v1/dlq/0-99999999", {}, 404),
    ],
)
async def test_bad_requests_are_client_errors(
    app_client: Any,
    dead_letters: dict[str, Any],
    auth_factory: Auth,
    path: str,
    params: dict[str, str],
    status: int,
) -> None:
    _, client = app_client
    response = await client.get(path, headers=auth_factory("developer"), params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_reading_needs_a_developer(app_client: Any, auth_factory: Auth) -> None:
    _, client = app_client
    assert (await client.get("/api/v1/dlq")).status_code == 401
    assert (await client.get("/api/v1/dlq", headers=auth_factory("viewer"))).status_code == 403


def read_back(bootstrap: str, topic: str, partition: int, offset: int) -> tuple[Any, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        message = consumer.poll(15)
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return message, high
    finally:
        consumer.close()


async def test_a_redrive_puts_the_message_back_once_and_is_audited(
    app_client: Any,
    dead_letters: dict[str, Any],
    auth_factory: Auth,
    read_model: ReadModel,
) -> None:
    app, client = app_client
    a, b = dead_letters["a"], dead_letters["b"]
    items = (await client.get("/api/v1/dlq", headers=auth_factory("developer", tenant=a))).json()
    avro_id, json_id = items["items"][1]["letter_id"], items["items"][0]["letter_id"]
    path = f"/api/v1/dlq/{avro_id}/redrive"
    refused = await client.post(path, headers=auth_factory("developer", tenant=a))
    assert refused.status_code == 403
    other = await client.post(path, headers=auth_factory("operator", tenant=b))
    assert other.status_code == 404

    done = await client.post(path, headers=auth_factory("operator", tenant=a, sub="olga"))
    assert done.status_code == 200, done.text
    result = done.json()
    assert (result["topic"], result["partition"], result["replayed"]) == (
        dead_letters["source"],
        1,
        False,
    )
    assert result["redriven_by"] == "olga"
    again = await client.post(path, headers=auth_factory("operator", tenant=a))
    assert again.json() | {"replayed": False} == result
    assert again.json()["replayed"] is True
    message, high = await asyncio.to_thread(
        read_back, read_model.settings.kafka.bootstrap_servers, result["topic"], 1, result["offset"]
    )
    assert message is not None and message.error() is None
    assert message.value() == dead_letters["avro"]
    assert message.key() == b"agg-1"
    headers = dict(message.headers() or [])
    assert headers["dlq.redriven_from"] == avro_id.encode()
    assert headers["tenant_id"] == a.encode()
    assert high == result["offset"] + 1  # the replay sent nothing
    listed = await client.get(
        "/api/v1/dlq", headers=auth_factory("developer", tenant=a), params={"state": "redriven"}
    )
    assert [i["letter_id"] for i in listed.json()["items"]] == [avro_id]

    # Two re-drives of one letter at once send one message.
    racing = await asyncio.gather(
        *(
            client.post(
                f"/api/v1/dlq/{json_id}/redrive", headers=auth_factory("operator", tenant=a)
            )
            for _ in range(2)
        )
    )
    assert sorted(r.json()["replayed"] for r in racing) == [False, True]

    # A letter whose source is the relay's event table cannot go back to Kafka.
    theirs = (await client.get("/api/v1/dlq", headers=auth_factory("developer", tenant=b))).json()
    relay = await client.post(
        f"/api/v1/dlq/{theirs['items'][0]['letter_id']}/redrive",
        headers=auth_factory("operator", tenant=b),
    )
    assert relay.status_code == 409
    assert relay.json()["source_topic"] == "event_store.executions_events"

    audit = app.state.services.audit
    assert isinstance(audit, InMemoryAuditSink)
    entries = [(e.command, e.target, e.result, e.status) for e in audit.entries]
    assert ("dlq.redrive", avro_id, "accepted", 200) in entries
    assert ("dlq.redrive", f"/api/v1/dlq/{avro_id}/redrive", "refused", 403) in entries
