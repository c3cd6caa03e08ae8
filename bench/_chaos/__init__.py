"""The fault-injection runner's parts (``python -m bench.chaos``; see docs/reliability.md)."""
