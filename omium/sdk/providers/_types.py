"""The provider interface: chat messages in, a :class:`Completion` with tokens and cost out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Role = Literal["system", "user", "assistant", "tool"]

_ROLES = frozenset(get_args(Role))


@dataclass(frozen=True)
class Tool:
    """A tool the model may call.

    Attributes:
        name: The tool's name (letters, digits, ``_`` and ``-``).
        description: What it does and when to use it, for the model.
        input_schema: A JSON Schema (an object schema) of its arguments.
    """

    name: str
    description: str
    input_schema: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


@dataclass(frozen=True)
class ToolCall:
    """A call of a :class:`Tool` the model asked for.

    Attributes:
        id: The provider's id of the call; a ``tool`` message answers it with this id.
        name: The tool's name.
        arguments: The arguments, as the model wrote them (parsed JSON).
    """

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Message:
    """One chat message.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: Its text (a ``tool`` message: the tool's result).
        tool_calls: For an ``assistant`` message, the tool calls it made.
        tool_call_id: For a ``tool`` message, the id of the call it answers.
    """

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


MessageLike = Message | Mapping[str, str]
"""A :class:`Message` or a ``{"role": ..., "content": ...}`` mapping (``tool_call_id`` too)."""


def to_messages(messages: Sequence[MessageLike]) -> list[Message]:
    """Normalise messages given as :class:`Message` objects or role/content mappings.

    Raises:
        ValueError: A message has an unknown role or no text content, or there are none.
    """
    result: list[Message] = []
    for index, item in enumerate(messages):
        message = item if isinstance(item, Message) else _from_mapping(item, index)
        if message.role not in _ROLES or not isinstance(message.content, str):
            raise ValueError(f"message #{index} needs a role in {sorted(_ROLES)} and text")
        result.append(message)
    if not result:
        raise ValueError("a completion needs at least one message")
    return result


def _from_mapping(item: Mapping[str, str], index: int) -> Message:
    try:
        return Message(
            role=item["role"],  # type: ignore[arg-type]
            content=item["content"],
            tool_call_id=item.get("tool_call_id"),
        )
    except (KeyError, TypeError, AttributeError):
        raise ValueError(f"message #{index} needs 'role' and 'content'") from None


@dataclass(frozen=True)
class Completion:
    """The answer to one LLM call, with what it cost.

    Attributes:
        text: The assistant's reply.
        tokens_in: Prompt tokens (as the provider counted them, else estimated).
        tokens_out: Reply tokens.
        cost_usd: Cost from the price table (0 for models without a price).
        model: The model that answered (as the provider reported it).
        latency_s: Wall time of the call.
        provider: The provider's name.
        finish_reason: ``stop``, ``length`` (cut at ``max_tokens``), ``tool_calls`` (the model
            waits for tool results) ... when known.
        tool_calls: The tools the model asked to call, in order (empty without tools).
    """

    text: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    model: str
    latency_s: float
    provider: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def total_tokens(self) -> int:
        """Prompt plus reply tokens."""
        return self.tokens_in + self.tokens_out


class LLMProvider(ABC):
    """A chat-completion backend. Implementations count tokens and cost on every call.

    Both methods raise :class:`~omium.sdk.providers.ProviderError` subclasses, never a
    transport library's errors.
    """

    name: str = "provider"

    @abstractmethod
    def complete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        step_id: str | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """Run one chat completion.

        Args:
            messages: The conversation so far.
            model: The model to use.
            max_tokens: Most reply tokens; a longer reply is cut (``finish_reason="length"``).
            temperature: Sampling temperature, when the provider supports it.
            timeout_s: Longest the call may take (the provider's default when None).
            agent: The calling agent, for scripting and traces.
            step_id: The calling step, for scripting and traces.
            tools: Tools the model may call; its calls come back in ``tool_calls``.

        Returns:
            The completion with token counts, cost and latency.
        """

    @abstractmethod
    async def acomplete(
        self,
        messages: Sequence[MessageLike],
        *,
        model: str,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        step_id: str | None = None,
        tools: Sequence[Tool] | None = None,
    ) -> Completion:
        """The asynchronous form of :meth:`complete` (same arguments and errors)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (the provider cannot be used afterwards)."""

    async def aclose(self) -> None:
        """Release connections opened by :meth:`acomplete`."""
        self.close()
