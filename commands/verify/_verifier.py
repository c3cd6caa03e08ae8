"""``HistoryVerifier``: the event store and the Kafka topics, each checked and compared.

Order of reading, chosen so a history that is being written while it is verified gives no false
alarm: the relay's chain heads first (everything they count was committed on Kafka before they
were stored), then Kafka (everything on it was stored before it was relayed), then the event
store (events are never deleted by Omium).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Self

from eventsourcing.postgres import PostgresApplicationRecorder

from omium.commands._persistence import EVENT_STORE_SCHEMA, event_store_env
from omium.commands._suite import CommandApplications
from omium.commands.relay import BatchEncoder, ChainLink, EventEncoder, LogSource, sources_of
from omium.commands.verify._kafka import KafkaChain, KafkaHistory, KafkaHistoryReader
from omium.commands.verify._report import BreakKind, ChainBreak, VerifyReport, VerifyScope, Where
from omium.commands.verify._store import EventStoreReader, StoredChain
from omium.commands.verify.errors import HistoryUnavailableError
from omium.kernel.kafka import Area, topic_name
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import KafkaSettings, OmiumSettings


def domain_topics(kafka: KafkaSettings, catalog: SchemaCatalog) -> list[str]:
    """The topics the relay publishes domain events to, under the configured prefix."""
    from omium.commands.relay import ALL_MAPPINGS

    areas = sorted({catalog.area_of(mapping.event_type) for mapping in ALL_MAPPINGS.values()})
    return [topic_name(kafka, area) for area in areas]


class HistoryVerifier:
    """Checks hash chains in the event store and on Kafka, and names the first broken link.

    Build it with :meth:`create` (or hand it command applications that are already open, as the
    gateway does); call :meth:`verify` for a scope.

    Args:
        applications: The command applications on the event store schema to verify.
        dsn: libpq connection string of the event store's database.
        schema: The event store schema.
        kafka: The cluster and topic prefix to read.
        catalog: The Avro schemas (the relay's).
        kafka_timeout_s: Longest reading the topics may take.
        owns_applications: Close ``applications`` with the verifier.
    """

    def __init__(
        self,
        applications: CommandApplications,
        *,
        dsn: str,
        schema: str,
        kafka: KafkaSettings,
        catalog: SchemaCatalog,
        kafka_timeout_s: float = 120.0,
        owns_applications: bool = False,
    ) -> None:
        """Wire the readers; nothing is read until :meth:`verify`."""
        self._apps = applications
        self._owns = owns_applications
        self._on_postgres = isinstance(
            applications.executions.recorder, PostgresApplicationRecorder
        )
        self._kafka = kafka
        self._catalog = catalog
        serde = AvroSerde(catalog)
        prefix = kafka.topic_prefix
        batches = BatchEncoder(EventEncoder(catalog), topic_prefix=prefix, schema=schema)
        self._store = EventStoreReader(
            dsn, schema=schema, sources=sources_of(applications), batches=batches
        )
        self._topics = KafkaHistoryReader(kafka, serde, timeout_s=kafka_timeout_s)

    @classmethod
    def create(
        cls, settings: OmiumSettings, *, schema: str = EVENT_STORE_SCHEMA, **options: float
    ) -> Self:
        """A verifier with its own (small) connection pools, from settings.

        Args:
            settings: PostgreSQL, Kafka (and its topic prefix), the schemas folder.
            schema: The event store schema.
            **options: ``kafka_timeout_s``.
        """
        env = event_store_env(
            settings, schema=schema, pool_size=1, max_overflow=1, aggregate_cache_size=0
        )
        return cls(
            CommandApplications.create(env),
            dsn=settings.postgres.dsn(),
            schema=schema,
            kafka=settings.kafka,
            catalog=SchemaCatalog.from_directory(settings.schemas_dir),
            owns_applications=True,
            **options,
        )

    def verify(
        self,
        scope: VerifyScope | None = None,
        *,
        store: bool = True,
        kafka: bool = True,
        topics: list[str] | None = None,
    ) -> VerifyReport:
        """Verify every chain in scope.

        Args:
            scope: A run, a tenant, or everything (the default).
            store: Check the event store (re-encode the stored events, compare with the relay's
                chain heads and, with ``kafka``, with what was published).
            kafka: Check the domain topics (read committed, from the beginning).
            topics: The domain topics to read; by default those of the configured prefix (a
                test points this at altered copies).

        Returns:
            The report; ``report.ok`` when nothing is broken.

        Raises:
            NotFoundError: The scope's run does not exist (or is not the scope's tenant's).
            HistoryUnavailableError: The event store or Kafka cannot be read.
            EventStoreError: The event store failed while reading a history.
        """
        if not self._on_postgres:
            raise HistoryUnavailableError("verification needs the PostgreSQL event store")
        scope = scope or VerifyScope()
        report = VerifyReport(scope=scope, checked_store=store, checked_kafka=kafka)
        in_scope = self._store.aggregates(scope)
        heads = self._store.chain_heads(sorted(in_scope)) if store else {}
        published = KafkaHistory()
        if kafka:
            published = self._topics.read(
                topics or domain_topics(self._kafka, self._catalog),
                dlq_topic=topic_name(self._kafka, Area.DLQ),
                aggregate_ids=in_scope if scope.execution_id is not None else None,
                tenant_id=scope.tenant_id,
            )
            report.kafka_events = published.events()
            report.kafka_duplicates = published.duplicates
            report.breaks += published.breaks
            report.dead_lettered = sum(len(v) for v in published.dead_lettered.values())
        if store:
            self._check_store(in_scope, heads, published if kafka else None, report)
        report.aggregates = len(set(in_scope) | set(published.chains))
        report.breaks = _first_per_chain(report.breaks)
        return report

    def close(self) -> None:
        """Close the command applications, if the verifier opened them."""
        if self._owns:
            self._apps.close()

    def __enter__(self) -> Self:
        """Use as a context manager that closes the verifier on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the verifier."""
        self.close()

    # Comparing -------------------------------------------------------------------------------

    def _check_store(
        self,
        in_scope: dict[str, LogSource],
        heads: dict[str, ChainLink],
        published: KafkaHistory | None,
        report: VerifyReport,
    ) -> None:
        kafka_only = {} if published is None else published.chains
        for aggregate_id in sorted(set(kafka_only) - set(in_scope)):
            events = kafka_only[aggregate_id].events
            # A stream processor's own events (VoteRejected, PolicyViolated ...) are not stored.
            if events and kafka_only[aggregate_id].emitted_by is None:
                version = min(events)
                report.breaks.append(_missing_in_store(aggregate_id, version, events[version].hash))
        for aggregate_id, source in in_scope.items():
            stored = self._store.walk(aggregate_id, source)
            report.store_events += len(stored.versions)
            head = heads.get(aggregate_id)
            relayed = head.aggregate_version if head is not None else 0
            report.unrelayed += sum(1 for v in stored.hashes if v > relayed)
            chain = None
            if published is not None:
                chain = published.chains.get(aggregate_id, KafkaChain(aggregate_id))
                dead = published.dead_lettered.get(aggregate_id, set())
                missing = _missing_on_kafka(stored, relayed, chain, dead)
                if missing is not None:
                    report.breaks.append(missing)
            found = _store_breaks(stored, head, chain)
            if found:
                report.breaks.append(min(found, key=lambda b: b.aggregate_version or 0))


def _store_breaks(
    stored: StoredChain, head: ChainLink | None, published: KafkaChain | None
) -> list[ChainBreak]:
    """Every candidate for the first break of one stored chain (the caller keeps the lowest)."""
    found = [] if stored.gap is None else [stored.gap]
    aggregate_id = stored.aggregate_id

    def broken(kind: BreakKind, version: int, expected: str, got: str, detail: str) -> None:
        found.append(
            ChainBreak(
                where=Where.EVENT_STORE,
                kind=kind,
                aggregate_id=aggregate_id,
                aggregate_version=version,
                expected=expected,
                found=got,
                detail=detail,
            )
        )

    if published is not None:
        stored_versions = set(stored.versions)
        for version in sorted(published.events):
            event = published.events[version]
            if version not in stored_versions:
                found.append(_missing_in_store(aggregate_id, version, event.hash))
                break
            if version in stored.unmappable:
                broken(
                    BreakKind.UNDECODABLE,
                    version,
                    event.hash,
                    stored.unmappable[version],
                    "the stored event no longer decodes, but the relay published it",
                )
                break
            if stored.hashes[version] != event.hash:
                broken(
                    BreakKind.HASH_MISMATCH,
                    version,
                    event.hash,
                    stored.hashes[version],
                    "the stored event re-encodes to another hash than the relay published: "
                    "it was changed after it was relayed",
                )
                break
    if head is not None:
        if head.aggregate_version > stored.last_version:
            broken(
                BreakKind.MISSING,
                stored.last_version + 1,
                f"stored events up to version {head.aggregate_version} (the relay's chain head)",
                f"the last stored version is {stored.last_version}",
                "stored events were deleted after they were relayed",
            )
        elif head.aggregate_version in stored.chain:
            recomputed = stored.chain[head.aggregate_version]
            if recomputed != head.hash:
                broken(
                    BreakKind.HASH_MISMATCH,
                    head.aggregate_version,
                    head.hash,
                    recomputed,
                    "the stored history re-encodes to another chain than the relay published; "
                    "an event at or before this version was changed",
                )
    return found


def _missing_on_kafka(
    stored: StoredChain, relayed: int, published: KafkaChain, dead: Iterable[int]
) -> ChainBreak | None:
    """The first relayed (per the chain head), encodable event that is not on Kafka."""
    skipped = set(dead) | set(stored.unmappable)
    for version in stored.versions:
        if version > relayed:
            return None
        if version not in published.events and version not in skipped:
            return ChainBreak(
                where=Where.KAFKA,
                kind=BreakKind.MISSING,
                aggregate_id=stored.aggregate_id,
                aggregate_version=version,
                expected=stored.hashes.get(version, "?"),
                found="no message",
                detail="the relay's chain head counts this event as published, "
                "but the topics do not have it",
            )
    return None


def _missing_in_store(aggregate_id: str, version: int, published_hash: str) -> ChainBreak:
    return ChainBreak(
        where=Where.EVENT_STORE,
        kind=BreakKind.MISSING,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        expected=published_hash,
        found="no stored event",
        detail="the relay published this event, but the event store does not have it",
    )


def _first_per_chain(breaks: list[ChainBreak]) -> list[ChainBreak]:
    """Keep the lowest-version break of each aggregate in each copy, in the order found."""
    first: dict[tuple[Where, str], ChainBreak] = {}
    for found in breaks:
        key = (found.where, found.aggregate_id)
        kept = first.get(key)
        if kept is None or (found.aggregate_version or 0) < (kept.aggregate_version or 0):
            first[key] = found
    return [b for b in breaks if first.get((b.where, b.aggregate_id)) is b]
