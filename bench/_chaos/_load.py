"""Steady load through the gateway, and what it acknowledged.

Every command is an HTTP request with its own ``Idempotency-Key``, sent again with the same key
after a connection failure, a 5xx or a 429 until it is answered (as a well-behaved client does),
for at most ``give_up_s``. A 2xx answer is an acknowledgement: the runner later checks that its
events exist everywhere exactly once. Other 4xx answers are refusals (counted, not checked).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench._chaos._stack import ROOT
from omium.gateway import mint_token
from omium.kernel.settings import OmiumSettings
from omium.sdk.workflow import load_workflow

API = "/api/v1"
WORKFLOW_FILE = ROOT / "examples" / "workflows" / "research_report.yaml"
POLICIES = (
    ("pii-redaction", ROOT / "examples" / "policies" / "pii_redaction.rego", "deny"),
    ("editorial-citations", ROOT / "examples" / "policies" / "editorial_citations.rego", "warn"),
)
CANARY_WORKFLOW: dict[str, Any] = {
    "name": "chaos-canary",
    "agents": {"echo": {"entrypoint": "bench._chaos.agents:echo"}},
    "defaults": {"checkpoint": {"before": True, "after": True}},
    "steps": [{"id": "one", "agent": "echo"}, {"id": "two", "agent": "echo", "needs": ["one"]}],
}
VOTERS = ("alpha", "beta", "gamma")


@dataclass(frozen=True)
class Ack:
    """One acknowledged command.

    Attributes:
        kind: ``start`` (a research-report run), ``canary`` (a canary run), ``open_round``,
            ``vote``.
        aggregate_id: The run or round it changed.
        version: The aggregate's version after it.
        events: The event types it stored, in order (the last one is at ``version``).
        idempotency_key: Its key (the audit read model is searched by it).
        at: ``time.monotonic()`` when it was acknowledged.
        attempts: Requests it took.
    """

    kind: str
    aggregate_id: str
    version: int
    events: tuple[str, ...]
    idempotency_key: str
    at: float
    attempts: int


@dataclass
class Ledger:
    """Everything the load sent, thread-safe."""

    acks: list[Ack] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    given_up: Counter[str] = field(default_factory=Counter)
    server_errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ack: Ack) -> None:
        """Record an acknowledgement."""
        with self.lock:
            self.acks.append(ack)


class Gateway:
    """Commands and reads through the gateway as one tenant (developer and operator)."""

    def __init__(
        self, url: str, settings: OmiumSettings, tenant: str, ledger: Ledger, give_up_s: float
    ) -> None:
        """Mint the tenant's token and open a connection pool."""
        token = mint_token(
            settings, subject="chaos", tenant_id=tenant, roles=["operator"], ttl_s=24 * 3600
        )
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=15.0
        )
        self.ledger = ledger
        self.give_up_s = give_up_s

    def close(self) -> None:
        """Close the pool."""
        self.http.close()

    def command(self, kind: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Send one command until it is answered; its answer when acknowledged (2xx)."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + self.give_up_s
        attempts, delay = 0, 0.2
        while True:
            attempts += 1
            try:
                response = self.http.post(API + path, json=body, headers={"Idempotency-Key": key})
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code < 300:
                answer: dict[str, Any] = response.json()
                aggregate = str(answer.get("execution_id") or answer.get("round_id") or "")
                if aggregate and "events" in answer:
                    self.ledger.add(
                        Ack(
                            kind,
                            aggregate,
                            int(answer["version"]),
                            tuple(answer["events"]),
                            key,
                            time.monotonic(),
                            attempts,
                        )
                    )
                return answer
            if response is not None and response.status_code >= 500:
                with self.ledger.lock:
                    self.ledger.server_errors[f"{response.status_code} {path_kind(path)}"] += 1
            if (
                response is not None
                and 400 <= response.status_code < 500
                and response.status_code != 429
            ):
                with self.ledger.lock:
                    self.ledger.refused[f"{response.status_code} {kind}"] += 1
                return None
            if time.monotonic() > deadline:
                with self.ledger.lock:
                    self.ledger.given_up[kind] += 1
                return None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def get(self, path: str) -> Any:
        """A read (``None`` when it fails)."""
        try:
            response = self.http.get(API + path)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None


def path_kind(path: str) -> str:
    """A path with its ids replaced (for counting errors by route)."""
    return "/".join("{id}" if len(part) >= 32 else part for part in path.split("/"))


@dataclass(frozen=True)
class Setup:
    """The tenant's workflows."""

    report_id: str
    report_version: int
    canary_id: str
    canary_version: int


def set_up(gateway: Gateway) -> Setup:
    """Publish the demo's policies and register the two workflows."""
    for name, path, mode in POLICIES:
        gateway.command(
            "policy", "/policies", {"name": name, "module": path.read_text(), "mode": mode}
        )
    report = load_workflow(WORKFLOW_FILE).to_definition()
    ids = []
    for name, definition in ((report["name"], report), ("chaos-canary", CANARY_WORKFLOW)):
        answer = gateway.command("workflow", "/workflows", {"name": name, "definition": definition})
        if answer is None:
            raise RuntimeError(f"could not register workflow {name}")
        ids.append((str(answer["workflow_id"]), int(answer.get("definition_version", 1))))
    (report_id, report_version), (canary_id, canary_version) = ids
    return Setup(report_id, report_version, canary_id, canary_version)


def start_run(gateway: Gateway, kind: str, workflow_id: str, version: int) -> str | None:
    """Start a run; its id when acknowledged."""
    answer = gateway.command(
        kind,
        "/executions",
        {"workflow_id": workflow_id, "workflow_version": version, "input": {"by": "chaos"}},
    )
    return None if answer is None else str(answer["execution_id"])


def consensus_round(gateway: Gateway, kind: str = "open_round") -> str | None:
    """Open a majority round among three voters and cast their votes; the round id."""
    deadline = datetime.now(UTC) + timedelta(seconds=120)
    answer = gateway.command(
        kind,
        "/consensus/rounds",
        {
            "participants": list(VOTERS),
            "rule": "majority",
            "deadline": deadline.isoformat(),
            "subject": "chaos",
        },
    )
    if answer is None:
        return None
    round_id = str(answer["round_id"])
    for voter, choice in zip(VOTERS, ("yes", "yes", "no"), strict=True):
        gateway.command("vote", f"/consensus/rounds/{round_id}/votes", {
            "participant": voter, "choice": choice,
        })  # fmt: skip
    return round_id


class Load:
    """Threads that start research-report runs and consensus rounds at a steady pace.

    Args:
        gateway: The client.
        setup: The tenant's workflows.
        run_every_s: Seconds between two run starts.
        round_every_s: Seconds between two consensus rounds.
    """

    def __init__(
        self, gateway: Gateway, setup: Setup, *, run_every_s: float, round_every_s: float
    ) -> None:
        """Prepare the threads (not started)."""
        self.gateway, self.setup = gateway, setup
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._every, args=(run_every_s, self._run), daemon=True),
            threading.Thread(target=self._every, args=(round_every_s, self._round), daemon=True),
        ]

    def _run(self) -> None:
        start_run(self.gateway, "start", self.setup.report_id, self.setup.report_version)

    def _round(self) -> None:
        consensus_round(self.gateway)

    def _every(self, period_s: float, action: Any) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            action()
            next_at = max(next_at + period_s, time.monotonic())
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        """Start the threads."""
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the threads (a command in flight finishes first)."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.gateway.give_up_s + 30)
