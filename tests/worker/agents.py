"""Agents for the worker tests: they log what they did to Redis (the run input names the key).

They run in the test process (in-process pipeline) or in ``omium worker execute`` subprocesses,
so everything they record goes to Redis, which every process can read.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from omium.kernel.settings import load_settings
from omium.worker import StepContext

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(load_settings().redis.url)
    return _client


def record(ctx: StepContext) -> dict[str, Any]:
    """Log start and end (with times), sleep ``input.sleep_s``, return what it saw."""
    log = ctx.input["log_key"]
    _redis().rpush(log, f"start {ctx.step_id} {time.time():.6f}")
    time.sleep(float(ctx.input.get("sleep_s", 0)))
    _redis().rpush(log, f"end {ctx.step_id} {time.time():.6f}")
    return {"step": ctx.step_id, "saw": sorted(ctx.outputs)}


def effect(ctx: StepContext) -> dict[str, Any]:
    """Apply an external effect once per step (keyed by ``ctx.idempotency_key``), slowly.

    ``attempts:<step>`` counts every attempt that reached the effect; ``applied:<step>`` counts
    the effects applied, which must stay 1 however often the step runs.
    """
    log = ctx.input["log_key"]
    client = _redis()
    client.incr(f"{log}:attempts:{ctx.step_id}")
    client.rpush(log, f"start {ctx.step_id} {time.time():.6f}")
    # The effect first, then the long part: a worker killed while sleeping has applied it, and
    # the attempt that takes over must not apply it again.
    if client.set(f"{log}:effect:{ctx.idempotency_key}", "1", nx=True):
        client.incr(f"{log}:applied:{ctx.step_id}")
    time.sleep(float(ctx.input.get("sleep_s", 0)))
    client.rpush(log, f"end {ctx.step_id} {time.time():.6f}")
    return {"step": ctx.step_id}


def slow_first(ctx: StepContext) -> dict[str, Any]:
    """Overrun the step's timeout on the first attempt only."""
    if ctx.attempt == 1:
        time.sleep(float(ctx.input.get("sleep_s", 3)))
    return {"attempt": ctx.attempt}


def chatty(ctx: StepContext) -> dict[str, Any]:
    """Call the model ``input.calls`` times."""
    replies = [ctx.complete(f"question {n}").text for n in range(int(ctx.input["calls"]))]
    return {"replies": replies}


def say(ctx: StepContext) -> dict[str, Any]:
    """Log start and end like :func:`record`, sleep ``input.sleep_s``, return ``input.say``."""
    log = ctx.input["log_key"]
    _redis().rpush(log, f"start {ctx.step_id} {time.time():.6f}")
    time.sleep(float(ctx.input.get("sleep_s", 0)))
    _redis().rpush(log, f"end {ctx.step_id} {time.time():.6f}")
    return {"step": ctx.step_id, "text": str(ctx.input.get("say", ""))}


def counted_vote(ctx: StepContext) -> dict[str, Any]:
    """Vote ``yes``, counting the call under ``<log>:asked:<agent>`` (a model bill, in life)."""
    _redis().incr(f"{ctx.input['log_key']}:asked:{ctx.agent}")
    return {"choice": "yes", "reason": f"{ctx.agent} agrees"}
