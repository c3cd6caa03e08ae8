"""A custom import-linter contract: parts import each other's public modules only.

import-linter's own wildcards match whole module names, not a leading underscore, so "no part
imports another part's ``_private`` module" is written here (registered in ``pyproject.toml``
under ``contract_types``). A module is private when any name in its path below its part starts
with one underscore: ``omium.commands._persistence``, ``omium.gateway.api._models``.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


def _is_private_below(module: str, part: str) -> bool:
    names = module[len(part) + 1 :].split(".") if module != part else []
    return any(name.startswith("_") and not name.startswith("__") for name in names)


class PrivateModulesContract(Contract):
    """No import from one of ``parts`` into a private module of another.

    Configuration options:
        - parts: The packages that are each one part (their private modules are their own).
    """

    type_name = "private"

    parts = fields.ListField(subfield=fields.StringField())

    def _part_of(self, module: str) -> str | None:
        matches = [p for p in self.parts if module == p or module.startswith(p + ".")]  # type: ignore[attr-defined]
        return max(matches, key=len) if matches else None

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        """Every direct import whose importer and imported belong to different parts."""
        violations: list[dict[str, Any]] = []
        for importer in sorted(graph.modules):
            source = self._part_of(importer)
            if source is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                target = self._part_of(imported)
                if target is None or target == source or not _is_private_below(imported, target):
                    continue
                lines = graph.get_import_details(importer=importer, imported=imported)
                violations.append(
                    {
                        "importer": importer,
                        "imported": imported,
                        "line": lines[0]["line_number"] if lines else 0,
                    }
                )
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        """List each import of another part's private module."""
        for v in check.metadata["violations"]:
            output.print_error(f"{v['importer']} -> {v['imported']} (l. {v['line']})", bold=False)
