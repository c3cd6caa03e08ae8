"""The event store's side: which aggregates are in scope, and their chains re-encoded.

The event store keeps the domain events, not their Avro encodings: the hash chain is computed by
the relay, as a pure function of the stored events. Re-encoding an aggregate's stored events with
the relay's own encoder (skipping what it would dead-letter) gives exactly the hashes the relay
published; an edited stored event gives different ones from its version on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
from psycopg import sql

from omium.commands.errors import NotFoundError
from omium.commands.relay import (
    CHAIN_HEADS_TABLE,
    BatchEncoder,
    ChainLink,
    LogSource,
    UnmappableEventError,
)
from omium.commands.verify._report import BreakKind, ChainBreak, VerifyScope, Where
from omium.commands.verify.errors import HistoryUnavailableError
from omium.kernel.events import FIRST_AGGREGATE_VERSION, GENESIS_HASH

LAST_VERSION = 2**62
"""An upper bound for ``select_events`` (the library's versions are bigint)."""


@dataclass
class StoredChain:
    """One aggregate's stored history, re-encoded as the relay encodes it.

    Attributes:
        aggregate_id: The aggregate.
        application: The command application storing it.
        versions: Stored versions, in order.
        hashes: Each mappable event's hash.
        chain: The chain's hash after each version (an unmappable one keeps the previous hash,
            as the relay's chain head does when it dead-letters).
        unmappable: Versions the relay could not encode, with the reason.
        gap: The store's own version gap, if any (a deleted row).
    """

    aggregate_id: str
    application: str
    versions: list[int] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)
    chain: dict[int, str] = field(default_factory=dict)
    unmappable: dict[int, str] = field(default_factory=dict)
    gap: ChainBreak | None = None

    @property
    def last_version(self) -> int:
        """The newest stored version (0 when nothing is stored)."""
        return self.versions[-1] if self.versions else 0


