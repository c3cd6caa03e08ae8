"""A Redis outage under the heartbeats is a store outage to the worker (retried), not a bug.

Found by bench.chaos (restart-redis): the claim's ``ConnectionError`` went up as an ordinary
exception, the execution worker dead-lettered the work item and its run stayed running for good.
"""

from __future__ import annotations

import uuid

import pytest
import redis

from omium.kernel.errors import PersistenceError
from omium.kernel.settings import OmiumSettings
from omium.worker._heartbeat import Heartbeats

pytestmark = pytest.mark.integration


def test_claims_against_an_unreachable_redis_raise_persistence_errors_then_work_again(
    stack: OmiumSettings,
) -> None:
    prefix, execution = f"hb{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    beats = Heartbeats(down, prefix=prefix, worker_id="w1")
    with pytest.raises(PersistenceError):
        beats.claim(execution, "draft")
    with pytest.raises(PersistenceError):
        beats.holder(execution, "draft")

    up = redis.Redis.from_url(stack.redis.url)
    try:
        beats = Heartbeats(up, prefix=prefix, worker_id="w1")
        assert beats.claim(execution, "draft")
        assert beats.holder(execution, "draft") == "w1"
        beats.release(execution, "draft")
        assert beats.holder(execution, "draft") is None
    finally:
        up.close()
