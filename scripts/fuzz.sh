#!/usr/bin/env bash
# Runs every Go fuzz target in the repository (every `func FuzzXxx(` in a
# _test.go file) for DURATION each, one after the other, and exits non-zero
# if any of them fails. Seed corpora live in each package's
# testdata/fuzz/<FuzzName>/; a failure writes the crashing input there, so it
# becomes a regression test once committed.
#
#   scripts/fuzz.sh [DURATION]     e.g. scripts/fuzz.sh 5s   (default 10s)
#   FUZZ_MATCH=Stream scripts/fuzz.sh 1m   only targets whose name matches
set -euo pipefail

dur="${1:-10s}"
match="${FUZZ_MATCH:-.}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# "path/to/file_test.go FuzzName" per target, in a stable order.
mapfile -t targets < <(
	grep -rnE --include='*_test.go' --exclude-dir=.git --exclude-dir=.tools --exclude-dir=node_modules --exclude-dir=vendor \
		'^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's|^\./([^:]*):[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' |
		awk -v m="$match" '$2 ~ m' | sort -u
)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

# moduleRoot prints the directory of the go.mod governing dir.
moduleRoot() {
	local d="$1"
	while [ "$d" != "." ] && [ "$d" != "/" ] && [ ! -f "$d/go.mod" ]; do d="$(dirname "$d")"; done
	[ -f "$d/go.mod" ] || { echo "fuzz: no go.mod above $1" >&2; return 1; }
	echo "$d"
}

# inWorkspace reports whether go.work lists the module directory.
inWorkspace() {
	[ -f go.work ] && grep -qE "^[[:space:]]*(use[[:space:]]+)?\./?${1#./}[[:space:]]*\)?$" go.work
}

# isDeadlineFlake reports whether a failed fuzz log is only the coordinator's
# own deadline: "context deadline exceeded", no failing input written, no
# panic or test failure message.
isDeadlineFlake() {
	grep -q 'context deadline exceeded' "$1" &&
		! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$1"
}

failed=()
start=$SECONDS
echo "fuzz: ${#targets[@]} targets, $dur each"
for t in "${targets[@]}"; do
	file="${t% *}"
	name="${t#* }"
	dir="$(dirname "$file")"
	mod="$(moduleRoot "$dir")"
	rel="./${dir#"$mod"}"
	rel="${rel/#.\/\//./}"
	[ "$dir" = "$mod" ] && rel="."
	# A module outside go.work (a tool with its own go.mod) builds on its own.
	envs=()
	inWorkspace "$mod" || envs=(GOWORK=off)
	printf 'fuzz: %-28s %-45s ' "$name" "$dir"
	log="$(mktemp)"
	t0=$SECONDS
	fuzzOnce() { (cd "$mod" && env "${envs[@]}" go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "$rel") >"$log" 2>&1; }
	if fuzzOnce; then
		echo "ok ($((SECONDS - t0))s)"
	elif isDeadlineFlake "$log" && fuzzOnce; then
		# Go 1.26's fuzz coordinator can report its own -fuzztime
		# deadline as a failure (golang/go#75804, fixed in Go 1.27): a
		# bare "context deadline exceeded" with no input written. Such a
		# run is repeated once; a real finding always writes its input.
		echo "ok ($((SECONDS - t0))s, after a coordinator deadline flake, golang/go#75804)"
	else
		echo "FAIL ($((SECONDS - t0))s)"
		sed 's/^/    /' "$log" | tail -n 40
		failed+=("$name ($dir)")
	fi
	rm -f "$log"
done

echo "fuzz: ${#targets[@]} targets in $((SECONDS - start))s, ${#failed[@]} failed"
if [ "${#failed[@]}" -gt 0 ]; then
	printf '  failed: %s\n' "${failed[@]}"
	echo "  crashing inputs are under the package's testdata/fuzz/<FuzzName>/; re-run one with go test -run '<FuzzName>/<file>'"
	exit 1
fi
