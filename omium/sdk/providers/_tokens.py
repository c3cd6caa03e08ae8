"""A deterministic token estimate, for providers that do not count and for post-conditions.

Real tokenizers are model-specific; this estimate only needs to be stable and roughly right for
English (about one token per short word): each word counts ``ceil(len / 6)`` tokens, each
punctuation mark one. Chat messages add a few tokens of framing each, as chat APIs do.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

_PIECES = re.compile(r"\w+|[^\w\s]")

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat message costs beyond its content (role and separators)."""

REPLY_OVERHEAD_TOKENS = 3
"""Tokens that prime the assistant's reply in a chat request."""


def count_tokens(text: str) -> int:
    """Estimate the tokens of a text (0 for an empty text)."""
    return sum(math.ceil(len(piece) / 6) for piece in _PIECES.findall(text))


def count_prompt_tokens(contents: Iterable[str]) -> int:
    """Estimate the prompt tokens of chat messages with these contents."""
    total = REPLY_OVERHEAD_TOKENS
    for content in contents:
        total += MESSAGE_OVERHEAD_TOKENS + count_tokens(content)
    return total


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` (cut after a whole piece) within ``max_tokens``."""
    used = 0
    end = 0
    for match in _PIECES.finditer(text):
        cost = math.ceil(len(match.group()) / 6)
        if used + cost > max_tokens:
            return text[:end]
        used += cost
        end = match.end()
    return text
