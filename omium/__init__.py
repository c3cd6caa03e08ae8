"""Omium: the control plane for durable, checkable, recoverable multi-agent LLM workflows."""

__version__ = "0.1.0"
