"""The PostgreSQL read model: relational tables for the gateway's queries and analytics."""

from projections.postgres._mappers_more import MAPPERS
from projections.postgres._migrations import MIGRATIONS, Migration, migrate, schema_for
from projections.postgres._projection import PostgresProjection, connect
from projections.postgres._sql import Op

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
