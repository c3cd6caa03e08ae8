"""Integrations of Omium with agent frameworks (``omium.integrations.langgraph``)."""

__all__: list[str] = []
