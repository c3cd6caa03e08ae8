"""The faults, one at a time, and the canary that says when the system has recovered.

Each fault is injected, lasts a while (an Omium process killed with SIGKILL is restarted after
``restart_delay_s``, as a supervisor would; a broker or a store is brought back after
``outage_s``; a paused process is resumed after its session timeout has passed) and is then
removed. From the removal on, canaries are sent: a two-step run of the canary workflow and a
consensus round, until one of each has gone all the way (run completed and round decided in the
PostgreSQL read model, the run ended in the Redis read model, its start command in the audit read
model). ``recovery_s`` is the time from the removal to that canary's success.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql

from bench._chaos._load import Gateway, Setup, consensus_round, start_run
from bench._chaos._stack import KINDS, ChaosStack

# The stream processors' consumer session (streams.base ProcessorConfig.session_timeout_ms).
SESSION_TIMEOUT_S = 10.0
PAUSE_TARGETS = ("orchestrator", "consensus", "execute", "relay")
BROKERS = ("kafka-ha-1", "kafka-ha-2", "kafka-ha-3")


@dataclass
class Injection:
    """One fault injected.

    Attributes:
        fault: Its kind (``kill-relay``, ``kill-broker``, ``restart-postgres`` ...).
        target: What it hit (process kind, broker, component).
        began: ``time.monotonic()`` at injection.
        removed: When the fault was removed (restart, start, SIGCONT).
        recovered: When the canary succeeded (``None``: it did not, in time).
    """

    fault: str
    target: str
    began: float
    removed: float = 0.0
    recovered: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def recovery_s(self) -> float | None:
        """Seconds from removal to the canary's success."""
        return None if self.recovered is None else self.recovered - self.removed


