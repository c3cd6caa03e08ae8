"""A checkpoint above 64 KiB: its state goes to object storage (the AWS emulator) and still
round-trips through the saver, byte for byte."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from omium.integrations.langgraph import OmiumSaver
from omium.sdk.client import Client

pytestmark = pytest.mark.integration


def test_a_large_checkpoint_is_stored_in_object_storage(
    client_factory: Callable[..., Client],
) -> None:
    client = client_factory("developer")
    saver = OmiumSaver(client)
    thread = f"large-{uuid.uuid4().hex[:8]}"
    checkpoint: Any = empty_checkpoint()
    checkpoint["channel_values"] = {"document": "x" * 200_000, "n": 1}
    checkpoint["channel_versions"] = {"document": 1, "n": 1}
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    stored = saver.put(config, checkpoint, {"source": "input", "step": -1}, {})

    found = saver.get_tuple(stored)
    assert found is not None and found.checkpoint["channel_values"]["document"] == "x" * 200_000
    page = client.request("GET", "/api/v1/langgraph/checkpoints", params={"thread_id": thread})
    execution = client.get_execution(page["items"][0]["execution_id"])
    (recorded,) = execution.checkpoints
    assert recorded.storage == "object" and recorded.object_key is not None
    assert recorded.object_key.endswith(recorded.checksum) and recorded.size > 64 * 1024
