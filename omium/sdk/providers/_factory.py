"""The providers an agent's ``provider:`` name can refer to, built from settings."""

from __future__ import annotations

from omium.kernel.settings import LLMSettings
from omium.sdk.providers._anthropic import AnthropicProvider
from omium.sdk.providers._openai import OpenAICompatibleProvider
from omium.sdk.providers._scripted import ScriptedProvider
from omium.sdk.providers._types import LLMProvider


def providers_from_settings(llm: LLMSettings) -> dict[str, LLMProvider]:
    """Provider name -> provider: ``scripted``, ``openai`` and ``anthropic``, from ``llm``.

    Nothing connects until a provider is first called, so building all of them is cheap.
    """
    return {
        ScriptedProvider.name: ScriptedProvider.from_settings(llm),
        "openai": OpenAICompatibleProvider.from_settings(llm),
        AnthropicProvider.name: AnthropicProvider.from_settings(llm),
    }
