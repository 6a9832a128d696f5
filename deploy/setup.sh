#!/usr/bin/env bash
# Sets up everything from a fresh clone: Python venv with pinned deps, and the local HAPI FHIR server jar.
# Idempotent: a second run only checks.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> Skapar virtuell miljö (.venv) med $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi
stamp=.venv/.sip-fhir-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> Installerar Python-beroenden (pyproject.toml)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# Headless Chromium for the worklist's end-to-end test (Debian's package; never `playwright install`).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> Installerar Chromium (apt) för webbläsartestet"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || echo "Varning: Chromium kunde inte installeras; webbläsartestet fallerar" >&2
fi

# PostgreSQL (Debian's package): for HAPI on PostgreSQL (HAPI_DB=postgres, CI's third run) and for the
# tests of the adapter's shared state (SIP_FHIR_DATABASE_URL; deploy/test.sh sets SIP_FHIR_SETUP_TESTS).
# Not needed to run the demo on the default H2 server with SQLite state.
if [ "${HAPI_DB:-}" = postgres ] || [ "${CI:-}" = true ] || [ "${SIP_FHIR_SETUP_TESTS:-}" = 1 ]; then
  echo "==> PostgreSQL (apt) för HAPI på PostgreSQL och testerna av delat tillstånd"
  bash deploy/postgres/pg.sh install
fi

# axe-core for the browser tests' accessibility checks (pinned in tests/axe/package-lock.json).
axe_stamp=tests/axe/node_modules/.sip-fhir-installed
if [ ! -f "$axe_stamp" ] || [ tests/axe/package-lock.json -nt "$axe_stamp" ]; then
  if ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "==> Installerar npm (apt) för tillgänglighetstestet"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null \
      || echo "Varning: npm kunde inte installeras" >&2
  fi
  if command -v npm >/dev/null 2>&1; then
    echo "==> Installerar axe-core (npm ci, tests/axe) för tillgänglighetstestet"
    npm ci --prefix tests/axe --no-audit --no-fund --silent && touch "$axe_stamp" \
      || echo "Varning: axe-core kunde inte installeras; tillgänglighetstestet fallerar" >&2
  else
    echo "Varning: npm saknas; tillgänglighetstestet (axe-core) fallerar" >&2
  fi
fi

echo "==> Bygger lokal HAPI FHIR-server om det behövs (deploy/hapi)"
bash deploy/hapi/hapi.sh build-if-stale
