"""The Timestream projection: metric series for AWS-side dashboards and long-term queries.

Writes go through boto3 ``timestream-write`` (the moto emulator locally) in calls of at most 100
records, Timestream's limit. Offsets stay in Kafka, committed after every call of a batch
succeeded; records Timestream rejects are dead-lettered with its reason, and throttling or
server errors fail the batch, which is read again (identical records are idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from omium.kernel.kafka import Area, ConsumedEvent
from omium.kernel.settings import AwsSettings
from omium.projections.base import BatchingProjection, Expected, FlushResult, Offsets
from omium.projections.base.errors import ProjectionStoreError
from omium.projections.timestream._records import MAPPERS, Record

MAX_RECORDS_PER_CALL = 100
"""Timestream refuses a WriteRecords call with more."""


def timestream_client(aws: AwsSettings) -> Any:
    """A ``timestream-write`` client for the configured endpoint (the emulator locally)."""
    return boto3.client(
        "timestream-write",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=aws.access_key_id.get_secret_value(),
        aws_secret_access_key=aws.secret_access_key.get_secret_value(),
    )


class TimestreamProjection(BatchingProjection[Record]):
    """Step latency, tokens, cost, failures, violations and reported metrics.

    Args:
        client: A ``timestream-write`` client.
        database: Timestream database.
        table: Table in it (one per topic prefix).
    """

    name = "timestream"
    areas = (Area.EXECUTIONS, Area.FAILURES, Area.POLICIES, Area.METRICS)

    def __init__(self, client: Any, *, database: str, table: str) -> None:
        super().__init__()
        self._client = client
        self.database = database
        self.table = table
        self.calls = 0

    @classmethod
    def open(cls, aws: AwsSettings, *, topic_prefix: str) -> Self:
        """Connect and create the database and table if they do not exist."""
        projection = cls(
            timestream_client(aws),
            database=aws.timestream_database,
            table=f"{topic_prefix}-metrics",
        )
        projection.install()
        return projection

    def install(self) -> None:
        """Create the database and table (already existing ones are fine)."""
        for call, kwargs in (
            (self._client.create_database, {"DatabaseName": self.database}),
            (self._client.create_table, {"DatabaseName": self.database, "TableName": self.table}),
        ):
            try:
                call(**kwargs)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConflictException":
                    raise ProjectionStoreError(f"Timestream setup failed: {exc}") from exc

    def prepare(self, consumed: ConsumedEvent) -> Sequence[Record]:
        """The records of one event."""
        mapper = MAPPERS.get(consumed.event["event_type"])
        return mapper(consumed.event) if mapper is not None else ()

    def write(
        self,
        batch: Sequence[tuple[ConsumedEvent, Sequence[Record]]],
        offsets: Offsets,
        expected: Expected,
    ) -> FlushResult:
        """Write the records in calls of at most 100; collect rejected ones."""
        pairs = [(consumed, record) for consumed, records in batch for record in records]
        rejected: dict[int, tuple[ConsumedEvent, str]] = {}
        for start in range(0, len(pairs), MAX_RECORDS_PER_CALL):
            chunk = pairs[start : start + MAX_RECORDS_PER_CALL]
            for index, reason in self._write_chunk([record for _, record in chunk]):
                owner = chunk[index][0]
                rejected.setdefault(id(owner), (owner, f"Timestream rejected: {reason}"))
        return FlushResult(events=len(batch), writes=len(pairs), rejected=list(rejected.values()))

    def _write_chunk(self, records: list[Record]) -> list[tuple[int, str]]:
        self.calls += 1
        try:
            self._client.write_records(
                DatabaseName=self.database, TableName=self.table, Records=records
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "RejectedRecordsException":
                found = exc.response.get("RejectedRecords", [])
                return [(int(r["RecordIndex"]), str(r.get("Reason"))) for r in found]
            raise ProjectionStoreError(f"Timestream write failed: {exc}") from exc
        except BotoCoreError as exc:
            raise ProjectionStoreError(f"Timestream unreachable: {exc}") from exc
        return []
