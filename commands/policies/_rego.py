"""Checking that a Rego module compiles, with regopy (rego-cpp).

regopy reports problems in three different ways, so all three are turned into one refusal:

- ``add_module`` raises ``RegoError`` for syntax errors (unclosed braces, bad tokens);
- semantic errors (an unknown function, a rule defined twice) only show when the module is
  evaluated: the output is either not "ok" (text ``<error>``) or is an error term rather than
  JSON (the public ``Interpreter.query`` then fails with a ``JSONDecodeError``);
- a module without a ``package`` line is silently accepted and defines nothing.

So the check requires a ``package`` line, adds the module, and evaluates ``data.<package>``
against an empty input. The low-level ``rego_shared`` functions are used for the evaluation
because they expose the raw output text (the compiler's message). rego-cpp is lenient about
some mistakes OPA rejects (an unbound variable in a rule body evaluates as undefined), and an
error inside a rule body that the empty input never reaches stays unseen until evaluation.
"""

from __future__ import annotations

import re

from omium.commands.errors import InvalidPolicyError
from omium.kernel.rego import LogLevel, RegoError, rego_shared

_ERROR_AT = re.compile(r"\(error \d+:(?P<file>[^|\s]*)\|(?P<offset>\d+)\|")
_ERROR_MESSAGE = re.compile(r"\(errormsg \d+:(?P<message>[^\n]*?)\)\s*$", re.MULTILINE)
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$")


def module_package(module: str) -> str:
    """The dotted package path of a Rego module.

    Raises:
        InvalidPolicyError: There is no ``package`` line with a dotted identifier path.
    """
    for line in module.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        match = _PACKAGE.match(stripped)
        if match is None:
            break
        return match.group(1)
    raise InvalidPolicyError("the module must start with 'package <dotted.path>'")


def check_module_compiles(module: str, *, name: str = "policy.rego") -> str:
    """Compile a Rego module and evaluate its package once.

    Args:
        module: The Rego source.
        name: File name used in the compiler's messages.

    Returns:
        The module's package path (``omium.budget``), to query as ``data.<package>``.

    Raises:
        InvalidPolicyError: With the compiler's message.
    """
    if not isinstance(module, str) or not module.strip():
        raise InvalidPolicyError("the module is empty")
    package = module_package(module)
    impl = rego_shared.rego_new()
    try:
        # Otherwise rego-cpp prints its diagnostics on the process's stdout.
        rego_shared.rego_set_log_level(impl, LogLevel.NONE)
        try:
            rego_shared.rego_add_module(impl, name, module)
        except RegoError as exc:
            raise InvalidPolicyError(readable_message(str(exc), module)) from None
        _evaluate(impl, f"data.{package}", module)
    finally:
        rego_shared.rego_free(impl)
    return package


def readable_message(raw: str, module: str) -> str:
    """Turn rego-cpp's error term into ``file:line:column: message`` lines (or return it as is).

    Args:
        raw: The error text, e.g. ``(rego-errorseq (error 6:m.rego|19|2 (errormsg 16:...)))``.
        module: The source, to turn character offsets into lines and columns.
    """
    messages = [m.group("message") for m in _ERROR_MESSAGE.finditer(raw)]
    if not messages:
        return raw.strip()
    places = list(_ERROR_AT.finditer(raw))
    if len(places) != len(messages):
        return "; ".join(messages)
    lines = []
    for place, message in zip(places, messages, strict=True):
        offset = int(place.group("offset"))
        line = module.count("\n", 0, offset) + 1
        column = offset - (module.rfind("\n", 0, offset) + 1) + 1
        lines.append(f"{place.group('file')}:{line}:{column}: {message}")
    return "; ".join(lines)


def _evaluate(impl: object, query: str, module: str) -> None:
    try:
        output = rego_shared.rego_query(impl, query)
    except RegoError as exc:
        raise InvalidPolicyError(readable_message(str(exc), module)) from None
    try:
        text = rego_shared.rego_output_string(output)
        if not rego_shared.rego_output_ok(output):
            message = rego_shared.rego_get_error(impl) or text
            raise InvalidPolicyError(f"evaluation failed: {message.strip()}")
        if text.lstrip().startswith("(error"):
            raise InvalidPolicyError(readable_message(text, module))
    finally:
        rego_shared.rego_free_output(output)
