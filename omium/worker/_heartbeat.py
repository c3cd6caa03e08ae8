"""Heartbeats in Redis: which worker holds which step, for as long as it keeps beating.

A worker claims a step with ``SET key <worker id> NX PX <ttl>`` before starting it and refreshes
every claim it holds a few times per TTL. A worker killed with ``kill -9`` stops refreshing; its
claims expire after the TTL, and whichever worker receives the step's work item next sees a
running step nobody holds and takes it over. Refreshing and releasing only touch a key that still
holds this worker's id (compare-and-set in Lua), so a worker that was paused past its TTL never
extends or deletes a claim another worker made meanwhile.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)

    def key(self, execution_id: str, step_id: str) -> str:
        """The Redis key of a step's claim."""
        return f"{self._prefix}:worker:claim:{execution_id}:{step_id}"

    def claim(self, execution_id: str, step_id: str) -> bool:
        """Claim a step unless someone (this worker included) already holds it."""
        key = self.key(execution_id, step_id)
        if not self._redis.set(key, self.worker_id, nx=True, px=self.ttl_ms):
            return False
        with self._lock:
            self._held.add(key)
            self._lost.discard(key)
        return True

    def holder(self, execution_id: str, step_id: str) -> str | None:
        """The worker holding a step, or ``None`` when its claim expired or was released."""
        value = self._redis.get(self.key(execution_id, step_id))
        return None if value is None else value.decode()

    def lost(self, execution_id: str, step_id: str) -> bool:
        """Whether this worker's claim on a step expired before it was released."""
        with self._lock:
            return self.key(execution_id, step_id) in self._lost

    def release(self, execution_id: str, step_id: str) -> None:
        """Drop a claim this worker holds (no effect on someone else's)."""
        key = self.key(execution_id, step_id)
        with self._lock:
            self._held.discard(key)
            self._lost.discard(key)
        self._release(keys=[key], args=[self.worker_id])

    def start(self) -> None:
        """Start refreshing the held claims, a few times per TTL."""
        self._thread = threading.Thread(target=self._beat, name="heartbeats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing (held claims then expire on their own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _beat(self) -> None:
        interval = self.ttl_ms / 1000 / 4
        while not self._stop.wait(interval):
            with self._lock:
                held = list(self._held)
            for key in held:
                try:
                    alive = self._refresh(keys=[key], args=[self.worker_id, self.ttl_ms])
                except Exception:  # Redis hiccup: try again next beat, the TTL covers a few
                    log.warning("heartbeat refresh failed for %s", key, exc_info=True)
                    continue
                if not alive:
                    with self._lock:
                        if key in self._held:
                            self._held.discard(key)
                            self._lost.add(key)
                    log.warning("lost the claim %s (expired before it was refreshed)", key)
