"""LangGraph threads on the write side: one execution per thread, one checkpoint per ``put``.

Shared by the gateway's ``/api/v1/langgraph`` routes and the embedded saver
(``AsyncOmiumSaver.from_conn_string``), so both modes behave the same: a ``put`` records a
``CheckpointCreated`` event and writes the checkpoint's read row in one transaction, reads come
from those rows (read-your-writes, no wait on Kafka), and the relay carries the event to Kafka.
"""

from omium.commands.langgraph._store import (
    InMemoryThreadStore,
    PostgresThreadStore,
    Query,
    StoredCheckpoint,
    StoredWrite,
    ThreadBinding,
    ThreadStore,
    decode_cursor,
    encode_cursor,
)
from omium.commands.langgraph._threads import (
    INLINE_MAX_BYTES,
    ROOT_STEP,
    WORKFLOW_NAME,
    LangGraphThreads,
    checkpoint_from,
    omium_checkpoint_id,
    page_of,
    step_id_for,
    store_for,
    writes_from,
)

__all__ = [
    # operations
    "LangGraphThreads",
    "store_for",
    # wire <-> stored
    "checkpoint_from",
    "page_of",
    "writes_from",
    # the store
    "InMemoryThreadStore",
    "PostgresThreadStore",
    "Query",
    "StoredCheckpoint",
    "StoredWrite",
    "ThreadBinding",
    "ThreadStore",
    "decode_cursor",
    "encode_cursor",
    # naming
    "INLINE_MAX_BYTES",
    "ROOT_STEP",
    "WORKFLOW_NAME",
    "omium_checkpoint_id",
    "step_id_for",
]
