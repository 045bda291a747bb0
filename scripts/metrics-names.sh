#!/usr/bin/env bash
# Every metric the alert rules and the Grafana dashboard name must exist in a
# real gateway's /metrics: dump it after some traffic, then check with exprcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
dump="$PWD/artifacts/metrics.prom"
KEYWARD_METRICS_DUMP="$dump" go test -count=1 -run '^TestMetricsDump$' ./services/gateway/test/e2e/
cd deploy/prometheus/exprcheck
GOWORK=off go test -count=1 ./...
GOWORK=off go run . \
  --rules ../../helm/keyward/files/keyward-alerts.yaml \
  --dashboard ../../helm/keyward/files/keyward-dashboard.json \
  --metrics "$dump"
