"""Token estimates and the price table."""

from __future__ import annotations

import pytest

from omium.sdk.providers import (
    ModelPrice,
    PriceTable,
    count_prompt_tokens,
    count_tokens,
    truncate_to_tokens,
)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("hello", 1), ("Hello, world!", 4), ("internationalization", 4), ("a  b\nc", 3)],
)
def test_count_tokens_is_a_stable_estimate(text: str, tokens: int) -> None:
    assert count_tokens(text) == tokens


def test_prompt_tokens_add_message_framing() -> None:
    assert count_prompt_tokens([]) == 3
    assert count_prompt_tokens(["hello", "hello"]) == 3 + 2 * (4 + 1)


def test_truncate_keeps_whole_pieces_within_the_limit() -> None:
    text = "one two three four"

    assert truncate_to_tokens(text, 2) == "one two"
    assert count_tokens(truncate_to_tokens(text, 2)) == 2
    assert truncate_to_tokens(text, 10) == text
    assert truncate_to_tokens(text, 0) == ""


def test_prices_exact_snapshot_override_and_unknown() -> None:
    table = PriceTable({"local-llama": (0.0, 0.0), "gpt-4o": ModelPrice(5.0, 15.0)})

    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert table.cost("gpt-4o-mini-2024-07-18", 2000, 1000) == pytest.approx(0.0009)
    assert table.cost("gpt-4o", 1000, 1000) == pytest.approx(0.02)
    assert table.knows("local-llama") and table.cost("local-llama", 10, 10) == 0.0
    assert not table.knows("mystery") and table.cost("mystery", 10, 10) == 0.0
    assert PriceTable(include_defaults=False).price_for("gpt-4o") is None