class Faults:
    """Injects faults into the runner's stack and measures recovery with canaries.

    Args:
        stack: The runner's stack.
        gateway: The load's client (canaries go through the gateway too).
        setup: The tenant's workflows.
        tenant: The tenant.
        restart_delay_s: How long a killed process stays dead.
        outage_s: How long a broker or store stays down.
        canary_timeout_s: Longest wait for a canary before the fault counts as not recovered.
    """

    def __init__(
        self,
        stack: ChaosStack,
        gateway: Gateway,
        setup: Setup,
        tenant: str,
        *,
        restart_delay_s: float = 1.0,
        outage_s: float = 8.0,
        canary_timeout_s: float = 180.0,
    ) -> None:
        """Remember the stack; nothing is injected yet."""
        self.stack, self.gateway, self.setup, self.tenant = stack, gateway, setup, tenant
        self.restart_delay_s, self.outage_s = restart_delay_s, outage_s
        self.canary_timeout_s = canary_timeout_s
        self._turn: dict[str, int] = {}
        self.last_canary: dict[str, Any] = {}
        """What the last canary's checks read (run, round and each read model's status)."""
        self.kinds: dict[str, Callable[[Injection], None]] = {
            **{f"kill-{kind}": self._killer(kind) for kind in KINDS},
            "kill-broker": self._kill_broker,
            "restart-postgres": self._restarter("postgres"),
            "restart-redis": self._restarter("redis"),
            "restart-opensearch": self._restarter("opensearch"),
            "pause-process": self._pause,
        }

    def inject(self, fault: str) -> Injection:
        """Inject one fault, remove it, and wait for a canary to go through."""
        injection = Injection(fault, "", time.monotonic())
        self.kinds[fault](injection)
        injection.removed = injection.removed or time.monotonic()
        injection.recovered = self.canary(injection)
        if injection.recovered is None:
            # Stuck: do what an operator would, restart every Omium process, so the checks and
            # the next faults still mean something; the fault stays "not recovered".
            began = time.monotonic()
            self.stack.restart_all()
            after = self.canary(injection)
            injection.notes.append(
                "restarted every Omium process: "
                + (
                    "still no canary"
                    if after is None
                    else f"canary through {after - began:.1f} s later"
                )
            )
        return injection

    def _next(self, choices: tuple[str, ...], key: str) -> str:
        turn = self._turn.get(key, 0)
        self._turn[key] = turn + 1
        return choices[turn % len(choices)]

    # --- the faults ---------------------------------------------------------------------------

    def _killer(self, kind: str) -> Callable[[Injection], None]:
        def kill(injection: Injection) -> None:
            injection.target = kind
            self.stack.kill(kind)
            time.sleep(self.restart_delay_s)
            injection.removed = time.monotonic()
            self.stack.start(kind)

        return kill

    def _kill_broker(self, injection: Injection) -> None:
        broker = injection.target = self._next(BROKERS, "broker")
        pid = self.stack.component_pid(broker)
        if pid is None:
            raise RuntimeError(f"{broker} is not running")
        import os

        os.kill(pid, signal.SIGKILL)
        time.sleep(self.outage_s)
        injection.removed = time.monotonic()
        self.stack.start_component(broker)

    def _restarter(self, component: str) -> Callable[[Injection], None]:
        def restart(injection: Injection) -> None:
            injection.target = component
            self.stack.stop_component(component)
            time.sleep(self.outage_s)
            injection.removed = time.monotonic()
            self.stack.start_component(component)

        return restart

    def _pause(self, injection: Injection) -> None:
        kind = injection.target = self._next(PAUSE_TARGETS, "pause")
        self.stack.signal(kind, signal.SIGSTOP)
        try:
            time.sleep(SESSION_TIMEOUT_S + 5)
        finally:
            self.stack.signal(kind, signal.SIGCONT)
        injection.removed = time.monotonic()

    # --- the canary ---------------------------------------------------------------------------

    def canary(self, injection: Injection | None = None) -> float | None:
        """Send canaries until one goes all the way; when it did (``None``: not in time)."""
        deadline = time.monotonic() + self.canary_timeout_s
        run = round_id = None
        while time.monotonic() < deadline:
            if run is None:
                run = start_run(
                    self.gateway, "canary", self.setup.canary_id, self.setup.canary_version
                )
            if round_id is None:
                round_id = consensus_round(self.gateway)
            if run is not None and round_id is not None:
                if self._through(run, round_id, deadline):
                    return time.monotonic()
                break
        if injection is not None:
            injection.notes.append(f"canary run {run} / round {round_id} did not finish in time")
        return None

    def _through(self, run: str, round_id: str, deadline: float) -> bool:
        key = self._start_key(run)
        rm = f"{self.stack.settings.kafka.topic_prefix}_rm"
        while time.monotonic() < deadline:
            self.stack.check_alive()
            # Every read is taken each time (no short-circuit), so a canary that never goes
            # through says which read model it was waiting for.
            self.last_canary = {
                "run": run,
                "round": round_id,
                "run in PostgreSQL": self._pg_status(rm, "executions", "execution_id", run),
                "round in PostgreSQL": self._pg_status(
                    rm, "consensus_rounds", "round_id", round_id
                ),
                "run in Redis": self._redis_status(run),
                "start audited in OpenSearch": self._audited(key),
            }
            if self.last_canary == {
                **self.last_canary,
                "run in PostgreSQL": "completed",
                "round in PostgreSQL": "reached",
                "run in Redis": "completed",
                "start audited in OpenSearch": True,
            }:
                return True
            time.sleep(0.25)
        return False

    def _start_key(self, run: str) -> str:
        with self.gateway.ledger.lock:
            return next(
                a.idempotency_key for a in self.gateway.ledger.acks if a.aggregate_id == run
            )

    def _pg_status(self, schema: str, table: str, column: str, ident: str) -> str | None:
        try:
            with psycopg.connect(self.stack.settings.postgres.dsn(), connect_timeout=3) as conn:
                row = conn.execute(
                    sql.SQL("SELECT status FROM {} WHERE tenant_id = %s AND {} = %s").format(
                        sql.Identifier(schema, table), sql.Identifier(column)
                    ),
                    (self.tenant, ident),
                ).fetchone()
        except psycopg.Error:
            return None
        return None if row is None else str(row[0])

    def _redis_status(self, run: str) -> str | None:
        client = redis.Redis.from_url(self.stack.settings.redis.url, socket_timeout=3)
        try:
            key = f"{self.stack.settings.kafka.topic_prefix}:rm:exec:{self.tenant}:{run}"
            value: Any = client.hget(key, "status")
        except redis.RedisError:
            return None
        finally:
            client.close()
        return None if value is None else bytes(value).decode()

    def _audited(self, idempotency_key: str) -> bool:
        settings = self.stack.settings
        url = f"{settings.opensearch.url.rstrip('/')}/{settings.kafka.topic_prefix}-audit/_search"
        query = {"size": 0, "query": {"bool": {"filter": [
            {"term": {"tenant_id": self.tenant}}, {"term": {"idempotency_key": idempotency_key}},
        ]}}}  # fmt: skip
        try:
            response = httpx.post(url, json=query, timeout=3)
            response.raise_for_status()
            return int(response.json()["hits"]["total"]["value"]) > 0
        except (httpx.HTTPError, KeyError, ValueError):
            return False
