"""How LangGraph threads become Omium executions: the gateway's routes and the embedded saver.

- A thread is one execution of the tenant's ``langgraph`` workflow, started on its first
  checkpoint with an idempotency key derived from the thread id (and how often the thread was
  deleted), so two concurrent first ``put``s start one execution, not two.
- A checkpoint namespace is one step of that execution (``graph`` for the root graph), scheduled
  and started on first use. The workflow is marked ``executor: external``: nothing in Omium
  runs these steps, LangGraph does.
- A ``put`` is recorded with ``create_checkpoint`` (position ``after``; state inline up to
  64 KiB, else content-addressed in object storage), under a key derived from the checkpoint and
  its checksum, so a retried ``put`` records nothing new; its read row commits in the same
  transaction as the event.
- A long-lived :class:`LangGraphThreads` (the embedded saver's) remembers each thread's binding
  and started steps, so a ``put`` on a known thread reads nothing before it writes: the
  execution's version is checked by the event store's unique key, and a thread deleted by
  another process shows up as a refused command, after which the binding is read again.

Every write-side call runs in the caller's tenant, through the same command handlers as the
REST routes, so refusals (a halted run, a stale version) surface as the usual problems.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder

from omium.commands._application import also_writing
from omium.commands._result import CommandResult
from omium.commands._suite import CommandApplications
from omium.commands.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidCommandError,
    InvalidTransitionError,
)
from omium.commands.langgraph._store import (
    InMemoryThreadStore,
    PostgresThreadStore,
    StoredCheckpoint,
    StoredWrite,
    ThreadBinding,
    ThreadStore,
    encode_cursor,
)
from omium.commands.workflows import workflow_id
from omium.kernel.blobs import CheckpointBlobStore
from omium.kernel.retry import retrying
from omium.kernel.settings import AwsSettings

WORKFLOW_NAME = "langgraph"
WORKFLOW_DEFINITION: dict[str, Any] = {
    "description": "LangGraph threads checkpointed through omium.integrations.langgraph: "
    "one execution per thread, one step per checkpoint namespace.",
    "executor": "external",
    "integration": "langgraph",
    "steps": [{"id": "graph", "agent": "langgraph"}],
}
ROOT_STEP = "graph"
INLINE_MAX_BYTES = 64 * 1024
_ID_SAFE = re.compile(r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$")
_MAX_ID = 200
# A graph puts its subgraphs' checkpoints concurrently with its own, and all of them land on
# one execution: a put that loses the optimistic-concurrency race is applied again to the
# execution as it is now (the application reloads it: nothing to wait for).
_CONFLICT_RETRIES = 16


def _key(*parts: object) -> str:
    """An idempotency key for an internal command (same parts, same key)."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    return f"langgraph:{digest[:48]}"


def step_id_for(checkpoint_ns: str) -> str:
    """The Omium step of a checkpoint namespace (``graph`` for the root graph)."""
    if not checkpoint_ns:
        return ROOT_STEP
    if len(checkpoint_ns) <= _MAX_ID and _ID_SAFE.match(checkpoint_ns):
        return checkpoint_ns
    return "ns-" + hashlib.sha256(checkpoint_ns.encode()).hexdigest()[:32]


def omium_checkpoint_id(step_id: str, checkpoint_id: str) -> str:
    """The Omium checkpoint id of a LangGraph checkpoint (ids repeat across namespaces)."""
    candidate = checkpoint_id if step_id == ROOT_STEP else f"{step_id}/{checkpoint_id}"
    if len(candidate) <= _MAX_ID and _ID_SAFE.match(candidate):
        return candidate
    return "cp-" + hashlib.sha256(candidate.encode()).hexdigest()[:40]


def retry_conflicts(
    command: Callable[..., CommandResult], *args: Any, **kwargs: Any
) -> CommandResult:
    """Run a write-side command again when a concurrent one changed its execution first.

    Safe because these commands carry no expected version: a conflict only means the save lost
    a race, nothing was written, and the command still applies to the newer version, which the
    next attempt loads (the application brings its cached copy up to date): no sleep needed.
    """
    return retrying(ConflictError, attempts=_CONFLICT_RETRIES)(command, *args, **kwargs)


def store_for(apps: CommandApplications) -> ThreadStore:
    """The thread store of a write side: beside the event store when it is PostgreSQL."""
    recorder = apps.executions.recorder
    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresThreadStore(recorder.datastore)
    return InMemoryThreadStore()


def checkpoint_from(body: Mapping[str, Any]) -> StoredCheckpoint:
    """A ``put`` body (the saver's JSON, blob in base64) as a checkpoint to store."""
    blob = body["checkpoint"]
    return StoredCheckpoint(
        thread_id=body["thread_id"],
        checkpoint_ns=body.get("checkpoint_ns", ""),
        checkpoint_id=body["checkpoint_id"],
        parent_checkpoint_id=body.get("parent_checkpoint_id"),
        type=blob["type"],
        data=base64.b64decode(blob["data"]),
        metadata=body.get("metadata", {}),
    )


