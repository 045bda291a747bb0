#!/usr/bin/env bash
# Lint every Go module and every shell script of the repository:
#   gofmt, go vet and staticcheck for all seven modules, `go mod tidy -diff`
#   for each, `go work sync` leaving no diff, shellcheck over every *.sh and
#   .ci/run, and (LINT_VULN=1, or `make vuln`) govulncheck against an offline
#   copy of the Go vulnerability database.
# staticcheck and govulncheck are built once, pinned, into $KEYWARD_CACHE
# (default ~/.cache/keyward) and linked into .tools/bin, as
# deploy/scripts/tools.sh does for the deploy tools.
#
# usage: scripts/lint.sh [all|vuln]   (default all)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS=$ROOT/.tools/bin
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}
STATICCHECK_VERSION=v0.8.2
GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
# The workspace modules (go.work) and the three standalone ones.
WORKSPACE=(pkg services/gateway services/mockanthropic services/dashboard)
STANDALONE=(deploy/validate deploy/prometheus/exprcheck bench/loadgen)
MODULES=("${WORKSPACE[@]}" "${STANDALONE[@]}")
mkdir -p "$TOOLS" "$CACHE/bin"
export PATH=$TOOLS:$PATH

scratch=$(mktemp -d "${TMPDIR:-/tmp}/keyward-lint.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

failed=0
fail() {
	echo "lint: $*" >&2
	failed=1
}

# install_go_tool NAME MODULE/CMD VERSION: go install a pinned tool into the
# shared cache once (under a lock, so parallel clones never race) and link it.
install_go_tool() {
	local name=$1 pkg=$2 version=$3 goversion
	goversion=$(go env GOVERSION)
	local cached=$CACHE/bin/$name-$version-$goversion
	if [[ ! -x $cached ]]; then
		(
			flock 9
			if [[ ! -x $cached ]]; then
				echo "lint: building $name $version" >&2
				local gobin
				gobin=$(mktemp -d "$CACHE/bin/.$name-build.XXXXXX")
				GOWORK=off GOFLAGS=-mod=mod GOBIN=$gobin go install "$pkg@$version"
				mv "$gobin/$name" "$cached"
				rmdir "$gobin"
			fi
		) 9>"$CACHE/.$name.lock"
	fi
	ln -sf "$cached" "$TOOLS/$name"
}

# in_module DIR CMD...: run CMD in module DIR, outside the workspace for the
# standalone modules.
in_module() {
	local dir=$1
	shift
	local gowork=
	case " ${STANDALONE[*]} " in *" $dir "*) gowork=off ;; esac
	(cd "$dir" && GOWORK=${gowork:-${GOWORK:-}} "$@")
}

lint_go() {
	local out
	out=$(gofmt -l "${MODULES[@]}")
	[[ -z $out ]] || fail "gofmt needed:"$'\n'"$out"

	for m in "${MODULES[@]}"; do
		in_module "$m" go vet ./... || fail "$m: go vet"
	done

	for m in "${MODULES[@]}"; do
		if ! out=$(cd "$m" && GOFLAGS=-mod=mod go mod tidy -diff 2>&1); then
			fail "$m: go mod tidy would change go.mod/go.sum (run it there and commit):"$'\n'"$out"
		fi
	done

	# go work sync writes the workspace's versions back into each module;
	# run it on copies so the check never edits the tree.
	local copy=$scratch/worksync
	mkdir -p "$copy"
	cp go.work "$copy/"
	[[ ! -f go.work.sum ]] || cp go.work.sum "$copy/"
	for m in "${WORKSPACE[@]}"; do
		mkdir -p "$copy/$m"
		cp -r "$m/." "$copy/$m/"
	done
	(cd "$copy" && go work sync) || fail "go work sync failed"
	for m in "${WORKSPACE[@]}"; do
		for f in go.mod go.sum; do
			if ! diff -u "$m/$f" "$copy/$m/$f" >"$scratch/diff"; then
				fail "go work sync changes $m/$f (run it and commit):"$'\n'"$(cat "$scratch/diff")"
			fi
		done
	done

	install_go_tool staticcheck honnef.co/go/tools/cmd/staticcheck "$STATICCHECK_VERSION"
	for m in "${MODULES[@]}"; do
		in_module "$m" staticcheck ./... || fail "$m: staticcheck"
	done
}

lint_shell() {
	local scripts=()
	mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
	shellcheck -x "${scripts[@]}" || fail "shellcheck"
}

# vuln reports known vulnerabilities in the modules' dependencies, from the
# vulnerability database fetched as a Go module (golang.org/x/vulndb)
# through the module proxy and indexed locally. Findings only in the
# standard library are printed but do not fail: they are fixed by a Go
# release, not by this repository.
lint_vuln() {
	install_go_tool govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
	local src db=$CACHE/vulndb
	src=$(GOWORK=off GOFLAGS=-mod=mod go mod download -json golang.org/x/vulndb@$VULNDB_VERSION | python3 -c 'import json,sys;print(json.load(sys.stdin)["Dir"])')
	install_go_tool indexdb golang.org/x/vulndb/cmd/indexdb "$VULNDB_VERSION"
	(
		flock 9
		if [[ ! -f $db/.source ]] || [[ $(cat "$db/.source") != "$src" ]]; then
			rm -rf "$db.new"
			indexdb -vulns "$src/data/osv" -out "$db.new"
			echo "$src" >"$db.new/.source"
			rm -rf "$db"
			mv "$db.new" "$db"
		fi
	) 9>"$CACHE/.vulndb.lock"
	for m in "${MODULES[@]}"; do
		local report=$scratch/vuln-${m//\//_}.json
		in_module "$m" govulncheck -db "file://$db" -format json ./... >"$report" || true
		python3 - "$m" "$report" <<'PY' || failed=1
import json, sys
mod, path = sys.argv[1], sys.argv[2]
dec, text, objs = json.JSONDecoder(), open(path).read(), []
i = 0
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    o, i = dec.raw_decode(text, i)
    objs.append(o)
called = {}
for o in objs:
    f = o.get("finding")
    if f and f.get("trace") and f["trace"][0].get("function"):
        called.setdefault(f["osv"], set()).add(f["trace"][0].get("module", ""))
if not called:
    print(f"vuln: {mod}: no called vulnerable code")
    sys.exit(0)
bad = False
for osv, mods in sorted(called.items()):
    stdlib = mods <= {"stdlib", "toolchain"}
    print(f"vuln: {mod}: {osv} in {', '.join(sorted(mods))}" + (" (standard library: fixed by a Go release)" if stdlib else ""))
    bad |= not stdlib
sys.exit(1 if bad else 0)
PY
	done
}

case ${1:-all} in
all)
	lint_go
	lint_shell
	[[ ${LINT_VULN:-0} != 1 ]] || lint_vuln
	;;
vuln) lint_vuln ;;
*)
	echo "usage: $0 [all|vuln]" >&2
	exit 2
	;;
esac
if [[ $failed != 0 ]]; then
	echo "lint: FAILED" >&2
	exit 1
fi
echo "lint: all checks passed"
