"""Process heartbeats: each long-running part says it is alive, how far behind it is, and when it
last did work.

Stream processors, the orchestrator, projections, the relay and execution workers each hold a
:class:`HealthBeacon`. From inside their own loop (so a loop that hangs stops beating) they call
:meth:`HealthBeacon.maybe_beat`, which writes at most every ``interval_s`` one small JSON
document to Redis under ``<topic prefix>:health:<kind>:<name>:<instance>`` and adds the key to
the sorted set ``<topic prefix>:health`` (score: the beat's time). The gateway's
``GET /operations/health`` reads them back and flags a beat older than three intervals as stale.

A heartbeat never stops its process: Redis being slow or down costs at most its socket timeout,
is logged once, and the loop goes on. A process that stops cleanly writes a last beat marked
``stopped`` that expires after :data:`STOPPED_TTL_S`; one that dies keeps its last beat until
:data:`TTL_S`, shown as stale meanwhile.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

log = structlog.get_logger(__name__)

Kind = Literal["processor", "projection", "relay", "worker"]
KINDS: tuple[Kind, ...] = ("processor", "projection", "relay", "worker")

DEFAULT_INTERVAL_S = 5.0
TTL_S = 3600
"""How long the beat of a process that died stays visible (as stale)."""
STOPPED_TTL_S = 300
"""How long the last beat of a process that stopped cleanly stays visible."""
STALE_AFTER_INTERVALS = 3
"""A beat older than this many of its own intervals is stale."""

Clock = Callable[[], float]


def index_key(prefix: str) -> str:
    """The sorted set listing every heartbeat key of a deployment (topic prefix)."""
    return f"{prefix}:health"


def beat_key(prefix: str, kind: str, name: str, instance_id: str) -> str:
    """The key one process's heartbeat is stored under."""
    return f"{prefix}:health:{kind}:{name}:{instance_id}"


