"""Omium's data contracts: Avro event schemas (``avro/``), workflow JSON Schema (``workflow/``).

Shipped as package data of ``omium.schemas`` and read through :mod:`importlib.resources`.
"""