def writes_from(body: Mapping[str, Any]) -> tuple[tuple[str, str, str], list[StoredWrite], bool]:
    """A ``put_writes`` body as the checkpoint's key, the writes and whether they replace."""
    key = (body["thread_id"], body.get("checkpoint_ns", ""), body["checkpoint_id"])
    writes = [
        StoredWrite(
            task_id=body["task_id"],
            idx=w["idx"],
            channel=w["channel"],
            type=w["value"]["type"],
            data=base64.b64decode(w["value"]["data"]),
            task_path=body.get("task_path", ""),
        )
        for w in body["writes"]
    ]
    return key, writes, bool(body.get("replace", False))


def page_of(found: list[StoredCheckpoint], limit: int) -> dict[str, Any]:
    """The JSON page of found checkpoints (a cursor when the page is full)."""
    items = [
        {
            "thread_id": c.thread_id,
            "checkpoint_ns": c.checkpoint_ns,
            "checkpoint_id": c.checkpoint_id,
            "parent_checkpoint_id": c.parent_checkpoint_id,
            "checkpoint": _blob(c.type, c.data),
            "metadata": c.metadata,
            "execution_id": None if c.execution_id is None else str(c.execution_id),
            "omium_checkpoint_id": c.omium_checkpoint_id,
            "pending_writes": [
                {
                    "task_id": w.task_id,
                    "channel": w.channel,
                    "idx": w.idx,
                    "task_path": w.task_path,
                    "value": _blob(w.type, w.data),
                }
                for w in c.writes
            ],
        }
        for c in found
    ]
    cursor = encode_cursor(found[-1].key) if len(found) == limit and found else None
    return {"items": items, "next_cursor": cursor}


def _blob(type_: str, data: bytes) -> dict[str, str]:
    return {"type": type_, "data": base64.b64encode(data).decode("ascii")}


