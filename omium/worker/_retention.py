"""Checkpoint retention: prune runs by their workflow's ``policies.checkpoints``, collect blobs.

:class:`CheckpointJanitor` is what ``omium checkpoints prune`` runs (on a schedule, e.g. a
CronJob). For each run with checkpoints it reads the retention of the run's workflow version
(``policies.checkpoints: {keep_last, max_age}``) and records ``CheckpointsPruned`` for what that
rule lets go (``ExecutionsApplication.prune_checkpoints``; the latest checkpoint of each step at
each position always stays). Then the blob collector deletes the objects no unpruned checkpoint
refers to (``CheckpointBlobStore.collect_garbage``), never one modified within its grace period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pydantic
import structlog

from omium.commands import (
    CommandApplications,
    ConflictError,
    InvalidCommandError,
    NotFoundError,
)
from omium.kernel.blobs import DEFAULT_GC_GRACE, CheckpointBlobStore, GarbageReport
from omium.kernel.retry import retrying
from omium.sdk.workflow import CheckpointRetention

log = structlog.get_logger("omium.checkpoints")

_CONFLICT_ATTEMPTS = 5
"""Attempts to prune a run that others keep writing to before it is skipped for this pass."""


@dataclass
class PruneReport:
    """What one pruning pass did.

    Attributes:
        runs_checked: Runs with checkpoints looked at.
        runs_with_retention: Of those, runs whose workflow version sets a retention.
        pruned: Checkpoint ids pruned now, by run.
        skipped: Runs left alone and why (workflow gone, retention invalid, a run written to
            so busily that every attempt conflicted ...).
    """

    runs_checked: int = 0
    runs_with_retention: int = 0
    pruned: dict[UUID, list[str]] = field(default_factory=dict)
    skipped: dict[UUID, str] = field(default_factory=dict)

    @property
    def checkpoints_pruned(self) -> int:
        """Checkpoints pruned in all runs."""
        return sum(len(ids) for ids in self.pruned.values())


class CheckpointJanitor:
    """Applies workflows' checkpoint retention to their runs and collects unreferenced blobs."""

    def __init__(
        self,
        apps: CommandApplications,
        blobs: CheckpointBlobStore | Sequence[CheckpointBlobStore] = (),
    ) -> None:
        """Work on these applications' event store and (for :meth:`collect`) these stores.

        Each store collects the blobs under its own key prefix (the worker writes under
        ``<topic prefix>/``, the LangGraph saver under ``<tenant>/``); give one per prefix whose
        checkpoints live in this event store, and none whose checkpoints live elsewhere.
        """
        self._apps = apps
        self._stores = [blobs] if isinstance(blobs, CheckpointBlobStore) else list(blobs)
        self._retention: dict[tuple[str, UUID, int], CheckpointRetention | None] = {}

    def retention_of(
        self, tenant_id: str, workflow_id: UUID, version: int
    ) -> CheckpointRetention | None:
        """The ``policies.checkpoints`` of a workflow version (``None``: keep everything).

        Raises:
            NotFoundError: The workflow or version is not there.
            pydantic.ValidationError: The stored retention is not valid.
        """
        key = (tenant_id, workflow_id, version)
        if key not in self._retention:
            view = self._apps.workflows.get_workflow(
                tenant_id, workflow_id, definition_version=version
            )
            policies: Any = dict(view.definition).get("policies") or {}
            spec = policies.get("checkpoints") if isinstance(policies, dict) else None
            self._retention[key] = (
                None if spec is None else CheckpointRetention.model_validate(spec)
            )
        return self._retention[key]

    def prune(self, *, tenant_id: str | None = None, now: datetime | None = None) -> PruneReport:
        """Prune every run (of one tenant, or all) whose workflow version sets a retention.

        Args:
            tenant_id: Only this tenant's runs.
            now: The time ages are measured at (default: the application's clock).
        """
        report = PruneReport()
        executions = self._apps.executions
        for run, tenant in executions.runs_with_checkpoints(tenant_id).items():
            report.runs_checked += 1
            try:
                view = executions.get_execution(tenant, run)
                rule = self.retention_of(tenant, view.workflow_id, view.workflow_version)
            except (NotFoundError, InvalidCommandError, pydantic.ValidationError) as exc:
                report.skipped[run] = f"{type(exc).__name__}: {exc}"
                log.warning("checkpoints.skipped", execution_id=str(run), reason=str(exc))
                continue
            if rule is None:
                continue
            report.runs_with_retention += 1
            try:
                # A conflict only means the run moved on while we decided (a worker wrote):
                # nothing was written, and the next attempt decides on the newer version.
                result = retrying(ConflictError, attempts=_CONFLICT_ATTEMPTS)(
                    executions.prune_checkpoints,
                    tenant,
                    run,
                    keep_last=rule.keep_last,
                    max_age=rule.max_age_delta(),
                    now=now,
                )
            except ConflictError as exc:
                report.skipped[run] = f"{type(exc).__name__}: {exc}"
                log.warning("checkpoints.skipped", execution_id=str(run), reason=str(exc))
                continue
            pruned = list(result.data.get("pruned") or [])
            if pruned:
                report.pruned[run] = pruned
                log.info("checkpoints.pruned", execution_id=str(run), checkpoints=len(pruned))
        return report

    def collect(
        self, *, grace: timedelta = DEFAULT_GC_GRACE, dry_run: bool = False
    ) -> GarbageReport:
        """Delete the blobs no unpruned checkpoint refers to, in every store (see
        ``CheckpointBlobStore.collect_garbage``); one report for all of them.

        Raises:
            RuntimeError: The janitor has no blob store.
        """
        if not self._stores:
            raise RuntimeError("this janitor has no blob store to collect")
        reports = [
            store.collect_garbage(
                self._apps.executions.referenced_object_keys, grace=grace, dry_run=dry_run
            )
            for store in self._stores
        ]
        report = GarbageReport(
            scanned=sum(r.scanned for r in reports),
            deleted=tuple(key for r in reports for key in r.deleted),
            deleted_bytes=sum(r.deleted_bytes for r in reports),
            kept=sum(r.kept for r in reports),
            kept_young=sum(r.kept_young for r in reports),
            dry_run=dry_run,
        )
        log.info(
            "checkpoints.collected",
            prefixes=[store.key_prefix for store in self._stores],
            scanned=report.scanned,
            deleted=len(report.deleted),
            deleted_bytes=report.deleted_bytes,
            dry_run=dry_run,
        )
        return report
