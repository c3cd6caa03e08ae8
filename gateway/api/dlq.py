"""``/api/v1/dlq``: the tenant's dead letters, and putting one back on its topic (re-drive).

A message a part could not decode or handle is on ``<prefix>.dlq`` with why and where it came
from (see :mod:`omium.gateway.api._dlq_store`, which indexes them in PostgreSQL). Reading them
needs the developer role (payloads hold run data); a re-drive needs an operator, is audited as
``dlq.redrive``, and happens at most once per letter: the letter is locked in the index while its
message is produced (idempotent producer, ``acks=all``) back to its source topic and partition,
and then marked with who re-drove it, when and at which offset; any later re-drive of the same
letter answers that first result (``replayed: true``) and sends nothing.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from fastapi import APIRouter, Depends, Path, Query, Request
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from omium.gateway._openapi import problems
from omium.gateway._policy import Command, CurrentPrincipal, requires
from omium.gateway._principal import Role
from omium.gateway._problems import register_error
from omium.gateway.api._dlq_store import (
    REDRIVEN_FROM,
    dlq_schema,
    migrations,
    read_new_letters,
)
from omium.gateway.api.read_common import ReadModelNotFoundError, Stores, pg_connection
from omium.kernel.errors import OmiumError, PersistenceError
from omium.kernel.kafka import Area, producer_config, topic_name
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings
from omium.projections import InvalidCursorError, ReadStores

router = APIRouter(prefix="/dlq", tags=["dead letters"])

SYNC_EVERY_S = 1.0
"""Two lists within this time share one read of the DLQ topic."""
_LETTER_ID = re.compile(r"(\d{1,6})-(\d{1,19})")
_CURSOR = re.compile(r"(\d{1,6})-(\d{1,19})@(.+)")


class DeadLetterNotRedrivableError(OmiumError):
    """The letter's source is not a Kafka topic of this deployment (HTTP 409).

    Attributes:
        letter_id: The letter.
        source_topic: Where it came from (e.g. the relay's event table).
        reason: ``"source_not_a_topic"``.
    """

    def __init__(self, letter_id: str, source_topic: str) -> None:
        self.letter_id = letter_id
        self.source_topic = source_topic
        self.reason = "source_not_a_topic"
        super().__init__(
            f"dead letter {letter_id} came from {source_topic!r}, which is not a Kafka topic of "
            "this deployment; it cannot be put back"
        )


register_error(
    DeadLetterNotRedrivableError,
    status=409,
    title="Dead letter cannot be re-driven",
    slug="not-redrivable",
    extensions=("letter_id", "source_topic", "reason"),
)


class DeadLetterUnavailableError(PersistenceError):
    """Kafka did not take or give dead letters (HTTP 503, detail hidden)."""


class DeadLetterSummary(BaseModel):
    """A dead letter in a list."""

    letter_id: str
    reason: str
    error_type: str
    source_topic: str
    source_partition: int
    source_offset: int
    consumer_group: str
    failed_at: datetime
    event_type: str | None
    event_id: str | None
    payload_size: int
    preview_kind: Literal["avro", "json", "text", "binary"]
    payload_preview: str
    redriven_at: datetime | None
    redriven_by: str | None


class DeadLetterDetail(DeadLetterSummary):
    """A dead letter with its key, original headers and where a re-drive put it."""

    key: str | None
    headers: list[tuple[str, str]]
    redrive_partition: int | None
    redrive_offset: int | None


class DeadLetterPage(BaseModel):
    """A page of the tenant's dead letters, newest failure first."""

    items: list[DeadLetterSummary]
    next_cursor: str | None
    unattributed: int | None = None
    """Admins only: letters of no known tenant (undecodable), which no tenant's list shows."""


class RedriveResult(BaseModel):
    """Where a re-drive put the message (the first re-drive's answer on a replay)."""

    letter_id: str
    topic: str
    partition: int
    offset: int
    redriven_at: datetime
    redriven_by: str
    replayed: bool


class DlqIndex:
    """One app's DLQ index: its schema, the decoder, the last sync and a producer."""

    def __init__(self, settings: OmiumSettings) -> None:
        """Prepare; nothing connects until first use."""
        self.settings = settings
        self.schema = dlq_schema(settings.kafka.topic_prefix)
        self.serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
        self._migrated = False
        self._last_sync = float("-inf")
        self._lock = asyncio.Lock()
        self._producer: Producer | None = None

    async def sync(self, stores: ReadStores) -> None:
        """Index what the DLQ topic gained since the stored positions (at most every second)."""
        async with self._lock:
            if time.monotonic() - self._last_sync < SYNC_EVERY_S:
                return
            await self._migrate(stores)
            async with pg_connection(stores) as conn:
                cur = await conn.execute(
                    self.statement("SELECT dlq_partition, next_offset FROM {s}.positions")
                )
                positions = {int(p): int(o) for p, o in await cur.fetchall()}
            try:
                letters, moved = await run_in_threadpool(
                    read_new_letters, self.settings.kafka, self.serde, positions
                )
            except KafkaException as exc:
                raise DeadLetterUnavailableError(f"cannot read the DLQ topic: {exc}") from exc
            if moved:
                await self._store(stores, [letter.row() for letter in letters], moved)
            self._last_sync = time.monotonic()

    async def _migrate(self, stores: ReadStores) -> None:
        if self._migrated:
            return
        # Two gateways starting at once: the advisory lock keeps CREATE ... IF NOT EXISTS from
        # racing on the catalog.
        async with pg_connection(stores) as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            for statement in migrations(self.schema):
                await conn.execute(statement.encode())
        self._migrated = True

    async def _store(
        self, stores: ReadStores, rows: list[dict[str, Any]], moved: dict[int, int]
    ) -> None:
        columns = list(rows[0]) if rows else []
        insert = self.statement(
            "INSERT INTO {s}.dead_letters ("
            + ", ".join(columns)
            + ") VALUES ("
            + ", ".join(f"%({c})s" for c in columns)
            + ") ON CONFLICT DO NOTHING"
        )
        upsert = self.statement(
            "INSERT INTO {s}.positions (dlq_partition, next_offset) VALUES (%s, %s) "
            "ON CONFLICT (dlq_partition) DO UPDATE "
            "SET next_offset = GREATEST({s}.positions.next_offset, EXCLUDED.next_offset)"
        )
        async with pg_connection(stores) as conn, conn.transaction(), conn.cursor() as cur:
            if rows:
                await cur.executemany(insert, rows)
            await cur.executemany(upsert, sorted(moved.items()))

    def statement(self, query: str) -> sql.Composed:
        """``query`` with ``{s}`` as the index's schema."""
        return sql.SQL(query).format(s=sql.Identifier(self.schema))

    def producer(self) -> Producer:
        """The idempotent producer re-drives go through."""
        if self._producer is None:
            self._producer = Producer(
                producer_config(self.settings.kafka, **{"client.id": "omium-gateway-redrive"})
            )
        return self._producer

    def redrivable(self, topic: str) -> bool:
        """Whether ``topic`` is a Kafka topic of this deployment a message may be put back on."""
        kafka = self.settings.kafka
        if topic == topic_name(kafka, Area.DLQ) or topic.endswith("-changelog"):
            return False
        if not topic.startswith(f"{kafka.topic_prefix}."):
            return False
        metadata = self.producer().list_topics(topic, timeout=5.0).topics.get(topic)
        return metadata is not None and metadata.error is None


def dlq_index(request: Request) -> DlqIndex:
    """The app's DLQ index, made on first use."""
    index: DlqIndex | None = getattr(request.app.state, "dlq_index", None)
    if index is None:
        index = DlqIndex(request.app.state.settings)
        request.app.state.dlq_index = index
    return index


Index = Annotated[DlqIndex, Depends(dlq_index)]
LetterId = Annotated[
    str, Path(max_length=40, description="`<dlq partition>-<offset>`, as the list gives it.")
]

_COLUMNS = (
    "dlq_partition::text || '-' || dlq_offset::text AS letter_id, reason, error_type, "
    "source_topic, source_partition, source_offset, consumer_group, failed_at, event_type, "
    "event_id, payload_size, preview_kind, redriven_at, redriven_by"
)


def _parse_id(letter_id: str) -> tuple[int, int]:
    match = _LETTER_ID.fullmatch(letter_id)
    if match is None:
        raise ReadModelNotFoundError("DeadLetter", letter_id)
    return int(match[1]), int(match[2])


def _summary(row: dict[str, Any], *, preview_chars: int) -> dict[str, Any]:
    preview = row.pop("preview")
    return {**row, "payload_preview": preview[:preview_chars]}


@router.get(
    "",
    response_model=DeadLetterPage,
    summary="The tenant's dead letters, newest failure first",
    dependencies=[requires(Role.DEVELOPER)],
)
async def list_dead_letters(
    principal: CurrentPrincipal,
    stores: Stores,
    index: Index,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    source_topic: Annotated[str | None, Query(max_length=300)] = None,
    state: Annotated[Literal["all", "pending", "redriven"], Query()] = "all",
    q: Annotated[str | None, Query(max_length=200, description="Text in the reason.")] = None,
) -> DeadLetterPage:
    """Index what the DLQ gained, then answer a page (``payload_preview``: first 512 chars)."""
    after: tuple[datetime, int, int] | None = None
    if cursor is not None:
        match = _CURSOR.fullmatch(cursor)
        try:
            if match is None:
                raise ValueError(cursor)
            after = (datetime.fromisoformat(match[3]), int(match[1]), int(match[2]))
        except ValueError:
            raise InvalidCursorError() from None
    await index.sync(stores)
    where = ["tenant_id = %(t)s"]
    params: dict[str, Any] = {"t": principal.tenant_id, "limit": limit + 1}
    if source_topic:
        where.append("source_topic = %(topic)s")
        params["topic"] = source_topic
    if state != "all":
        where.append("redriven_at IS " + ("NULL" if state == "pending" else "NOT NULL"))
    if q:
        where.append("reason ILIKE %(q)s")
        params["q"] = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    if after is not None:
        where.append("(failed_at, dlq_partition, dlq_offset) < (%(at)s, %(p)s, %(o)s)")
        params.update(at=after[0], p=after[1], o=after[2])
    query = index.statement(
        f"SELECT {_COLUMNS}, preview FROM {{s}}.dead_letters WHERE "
        + " AND ".join(where)
        + " ORDER BY failed_at DESC, dlq_partition DESC, dlq_offset DESC LIMIT %(limit)s"
    )
    unattributed = None
    async with pg_connection(stores) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
        if principal.has(Role.ADMIN):
            await cur.execute(
                index.statement(
                    "SELECT count(*) AS n FROM {s}.dead_letters WHERE tenant_id IS NULL"
                )
            )
            found = await cur.fetchone()
            unattributed = int(found["n"]) if found else 0
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = f"{last['letter_id']}@{last['failed_at'].isoformat()}"
    return DeadLetterPage(
        items=[DeadLetterSummary.model_validate(_summary(r, preview_chars=512)) for r in rows],
        next_cursor=next_cursor,
        unattributed=unattributed,
    )


async def _letter(
    stores: ReadStores, index: DlqIndex, tenant_id: str, letter_id: str
) -> dict[str, Any]:
    partition, offset = _parse_id(letter_id)
    await index.sync(stores)
    query = index.statement(
        f"SELECT {_COLUMNS}, preview, message_key, headers, redrive_partition, redrive_offset "
        "FROM {s}.dead_letters WHERE dlq_partition = %s AND dlq_offset = %s AND tenant_id = %s"
    )
    async with pg_connection(stores) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, (partition, offset, tenant_id))
        row = await cur.fetchone()
    if row is None:
        raise ReadModelNotFoundError("DeadLetter", letter_id)
    return row


