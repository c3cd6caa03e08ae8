"""Heartbeats (``omium.kernel.health``): stored form, staleness, pacing, and a Redis outage."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from omium.kernel.health import HealthBeacon, Heartbeat, index_key
from omium.kernel.settings import load_settings


def test_a_heartbeat_round_trips_and_goes_stale_after_three_intervals() -> None:
    now = datetime.now(UTC)
    beat = Heartbeat(
        kind="projection",
        name="postgres",
        instance_id="p-1",
        host="h",
        pid=3,
        started_at=now - timedelta(minutes=5),
        beat_at=now,
        interval_s=5.0,
        lag=12,
        last_batch_at=now - timedelta(seconds=1),
        events=100,
        partitions=(1, 4),
        details={"dead_lettered": 2},
    )
    assert Heartbeat.from_json(beat.to_json()) == beat
    assert not beat.stale(now + timedelta(seconds=15))
    assert beat.stale(now + timedelta(seconds=15.1))
    stopped = Heartbeat.from_json(beat.to_json().replace('"stopped":false', '"stopped":true'))
    assert not stopped.stale(now + timedelta(hours=1))
    with pytest.raises(ValueError, match="heartbeat"):
        Heartbeat.from_json('{"kind": "worker"}')
    with pytest.raises(ValueError):
        Heartbeat.from_json("[1, 2]")


def test_a_beacon_rejects_unknown_kinds_and_bad_intervals() -> None:
    with pytest.raises(ValueError, match="kind"):
        HealthBeacon(None, prefix="p", kind="gateway", name="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval"):
        HealthBeacon(None, prefix="p", kind="worker", name="x", interval_s=0)


@pytest.mark.integration
def test_maybe_beat_writes_only_when_due() -> None:
    settings = load_settings(environment="test")
    client = redis.Redis.from_url(settings.redis.url, socket_timeout=3)
    prefix = f"hb{uuid.uuid4().hex[:8]}"
    now = [100.0]
    beacon = HealthBeacon(
        client, prefix=prefix, kind="worker", name="execute", interval_s=5.0, clock=lambda: now[0]
    )
    calls: list[int] = []

    def report() -> dict[str, object]:
        calls.append(1)
        return {"lag": 4, "events": len(calls)}

    try:
        assert beacon.maybe_beat(report)
        now[0] += 4.9
        assert not beacon.maybe_beat(report)
        now[0] += 0.1
        assert beacon.maybe_beat(report)
        assert len(calls) == 2  # the report is only asked for when a beat is due
        stored = Heartbeat.from_json(client.get(beacon.key) or b"")
        assert (stored.lag, stored.events, stored.instance_id) == (4, 2, beacon.instance_id)
        assert client.zscore(index_key(prefix), beacon.key) is not None
        assert 0 < client.ttl(index_key(prefix)) <= 3600

        def broken() -> dict[str, object]:
            raise RuntimeError("the report failed")

        now[0] += 5
        assert beacon.maybe_beat(broken)  # still beats, without the figures
        assert Heartbeat.from_json(client.get(beacon.key) or b"").lag is None
    finally:
        client.delete(beacon.key, index_key(prefix))
        client.close()


def test_a_beacon_never_raises_when_redis_is_down() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2)
    beacon = HealthBeacon(client, prefix="down", kind="relay", name="relay")
    assert beacon.beat(lag=1) is False
    assert beacon.beat(lag=1, stopped=True) is False
    assert beacon.beats == 0
