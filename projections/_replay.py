"""Rebuilding a read model from Kafka into a fresh copy, then swapping it in atomically.

``replay("postgres", ...)`` builds schema ``<schema>__replay``; ``replay("opensearch", ...)``
builds a new generation of each index; ``replay("redis", ...)`` builds keys under a staging
prefix and renames them over the live ones in one script, moving the read model's epoch on.
Each reads every partition from the beginning (or from ``since``) up to the end offsets taken
at the start, verifies the copy, then swaps it in while the live projection keeps serving:
PostgreSQL renames schemas in one transaction and Redis renames keys in one script (the live
writer's next flush sees foreign offsets and re-seeks to them); OpenSearch moves every alias in
one ``_aliases`` call, then reads once more up to the new end, so documents the live writer put
in the old indices meanwhile are in the new ones too.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
import redis
from confluent_kafka import KafkaException

from omium.kernel.errors import ConfigurationError, PersistenceError
from omium.kernel.kafka import EventCodec, admin_client
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.projections._registry import KINDS, topics_of
from omium.projections.base import EventSource, Projection, ProjectionRunner
from omium.projections.base.errors import ProjectionError, ProjectionStoreError, TopicPartition
from omium.projections.opensearch import READ_MODELS, OpenSearchClient, OpenSearchProjection, alias
from omium.projections.postgres import PostgresProjection, connect, migrate, schema_for
from omium.projections.redis import RedisKeys, RedisProjection


@dataclass
class ReplayProgress:
    """Where a replay is.

    Attributes:
        events: Events read so far.
        lag: Messages still to read up to the end offsets.
        total: Messages to read in all (first lag measured).
        rate: Events per second since the start.
        elapsed_s: Seconds since the start.
        eta_s: Seconds left at the rate so far (``None`` before anything was read).
        workers: Writers loading in parallel.
    """

    events: int
    lag: int
    total: int
    rate: float
    elapsed_s: float
    eta_s: float | None = None
    workers: int = 1


@dataclass
class ReplayReport:
    """The outcome of a replay.

    Attributes:
        projection: Which read model.
        events: Events read.
        elapsed_s: Wall time of the rebuild: load and deferred indexes (not the swap).
        rate: Events per second.
        counts: Rows or documents per table/index in the new copy.
        live_counts: The same in the copy it replaced (empty if there was none).
        swapped_to: The new schema or indices.
        workers: Writers that loaded it in parallel.
    """

    projection: str
    events: int
    elapsed_s: float
    rate: float
    counts: dict[str, int]
    live_counts: dict[str, int] = field(default_factory=dict)
    swapped_to: str = ""
    workers: int = 1


class ReplayVerificationError(ProjectionError):
    """The rebuilt copy is not complete; it was not swapped in.

    Attributes:
        problems: What failed.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("replay verification failed: " + "; ".join(problems))


class Rebuild(ABC):
    """How one kind of store builds, checks and swaps in a fresh copy.

    ``open_target`` makes the empty copy once; ``writer`` opens one projection on it per
    parallel worker; ``finish_load`` runs after the load (indexes) and before verify and swap.
    """

    can_keep_old = True
    """Whether the replaced copy can be kept beside the new one (``keep_old``)."""

    @abstractmethod
    def open_target(self) -> None:
        """Make a new, empty copy."""

    @abstractmethod
    def writer(self) -> Projection:
        """A projection writing into the copy (one per worker, each with its own connection)."""

    def finish_load(self) -> None:  # noqa: B027 - optional hook
        """Work deferred until everything is loaded (building secondary indexes)."""

    @abstractmethod
    def counts(self, *, live: bool) -> dict[str, int]:
        """Rows/documents per table/index of the new copy (or of the live one)."""

    @abstractmethod
    def swap(self, runners: list[ProjectionRunner], *, keep_old: bool) -> str:
        """Put the new copy in place of the live one; return its name."""

    def verify(self, runners: list[ProjectionRunner]) -> list[str]:
        """Problems that forbid the swap (none: go ahead).

        Caught up means every partition's position reached the end offsets; a runner checks
        that only after a flush, so everything read is also written.
        """
        behind = [r for r in runners if not r.source.caught_up()]
        return [f"{len(behind)} worker(s) did not reach the end offsets"] if behind else []


