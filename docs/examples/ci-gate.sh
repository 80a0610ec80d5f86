#!/bin/sh
# Pass or fail a CI job on Warden's gate verdict for one plugin version.
#
#   WARDEN_API=https://warden.example/api/v1 WARDEN_TOKEN=... ci-gate.sh VERSION_ID
#
# pass: exit 0. fail: print the reasons and exit 1. pending: ask again (each request waits up to
# the server's WARDEN_GATE_WAIT_SECONDS) until WARDEN_GATE_DEADLINE seconds have passed, then
# exit 2, so a stuck review shows as "still pending", never as a pass. Needs curl and jq.
set -eu
version="$1"
deadline=$(( $(date +%s) + ${WARDEN_GATE_DEADLINE:-1800} ))
while :; do
  answer=$(curl -fsS -H "Authorization: Token $WARDEN_TOKEN" "$WARDEN_API/versions/$version/gate/?wait=true")
  verdict=$(printf '%s' "$answer" | jq -r .verdict)
  case "$verdict" in
    pass) echo "Warden: version $version passes the gate."; exit 0 ;;
    fail) echo "Warden: version $version fails the gate:"; printf '%s' "$answer" | jq -r '.reasons[].detail'; exit 1 ;;
    pending)
      printf '%s' "$answer" | jq -r '"Warden: pending: " + (.reasons[0].detail // "")'
      if [ "$(date +%s)" -ge "$deadline" ]; then echo "Warden: still pending at the deadline."; exit 2; fi ;;
    *) echo "Warden: unexpected answer: $answer"; exit 3 ;;
  esac
done
