"""Stream processors: consensus, recovery and policy decisions, and the command worker.

Each processor is a :class:`omium.streams.base.Processor` run by
:class:`omium.streams.base.StreamRuntime`, a transactional consume-process-produce loop (exactly
once); ``omium worker <name>`` runs one.
"""

from omium.streams._apps import PROCESSORS, run_processor
from omium.streams.errors import StreamsError

__all__ = ["PROCESSORS", "StreamsError", "run_processor"]
