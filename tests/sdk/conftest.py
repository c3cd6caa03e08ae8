"""Fixtures for the SDK tests (no servers, except where a test starts its own on loopback)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sdk.helpers import MINIMAL_DEFINITION

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def definition_factory() -> Callable[..., dict[str, Any]]:
    """Builds a fresh copy of a small valid definition dict, with top-level keys overridden."""

    def build(**overrides: Any) -> dict[str, Any]:
        data = copy.deepcopy(MINIMAL_DEFINITION)
        data.update(copy.deepcopy(overrides))
        return data

    return build


@pytest.fixture
def example_path() -> Path:
    """The research-report example workflow."""
    return REPO_ROOT / "examples" / "workflows" / "research_report.yaml"
