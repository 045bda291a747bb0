#!/usr/bin/env bash
# Server-side validation against a real kube-apiserver: starts etcd and kube-apiserver on
# free loopback ports in 19400–19499, creates a namespace that enforces the "restricted"
# Pod Security Standard, installs the Prometheus Operator,
# the Secrets Store CSI driver and External Secrets Operator CRDs, then runs
# `kubectl apply --dry-run=server` (strict field validation) on
#   - every chart scenario (deploy/helm/keyward/ci/*-values.yaml, helm test pod included),
#   - deploy/k8s/manifests/,
# failing on any error OR warning (Pod Security violations on workloads are only warnings).
# Finally every deploy/validate/testdata/apiserver/broken-*.yaml must be refused, which
# proves the check can fail. Everything it starts is stopped by PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/.tools/bin
HELM=${HELM:-$TOOLS/helm}
KUBECTL=${KUBECTL:-$TOOLS/kubectl}
KAS=${KAS:-$TOOLS/kube-apiserver}
ETCD=${ETCD:-etcd}
CHART=$ROOT/deploy/helm/keyward
K8S_VERSION=${K8S_VERSION:-v1.34.4}
PROM_OPERATOR_VERSION=${PROM_OPERATOR_VERSION:-v0.85.0}
SECRETS_STORE_CSI_VERSION=${SECRETS_STORE_CSI_VERSION:-v1.5.4}
EXTERNAL_SECRETS_VERSION=${EXTERNAL_SECRETS_VERSION:-v1.3.2}
NS=keyward-ci

for bin in "$HELM" "$KUBECTL" "$KAS"; do
	[[ -x $bin ]] || { echo "kube-check: $bin missing: run deploy/scripts/tools.sh" >&2; exit 1; }
done
command -v "$ETCD" >/dev/null || { echo "kube-check: etcd missing: run deploy/scripts/tools.sh apt" >&2; exit 1; }