class PostgresRebuild(Rebuild):
    """A fresh schema ``<live>__replay``, renamed over the live one in one transaction."""

    def __init__(self, settings: OmiumSettings) -> None:
        self._dsn = settings.postgres.dsn()
        self.live = schema_for(settings.kafka.topic_prefix)
        self.target = f"{self.live[:50]}__replay"
        self._indexes: list[str] = []

    def open_target(self) -> None:
        """Drop a leftover copy, migrate a new one, and drop its secondary indexes for now.

        Only the primary keys stay (the upserts need them); the other indexes are built once,
        after the load, by ``finish_load``: one sort per index instead of one insert per row.
        """
        with connect(self._dsn) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.target} CASCADE")
            migrate(conn, self.target)
            rows = conn.execute(_SECONDARY_INDEXES, (self.target, self.target)).fetchall()
            self._indexes = [definition for _, definition in rows]
            for name, _ in rows:
                conn.execute(f"DROP INDEX {self.target}.{name}")

    def writer(self) -> Projection:
        """A projection on the copy; its commits need not wait for the WAL flush.

        Losing the last commits of a copy nobody reads yet costs nothing: the rows and their
        offsets go together, so a replay that is run again starts where the copy ends.
        """
        projection = PostgresProjection.open(self._dsn, schema=self.target, run_migrations=False)
        projection.connection.execute("SET synchronous_commit = off")
        return projection

    def finish_load(self) -> None:
        """Build the secondary indexes dropped by ``open_target``."""
        try:
            with connect(self._dsn) as conn:
                conn.execute("SET maintenance_work_mem = '256MB'")
                for definition in self._indexes:
                    conn.execute(definition)
                conn.execute(f"ANALYZE {', '.join(self._tables(conn))}")
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"indexing {self.target} failed: {exc}") from exc

    def _tables(self, conn: psycopg.Connection[Any]) -> list[str]:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.target,),
        ).fetchall()
        return [f"{self.target}.{r[0]}" for r in rows]

    def counts(self, *, live: bool) -> dict[str, int]:
        """Rows per table (``projection_offsets`` and ``schema_migrations`` left out)."""
        schema = self.live if live else self.target
        with connect(self._dsn) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                    "AND table_name NOT IN ('projection_offsets', 'schema_migrations') "
                    "ORDER BY 1",
                    (schema,),
                )
            ]
            return {t: _count(conn, f"SELECT count(*) FROM {schema}.{t}") for t in tables}

    def swap(self, runners: list[ProjectionRunner], *, keep_old: bool) -> str:
        """Rename schemas in one transaction, after the live writer's current batch."""
        old = f"{self.live[:40]}__old_{int(time.time())}"
        try:
            with connect(self._dsn, autocommit=False) as conn, conn.transaction():
                live_exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.live,)
                ).fetchone()
                if live_exists:
                    # Waits for a live flush in flight and holds the next until the commit.
                    conn.execute(
                        f"LOCK TABLE {self.live}.projection_offsets IN ACCESS EXCLUSIVE MODE"
                    )
                    conn.execute(f"ALTER SCHEMA {self.live} RENAME TO {old}")
                conn.execute(f"ALTER SCHEMA {self.target} RENAME TO {self.live}")
                if live_exists and not keep_old:
                    conn.execute(f"DROP SCHEMA {old} CASCADE")
        except psycopg.Error as exc:
            raise ProjectionStoreError(f"swapping {self.target} in failed: {exc}") from exc
        return self.live


_SECONDARY_INDEXES = (
    "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
    "WHERE n.nspname = %s AND c.conname = i.indexname) ORDER BY i.indexname"
)


def _count(conn: psycopg.Connection[Any], sql: str) -> int:
    row = conn.execute(sql).fetchone()  # type: ignore[call-overload, unused-ignore]
    return int(row[0]) if row else 0


class OpenSearchRebuild(Rebuild):
    """New indices ``<alias>-r<time>`` for every read model; all aliases moved in one call."""

    def __init__(self, settings: OmiumSettings) -> None:
        self._url = settings.opensearch.url
        self._client = OpenSearchClient(self._url)
        self._prefix = settings.kafka.topic_prefix.lower()
        generation = f"r{int(time.time() * 1000)}"
        self.targets = {m: f"{alias(self._prefix, m)}-{generation}" for m in READ_MODELS}

    def open_target(self) -> None:
        """Install templates, create the new indices (not yet behind the aliases)."""
        self._client.install(self._prefix)
        for index in self.targets.values():
            self._client.create_index(index)

    def writer(self) -> Projection:
        """A projection writing into the new indices."""
        return OpenSearchProjection(
            OpenSearchClient(self._url), prefix=self._prefix, targets=self.targets
        )

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

    def swap(self, runners: list[ProjectionRunner], *, keep_old: bool) -> str:
        """Move every alias at once, then read up to the new end offsets."""
        actions: list[dict[str, Any]] = []
        old: list[str] = []
        for model, index in self.targets.items():
            name = alias(self._prefix, model)
            current = self._client.alias_targets(name)
            old += current
            actions += [{"remove": {"index": i, "alias": name}} for i in current]
            actions.append({"add": {"index": index, "alias": name, "is_write_index": True}})
        self._client.update_aliases(actions)
        # Whatever the live writer put in the old indices until now is in Kafka below the new
        # end offsets: reading up to them puts it in the new indices too (same document ids).
        for runner in runners:
            runner.source.refresh_end_offsets()
            runner.run(until=lambda r: r.source.caught_up())
        if not keep_old:
            for index in old:
                self._client.delete_index(index)
        return ",".join(self.targets.values())


