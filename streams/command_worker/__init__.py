"""The command worker: commands on Kafka applied once with the command handlers."""

from omium.streams.command_worker._processor import CommandWorker
from omium.streams.command_worker._registry import (
    COMMANDS,
    CommandSpec,
    UnknownCommandError,
    apply_command,
)

__all__ = ["COMMANDS", "CommandSpec", "CommandWorker", "UnknownCommandError", "apply_command"]
