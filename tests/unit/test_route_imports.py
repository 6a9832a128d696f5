"""Routes import the service layer (adapter/api/*.py, adapter/api/ui/, the domain packages), not
one another: a function two routes need lives below them. Parsed from the source, so a new
import of a sibling route module fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from adapter.settings import REPO_ROOT

ROUTES = REPO_ROOT / "adapter" / "api" / "routes"
PACKAGE = "adapter.api.routes"


def sibling_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(f"{PACKAGE}."):
                found.add(node.module.removeprefix(f"{PACKAGE}."))
            elif node.module == PACKAGE:
                found |= {alias.name for alias in node.names}
    return found


def test_no_route_module_imports_a_sibling_route_module() -> None:
    found = {
        (path.stem, sibling)
        for path in sorted(ROUTES.glob("*.py"))
        for sibling in sibling_imports(path)
    }
    assert found == set(), sorted(found)


def test_the_pages_import_no_route_module() -> None:
    assert sibling_imports(ROUTES / "pages.py") == set()
