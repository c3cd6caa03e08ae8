"""The PostgreSQL read model: relational tables for the gateway's queries and analytics."""

from omium.projections.postgres._mappers_more import MAPPERS
from omium.projections.postgres._migrations import MIGRATIONS, Migration, migrate, schema_for
from omium.projections.postgres._projection import PostgresProjection, connect
from omium.projections.postgres._sql import Op

__all__ = [
    # the projection
    "PostgresProjection",
    "connect",
    # schema
    "MIGRATIONS",
    "Migration",
    "migrate",
    "schema_for",
    # mapping
    "MAPPERS",
    "Op",
]
