"""Rebuilding a read model from Kafka into a fresh copy, then swapping it in atomically.

``replay("postgres", ...)`` builds schema ``<schema>__replay``; ``replay("opensearch", ...)``
builds a new generation of each index. Both read every partition from the beginning (or from
``since``) up to the end offsets taken at the start, verify the copy, then swap it in while the
live projection keeps serving: PostgreSQL renames schemas in one transaction (the live writer's
next flush sees foreign offsets and re-seeks to them); OpenSearch moves every alias in one
``_aliases`` call, then reads once more up to the new end, so documents the live writer put in
the old indices meanwhile are in the new ones too.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from omium.kernel.errors import ConfigurationError
from omium.kernel.kafka import EventCodec
from omium.kernel.settings import OmiumSettings
from projections._registry import topics_of
from projections.base import EventSource, Projection, ProjectionRunner
from projections.base.errors import ProjectionError, ProjectionStoreError
from projections.opensearch import READ_MODELS, OpenSearchClient, OpenSearchProjection, alias
from projections.postgres import PostgresProjection, connect, schema_for


@dataclass
class ReplayProgress:
    """Where a replay is.

    Attributes:
        events: Events read so far.
        lag: Messages still to read up to the end offsets.
        total: Messages to read in all (first lag measured).
        rate: Events per second since the start.
        elapsed_s: Seconds since the start.
    """

    events: int
    lag: int
    total: int
    rate: float
    elapsed_s: float


@dataclass
class ReplayReport:
    """The outcome of a replay.

    Attributes:
        projection: Which read model.
        events: Events read.
        elapsed_s: Wall time of the rebuild (before the swap).
        rate: Events per second.
        counts: Rows or documents per table/index in the new copy.
        live_counts: The same in the copy it replaced (empty if there was none).
        swapped_to: The new schema or indices.
    """

    projection: str
    events: int
    elapsed_s: float
    rate: float
    counts: dict[str, int]
    live_counts: dict[str, int] = field(default_factory=dict)
    swapped_to: str = ""


class ReplayVerificationError(ProjectionError):
    """The rebuilt copy is not complete; it was not swapped in.

    Attributes:
        problems: What failed.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("replay verification failed: " + "; ".join(problems))


class Rebuild(ABC):
    """How one kind of store builds, checks and swaps in a fresh copy."""

    @abstractmethod
    def open_target(self) -> Projection:
        """A projection writing into a new, empty copy."""

    @abstractmethod
    def counts(self, *, live: bool) -> dict[str, int]:
        """Rows/documents per table/index of the new copy (or of the live one)."""

    @abstractmethod
    def swap(self, runner: ProjectionRunner, *, keep_old: bool) -> str:
        """Put the new copy in place of the live one; return its name."""

    def verify(self, runner: ProjectionRunner) -> list[str]:
        """Problems that forbid the swap (none: go ahead).

        Caught up means every partition's position reached the end offsets; the runner checks
        that only after a flush, so everything read is also written.
        """
        return [] if runner.source.caught_up() else ["did not reach the end offsets"]


class PostgresRebuild(Rebuild):
    """A fresh schema ``<live>__replay``, renamed over the live one in one transaction."""

    def __init__(self, settings: OmiumSettings) -> None:
        self._dsn = settings.postgres.dsn()
        self.live = schema_for(settings.kafka.topic_prefix)
        self.target = f"{self.live[:50]}__replay"

    def open_target(self) -> Projection:
        """Drop a leftover copy, migrate a new one."""
        with connect(self._dsn) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.target} CASCADE")
        return PostgresProjection.open(self._dsn, schema=self.target)

    def counts(self, *, live: bool) -> dict[str, int]:
        """Rows per table (``projection_offsets`` and ``schema_migrations`` left out)."""
        schema = self.live if live else self.target
        with connect(self._dsn) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_name NOT IN ('projection_offsets', 'schema_migrations') "
                "ORDER BY 1", (schema,))]
            return {t: _count(conn, f"SELECT count(*) FROM {schema}.{t}") for t in tables}

    def swap(self, runner: ProjectionRunner, *, keep_old: bool) -> str:
        """Rename schemas in one transaction, after the live writer's current batch."""
        old = f"{self.live[:40]}__old_{int(time.time())}"
        try:
            with connect(self._dsn, autocommit=False) as conn, conn.transaction():
                live_exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                           (self.live,)).fetchone()
                if live_exists:
                    # Waits for a live flush in flight and holds the next until the commit.
                    conn.execute(f"LOCK TABLE {self.live}.projection_offsets "
                                 "IN ACCESS EXCLUSIVE MODE")
                    conn.execute(f"ALTER SCHEMA {self.live} RENAME TO {old}")
                conn.execute(f"ALTER SCHEMA {self.target} RENAME TO {self.live}")
                if live_exists and not keep_old:
                    conn.execute(f"DROP SCHEMA {old} CASCADE")
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"swapping {self.target} in failed: {exc}") from exc
        return self.live


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()  # type: ignore[call-overload]
    return int(row[0]) if row else 0


