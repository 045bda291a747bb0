#!/usr/bin/env bash
# docker-compose.yml, run for real: Debian's dockerd (own data root, exec root and socket,
# stopped by PID), Compose v2 built from its Go module, base images built locally under the
# names the Dockerfiles and the compose file use (no image registry is reachable here), the
# real `DOCKER_BUILDKIT=0 docker build` of the three Dockerfiles, `compose up`, then checks
# through nginx: requests spread over the replicas, the shared limit exact, spoofed forwarding
# headers ignored, Redis state kept over a Redis restart, Redis down -> the configured failure
# mode, Prometheus targets = replicas, /ready reports "ratelimit":"redis", `compose down` clean.
#
# Deviations, all in a generated override file, never in docker-compose.yml:
# - Grafana is left out: no image of it can be had here (not in Debian, no registry).
# - Host ports are free loopback ports instead of 5001/8501/9090, away from a developer's stack.
# - nginx is Debian's 1.22 (nginx >= 1.27.3 cannot be had here), which does not know the
#   upstream `resolve` parameter: the stage mounts nginx.conf with only that word removed.
# - redis, nginx and prometheus images carry Debian's redis-server 7.0 and nginx 1.22 and the
#   Prometheus 3.2.1 built from its Go module, under the pinned names.
#
# The dockerd data root is kept in $KEYWARD_CACHE/docker, so a warm run reuses the base images
# and Docker's build cache; everything the stack creates is removed by `compose down -v`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}
COMPOSE_VERSION=v2.29.7
PROJECT=keyward-live
t0=$SECONDS
mkdir -p "$CACHE/bin"
export GOWORK=off

log() { echo "compose-live: [$((SECONDS - t0)) s] $*"; }
fail() {
	echo "compose-live: FAIL: $*" >&2
	# What the stack said: a failure is only debuggable with the gateways' own words.
	if declare -F compose >/dev/null; then
		compose logs --no-color --tail 25 gateway redis >&2 2>/dev/null || true
	fi
	exit 1
}

# ---------------------------------------------------------------- tools
COMPOSE_BIN=$CACHE/bin/docker-compose-$COMPOSE_VERSION
build_compose() {
	(
		flock 9
		if [[ ! -x $COMPOSE_BIN ]]; then
			log "building Compose $COMPOSE_VERSION from its Go module (≈4 CPU-minutes, once)"
			GOBIN=$CACHE/bin/.compose-build go install -trimpath \
				-ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
				"github.com/docker/compose/v2/cmd@$COMPOSE_VERSION"
			mv "$CACHE/bin/.compose-build/cmd" "$COMPOSE_BIN"
			log "Compose $COMPOSE_VERSION built"
		fi
	) 9>"$CACHE/.compose-build.lock"
}
# Cold: the build runs while dockerd starts and the base images are assembled (file copies);
# it is waited for before the first docker build.
compose_pid=
if [[ ! -x $COMPOSE_BIN ]]; then
	build_compose &
	compose_pid=$!