@dataclass
class LangGraphThreads:
    """LangGraph operations of one tenant on the write side and the thread store.

    The gateway makes one per request; the embedded saver keeps one, whose remembered bindings
    spare every later ``put`` on a thread its reads.
    """

    apps: CommandApplications
    tenant_id: str
    store: ThreadStore
    aws: AwsSettings
    requested_by: str | None = None
    _bindings: dict[str, ThreadBinding] = field(default_factory=dict, repr=False)

    # --- put -------------------------------------------------------------------------------

    def put(self, checkpoint: StoredCheckpoint) -> StoredCheckpoint:
        """Record the checkpoint in the thread's execution and its row, in one transaction."""
        try:
            return self._put(checkpoint)
        except (InvalidTransitionError, InvalidCommandError):
            # A remembered binding may be stale (another process deleted the thread and
            # cancelled its execution): read it again once before refusing.
            if self._bindings.pop(checkpoint.thread_id, None) is None:
                raise
            return self._put(checkpoint)

    def _put(self, checkpoint: StoredCheckpoint) -> StoredCheckpoint:
        binding = self._binding(checkpoint.thread_id)
        assert binding.execution_id is not None
        step = step_id_for(checkpoint.checkpoint_ns)
        binding = self._ensure_step(checkpoint.thread_id, binding, step)
        recorded = self._record(binding, step, checkpoint)
        return replace(checkpoint, execution_id=binding.execution_id, omium_checkpoint_id=recorded)

    def put_writes(
        self, key: tuple[str, str, str], writes: list[StoredWrite], *, replace: bool
    ) -> None:
        """Store a task's pending writes for the checkpoint ``(thread, ns, checkpoint)``."""
        self.store.put_writes(self.tenant_id, key, writes, replace=replace)

    def _binding(self, thread_id: str) -> ThreadBinding:
        remembered = self._bindings.get(thread_id)
        if remembered is not None:
            return remembered
        # Loops only when the thread is deleted between reading and binding it (a new
        # generation then needs its own execution).
        while True:
            binding = self.store.binding(self.tenant_id, thread_id)
            if binding is not None and binding.execution_id is not None:
                self._bindings[thread_id] = binding
                return binding
            generation = 0 if binding is None else binding.generation
            started = self.apps.executions.start_execution(
                self.tenant_id,
                workflow_id=self._workflow(),
                workflow_version=1,
                input={"integration": "langgraph", "thread_id": thread_id},
                idempotency_key=_key("thread", thread_id, generation),
            )
            self.store.bind(self.tenant_id, thread_id, generation, started.aggregate_id)

    def _workflow(self) -> UUID:
        try:
            result = self.apps.workflows.register_workflow(
                self.tenant_id,
                name=WORKFLOW_NAME,
                definition=WORKFLOW_DEFINITION,
                idempotency_key=_key("workflow", 1),
            )
        except AlreadyExistsError:
            return workflow_id(self.tenant_id, WORKFLOW_NAME)
        return result.aggregate_id

    def _ensure_step(self, thread_id: str, binding: ThreadBinding, step: str) -> ThreadBinding:
        if step in binding.steps:
            return binding
        eid, generation = binding.execution_id, binding.generation
        for verb, call in (
            ("schedule", self.apps.executions.schedule_step),
            ("start", self.apps.executions.start_step),
        ):
            try:
                retry_conflicts(
                    call,
                    self.tenant_id,
                    eid,
                    step_id=step,
                    idempotency_key=_key(verb, thread_id, generation, step),
                )
            except InvalidCommandError as exc:
                # Another request got there first: the step is scheduled or running already.
                if not (exc.reason or "").startswith("step_"):
                    raise
        self.store.add_step(self.tenant_id, thread_id, generation, step)
        started = replace(binding, steps=binding.steps | {step})
        if thread_id in self._bindings:
            self._bindings[thread_id] = started
        return started

    def _record(self, binding: ThreadBinding, step: str, checkpoint: StoredCheckpoint) -> str:
        blob = self._blob_fields(checkpoint.data)
        cid = omium_checkpoint_id(step, checkpoint.checkpoint_id)
        key = _key(
            "checkpoint",
            binding.execution_id,
            checkpoint.checkpoint_ns,
            checkpoint.checkpoint_id,
            blob["checksum"],
        )
        try:
            self._create_checkpoint(binding, step, cid, key, blob, checkpoint)
        except InvalidCommandError as exc:
            if exc.reason != "duplicate_checkpoint":
                raise
            # The same checkpoint id stored again with other content: a new Omium checkpoint.
            cid = f"{cid[: _MAX_ID - 17]}~{blob['checksum'][:16]}"
            self._create_checkpoint(binding, step, cid, key + "~", blob, checkpoint)
        return cid

    def _create_checkpoint(
        self,
        binding: ThreadBinding,
        step: str,
        cid: str,
        key: str,
        blob: dict[str, Any],
        checkpoint: StoredCheckpoint,
    ) -> None:
        row = replace(checkpoint, execution_id=binding.execution_id, omium_checkpoint_id=cid)

        def write_row(cursor: Any) -> None:
            self.store.put_checkpoint(self.tenant_id, row, cursor=cursor)

        with also_writing(write_row):
            result = retry_conflicts(
                self.apps.executions.create_checkpoint,
                self.tenant_id,
                binding.execution_id,
                step_id=step,
                position="after",
                checkpoint_id=cid,
                idempotency_key=key,
                **blob,
            )
        if result.replayed:
            # Recorded before (a retried put): its row committed then, unless the thread was
            # pruned since; writing it again is idempotent.
            self.store.put_checkpoint(self.tenant_id, row)

    def _blob_fields(self, data: bytes) -> dict[str, Any]:
        if len(data) <= INLINE_MAX_BYTES:
            return {
                "checksum": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "storage": "inline",
                "inline_state": data,
                "object_key": None,
            }
        store = CheckpointBlobStore.from_settings(
            self.aws, inline_max_bytes=INLINE_MAX_BYTES, key_prefix=f"{self.tenant_id}/"
        )
        return store.put_state(data).command_fields()

    # --- threads ---------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> tuple[int, UUID | None]:
        """Delete the thread's checkpoints and writes and cancel its execution."""
        self._bindings.pop(thread_id, None)
        count, old = self.store.delete_thread(self.tenant_id, thread_id)
        if old is None or old.execution_id is None:
            return count, None
        # An execution that already ended (or was halted) keeps its end state.
        with contextlib.suppress(InvalidTransitionError):
            retry_conflicts(
                self.apps.executions.cancel_execution,
                self.tenant_id,
                old.execution_id,
                reason="LangGraph thread deleted",
                requested_by=self.requested_by,
                idempotency_key=_key("delete", thread_id, old.generation),
            )
        return count, old.execution_id

    def copy_thread(self, source: str, target: str) -> int:
        """Put every checkpoint of ``source`` (oldest first) and its writes into ``target``."""
        history = self.store.history(self.tenant_id, source)
        for checkpoint in history:
            moved = replace(
                checkpoint, thread_id=target, execution_id=None, omium_checkpoint_id=None, writes=()
            )
            self.put(moved)
            self.store.put_writes(
                self.tenant_id,
                (target, checkpoint.checkpoint_ns, checkpoint.checkpoint_id),
                checkpoint.writes,
                replace=True,
            )
        return len(history)
