"""The demo's timeline: every event about one run, read back from Kafka and shown as a table.

Everything Omium records about a run is keyed by its execution id (domain events from the relay,
processor decisions, commands, spans, failures) or, for its consensus rounds, by the round id. So
the timeline is simply every message with one of those keys, read from the run's start onwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from omium.kernel.kafka import consumer_config, topic_name
from omium.kernel.serde import AvroSerde
from omium.kernel.settings import KafkaSettings

AREAS = ("executions", "failures", "consensus", "policies", "traces", "commands")
"""The topics a run's timeline is read from."""

ENDINGS = ("ExecutionCompleted", "ExecutionFailed", "ExecutionHalted", "ExecutionCancelled")


@dataclass(frozen=True)
class Recorded:
    """One event as the timeline shows it.

    Attributes:
        event: The decoded event (envelope and payload).
        topic: Where it was read.
        source: Who produced it (``omium.source`` header; domain events come from the relay).
    """

    event: dict[str, Any]
    topic: str
    source: str

    @property
    def type(self) -> str:
        """The event type."""
        return str(self.event["event_type"])

    @property
    def payload(self) -> dict[str, Any]:
        """The payload."""
        return dict(self.event["payload"])

    @property
    def at(self) -> datetime:
        """When it happened."""
        return self.event["occurred_at"]  # type: ignore[no-any-return]


def read_run(
    kafka: KafkaSettings,
    serde: AvroSerde,
    execution_id: str,
    *,
    since: datetime,
    timeout_s: float = 20.0,
    settle_s: float = 1.5,
) -> list[Recorded]:
    """Every event about a run, in the order it happened.

    Reads from ``since`` (minus a little clock slack) until the run's ending event arrived and no
    new event came for ``settle_s`` (late spans, the consensus decision), or ``timeout_s`` passed.
    """
    keys = {execution_id.encode()}
    consumer = Consumer(
        consumer_config(
            kafka, f"{kafka.topic_prefix}.demo.{uuid.uuid4().hex[:8]}", **{"log_level": 3}
        )
    )
    try:
        consumer.assign(_partitions_since(consumer, kafka, since))
        found = _consume(
            consumer, serde, keys, execution_id, timeout_s=timeout_s, settle_s=settle_s
        )
    finally:
        consumer.close()
    return sorted(found, key=lambda r: (r.at, _order(r)))


def _partitions_since(
    consumer: Consumer, kafka: KafkaSettings, since: datetime
) -> list[TopicPartition]:
    metadata = consumer.list_topics(timeout=10)
    start_ms = int(since.timestamp() * 1000) - 5000
    wanted = [
        TopicPartition(topic_name(kafka, area), p, start_ms)
        for area in AREAS
        for p in metadata.topics[topic_name(kafka, area)].partitions
    ]
    return list(consumer.offsets_for_times(wanted, timeout=10))


def _consume(
    consumer: Consumer,
    serde: AvroSerde,
    keys: set[bytes],
    execution_id: str,
    *,
    timeout_s: float,
    settle_s: float,
) -> list[Recorded]:
    found: list[Recorded] = []
    deadline = time.monotonic() + timeout_s
    ended_at: float | None = None
    last_new = time.monotonic()
    while time.monotonic() < deadline:
        if ended_at is not None and time.monotonic() - last_new >= settle_s:
            break
        for message in consumer.consume(500, 0.2):
            recorded = _relevant(serde, message, keys, execution_id)
            if recorded is None:
                continue
            found.append(recorded)
            last_new = time.monotonic()
            if recorded.type in ENDINGS:
                ended_at = last_new
    return found


def _relevant(
    serde: AvroSerde, message: Any, keys: set[bytes], execution_id: str
) -> Recorded | None:
    """The message as a timeline event if it is about the run, else ``None``."""
    if message.error() is not None:
        return None
    if message.key() in keys:
        return _decode(serde, message)
    if not (message.topic() or "").endswith(".consensus"):
        return None
    # A round is keyed by its own id; its opening names the run, and brings its key along.
    recorded = _decode(serde, message)
    if recorded is None or recorded.type != "ConsensusRoundOpened":
        return None
    if str(recorded.payload.get("execution_id")) != execution_id:
        return None
    keys.add(message.key())
    return recorded


def _decode(serde: AvroSerde, message: Any) -> Recorded | None:
    try:
        event = serde.decode(message.value() or b"")
    except Exception:  # not an Omium event: the timeline shows events only
        return None
    headers = dict(message.headers() or [])
    source = headers.get("omium.source", b"relay").decode(errors="replace")
    return Recorded(event, message.topic() or "", source)


_ORDER = {"StepScheduled": 0, "StepStarted": 1, "CheckpointCreated": 2, "StepFailed": 3}


def _order(recorded: Recorded) -> int:
    return _ORDER.get(recorded.type, 5)


# ---------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Row:
    """One line of the timeline table."""

    offset_s: float
    by: str
    what: str
    step: str
    detail: str
    style: str = ""


def rows(recorded: Sequence[Recorded], *, verbose: bool = False) -> list[Row]:
    """The timeline's lines (LLM calls, commands and scheduling only when ``verbose``)."""
    if not recorded:
        return []
    start = recorded[0].at
    result = []
    for item in recorded:
        described = describe(item, verbose=verbose)
        if described is None:
            continue
        what, detail, style = described
        step = str(item.payload.get("step_id") or item.payload.get("resume_step_id") or "")
        offset = (item.at - start).total_seconds()
        result.append(Row(offset, _by(item), what, step, detail, style))
    return result