@router.get(
    "/{letter_id}",
    response_model=DeadLetterDetail,
    summary="One dead letter: reason, source, key, headers, payload preview",
    dependencies=[requires(Role.DEVELOPER)],
)
async def get_dead_letter(
    letter_id: LetterId, principal: CurrentPrincipal, stores: Stores, index: Index
) -> DeadLetterDetail:
    """The letter (``payload_preview``: up to 4 KB); another tenant's letter is a 404."""
    row = await _letter(stores, index, principal.tenant_id, letter_id)
    key = row.pop("message_key")
    row["key"] = bytes(key).decode("utf-8", errors="replace") if key is not None else None
    row["headers"] = [tuple(pair) for pair in row["headers"]]
    return DeadLetterDetail.model_validate(_summary(row, preview_chars=4096))


def _produce(
    producer: Producer,
    topic: str,
    partition: int,
    key: bytes | None,
    value: bytes,
    headers: list[tuple[str, bytes]],
) -> tuple[int, int]:
    delivered: list[Message] = []
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        else:
            delivered.append(message)

    kwargs: dict[str, Any] = {"key": key, "value": value, "headers": headers}
    if partition >= 0:
        kwargs["partition"] = partition
    try:
        producer.produce(topic, on_delivery=on_delivery, **kwargs)
    except (KafkaException, BufferError) as exc:
        raise DeadLetterUnavailableError(f"cannot produce to {topic}: {exc}") from exc
    producer.flush(15.0)
    if failures or not delivered:
        reason = failures[0] if failures else "no acknowledgement within 15 s"
        raise DeadLetterUnavailableError(f"{topic} did not take the message: {reason}")
    message = delivered[0]
    return message.partition() or 0, message.offset() or 0