def default_instance_id() -> str:
    """``<host name>-<pid>``: unique per process on a host."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Heartbeat:
    """What one process said about itself at ``beat_at``.

    Attributes:
        kind: ``processor`` (stream processors and the orchestrator), ``projection``, ``relay``
            or ``worker``.
        name: Which one (``consensus``, ``postgres``, ``relay``, ``execute`` ...).
        instance_id: This process (or thread) among the running instances of ``name``.
        host: Host name.
        pid: Process id.
        started_at: When the beacon was made (the process's start, near enough).
        beat_at: When this beat was written.
        interval_s: How often it beats; a beat older than three intervals is stale.
        lag: Messages (or stored events) not yet handled, where the process knows; else ``None``.
        last_batch_at: When it last handled at least one message; ``None``: not yet.
        events: Messages handled since start.
        partitions: The partitions it holds now (consumer-group members).
        stopped: Whether the process stopped cleanly (its last beat).
        details: Other counters (dead letters, aborts, items in hand ...).
    """

    kind: str
    name: str
    instance_id: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    interval_s: float
    lag: int | None = None
    last_batch_at: datetime | None = None
    events: int = 0
    partitions: tuple[int, ...] = ()
    stopped: bool = False
    details: Mapping[str, float | int | str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The stored form."""
        body = asdict(self)
        for name in ("started_at", "beat_at", "last_batch_at"):
            value = body[name]
            body[name] = value.isoformat() if value is not None else None
        body["partitions"] = list(self.partitions)
        body["details"] = dict(self.details)
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Heartbeat:
        """Parse a stored beat.

        Raises:
            ValueError: Not a heartbeat document.
        """
        body = json.loads(text)
        if not isinstance(body, dict):
            raise ValueError("a heartbeat is a JSON object")
        try:
            last = body.get("last_batch_at")
            return cls(
                kind=str(body["kind"]),
                name=str(body["name"]),
                instance_id=str(body["instance_id"]),
                host=str(body.get("host", "")),
                pid=int(body.get("pid", 0)),
                started_at=datetime.fromisoformat(body["started_at"]),
                beat_at=datetime.fromisoformat(body["beat_at"]),
                interval_s=float(body["interval_s"]),
                lag=None if body.get("lag") is None else int(body["lag"]),
                last_batch_at=datetime.fromisoformat(last) if last else None,
                events=int(body.get("events", 0)),
                partitions=tuple(int(p) for p in body.get("partitions", ())),
                stopped=bool(body.get("stopped", False)),
                details=dict(body.get("details") or {}),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a heartbeat: {exc}") from exc

    def stale(self, now: datetime) -> bool:
        """Whether the process has not beaten for three of its intervals (and did not stop)."""
        if self.stopped:
            return False
        return (now - self.beat_at).total_seconds() > STALE_AFTER_INTERVALS * self.interval_s


class HealthBeacon:
    """Writes one process's heartbeat to Redis, at most every ``interval_s``.

    Args:
        client: A synchronous ``redis.Redis`` client (short socket timeouts: a beat must never
            hold its loop for long).
        prefix: The deployment's topic prefix (so deployments and tests never mix).
        kind: What the process is.
        name: Which one of its kind.
        instance_id: This instance (default: ``<host>-<pid>``).
        interval_s: Least time between two beats.
        clock: Monotonic seconds (tests may move it).
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        kind: Kind,
        name: str,
        instance_id: str | None = None,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Clock = time.monotonic,
    ) -> None:
        """Prepare; nothing is written until the first beat."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._redis = client
        self.prefix = prefix
        self.kind = kind
        self.name = name
        self.instance_id = instance_id or default_instance_id()
        self.interval_s = interval_s
        self._clock = clock
        self._started_at = datetime.now(UTC)
        self._last = float("-inf")
        self._failing = False
        self.key = beat_key(prefix, kind, name, self.instance_id)
        self.beats = 0

    def due(self) -> bool:
        """Whether a beat is due."""
        return self._clock() - self._last >= self.interval_s

    def maybe_beat(self, report: Callable[[], Mapping[str, Any]]) -> bool:
        """Beat if one is due, with the fields ``report()`` returns (called only then).

        Returns:
            Whether a beat was written.
        """
        if not self.due():
            return False
        self._last = self._clock()
        try:
            fields = dict(report())
        except Exception:  # a report that fails must not stop the loop it reports on
            log.warning("health.report_failed", key=self.key, exc_info=True)
            fields = {}
        return self.beat(**fields)

    def beat(
        self,
        *,
        lag: int | None = None,
        last_batch_at: datetime | None = None,
        events: int = 0,
        partitions: Iterable[int] = (),
        details: Mapping[str, float | int | str] | None = None,
        stopped: bool = False,
    ) -> bool:
        """Write a beat now.

        Returns:
            Whether Redis took it (a failure is logged once per outage, never raised).
        """
        self._last = self._clock()
        now = datetime.now(UTC)
        heartbeat = Heartbeat(
            kind=self.kind,
            name=self.name,
            instance_id=self.instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            beat_at=now,
            interval_s=self.interval_s,
            lag=lag,
            last_batch_at=last_batch_at,
            events=events,
            partitions=tuple(sorted(partitions)),
            stopped=stopped,
            details=dict(details or {}),
        )
        try:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(self.key, heartbeat.to_json(), ex=STOPPED_TTL_S if stopped else TTL_S)
            pipe.zadd(index_key(self.prefix), {self.key: now.timestamp()})
            pipe.expire(index_key(self.prefix), TTL_S)
            pipe.execute()
        except Exception as exc:  # redis errors, timeouts: the process goes on
            if not self._failing:
                log.warning("health.write_failed", key=self.key, error=str(exc))
            self._failing = True
            return False
        if self._failing:
            log.info("health.written_again", key=self.key)
        self._failing = False
        self.beats += 1
        return True


def redis_beacon(
    redis_url: str,
    *,
    prefix: str,
    kind: Kind,
    name: str,
    instance_id: str | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
) -> HealthBeacon:
    """A beacon on its own Redis client with 0.5 s socket timeouts (needs the ``redis`` package)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return HealthBeacon(
        client, prefix=prefix, kind=kind, name=name, instance_id=instance_id, interval_s=interval_s
    )


def consumer_lag(consumer: Any) -> tuple[int | None, tuple[int, ...]]:
    """Lag and partitions of a confluent-kafka consumer, from what it already knows.

    Uses the positions and the high watermarks cached from fetch responses (no request to
    the brokers), so it is cheap enough for every beat. Call it from the consumer's thread.

    Returns:
        The total lag over the assigned partitions (``None`` when nothing is known yet), and
        the partition numbers assigned.
    """
    try:
        assigned = consumer.assignment()
        if not assigned:
            return None, ()
        total = 0
        known = False
        for tp in consumer.position(assigned):
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high is None or high < 0 or tp.offset is None or tp.offset < 0:
                continue
            total += max(0, high - tp.offset)
            known = True
    except Exception:  # the consumer is rebalancing or closing: no figure this time
        return None, ()
    return (total if known else None), tuple(sorted({tp.partition for tp in assigned}))
