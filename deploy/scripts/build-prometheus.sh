#!/usr/bin/env bash
# Builds prometheus and promtool of the release docker-compose.yml pins (prom/prometheus:v3.2.1,
# whose Go module version is v0.302.1) from the Go module proxy, and caches both in
# $KEYWARD_CACHE keyed by version: the rule unit tests and the live rules stage must run the
# Prometheus that is deployed, not Debian's 2.42. A cold build costs ≈6 CPU-minutes
# (promtool ≈4, the server ≈1.5 on this kind of machine); later runs find the binaries.
#
# usage: build-prometheus.sh      (exit 0 when both binaries exist; prints their paths)
set -euo pipefail

PROM_VERSION=${PROM_VERSION:-v3.2.1}
CACHE=${KEYWARD_CACHE:-$HOME/.cache/keyward}
# Prometheus tags v3.x.y as Go module version v0.30x.y (v3.2.1 → v0.302.1).
ver=${PROM_VERSION#v3.}
PROM_MODULE_VERSION=v0.30${ver%%.*}.${ver#*.}
PROM=$CACHE/prometheus-$PROM_VERSION
PROMTOOL=$CACHE/promtool-$PROM_VERSION

done_msg() { echo "$PROM"; echo "$PROMTOOL"; }
if [[ -x $PROM && -x $PROMTOOL ]]; then
	done_msg
	exit 0
fi

mkdir -p "$CACHE"
# One build at a time per cache: a caller that starts it early in the background and one
# that needs it now share a single build; the second waits, then finds the binaries.
exec 9>"$CACHE/.prometheus-build.lock"
flock 9
if [[ -x $PROM && -x $PROMTOOL ]]; then
	done_msg
	exit 0
fi

export GOWORK=off GOFLAGS=-buildvcs=false
dir=$(go mod download -json "github.com/prometheus/prometheus@$PROM_MODULE_VERSION" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cd "$dir"
ldflags="-s -w"
ldflags="$ldflags -X github.com/prometheus/common/version.Version=${PROM_VERSION#v}"
ldflags="$ldflags -X github.com/prometheus/common/version.Branch=module"
ldflags="$ldflags -X github.com/prometheus/common/version.Revision=$PROM_MODULE_VERSION"
echo "build-prometheus: building promtool $PROM_VERSION ($PROM_MODULE_VERSION; ≈4 CPU-minutes cold)" >&2
go build -trimpath -ldflags "$ldflags" -o "$PROMTOOL.tmp" ./cmd/promtool
mv "$PROMTOOL.tmp" "$PROMTOOL"
echo "build-prometheus: building prometheus $PROM_VERSION (≈1.5 CPU-minutes more)" >&2
go build -trimpath -ldflags "$ldflags" -o "$PROM.tmp" ./cmd/prometheus
mv "$PROM.tmp" "$PROM"
done_msg
