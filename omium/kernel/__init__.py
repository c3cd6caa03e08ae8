"""The small shared kernel every Omium part uses: errors, settings, event schemas and envelope.

Names are imported on first use (PEP 562): the SDK imports ``omium.kernel.errors`` and
``omium.kernel.settings`` without the server's Avro and Kafka libraries installed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from omium.kernel.settings import (
        OmiumSettings,
        load_settings,
    )

_MODULE_OF = {
    "ConcurrencyError": "omium.kernel.errors",
    "ConfigurationError": "omium.kernel.errors",
    "DomainError": "omium.kernel.errors",
    "OmiumError": "omium.kernel.errors",
    "PersistenceError": "omium.kernel.errors",
    "FIRST_AGGREGATE_VERSION": "omium.kernel.events",
    "GENESIS_HASH": "omium.kernel.events",
    "ChainBrokenError": "omium.kernel.events",
    "ChainFault": "omium.kernel.events",
    "ChainHead": "omium.kernel.events",
    "ChainReport": "omium.kernel.events",
    "compute_hash": "omium.kernel.events",
    "new_event": "omium.kernel.events",
    "verify_chain": "omium.kernel.events",
    "DEFAULT_SCHEMAS_DIR": "omium.kernel.serde",
    "AvroSerde": "omium.kernel.serde",
    "CorruptMessageError": "omium.kernel.serde",
    "EventSchema": "omium.kernel.serde",
    "SchemaCatalog": "omium.kernel.serde",
    "SchemaFileError": "omium.kernel.serde",
    "SchemaValidationError": "omium.kernel.serde",
    "SerdeError": "omium.kernel.serde",
    "UnknownSchemaError": "omium.kernel.serde",
    "default_catalog": "omium.kernel.serde",
    "OmiumSettings": "omium.kernel.settings",
    "load_settings": "omium.kernel.settings",
}

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


def __getattr__(name: str) -> Any:
    """Import a kernel name from its module on first access."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'omium.kernel' has no attribute {name!r}")
    return getattr(import_module(module), name)
