"""LLM providers behind one interface: a deterministic scripted one (the default) and an
OpenAI-compatible HTTP one. Every call reports its tokens, cost and latency.
"""

from omium.sdk.providers._factory import providers_from_settings
from omium.sdk.providers._openai import OpenAICompatibleProvider
from omium.sdk.providers._pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from omium.sdk.providers._scripted import (
    HALLUCINATION,
    Fault,
    FaultKind,
    Script,
    ScriptedCall,
    ScriptedProvider,
    ScriptRule,
)
from omium.sdk.providers._tokens import count_prompt_tokens, count_tokens, truncate_to_tokens
from omium.sdk.providers._types import (
    Completion,
    LLMProvider,
    Message,
    MessageLike,
    Role,
    to_messages,
)
from omium.sdk.providers.errors import (
    InjectedFaultError,
    MalformedResponseError,
    NoScriptedResponseError,
    ProviderError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
)

__all__ = [
    # the interface
    "LLMProvider",
    "Completion",
    "Message",
    "MessageLike",
    "Role",
    "to_messages",
    "providers_from_settings",
    # the scripted provider
    "ScriptedProvider",
    "Script",
    "ScriptRule",
    "Fault",
    "FaultKind",
    "ScriptedCall",
    "HALLUCINATION",
    # the OpenAI-compatible HTTP provider
    "OpenAICompatibleProvider",
    # tokens and prices
    "count_tokens",
    "count_prompt_tokens",
    "truncate_to_tokens",
    "PriceTable",
    "ModelPrice",
    "DEFAULT_PRICES",
    # errors
    "ProviderError",
    "RateLimitError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "ProviderRequestError",
    "MalformedResponseError",
    "InjectedFaultError",
    "NoScriptedResponseError",
]
