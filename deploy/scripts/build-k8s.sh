#!/usr/bin/env bash
# Builds Kubernetes binaries from k8s.io/kubernetes (one release for all of them, so kubectl
# never warns about version skew) and caches them in $KEYWARD_CACHE, outside the work tree,
# because the build costs minutes of CPU and a fresh clone on the same machine should not pay
# it again. Debian has no kubectl we can rely on, and no Kubernetes server at all.
#
# usage: build-k8s.sh [server|node]
#   server (default)  kube-apiserver, kubectl: what the server-side dry run (kube-check) needs
#   node              those plus kube-controller-manager, kube-scheduler, kubelet, kube-proxy
#                     and CoreDNS (its own wrapper module, only the plugins cluster DNS needs):
#                     a whole single-node cluster (k8s-live.sh)
# Prints nothing but progress on stderr; exit 0 when every wanted binary is cached, as
# $KEYWARD_CACHE/<name>-$K8S_VERSION. The missing ones are built in a single `go build`, so
# the packages they share (most of them) are compiled once and the link steps run in parallel.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
# The first CoreDNS release on client-go v0.34 that go mod tidy accepts here.
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.0}
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}

case ${1:-server} in
server) want=(kube-apiserver kubectl) ;;
node) want=(kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy coredns) ;;
*)
	echo "usage: $0 [server|node]" >&2
	exit 2
	;;
esac

cached() { # NAME: where the binary is cached
	if [[ $1 == coredns ]]; then echo "$CACHE/coredns-$COREDNS_VERSION"; else echo "$CACHE/$1-$K8S_VERSION"; fi
}
missing() {
	local b
	for b in "${want[@]}"; do
		[[ -x $(cached "$b") ]] || echo "$b"
	done
}

[[ -z $(missing) ]] && exit 0

mkdir -p "$CACHE"
# One build at a time per cache (CI may start this early in the background while
# test-deploy asks for it too): the second caller waits, then finds the binaries.
exec 9>"$CACHE/.k8s-build.lock"
flock 9
mapfile -t todo < <(missing)
((${#todo[@]})) || exit 0
export GOWORK=off GOFLAGS=-mod=mod

build_coredns() {
	# CoreDNS with only the plugins a cluster's DNS needs (the full build pulls every cloud
	# SDK): its registered directive list stays, and the Corefile uses only these.
	local src=$CACHE/coredns-src-$COREDNS_VERSION s=$SECONDS
	mkdir -p "$src"
	cat >"$src/go.mod" <<MOD
module keyward.local/coredns

go 1.24

require github.com/coredns/coredns $COREDNS_VERSION
MOD
	cat >"$src/main.go" <<'GO'
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
)

func main() { coremain.Run() }
GO
	echo "build-k8s: building CoreDNS $COREDNS_VERSION (kubernetes plugin only)" >&2
	(cd "$src" && go mod tidy && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$src/coredns" .)
	mv "$src/coredns" "$(cached coredns)"
	echo "build-k8s: built CoreDNS in $((SECONDS - s)) s" >&2
}
if [[ " ${todo[*]} " == *" coredns "* ]]; then
	build_coredns
	mapfile -t todo < <(missing)
	((${#todo[@]})) || exit 0
fi

src=$CACHE/k8s-src-$K8S_VERSION
mkdir -p "$src"

# k8s.io/kubernetes points its staging modules at ./staging/src/...; outside its own tree
# those must come from the proxy at the matching v0.x version. Derive the list from the
# module's own go.mod so it follows the release instead of being copied by hand.
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
staging_version=v0.${K8S_VERSION#v1.}
{
	echo "module keyward.local/k8s-tools"
	echo
	echo "go 1.24"
	echo
	echo "require k8s.io/kubernetes $K8S_VERSION"
	echo
	echo "replace ("
	# sample-* are examples that are never published to the proxy and that we never import.
	awk '/^replace \(/{in_r=1; next} in_r && /^\)/{in_r=0} in_r && $3 ~ /^\.\/staging\// {print $1}' "$gomod" |
		grep -v '^k8s.io/sample-' |
		while read -r mod; do printf '\t%s => %s %s\n' "$mod" "$mod" "$staging_version"; done
	echo ")"
} >"$src/go.mod.new"
# Every command of the node set is imported, whichever set is asked for, so go.mod and
# go.sum do not change between a server build and a later node build.
cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO

cd "$src"
if ! cmp -s go.mod.new go.mod.in || [[ ! -s go.sum ]]; then
	echo "build-k8s: resolving modules for k8s.io/kubernetes $K8S_VERSION" >&2
	cp go.mod.new go.mod
	go mod tidy
	cp go.mod.new go.mod.in
fi
rm -f go.mod.new
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
out=$src/out
rm -rf "$out"
mkdir -p "$out"
pkgs=()
for b in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
echo "build-k8s: building ${todo[*]} (minutes of CPU on a cold cache)" >&2
s=$SECONDS
nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/" "${pkgs[@]}"
for b in "${todo[@]}"; do
	mv "$out/$b" "$CACHE/$b-$K8S_VERSION"
done
echo "build-k8s: built ${todo[*]} in $((SECONDS - s)) s into $CACHE" >&2