class EventStoreReader:
    """Finds the aggregates in scope and re-encodes their stored histories.

    Args:
        dsn: libpq connection string of the event store's database.
        schema: The event store schema (events tables and the relay's chain heads).
        sources: Every command application's log, each decoding its own events.
        batches: The relay's encoder (same catalog and mappings as the relay).
    """

    def __init__(
        self, dsn: str, *, schema: str, sources: list[LogSource], batches: BatchEncoder
    ) -> None:
        """Remember the store; connections are opened per call."""
        self._dsn = dsn
        self._schema = schema
        self._sources = sources
        self._batches = batches

    def aggregates(self, scope: VerifyScope) -> dict[str, LogSource]:
        """The aggregates in scope, each with the log it is stored in.

        Raises:
            NotFoundError: The scope's run does not exist (or is another tenant's).
            HistoryUnavailableError: The event store cannot be read.
        """
        found: dict[str, LogSource] = {}
        with self._connect() as conn:
            if scope.execution_id is not None:
                return self._run(conn, scope.execution_id, scope.tenant_id)
            for source in self._sources:
                for aggregate_id in self._ids(conn, source, scope.tenant_id):
                    found[aggregate_id] = source
        return found

    def chain_heads(self, aggregate_ids: list[str]) -> dict[str, ChainLink]:
        """The relay's chain heads of these aggregates (none when the relay never ran here)."""
        if not aggregate_ids:
            return {}
        table = sql.Identifier(self._schema, CHAIN_HEADS_TABLE)
        with self._connect() as conn:
            exists = conn.execute(
                "SELECT to_regclass(%s)", (f'"{self._schema}"."{CHAIN_HEADS_TABLE}"',)
            ).fetchone()
            if exists is None or exists[0] is None:
                return {}
            rows = conn.execute(
                sql.SQL(
                    "SELECT aggregate_id, aggregate_version, hash FROM {} "
                    "WHERE aggregate_id = ANY(%s)"
                ).format(table),
                (aggregate_ids,),
            ).fetchall()
        return {str(a): ChainLink(int(str(v)), str(h)) for a, v, h in rows}

    def walk(self, aggregate_id: str, source: LogSource) -> StoredChain:
        """Re-encode one aggregate's stored events in version order, continuing its chain.

        Raises:
            EventStoreError: The event store cannot be read.
        """
        chain = StoredChain(aggregate_id, source.name)
        prev_hash = GENESIS_HASH
        expected = FIRST_AGGREGATE_VERSION
        for stored in source.history(aggregate_id, up_to=LAST_VERSION):
            version = stored.originator_version
            if version != expected and chain.gap is None:
                chain.gap = ChainBreak(
                    where=Where.EVENT_STORE,
                    kind=BreakKind.VERSION_GAP,
                    aggregate_id=aggregate_id,
                    aggregate_version=version,
                    expected=f"version {expected}",
                    found=f"version {version}",
                    detail=f"a stored event is missing from {source.table}",
                )
            chain.versions.append(version)
            try:
                encoded = self._batches.encode_stored(source, stored, prev_hash)
            except UnmappableEventError as exc:
                chain.unmappable[version] = str(exc)
            else:
                prev_hash = chain.hashes[version] = encoded.hash
            chain.chain[version] = prev_hash
            expected = version + 1
        return chain

    def _run(
        self, conn: psycopg.Connection[tuple[object, ...]], run: UUID, tenant_id: str | None
    ) -> dict[str, LogSource]:
        executions, consensus = self._source("executions"), self._source("consensus")
        first = executions.history(run, up_to=FIRST_AGGREGATE_VERSION)
        if not first or (tenant_id is not None and _tenant_of(first[0].state) != tenant_id):
            raise NotFoundError(run, aggregate_type="Execution")
        found = {str(run): executions}
        # Rounds name their run in their first event; a text search narrows the candidates
        # and the application's own decoding confirms them.
        rows = conn.execute(
            sql.SQL(
                "SELECT originator_id FROM {} WHERE originator_version = 1 "
                "AND (position(%s::bytea in state) > 0 OR position(%s::bytea in state) > 0)"
            ).format(sql.Identifier(self._schema, consensus.table)),
            (run.hex.encode(), str(run).encode()),
        ).fetchall()
        for (round_id,) in rows:
            opened = consensus.history(str(round_id), up_to=FIRST_AGGREGATE_VERSION)
            if opened and getattr(consensus.decode(opened[0]), "execution_id", None) == run:
                found[str(round_id)] = consensus
        return found

    def _ids(
        self, conn: psycopg.Connection[tuple[object, ...]], source: LogSource, tenant_id: str | None
    ) -> Iterator[str]:
        table = sql.Identifier(self._schema, source.table)
        if tenant_id is None:
            query = sql.SQL("SELECT DISTINCT originator_id FROM {} ORDER BY 1").format(table)
            for (aggregate_id,) in conn.execute(query):
                yield str(aggregate_id)
            return
        # The tenant is in every event's state; the first event's is the aggregate's.
        query = sql.SQL(
            "SELECT originator_id, state FROM {} WHERE originator_version = 1 "
            "AND position(%s::bytea in state) > 0 ORDER BY 1"
        ).format(table)
        for aggregate_id, state in conn.execute(query, (json.dumps(tenant_id).encode(),)):
            if isinstance(state, bytes) and _tenant_of(state) == tenant_id:
                yield str(aggregate_id)

    def _source(self, area: str) -> LogSource:
        return next(s for s in self._sources if s.table.startswith(area))

    @contextmanager
    def _connect(self) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        try:
            with psycopg.connect(self._dsn, connect_timeout=5) as conn:
                yield conn
        except psycopg.Error as exc:
            raise HistoryUnavailableError(f"cannot read the event store: {exc}") from exc


def _tenant_of(state: bytes) -> str | None:
    """The ``tenant_id`` of a stored event's JSON state (``None`` if it has none or is not JSON)."""
    try:
        document = json.loads(state)
    except ValueError:
        return None
    tenant = document.get("tenant_id") if isinstance(document, Mapping) else None
    return tenant if isinstance(tenant, str) else None
