"""import-linter contract types of our own (registered in pyproject.toml, [tool.importlinter] contract_types).

`lint-imports` puts the working directory on sys.path, so this module is found as `tools.import_contracts`.
"""

from __future__ import annotations

from typing import Any

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class TestModulesApart(Contract):
    """No module imports a test module: tests share the helper modules, never each other's code.

    A test module is any module of `package` (at any depth) whose name starts with `test_`, so the contract
    holds wherever the test files live. The built-in contracts cannot say this: their wildcards stand for
    whole module names, never for a prefix.

    Options:
        - package: the package holding the tests.
    """

    package = fields.StringField()

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        package: str = self.package  # type: ignore[assignment]
        tests = {module for module in graph.find_descendants(package) if module.rpartition(".")[2].startswith("test_")}
        imports: list[dict[str, Any]] = []
        for imported in sorted(tests):
            for importer in sorted(graph.find_modules_that_directly_import(imported)):
                imports.extend(graph.get_import_details(importer=importer, imported=imported))
        return ContractCheck(kept=not imports, warnings=[], metadata={"imports": imports})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for details in check.metadata["imports"]:
            output.print_error(f"{details['importer']} imports {details['imported']} (l. {details['line_number']})")
            output.new_line()
        output.print("Move what both need into a helper module (tests/helpers.py) and import it from there.")
