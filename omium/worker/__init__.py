"""The execution worker: runs steps, checkpoints state, reports outcomes as commands."""

from omium.worker._blobs import (
    BlobStoreError,
    CheckpointBlobStore,
    CheckpointRef,
    CorruptCheckpointError,
)

__all__ = [
    # checkpoint state
    "BlobStoreError",
    "CheckpointBlobStore",
    "CheckpointRef",
    "CorruptCheckpointError",
]
