#!/usr/bin/env bash
# The main job on a fresh machine: set up, start the local HAPI FHIR server, load the profiles, import the
# project's example data, raise the follow-up Tasks, print the unit's indicators, and leave the service
# running with the worklist page. Re-running is safe: nothing is duplicated on the server.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash deploy/setup.sh

export HAPI_PORT="${HAPI_PORT:-8080}"
export SIP_FHIR_BASE_URL="${SIP_FHIR_BASE_URL:-http://localhost:${HAPI_PORT}/fhir}"
export SIP_FHIR_DATA_DIR="${SIP_FHIR_DATA_DIR:-$repo/.data}"
export SIP_FHIR_API_PORT="${SIP_FHIR_API_PORT:-8000}"
export SIP_FHIR_API_KEYS_FILE="${SIP_FHIR_API_KEYS_FILE:-$SIP_FHIR_DATA_DIR/api-keys.json}"
# The examples are one Prea60 run of 2025-03-10; evaluate them as of the week after, not today.
as_of="${DEMO_AS_OF:-2025-03-17}"
unit="SE2321000057-E00000000101"  # Ekeby vårdcentral (deploy/examples/README.md)
sip=".venv/bin/sip-fhir"
mkdir -p "$SIP_FHIR_DATA_DIR"

step() { printf '\n==> %s\n' "$*"; }

step "Startar lokal HAPI FHIR-server på port $HAPI_PORT"
bash deploy/hapi/hapi.sh start

step "sip-fhir server check"
"$sip" server check

step "sip-fhir profiles install"
"$sip" profiles install

step "sip-fhir import deploy/examples/*"
# Exit 2 means some rows were rejected (reported above); the good rows are on the server.
"$sip" import deploy/examples/prea60-*.csv deploy/examples/plans.jsonl \
  deploy/examples/events.csv deploy/examples/discharges.csv || [ $? -eq 2 ]

step "sip-fhir followups --as-of $as_of"
"$sip" followups --as-of "$as_of"

step "sip-fhir indicators --unit $unit --as-of $as_of"
"$sip" indicators --unit "$unit" --as-of "$as_of" --format table

# A local key for the worklist page; kept in the data dir (owner-only) so a re-run can show it again.
key="$(SIP_FHIR_CLI="$sip" bash deploy/demo-key.sh "$SIP_FHIR_DATA_DIR/demo-api-key.txt" "$unit")"

step "Tjänsten startar: arbetslistan finns på http://localhost:${SIP_FHIR_API_PORT}/ui"
echo "    Logga in med API-nyckeln: $key"
echo "    API-dokumentation: http://localhost:${SIP_FHIR_API_PORT}/docs   (Ctrl-C stoppar tjänsten;"
echo "    'bash deploy/hapi/hapi.sh stop' stoppar FHIR-servern)"
exec "$sip" serve --port "$SIP_FHIR_API_PORT"