class OpenSearchRebuild(Rebuild):
    """New indices ``<alias>-r<time>`` for every read model; all aliases moved in one call."""

    def __init__(self, settings: OmiumSettings) -> None:
        self._url = settings.opensearch.url
        self._client = OpenSearchClient(self._url)
        self._prefix = settings.kafka.topic_prefix.lower()
        generation = f"r{int(time.time() * 1000)}"
        self.targets = {m: f"{alias(self._prefix, m)}-{generation}" for m in READ_MODELS}

    def open_target(self) -> Projection:
        """Install templates, create the new indices (not yet behind the aliases)."""
        self._client.install(self._prefix)
        for index in self.targets.values():
            self._client.create_index(index)
        return OpenSearchProjection(OpenSearchClient(self._url), prefix=self._prefix,
                                    targets=self.targets)

    def counts(self, *, live: bool) -> dict[str, int]:
        """Documents per read model."""
        found = {}
        for model in READ_MODELS:
            target = alias(self._prefix, model) if live else self.targets[model]
            if live and not self._client.alias_targets(target):
                continue
            self._client.refresh(target)
            found[model] = self._client.count(target)
        return found

    def swap(self, runner: ProjectionRunner, *, keep_old: bool) -> str:
        """Move every alias at once, then read up to the new end offsets."""
        actions: list[dict[str, Any]] = []
        old: list[str] = []
        for model, index in self.targets.items():
            name = alias(self._prefix, model)
            current = self._client.alias_targets(name)
            old += current
            actions += [{"remove": {"index": i, "alias": name}} for i in current]
            actions.append({"add": {"index": index, "alias": name, "is_write_index": True}})
        self._client.request("POST", "/_aliases", body={"actions": actions})
        # Whatever the live writer put in the old indices until now is in Kafka below the new
        # end offsets: reading up to them puts it in the new indices too (same document ids).
        runner.source.refresh_end_offsets()
        runner.run(until=lambda r: r.source.caught_up())
        if not keep_old:
            for index in old:
                self._client.delete_index(index)
        return ",".join(self.targets.values())


REBUILDS: dict[str, Callable[[OmiumSettings], Rebuild]] = {
    "postgres": PostgresRebuild,
    "opensearch": OpenSearchRebuild,
}
"""Read models that can be replayed. Redis holds live state only (rebuilt by its projection)
and Timestream's series are append-only, so neither is swapped."""


def replay(
    name: str,
    settings: OmiumSettings,
    codec: EventCodec,
    *,
    since: datetime | None = None,
    keep_old: bool = False,
    max_batch: int = 2000,
    on_progress: Callable[[ReplayProgress], None] | None = None,
) -> ReplayReport:
    """Rebuild the read model ``name`` from the topics and swap it in.

    Args:
        name: ``postgres`` or ``opensearch``.
        settings: Where everything is.
        codec: Decodes the events.
        since: Read from the first message at or after this time instead of the beginning.
        keep_old: Keep the replaced schema / indices (renamed) instead of dropping them.
        max_batch: Events per batch.
        on_progress: Called after every batch.

    Raises:
        ConfigurationError: The read model cannot be replayed.
        ReplayVerificationError: The copy is incomplete (it is left beside the live one).
        PersistenceError: Kafka or the store failed.
    """
    factory = REBUILDS.get(name)
    if factory is None:
        raise ConfigurationError(f"cannot replay {name!r}; replayable: {', '.join(REBUILDS)}")
    rebuild = factory(settings)
    projection = rebuild.open_target()
    source = EventSource.replay(settings.kafka, codec, topics=topics_of(projection,
                                                                          settings.kafka),
                                since=since)
    runner = ProjectionRunner(projection, source, max_batch=max_batch, poll_timeout_s=0.5)
    try:
        started, total = time.monotonic(), source.lag()

        def progress(_: object) -> None:
            if on_progress is not None:
                elapsed = time.monotonic() - started
                on_progress(ReplayProgress(events=runner.events_total, lag=source.lag(),
                                           total=total, elapsed_s=elapsed,
                                           rate=runner.events_total / max(elapsed, 1e-6)))

        runner.run(until=lambda r: r.source.caught_up(), on_batch=progress)
        elapsed = time.monotonic() - started
        problems = rebuild.verify(runner)
        if problems:
            raise ReplayVerificationError(problems)
        live_counts = rebuild.counts(live=True)
        counts = rebuild.counts(live=False)
        swapped = rebuild.swap(runner, keep_old=keep_old)
        return ReplayReport(projection=name, events=runner.events_total, elapsed_s=elapsed,
                            rate=runner.events_total / max(elapsed, 1e-6), counts=counts,
                            live_counts=live_counts, swapped_to=swapped)
    finally:
        runner.close()
