#!/usr/bin/env bash
# The Helm chart, installed for real on a single-node Kubernetes v1.34 built from the
# k8s.io/kubernetes module (build-k8s.sh node): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet and kube-proxy on loopback ports, containerd, runc and the bridge CNI
# plugin from Debian, CoreDNS (its Go module) on the pod bridge's address. No image registry is
# reachable here, so every image is built locally (the gateway and the mock from bin/, Redis
# from Debian's redis-server, pause from the kubernetes module's pause.c) and imported with
# `ctr -n k8s.io images import`. Then:
#   helm install into a namespace enforcing the restricted Pod Security Standard, every pod
#   Ready; helm test; /ready and a /v1/messages call through the gateway Service's ClusterIP;
#   the admin token Secret mounted (admin API 401 without it, 200 with it, on :9464 only);
#   the PDB refuses a second concurrent eviction; kubectl rollout restart completes;
#   helm uninstall leaves no object of the release.
#
# Workarounds this machine needs (deploy/README.md): containerd restrict_oom_score_adj (no
# CAP_SYS_RESOURCE), kubelet cgroupfs with cgroupsPerQOS off, no node-allocatable enforcement
# and failCgroupV1 off (cgroup v1: Kubernetes 1.35+ refuses it, hence 1.34), FORWARD accepted
# for the pod bridge (dockerd sets the policy to DROP).
#
# Everything lives under one temp dir; every process is stopped by PID on exit, even on
# failure, and the iptables rules, the bridge, the network namespaces and the sysctls this
# stage changed are put back. Needs root, and bin/gateway and bin/mockanthropic (make build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}
K8S_VERSION=${K8S_VERSION:-v1.34.4}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.0}
CHART=$ROOT/deploy/helm/keyward
NS=keyward-live
RELEASE=kw
NODE=keyward-live
BRIDGE=kwlive0
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1 # the pod bridge's address: the node's InternalIP (kubelet), CoreDNS listens there
SVC_CIDR=10.96.0.0/24
t0=$SECONDS

log() { echo "k8s-live: [$((SECONDS - t0)) s] $*"; }
fail() {
	echo "k8s-live: FAIL: $*" >&2
	exit 1
}
[[ $(id -u) == 0 ]] || fail "needs root (containerd, kubelet, iptables)"

# ---------------------------------------------------------------- tools
"$ROOT/scripts/deps.sh" etcd-server containerd runc containernetworking-plugins iptables gcc openssl redis-server python3
"$ROOT/deploy/scripts/tools.sh" helm >/dev/null
HELM=$ROOT/.tools/bin/helm
K8S_VERSION=$K8S_VERSION COREDNS_VERSION=$COREDNS_VERSION KEYWARD_CACHE=$CACHE "$ROOT/deploy/scripts/build-k8s.sh" node
bin() { echo "$CACHE/$1-$K8S_VERSION"; }
KUBECTL=$(bin kubectl)
COREDNS=$CACHE/coredns-$COREDNS_VERSION
for b in gateway mockanthropic; do
	[[ -x $ROOT/bin/$b ]] || fail "bin/$b missing: run make build"
done
CNI_BIN=/usr/lib/cni
[[ -x $CNI_BIN/bridge ]] || fail "no bridge CNI plugin in $CNI_BIN"
tools_took=$((SECONDS - t0))

# ---------------------------------------------------------------- state and cleanup
# One cluster at a time per machine: the bridge, the DNS address and the iptables rules are
# machine-wide.
exec 8>"$CACHE/.k8s-live.lock"
flock 8
RUN=$(mktemp -d /tmp/kwk-XXXXXX) # short: containerd's socket paths must fit sun_path
SOCK=$RUN/containerd/containerd.sock
pids=()  # started processes, in start order; stopped in reverse
names=() # their names, for the logs
failed=1
ipt_tables=(filter nat mangle)
ipt_save() { local t; for t in "${ipt_tables[@]}"; do iptables -t "$t" -S | sed "s/^/$t /"; done; }
ipt_save >"$RUN/iptables.before"
# What this stage's rules look like: Kubernetes' and CNI's chains, the bridge, the pod and
# service ranges.
ours_re="KUBE-|CNI-|$BRIDGE|10\.244\.0\.|10\.96\.0\."
ip netns list 2>/dev/null | awk '{print $1}' | sort >"$RUN/netns.before"
sysctl_forward=$(cat /proc/sys/net/ipv4/ip_forward)
bridge_nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || true)
# Machine-wide directories containerd, the CNI library and the kubelet create whatever
# their flags say (shim sockets, network namespaces, the result cache, the device-plugin
# socket, the log symlinks): removed at the end when this stage created them, if nothing but
# empty directories and sockets is left in them.
created_dirs=()
for dir in /run/containerd /run/netns /var/lib/cni /var/lib/kubelet /var/log/containers; do
	[[ -e $dir ]] || created_dirs+=("$dir")
