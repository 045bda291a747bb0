#!/usr/bin/env bash
# Validates keyward's alert rules: `promtool check rules` on the shipped rule
# file, then `promtool test rules` on every unit test in deploy/prometheus/tests.
#
# Usage: deploy/prometheus/check.sh            (from anywhere in the repo)
#
# promtool comes from Debian's `prometheus` package (2.42 here). When it is
# missing the script installs it with apt-get if it runs as root, and
# otherwise says what to install. PROMTOOL=/path/to/promtool overrides.
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
	if command -v promtool >/dev/null 2>&1; then
		command -v promtool
		return 0
	fi
	if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "check.sh: promtool not found; installing Debian's prometheus package" >&2
		# The package would start a Prometheus server; policy-rc.d keeps
		# services from starting on container-style hosts, and the server is
		# not needed here either way.
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
		command -v promtool
		return 0
	fi
	cat >&2 <<'EOF'
check.sh: promtool is not installed. Install it with one of:
  sudo apt-get install --no-install-recommends prometheus      (Debian/Ubuntu; provides promtool)
  go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0
or set PROMTOOL=/path/to/promtool.
EOF
	return 1
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
