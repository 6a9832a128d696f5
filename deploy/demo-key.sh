#!/usr/bin/env bash
# The demo's API key for the worklist page, readable by its owner only: created once (umask 077)
# in KEY_FILE and printed; a file left by an older run is made private too. Demo use only.
# Usage: deploy/demo-key.sh KEY_FILE UNIT_HSA_ID   (SIP_FHIR_CLI: the sip-fhir command to use)
set -euo pipefail
key_file="$1"
unit="$2"
sip="${SIP_FHIR_CLI:-.venv/bin/sip-fhir}"
umask 077
if [ ! -s "$key_file" ]; then
  "$sip" api-key --name demo-vardsamordnare --role vardsamordnare --unit "$unit" > "$key_file"
fi
chmod 600 "$key_file"
cat "$key_file"
