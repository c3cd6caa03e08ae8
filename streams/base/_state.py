"""State tables: a local RocksDB copy per partition, backed by a compacted changelog topic.

The changelog is the state's durable form. Writes made while processing a batch are kept aside
(``pending``) and produced to the changelog inside the batch's Kafka transaction; only after the
transaction commits are they applied to the local copy. The local copy is a cache and is wiped and
rebuilt from the changelog (read committed) whenever a partition is assigned, so an instance that
died mid-transaction never resumes from state the broker did not commit.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict, WriteBatch

_TOMBSTONE = None
DEFAULT_RESTORE_BUFFER_BYTES = 4 * 1024 * 1024
"""Changelog bytes a restore holds in memory at most before writing them to RocksDB."""


def encode_value(value: Any) -> bytes:
    """The changelog form of a table value: compact JSON with sorted keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def decode_value(data: bytes) -> Any:
    """A table value back from its changelog form."""
    return json.loads(data)


class StateTable:
    """A ``key -> JSON value`` table, partitioned like the processor's input topics.

    A key's state lives in the partition of the input message that wrote it, so every instance
    only holds the state of the partitions it owns.

    Args:
        name: Table name, unique within the processor.
        changelog: The compacted topic that holds the table durably.
        directory: Folder for the local RocksDB copies (one sub-folder per partition).
    """

    def __init__(self, name: str, *, changelog: str, directory: Path) -> None:
        """Create an empty table; partitions are added by :meth:`restore`."""
        self.name = name
        self.changelog = changelog
        self._directory = directory
        self._options = Options(raw_mode=True)
        self._partitions: dict[int, Rdict] = {}
        self._pending: dict[tuple[int, str], bytes | None] = {}
        self.restore_peak_bytes = 0

    @property
    def partitions(self) -> list[int]:
        """The partitions held locally."""
        return sorted(self._partitions)

    def get(self, partition: int, key: str) -> Any | None:
        """The value of ``key`` (this transaction's write if any), or ``None``."""
        if (partition, key) in self._pending:
            data = self._pending[(partition, key)]
        else:
            data = self._db(partition).get(key.encode())
        return None if data is None else decode_value(data)

    def put(self, partition: int, key: str, value: Any) -> None:
        """Set ``key`` within the current transaction."""
        self._pending[(partition, key)] = encode_value(value)

    def delete(self, partition: int, key: str) -> None:
        """Remove ``key`` within the current transaction (a tombstone on the changelog)."""
        self._pending[(partition, key)] = _TOMBSTONE

    def items(self, partition: int) -> Iterator[tuple[str, Any]]:
        """Every ``(key, value)`` of a partition, this transaction's writes included."""
        pending = {k: v for (p, k), v in self._pending.items() if p == partition}
        for raw_key, data in self._db(partition).items():
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            if key not in pending:
                yield key, decode_value(data)
        for key, data in pending.items():
            if data is not None:
                yield key, decode_value(data)

    def pending_changes(self) -> list[tuple[int, str, bytes | None]]:
        """This transaction's writes as ``(partition, key, value or None)``, to produce."""
        return [(p, k, v) for (p, k), v in self._pending.items()]

    def commit_local(self) -> None:
        """Apply this transaction's writes to the local copies (after the Kafka commit)."""
        for (partition, key), data in self._pending.items():
            db = self._partitions.get(partition)
            if db is None:
                continue  # the partition was revoked meanwhile; its next owner restores it
            if data is None:
                db.delete(key.encode())
            else:
                db.put(key.encode(), data)
        self._pending.clear()

    def rollback_local(self) -> None:
        """Forget this transaction's writes (the Kafka transaction was aborted)."""
        self._pending.clear()

    def restore(
        self,
        partition: int,
        records: Iterable[tuple[bytes, bytes | None]],
        *,
        buffer_bytes: int = DEFAULT_RESTORE_BUFFER_BYTES,
    ) -> int:
        """Wipe a partition's local copy and rebuild it from changelog records, in order.

        Streaming: ``records`` is consumed as it comes (the runtime passes a generator reading
        the changelog) and written to RocksDB in write batches of at most ``buffer_bytes``, so a
        table larger than memory restores; nothing holds the whole changelog.

        Returns:
            How many changelog records were applied. ``restore_peak_bytes`` then holds the
            largest write batch it buffered.
        """
        self.drop(partition)
        path = self._directory / str(partition)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        db = Rdict(str(path), self._options)
        count, buffered, peak = 0, 0, 0
        batch = WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            buffered += len(key) + (0 if value is None else len(value))
            count += 1
            if buffered >= buffer_bytes:
                peak = max(peak, buffered)
                db.write(batch)
                batch = WriteBatch(raw_mode=True)
                buffered = 0
        if not batch.is_empty():
            peak = max(peak, buffered)
            db.write(batch)
        self.restore_peak_bytes = peak
        self._partitions[partition] = db
        return count

    def drop(self, partition: int) -> None:
        """Close and forget a partition's local copy (it was revoked)."""
        db = self._partitions.pop(partition, None)
        if db is not None:
            db.close()
        self._pending = {k: v for k, v in self._pending.items() if k[0] != partition}

    def close(self) -> None:
        """Close every local copy."""
        for partition in list(self._partitions):
            self.drop(partition)

    def _db(self, partition: int) -> Rdict:
        db = self._partitions.get(partition)
        if db is None:
            raise KeyError(f"table {self.name!r} does not hold partition {partition}")
        return db
