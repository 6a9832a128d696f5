#!/usr/bin/env bash
# The main job on a fresh machine: set up, start the local HAPI FHIR server, and run sip-fhir on the
# project's example data. Re-running is safe: nothing is duplicated on the server.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash deploy/setup.sh

export HAPI_PORT="${HAPI_PORT:-8080}"
export SIP_FHIR_BASE_URL="${SIP_FHIR_BASE_URL:-http://localhost:${HAPI_PORT}/fhir}"
export SIP_FHIR_DATA_DIR="${SIP_FHIR_DATA_DIR:-$repo/.data}"
sip=".venv/bin/sip-fhir"

echo "==> Startar lokal HAPI FHIR-server på port $HAPI_PORT"
bash deploy/hapi/hapi.sh start

echo "==> sip-fhir server check"
"$sip" server check
