#!/usr/bin/env bash
# make run: the mock upstream, the gateway and the dashboard, wired together
# on this machine. No key, Docker or Redis needed; with ANTHROPIC_API_KEY set
# the gateway talks to the real Claude API instead of the mock.
set -euo pipefail
cd "$(dirname "$0")/.."

MOCK_ADDR=${MOCKANTHROPIC_ADDR:-127.0.0.1:8090}
GW_ADDR=${KEYWARD_ADDR:-:5001}
GW_PORT=${GW_ADDR##*:}
METRICS_ADDR=${KEYWARD_METRICS_ADDR:-:9464}
METRICS_PORT=${METRICS_ADDR##*:}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if [ -z "${ANTHROPIC_API_KEY:-}" ] && [ -z "${ANTHROPIC_API_KEY_FILE:-}" ] && ! grep -qs '^ANTHROPIC_API_KEY' .env; then
  # The mock speaks HTTPS with HTTP/2, as api.anthropic.com does, with a
  # certificate it generates at start; the gateway trusts its CA.
  tls=$(mktemp -d)
  trap 'cleanup; rm -rf "$tls"' EXIT INT TERM
  MOCKANTHROPIC_ADDR=$MOCK_ADDR MOCKANTHROPIC_API_KEY=mock-key MOCKANTHROPIC_TLS_GENERATE=$tls ./bin/mockanthropic &
  pids+=($!)
  for _ in $(seq 1 50); do [ -s "$tls/ca.pem" ] && break; sleep 0.1; done
  export KEYWARD_MOCK_URL="https://$MOCK_ADDR" KEYWARD_MOCK_API_KEY=mock-key KEYWARD_UPSTREAM_CA_FILE=$tls/ca.pem
  upstream="the offline mock at https://$MOCK_ADDR (set ANTHROPIC_API_KEY to use the real Claude API)"
else
  upstream="the real Claude API"
fi

KEYWARD_SHUTDOWN_DELAY=${KEYWARD_SHUTDOWN_DELAY:-0s} ./bin/gateway &
pids+=($!)
DASHBOARD_GATEWAY_URL=${DASHBOARD_GATEWAY_URL:-http://localhost:$GW_PORT} ./bin/dashboard &
pids+=($!)

for _ in $(seq 1 50); do
  if ./bin/gateway healthcheck "http://127.0.0.1:$GW_PORT/health" 2>/dev/null; then break; fi
  sleep 0.1
done
cat <<MSG

keyward is running, talking to $upstream
  gateway    http://localhost:$GW_PORT   (try: curl http://localhost:$GW_PORT/health)
  metrics    http://localhost:${METRICS_PORT}/metrics
  dashboard  http://localhost:${DASHBOARD_ADDR:-8501}   (open it in a browser)
Press Ctrl-C to stop.

MSG
wait -n "${pids[@]}"
