"""`sip-fhir --help` loads no command module: the listing comes from `adapter.cli.app.COMMANDS`.

Structural, not timed: the heavy libraries must stay out of `sys.modules`, and the table must say
what the modules really register, with their real summaries.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

from typer.testing import CliRunner

from adapter.cli import app
from adapter.cli.app import COMMANDS, load_command
from adapter.settings import REPO_ROOT

# Every runtime dependency but typer and rich (which draw the listing), by import name: the
# settings (pydantic), the FHIR client (requests, tenacity), the state (sqlalchemy, psycopg), ...
HEAVY = (
    "fastapi", "matplotlib", "fhir", "sqlalchemy", "apscheduler", "requests", "httpx",
    "pydantic", "pydantic_settings", "tenacity", "authlib", "joserfc", "structlog", "holidays",
    "uvicorn", "multipart", "jinja2", "psycopg", "prometheus_client", "fpdf",
)  # fmt: skip


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_help_imports_no_heavy_library() -> None:
    code = f"""
import json, sys
from adapter.cli import app
try:
    app(["--help"])
except SystemExit as stop:
    assert stop.code == 0, stop.code
print()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}
                        or m.startswith("adapter."))))
"""
    loaded = json.loads(_run(code))
    assert loaded == ["adapter.cli", "adapter.cli.app"]


def test_the_table_names_each_commands_module() -> None:
    code = """
import importlib, json, typer.main
from adapter.cli.app import COMMANDS, app
def loaded():
    commands = typer.main.get_group(app).commands.items()
    return {name for name, command in commands if type(command).__name__ != "_Listed"}
found = {}
for module in dict.fromkeys(m for m, _ in COMMANDS.values()):
    before = loaded()
    importlib.import_module(module)
    found.update(dict.fromkeys(loaded() - before, module))
print(json.dumps(found))
"""
    registered = json.loads(_run(code))
    assert registered == {name: module for name, (module, _) in COMMANDS.items()}


def test_every_command_module_is_in_the_table() -> None:
    modules = {module for module, _ in COMMANDS.values()}
    for path in sorted((REPO_ROOT / "adapter" / "cli").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "@app.command(" in text or "app.add_typer(" in text:
            assert f"adapter.cli.{path.stem}" in modules, f"add {path.name}'s commands to COMMANDS"


def test_each_summary_is_the_commands_own_first_paragraph() -> None:
    for name, (_, summary) in COMMANDS.items():
        real = load_command(name)
        assert type(real).__name__ != "_Listed", name
        first = inspect.cleandoc(real.short_help or real.help or "").split("\n\n")[0]
        assert summary == first, name


def test_a_listed_command_runs_as_itself() -> None:
    result = CliRunner().invoke(app, ["server", "--help"])
    assert result.exit_code == 0, result.output
    assert "check" in result.output  # the real group's subcommands, not just the listing
    typo = CliRunner().invoke(app, ["snyc"])
    assert typo.exit_code == 2
    assert "sync" in typo.output  # "Did you mean 'sync'?" from the listed names
