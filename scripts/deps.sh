#!/usr/bin/env bash
# Installs what the tests need, idempotently: Debian packages with apt-get
# (when running as root), otherwise a clear message saying what to install.
# Usage: scripts/deps.sh [package ...]   (default: everything make test needs)
set -euo pipefail

want=("$@")
if [ ${#want[@]} -eq 0 ]; then
  # Everything every stage of make test needs, in one apt-get run (the deploy
  # and rules scripts then find nothing missing and never run apt themselves).
  # containerd, runc, the CNI plugins, iptables and gcc (the pause image) are for
  # the single-node Kubernetes of make test-live.
  # docker.io, busybox-static and nginx are for the compose stage, which would otherwise run
  # an apt-get update of its own.
  want=(redis-server redis-sentinel prometheus etcd-server etcd-client chromium openssl python3 shellcheck nodejs npm
    containerd runc containernetworking-plugins iptables gcc docker.io busybox-static nginx)
fi

# Map a package to the command that proves it is installed.
probe() {
  case "$1" in
    redis-server) command -v redis-server ;;
    redis-sentinel) command -v redis-sentinel ;;
    prometheus) command -v promtool ;;
    etcd-server) command -v etcd ;;
    etcd-client) command -v etcdctl ;;
    chromium) command -v chromium ;;
    openssl) command -v openssl ;;
    python3) command -v python3 ;;
    shellcheck) command -v shellcheck ;;
    nodejs) command -v node ;;
    npm) command -v npm ;;
    docker.io) command -v dockerd ;;
    busybox-static) command -v busybox ;;
    # Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
    nginx) command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } ;;
    *) dpkg -s "$1" >/dev/null 2>&1 && echo "$1" ;;
  esac
}

missing=()
for p in "${want[@]}"; do
  probe "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing tools: ${missing[*]}" >&2
  echo "install them first, e.g.: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Services must not start on install (CI and dev machines start their own on loopback).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
fi
stamp=/var/lib/apt/periodic/keyward-update-stamp
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
  apt-get update -qq
  mkdir -p "$(dirname "$stamp")" && touch "$stamp"
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
