"""The small shared kernel every Omium part uses: errors, settings, event schemas and envelope."""

from omium.kernel.errors import (
    ConcurrencyError,
    ConfigurationError,
    DomainError,
    OmiumError,
    PersistenceError,
)
from omium.kernel.events import (
    FIRST_AGGREGATE_VERSION,
    GENESIS_HASH,
    ChainBrokenError,
    ChainFault,
    ChainHead,
    ChainReport,
    compute_hash,
    new_event,
    verify_chain,
)
from omium.kernel.serde import (
    DEFAULT_SCHEMAS_DIR,
    AvroSerde,
    CorruptMessageError,
    EventSchema,
    SchemaCatalog,
    SchemaFileError,
    SchemaValidationError,
    SerdeError,
    UnknownSchemaError,
    default_catalog,
)
from omium.kernel.settings import OmiumSettings, load_settings

__all__ = [
    # errors
    "ConcurrencyError",
    "ConfigurationError",
    "DomainError",
    "OmiumError",
    "PersistenceError",
    # settings
    "OmiumSettings",
    "load_settings",
    # event schemas and wire format
    "DEFAULT_SCHEMAS_DIR",
    "AvroSerde",
    "EventSchema",
    "SchemaCatalog",
    "default_catalog",
    # serde errors
    "CorruptMessageError",
    "SchemaFileError",
    "SchemaValidationError",
    "SerdeError",
    "UnknownSchemaError",
    # event envelope and hash chain
    "FIRST_AGGREGATE_VERSION",
    "GENESIS_HASH",
    "ChainBrokenError",
    "ChainFault",
    "ChainHead",
    "ChainReport",
    "compute_hash",
    "new_event",
    "verify_chain",
]
