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

step "sip-fhir survey: enkäten om SIP-mötet (Questionnaire, engångskoder, några svar)"
"$sip" survey install
# Codes for three SIP meetings, two answered (as typed in from paper); once per data dir, so a
# re-run does not add answers.
survey_done="$SIP_FHIR_DATA_DIR/demo-survey.txt"
if [ ! -s "$survey_done" ]; then
  answer_all() {  # code, then one answer code per question of mappings/sip-meeting-survey.json
    local code="$1"; shift
    local args=() q
    for q in delaktig lyssnade forstod vet-vem tryggare; do args+=(--answer "$q=$1"); shift; done
    "$sip" survey answer --code "$code" "${args[@]}"
  }
  out301="$("$sip" survey issue --plan-key lifecare:SIP-301)"
  out302="$("$sip" survey issue --plan-key lifecare:SIP-302)"
  out304="$("$sip" survey issue --plan-key lifecare:SIP-304)"
  answer_all "${out301%% *}" ja-helt ja-helt ja-delvis ja-helt ja-delvis
  answer_all "${out302%% *}" ja-delvis nej-knappast ja-helt vet-inte ja-helt
  printf '%s\n%s\n%s\n' "$out301" "$out302" "$out304" > "$survey_done"
fi
cat "$survey_done"
"$sip" survey report --unit "$unit" --quarter 2024Q4
"$sip" survey report --unit "$unit" --quarter 2025Q1
minplan="$(grep -m1 'Min plan:' "$survey_done" | sed 's/^Min plan: //')"

step "Tjänsten startar: arbetslistan finns på http://localhost:${SIP_FHIR_API_PORT}/ui"
echo "    Logga in med API-nyckeln: $key"
echo "    Min plan (SIP-301, sida och PDF): http://localhost:${SIP_FHIR_API_PORT}${minplan}  (.pdf)"
echo "    Enkäten för patienten (utan inloggning): http://localhost:${SIP_FHIR_API_PORT}/enkat"
echo "    API-dokumentation: http://localhost:${SIP_FHIR_API_PORT}/docs   (Ctrl-C stoppar tjänsten;"
echo "    'bash deploy/hapi/hapi.sh stop' stoppar FHIR-servern)"
exec "$sip" serve --port "$SIP_FHIR_API_PORT"
