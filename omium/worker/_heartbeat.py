"""Heartbeats in Redis: which worker holds which step, for as long as it keeps beating.

A worker claims a step with ``SET key <worker id> NX PX <ttl>`` before starting it and refreshes
every claim it holds a few times per TTL. A worker killed with ``kill -9`` stops refreshing; its
claims expire after the TTL, and whichever worker receives the step's work item next sees a
running step nobody holds and takes it over. Refreshing and releasing only touch a key that still
holds this worker's id (compare-and-set in Lua), so a worker that was paused past its TTL never
extends or deletes a claim another worker made meanwhile.

Redis being unreachable (a restart) is a :class:`~omium.kernel.errors.PersistenceError` to the
callers, so the worker retries the work item instead of dead-lettering it (which left its run
running for good).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import structlog

from omium.kernel.errors import PersistenceError

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Redis unreachable or slow: worth another try later, unlike a script or data error.
_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _reachable(call: Callable[[], T]) -> T:
    """Call Redis; an outage becomes a PersistenceError (the work item is retried)."""
    try:
        return call()
    except _TRANSIENT as exc:
        raise PersistenceError(f"heartbeats in Redis unavailable: {exc}") from exc


_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Heartbeats:
    """Claims on steps, kept alive by a background thread.

    Args:
        client: A ``redis.Redis`` client.
        prefix: Key prefix (the topic prefix, so deployments and tests never share claims).
        worker_id: This worker's unique id (the claims' value).
        ttl_s: How long a claim lives without a refresh.
    """

    def __init__(self, client: Any, *, prefix: str, worker_id: str, ttl_s: float = 5.0) -> None:
        """Prepare; :meth:`start` begins refreshing."""
        self._redis = client
        self._prefix = prefix
        self.worker_id = worker_id
        self.ttl_ms = int(ttl_s * 1000)
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._deferred: set[str] = set()  # released with the next call to Redis
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)

    def key(self, execution_id: str, step_id: str) -> str:
        """The Redis key of a step's claim."""
        return f"{self._prefix}:worker:claim:{execution_id}:{step_id}"

    def claim(self, execution_id: str, step_id: str) -> bool:
        """Claim a step unless someone (this worker included) already holds it.

        Claims whose release was deferred are released in the same round trip.
        """
        key = self.key(execution_id, step_id)
        pipe = self._redis.pipeline(transaction=False)
        deferred = self._take_deferred()
        for old in deferred:
            self._release(keys=[old], args=[self.worker_id], client=pipe)
        pipe.set(key, self.worker_id, nx=True, px=self.ttl_ms)
        try:
            claimed = _reachable(pipe.execute)[-1]
        except Exception:
            self._defer(deferred)  # released next time
            raise
        if not claimed:
            return False
        with self._lock:
            self._held.add(key)
            self._lost.discard(key)
        return True

    def holder(self, execution_id: str, step_id: str) -> str | None:
        """The worker holding a step, or ``None`` when its claim expired or was released."""
        value = _reachable(lambda: self._redis.get(self.key(execution_id, step_id)))
        return None if value is None else value.decode()

    def lost(self, execution_id: str, step_id: str) -> bool:
        """Whether this worker's claim on a step expired before it was released."""
        with self._lock:
            return self.key(execution_id, step_id) in self._lost

    def release(self, execution_id: str, step_id: str) -> None:
        """Drop a claim this worker holds (no effect on someone else's, nor a second time).

        Claims whose release was deferred are released in the same round trip.
        """
        key = self.key(execution_id, step_id)
        with self._lock:
            held = key in self._held or key in self._lost
            self._held.discard(key)
            self._lost.discard(key)
        _reachable(lambda: self._flush([key] if held else []))

    def defer_release(self, execution_id: str, step_id: str) -> None:
        """Drop a claim with the next call to Redis (its step is over: nobody waits for it).

        Saves a round trip on a path that claims again at once (the next step of a run).
        """
        key = self.key(execution_id, step_id)
        with self._lock:
            if key in self._held or key in self._lost:
                self._deferred.add(key)
            self._held.discard(key)
            self._lost.discard(key)

    def _take_deferred(self) -> list[str]:
        with self._lock:
            deferred = list(self._deferred)
            self._deferred.clear()
        return deferred

    def _defer(self, keys: list[str]) -> None:
        with self._lock:
            self._deferred.update(keys)

    def _flush(self, keys: list[str]) -> None:
        keys = keys + self._take_deferred()
        try:
            if len(keys) == 1:
                self._release(keys=keys, args=[self.worker_id])
            elif keys:
                pipe = self._redis.pipeline(transaction=False)
                for key in keys:
                    self._release(keys=[key], args=[self.worker_id], client=pipe)
                pipe.execute()
        except Exception:
            self._defer(keys)  # released next time (or they expire)
            raise

    def start(self) -> None:
        """Start refreshing the held claims, a few times per TTL."""
        self._thread = threading.Thread(target=self._beat, name="heartbeats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (held claims then expire on their own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self._flush([])
        except Exception:  # they expire on their own
            log.info("heartbeat.releases_not_sent", exc_info=True)

    def _beat(self) -> None:
        interval = self.ttl_ms / 1000 / 4
        while not self._stop.wait(interval):
            try:
                self._flush([])
            except Exception:  # released next time
                log.warning("heartbeat.releases_failed", exc_info=True)
            with self._lock:
                held = list(self._held)
            for key in held:
                try:
                    alive = self._refresh(keys=[key], args=[self.worker_id, self.ttl_ms])
                except Exception:  # Redis hiccup: try again next beat, the TTL covers a few
                    log.warning("heartbeat.refresh_failed", claim=key, exc_info=True)
                    continue
                if not alive:
                    with self._lock:
                        if key in self._held:
                            self._held.discard(key)
                            self._lost.add(key)
                    log.warning("heartbeat.claim_lost", claim=key, why="expired before refreshed")