done

ctr_() { ctr --address "$SOCK" -n k8s.io "$@"; }
k() { "$KUBECTL" --kubeconfig "$RUN/admin.kubeconfig" "$@"; }

stop_pid() { # PID: SIGTERM, up to 20 s, then SIGKILL
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? i t line
	set +e
	if ((failed)) && [[ -f $RUN/admin.kubeconfig ]]; then
		echo "--- k8s-live: cluster state at the failure" >&2
		k get nodes -o wide >&2 2>&1
		k get pods -A -o wide >&2 2>&1
		k get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 25 >&2
		for i in "${!names[@]}"; do
			echo "--- ${names[i]} log (tail)" >&2
			tail -n 8 "$RUN/${names[i]}.log" >&2
		done
	fi
	# Pods first, while the kubelet still runs: it stops their sandboxes (CNI DEL removes the
	# veths), so nothing is left in containerd when it stops.
	if [[ -f $RUN/admin.kubeconfig ]] && kill -0 "${pids[1]:-0}" 2>/dev/null; then
		k delete namespace "$NS" --wait=false >/dev/null 2>&1
		k delete pods -A --all --grace-period=1 --timeout=60s >/dev/null 2>&1
	fi
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		# The kubelet is stopped by now. Whatever containerd still runs (pods of a kubelet
		# that died early): kill the tasks, so no shim outlives containerd.
		if [[ ${names[i]} == containerd && -S $SOCK ]]; then
			for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
			for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1; done
		fi
		stop_pid "${pids[i]}"
	done
	# kube-proxy's own rules (KUBE-* chains), then what else this stage added since it began
	# (the kubelet's canary chains, the FORWARD accepts for the bridge, CNI chains): added
	# rules first, then added chains. Only ours: a dockerd of another stage may be adding its
	# own meanwhile.
	if [[ -x $(bin kube-proxy) ]]; then "$(bin kube-proxy)" --cleanup >/dev/null 2>&1; fi
	ours() { comm -13 <(sort "$RUN/iptables.before") <(ipt_save | sort) | grep -E "$ours_re" | grep -e "$1"; }
	ours ' -A ' | while read -r t line; do eval "iptables -t $t ${line/-A /-D }" 2>/dev/null; done
	ours ' -N ' | while read -r t line; do iptables -t "$t" -F "${line#-N }" 2>/dev/null; done
	ours ' -N ' | while read -r t line; do iptables -t "$t" -X "${line#-N }" 2>/dev/null; done
	comm -13 "$RUN/netns.before" <(ip netns list 2>/dev/null | awk '{print $1}' | sort) | grep '^cni-' |
		while read -r n; do ip netns delete "$n" 2>/dev/null; done
	ip link delete "$BRIDGE" 2>/dev/null
	# A dockerd started meanwhile needs forwarding on: leave it then.
	pgrep -x dockerd >/dev/null || echo "$sysctl_forward" >/proc/sys/net/ipv4/ip_forward
	[[ -n $bridge_nf ]] && echo "$bridge_nf" >/proc/sys/net/bridge/bridge-nf-call-iptables
	# Secret volumes (tmpfs) and container root filesystems the kubelet and containerd mounted.
	awk -v r="$RUN/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
	# The kubelet's log symlinks of this stage's containers (its GC would remove them later).
	find /var/log/containers -maxdepth 1 -type l -lname "$RUN/*" -delete 2>/dev/null
	for dir in "${created_dirs[@]}"; do find "$dir" -depth \( -type s -o -type d -empty \) -delete 2>/dev/null; done
	local left
	left=$(ours . | wc -l)
	if ((left)); then
		echo "k8s-live: $left iptables rule(s) or chain(s) of this stage could not be removed:" >&2
		ours . >&2
		((rc)) || rc=1
	fi
	rm -rf "$RUN"
	exit "$rc"
}
trap cleanup EXIT

