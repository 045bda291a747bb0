#!/usr/bin/env bash
# Every deploy check, in order of cost; stops at the first failing step.
#   1. tools        install/link helm, helm-unittest, kube-apiserver, kubectl, etcd, promtool
#   2. helm lint    --strict for the chart defaults and every ci/*-values.yaml
#   3. helm unittest  the chart's tests/ (toggles, security contexts, schema)
#   4. k8s drift    deploy/k8s/manifests must equal what the chart renders
#   5. go test      deploy/validate: compose-go, Dockerfile lint, strict decode
#   6. promtool     the rules as rendered into the PrometheusRule; compose's prometheus.yml
#   7. check-config the real gateway binary validates each scenario's (and compose's) settings
#   8. kube-check   real kube-apiserver: server-side dry-run of everything (restricted PSS)
# With tools cached this takes about 1–3 minutes; on a fresh machine the tool builds add
# about 10 minutes (see deploy/scripts/tools.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/.tools/bin
CHART=$ROOT/deploy/helm/keyward
K8S_VERSION=${K8S_VERSION:-v1.34.4}
t0=$SECONDS
step() { echo; echo "==> $* [$((SECONDS - t0)) s]"; }

step "tools"
"$ROOT/deploy/scripts/tools.sh" all
HELM=$TOOLS/helm

scenarios=("$CHART"/ci/*-values.yaml)
step "helm lint --strict (defaults + ${#scenarios[@]} scenarios)"
"$HELM" lint --strict "$CHART" --kube-version "$K8S_VERSION" --quiet
for values in "${scenarios[@]}"; do
	"$HELM" lint --strict "$CHART" --kube-version "$K8S_VERSION" --quiet -f "$values"
	# lint reports a template's `fail` only as INFO; rendering must really succeed.
	"$HELM" template keyward "$CHART" --kube-version "$K8S_VERSION" -f "$values" >/dev/null
done
echo "lint and render ok"

step "shellcheck deploy/scripts"
shellcheck "$ROOT"/deploy/scripts/*.sh
echo "shellcheck clean"

step "helm unittest"
"$TOOLS/helm-unittest" "$CHART"

step "deploy/k8s/manifests drift"
HELM=$HELM "$ROOT/deploy/scripts/k8s-manifests.sh" --check

step "deploy/validate: gofmt, tidy, vet, go test (compose-go, Dockerfiles, strict decode)"
(
	cd "$ROOT/deploy/validate"
	# Not in go.work, so the top-level lint does not see this module: check it here.
	unformatted=$(gofmt -l .)
	[[ -z $unformatted ]] || { echo "gofmt needed: $unformatted" >&2; exit 1; }
	GOWORK=off go mod tidy -diff
	GOWORK=off go vet ./...
	GOWORK=off go test -count=1 ./...
)

step "promtool"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$ROOT/deploy/validate" && GOWORK=off go build -o "$tmp/rulespec" ./cmd/rulespec)
"$HELM" template keyward "$CHART" --kube-version "$K8S_VERSION" -f "$CHART/ci/monitoring-values.yaml" \
	--show-only templates/prometheusrule.yaml | "$tmp/rulespec" -same-as "$CHART/files/keyward-alerts.yaml" >"$tmp/rendered-rules.yaml"
promtool check rules "$tmp/rendered-rules.yaml"
# The compose config names the rules at their in-container path; point it at the file.
sed "s|/etc/prometheus/rules/keyward-alerts.yaml|$CHART/files/keyward-alerts.yaml|" \
	"$ROOT/deploy/compose/prometheus/prometheus.yml" >"$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml"

step "gateway --check-config with each scenario's and compose's env and config (deploy <-> binary contract)"
(cd "$ROOT" && go build -o "$tmp/gateway" ./services/gateway/cmd/gateway)
(cd "$ROOT/deploy/validate" && GOWORK=off go build -o "$tmp/checkconfig" ./cmd/checkconfig)
for values in "${scenarios[@]}"; do
	"$HELM" template keyward "$CHART" --kube-version "$K8S_VERSION" -f "$values" |
		"$tmp/checkconfig" -gateway "$tmp/gateway" >/dev/null ||
		{ echo "check-config failed for $(basename "$values")" >&2; exit 1; }
done
cat "$ROOT"/deploy/k8s/manifests/*.yaml | "$tmp/checkconfig" -gateway "$tmp/gateway" >/dev/null
# …and it can fail: a value the schema lets through but the gateway refuses.
if "$HELM" template keyward "$CHART" --kube-version "$K8S_VERSION" -f "$CHART/ci/default-values.yaml" \
	--set 'gateway.extraEnv[0].name=KEYWARD_REDIS_FAILURE_MODE' --set 'gateway.extraEnv[0].value=sometimes' |
	"$tmp/checkconfig" -gateway "$tmp/gateway" >/dev/null 2>&1; then
	echo "checkconfig accepted KEYWARD_REDIS_FAILURE_MODE=sometimes: the check cannot fail" >&2
	exit 1
fi
"$tmp/checkconfig" -gateway "$tmp/gateway" -compose "$ROOT/docker-compose.yml" >/dev/null
if "$tmp/checkconfig" -gateway "$tmp/gateway" \
	-compose "$ROOT/deploy/validate/testdata/checkconfig/bad-compose.yml" >/dev/null 2>&1; then
	echo "checkconfig accepted a compose rate limit of 'lots per minute': the check cannot fail" >&2
	exit 1
fi
echo "the gateway accepts all ${#scenarios[@]} scenarios, deploy/k8s and docker-compose.yml; it refuses the broken ones"

step "kube-apiserver server-side dry-run"
"$ROOT/deploy/scripts/kube-check.sh"

echo
echo "test-deploy: all checks passed in $((SECONDS - t0)) s"
