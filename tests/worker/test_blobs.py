"""Checkpoint blobs: inline vs S3 (the local AWS emulator), dedupe, and fail-closed restores."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from omium.kernel.blobs import (
    DEFAULT_INLINE_MAX_BYTES,
    BlobStoreError,
    CheckpointBlobStore,
    CheckpointRef,
    CorruptCheckpointError,
)
from omium.kernel.errors import OmiumError, PersistenceError
from omium.kernel.settings import OmiumSettings

LARGE = os.urandom(300 * 1024)  # above the 256 KiB the command side takes inline


def inline_store() -> CheckpointBlobStore:
    # Inline states never touch S3, so no client is needed.
    return CheckpointBlobStore(None, bucket="unused")


def test_small_state_stays_inline_with_its_checksum() -> None:
    state = b'{"step": "draft", "attempt": 1}'

    ref = inline_store().put_state(state)

    assert ref == CheckpointRef(
        "inline", hashlib.sha256(state).hexdigest(), len(state), inline_state=state
    )
    assert inline_store().get_state(ref) == state
    assert ref.command_fields() == {
        "checksum": ref.checksum,
        "size": len(state),
        "storage": "inline",
        "inline_state": state,
        "object_key": None,
    }


def test_inline_corruption_is_detected() -> None:
    ref = inline_store().put_state(b"the real state")
    tampered = dataclasses.replace(ref, inline_state=b"the fake state")
    truncated = dataclasses.replace(ref, inline_state=b"the real")

    with pytest.raises(CorruptCheckpointError) as caught:
        inline_store().get_state(tampered, checkpoint_id="cp-7")
    error = caught.value
    assert (error.reason, error.checkpoint_id, error.storage) == (
        "checksum_mismatch",
        "cp-7",
        "inline",
    )
    assert error.expected_checksum == ref.checksum
    assert error.actual_checksum == hashlib.sha256(b"the fake state").hexdigest()
    assert "checkpoint cp-7 (inline state): checksum mismatch" in str(error)
    assert isinstance(error, OmiumError) and not isinstance(error, PersistenceError)
    with pytest.raises(CorruptCheckpointError, match="size mismatch"):
        inline_store().get_state(truncated)


def test_refs_are_checked_like_the_command_side_checks_them() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(ValueError, match="checksum"):
        CheckpointRef("inline", "ABC", 1, inline_state=b"x")
    with pytest.raises(ValueError, match="needs inline_state"):
        CheckpointRef("inline", digest, 1, object_key="sha256/x")
    with pytest.raises(ValueError, match="needs object_key"):
        CheckpointRef("object", digest, 1)
    with pytest.raises(ValueError, match="inline_max_bytes"):
        CheckpointBlobStore(None, bucket="b", inline_max_bytes=300 * 1024)
    with pytest.raises(TypeError):
        inline_store().put_state("text")  # type: ignore[arg-type]


# Against the AWS emulator ------------------------------------------------------------------


@pytest.fixture
def s3_client(stack: OmiumSettings) -> Any:
    aws = stack.aws
    return boto3.client(
        "s3",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=aws.access_key_id.get_secret_value(),
        aws_secret_access_key=aws.secret_access_key.get_secret_value(),
    )


@pytest.fixture
def store_factory(
    stack: OmiumSettings, s3_client: Any
) -> Iterator[Callable[..., CheckpointBlobStore]]:
    """Builds stores on a fresh bucket per test (deleted afterwards)."""
    buckets: list[str] = []

    def build(**options: Any) -> CheckpointBlobStore:
        bucket = f"omium-test-{uuid.uuid4().hex[:12]}"
        buckets.append(bucket)
        aws = stack.aws.model_copy(update={"checkpoint_bucket": bucket})
        return CheckpointBlobStore.from_settings(aws, **options)

    yield build
    for bucket in buckets:
        listing = s3_client.list_objects_v2(Bucket=bucket) if _exists(s3_client, bucket) else {}
        for item in listing.get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=item["Key"])
        if listing:
            s3_client.delete_bucket(Bucket=bucket)


def _exists(client: Any, bucket: str) -> bool:
    return any(b["Name"] == bucket for b in client.list_buckets()["Buckets"])


def count_uploads(store: CheckpointBlobStore) -> list[str]:
    uploads: list[str] = []
    store._client.meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: uploads.append(params["Key"])
    )
    return uploads


@pytest.mark.integration
def test_large_state_goes_to_s3_under_its_content_address(
    store_factory: Callable[..., CheckpointBlobStore], s3_client: Any
) -> None:
    store = store_factory()
    assert not _exists(s3_client, store.bucket)

    ref = store.put_state(LARGE)

    checksum = hashlib.sha256(LARGE).hexdigest()
    assert ref == CheckpointRef("object", checksum, len(LARGE), object_key=f"sha256/{checksum}")
    assert _exists(s3_client, store.bucket)  # created on first use
    stored = s3_client.get_object(Bucket=store.bucket, Key=ref.object_key)
    assert stored["Body"].read() == LARGE
    assert stored["Metadata"] == {"sha256": checksum}
    assert store.get_state(ref) == LARGE


@pytest.mark.integration
def test_the_inline_limit_is_configurable(
    store_factory: Callable[..., CheckpointBlobStore],
) -> None:
    store = store_factory(inline_max_bytes=16, key_prefix="tenant-a/")

    assert store.put_state(b"x" * 16).storage == "inline"
    ref = store.put_state(b"x" * 17)
    assert ref.storage == "object" and ref.object_key is not None
    assert ref.object_key.startswith("tenant-a/sha256/")
    assert store.get_state(ref) == b"x" * 17
    assert DEFAULT_INLINE_MAX_BYTES == 64 * 1024


@pytest.mark.integration
def test_identical_state_is_stored_once(
    store_factory: Callable[..., CheckpointBlobStore], s3_client: Any
) -> None:
    store = store_factory()
    uploads = count_uploads(store)

    first = store.put_state(LARGE)
    second = store.put_state(bytearray(LARGE))
    other = store.put_state(LARGE[:-1] + b"!")

    assert first == second and other.object_key != first.object_key
    assert uploads == [first.object_key, other.object_key]
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=store.bucket)["Contents"]]
    assert first.object_key is not None and other.object_key is not None
    assert sorted(keys) == sorted([first.object_key, other.object_key])


@pytest.mark.integration
def test_a_corrupted_blob_is_detected_on_restore_and_healed_by_the_next_put(
    store_factory: Callable[..., CheckpointBlobStore], s3_client: Any
) -> None:
    store = store_factory()
    ref = store.put_state(LARGE)
    corrupted = bytearray(LARGE)
    corrupted[1000] ^= 0xFF
    s3_client.put_object(
        Bucket=store.bucket,
        Key=ref.object_key,
        Body=bytes(corrupted),
        Metadata={"sha256": ref.checksum},
    )

    with pytest.raises(CorruptCheckpointError) as caught:
        store.get_state(ref, checkpoint_id="cp-42")
    error = caught.value
    assert (error.reason, error.checkpoint_id, error.object_key) == (
        "checksum_mismatch",
        "cp-42",
        ref.object_key,
    )
    assert error.actual_checksum == hashlib.sha256(bytes(corrupted)).hexdigest()
    assert f"checkpoint cp-42 (object {ref.object_key}): checksum mismatch" in str(error)

    uploads = count_uploads(store)
    assert store.put_state(LARGE) == ref
    assert uploads == [ref.object_key]  # the corrupted copy was not trusted for dedupe
    assert store.get_state(ref) == LARGE


@pytest.mark.integration
def test_a_missing_or_truncated_blob_fails_closed(
    store_factory: Callable[..., CheckpointBlobStore], s3_client: Any
) -> None:
    store = store_factory()
    ref = store.put_state(LARGE)
    s3_client.put_object(Bucket=store.bucket, Key=ref.object_key, Body=LARGE[:100])

    with pytest.raises(CorruptCheckpointError, match="size mismatch"):
        store.get_state(ref)
    s3_client.delete_object(Bucket=store.bucket, Key=ref.object_key)
    with pytest.raises(CorruptCheckpointError) as caught:
        store.get_state(ref, checkpoint_id="cp-1")
    assert caught.value.reason == "missing_blob"


@pytest.mark.integration
def test_an_unreachable_store_is_a_persistence_error(stack: OmiumSettings) -> None:
    aws = stack.aws.model_copy(update={"endpoint_url": "http://127.0.0.1:9"})
    store = CheckpointBlobStore.from_settings(aws)

    with pytest.raises(BlobStoreError) as caught:
        store.put_state(LARGE)
    assert isinstance(caught.value, PersistenceError)
    assert caught.value.operation == "HeadBucket"