def _by(item: Recorded) -> str:
    if item.source == "relay":
        return "command side"
    return item.source.removeprefix("streams.").removeprefix("omium.")


def describe(item: Recorded, *, verbose: bool = False) -> tuple[str, str, str] | None:
    """``(what, detail, style)`` of one event, or ``None`` to leave it out."""
    p = item.payload
    handler = _DESCRIBE.get(item.type)
    if handler is not None:
        described: tuple[str, str, str] | None = handler(p)
        return described
    if item.type == "SpanRecorded":
        return _span(p, verbose)
    if verbose and item.type == "StepScheduled":
        return "step scheduled", f"agent {p.get('agent') or '-'}", "dim"
    if verbose and item.type == "CommandIssued":
        return "command issued", f"{p['command']} ({p.get('reason') or ''})", "dim"
    return None


def _span(p: Mapping[str, Any], verbose: bool) -> tuple[str, str, str] | None:
    if p["kind"] != "llm_call" or (not verbose and p["status"] == "ok"):
        return None
    usage = f"{p['tokens_in']}→{p['tokens_out']} tokens, ${p['cost_usd']:.6f}"
    status = "" if p["status"] == "ok" else f" ({p.get('status_message')})"
    return "LLM call", f"{p.get('agent')} · {p.get('model')} · {usage}{status}", "dim"


def _short(text: Any, limit: int = 110) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _tally(tally: Mapping[str, float]) -> str:
    return ", ".join(f"{choice} {support:g}" for choice, support in sorted(tally.items()))


def _output(p: Mapping[str, Any]) -> str:
    try:
        output = json.loads(p.get("output_json") or "null")
    except ValueError:
        return ""
    if isinstance(output, dict):
        if "decision" in output:
            return f"decision: {output['decision']}"
        nested = [
            f"{key}: decision {value['decision']}"
            for key, value in output.items()
            if isinstance(value, dict) and "decision" in value
        ]
        return "; ".join(nested) or "output: " + ", ".join(sorted(output))[:80]
    return ""


_DESCRIBE: dict[str, Any] = {
    "ExecutionStarted": lambda p: (
        "run started",
        f"workflow {p['workflow_id']} v{p['workflow_version']}",
        "bold",
    ),
    "StepStarted": lambda p: ("step started", f"attempt {p['attempt']}", ""),
    "StepCompleted": lambda p: ("step completed", f"attempt {p['attempt']}; {_output(p)}", "green"),
    "StepFailed": lambda p: (
        "step failed",
        f"attempt {p['attempt']}: {p.get('error_type')}: {_short(p['error_message'], 90)}",
        "red",
    ),
    "CheckpointCreated": lambda p: (
        "checkpoint",
        f"{p['position']} · {p['size_bytes']} B {p['storage']} · "
        f"sha256 {p['checksum_sha256'][:12]}… · id {p['checkpoint_id'][:8]}",
        "cyan",
    ),
    "FailureDetected": lambda p: (f"failure: {p['kind']}", _short(p["message"]), "bold red"),
    "RecoveryPlanned": lambda p: (
        f"recovery plan: {p['plan']}",
        _short(p["reason"]),
        "bold yellow",
    ),
    "ExecutionRolledBack": lambda p: (
        "rolled back",
        f"to checkpoint {p['checkpoint_id'][:8]} ({p['position']} "
        f"{p['resume_step_id']}); {_short(p.get('reason'), 60)}",
        "bold yellow",
    ),
    "ConsensusRoundOpened": lambda p: (
        "consensus round opened",
        f"{p['rule']} of {', '.join(p['participants'])}: {p.get('question') or ''}",
        "magenta",
    ),
    "VoteCast": lambda p: (
        "vote",
        f"{p['voter']} → {p['decision']} ({_short(p.get('rationale'), 60)})",
        "magenta",
    ),
    "VoteRejected": lambda p: ("vote rejected", f"{p['voter']}: {p['reason']}", "magenta"),
    "ConsensusReached": lambda p: (
        "consensus reached",
        f"{p['decision']} ({_tally(p['tally'])})",
        "bold magenta",
    ),
    "ConsensusFailed": lambda p: (
        "consensus failed",
        f"{p['reason']} ({_tally(p['tally'])})",
        "bold red",
    ),
    "PolicyViolated": lambda p: (
        f"policy {p['mode']}",
        f"{p['policy_id']} v{p['policy_version']}: {_short('; '.join(p['messages']), 90)}",
        "yellow" if p["mode"] == "warn" else "bold red",
    ),
    "PolicyEvaluationError": lambda p: (
        "policy error",
        f"{p['policy_id']}: {_short(p['error'])}",
        "bold red",
    ),
    "HumanApprovalRequested": lambda p: ("approval requested", _short(p.get("prompt")), "yellow"),
    "HumanApprovalGranted": lambda p: ("approval granted", f"by {p['decided_by']}", "yellow"),
    "HumanApprovalRejected": lambda p: ("approval rejected", f"by {p['decided_by']}", "red"),
    "ExecutionCompleted": lambda p: ("run completed", _output(p), "bold green"),
    "ExecutionFailed": lambda p: ("run failed", _short(p.get("error_message")), "bold red"),
    "ExecutionHalted": lambda p: ("run halted", _short(p.get("reason")), "bold red"),
    "ExecutionCancelled": lambda p: ("run cancelled", _short(p.get("reason")), "bold red"),
}


def of_type(recorded: Iterable[Recorded], *types: str) -> list[Recorded]:
    """The events of some types, in order."""
    return [item for item in recorded if item.type in types]
