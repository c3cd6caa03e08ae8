"""The OpenSearch calls the projections and replays make, on ``opensearch-py``.

A thin layer over :class:`opensearchpy.OpenSearch` (index templates, indices, aliases, bulk,
count): it names only the calls Omium makes and turns the client's errors into
:class:`~omium.projections.base.errors.ProjectionStoreError`, so callers never catch
``opensearchpy`` types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import OpenSearchException, TransportError

from omium.projections.base.errors import ProjectionStoreError
from omium.projections.opensearch._templates import READ_MODELS, alias, template


def _failure(what: str, exc: OpenSearchException) -> ProjectionStoreError:
    if isinstance(exc, TransportError) and isinstance(exc.status_code, int):
        return ProjectionStoreError(f"OpenSearch {what}: {exc.status_code} {str(exc.info)[:300]}")
    return ProjectionStoreError(f"OpenSearch {what} failed: {exc}")


class OpenSearchClient:
    """Just the calls the projections and replays make.

    Args:
        url: Base URL of the cluster (credentials may be in it).
        timeout_s: Per-request timeout.
    """

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self._os = OpenSearch(hosts=[url.rstrip("/")], timeout=timeout_s)

    @property
    def opensearch(self) -> OpenSearch:
        """The ``opensearch-py`` client underneath."""
        return self._os

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        ok: Iterable[int] = (200, 201),
        **params: Any,
    ) -> Any:
        """Send a request; raise ``ProjectionStoreError`` unless its status is in ``ok``.

        Returns:
            The answer's JSON body (also for an accepted error status such as 404).
        """
        accepted = tuple(status for status in ok if status >= 300)
        try:
            return self._os.transport.perform_request(
                method, path, params=params or None, body=body, ignore=accepted
            )
        except OpenSearchException as exc:
            raise _failure(f"{method} {path}", exc) from exc

    def bulk(self, lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """One ``_bulk`` request (action and source lines); the caller reads per-item results."""
        try:
            result: dict[str, Any] = self._os.bulk(body=list(lines))
        except OpenSearchException as exc:
            raise _failure("bulk", exc) from exc
        return result

    def install(self, prefix: str, *, generation: str = "1") -> None:
        """Put the templates and, where an alias is missing, create its first index."""
        for model in READ_MODELS:
            name = alias(prefix, model)
            try:
                self._os.indices.put_index_template(name=name, body=template(prefix, model))
            except OpenSearchException as exc:
                raise _failure(f"index template {name}", exc) from exc
            if not self.alias_targets(name):
                self.create_index(f"{name}-{generation}", aliases=[name])

    def create_index(self, name: str, *, aliases: Iterable[str] = ()) -> None:
        """Create an index (shaped by its template), optionally behind aliases.

        An index that already exists is left as it is.
        """
        body = {"aliases": {a: {"is_write_index": True} for a in aliases}}
        try:
            self._os.indices.create(index=name, body=body, ignore=400)
        except OpenSearchException as exc:
            raise _failure(f"create index {name}", exc) from exc

    def alias_targets(self, name: str) -> list[str]:
        """The indices behind an alias (empty when it does not exist)."""
        try:
            found = self._os.indices.get_alias(name=name, ignore=404)
        except OpenSearchException as exc:
            raise _failure(f"alias {name}", exc) from exc
        return sorted(k for k in (found or {}) if k not in ("error", "status"))

    def update_aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """Apply ``add``/``remove`` alias actions atomically (one ``_aliases`` call)."""
        try:
            self._os.indices.update_aliases(body={"actions": list(actions)})
        except OpenSearchException as exc:
            raise _failure("update aliases", exc) from exc

    def switch_alias(self, name: str, *, to: str, remove: Iterable[str]) -> None:
        """Point ``name`` at ``to`` instead of ``remove``, atomically (one ``_aliases`` call)."""
        actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": name}} for i in remove]
        actions.append({"add": {"index": to, "alias": name, "is_write_index": True}})
        self.update_aliases(actions)

    def refresh(self, target: str) -> None:
        """Make everything indexed so far searchable."""
        try:
            self._os.indices.refresh(index=target)
        except OpenSearchException as exc:
            raise _failure(f"refresh {target}", exc) from exc

    def count(self, target: str, query: Mapping[str, Any] | None = None) -> int:
        """Documents matching ``query`` (all by default)."""
        body = {"query": dict(query)} if query else None
        try:
            return int(self._os.count(index=target, body=body)["count"])
        except OpenSearchException as exc:
            raise _failure(f"count {target}", exc) from exc

    def delete_index(self, name: str) -> None:
        """Delete an index (or a wildcard of them); missing ones are fine."""
        try:
            self._os.indices.delete(index=name, ignore=404)
        except OpenSearchException as exc:
            raise _failure(f"delete index {name}", exc) from exc

    def close(self) -> None:
        """Close the connections."""
        self._os.close()
