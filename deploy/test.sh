#!/usr/bin/env bash
# The test command: set up, lint, type-check (mypy strict, see [tool.mypy]), then the whole pytest
# suite (the integration tests start their own local HAPI FHIR server on a free port with a temporary
# database). Extra arguments go to pytest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
SIP_FHIR_SETUP_TESTS=1 bash deploy/setup.sh
echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy"
.venv/bin/mypy
echo "==> pytest"
.venv/bin/pytest "$@"
