"""The OpenSearch projection: searchable spans, failures and audit records.

OpenSearch has no transactions, so offsets stay in Kafka (committed after each bulk request
succeeds) and every document has an id derived from its content: a redelivered batch rewrites
the same documents. A document OpenSearch refuses for good (4xx) is dead-lettered; throttling or
a server error (429, 5xx) fails the batch, which is then read again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

from omium.kernel.kafka import Area, ConsumedEvent
from projections.base import BatchingProjection, Expected, FlushResult, Offsets
from projections.base.errors import ProjectionStoreError
from projections.opensearch._client import OpenSearchClient
from projections.opensearch._mappers import MAPPERS, DocWrite
from projections.opensearch._templates import READ_MODELS, alias


class OpenSearchProjection(BatchingProjection[DocWrite]):
    """Spans (``<prefix>-spans``), failures (``<prefix>-failures``), audit (``<prefix>-audit``).

    Args:
        client: The cluster; the projection owns it.
        prefix: The topic prefix naming the aliases.
        targets: Where each read model is written; its alias by default (a replay passes the
            new indices).
    """

    name = "opensearch"
    areas = (Area.TRACES, Area.FAILURES, Area.AUDIT)

    def __init__(self, client: OpenSearchClient, *, prefix: str,
                 targets: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._client = client
        self._prefix = prefix
        self._targets = dict(targets or {m: alias(prefix, m) for m in READ_MODELS})

    @classmethod
    def open(cls, url: str, *, topic_prefix: str) -> Self:
        """Connect, install the templates and first indices, and return the projection."""
        client = OpenSearchClient(url)
        prefix = topic_prefix.lower()
        try:
            client.install(prefix)
        except BaseException:
            client.close()
            raise
        return cls(client, prefix=prefix)

    @property
    def client(self) -> OpenSearchClient:
        """The cluster client."""
        return self._client

    @property
    def targets(self) -> dict[str, str]:
        """Index or alias written, per read model."""
        return dict(self._targets)

    def prepare(self, consumed: ConsumedEvent) -> Sequence[DocWrite]:
        """The documents of one event."""
        mapper = MAPPERS.get(consumed.event["event_type"])
        return mapper(consumed.event) if mapper is not None else ()

    def write(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[DocWrite]]],
        offsets: Offsets,
        expected: Expected,
    ) -> FlushResult:
        """One bulk request for the batch; per-document refusals come back as ``rejected``."""
        lines: list[dict[str, Any]] = []
        owners: list[ConsumedEvent] = []
        for consumed, writes in batch:
            for write in writes:
                lines += self._action(write)
                owners.append(consumed)
        if not lines:
            return FlushResult(events=len(batch), writes=0)
        result = self._client.bulk(lines)
        rejected: dict[int, tuple[ConsumedEvent, str]] = {}
        for position, item in enumerate(result.get("items", [])):
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 500))
            if status < 300:
                continue
            if status == 429 or status >= 500:
                raise ProjectionStoreError(f"OpenSearch refused a batch for now: {outcome}")
            owner = owners[position]
            rejected[id(owner)] = (owner, f"OpenSearch {status}: {outcome.get('error')}")
        return FlushResult(events=len(batch), writes=len(owners) - len(rejected),
                           rejected=list(rejected.values()))

    def _action(self, write: DocWrite) -> list[dict[str, Any]]:
        meta = {"_index": self._targets[write.model], "_id": write.doc_id}
        if write.merge:
            return [{"update": meta}, {"doc": write.source, "doc_as_upsert": True}]
        return [{"index": meta}, write.source]

    def close(self) -> None:
        """Close the client."""
        self._client.close()
