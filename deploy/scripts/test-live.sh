#!/usr/bin/env bash
# The deployment artefacts, run for real (make test-live; part of make test). Each stage starts
# and stops its own processes, by PID, on loopback only:
#   1. rules, live     3 gateways + the mock + redis-server scraped by Prometheus 3.2.1 (the
#                      release compose pins); scripted phases, alerts asserted (deploy/live)
#   2. rule tests      promtool 3.2.1 test rules (deploy/prometheus/check.sh)
#   3. dashboard lint  grafana/dashboard-linter --strict with deploy/prometheus/dashboard-lint.yaml
#   4. compose         dockerd + Compose v2, the three Dockerfiles built, compose up, checks
#                      (deploy/scripts/compose-live.sh)
#   5. k8s             a single-node Kubernetes v1.34 built from k8s.io/kubernetes, containerd:
#                      helm install (restricted namespace), helm test, a call through the
#                      Service, PDB + rollout restart, helm uninstall clean (k8s-live.sh).
#                      KEYWARD_LIVE_K8S=0 leaves it out of `all`.
# Tools are built once and cached by version in ~/.cache/keyward (build-prometheus.sh,
# tools.sh dashboard-linter, compose-live.sh); a cold run builds them first.
#
# usage: test-live.sh [rules|promtool|lint|compose|k8s|all]   (default all; needs make build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPTS=$ROOT/deploy/scripts
FILES=$ROOT/deploy/helm/keyward/files
export GOWORK=off
t0=$SECONDS
durations=()

stage() {
	local name=$1
	shift
	local s=$SECONDS
	echo
	echo "==> test-live: $name [$((SECONDS - t0)) s]"
	"$@"
	durations+=("$name: $((SECONDS - s)) s")
}

rules_live() {
	local prom
	prom=$("$SCRIPTS/build-prometheus.sh" | sed -n 1p)
	(
		cd "$ROOT/deploy/live"
		# Not in go.work, so the top-level lint does not see this module: check it here.
		unformatted=$(gofmt -l .)
		[[ -z $unformatted ]] || { echo "gofmt needed: $unformatted" >&2; exit 1; }
		go vet ./...
		go test -count=1 ./...
		go build -o "$ROOT/.tools/bin/keyward-live" .
	)
	(cd "$ROOT/deploy/live" && "$ROOT/.tools/bin/keyward-live" -bin "$ROOT/bin" -prometheus "$prom")
}

rule_tests() {
	"$ROOT/deploy/prometheus/check.sh"
}

dashboard_lint() {
	"$SCRIPTS/tools.sh" dashboard-linter
	"$ROOT/.tools/bin/dashboard-linter" lint --strict --config "$ROOT/deploy/prometheus/dashboard-lint.yaml" "$FILES/keyward-dashboard.json"
	echo "dashboard-linter: keyward-dashboard.json passes --strict"
}

compose_live() {
	"$SCRIPTS/compose-live.sh"
}

k8s_live() {
	"$SCRIPTS/k8s-live.sh"
}

mkdir -p "$ROOT/.tools/bin"
case ${1:-all} in
rules) stage "rules, live" rules_live ;;
promtool) stage "rule unit tests (promtool 3.2.1)" rule_tests ;;
lint) stage "dashboard lint" dashboard_lint ;;
compose) stage "compose, live" compose_live ;;
k8s) stage "kubernetes, live" k8s_live ;;
all)
	# Every stage runs, each in its own process (so `set -e` holds inside it), even when an
	# earlier one failed; the summary names the failures.
	failed=()
	# The live rules stage ends with up to five minutes of waiting for a 5-minute boundary
	# (the recording rule's step): it runs in the background, and the other stages start
	# once it says it is only waiting (or has ended). Its log is printed when it ends.
	rules_log=$(mktemp)
	waiting=$(mktemp -u)
	s=$SECONDS
	KEYWARD_LIVE_WAITING_FILE=$waiting "$0" rules >"$rules_log" 2>&1 &
	rules_pid=$!
	trap 'kill "$rules_pid" 2>/dev/null || true' EXIT
	while kill -0 "$rules_pid" 2>/dev/null && [[ ! -e $waiting ]]; do sleep 1; done
	echo "test-live: rules stage waiting for its boundary after $((SECONDS - s)) s; the other stages run meanwhile"
	subs=(promtool lint compose)
	if [[ ${KEYWARD_LIVE_K8S:-1} != 0 ]]; then subs+=(k8s); fi
	for sub in "${subs[@]}"; do
		s=$SECONDS
		if "$0" "$sub"; then
			durations+=("$sub: $((SECONDS - s)) s")
		else
			durations+=("$sub: $((SECONDS - s)) s (FAILED)")
			failed+=("$sub")
		fi
	done
	if wait "$rules_pid"; then
		durations+=("rules: $((SECONDS - s)) s (in the background)")
	else
		durations+=("rules: $((SECONDS - s)) s (in the background, FAILED)")
		failed+=(rules)
	fi
	cat "$rules_log"
	rm -f "$rules_log" "$waiting"
	echo
	echo "test-live: $((SECONDS - t0)) s"
	printf '  %s\n' "${durations[@]}"
	if ((${#failed[@]})); then
		echo "test-live: FAILED stage(s): ${failed[*]}" >&2
		exit 1
	fi
	echo "test-live: all stages passed"
	exit 0
	;;
*)
	echo "usage: $0 [rules|promtool|lint|compose|k8s|all]" >&2
	exit 2
	;;
esac
printf '  %s\n' "${durations[@]}"
