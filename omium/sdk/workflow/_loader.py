"""Loading workflow definitions from YAML or JSON; errors point at file, line and field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from omium.sdk.workflow._base import PATTERN_HINTS
from omium.sdk.workflow._checks import Issue, PathPart, find_issues, format_path
from omium.sdk.workflow._model import DEFER_CHECKS, WorkflowDefinition
from omium.sdk.workflow.errors import WorkflowIssue, WorkflowValidationError

Format = Literal["yaml", "json"]
Mark = tuple[int, int]  # 1-based line and column


def load_workflow(path: str | Path) -> WorkflowDefinition:
    """Read and validate a workflow definition file (``.yaml``/``.yml`` or ``.json``).

    Args:
        path: The file; its suffix picks the format (anything but ``.json`` is read as YAML).

    Returns:
        The validated definition.

    Raises:
        WorkflowValidationError: The file cannot be read, does not parse, or is invalid; every
            issue names the file, the field path and (when known) the line.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        code = "file_not_found" if isinstance(exc, FileNotFoundError) else "unreadable"
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkflowValidationError(str(file), [WorkflowIssue("", code, problem)]) from None
    return parse_workflow(text, source=str(file))


def parse_workflow(
    text: str, *, source: str = "<string>", format: Format | None = None
) -> WorkflowDefinition:
    """Parse and validate a workflow definition from text.

    Args:
        text: YAML or JSON.
        source: Where the text came from, used in error messages (a file name).
        format: ``yaml`` or ``json``; when None, ``json`` if ``source`` ends in ``.json``.

    Returns:
        The validated definition.

    Raises:
        WorkflowValidationError: Syntax errors (with line and column), or invalid content.
    """
    chosen = format or ("json" if source.lower().endswith(".json") else "yaml")
    if chosen == "json":
        data = _parse_json(text, source)
        located = _compose(text)  # JSON is (nearly) YAML: use the composer only for lines
    else:
        data, located = _parse_yaml(text, source)
    return _validate(data, source, located)


def parse_workflow_dict(data: Any, *, source: str = "<definition>") -> WorkflowDefinition:
    """Validate an already parsed definition (e.g. one read back from a ``WorkflowRegistered``).

    Args:
        data: The definition as plain dicts and lists.
        source: Where it came from, used in error messages.

    Returns:
        The validated definition.

    Raises:
        WorkflowValidationError: Every problem, each with its field path.
    """
    return _validate(data, source, None)


def _validate(data: Any, source: str, nodes: yaml.Node | None) -> WorkflowDefinition:
    if not isinstance(data, Mapping):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        message = f"a workflow definition is a mapping, not {found}"
        issue = WorkflowIssue("", "not_an_object", message)
        raise WorkflowValidationError(source, [issue])
    try:
        definition = WorkflowDefinition.model_validate(data, context={DEFER_CHECKS: True})
    except ValidationError as exc:
        issues = [_from_pydantic(error, data) for error in exc.errors(include_url=False)]
        raise WorkflowValidationError(source, _locate(issues, nodes)) from None
    problems = find_issues(definition)
    if problems:
        raise WorkflowValidationError(source, _locate(problems, nodes))
    return definition


# Parsing ------------------------------------------------------------------------------------


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        issue = WorkflowIssue("", "json_syntax", exc.msg, exc.lineno, exc.colno)
        raise WorkflowValidationError(source, [issue]) from None
    except _DuplicateKeyError as exc:
        issue = WorkflowIssue("", "duplicate_key", f"key {exc.key!r} appears twice in one object")
        raise WorkflowValidationError(source, [issue]) from None


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _parse_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise WorkflowValidationError(source, [_yaml_issue(exc)]) from None
    except yaml.YAMLError as exc:
        issue = WorkflowIssue("", "yaml_syntax", str(exc))
        raise WorkflowValidationError(source, [issue]) from None
    finally:
        loader.dispose()
    duplicates = list(_duplicate_keys(node, ()))
    if duplicates:
        raise WorkflowValidationError(source, duplicates)
    return data, node


def _yaml_issue(exc: yaml.MarkedYAMLError) -> WorkflowIssue:
    mark = exc.problem_mark or exc.context_mark
    problem = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    if mark is None:
        return WorkflowIssue("", "yaml_syntax", problem)
    return WorkflowIssue("", "yaml_syntax", problem, mark.line + 1, mark.column + 1)


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def _duplicate_keys(node: yaml.Node | None, path: tuple[PathPart, ...]) -> list[WorkflowIssue]:
    # PyYAML keeps the last of two equal keys without a word; a repeated key is almost
    # always a mistake (two ``timeout_s`` lines), so it is an error here.
    issues: list[WorkflowIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                mark = key.start_mark
                issues.append(
                    WorkflowIssue(
                        format_path((*path, name)),
                        "duplicate_key",
                        f"key {name!r} appears twice in one mapping",
                        mark.line + 1,
                        mark.column + 1,
                    )
                )
            seen.add(name)
            issues.extend(_duplicate_keys(value, (*path, name)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            issues.extend(_duplicate_keys(item, (*path, index)))
    return issues


# Errors -------------------------------------------------------------------------------------


def _from_pydantic(error: Mapping[str, Any], data: Any) -> Issue:
    code = str(error["type"])
    path = _clean_loc(error["loc"], data)
    context = error.get("ctx") or {}
    # pydantic quotes the discriminator ("'kind'"); the tag lists are quoted too.
    discriminator = str(context.get("discriminator", "")).strip("'")
    if code == "union_tag_invalid":
        expected = str(context["expected_tags"]).replace("'", "")
        message = f"unknown {discriminator} {context['tag']!r}; expected one of {expected}"
    elif code == "union_tag_not_found":
        message = f"missing {discriminator}"
    elif code == "string_pattern_mismatch" and context.get("pattern") in PATTERN_HINTS:
        message = PATTERN_HINTS[context["pattern"]]
    elif code == "extra_forbidden":
        message = f"unknown field {path[-1]!r}" if path else "unknown field"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
    return Issue(path, code, message)


def _clean_loc(loc: Sequence[PathPart], data: Any) -> tuple[PathPart, ...]:
    """Drop the parts of a pydantic location that are not in the input (union member tags)."""
    path: list[PathPart] = []
    node = data
    for position, part in enumerate(loc):
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_list or (isinstance(node, Mapping) and part in node):
            node = node[part]
        elif not (isinstance(node, Mapping) and position == len(loc) - 1):
            continue  # a tag such as 'json_schema' or 'list[str]', not a field
        path.append(part)
    return tuple(path)


def _locate(issues: Sequence[Issue], root: yaml.Node | None) -> list[WorkflowIssue]:
    located = []
    for issue in issues:
        mark = _mark_of(root, issue.path) if root is not None else None
        line, column = mark if mark else (None, None)
        located.append(
            WorkflowIssue(format_path(issue.path), issue.code, issue.message, line, column)
        )
    return located


def _mark_of(root: yaml.Node, path: Sequence[PathPart]) -> Mark | None:
    """Line and column of the deepest node on ``path`` (a key points at the key itself)."""
    node = root
    mark = node.start_mark
    for part in path:
        found = _child(node, part)
        if found is None:
            break
        mark, node = found
    return mark.line + 1, mark.column + 1


def _child(node: yaml.Node, part: PathPart) -> tuple[yaml.Mark, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if str(key.value) == str(part):
                return key.start_mark, value
    elif (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        item = node.value[part]
        return item.start_mark, item
    return None
