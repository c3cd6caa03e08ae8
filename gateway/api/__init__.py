"""The ``/api/v1`` routes: each public module here defines ``router``, mounted by ``create_app``.

Adding an area's routes is adding a module (``gateway/api/executions.py`` with
``router = APIRouter(prefix="/executions", tags=["executions"])``); nothing else changes. Every
route must declare its access rule with ``requires(...)`` or the app refuses to start.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def discover_routers() -> list[APIRouter]:
    """The ``router`` of every module in this package not starting with ``_``, by module name."""
    routers = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers
