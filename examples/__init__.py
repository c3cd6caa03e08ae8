"""Example agents and workflows (importable so that workflow entry points resolve)."""
