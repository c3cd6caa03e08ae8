"""A small synchronous OpenSearch REST client (httpx): templates, aliases, bulk, search."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from projections.base.errors import ProjectionStoreError
from projections.opensearch._templates import READ_MODELS, alias, template


class OpenSearchClient:
    """Just the calls the projections and replays make.

    Args:
        url: Base URL of the cluster.
        timeout_s: Per-request timeout.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def request(self, method: str, path: str, *, body: Any = None,
                ok: Iterable[int] = (200, 201), **params: Any) -> Any:
        """Send a request; raise ``ProjectionStoreError`` unless its status is in ``ok``."""
        try:
            response = self._http.request(method, path, params=params or None,
                                          json=body if body is not None else None)
        except httpx.HTTPError as exc:
            raise ProjectionStoreError(f"OpenSearch {method} {path} failed: {exc}") from exc
        if response.status_code not in set(ok):
            raise ProjectionStoreError(
                f"OpenSearch {method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def bulk(self, lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """One ``_bulk`` request; the caller reads per-item results."""
        payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        try:
            response = self._http.post("/_bulk", content=payload.encode(),
                                       headers={"Content-Type": "application/x-ndjson"})
        except httpx.HTTPError as exc:
            raise ProjectionStoreError(f"OpenSearch bulk failed: {exc}") from exc
        if response.status_code != 200:
            raise ProjectionStoreError(f"OpenSearch bulk: {response.status_code} "
                                       f"{response.text[:300]}")
        result: dict[str, Any] = response.json()
        return result

    def install(self, prefix: str, *, generation: str = "1") -> None:
        """Put the templates and, where an alias is missing, create its first index."""
        for model in READ_MODELS:
            self.request("PUT", f"/_index_template/{alias(prefix, model)}",
                         body=template(prefix, model))
            if not self.alias_targets(alias(prefix, model)):
                self.create_index(f"{alias(prefix, model)}-{generation}",
                                  aliases=[alias(prefix, model)])

    def create_index(self, name: str, *, aliases: Iterable[str] = ()) -> None:
        """Create an index (shaped by its template), optionally behind aliases."""
        body = {"aliases": {a: {"is_write_index": True} for a in aliases}}
        self.request("PUT", f"/{name}", body=body, ok=(200, 201, 400))

    def alias_targets(self, name: str) -> list[str]:
        """The indices behind an alias (empty when it does not exist)."""
        found = self.request("GET", f"/_alias/{name}", ok=(200, 404))
        return sorted(k for k in (found or {}) if k not in ("error", "status"))

    def switch_alias(self, name: str, *, to: str, remove: Iterable[str]) -> None:
        """Point ``name`` at ``to`` instead of ``remove``, atomically (one ``_aliases`` call)."""
        actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": name}} for i in remove]
        actions.append({"add": {"index": to, "alias": name, "is_write_index": True}})
        self.request("POST", "/_aliases", body={"actions": actions})

    def refresh(self, target: str) -> None:
        """Make everything indexed so far searchable."""
        self.request("POST", f"/{target}/_refresh")

    def count(self, target: str, query: Mapping[str, Any] | None = None) -> int:
        """Documents matching ``query`` (all by default)."""
        body = {"query": query} if query else None
        return int(self.request("POST", f"/{target}/_count", body=body)["count"])

    def delete_index(self, name: str) -> None:
        """Delete an index (or a wildcard of them); missing ones are fine."""
        self.request("DELETE", f"/{name}", ok=(200, 404))

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()
