"""Omium: the control plane for durable, checkable, recoverable multi-agent LLM workflows."""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omium.sdk.client import AsyncClient, Client

__all__ = [
    # the gateway's client (imported on first use: `import omium` stays light for the servers)
    "AsyncClient",
    "Client",
]


def __getattr__(name: str) -> Any:
    """Import ``omium.Client`` / ``omium.AsyncClient`` lazily, on first access."""
    if name in __all__:
        from omium.sdk import client

        return getattr(client, name)
    raise AttributeError(f"module 'omium' has no attribute {name!r}")
