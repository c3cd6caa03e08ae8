"""Prices per model, so every call's cost is known (USD per million tokens)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CACHE_WRITE_FACTOR = 1.25
"""Prompt-cache writes cost this times the input price, unless a price says otherwise."""
CACHE_READ_FACTOR = 0.1
"""Prompt-cache reads cost this times the input price, unless a price says otherwise."""


@dataclass(frozen=True)
class ModelPrice:
    """What a model costs, in USD per million input and output tokens.

    Attributes:
        input_per_million: Uncached prompt tokens.
        output_per_million: Reply tokens.
        cache_write_per_million: Prompt tokens written to the provider's prompt cache
            (:data:`CACHE_WRITE_FACTOR` times the input price when unset).
        cache_read_per_million: Prompt tokens read from the cache
            (:data:`CACHE_READ_FACTOR` times the input price when unset).
    """

    input_per_million: float
    output_per_million: float
    cache_write_per_million: float | None = None
    cache_read_per_million: float | None = None

    def cost(
        self,
        tokens_in: int,
        tokens_out: int,
        *,
        cache_write_tokens: int = 0,
        cache_read_tokens: int = 0,
    ) -> float:
        """The cost in USD of a call with these token counts.

        ``tokens_in`` counts uncached prompt tokens only; cached ones are passed apart.
        """
        write = self.cache_write_per_million
        read = self.cache_read_per_million
        total = (
            tokens_in * self.input_per_million
            + tokens_out * self.output_per_million
            + cache_write_tokens
            * (write if write is not None else self.input_per_million * CACHE_WRITE_FACTOR)
            + cache_read_tokens
            * (read if read is not None else self.input_per_million * CACHE_READ_FACTOR)
        )
        # Rounded so sums over many calls do not show float noise in reports.
        return round(total / 1_000_000, 10)


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    # Public list prices (USD per 1M tokens) at the time of writing; override them in
    # settings (OMIUM_LLM__PRICES) when they change or for self-hosted models.
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "o3-mini": ModelPrice(1.10, 4.40),
    "o4-mini": ModelPrice(1.10, 4.40),
    # Anthropic (prompt-cache writes 1.25x and reads 0.1x the input price).
    "claude-opus-4-5": ModelPrice(5.00, 25.00),
    "claude-opus-4-1": ModelPrice(15.00, 75.00),
    "claude-opus-4": ModelPrice(15.00, 75.00),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00),
    "claude-sonnet-4": ModelPrice(3.00, 15.00),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00),
    "claude-3-5-sonnet": ModelPrice(3.00, 15.00),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00),
    "claude-3-opus": ModelPrice(15.00, 75.00),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
}
"""Built-in prices; a dated snapshot (``gpt-4o-mini-2024-07-18``) uses its base model's price."""


class PriceTable:
    """Looks up a model's price: exact name first, else the longest known prefix.

    A model that is in neither costs 0 (and :meth:`knows` says so), so a missing price never
    fails a call; budgets on unknown models should be set in tokens.
    """

    def __init__(
        self,
        prices: Mapping[str, ModelPrice | tuple[float, float]] | None = None,
        *,
        include_defaults: bool = True,
    ) -> None:
        """Build a table.

        Args:
            prices: Model -> price (or ``(input, output)`` USD per million tokens); these win
                over the defaults.
            include_defaults: Start from :data:`DEFAULT_PRICES`.
        """
        table: dict[str, ModelPrice] = dict(DEFAULT_PRICES) if include_defaults else {}
        for model, price in (prices or {}).items():
            table[model] = price if isinstance(price, ModelPrice) else ModelPrice(*price)
        self._prices = table

    def price_for(self, model: str) -> ModelPrice | None:
        """The price of a model, or None when unknown."""
        if model in self._prices:
            return self._prices[model]
        prefixes = [name for name in self._prices if model.startswith(f"{name}-")]
        return self._prices[max(prefixes, key=len)] if prefixes else None

    def knows(self, model: str) -> bool:
        """Whether the model has a price."""
        return self.price_for(model) is not None

    def cost(
        self,
        model: str,
        tokens_in: int,
        tokens_out: int,
        *,
        cache_write_tokens: int = 0,
        cache_read_tokens: int = 0,
    ) -> float:
        """The cost in USD of a call (0 for an unknown model); see :meth:`ModelPrice.cost`."""
        price = self.price_for(model)
        if price is None:
            return 0.0
        return price.cost(
            tokens_in,
            tokens_out,
            cache_write_tokens=cache_write_tokens,
            cache_read_tokens=cache_read_tokens,
        )
