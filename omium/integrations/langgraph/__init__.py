"""LangGraph checkpoint savers backed by Omium (``pip install omium[langgraph]``).

Each LangGraph thread is an Omium execution and each ``put`` one of its checkpoints, so graphs
get Omium's timelines, audit trail, dashboards and controls (halt, cancel) with one line::

    graph = builder.compile(checkpointer=AsyncOmiumSaver(omium_async_client))
"""

from omium.integrations.langgraph._async_saver import AsyncOmiumSaver
from omium.integrations.langgraph._saver import OmiumSaver

__all__ = [
    # savers
    "AsyncOmiumSaver",
    "OmiumSaver",
]