work=$(mktemp -d /tmp/keyward-kube-check.XXXXXX)
pids=()
kas_ready=0
cleanup() {
	local rc=$? i
	if ((!kas_ready)) && [[ -f $work/kube-apiserver.log ]]; then
		echo "kube-check: last kube-apiserver log lines:" >&2
		tail -n 20 "$work/kube-apiserver.log" >&2
	fi
	# The API server first, then etcd under it.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

# A free loopback port in 19400–19499, starting at a random offset so two runs on one
# machine rarely race for the same one.
taken=()
free_port() {
	local start=$((RANDOM % 100)) i p
	for ((i = 0; i < 100; i++)); do
		p=$((19400 + (start + i) % 100))
		[[ " ${taken[*]} " == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken+=("$p")
			echo "$p"
			return
		fi
	done
	echo "kube-check: no free port in 19400-19499" >&2
	return 1
}
etcd_client=$(free_port)
taken+=("$etcd_client")
etcd_peer=$(free_port)
taken+=("$etcd_peer")
kas_port=$(free_port)
taken+=("$kas_port")

t0=$SECONDS
"$ETCD" --name kube-check --data-dir "$work/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
	--initial-cluster "kube-check=http://127.0.0.1:$etcd_peer" >"$work/etcd.log" 2>&1 &
pids+=($!)

openssl genrsa -out "$work/sa.key" 2048 2>/dev/null
openssl rsa -in "$work/sa.key" -pubout -out "$work/sa.pub" 2>/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,kube-check,kube-check,\"system:masters\"" >"$work/tokens.csv"
mkdir -p "$work/certs"
"$KAS" --etcd-servers="http://127.0.0.1:$etcd_client" \
	--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$kas_port" \
	--cert-dir="$work/certs" \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$work/sa.pub" --service-account-signing-key-file="$work/sa.key" \
	--service-cluster-ip-range=10.96.0.0/24 \
	--token-auth-file="$work/tokens.csv" --authorization-mode=AlwaysAllow \
	--enable-priority-and-fairness=false \
	--allow-privileged=true \
	>"$work/kube-apiserver.log" 2>&1 &
pids+=($!)

cat >"$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: kube-check, cluster: {server: "https://127.0.0.1:$kas_port", insecure-skip-tls-verify: true}}]
users: [{name: kube-check, user: {token: "$token"}}]
contexts: [{name: kube-check, context: {cluster: kube-check, user: kube-check}}]
current-context: kube-check
KC
export KUBECONFIG=$work/kubeconfig
k() { "$KUBECTL" "$@"; }

for ((i = 0; i < 240; i++)); do
	[[ $(k get --raw /readyz 2>/dev/null) == ok ]] && break
	kill -0 "${pids[1]}" 2>/dev/null || { echo "kube-check: kube-apiserver exited" >&2; exit 1; }
	sleep 0.5
done
[[ $(k get --raw /readyz 2>/dev/null) == ok ]] || { echo "kube-check: kube-apiserver not ready after 120 s" >&2; exit 1; }
kas_ready=1
echo "kube-check: kube-apiserver $K8S_VERSION ready on 127.0.0.1:$kas_port after $((SECONDS - t0)) s"

# No controller-manager runs, so create what it would: the namespace's default SA.
k create namespace "$NS" >/dev/null
k label namespace "$NS" >/dev/null \
	pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest \
	pod-security.kubernetes.io/warn=restricted pod-security.kubernetes.io/warn-version=latest
for ((i = 0; i < 20; i++)); do
	k -n "$NS" create serviceaccount default >/dev/null 2>&1 && break
	k -n "$NS" get serviceaccount default >/dev/null 2>&1 && break
	sleep 0.5
done

# The projects' own CRDs, from their Go modules (data files only; nothing is built):
# ServiceMonitor and PrometheusRule (Prometheus Operator), SecretProviderClass (Secrets
# Store CSI driver), ExternalSecret (External Secrets Operator).
module_dir() {
	(cd "$work" && GOWORK=off GOFLAGS='' go mod download -json "$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
}
crd_dir=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION")/example/prometheus-operator-crd
csi_crd_dir=$(module_dir "sigs.k8s.io/secrets-store-csi-driver@$SECRETS_STORE_CSI_VERSION")/config/crd/bases
eso_crd_dir=$(module_dir "github.com/external-secrets/external-secrets@$EXTERNAL_SECRETS_VERSION")/config/crds/bases
k create -f "$crd_dir/monitoring.coreos.com_servicemonitors.yaml" -f "$crd_dir/monitoring.coreos.com_prometheusrules.yaml" \
	-f "$csi_crd_dir/secrets-store.csi.x-k8s.io_secretproviderclasses.yaml" \
	-f "$eso_crd_dir/external-secrets.io_externalsecrets.yaml" >/dev/null
echo "kube-check: CRDs from prometheus-operator $PROM_OPERATOR_VERSION, secrets-store-csi-driver $SECRETS_STORE_CSI_VERSION, external-secrets $EXTERNAL_SECRETS_VERSION"
# `kubectl wait` errors out while a fresh CRD has no conditions at all, so poll instead.
for crd in servicemonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com \
	secretproviderclasses.secrets-store.csi.x-k8s.io externalsecrets.external-secrets.io; do
	for ((i = 0; i < 120; i++)); do
		[[ $(k get crd "$crd" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null) == True ]] && break
		sleep 0.5
	done
	[[ $(k get crd "$crd" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}') == True ]] ||
		{ echo "kube-check: CRD $crd not established after 60 s" >&2; exit 1; }
done

# dry_run NAME FILE|DIR: 0 when the server accepts everything without a single warning.
dry_run() {
	local name=$1 src=$2
	if ! k apply --dry-run=server --validate=strict -n "$NS" -f "$src" >"$work/out" 2>"$work/err"; then
		echo "  FAIL $name: refused"
		sed 's/^/       /' "$work/err"
		return 1
	fi
	if grep -qi 'warning' "$work/err"; then
		echo "  FAIL $name: warnings"
		sed 's/^/       /' "$work/err"
		return 1
	fi
	echo "  ok   $name ($(wc -l <"$work/out") objects)"
}

failed=0
echo "kube-check: chart scenarios (helm template | kubectl apply --dry-run=server, namespace enforces restricted)"
for values in "$CHART"/ci/*-values.yaml; do
	name=$(basename "$values" -values.yaml)
	if ! "$HELM" template keyward "$CHART" --namespace "$NS" --kube-version "$K8S_VERSION" \
		-f "$values" >"$work/render-$name.yaml" 2>"$work/err"; then
		echo "  FAIL $name: helm template"
		sed 's/^/       /' "$work/err"
		failed=1
		continue
	fi
	dry_run "chart/$name" "$work/render-$name.yaml" || failed=1
done

echo "kube-check: deploy/k8s/manifests"
dry_run "deploy/k8s/manifests" "$ROOT/deploy/k8s/manifests" || failed=1

echo "kube-check: broken fixtures must be refused"
for broken in "$ROOT"/deploy/validate/testdata/apiserver/broken-*.yaml; do
	name=$(basename "$broken")
	if k apply --dry-run=server --validate=strict -n "$NS" -f "$broken" >"$work/out" 2>"$work/err" &&
		! grep -qi 'warning' "$work/err"; then
		echo "  FAIL $name: accepted without a warning, so the check cannot catch it"
		failed=1
	else
		echo "  ok   $name refused: $(head -n1 "$work/err" | cut -c1-150)"
	fi
done

if ((failed)); then
	echo "kube-check: FAILED" >&2
	exit 1
fi
echo "kube-check: all passed in $((SECONDS - t0)) s"
