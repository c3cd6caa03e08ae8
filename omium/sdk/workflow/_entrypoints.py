"""Python entry points written as ``package.module:function`` (or ``module:Class.method``)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from omium.sdk.workflow.errors import EntrypointError

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
ENTRYPOINT_PATTERN = rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$"
"""What a valid entry point looks like (also used in the published JSON Schema)."""

_ENTRYPOINT_RE = re.compile(ENTRYPOINT_PATTERN)


def resolve_entrypoint(entrypoint: str) -> Callable[..., Any]:
    """Import the callable a ``module:attribute`` reference names.

    Args:
        entrypoint: ``package.module:function``; the part after the colon may be dotted
            (``module:Class.method``).

    Returns:
        The callable.

    Raises:
        EntrypointError: The reference is malformed, the module does not import, the attribute
            is missing, or it is not callable.
    """
    if not _ENTRYPOINT_RE.match(entrypoint):
        raise EntrypointError(entrypoint, "invalid_format", "expected 'package.module:function'")
    module_name, _, attribute_path = entrypoint.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may raise anything while importing
        raise EntrypointError(
            entrypoint, "import_failed", f"cannot import {module_name!r}: {exc}"
        ) from exc
    for part in attribute_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise EntrypointError(
                entrypoint, "missing_attribute", f"{module_name!r} has no {attribute_path!r}"
            ) from None
    if not callable(target):
        raise EntrypointError(entrypoint, "not_callable", f"{attribute_path!r} is not callable")
    return target  # type: ignore[no-any-return]
