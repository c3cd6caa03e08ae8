"""Omium's local stack: Kafka, PostgreSQL, Redis, OpenSearch and an AWS emulator on one machine.

Everything (binaries, data, logs, pid files) lives under ``settings.stack.data_dir``. The CLI
(``omium up/down/status``) and the test fixtures drive :class:`LocalStack`.
"""

from infra.localstack._errors import (
    ComponentStartError,
    PrerequisiteError,
    StackError,
    StackNotRunningError,
    StackStartError,
)
from infra.localstack._paths import StackPaths
from infra.localstack._stack import (
    ALL_COMPONENTS,
    PROFILES,
    ComponentStatus,
    LocalStack,
    Profile,
    StartResult,
    StopResult,
)

__all__ = [
    "ALL_COMPONENTS",
    "PROFILES",
    "ComponentStartError",
    "ComponentStatus",
    "LocalStack",
    "PrerequisiteError",
    "Profile",
    "StackError",
    "StackNotRunningError",
    "StackPaths",
    "StackStartError",
    "StartResult",
    "StopResult",
]
