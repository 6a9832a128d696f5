"""Golden transaction Bundles of deploy/examples/*: what `sip-fhir map` makes of the example files,
checked in, so a change to a mapping, a reader or the Bundle shows as a readable diff in review.

    python -m tests.golden            # compare; exit 1 and print the diff when they differ
    python -m tests.golden --update   # rewrite tests/golden/examples/ after an intended change

The Bundles are mapped by the real command, `sip-fhir map FILE... --out DIR`, in a
subprocess with the repository's mappings, no care provider and no `.env` or `SIP_FHIR_*`
settings of the developer's own, so every machine makes the same files. Nothing in them depends on
the clock: entry fullUrls are name-based UUIDs (uuid5) and every date comes from the source rows,
so no field is normalised away (VOLATILE stays empty; add a JSON path there only with a reason).
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLES = REPO / "deploy" / "examples"
GOLDEN = Path(__file__).resolve().parent / "examples"
SOURCES = ("*.csv", "*.jsonl")  # every source file of deploy/examples (not its README)
UPDATE = "python -m tests.golden --update"
COMMAND = "from adapter.cli import app; app(prog_name='sip-fhir')"  # the `sip-fhir` script
VOLATILE: tuple[str, ...] = ()  # fields that change from run to run: none (see above)


def example_files() -> list[Path]:
    return sorted(p for pattern in SOURCES for p in EXAMPLES.glob(pattern))


def map_examples(out: Path) -> None:
    """`sip-fhir map deploy/examples/* --out out`, isolated from the developer's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIP_FHIR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["SIP_FHIR_MAPPINGS_DIR"] = str(REPO / "mappings")
    files = [str(path) for path in example_files()]
    with tempfile.TemporaryDirectory() as cwd:  # no .env is read from here
        done = subprocess.run(
            [sys.executable, "-c", COMMAND, "map", *files, "--out", str(out)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:  # the examples are all good rows: 2 (rejected) is a failure too
        raise RuntimeError(f"sip-fhir map gav {done.returncode}:\n{done.stdout}\n{done.stderr}")


def differences(fresh: Path, golden: Path = GOLDEN) -> str:
    """A unified diff of every file that differs between the two directories ('' when equal)."""
    names = sorted({p.name for p in fresh.iterdir()} | {p.name for p in golden.glob("*")})
    parts: list[str] = []
    for name in names:
        old, new = golden / name, fresh / name
        if not new.is_file():  # a whole file of '-' lines would hide the point
            parts.append(f"golden/{name}: mappas inte längre\n")
            continue
        before = old.read_text("utf-8").splitlines(keepends=True) if old.is_file() else []
        after = new.read_text("utf-8").splitlines(keepends=True)
        if before != after:
            parts.extend(
                difflib.unified_diff(before, after, f"golden/{name}", f"mapped/{name}", n=4)
            )
    return "".join(parts)


def update() -> None:
    """Rewrite the golden directory with freshly mapped Bundles."""
    with tempfile.TemporaryDirectory() as out:
        map_examples(Path(out))
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir()
        for path in sorted(Path(out).iterdir()):
            shutil.copyfile(path, GOLDEN / path.name)
