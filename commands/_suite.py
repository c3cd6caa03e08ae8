"""All command applications together, for the gateway and the command worker."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Self

from eventsourcing.utils import EnvType

from omium.commands.consensus.application import ConsensusApplication
from omium.commands.executions.application import ExecutionsApplication
from omium.commands.policies.application import PoliciesApplication
from omium.commands.workflows.application import WorkflowsApplication


@dataclass(frozen=True)
class CommandApplications:
    """One instance of each command application, sharing one event-store configuration.

    Each application has its own events table (``<name>_events``) and notification log, so
    a relay can follow each log and publish it to its own Kafka topic.
    """

    workflows: WorkflowsApplication
    executions: ExecutionsApplication
    consensus: ConsensusApplication
    policies: PoliciesApplication

    @classmethod
    def create(cls, env: EnvType) -> Self:
        """Construct every application with ``env`` (see :func:`omium.commands.event_store_env`)."""
        return cls(
            workflows=WorkflowsApplication(env),
            executions=ExecutionsApplication(env),
            consensus=ConsensusApplication(env),
            policies=PoliciesApplication(env),
        )

    def close(self) -> None:
        """Close every application's connection pool."""
        for app in (self.workflows, self.executions, self.consensus, self.policies):
            app.close()

    def __enter__(self) -> Self:
        """Use as a context manager that closes the applications on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the applications."""
        self.close()
