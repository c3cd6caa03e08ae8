"""Checkpoint state blobs: inline when small, in S3 (content-addressed) when large; always verified.

``put_state`` keeps a state of up to ``inline_max_bytes`` inline (it travels in the
``CheckpointCreated`` event) and uploads a larger one to ``<key_prefix>sha256/<hex>`` in the
checkpoint bucket. The key is the content's SHA-256, so identical states are stored once however
many checkpoints refer to them (DESIGN §5b). ``get_state`` checks size and SHA-256 on every
restore and fails closed with :class:`CorruptCheckpointError`: a state that loads wrong never
reaches an agent. ``collect_garbage`` deletes the objects no unpruned checkpoint refers to any
more (checkpoint retention, ``ExecutionsApplication.prune_checkpoints``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from omium.kernel.errors import OmiumError, PersistenceError
from omium.kernel.settings import AwsSettings

INLINE_STATE_LIMIT_BYTES = 256 * 1024
"""The most state the command side accepts inline in a checkpoint event."""

DEFAULT_INLINE_MAX_BYTES = 64 * 1024
"""States up to this size stay inline by default; larger ones go to object storage."""

DEFAULT_GC_GRACE = timedelta(hours=1)
"""Blobs modified more recently than this are never collected (their checkpoint may be on its
way to the event store)."""

_DELETE_BATCH = 1000
"""Keys per DeleteObjects request (the S3 maximum)."""

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_MD5_ETAG = re.compile(r'^"?([0-9a-f]{32})"?$')
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

Storage = Literal["inline", "object"]


@dataclass(frozen=True)
class CheckpointRef:
    """Where a checkpoint's state is and what it must hash to.

    Attributes:
        storage: ``inline`` (the bytes are in ``inline_state``) or ``object`` (in S3).
        checksum: Lowercase hex SHA-256 of the state.
        size: Size of the state in bytes.
        inline_state: The state, for inline storage.
        object_key: The S3 key, for object storage.
    """

    storage: Storage
    checksum: str
    size: int
    inline_state: bytes | None = None
    object_key: str | None = None

    def __post_init__(self) -> None:
        """Refuse a description the command side would refuse too."""
        if not _SHA256_HEX.match(self.checksum):
            raise ValueError("checksum must be a lowercase hex SHA-256")
        if self.size < 0:
            raise ValueError("size must not be negative")
        if self.storage == "inline":
            valid = isinstance(self.inline_state, bytes) and self.object_key is None
        elif self.storage == "object":
            valid = bool(self.object_key) and self.inline_state is None
        else:
            raise ValueError("storage must be 'inline' or 'object'")
        if not valid:
            where = "inline_state" if self.storage == "inline" else "object_key"
            raise ValueError(f"{self.storage} storage needs {where} and nothing else")

    def command_fields(self) -> dict[str, Any]:
        """The keyword arguments ``ExecutionsApplication.create_checkpoint`` takes for the blob."""
        return {
            "checksum": self.checksum,
            "size": self.size,
            "storage": self.storage,
            "inline_state": self.inline_state,
            "object_key": self.object_key,
        }


@dataclass(frozen=True)
class StoredBlob:
    """One content-addressed blob in the checkpoint bucket.

    Attributes:
        key: Its object key.
        size: Its size in bytes.
        last_modified: When it was uploaded or last reused.
    """

    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class GarbageReport:
    """What one garbage collection found and did.

    Attributes:
        scanned: Blobs listed.
        deleted: Keys deleted (or, in a dry run, that would be).
        deleted_bytes: Their total size.
        kept: Blobs left (referenced or within the grace period).
        kept_young: Of those, unreferenced ones kept for the grace period.
        dry_run: Nothing was deleted.
    """

    scanned: int
    deleted: tuple[str, ...]
    deleted_bytes: int
    kept: int
    kept_young: int
    dry_run: bool


class CorruptCheckpointError(OmiumError):
    """A checkpoint's state is missing or does not match its checksum; nothing was restored.

    Not retryable: the same bytes will fail the same way. Recovery picks an earlier checkpoint.

    Attributes:
        checkpoint_id: The checkpoint, when the caller named it.
        storage: ``inline`` or ``object``.
        object_key: The S3 key, for object storage.
        reason: ``checksum_mismatch``, ``size_mismatch`` or ``missing_blob``.
        expected_checksum: The checksum recorded with the checkpoint.
        actual_checksum: The checksum of the bytes found (None when none were found).
    """

    retryable = False

    def __init__(
        self,
        ref: CheckpointRef,
        *,
        reason: str,
        checkpoint_id: str | None,
        actual_checksum: str | None = None,
        detail: str = "",
    ) -> None:
        """Build the error from the reference that failed and why."""
        self.checkpoint_id = checkpoint_id
        self.storage = ref.storage
        self.object_key = ref.object_key
        self.reason = reason
        self.expected_checksum = ref.checksum
        self.actual_checksum = actual_checksum
        where = f"checkpoint {checkpoint_id}" if checkpoint_id else "checkpoint"
        where += f" (object {ref.object_key})" if ref.object_key else " (inline state)"
        super().__init__(f"{where}: {reason.replace('_', ' ')}{detail}; state not restored")


class BlobStoreError(PersistenceError):
    """Object storage could not be reached or refused a request (retry later).

    Attributes:
        operation: The S3 operation that failed.
        object_key: The key involved, if any.
    """

    def __init__(self, operation: str, object_key: str | None, message: str) -> None:
        """Build the error for one failed S3 operation."""
        self.operation = operation
        self.object_key = object_key
        super().__init__(f"object storage {operation} failed for {object_key or '-'}: {message}")


class CheckpointBlobStore:
    """Stores and restores checkpoint state (inline or S3), verifying every restore."""

    def __init__(
        self,
        client: Any,
        *,
        bucket: str,
        inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES,
        key_prefix: str = "",
    ) -> None:
        """Build a store on a boto3 S3 client.

        Args:
            client: A boto3 S3 client.
            bucket: The checkpoint bucket (created on first upload if missing).
            inline_max_bytes: Largest state kept inline (at most 256 KiB, the command side's
                limit).
            key_prefix: Put before ``sha256/<hex>``, e.g. ``"<tenant>/"`` to keep tenants'
                blobs apart (dedupe then works within a tenant).

        Raises:
            ValueError: ``inline_max_bytes`` is negative or above the limit.
        """
        if not 0 <= inline_max_bytes <= INLINE_STATE_LIMIT_BYTES:
            raise ValueError(f"inline_max_bytes must be 0..{INLINE_STATE_LIMIT_BYTES}")
        self._client = client
        self.bucket = bucket
        self.inline_max_bytes = inline_max_bytes
        self.key_prefix = key_prefix
        self._bucket_ready = False

    @classmethod
    def from_settings(
        cls,
        aws: AwsSettings,
        *,
        inline_max_bytes: int = DEFAULT_INLINE_MAX_BYTES,
        key_prefix: str = "",
    ) -> Self:
        """Build a store with its own S3 client from the AWS settings (no network yet)."""
        client = boto3.client(
            "s3",
            endpoint_url=aws.endpoint_url,
            region_name=aws.region,
            aws_access_key_id=aws.access_key_id.get_secret_value(),
            aws_secret_access_key=aws.secret_access_key.get_secret_value(),
            config=Config(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        return cls(
            client,
            bucket=aws.checkpoint_bucket,
            inline_max_bytes=inline_max_bytes,
            key_prefix=key_prefix,
        )

    def object_key_for(self, checksum: str) -> str:
        """The content-addressed key of a state with this SHA-256."""
        return f"{self.key_prefix}sha256/{checksum}"

    # Writing ------------------------------------------------------------------------------

    def put_state(self, state: bytes | bytearray | memoryview) -> CheckpointRef:
        """Store a state and describe where it is.

        Args:
            state: The serialised state.

        Returns:
            An inline reference (state of at most ``inline_max_bytes``), or an object reference
            to ``sha256/<hex>``, uploaded unless an intact copy is already there.

        Raises:
            TypeError: ``state`` is not bytes.
            BlobStoreError: Object storage failed.
        """
        if not isinstance(state, bytes | bytearray | memoryview):
            raise TypeError(f"state must be bytes, not {type(state).__name__}")
        data = bytes(state)
        checksum = hashlib.sha256(data).hexdigest()
        if len(data) <= self.inline_max_bytes:
            return CheckpointRef("inline", checksum, len(data), inline_state=data)
        key = self.object_key_for(checksum)
        self.ensure_bucket()
        if not self._has_intact_copy(key, data, checksum):
            self._upload(key, data, checksum)
        else:
            # Reused: renew its modification time so the garbage collector's grace period
            # covers it until the checkpoint that now refers to it is saved.
            self._touch(key, checksum)
        return CheckpointRef("object", checksum, len(data), object_key=key)

    def ensure_bucket(self) -> None:
        """Create the checkpoint bucket if it does not exist (checked once per store)."""
        if self._bucket_ready:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in _MISSING_CODES | {"NoSuchBucket"}:
                raise BlobStoreError("HeadBucket", None, str(exc)) from exc
            self._create_bucket()
        except BotoCoreError as exc:
            raise BlobStoreError("HeadBucket", None, str(exc)) from exc
        self._bucket_ready = True

    def _create_bucket(self) -> None:
        region = self._client.meta.region_name
        options: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            # S3 refuses an explicit us-east-1 constraint but needs every other region's.
            options["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**options)
        except ClientError as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise BlobStoreError("CreateBucket", None, str(exc)) from exc
        except BotoCoreError as exc:
            raise BlobStoreError("CreateBucket", None, str(exc)) from exc

    def _has_intact_copy(self, key: str, data: bytes, checksum: str) -> bool:
        # An existing object is reused only if it still looks like this content; a corrupted
        # or foreign object under the key is overwritten, which heals it for older refs too.
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise BlobStoreError("HeadObject", key, str(exc)) from exc
        except BotoCoreError as exc:
            raise BlobStoreError("HeadObject", key, str(exc)) from exc
        if head.get("ContentLength") != len(data):
            return False
        if head.get("Metadata", {}).get("sha256") != checksum:
            return False
        etag = _MD5_ETAG.match(str(head.get("ETag", "")))
        # A single-part upload's ETag is the MD5 of the content (not with SSE-KMS/multipart).
        return etag is None or etag.group(1) == hashlib.md5(data, usedforsecurity=False).hexdigest()

    def _upload(self, key: str, data: bytes, checksum: str) -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/octet-stream",
                Metadata={"sha256": checksum},
                # S3 verifies this on arrival, so a blob corrupted in transit is never stored.
                ChecksumSHA256=base64.b64encode(bytes.fromhex(checksum)).decode("ascii"),
            )
        except (ClientError, BotoCoreError) as exc:
            raise BlobStoreError("PutObject", key, str(exc)) from exc

    def _touch(self, key: str, checksum: str) -> None:
        try:
            self._client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"sha256": checksum},
                ContentType="application/octet-stream",
            )
        except (ClientError, BotoCoreError) as exc:
            raise BlobStoreError("CopyObject", key, str(exc)) from exc

    # Garbage collection -------------------------------------------------------------------

    def list_blobs(self) -> list[StoredBlob]:
        """Every content-addressed blob under this store's prefix (``<prefix>sha256/<hex>``).

        Only keys of that exact shape are listed, so nothing else in the bucket is ever
        collected; blobs under other prefixes (another deployment's, a tenant's LangGraph
        blobs) need a store with that prefix.

        Raises:
            BlobStoreError: Object storage failed.
        """
        self.ensure_bucket()
        blobs: list[StoredBlob] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.object_key_for("")
            )
            for page in pages:
                for item in page.get("Contents", []):
                    if not _SHA256_HEX.match(str(item["Key"])[len(self.object_key_for("")) :]):
                        continue  # not a blob this store wrote: never collected
                    blobs.append(
                        StoredBlob(str(item["Key"]), int(item["Size"]), item["LastModified"])
                    )
        except (ClientError, BotoCoreError) as exc:
            raise BlobStoreError("ListObjectsV2", None, str(exc)) from exc
        return blobs

    def collect_garbage(
        self,
        referenced: Callable[[], Collection[str]],
        *,
        grace: timedelta = DEFAULT_GC_GRACE,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> GarbageReport:
        """Delete the blobs no checkpoint refers to.

        The blobs are listed first and ``referenced()`` is asked after, so a checkpoint saved
        meanwhile is counted; a blob modified within ``grace`` of ``now`` stays whatever the
        answer (uploaded or reused, see :meth:`put_state`, for a checkpoint not saved yet).

        Args:
            referenced: Returns the object keys checkpoints still refer to (e.g.
                ``ExecutionsApplication.referenced_object_keys``).
            grace: Blobs modified more recently than this are kept.
            now: The time the grace period is measured from (default: the current time).
            dry_run: Only report what would be deleted.

        Raises:
            BlobStoreError: Object storage failed.
        """
        blobs = self.list_blobs()
        keep = set(referenced())
        cutoff = (now or datetime.now(UTC)) - grace
        doomed = [b for b in blobs if b.key not in keep and b.last_modified < cutoff]
        young = sum(1 for b in blobs if b.key not in keep and b.last_modified >= cutoff)
        if not dry_run:
            for start in range(0, len(doomed), _DELETE_BATCH):
                self._delete([b.key for b in doomed[start : start + _DELETE_BATCH]])
        return GarbageReport(
            scanned=len(blobs),
            deleted=tuple(b.key for b in doomed),
            deleted_bytes=sum(b.size for b in doomed),
            kept=len(blobs) - len(doomed),
            kept_young=young,
            dry_run=dry_run,
        )

    def _delete(self, keys: list[str]) -> None:
        try:
            answer = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
        except (ClientError, BotoCoreError) as exc:
            raise BlobStoreError("DeleteObjects", keys[0], str(exc)) from exc
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise BlobStoreError(
                "DeleteObjects", str(first.get("Key")), str(first.get("Message", first))
            )

    # Reading ------------------------------------------------------------------------------

    def get_state(self, ref: CheckpointRef, *, checkpoint_id: str | None = None) -> bytes:
        """Restore a state, verified against its size and SHA-256.

        Args:
            ref: Where the state is and what it must hash to.
            checkpoint_id: Named in the error if verification fails.

        Returns:
            The state's bytes.

        Raises:
            CorruptCheckpointError: The blob is missing, or its size or checksum differ.
            BlobStoreError: Object storage could not be read (retry later).
        """
        data = ref.inline_state if ref.storage == "inline" else self._download(ref, checkpoint_id)
        assert data is not None  # CheckpointRef guarantees inline refs carry their state
        if len(data) != ref.size:
            raise CorruptCheckpointError(
                ref,
                reason="size_mismatch",
                checkpoint_id=checkpoint_id,
                actual_checksum=hashlib.sha256(data).hexdigest(),
                detail=f" ({len(data)} bytes, expected {ref.size})",
            )
        actual = hashlib.sha256(data).hexdigest()
        if actual != ref.checksum:
            raise CorruptCheckpointError(
                ref, reason="checksum_mismatch", checkpoint_id=checkpoint_id, actual_checksum=actual
            )
        return data

    def _download(self, ref: CheckpointRef, checkpoint_id: str | None) -> bytes:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=ref.object_key)
            return bytes(response["Body"].read())
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES | {"NoSuchBucket"}:
                raise CorruptCheckpointError(
                    ref, reason="missing_blob", checkpoint_id=checkpoint_id
                ) from None
            raise BlobStoreError("GetObject", ref.object_key, str(exc)) from exc
        except BotoCoreError as exc:
            raise BlobStoreError("GetObject", ref.object_key, str(exc)) from exc


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
