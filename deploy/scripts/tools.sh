#!/usr/bin/env bash
# Installs the deploy validation tools, idempotently, into the project-local .tools/bin.
# Built binaries are also kept in $KEYWARD_CACHE (default ~/.cache/keyward), keyed by
# version, so a fresh clone on the same machine links them instead of rebuilding; the
# first build on a fresh 2-core machine takes ≈10 minutes (helm ≈2, helm-unittest ≈1,
# kube-apiserver + kubectl ≈6; the whole node set for make test-live's Kubernetes stage
# more: build-k8s.sh), later runs take seconds.
#
# usage: tools.sh [helm|helm-unittest|dashboard-linter|apt|k8s|all]   (default all; dashboard-linter only on request)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/.tools/bin
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}
HELM_VERSION=v3.22.0
HELM_UNITTEST_VERSION=v1.1.2
K8S_VERSION=v1.34.4
# grafana/dashboard-linter has no releases. The module proxy here refuses @latest and the
# 2024-12-20 commit a088406 that a trial built; it serves this one (2024-12-24, used by
# grafana/grafana's own go.mod), which builds with go install.
DASHBOARD_LINTER_VERSION=v0.0.0-20241224134444-1765d94aec4a
mkdir -p "$TOOLS" "$CACHE/bin"
export GOWORK=off

# link NAME CACHED: expose a cached binary under .tools/bin.
link() { ln -sf "$2" "$TOOLS/$1"; }

# locked NAME CMD...: run CMD holding a per-tool lock, so concurrent installs (two clones,
# or CI pre-building in the background) never write the same cached binary at once.
locked() {
	local name=$1
	shift
	(
		flock 9
		"$@"
	) 9>"$CACHE/.$name.lock"
}

install_helm() {
	# Helm's own Makefile stamps the default Kubernetes version for `helm template` and the
	# deprecation lint; without it a `go install` build assumes 1.20. We stamp the release
	# the chart is validated against.
	local kmaj=1 kmin=${K8S_VERSION#v1.}
	kmin=${kmin%%.*}
	local cached=$CACHE/bin/helm-$HELM_VERSION-k$kmaj.$kmin
	if [[ ! -x $cached ]]; then
		echo "tools: building helm $HELM_VERSION" >&2
		local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
		ld="$ld -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$kmaj -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kmin"
		ld="$ld -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$kmaj -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kmin"
		GOBIN=$CACHE/bin/.helm-build go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
		mv "$CACHE/bin/.helm-build/helm" "$cached"
	fi
	link helm "$cached"
}

install_helm_unittest() {
	local cached=$CACHE/bin/helm-unittest-$HELM_UNITTEST_VERSION
	if [[ ! -x $cached ]]; then
		echo "tools: building helm-unittest $HELM_UNITTEST_VERSION" >&2
		# helm-unittest's own go.mod carries a replace directive, so `go install pkg@v`
		# refuses it; a wrapper module repeats the replace and builds the command.
		local src=$CACHE/helm-unittest-src-$HELM_UNITTEST_VERSION
		mkdir -p "$src"
		cat >"$src/go.mod" <<MOD
module keyward.local/helm-unittest

go 1.24

require github.com/helm-unittest/helm-unittest $HELM_UNITTEST_VERSION

replace github.com/vmware-labs/yaml-jsonpath v0.3.2 => github.com/helm-unittest/yaml-jsonpath v0.4.0
MOD
		cat >"$src/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/helm-unittest/helm-unittest/cmd/helm-unittest"
GO
		(cd "$src" && GOFLAGS=-mod=mod go mod tidy &&
			go build -trimpath -ldflags "-s -w" -o "$cached.tmp" github.com/helm-unittest/helm-unittest/cmd/helm-unittest)
		mv "$cached.tmp" "$cached"
	fi
	link helm-unittest "$cached"
}

install_dashboard_linter() {
	local cached=$CACHE/bin/dashboard-linter-$DASHBOARD_LINTER_VERSION
	if [[ ! -x $cached ]]; then
		echo "tools: building dashboard-linter $DASHBOARD_LINTER_VERSION" >&2
		# `go install pkg@version` first asks the proxy for the module's version list (to look
		# for a deprecation notice), which this proxy refuses; a wrapper module that requires
		# the pinned version builds the command without that query.
		local src=$CACHE/dashboard-linter-src-$DASHBOARD_LINTER_VERSION
		mkdir -p "$src"
		cat >"$src/go.mod" <<MOD
module keyward.local/dashboard-linter

go 1.23

require github.com/grafana/dashboard-linter $DASHBOARD_LINTER_VERSION
MOD
		(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$cached.tmp" github.com/grafana/dashboard-linter)
		mv "$cached.tmp" "$cached"
	fi
	link dashboard-linter "$cached"
}

install_apt() {
	# promtool for the rules, etcd for the kube-apiserver, shellcheck for these scripts.
	local missing=()
	command -v promtool >/dev/null || missing+=(prometheus)
	command -v etcd >/dev/null || missing+=(etcd-server)
	command -v etcdctl >/dev/null || missing+=(etcd-client)
	command -v openssl >/dev/null || missing+=(openssl)
	command -v python3 >/dev/null || missing+=(python3)
	command -v shellcheck >/dev/null || missing+=(shellcheck)
	if ((${#missing[@]})); then
		echo "tools: apt-get install ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

install_k8s() {
	# make test-live's Kubernetes stage needs the whole node set: build it in this one go
	# build (their packages are shared), not the server set now and the rest later.
	local set=node
	[[ ${KEYWARD_LIVE_K8S:-1} == 0 ]] && set=server
	K8S_VERSION=$K8S_VERSION KEYWARD_CACHE=$CACHE "$ROOT/deploy/scripts/build-k8s.sh" "$set"
	link kube-apiserver "$CACHE/kube-apiserver-$K8S_VERSION"
	link kubectl "$CACHE/kubectl-$K8S_VERSION"
}

case ${1:-all} in
helm) locked helm install_helm ;;
helm-unittest) locked helm-unittest install_helm_unittest ;;
dashboard-linter) locked dashboard-linter install_dashboard_linter ;;
apt) locked apt install_apt ;;
k8s) install_k8s ;;
all)
	locked apt install_apt
	# The kube-apiserver build is the long pole; run it beside the helm builds.
	install_k8s &
	k8s_pid=$!
	locked helm install_helm
	locked helm-unittest install_helm_unittest
	wait "$k8s_pid"
	;;
*)
	echo "usage: $0 [helm|helm-unittest|dashboard-linter|apt|k8s|all]" >&2
	exit 2
	;;
esac
