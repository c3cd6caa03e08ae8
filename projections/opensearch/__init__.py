"""The OpenSearch read models: spans/traces, failures with recovery plans, audit records."""

from projections.opensearch._client import OpenSearchClient
from projections.opensearch._mappers import MAPPERS, DocWrite
from projections.opensearch._projection import OpenSearchProjection
from projections.opensearch._queries import SearchQueries, parse_groups, parse_page
from projections.opensearch._templates import MAPPINGS, READ_MODELS, alias, template

__all__ = [
    # the projection
    "OpenSearchProjection",
    "OpenSearchClient",
    # documents and indices
    "DocWrite",
    "MAPPERS",
    "MAPPINGS",
    "READ_MODELS",
    "alias",
    "template",
    # searching
    "SearchQueries",
    "parse_groups",
    "parse_page",
]