# Atomic (a script runs alone): every live key goes, every staged key takes its live name, and
# the epoch moves on. Keys are collected before they are touched, so SCAN never sees a key
# it has renamed. Redis answers nobody else meanwhile: ~1 s per million keys.
_REDIS_SWAP = """
local live, staged, live_pattern, staged_pattern = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function collect(pattern)
  local found, cursor = {}, '0'
  repeat
    local reply = redis.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = reply[1]
    for _, key in ipairs(reply[2]) do found[#found + 1] = key end
  until cursor == '0'
  return found
end
local old = collect(live_pattern)
for _, key in ipairs(old) do redis.call('UNLINK', key) end
local new = collect(staged_pattern)
for _, key in ipairs(new) do
  redis.call('RENAME', key, live .. string.sub(key, #staged + 1))
end
redis.call('SET', live .. ':epoch', ARGV[5])
return {#old, #new}
"""


class RedisRebuild(Rebuild):
    """Keys ``<prefix>:rm~<epoch>:*``, renamed over the live ones by one script.

    The live writer's next batch meets the rebuild's offsets and re-seeks to them (its script
    checks them), so nothing it applied meanwhile is lost. Stream entry ids start again, so
    the epoch goes up by one and subscribers holding a cursor of the old one are told to
    resync (gateway ``read_stream``). Expiries count from each event's time, so runs that ended
    long ago are not brought back.
    """

    can_keep_old = False  # the new keys take the old ones' names

    def __init__(self, settings: OmiumSettings) -> None:
        self._client = redis.Redis.from_url(
            settings.redis.url, decode_responses=True, socket_timeout=120
        )
        self._url = settings.redis.url
        self._topic_prefix = settings.kafka.topic_prefix
        self.live = RedisKeys.for_prefix(self._topic_prefix)
        self.epoch = 0
        self.target = RedisKeys.staging(self._topic_prefix, 0)

    def open_target(self) -> None:
        """Choose the next epoch and drop a leftover copy of it."""
        try:
            self.epoch = int(self._client.get(self.live.epoch) or 0) + 1
            self.target = RedisKeys.staging(self._topic_prefix, self.epoch)
            for batch in _batched(self._client.scan_iter(self.target.pattern(), count=1000)):
                self._client.unlink(*batch)
        except redis.RedisError as exc:
            raise ProjectionStoreError(f"preparing the Redis rebuild failed: {exc}") from exc

    def writer(self) -> Projection:
        """A projection writing the staged keys."""
        client = redis.Redis.from_url(self._url, decode_responses=True, socket_timeout=30)
        return RedisProjection(client, keys=self.target, ages_from_events=True)

    def counts(self, *, live: bool) -> dict[str, int]:
        """Keys per kind (``exec``, ``running``, ``exec-events``, ``round``, ``events``, ...)."""
        keys = self.live if live else self.target
        found: dict[str, int] = {}
        try:
            for key in self._client.scan_iter(keys.pattern(), count=1000):
                kind = str(key)[len(keys.prefix) + 1 :].split(":", 1)[0]
                if kind not in ("seen", "offsets", "epoch"):
                    found[kind] = found.get(kind, 0) + 1
        except redis.RedisError as exc:
            raise ProjectionStoreError(f"counting Redis keys failed: {exc}") from exc
        return dict(sorted(found.items()))

    def swap(self, runners: list[ProjectionRunner], *, keep_old: bool) -> str:
        """Replace the live keys by the staged ones and move the epoch on, atomically."""
        try:
            self._client.eval(
                _REDIS_SWAP,
                0,
                self.live.prefix,
                self.target.prefix,
                self.live.pattern(),
                self.target.pattern(),
                str(self.epoch),
            )
        except redis.RedisError as exc:
            raise ProjectionStoreError(f"swapping the Redis rebuild in failed: {exc}") from exc
        finally:
            self._client.close()
        return f"{self.live.prefix} (epoch {self.epoch})"


