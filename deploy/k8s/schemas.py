"""Kubernetes JSON schemas for kubeconform, from the PyPI package kubernetes-validate.

kubeconform fetches its schemas from GitHub by default, which CI cannot reach. The wheel of
`kubernetes-validate` (pinned with its hash in schemas-requirements.txt) ships the same
OpenAPI-derived schemas per Kubernetes version, in kubeconform's file layout
(`deployment-apps-v1.json`), but their references point at
`https://kubernetes.io/api/_definitions.json`. This rewrites them to the `_definitions.json` file
beside each schema, so kubeconform resolves them from disk:

    python deploy/k8s/schemas.py WHEEL OUT_DIR 1.31.0 1.37.0

writes OUT_DIR/v1.31.0-local-strict/*.json (the strict variants: unknown fields are errors).
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

PACKAGE_DIR = "kubernetes_validate/kubernetes-json-schema"
REMOTE_DEFINITIONS = "/api/_definitions.json#"
LOCAL_DEFINITIONS = "_definitions.json#"


def localise(node: Any) -> Any:
    """The schema with remote `$ref`s made relative to its own file, and without `$id`."""
    if isinstance(node, dict):
        out = {key: localise(value) for key, value in node.items() if key != "$id"}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(REMOTE_DEFINITIONS):
            out["$ref"] = LOCAL_DEFINITIONS + ref.removeprefix(REMOTE_DEFINITIONS)
        return out
    if isinstance(node, list):
        return [localise(item) for item in node]
    return node


def extract(wheel: Path, out_dir: Path, version: str) -> int:
    """Writes the strict schemas of one Kubernetes version; returns how many."""
    folder = f"v{version}-local-strict"
    target = out_dir / folder
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            path = PurePosixPath(name)
            if path.parent != PurePosixPath(PACKAGE_DIR, folder) or path.suffix != ".json":
                continue
            schema = localise(json.loads(archive.read(name)))
            (target / path.name).write_text(json.dumps(schema), encoding="utf-8")
            count += 1
    if count == 0:
        raise SystemExit(f"{wheel}: no schemas for Kubernetes {version} ({folder})")
    return count


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    wheel, out_dir, versions = Path(argv[0]), Path(argv[1]), argv[2:]
    for version in versions:
        print(f"{extract(wheel, out_dir, version)} schemas for Kubernetes {version}")


if __name__ == "__main__":
    main(sys.argv[1:])
