"""Omium's local stack: Kafka, PostgreSQL, Redis, OpenSearch and an AWS emulator on one machine.

Everything (binaries, data, logs, pid files) lives under ``settings.stack.data_dir``. The CLI
(``omium up/down/status``) and the test fixtures drive :class:`LocalStack`.
"""

from omium.infra.localstack._errors import (
    ComponentStartError,
    PrerequisiteError,
    StackError,
    StackNotRunningError,
    StackStartError,
)
from omium.infra.localstack._kafka_ha import ha_bootstrap_servers, ha_kafka_env
from omium.infra.localstack._paths import StackPaths
from omium.infra.localstack._stack import (
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
    "ha_bootstrap_servers",
    "ha_kafka_env",
]
