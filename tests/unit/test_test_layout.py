"""The tests' own layout (issue 15.5): no test module imports from another test module or from a
conftest — shared helpers live in tests/support/, shared fixtures in the nearest conftest.py — and
no helper module hides among the tests under a `test_` or `_support` name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def forbidden(module: str) -> bool:
    """A test module (`tests.….test_x`) or a conftest: what pytest loads, not a helper."""
    parts = module.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts)


def offenders(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for line, module in imported_modules(path):
            if forbidden(module):
                found.append(f"{path.relative_to(root.parent)}:{line}: {module}")
    return found


def misplaced_helpers(root: Path) -> list[str]:
    return [
        str(path.relative_to(root.parent))
        for path in sorted(root.rglob("*_support.py"))
        if "support" not in path.relative_to(root).parts[:-1]
    ]


def test_no_test_module_imports_from_another_test_module_or_a_conftest() -> None:
    found = offenders(TESTS)
    assert not found, "flytta det delade till tests/support/ eller conftest.py:\n" + "\n".join(
        found
    )


def test_helper_modules_live_in_tests_support() -> None:
    assert not misplaced_helpers(TESTS)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from tests.unit.test_mapping import sip\n", True),
        ("from tests.integration import test_followups\n", True),
        ("import tests.integration.test_sync\n", True),
        ("from tests.conftest import FakeTime\n", True),
        ("def f():\n    from tests.unit.test_api import Service\n", True),  # inside a function
        ("from tests.support.records import sip\n", False),
        ("from adapter.mapping import map_record\n", False),
    ],
)
def test_the_check_sees_every_form_of_import(tmp_path: Path, source: str, caught: bool) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_sample.py").write_text(source, "utf-8")
    assert bool(offenders(tmp_path / "tests")) is caught


def test_the_check_finds_a_support_module_among_the_tests(tmp_path: Path) -> None:
    for name in ("integration/test_api_support.py", "support/api.py", "support/x_support.py"):
        (tmp_path / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tests" / name).write_text("", "utf-8")
    assert misplaced_helpers(tmp_path / "tests") == ["tests/integration/test_api_support.py"]
