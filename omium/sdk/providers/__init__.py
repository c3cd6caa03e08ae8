"""LLM providers behind one interface: a deterministic scripted one (the default), an
OpenAI-compatible HTTP one and Anthropic's Messages API. Every call reports its tokens, cost and
latency.
"""

from omium.sdk.providers._anthropic import AnthropicProvider
from omium.sdk.providers._factory import providers_from_settings
from omium.sdk.providers._openai import OpenAICompatibleProvider
from omium.sdk.providers._pricing import DEFAULT_PRICES, ModelPrice, PriceTable
from omium.sdk.providers._retry import NO_RETRIES, RetryPolicy
from omium.sdk.providers._scope import calls_for_execution, current_execution
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
    Tool,
    ToolCall,
    to_messages,
)
from omium.sdk.providers.errors import (
    ContextTooLongError,
    InjectedFaultError,
    MalformedResponseError,
    NoScriptedResponseError,
    OverloadedError,
    ProviderError,
    ProviderRequestError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitError,
    RefusalError,
)

__all__ = [
    # the interface
    "LLMProvider",
    "Completion",
    "Message",
    "MessageLike",
    "Role",
    "Tool",
    "ToolCall",
    "to_messages",
    "providers_from_settings",
    "calls_for_execution",
    "current_execution",
    # the scripted provider
    "ScriptedProvider",
    "Script",
    "ScriptRule",
    "Fault",
    "FaultKind",
    "ScriptedCall",
    "HALLUCINATION",
    # the HTTP providers and their retries
    "OpenAICompatibleProvider",
    "AnthropicProvider",
    "RetryPolicy",
    "NO_RETRIES",
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
    "OverloadedError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "ProviderRequestError",
    "ContextTooLongError",
    "RefusalError",
    "MalformedResponseError",
    "InjectedFaultError",
    "NoScriptedResponseError",
]
