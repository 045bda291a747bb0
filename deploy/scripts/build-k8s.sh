#!/usr/bin/env bash
# Builds kube-apiserver and kubectl from k8s.io/kubernetes (the same release for both, so
# kubectl never warns about version skew) and caches them in $KEYWARD_CACHE, outside the
# work tree, because the build costs ≈5 CPU-minutes and a fresh clone on the same machine
# should not pay it again. Debian has no kubectl we can rely on, and no kube-apiserver at all.
#
# usage: build-k8s.sh            (prints nothing but progress; exit 0 when both binaries exist)
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}
KAS=$CACHE/kube-apiserver-$K8S_VERSION
KUBECTL=$CACHE/kubectl-$K8S_VERSION

if [[ -x $KAS && -x $KUBECTL ]]; then
	exit 0
fi

mkdir -p "$CACHE"
# One build at a time per cache (CI may start this early in the background while
# test-deploy asks for it too): the second caller waits, then finds the binaries.
exec 9>"$CACHE/.k8s-build.lock"
flock 9
if [[ -x $KAS && -x $KUBECTL ]]; then
	exit 0
fi
src=$CACHE/k8s-src-$K8S_VERSION
mkdir -p "$src"
export GOWORK=off GOFLAGS=-mod=mod

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
} >"$src/go.mod"
cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO

cd "$src"
echo "build-k8s: resolving modules for k8s.io/kubernetes $K8S_VERSION" >&2
go mod tidy
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
echo "build-k8s: building kube-apiserver (≈5 CPU-minutes on a cold cache)" >&2
go build -trimpath -ldflags "$ldflags" -o "$KAS.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$KAS.tmp" "$KAS"
echo "build-k8s: building kubectl" >&2
go build -trimpath -ldflags "$ldflags" -o "$KUBECTL.tmp" k8s.io/kubernetes/cmd/kubectl
mv "$KUBECTL.tmp" "$KUBECTL"
echo "build-k8s: done: $KAS $KUBECTL" >&2