def _batched(keys: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


REBUILDS: dict[str, Callable[[OmiumSettings], Rebuild]] = {
    "postgres": PostgresRebuild,
    "opensearch": OpenSearchRebuild,
    "redis": RedisRebuild,
}
"""Read models that can be replayed. Timestream's series are append-only, so never swapped."""


def replay(
    name: str,
    settings: OmiumSettings,
    codec: EventCodec,
    *,
    since: datetime | None = None,
    keep_old: bool = False,
    max_batch: int = 2000,
    workers: int = 2,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    progress_every_s: float = 0.5,
) -> ReplayReport:
    """Rebuild the read model ``name`` from the topics and swap it in.

    The partitions are dealt round-robin to ``workers`` threads, each with its own consumer,
    projection and store connection, loading the copy in parallel (events of one aggregate share
    a partition, so workers never touch the same rows). Then deferred indexes are built, the copy
    is verified, and swapped in.

    Args:
        name: ``postgres``, ``opensearch`` or ``redis``.
        settings: Where everything is.
        codec: Decodes the events.
        since: Read from the first message at or after this time instead of the beginning.
        keep_old: Keep the replaced schema / indices (renamed) instead of dropping them.
        max_batch: Events per batch.
        workers: Parallel writers (at most one per partition).
        on_progress: Called from this thread every ``progress_every_s`` while loading.
        progress_every_s: Seconds between progress calls.

    Raises:
        ConfigurationError: The read model cannot be replayed.
        ReplayVerificationError: The copy is incomplete (it is left beside the live one).
        PersistenceError: Kafka or the store failed.
    """
    factory = REBUILDS.get(name)
    if factory is None:
        raise ConfigurationError(f"cannot replay {name!r}; replayable: {', '.join(REBUILDS)}")
    rebuild = factory(settings)
    if keep_old and not rebuild.can_keep_old:
        raise ConfigurationError(f"{name} cannot keep the replaced copy (keep_old)")
    rebuild.open_target()
    topics = topics_of(KINDS[name], settings.kafka)
    partitions = _partitions(settings.kafka, topics)
    count = max(1, min(workers, len(partitions)))
    runners: list[ProjectionRunner] = []
    try:
        for index in range(count):
            projection = rebuild.writer()
            try:
                source = EventSource.replay(
                    settings.kafka,
                    codec,
                    topics=topics,
                    since=since,
                    partitions=partitions[index::count],
                )
            except BaseException:
                projection.close()
                raise
            runners.append(
                ProjectionRunner(projection, source, max_batch=max_batch, poll_timeout_s=0.5)
            )
        started = time.monotonic()
        total = sum(r.source.lag() for r in runners)
        _load(runners, started, total, on_progress, progress_every_s)
        rebuild.finish_load()
        elapsed = time.monotonic() - started
        events = sum(r.events_total for r in runners)
        problems = rebuild.verify(runners)
        if problems:
            raise ReplayVerificationError(problems)
        live_counts = rebuild.counts(live=True)
        counts = rebuild.counts(live=False)
        swapped = rebuild.swap(runners, keep_old=keep_old)
        return ReplayReport(
            projection=name,
            events=events,
            elapsed_s=elapsed,
            rate=events / max(elapsed, 1e-6),
            counts=counts,
            live_counts=live_counts,
            swapped_to=swapped,
            workers=count,
        )
    finally:
        for runner in runners:
            runner.close()


def _load(
    runners: list[ProjectionRunner],
    started: float,
    total: int,
    on_progress: Callable[[ReplayProgress], None] | None,
    every_s: float,
) -> None:
    """Run every runner in its own thread up to its end offsets; report progress meanwhile."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def work(runner: ProjectionRunner) -> None:
        try:
            runner.run(stop=stop, until=lambda r: r.source.caught_up())
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=work, args=(r,), name=f"replay-{i}", daemon=True)
        for i, r in enumerate(runners)
    ]
    for thread in threads:
        thread.start()
    try:
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(every_s / len(threads))
            if on_progress is not None:
                on_progress(_progress(runners, started, total))
    except BaseException:
        stop.set()
        raise
    finally:
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    if on_progress is not None:
        on_progress(_progress(runners, started, total))


def _progress(runners: list[ProjectionRunner], started: float, total: int) -> ReplayProgress:
    elapsed = time.monotonic() - started
    events = sum(r.events_total for r in runners)
    # Positions are read by this thread while the workers poll: librdkafka allows it.
    lag = sum(r.source.lag() for r in runners)
    rate = events / max(elapsed, 1e-6)
    done = total - lag
    eta = lag * elapsed / done if done > 0 else None
    return ReplayProgress(
        events=events,
        lag=lag,
        total=total,
        rate=rate,
        elapsed_s=elapsed,
        eta_s=eta,
        workers=len(runners),
    )


def _partitions(kafka: KafkaSettings, topics: list[str]) -> list[TopicPartition]:
    """Every ``(topic, partition)`` of ``topics``, from the cluster's metadata."""
    try:
        metadata = admin_client(kafka).list_topics(timeout=15)
    except KafkaException as exc:
        raise PersistenceError(f"cannot list topics: {exc}") from exc
    found: list[TopicPartition] = []
    for topic in topics:
        described = metadata.topics.get(topic)
        if described is None or described.error is not None:
            raise PersistenceError(f"topic {topic} cannot be replayed: it does not exist")
        found += [(topic, p) for p in sorted(described.partitions)]
    return found
