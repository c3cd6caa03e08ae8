"""Checks from the outside, after the faults: every acknowledged command everywhere, once.

For each acknowledgement (:class:`~bench._chaos._load.Ack`) the runner looks for its events

- in the event store (``<schema>.<area>_events``: the versions the answer named, with those
  event types);
- on Kafka: every domain topic read ``read_committed`` from the beginning, events counted by
  aggregate version and by event id (more than one copy is a duplicate);
- in every read model: PostgreSQL (``execution_events`` / ``consensus_votes`` rows by event id,
  the aggregate's ``last_event_version``), Redis (the projection's applied-event marker per event
  id) and OpenSearch (the gateway's audit record of the command, by idempotency key).

Effects that must happen once: each round decided once (``ConsensusReached``/``ConsensusFailed``
per round, on Kafka; votes counted once in both round read models), each failure planned once
(``RecoveryPlanned`` per failure id), each policy violation once (per policy, run, step and span),
each run completed once. Every acknowledged run must end.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from psycopg import sql

from bench._chaos._load import Ack
from omium.kernel.kafka import consumer_config, topic_name
from omium.kernel.serde import AvroSerde, SchemaCatalog, SerdeError
from omium.kernel.settings import OmiumSettings

ENDED = ("completed", "failed", "cancelled", "halted")
AREA_OF_KIND = {
    "start": "executions",
    "canary": "executions",
    "open_round": "consensus",
    "vote": "consensus",
}
ROUND_DECIDED = ("ConsensusReached", "ConsensusFailed")
RUN_ENDED = ("ExecutionCompleted", "ExecutionFailed", "ExecutionCancelled")
# Areas of stored events and of the processors' decisions (not audit, commands, spans, metrics).
DOMAIN_AREAS = ("consensus", "executions", "failures", "policies", "workflows")
PLACES = ("event_store", "kafka", "postgres_rm", "redis_rm", "opensearch_audit")


@dataclass
class KafkaView:
    """What the domain topics hold (committed messages only)."""

    copies: Counter[tuple[str, int]] = field(default_factory=Counter)
    event_ids: dict[tuple[str, int], str] = field(default_factory=dict)
    by_event_id: Counter[str] = field(default_factory=Counter)
    # ("round"|"recovery"|"violation"|"run-ended", key) -> copies; owner: run or round id
    effects: Counter[tuple[str, str]] = field(default_factory=Counter)
    owner: dict[tuple[str, str], str] = field(default_factory=dict)
    messages: int = 0
    undecodable: int = 0


def read_kafka(settings: OmiumSettings, timeout_s: float = 120.0) -> KafkaView:
    """Read every domain topic ``read_committed`` to its end and count what is there."""
    catalog = SchemaCatalog.from_directory(settings.schemas_dir)
    serde = AvroSerde(catalog)
    view = KafkaView()
    topics = [topic_name(settings.kafka, area) for area in DOMAIN_AREAS]
    for message in _messages(settings, topics, timeout_s):
        view.messages += 1
        try:
            event = serde.decode(message)
        except SerdeError:
            view.undecodable += 1
            continue
        _count(view, event)
    return view


def _count(view: KafkaView, event: dict[str, Any]) -> None:
    aggregate, version = str(event["aggregate_id"]), int(event["aggregate_version"])
    event_id = str(event["event_id"])
    view.copies[(aggregate, version)] += 1
    view.event_ids.setdefault((aggregate, version), event_id)
    view.by_event_id[event_id] += 1
    kind, payload = event["event_type"], event.get("payload") or {}
    effect: tuple[str, str] | None = None
    owner = aggregate
    if kind in ROUND_DECIDED:
        effect = ("round-decided", aggregate)
    elif kind == "RecoveryPlanned":
        effect, owner = (
            ("recovery-planned", str(payload["failure_id"])),
            str(payload["execution_id"]),
        )
    elif kind == "PolicyViolated":
        key = "|".join(
            str(payload[name]) for name in ("policy_id", "execution_id", "step_id", "span_id")
        )
        effect, owner = ("policy-violated", key), str(payload["execution_id"])
    elif kind in RUN_ENDED:
        effect = ("run-ended", aggregate)
    if effect is not None:
        view.effects[effect] += 1
        view.owner[effect] = owner


def _messages(settings: OmiumSettings, topics: list[str], timeout_s: float) -> Iterator[bytes]:
    config = consumer_config(
        settings.kafka,
        f"chaos-check-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "isolation.level": "read_committed"},
    )
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(timeout=30)
        partitions = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for topic in topics
            if topic in metadata.topics
            for p in sorted(metadata.topics[topic].partitions)
        ]
        consumer.assign(partitions)
        ended: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout_s
        while len(ended) < len(partitions):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kafka: read {len(ended)}/{len(partitions)} partitions")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is None:
                    value = message.value()
                    if isinstance(value, bytes):
                        yield value
                elif error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001
                    ended.add((str(message.topic()), int(message.partition() or 0)))
    finally:
        consumer.close()


@dataclass
class AckFinding:
    """What the checks found for one acknowledgement."""

    ack: Ack
    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


@dataclass
class Findings:
    """Everything the checks found."""

    acks: list[AckFinding]
    runs: dict[str, str]  # acknowledged run -> read model status ("missing" when absent)
    effect_duplicates: dict[str, int]
    kafka_messages: int

    def lost(self) -> list[AckFinding]:
        """Acknowledgements with an event missing somewhere."""
        return [f for f in self.acks if f.missing]

    def duplicated(self) -> list[AckFinding]:
        """Acknowledgements with an event or effect more than once."""
        return [f for f in self.acks if f.duplicated]

    def unfinished(self) -> list[str]:
        """Acknowledged runs that have not ended."""
        return [run for run, status in self.runs.items() if status not in ENDED]


class Checker:
    """Runs the checks against the runner's stack.

    Args:
        settings: The runner's settings.
        tenant: The load's tenant.
        schema: The event store schema.
    """

    def __init__(self, settings: OmiumSettings, tenant: str, schema: str = "event_store") -> None:
        """Remember where to look."""
        self.settings, self.tenant, self.schema = settings, tenant, schema
        self.rm_schema = f"{settings.kafka.topic_prefix}_rm"

    def check(self, acks: list[Ack]) -> Findings:
        """Check every acknowledgement once (no waiting)."""
        view = read_kafka(self.settings)
        findings = [AckFinding(ack) for ack in acks]
        with psycopg.connect(self.settings.postgres.dsn(), autocommit=True) as conn:
            self._event_store(conn, findings)
            self._postgres_rm(conn, findings, view)
            runs = self._runs(conn, [a.aggregate_id for a in acks if a.kind in ("start", "canary")])
        self._kafka(findings, view)
        self._redis(findings, view)
        self._opensearch(findings)
        effect_dups = self._effects(findings, view)
        return Findings(findings, runs, effect_dups, view.messages)

    def wait_runs(self, runs: Iterable[str], timeout_s: float) -> dict[str, str]:
        """Wait until every run has ended in the PostgreSQL read model (or the time is up)."""
        wanted = list(runs)
        deadline = time.monotonic() + timeout_s
        while True:
            with psycopg.connect(self.settings.postgres.dsn(), autocommit=True) as conn:
                status = self._runs(conn, wanted)
            if all(s in ENDED for s in status.values()) or time.monotonic() > deadline:
                return status
            time.sleep(2)

    def _runs(self, conn: psycopg.Connection[Any], runs: list[str]) -> dict[str, str]:
        rows = conn.execute(
            sql.SQL(
                "SELECT execution_id, status FROM {} "
                "WHERE tenant_id = %s AND execution_id = ANY(%s)"
            ).format(sql.Identifier(self.rm_schema, "executions")),
            (self.tenant, runs),
        ).fetchall()
        found = {str(r): str(s) for r, s in rows}
        return {run: found.get(run, "missing") for run in runs}

    def _event_store(self, conn: psycopg.Connection[Any], findings: list[AckFinding]) -> None:
        stored: dict[str, dict[tuple[str, int], str]] = defaultdict(dict)
        by_area: dict[str, set[str]] = defaultdict(set)
        for f in findings:
            by_area[AREA_OF_KIND[f.ack.kind]].add(f.ack.aggregate_id)
        for area, ids in by_area.items():
            rows = conn.execute(
                sql.SQL(
                    "SELECT originator_id::text, originator_version, topic FROM {} "
                    "WHERE originator_id::text = ANY(%s)"
                ).format(sql.Identifier(self.schema, f"{area}_events")),
                (list(ids),),
            ).fetchall()
            for aggregate, version, topic in rows:
                stored[area][(str(aggregate), int(version))] = str(topic).rsplit(".", 1)[-1]
        for f in findings:
            types = stored[AREA_OF_KIND[f.ack.kind]]
            for version, event_type in _versions(f.ack):
                if types.get((f.ack.aggregate_id, version)) != event_type:
                    f.missing.append(f"event_store:{event_type}@{version}")

    def _kafka(self, findings: list[AckFinding], view: KafkaView) -> None:
        for f in findings:
            for version, event_type in _versions(f.ack):
                copies = view.copies[(f.ack.aggregate_id, version)]
                if copies == 0:
                    f.missing.append(f"kafka:{event_type}@{version}")
                elif copies > 1:
                    f.duplicated.append(f"kafka:{event_type}@{version} x{copies}")

    def _postgres_rm(
        self, conn: psycopg.Connection[Any], findings: list[AckFinding], view: KafkaView
    ) -> None:
        event_ids = [
            view.event_ids[key]
            for f in findings
            for key in ((f.ack.aggregate_id, v) for v, _ in _versions(f.ack))
            if key in view.event_ids
        ]
        present: set[str] = set()
        for table in ("execution_events", "consensus_votes"):
            rows = conn.execute(
                sql.SQL(
                    "SELECT event_id::text FROM {} "
                    "WHERE tenant_id = %s AND event_id = ANY(%s::uuid[])"
                ).format(sql.Identifier(self.rm_schema, table)),
                (self.tenant, event_ids),
            ).fetchall()
            present |= {str(r[0]) for r in rows}
        rounds = {
            str(r): (int(v), int(c))
            for r, v, c in conn.execute(
                sql.SQL(
                    "SELECT round_id, last_event_version, votes_cast FROM {} WHERE tenant_id = %s"
                ).format(sql.Identifier(self.rm_schema, "consensus_rounds")),
                (self.tenant,),
            ).fetchall()
        }
        runs = {
            str(r): int(v)
            for r, v in conn.execute(
                sql.SQL(
                    "SELECT execution_id, last_event_version FROM {} WHERE tenant_id = %s"
                ).format(sql.Identifier(self.rm_schema, "executions")),
                (self.tenant,),
            ).fetchall()
        }
        votes = Counter(f.ack.aggregate_id for f in findings if f.ack.kind == "vote")
        for f in findings:
            ack = f.ack
            if ack.kind in ("start", "canary", "vote"):
                for version, event_type in _versions(ack):
                    event_id = view.event_ids.get((ack.aggregate_id, version))
                    if event_id is None or event_id not in present:
                        f.missing.append(f"postgres_rm:{event_type}@{version}")
            seen = rounds.get(ack.aggregate_id)
            last = runs.get(ack.aggregate_id) if seen is None else seen[0]
            if last is None or last < ack.version:
                f.missing.append(f"postgres_rm:version {ack.version}")
            if (
                ack.kind == "open_round"
                and isinstance(seen, tuple)
                and seen[1] > votes[ack.aggregate_id]
            ):
                f.duplicated.append(f"postgres_rm:votes_cast {seen[1]} > {votes[ack.aggregate_id]}")

    def _redis(self, findings: list[AckFinding], view: KafkaView) -> None:
        client = redis.Redis.from_url(self.settings.redis.url, socket_timeout=10)
        prefix = f"{self.settings.kafka.topic_prefix}:rm"
        votes = Counter(f.ack.aggregate_id for f in findings if f.ack.kind == "vote")
        try:
            for f in findings:
                ack = f.ack
                for version, event_type in _versions(ack):
                    event_id = view.event_ids.get((ack.aggregate_id, version))
                    if event_id is None or not client.exists(f"{prefix}:seen:{event_id}"):
                        f.missing.append(f"redis_rm:{event_type}@{version}")
                if ack.kind == "open_round":
                    counted = client.hget(
                        f"{prefix}:round:{self.tenant}:{ack.aggregate_id}", "votes"
                    )
                    if counted is not None and int(counted) > votes[ack.aggregate_id]:
                        f.duplicated.append(f"redis_rm:votes {int(counted)}")
        finally:
            client.close()

    def _opensearch(self, findings: list[AckFinding]) -> None:
        base = self.settings.opensearch.url.rstrip("/")
        url = f"{base}/{self.settings.kafka.topic_prefix}-audit/_search"
        keys: set[str] = set()
        after: list[Any] | None = None
        with httpx.Client(timeout=30) as http:
            while True:
                query: dict[str, Any] = {
                    "size": 1000,
                    "query": {"term": {"tenant_id": self.tenant}},
                    "_source": ["idempotency_key"],
                    "sort": [{"doc_key": "asc"}],
                }
                if after is not None:
                    query["search_after"] = after
                response = http.post(url, json=query)
                response.raise_for_status()
                hits = response.json()["hits"]["hits"]
                keys |= {str(h["_source"].get("idempotency_key")) for h in hits}
                if len(hits) < 1000:
                    break
                after = hits[-1]["sort"]
        for f in findings:
            if f.ack.idempotency_key not in keys:
                f.missing.append("opensearch_audit")

    def _effects(self, findings: list[AckFinding], view: KafkaView) -> dict[str, int]:
        """Effects seen more than once, charged to the run or round they belong to."""
        owners = {
            f.ack.aggregate_id: f
            for f in findings
            if f.ack.kind in ("start", "canary", "open_round")
        }
        duplicates: Counter[str] = Counter()
        for effect, copies in view.effects.items():
            if copies <= 1:
                continue
            duplicates[effect[0]] += 1
            owner = owners.get(view.owner[effect])
            if owner is not None:
                owner.duplicated.append(f"{effect[0]}:{effect[1]} x{copies}")
        return dict(duplicates)


def _versions(ack: Ack) -> list[tuple[int, str]]:
    """``(version, event type)`` of each event an acknowledgement names."""
    first = ack.version - len(ack.events) + 1
    return [(first + i, name) for i, name in enumerate(ack.events)]
