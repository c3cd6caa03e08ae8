"""``omium demo``: shows the event backbone working on the local stack.

It publishes one sample of every Omium event type (Avro, single-object encoding) to its topic,
reads them all back with a fresh consumer group, checks each decodes equal to what was sent, and
sends one corrupt message to show it landing in the DLQ with its reason.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from omium.cli._app import app
from omium.kernel.kafka import Area, EventConsumer, EventProducer, ensure_topics, topic_name
from omium.kernel.serde import AvroSerde, SchemaCatalog
from omium.kernel.settings import OmiumSettings, load_settings
from omium.testing.samples import sample_event

console = Console()


def _publish_samples(settings: OmiumSettings, serde: AvroSerde, run: str) -> dict[str, Any]:
    sent: dict[str, Any] = {}
    with EventProducer(settings.kafka, serde) as producer:
        for event_type in serde.catalog.event_types():
            event = sample_event(event_type, tenant_id="demo", correlation_id=run)
            sent[event["event_id"]] = event
            producer.publish(event)
    return sent


def _read_back(
    settings: OmiumSettings, serde: AvroSerde, sent: dict[str, Any], run: str
) -> list[Any]:
    topics = [topic_name(settings.kafka, area) for area in Area if area is not Area.DLQ]
    found = []
    with EventConsumer(
        settings.kafka, serde, group_id=f"omium-demo-{run}", topics=topics
    ) as consumer:
        deadline = time.monotonic() + 60
        while len(found) < len(sent) and time.monotonic() < deadline:
            found += [c for c in consumer.poll(timeout_s=1.0) if c.event["event_id"] in sent]
        consumer.commit()
    return found


def _show_dead_letter(settings: OmiumSettings, serde: AvroSerde, run: str) -> None:
    topic = topic_name(settings.kafka, Area.EXECUTIONS)
    with EventProducer(settings.kafka, serde) as producer:
        producer.send(topic, key=f"demo-corrupt-{run}", value=b"\xc3\x01" + os.urandom(24))
    console.print(
        f"Sent one corrupt message to [bold]{topic}[/]; every consumer sends it to "
        f"[bold]{topic_name(settings.kafka, Area.DLQ)}[/] with the reason "
        "(e.g. [italic]unknown schema fingerprint[/]) and moves on."
    )


@app.command()
def demo() -> None:
    """Publish and consume a sample of every Omium event type on the local stack."""
    settings = load_settings()
    serde = AvroSerde(SchemaCatalog.from_directory(settings.schemas_dir))
    created = ensure_topics(settings.kafka)
    console.print(f"Topics ready ({len(created)} created) on {settings.kafka.bootstrap_servers}")
    run = uuid.uuid4().hex[:8]
    sent = _publish_samples(settings, serde, run)
    found = _read_back(settings, serde, sent, run)
    table = Table(title=f"Omium events round-trip (run {run})")
    for column in ("event type", "topic", "partition", "offset", "bytes", "decoded equal"):
        table.add_column(column)
    for consumed in sorted(found, key=lambda c: (c.topic, c.event["event_type"])):
        same = consumed.event == sent[consumed.event["event_id"]]
        table.add_row(consumed.event["event_type"], consumed.topic, str(consumed.partition),
                      str(consumed.offset), str(len(consumed.raw)), "yes" if same else "NO")
    console.print(table)
    _show_dead_letter(settings, serde, run)
    ok = len(found) == len(sent) and all(c.event == sent[c.event["event_id"]] for c in found)
    console.print(f"{len(found)}/{len(sent)} event types published, consumed and decoded equal.")
    if not ok:
        raise typer.Exit(code=1)
