#!/usr/bin/env bash
# Validates keyward's alert rules: `promtool check rules` on the shipped rule
# file, then `promtool test rules` on every unit test in deploy/prometheus/tests.
#
# Usage: deploy/prometheus/check.sh            (from anywhere in the repo)
#
# promtool is the release docker-compose.yml pins (prom/prometheus:v3.2.1), built once from
# its Go module and cached by version in ~/.cache/keyward by
# deploy/scripts/build-prometheus.sh (≈6 CPU-minutes the first time, then instant): the
# rules are tested by the Prometheus that runs them. Prometheus 3 range selectors are
# left-open, so the fixtures use 1-minute samples. PROMTOOL=/path/to/promtool overrides
# (Debian's 2.42 passes all but two cases, whose annotated values differ by that change).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rules="$here/../helm/keyward/files/keyward-alerts.yaml"
tests_dir="$here/tests"

find_promtool() {
	if [[ -n "${PROMTOOL:-}" ]]; then
		[[ -x "$PROMTOOL" ]] || { echo "check.sh: PROMTOOL=$PROMTOOL is not executable" >&2; return 1; }
		echo "$PROMTOOL"
		return 0
	fi
	# Prints the prometheus and promtool paths; builds them on first use.
	"$here/../scripts/build-prometheus.sh" | tail -n1
}

promtool="$(find_promtool)"
echo "check.sh: using $("$promtool" --version 2>&1 | head -n1)"

"$promtool" check rules "$rules"

shopt -s nullglob
test_files=("$tests_dir"/*_test.yaml)
if [[ ${#test_files[@]} -eq 0 ]]; then
	echo "check.sh: no promtool tests in $tests_dir" >&2
	exit 1
fi
# promtool resolves rule_files relative to each test file.
"$promtool" test rules "${test_files[@]}"
echo "check.sh: ${#test_files[@]} promtool test file(s) passed"
