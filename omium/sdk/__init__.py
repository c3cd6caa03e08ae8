"""What agent developers import: workflow definitions and LLM providers (the client follows)."""

from omium.sdk.client import AsyncClient, Client
from omium.sdk.providers import Completion, LLMProvider, OpenAICompatibleProvider, ScriptedProvider
from omium.sdk.workflow import WorkflowDefinition, WorkflowValidationError, load_workflow

__all__ = [
    # the gateway's client
    "AsyncClient",
    "Client",
    # workflow definitions
    "WorkflowDefinition",
    "WorkflowValidationError",
    "load_workflow",
    # LLM providers
    "Completion",
    "LLMProvider",
    "OpenAICompatibleProvider",
    "ScriptedProvider",
]
