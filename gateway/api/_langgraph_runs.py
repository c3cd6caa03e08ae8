"""The gateway's side of LangGraph threads: one store per app, one operations object per call."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Request

from omium.commands import CommandApplications
from omium.commands.langgraph import LangGraphThreads, ThreadStore, store_for

_STORE_LOCK = threading.Lock()


def thread_store(request: Request, apps: CommandApplications) -> ThreadStore:
    """The app's thread store (made once: it remembers that its tables exist)."""
    state = request.app.state
    with _STORE_LOCK:
        store: ThreadStore | None = getattr(state, "langgraph_store", None)
        if store is None:
            store = store_for(apps)
            state.langgraph_store = store
    return store


def threads_of(call: Any, request: Request) -> LangGraphThreads:
    """The operations for a route's ``Create``/``Update``/``Read`` call, in its tenant."""
    context = getattr(call, "context", None)
    tenant = context.tenant_id if context is not None else call.tenant_id
    subject = context.principal.subject if context is not None else None
    settings = request.app.state.settings
    return LangGraphThreads(
        call.apps, tenant, thread_store(request, call.apps), settings.aws, subject
    )