fi
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v busybox >/dev/null || missing+=(busybox-static)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v nginx >/dev/null || missing+=(nginx)
if ((${#missing[@]})); then
	log "apt-get install ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PROM=$("$ROOT/deploy/scripts/build-prometheus.sh" | sed -n 1p)
DOCKER=/usr/bin/docker # the client of the same release as Debian's dockerd

# ---------------------------------------------------------------- dockerd
# One stage at a time per cache: the data root is not shareable between two daemons.
exec 8>"$CACHE/.docker.lock"
flock 8
RUN=$(mktemp -d /tmp/kwd-XXXXXX) # short: the socket path must fit sun_path
export DOCKER_HOST=unix://$RUN/docker.sock DOCKER_CONFIG=$RUN/config
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -s "$COMPOSE_BIN" "$DOCKER_CONFIG/cli-plugins/docker-compose"
forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1 == "-P" {print $3; exit}')
dockerd_pid=
cleanup() {
	local rc=$?
	if [[ -n ${compose_pid:-} ]]; then wait "$compose_pid" 2>/dev/null || true; fi
	if [[ -n $dockerd_pid ]]; then
		"$DOCKER" compose -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1 || true
		kill "$dockerd_pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$dockerd_pid" 2>/dev/null || true
	fi
	# dockerd sets the FORWARD policy to DROP; give the machine back what it had.
	if [[ -n $forward_policy ]]; then iptables -P FORWARD "$forward_policy" 2>/dev/null || true; fi
	if ((rc != 0)) && [[ -f $RUN/dockerd.log ]]; then
		echo "--- dockerd log (tail)" >&2
		tail -n 20 "$RUN/dockerd.log" >&2
	fi
	rm -rf "$RUN"
	exit "$rc"
}
trap cleanup EXIT
# --bridge=none: no docker0; compose creates its own network for the stack.
dockerd --data-root "$CACHE/docker" --exec-root "$RUN/exec" --pidfile "$RUN/docker.pid" \
	-H "$DOCKER_HOST" --bridge=none --log-level=warn >"$RUN/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 150); do
	"$DOCKER" version >/dev/null 2>&1 && break
	kill -0 "$dockerd_pid" 2>/dev/null || fail "dockerd exited: $(tail -n 5 "$RUN/dockerd.log")"
	sleep 0.2
done
"$DOCKER" version >/dev/null || fail "dockerd did not answer within 30 s"
log "dockerd $("$DOCKER" version -f '{{.Server.Version}}') up (pid $dockerd_pid)"

# ---------------------------------------------------------------- base images
# add_bins, add_busybox, base_files: the root filesystems of the base images (shared with
# the Kubernetes stage, which imports them into containerd instead).
# shellcheck source=deploy/scripts/rootfs.sh
source "$ROOT/deploy/scripts/rootfs.sh"
import_image() { # NAME DIR LABEL CHANGES...
	local name=$1 dir=$2 label=$3
	shift 3
	local changes=(--change "LABEL keyward.live=$label")
	for c in "$@"; do changes+=(--change "$c"); done
	tar -C "$dir" --numeric-owner -c . | "$DOCKER" import "${changes[@]}" - "$name" >/dev/null
	rm -rf "$dir"
}
have_image() { # NAME LABEL
	[[ $("$DOCKER" image inspect -f '{{index .Config.Labels "keyward.live"}}' "$1" 2>/dev/null) == "$2" ]]
}

images_start=$SECONDS
GO_IMAGE=$(awk '/^FROM .* AS build/ {print $2; exit}' "$ROOT/services/gateway/Dockerfile")
RUNTIME_IMAGE=$(awk '/^FROM / {img=$2} END {print img}' "$ROOT/services/gateway/Dockerfile")
compose_image() { awk -v s="  $1:" '$0 == s {f=1} f && /^    image:/ {print $2; exit}' "$ROOT/docker-compose.yml"; }
REDIS_IMAGE=$(compose_image redis)
NGINX_IMAGE=$(compose_image nginx)
PROM_IMAGE=$(compose_image prometheus)

# The Go builder: this machine's Go toolchain and a file GOPROXY holding exactly the modules
# the workspace downloads (`go mod download`, as the Dockerfiles run it).
sums=$(cat "$ROOT"/go.work "$ROOT"/pkg/go.sum "$ROOT"/services/*/go.sum | sha256sum | cut -c1-16)
go_label="$(go env GOVERSION)-$sums"
if ! have_image "$GO_IMAGE" "$go_label"; then
	log "building $GO_IMAGE from the host's $(go env GOVERSION) and a file GOPROXY"
	d=$(mktemp -d "$RUN/img-XXXX")
	add_busybox "$d"
	base_files "$d"
	mkdir -p "$d/usr/local" "$d/root" "$d/go" "$d/src"
	tar -C "$(go env GOROOT)/.." --exclude='go/test' --exclude='go/doc' --exclude='go/pkg/linux_amd64_race' -c go | tar -C "$d/usr/local" -x
	hostmod=$(go env GOMODCACHE)
	# The module files only, as the Dockerfiles COPY them, in a scratch copy: the download
	# must not touch the work tree's go.work.sum.
	mods=$RUN/mods
	mkdir -p "$mods"
	cp "$ROOT"/go.work* "$mods/"
	for m in pkg services/gateway services/mockanthropic services/dashboard; do
		mkdir -p "$mods/$m" && cp "$ROOT/$m/go.mod" "$ROOT/$m/go.sum" "$mods/$m/"
	done
	(cd "$mods" && GOWORK="$mods/go.work" GOFLAGS='' GOMODCACHE="$RUN/gomod" GOPROXY="file://$hostmod/cache/download,https://proxy.golang.org" go mod download)
	cp -r "$RUN/gomod/cache/download" "$d/goproxy"
	chmod -R u+w "$RUN/gomod" && rm -rf "$RUN/gomod"
	import_image "$GO_IMAGE" "$d" "$go_label" \
		"ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/bin:/usr/bin:/bin" "ENV GOPATH=/go" "ENV HOME=/root" \
		"ENV GOPROXY=file:///goproxy" "ENV GOSUMDB=off" "ENV GOTOOLCHAIN=local" "WORKDIR /go"
fi
if ! have_image "$RUNTIME_IMAGE" v1; then
	log "building $RUNTIME_IMAGE (passwd with nonroot 65532, CA certificates, no shell)"
	d=$(mktemp -d "$RUN/img-XXXX")
	base_files "$d" 65532:nonroot
	mkdir -p "$d/home/nonroot"
	import_image "$RUNTIME_IMAGE" "$d" v1 "USER 65532:65532" "WORKDIR /home/nonroot"
fi
redis_label="redis-$(redis-server --version | awk '{print $3}' | tr -d 'v=')"
if ! have_image "$REDIS_IMAGE" "$redis_label"; then
	log "building $REDIS_IMAGE from Debian's $(redis-server --version | awk '{print $3}' | tr -d 'v=')"
	d=$(mktemp -d "$RUN/img-XXXX")
	add_busybox "$d"
	base_files "$d" 999:redis
	add_bins "$d" /usr/local/bin "$(command -v redis-server)" "$(command -v redis-cli)"
	mkdir -p "$d/data" && chown 999:999 "$d/data"
	import_image "$REDIS_IMAGE" "$d" "$redis_label" "ENV PATH=/usr/local/bin:/bin" "WORKDIR /data" 'CMD ["redis-server"]'
fi
nginx_label="nginx-$(nginx -v 2>&1 | cut -d/ -f2)"
if ! have_image "$NGINX_IMAGE" "$nginx_label"; then
	log "building $NGINX_IMAGE from Debian's nginx $(nginx -v 2>&1 | cut -d/ -f2)"
	d=$(mktemp -d "$RUN/img-XXXX")
	add_busybox "$d"
	base_files "$d" 101:nginx
	add_bins "$d" /usr/sbin "$(command -v nginx)"
	mkdir -p "$d/etc/nginx" "$d/var/log/nginx" "$d/var/lib/nginx" "$d/run"
	ln -s /dev/stderr "$d/var/log/nginx/error.log"
	ln -s /dev/stdout "$d/var/log/nginx/access.log"
	import_image "$NGINX_IMAGE" "$d" "$nginx_label" "ENV PATH=/usr/sbin:/bin" 'CMD ["nginx", "-g", "daemon off;"]' "EXPOSE 8080"
fi
prom_label="prometheus-$(sha256sum "$PROM" | cut -c1-16)"
if ! have_image "$PROM_IMAGE" "$prom_label"; then
	log "building $PROM_IMAGE from the Prometheus built from its Go module"
	d=$(mktemp -d "$RUN/img-XXXX")
	add_busybox "$d"
	base_files "$d" 65534:nobody
	add_bins "$d" /bin "$PROM"
	mv "$d/bin/$(basename "$PROM")" "$d/bin/prometheus"
	mkdir -p "$d/prometheus" "$d/etc/prometheus" && chown 65534:65534 "$d/prometheus"
	import_image "$PROM_IMAGE" "$d" "$prom_label" 'ENTRYPOINT ["/bin/prometheus"]' "USER 65534" "WORKDIR /prometheus" "EXPOSE 9090"
fi
images_took=$((SECONDS - images_start))

# ---------------------------------------------------------------- docker build
if [[ -n $compose_pid ]]; then
	wait "$compose_pid" || fail "building Compose $COMPOSE_VERSION"
fi
[[ -x $COMPOSE_BIN ]] || fail "no Compose plugin at $COMPOSE_BIN"
build_start=$SECONDS
for svc in gateway mockanthropic dashboard; do
	img=$(compose_image "$svc")
	s=$SECONDS
	DOCKER_BUILDKIT=0 "$DOCKER" build -q -f "$ROOT/services/$svc/Dockerfile" -t "$img" "$ROOT" >/dev/null ||
		fail "docker build of services/$svc/Dockerfile"
	log "docker build services/$svc/Dockerfile -> $img in $((SECONDS - s)) s"
done
build_took=$((SECONDS - build_start))

# ---------------------------------------------------------------- compose up
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
API_PORT=$(free_port)
DASH_PORT=$(free_port)
PROM_PORT=$(free_port)
sed 's/ resolve / /' "$ROOT/deploy/compose/nginx/nginx.conf" >"$RUN/nginx.conf"
cat >"$RUN/override.yml" <<YAML
services:
  nginx:
    ports: !override
      - "127.0.0.1:$API_PORT:8080"
    volumes: !override
      - $RUN/nginx.conf:/etc/nginx/nginx.conf:ro
  dashboard:
    ports: !override
      - "127.0.0.1:$DASH_PORT:8501"
  prometheus:
    ports: !override
      - "127.0.0.1:$PROM_PORT:9090"
YAML
# A fresh password for this run, as a file secret (compose bind-mounts it).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/redis-password"
chmod 644 "$RUN/redis-password"
export KEYWARD_REDIS_PASSWORD_FILE=$RUN/redis-password
log "Compose $("$DOCKER" compose version --short)"
compose() { "$DOCKER" compose -p "$PROJECT" -f "$ROOT/docker-compose.yml" -f "$RUN/override.yml" "$@"; }
services=(redis mockanthropic gateway nginx dashboard prometheus) # every service but grafana
up_start=$SECONDS
compose up -d --no-build --wait --wait-timeout 180 "${services[@]}" >"$RUN/up.log" 2>&1 ||
	{ cat "$RUN/up.log" >&2; compose ps -a >&2; compose logs --tail 20 >&2; fail "compose up"; }
log "compose up (${services[*]}; grafana left out: no image) healthy in $((SECONDS - up_start)) s"

API=http://127.0.0.1:$API_PORT
PROMURL=http://127.0.0.1:$PROM_PORT
call() { # prints the HTTP status of one /v1/messages call through nginx; extra curl args follow
	curl -s -o /dev/null -w '%{http_code}' -X POST "$API/v1/messages" -H 'content-type: application/json' \
		-H 'anthropic-version: 2023-06-01' "$@" \
		-d '{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}'
}
promq() { curl -s "$PROMURL/api/v1/query" --data-urlencode "query=$1"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# /ready through nginx names the shared limiter.
ready=$(curl -s "$API/ready")
[[ $ready == *'"ratelimit":"redis"'* ]] || fail "/ready through nginx: $ready"
log "/ready through nginx: $ready"

# Prometheus discovers every replica through Docker's DNS.
for _ in $(seq 1 60); do
	up=$(curl -s "$PROMURL/api/v1/targets?state=active" | json 'sum(1 for t in d["data"]["activeTargets"] if t["labels"]["job"]=="keyward" and t["health"]=="up")')
	[[ $up == 3 ]] && break
	sleep 1
done
[[ $up == 3 ]] || fail "Prometheus has $up healthy keyward targets, want 3 (the replicas)"
log "Prometheus targets: $up keyward replicas up"

# The shared limit (KEYWARD_RATE_LIMIT 30/60s) is exact across replicas: 40 calls, 30 admitted.
declare -A codes=()
for _ in $(seq 1 40); do
	c=$(call)
	codes[$c]=$((${codes[$c]:-0} + 1))
done
admitted=${codes[200]:-0}
log "40 calls through nginx: ${admitted} admitted, ${codes[429]:-0} refused (429), others: $(for k in "${!codes[@]}"; do [[ $k == 200 || $k == 429 ]] || printf '%s×%s ' "$k" "${codes[$k]}"; done)"
((admitted == 30)) || fail "the shared limit admitted $admitted of 40, want exactly 30"

# A spoofed X-Forwarded-For does not buy a fresh bucket: nginx overwrites it.
spoofed=0
for i in $(seq 1 5); do
	c=$(call -H "X-Forwarded-For: 203.0.113.$i" -H "X-Real-IP: 203.0.113.$i")
	[[ $c == 429 ]] && spoofed=$((spoofed + 1))
done
((spoofed == 5)) || fail "spoofed forwarding headers got $((5 - spoofed)) of 5 calls admitted"
log "5 calls with spoofed X-Forwarded-For/X-Real-IP: all refused (429), same caller"

# Requests were spread over the replicas (Prometheus scrapes each one).
sleep 20 # a few scrapes (15 s interval in deploy/compose/prometheus/prometheus.yml)
spread=$(promq 'sum by (instance) (keyward_http_requests_total{route="/v1/messages"})' |
	json '" ".join(sorted(str(int(float(r["value"][1]))) for r in d["data"]["result"]))')
log "calls per replica (keyward_http_requests_total, /v1/messages): $spread"
n=$(wc -w <<<"$spread")
((n == 3)) || fail "calls reached $n replicas, want 3"
for c in $spread; do ((c > 0)) || fail "a replica got no calls: $spread"; done

# Redis as configured: auth required, protected mode, no eviction, and an append-only file in
# the named volume that keeps data over a restart.
rcli() { compose exec -T redis sh -c "REDISCLI_AUTH=\"\$(cat /run/secrets/redis_password)\" redis-cli $*"; }
noauth=$(compose exec -T redis redis-cli ping 2>&1 || true)
[[ $noauth == *NOAUTH* ]] || fail "redis answers without the password: $noauth"
for kv in "appendonly yes" "protected-mode yes" "maxmemory-policy noeviction"; do
	got=$(rcli config get "${kv% *}" | tail -n1 | tr -d '\r')
	[[ $got == "${kv#* }" ]] || fail "redis ${kv% *} is '$got', want '${kv#* }'"
done
keys_before=$(rcli dbsize | tr -d '\r')
rcli set keyward-live:persisted "$$" >/dev/null
sleep 2 # appendfsync everysec
compose restart redis >/dev/null 2>&1
for _ in $(seq 1 60); do
	[[ $(curl -s "$API/ready") == *'"ratelimit":"redis"'* ]] && break
	sleep 1
done
after=$(rcli get keyward-live:persisted | tr -d '\r')
[[ $after == "$$" ]] || fail "a key written before the Redis restart is gone (got '$after'): persistence is off"
log "Redis: NOAUTH without the password; appendonly yes, protected-mode yes, noeviction; $keys_before keys and a marker survive a restart"

# Redis down -> KEYWARD_REDIS_FAILURE_MODE=local: each replica admits its share of the limit.
compose stop redis >/dev/null 2>&1
for _ in $(seq 1 60); do
	r=$(curl -s "$API/ready")
	[[ $r == *'"ratelimit":"degraded"'* ]] && break
	sleep 1
done
[[ $r == *degraded* ]] || fail "/ready with Redis stopped: $r"
declare -A down=()
for _ in $(seq 1 40); do
	c=$(call)
	down[$c]=$((${down[$c]:-0} + 1))
done
log "Redis down: /ready $r; 40 calls: ${down[200]:-0} admitted, ${down[429]:-0} refused, other: $(for k in "${!down[@]}"; do [[ $k == 200 || $k == 429 ]] || printf '%s×%s ' "$k" "${down[$k]}"; done)"
((${down[200]:-0} > 0 && ${down[200]:-0} <= 30)) || fail "local failure mode admitted ${down[200]:-0} of 40, want 1..30 (30/60s split over 3 replicas)"
((${down[200]:-0} + ${down[429]:-0} == 40)) || fail "with Redis down some calls got neither 200 nor 429"
compose start redis >/dev/null 2>&1
# nginx spreads /ready over the replicas, which return to Redis each on its own probe: wait
# for six answers in a row (every replica twice), not for the first one that is back.
back=0
for _ in $(seq 1 120); do
	if [[ $(curl -s "$API/ready") == *'"ratelimit":"redis"'* ]]; then
		back=$((back + 1))
		((back >= 6)) && break
	else
		back=0
	fi
	sleep 0.5
done
((back >= 6)) || fail "replicas did not all return to Redis after it came back (last /ready: $(curl -s "$API/ready"))"
log "Redis back: /ready says \"ratelimit\":\"redis\" again"

# compose down leaves nothing of the stack behind.
down_start=$SECONDS
compose down -v --remove-orphans >/dev/null 2>&1
left=$("$DOCKER" ps -aq --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
nets=$("$DOCKER" network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
vols=$("$DOCKER" volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
((left == 0 && nets == 0 && vols == 0)) || fail "compose down left $left containers, $nets networks, $vols volumes"
log "compose down -v: no container, network or volume left ($((SECONDS - down_start)) s)"
log "PASS: base images $images_took s, docker build $build_took s, total $((SECONDS - t0)) s"