@router.post(
    "/{letter_id}/redrive",
    response_model=RedriveResult,
    summary="Put a dead letter's message back on its source topic (once)",
    dependencies=[requires(Role.OPERATOR, command="dlq.redrive")],
    responses=problems(409),
)
async def redrive(
    letter_id: LetterId, command: Command, stores: Stores, index: Index
) -> RedriveResult:
    """Produce the original key, value and headers to the source topic and partition.

    The letter is locked (``SELECT ... FOR UPDATE``) from the read to the mark, so concurrent
    re-drives of one letter send one message; a re-drive of a letter already re-driven answers
    the first result with ``replayed: true``.
    """
    command.set_target(letter_id)
    partition, offset = _parse_id(letter_id)
    await index.sync(stores)
    select = index.statement(
        "SELECT source_topic, source_partition, message_key, payload, headers, redriven_at, "
        "redriven_by, redrive_partition, redrive_offset FROM {s}.dead_letters "
        "WHERE dlq_partition = %s AND dlq_offset = %s AND tenant_id = %s FOR UPDATE"
    )
    mark = index.statement(
        "UPDATE {s}.dead_letters SET redriven_at = now(), redriven_by = %s, "
        "redrive_request_id = %s, redrive_partition = %s, redrive_offset = %s "
        "WHERE dlq_partition = %s AND dlq_offset = %s RETURNING redriven_at"
    )
    who = command.principal.subject
    async with pg_connection(stores) as conn, conn.transaction():
        cur = await conn.cursor(row_factory=dict_row).execute(
            select, (partition, offset, command.tenant_id)
        )
        row = await cur.fetchone()
        if row is None:
            raise ReadModelNotFoundError("DeadLetter", letter_id)
        topic = row["source_topic"]
        if row["redriven_at"] is not None:
            return RedriveResult(
                letter_id=letter_id,
                topic=topic,
                partition=row["redrive_partition"],
                offset=row["redrive_offset"],
                redriven_at=row["redriven_at"],
                redriven_by=row["redriven_by"],
                replayed=True,
            )
        if not await run_in_threadpool(index.redrivable, topic):
            raise DeadLetterNotRedrivableError(letter_id, topic)
        headers = [(name, value.encode()) for name, value in row["headers"]]
        headers.append((REDRIVEN_FROM, letter_id.encode()))
        key = bytes(row["message_key"]) if row["message_key"] is not None else None
        landed = await run_in_threadpool(
            _produce,
            index.producer(),
            topic,
            row["source_partition"],
            key,
            bytes(row["payload"]),
            headers,
        )
        done = await conn.execute(mark, (who, command.request_id, *landed, partition, offset))
        marked = await done.fetchone()
    assert marked is not None
    return RedriveResult(
        letter_id=letter_id,
        topic=topic,
        partition=landed[0],
        offset=landed[1],
        redriven_at=marked[0],
        redriven_by=who,
        replayed=False,
    )
