"""Search requests over the OpenSearch read models (built here, sent by the caller's client).

Every query is filtered on the caller's ``tenant_id``. Pages use ``search_after`` on
(time, ``doc_key``), wrapped in the same opaque cursors as the PostgreSQL lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omium.projections.opensearch._templates import alias
from omium.projections.postgres._queries import Page, decode_cursor, encode_cursor

Request = tuple[str, dict[str, Any]]
"""``(path, body)`` of a ``_search`` call."""


def _filters(
    tenant_id: str,
    terms: dict[str, Any],
    time_field: str,
    start: datetime | None,
    end: datetime | None,
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [{"term": {"tenant_id": tenant_id}}]
    found += [{"term": {field: value}} for field, value in terms.items() if value is not None]
    window = {k: v.isoformat() for k, v in (("gte", start), ("lt", end)) if v is not None}
    if window:
        found.append({"range": {time_field: window}})
    return found


class SearchQueries:
    """Requests for one deployment's aliases.

    Args:
        prefix: The topic prefix naming the aliases.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix.lower()

    def _page_body(
        self,
        kind: str,
        filters: list[dict[str, Any]],
        text: str | None,
        text_fields: list[str],
        time_field: str,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"bool": {"filter": filters}}
        if text:
            query["bool"]["must"] = [
                {
                    "simple_query_string": {
                        "query": text,
                        "fields": text_fields,
                        "default_operator": "and",
                    }
                }
            ]
        body: dict[str, Any] = {
            "query": query,
            "size": limit + 1,
            "track_total_hits": False,
            "sort": [{time_field: "desc"}, {"doc_key": "desc"}],
        }
        if cursor is not None:
            at, key = decode_cursor(kind, cursor, 2)
            body["search_after"] = [int(at) if at.lstrip("-").isdigit() else at, key]
        return body

    def spans(
        self,
        tenant_id: str,
        *,
        text: str | None = None,
        trace_id: str | None = None,
        execution_id: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        agent: str | None = None,
        model: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Request:
        """Spans matching text (name, status message) and filters, newest first."""
        terms = {
            "trace_id": trace_id,
            "execution_id": execution_id,
            "kind": kind,
            "status": status,
            "agent": agent,
            "model": model,
        }
        body = self._page_body(
            "spans",
            _filters(tenant_id, terms, "start_time", start, end),
            text,
            ["name", "status_message"],
            "start_time",
            limit,
            cursor,
        )
        return f"/{alias(self._prefix, 'spans')}/_search", body

    def trace(self, tenant_id: str, trace_id: str, *, limit: int = 1000) -> Request:
        """Every span of one trace, in start order."""
        body = {
            "query": {
                "bool": {
                    "filter": _filters(tenant_id, {"trace_id": trace_id}, "start_time", None, None)
                }
            },
            "size": limit,
            "sort": [{"start_time": "asc"}, {"doc_key": "asc"}],
        }
        return f"/{alias(self._prefix, 'spans')}/_search", body

    def failures(
        self,
        tenant_id: str,
        *,
        text: str | None = None,
        kind: str | None = None,
        signature: str | None = None,
        execution_id: str | None = None,
        agent: str | None = None,
        model: str | None = None,
        plan: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Request:
        """Failures matching text (message) and filters, newest first."""
        terms = {
            "kind": kind,
            "signature": signature,
            "execution_id": execution_id,
            "agent": agent,
            "model": model,
            "plan": plan,
        }
        body = self._page_body(
            "failures",
            _filters(tenant_id, terms, "detected_at", start, end),
            text,
            ["message", "plan_reason"],
            "detected_at",
            limit,
            cursor,
        )
        return f"/{alias(self._prefix, 'failures')}/_search", body

    def failure_groups(
        self,
        tenant_id: str,
        *,
        kind: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        size: int = 20,
    ) -> Request:
        """Failures grouped by signature (similar failures), biggest group first."""
        body = {
            "size": 0,
            "query": {
                "bool": {"filter": _filters(tenant_id, {"kind": kind}, "detected_at", start, end)}
            },
            "aggs": {
                "groups": {
                    "terms": {"field": "signature", "size": size},
                    "aggs": {
                        "last_seen": {"max": {"field": "detected_at"}},
                        "first_seen": {"min": {"field": "detected_at"}},
                        "kinds": {"terms": {"field": "kind", "size": 5}},
                        "executions": {"cardinality": {"field": "execution_id"}},
                        "sample": {
                            "top_hits": {
                                "size": 1,
                                "sort": [{"detected_at": "desc"}],
                                "_source": ["message", "failure_id", "agent", "model", "plan"],
                            }
                        },
                    },
                }
            },
        }
        return f"/{alias(self._prefix, 'failures')}/_search", body


def parse_page(response: dict[str, Any], *, kind: str, limit: int) -> Page:
    """A page of ``_source`` documents with the next cursor."""
    hits = response.get("hits", {}).get("hits", [])
    items = [hit["_source"] for hit in hits[:limit]]
    if len(hits) <= limit:
        return Page(items=items)
    return Page(items=items, next_cursor=encode_cursor(kind, *hits[limit - 1]["sort"]))


def parse_groups(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The similar-failure groups of a ``failure_groups`` response."""
    groups = []
    for bucket in response.get("aggregations", {}).get("groups", {}).get("buckets", []):
        sample = bucket["sample"]["hits"]["hits"]
        groups.append(
            {
                "signature": bucket["key"],
                "count": bucket["doc_count"],
                "executions": bucket["executions"]["value"],
                "first_seen": bucket["first_seen"].get("value_as_string"),
                "last_seen": bucket["last_seen"].get("value_as_string"),
                "kinds": [k["key"] for k in bucket["kinds"]["buckets"]],
                "sample": sample[0]["_source"] if sample else None,
            }
        )
    return groups
