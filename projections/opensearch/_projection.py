"""The OpenSearch projection: searchable spans, failures and audit records.

OpenSearch has no transactions, so offsets stay in Kafka (committed after each bulk request
succeeds) and every document has an id derived from its content: a redelivered batch rewrites
the same documents. A document OpenSearch refuses for good (4xx) is dead-lettered; throttling or
a server error (429, 5xx) fails the batch, which is then read again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Self

from omium.kernel.kafka import Area, ConsumedEvent
from omium.projections.base import BatchingProjection, Expected, FlushResult, Offsets
from omium.projections.base.errors import ProjectionStoreError
from omium.projections.opensearch._client import OpenSearchClient
from omium.projections.opensearch._mappers import MAPPERS, DocWrite
from omium.projections.opensearch._templates import READ_MODELS, alias

MAX_BULK_BYTES = 5 * 1024 * 1024
"""Default most bytes per ``_bulk`` request (OpenSearch's guidance: 5-15 MB per request)."""


MERGE_RETRIES_ON_CONFLICT = 10
"""Times OpenSearch re-applies a merge that met a concurrent change of the same document."""


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

    def __init__(
        self,
        client: OpenSearchClient,
        *,
        prefix: str,
        targets: Mapping[str, str] | None = None,
        max_bulk_bytes: int = MAX_BULK_BYTES,
    ) -> None:
        super().__init__()
        self._client = client
        self._prefix = prefix
        self._targets = dict(targets or {m: alias(prefix, m) for m in READ_MODELS})
        self._max_bulk_bytes = max_bulk_bytes
        self.bulk_requests = 0

    @classmethod
    def open(cls, url: str, *, topic_prefix: str, max_bulk_bytes: int = MAX_BULK_BYTES) -> Self:
        """Connect, install the templates and first indices, and return the projection.

        Args:
            url: The cluster.
            topic_prefix: Names the aliases.
            max_bulk_bytes: Most bytes of documents per ``_bulk`` request (a batch is split
                into requests of at most this size; a single larger document goes alone).
        """
        client = OpenSearchClient(url)
        prefix = topic_prefix.lower()
        try:
            client.install(prefix)
        except BaseException:
            client.close()
            raise
        return cls(client, prefix=prefix, max_bulk_bytes=max_bulk_bytes)

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
        """Bulk requests of at most ``max_bulk_bytes`` each, in order; per-document refusals
        come back as ``rejected``. A failed request fails the batch (re-read, re-written
        idempotently: the document ids are derived from the events)."""
        chunks: list[tuple[list[dict[str, Any]], list[ConsumedEvent]]] = []
        lines: list[dict[str, Any]] = []
        owners: list[ConsumedEvent] = []
        size = 0
        for consumed, writes in batch:
            for write in writes:
                action = self._action(write)
                # Estimated size: the sources' JSON dominates; measured once per document.
                weight = len(json.dumps(action[-1], separators=(",", ":"), default=str)) + 100
                if owners and size + weight > self._max_bulk_bytes:
                    chunks.append((lines, owners))
                    lines, owners, size = [], [], 0
                lines += action
                owners.append(consumed)
                size += weight
        if owners:
            chunks.append((lines, owners))
        rejected: dict[int, tuple[ConsumedEvent, str]] = {}
        written = 0
        for chunk_lines, chunk_owners in chunks:
            result = self._client.bulk(chunk_lines)
            self.bulk_requests += 1
            for position, item in enumerate(result.get("items", [])):
                outcome = next(iter(item.values()))
                status = int(outcome.get("status", 500))
                if status < 300:
                    written += 1
                    continue
                if status == 429 or status >= 500:
                    raise ProjectionStoreError(f"OpenSearch refused a batch for now: {outcome}")
                owner = chunk_owners[position]
                rejected[id(owner)] = (owner, f"OpenSearch {status}: {outcome.get('error')}")
        return FlushResult(events=len(batch), writes=written, rejected=list(rejected.values()))

    def _action(self, write: DocWrite) -> list[dict[str, Any]]:
        meta = {"_index": self._targets[write.model], "_id": write.doc_id}
        if write.merge:
            # A merge reads, changes and writes the document; another writer merging into it at
            # the same moment (a failure and its plan, read by two replay workers or instances)
            # makes OpenSearch answer 409. Merges commute, so the update is retried on the fresh
            # document instead of being dead-lettered (a replay once lost a failure's fields).
            update = {**meta, "retry_on_conflict": MERGE_RETRIES_ON_CONFLICT}
            return [{"update": update}, {"doc": write.source, "doc_as_upsert": True}]
        return [{"index": meta}, write.source]

    def close(self) -> None:
        """Close the client."""
        self._client.close()
