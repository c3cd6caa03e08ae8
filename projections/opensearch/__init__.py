"""The OpenSearch read models: spans/traces, failures with recovery plans, audit records."""

from omium.projections.opensearch._client import OpenSearchClient
from omium.projections.opensearch._mappers import MAPPERS, DocWrite
from omium.projections.opensearch._projection import OpenSearchProjection
from omium.projections.opensearch._queries import SearchQueries, parse_groups, parse_page
from omium.projections.opensearch._templates import MAPPINGS, READ_MODELS, alias, template

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
