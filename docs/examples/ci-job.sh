#!/bin/sh
# A plugin's CI job: upload the build to Warden as a draft, submit it, attach the job's own
# security scan, and pass or fail on Warden's gate (docs/examples/ci-gate.sh).
#
#   WARDEN_API=https://warden.example/api/v1 \
#   WARDEN_SUBMIT_TOKEN=... WARDEN_REPORT_TOKEN=... \
#   ci-job.sh PLUGIN_ID dist/acme_exporter-1.4.0.zip bandit.sarif
#
# Two integration tokens, each with only what it needs, both bound to the plugin's
# organisation: WARDEN_SUBMIT_TOKEN has the scope "submit", WARDEN_REPORT_TOKEN "report".
# Exit 0 on pass, 1 on fail, 2 when still pending at WARDEN_GATE_DEADLINE, 3 on an unexpected
# answer; a refused request prints Warden's error and exits 22. Needs curl and jq.
set -eu
plugin="$1" artifact="$2" sarif="$3"
here=$(dirname "$0")
warden() {  # warden TOKEN curl-arguments...: Warden's JSON; its error and status 22 when refused
  token="$1"; shift
  curl -sS --fail-with-body -H "Authorization: Token $token" "$@"
}
refused() { printf 'Warden refused it: %s\n' "$1"; exit 22; }

draft=$(warden "$WARDEN_SUBMIT_TOKEN" -F "artifact=@$artifact" -F submit=false \
  "$WARDEN_API/plugins/$plugin/versions/") || refused "$draft"
version=$(printf '%s' "$draft" | jq -r .id)
echo "Warden: draft $version created."
submitted=$(warden "$WARDEN_SUBMIT_TOKEN" -X POST "$WARDEN_API/versions/$version/submit/") || refused "$submitted"
echo "Warden: version $version submitted."
attached=$(warden "$WARDEN_REPORT_TOKEN" -F format=sarif -F "report=@$sarif" \
  "$WARDEN_API/versions/$version/reports/") || refused "$attached"
printf '%s' "$attached" | jq -r '"Warden: report attached: " + (.summary | tostring)'
WARDEN_TOKEN="$WARDEN_REPORT_TOKEN" exec sh "$here/ci-gate.sh" "$version"
