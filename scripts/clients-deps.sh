#!/usr/bin/env bash
# Installs the pinned npm packages of the client tests (services/gateway/test/js)
# with `npm ci`, idempotently: a stamp holding the lockfile's hash skips the
# install when node_modules already matches it. Downloads are cached in ~/.npm,
# so a cold machine fetches Claude Code's ~360 MB once.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/services/gateway/test/js"
cd "$dir"
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "clients-deps: $tool is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
done
want="$(sha256sum package-lock.json | cut -d' ' -f1) $(node --version)"
stamp=node_modules/.keyward-stamp
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/@anthropic-ai/claude-code-linux-x64/claude ]; then
  exit 0
fi
echo "clients-deps: npm ci in $dir" >&2
start=$(date +%s)
# --ignore-scripts: Claude Code's postinstall only links the native binary,
# which the tests run from the platform package directly.
npm ci --no-audit --no-fund --prefer-offline --ignore-scripts --loglevel=error >&2
echo "$want" > "$stamp"
echo "clients-deps: installed in $(( $(date +%s) - start ))s" >&2
