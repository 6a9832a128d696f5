"""`python -m tests.golden [--update]`: see tests/golden/__init__.py."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.golden import GOLDEN, UPDATE, differences, map_examples, update


def main(argv: list[str]) -> int:
    if "--update" in argv:
        update()
        print(f"uppdaterade {GOLDEN}")
        return 0
    with tempfile.TemporaryDirectory() as out:
        map_examples(Path(out))
        diff = differences(Path(out))
    if diff:
        print(diff + f"\nAvsiktlig ändring? Kör: {UPDATE}")
        return 1
    print("de gyllene Bundlarna stämmer")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
