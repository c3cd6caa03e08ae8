"""The pieces every stream processor shares: config, state tables, context, runtime."""

from omium.streams.base._config import ProcessorConfig, default_instance_id
from omium.streams.base._context import SOURCE_HEADER, Context, Output, Source
from omium.streams.base._events import (
    COMMAND_ISSUED,
    STREAMS_NAMESPACE,
    command_event,
    derived_id,
    output_event,
)
from omium.streams.base._processor import Processor
from omium.streams.base._runtime import StreamRuntime
from omium.streams.base._state import StateTable, decode_value, encode_value

__all__ = [
    # running
    "Processor",
    "ProcessorConfig",
    "StreamRuntime",
    "default_instance_id",
    # handling
    "Context",
    "Output",
    "SOURCE_HEADER",
    "Source",
    # state
    "StateTable",
    "decode_value",
    "encode_value",
    # outputs
    "COMMAND_ISSUED",
    "STREAMS_NAMESPACE",
    "command_event",
    "derived_id",
    "output_event",
]