start() { # NAME CMD...: start in the background, log to $RUN/NAME.log, remember the PID
	local name=$1
	shift
	"$@" >"$RUN/$name.log" 2>&1 8>&- & # 8: the stage's lock, which must not outlive it
	pids+=($!)
	names+=("$name")
}
alive() { # NAME PID: fail when the process is gone
	kill -0 "$2" 2>/dev/null || fail "$1 exited: $(tail -n 5 "$RUN/$1.log")"
}
wait_for() { # SECONDS WHAT CMD...: poll CMD every 0.5 s until it succeeds
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 2; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	fail "$what not within $secs s"
}

# Free loopback ports in 19600–19699, from a random offset.
taken=" "
free_port() {
	local start=$((RANDOM % 100)) i p
	for ((i = 0; i < 100; i++)); do
		p=$((19600 + (start + i) % 100))
		[[ $taken == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken+="$p "
			port=$p
			return 0
		fi
	done
	fail "no free port in 19600-19699"
}
free_port && ETCD_PORT=$port
free_port && ETCD_PEER=$port
free_port && KAS_PORT=$port
free_port && KCM_PORT=$port
free_port && SCHED_PORT=$port
free_port && KUBELET_PORT=$port
free_port && KUBELET_HEALTHZ=$port
free_port && PROXY_HEALTHZ=$port
free_port && PROXY_METRICS=$port

# ---------------------------------------------------------------- images
# The images the chart renders, built from this machine's files.
# shellcheck source=deploy/scripts/rootfs.sh
source "$ROOT/deploy/scripts/rootfs.sh"
images_start=$SECONDS
mkdir -p "$RUN/images"
render() { "$HELM" template "$RELEASE" "$CHART" -n "$NS" -f "$RUN/values.yaml"; }
cat >"$RUN/values.yaml" <<YAML
# No API key: the gateway calls the in-cluster mock. No StorageClass runs here: Redis without
# a volume (the chart's default keeps it on a PVC).
mockanthropic:
  enabled: true
redis:
  bundled:
    persistence:
      enabled: false
admin:
  existingSecret: $RELEASE-admin
YAML
image_of() { render | awk -v want="$1" '$1 == "image:" && index($2, want) {gsub(/"/, "", $2); print $2; exit}'; }
GATEWAY_IMAGE=$(image_of keyward/gateway)
MOCK_IMAGE=$(image_of keyward/mockanthropic)
REDIS_IMAGE=$(image_of redis)
PAUSE_IMAGE=keyward.local/pause:3.10
[[ -n $GATEWAY_IMAGE && -n $MOCK_IMAGE && -n $REDIS_IMAGE ]] || fail "could not read the image names from helm template"
archive() { "$ROOT/deploy/scripts/image-archive.py" "$@"; }

# pause: the kubernetes module's own pause.c, static.
kdir=$(cd "$CACHE" && GOWORK=off GOFLAGS='' go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
d=$RUN/images/pause
mkdir -p "$d"
gcc -Os -static -DVERSION="$K8S_VERSION" -o "$d/pause" "$kdir/build/pause/linux/pause.c"
archive "$PAUSE_IMAGE" "$d" "$RUN/images/pause.tar" --entrypoint '["/pause"]' --user 65535:65535
# gateway and mock: like their Dockerfiles' distroless/static:nonroot stage.
for pair in "gateway:$GATEWAY_IMAGE" "mockanthropic:$MOCK_IMAGE"; do
	b=${pair%%:*}
	d=$RUN/images/$b
	base_files "$d" 65532:nonroot
	mkdir -p "$d/usr/local/bin" "$d/home/nonroot"
	cp "$ROOT/bin/$b" "$d/usr/local/bin/"
	archive "${pair#*:}" "$d" "$RUN/images/$b.tar" --entrypoint "[\"/usr/local/bin/$b\"]" \
		--user 65532:65532 --workdir /home/nonroot
done
# Redis: Debian's redis-server and its libraries, uid 999 as the official image.
d=$RUN/images/redis
base_files "$d" 999:redis
add_bins "$d" /usr/local/bin "$(command -v redis-server)"
mkdir -p "$d/data" && chown 999:999 "$d/data"
archive "$REDIS_IMAGE" "$d" "$RUN/images/redis.tar" --cmd '["redis-server"]' --workdir /data \
	--env PATH=/usr/local/bin:/usr/bin:/bin
log "images built: $GATEWAY_IMAGE $MOCK_IMAGE $REDIS_IMAGE (Debian redis-server $(redis-server --version | awk '{print $3}' | tr -d 'v=')) $PAUSE_IMAGE"

# ---------------------------------------------------------------- network
echo 1 >/proc/sys/net/ipv4/ip_forward
# Service traffic between two pods on the bridge must pass kube-proxy's iptables rules.
[[ -n $bridge_nf ]] && echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
ip link show "$BRIDGE" >/dev/null 2>&1 && fail "bridge $BRIDGE exists: another cluster of this stage runs"
ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
iptables -I FORWARD -i "$BRIDGE" -j ACCEPT
iptables -I FORWARD -o "$BRIDGE" -j ACCEPT
mkdir -p "$RUN/cni/net.d"
cat >"$RUN/cni/net.d/10-keyward-live.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "keyward-live",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$RUN/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

# ---------------------------------------------------------------- etcd, kube-apiserver
start etcd etcd --name "$NODE" --data-dir "$RUN/etcd" \
	--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
	--listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
	--initial-cluster "$NODE=http://127.0.0.1:$ETCD_PEER"
openssl genrsa -out "$RUN/sa.key" 2048 2>/dev/null
openssl rsa -in "$RUN/sa.key" -pubout -out "$RUN/sa.pub" 2>/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,keyward-live-admin,keyward-live-admin,\"system:masters\"" >"$RUN/tokens.csv"
mkdir -p "$RUN/certs"
# The kubelet listens on the bridge, where pods reach it too: it admits only the API server,
# by a client certificate from a CA of this run, and asks the API server to authorize it.
pki=$RUN/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=keyward-live-ca \
	-keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
	-keyout "$pki/kas-kubelet.key" -out "$pki/kas-kubelet.csr" 2>/dev/null
openssl x509 -req -days 1 -in "$pki/kas-kubelet.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
	-out "$pki/kas-kubelet.crt" 2>/dev/null
cluster_start=$SECONDS
start kube-apiserver "$(bin kube-apiserver)" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
	--bind-address=127.0.0.1 --advertise-address="$NODE_IP" --secure-port="$KAS_PORT" \
	--cert-dir="$RUN/certs" \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$RUN/sa.pub" --service-account-signing-key-file="$RUN/sa.key" \
	--service-cluster-ip-range="$SVC_CIDR" \
	--token-auth-file="$RUN/tokens.csv" --authorization-mode=Node,RBAC \
	--enable-priority-and-fairness=false \
	--kubelet-preferred-address-types=InternalIP \
	--kubelet-client-certificate="$pki/kas-kubelet.crt" --kubelet-client-key="$pki/kas-kubelet.key"
cat >"$RUN/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: live, cluster: {server: "https://127.0.0.1:$KAS_PORT", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: "$token"}}]
contexts: [{name: live, context: {cluster: live, user: admin}}]
current-context: live
KC
kas_ready() { alive kube-apiserver "${pids[1]}" && [[ $(k get --raw /readyz 2>/dev/null) == ok ]]; }
wait_for 120 "kube-apiserver ready" kas_ready
log "etcd + kube-apiserver $K8S_VERSION ready on 127.0.0.1:$KAS_PORT in $((SECONDS - cluster_start)) s"

# ---------------------------------------------------------------- control plane
# Every component authenticates with the admin token (system:masters); the cluster lives
# for one test on loopback.
start kube-controller-manager "$(bin kube-controller-manager)" --kubeconfig="$RUN/admin.kubeconfig" \
	--authentication-kubeconfig="$RUN/admin.kubeconfig" --authorization-kubeconfig="$RUN/admin.kubeconfig" \
	--bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
	--service-account-private-key-file="$RUN/sa.key" --root-ca-file="$RUN/certs/apiserver.crt" \
	--use-service-account-credentials=false --cluster-cidr="$POD_CIDR" --service-cluster-ip-range="$SVC_CIDR"
start kube-scheduler "$(bin kube-scheduler)" --kubeconfig="$RUN/admin.kubeconfig" \
	--authentication-kubeconfig="$RUN/admin.kubeconfig" --authorization-kubeconfig="$RUN/admin.kubeconfig" \
	--bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false

# ---------------------------------------------------------------- containerd
mkdir -p "$RUN/containerd"
cat >"$RUN/containerd/config.toml" <<TOML
version = 2
root = "$RUN/containerd/root"
state = "$RUN/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: without this runc fails every sandbox ("can't get final
  # child's PID from pipe: EOF") trying to lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$RUN/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
TOML
start containerd containerd --config "$RUN/containerd/config.toml"
wait_for 30 "containerd answering" ctr_ version
for img in pause gateway mockanthropic redis; do
	ctr_ images import "$RUN/images/$img.tar" >/dev/null || fail "ctr images import $img"
done
images_took=$((SECONDS - images_start))
log "containerd $(containerd --version | awk '{print $3}') up, images imported ($(ctr_ images ls -q | grep -vc '^sha256:') refs)"

# ---------------------------------------------------------------- kubelet, kube-proxy, CoreDNS
: >"$RUN/resolv.conf" # pods get the cluster DNS only, not this machine's search domains
cat >"$RUN/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The node's address must not be loopback; it is the bridge, reachable from this machine only.
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ
containerRuntimeEndpoint: unix://$SOCK
# cgroup v1, no systemd: the kubelet manages no QoS or node-allocatable cgroups here.
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $RUN/resolv.conf
podLogsDir: $RUN/pod-logs
serializeImagePulls: false
# The images exist only locally: never let image GC or disk pressure remove them mid-test.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
YAML
start kubelet "$(bin kubelet)" --config="$RUN/kubelet.yaml" --kubeconfig="$RUN/admin.kubeconfig" \
	--root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" --hostname-override="$NODE" --node-ip="$NODE_IP"
cat >"$RUN/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $RUN/admin.kubeconfig}
hostnameOverride: $NODE
mode: iptables
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ
metricsBindAddress: 127.0.0.1:$PROXY_METRICS
# Leave this machine's conntrack sysctls and localhost routing alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false, masqueradeAll: false}
YAML
start kube-proxy "$(bin kube-proxy)" --config="$RUN/kube-proxy.yaml"
cat >"$RUN/Corefile" <<COREFILE
.:53 {
	bind $NODE_IP
	errors
	kubernetes cluster.local in-addr.arpa ip6.arpa {
		kubeconfig $RUN/admin.kubeconfig live
	}
}
COREFILE
start coredns "$COREDNS" -conf "$RUN/Corefile"
node_ready() {
	alive kubelet "${pids[5]}"
	[[ $(k get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
wait_for 120 "node $NODE Ready" node_ready
default_sa() { k -n default get serviceaccount default; }
wait_for 60 "the default ServiceAccount (controller-manager)" default_sa
alive kube-proxy "${pids[6]}"
alive coredns "${pids[7]}"
cluster_took=$((SECONDS - cluster_start))
log "node $NODE Ready; control plane, kubelet, kube-proxy and CoreDNS up in $cluster_took s"

# ---------------------------------------------------------------- helm install
k create namespace "$NS" >/dev/null
k label namespace "$NS" >/dev/null pod-security.kubernetes.io/enforce=restricted \
	pod-security.kubernetes.io/enforce-version=latest
# The label is enforced: a pod without the restricted settings (it may run as root, keep
# its capabilities, escalate, run unconfined) is refused.
plain='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"not-restricted"},"spec":{"containers":[{"name":"c","image":"'$PAUSE_IMAGE'"}]}}'
if refused=$(k -n "$NS" create --dry-run=server -f - <<<"$plain" 2>&1); then
	fail "a pod without securityContext was admitted into $NS: Pod Security is not enforced"
fi
[[ $refused == *'violates PodSecurity "restricted'* ]] || fail "the plain pod was refused for another reason: $refused"
admin_token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
k -n "$NS" create secret generic "$RELEASE-admin" --from-literal=admin-token="$admin_token" >/dev/null
install_start=$SECONDS
"$HELM" --kubeconfig "$RUN/admin.kubeconfig" install "$RELEASE" "$CHART" -n "$NS" -f "$RUN/values.yaml" \
	--wait --timeout 5m >"$RUN/helm-install.log" 2>&1 || { cat "$RUN/helm-install.log" >&2; fail "helm install"; }
ready_took=$((SECONDS - install_start))
ready_pods=$(k -n "$NS" get pods -o 'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
# 3 gateways, Redis, the mock.
[[ $(grep -c '=True$' <<<"$ready_pods") == 5 && $(wc -l <<<"$ready_pods") == 5 ]] ||
	fail "want 5 pods Ready after helm install --wait, got: $(tr '\n' ' ' <<<"$ready_pods")"
log "helm install into $NS (enforce=restricted: a plain pod is refused): $(wc -l <<<"$ready_pods") pods Ready in $ready_took s"

test_start=$SECONDS
"$HELM" --kubeconfig "$RUN/admin.kubeconfig" test "$RELEASE" -n "$NS" --timeout 2m >"$RUN/helm-test.log" 2>&1 ||
	{ cat "$RUN/helm-test.log" >&2; fail "helm test"; }
test_phase=$(awk '/^Phase:/ {print $2; exit}' "$RUN/helm-test.log")
[[ $test_phase == Succeeded ]] || { cat "$RUN/helm-test.log" >&2; fail "helm test phase: $test_phase"; }
log "helm test: Phase $test_phase in $((SECONDS - test_start)) s (the test pod asks /ready through the Service by DNS name)"

# ---------------------------------------------------------------- through the Service
svc_ip=$(k -n "$NS" get service "$RELEASE-keyward" -o 'jsonpath={.spec.clusterIP}')
metrics_ip=$(k -n "$NS" get service "$RELEASE-keyward-metrics" -o 'jsonpath={.spec.clusterIP}')
ready=$(curl -s --max-time 5 "http://$svc_ip:5001/ready")
[[ $ready == *'"ratelimit":"redis"'* ]] || fail "/ready through the Service $svc_ip:5001: $ready"
code=$(curl -s -o "$RUN/answer.json" -w '%{http_code}' --max-time 10 -X POST "http://$svc_ip:5001/v1/messages" \
	-H 'content-type: application/json' -H 'anthropic-version: 2023-06-01' \
	-d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}')
[[ $code == 200 ]] || fail "POST /v1/messages through the Service: HTTP $code $(head -c 300 "$RUN/answer.json")"
grep -q '"type":"message"' "$RUN/answer.json" || fail "POST /v1/messages answer: $(head -c 300 "$RUN/answer.json")"
log "through the Service $svc_ip:5001 (kube-proxy): /ready $ready; POST /v1/messages -> 200, answered by the mock"

# The admin token Secret, mounted by the chart: the admin API answers only with it, and
# only on the admin port.
admin() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
a_none=$(admin "http://$metrics_ip:9464/admin/usage")
a_bad=$(admin -H "authorization: Bearer wrong-$admin_token" "http://$metrics_ip:9464/admin/usage")
a_good=$(admin -H "authorization: Bearer $admin_token" "http://$metrics_ip:9464/admin/usage")
a_public=$(admin -H "authorization: Bearer $admin_token" "http://$svc_ip:5001/admin/usage")
[[ $a_none == 401 && $a_bad == 401 && $a_good == 200 && $a_public != 200 ]] ||
	fail "admin API: no token $a_none, wrong $a_bad, right $a_good (want 401 401 200), on :5001 $a_public (want not 200)"
log "admin token Secret mounted: /admin/usage on :9464 -> $a_none without, $a_bad wrong, $a_good with the token; $a_public on :5001"

# ---------------------------------------------------------------- PDB, rollout restart
pdb=$(k -n "$NS" get pdb -o name | head -n 1)
[[ -n $pdb ]] || fail "no PodDisruptionBudget rendered"
pdb_allowed() { [[ $(k -n "$NS" get "$pdb" -o 'jsonpath={.status.disruptionsAllowed}') == "$1" ]]; }
wait_for 30 "$pdb allowing 1 disruption" pdb_allowed 1
mapfile -t gw_pods < <(k -n "$NS" get pods -l app.kubernetes.io/name=keyward,app.kubernetes.io/instance=$RELEASE -o 'jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}')
evict() { # POD: prints the HTTP-ish outcome of an Eviction
	printf '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"%s","namespace":"%s"}}' "$1" "$NS" |
		k create --raw "/api/v1/namespaces/$NS/pods/$1/eviction" -f - 2>&1
}
e1=$(evict "${gw_pods[0]}") || fail "first eviction refused: $e1"
if e2=$(evict "${gw_pods[1]}"); then fail "second concurrent eviction admitted: the PDB did not hold"; fi
[[ $e2 == *"disruption budget"* ]] || fail "second eviction refused for another reason: $e2"
log "PDB: first eviction admitted, the second refused while one pod is down ($(grep -o 'would violate[^.]*' <<<"$e2" | head -n 1))"
wait_for 120 "$pdb allowing 1 disruption again" pdb_allowed 1
# Callers see the restart: /ready through the Service every 0.1 s while it runs.
probe_service() {
	while [[ ! -e $RUN/rollout.done ]]; do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 2 "http://$svc_ip:5001/ready"
		sleep 0.1
	done
}
start prober probe_service
restart_start=$SECONDS
k -n "$NS" rollout restart deployment "$RELEASE-keyward" >/dev/null
k -n "$NS" rollout status deployment "$RELEASE-keyward" --timeout=5m >"$RUN/rollout.log" 2>&1 ||
	{ cat "$RUN/rollout.log" >&2; fail "rollout restart did not complete"; }
restart_took=$((SECONDS - restart_start))
touch "$RUN/rollout.done"
wait "${pids[-1]}"
probes=$(grep -c . "$RUN/prober.log")
probes_bad=$(grep -vc '^200$' "$RUN/prober.log" || true)
((probes > 10 && probes_bad == 0)) ||
	fail "during the rollout $probes_bad of $probes /ready calls through the Service failed: $(sort "$RUN/prober.log" | uniq -c | tr '\n' ' ')"
log "rollout restart (maxSurge 1, maxUnavailable 0, PDB maxUnavailable 1) complete in $restart_took s; $probes /ready calls through the Service meanwhile, all 200"

# ---------------------------------------------------------------- helm uninstall
"$HELM" --kubeconfig "$RUN/admin.kubeconfig" uninstall "$RELEASE" -n "$NS" --wait --timeout 3m >/dev/null ||
	fail "helm uninstall"
k -n "$NS" delete secret "$RELEASE-admin" >/dev/null # ours, created before the install
gone() {
	left=$(k -n "$NS" get all,secrets,configmaps,pvc,pdb,networkpolicies,serviceaccounts,roles,rolebindings \
		-o name 2>/dev/null | grep -v -e '^configmap/kube-root-ca.crt$' -e '^serviceaccount/default$' || true)
	[[ -z $left ]]
}
for ((i = 0; i < 120; i++)); do gone && break; sleep 0.5; done
gone || fail "helm uninstall left: $(tr '\n' ' ' <<<"$left")"
log "helm uninstall: nothing of the release left in $NS (pods, services, secrets, configmaps, PVCs, PDB, policies)"

failed=0
echo "k8s-live: figures: tools ${tools_took} s, images ${images_took} s, cluster up ${cluster_took} s," \
	"helm install to Ready ${ready_took} s, helm test $test_phase, rollout restart ${restart_took} s, stage $((SECONDS - t0)) s"
