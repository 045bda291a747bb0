#!/usr/bin/env bash
# Copies the pinned browser libraries into the page's embedded static files.
# Reproducible: npm ci installs exactly package-lock.json (integrity-checked),
# and the copy is byte for byte; internal/web's TestVendoredFilesMatchTheLockfile
# checks the committed copy against a fresh install.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp node_modules/chart.js/dist/chart.umd.min.js ../internal/web/static/chart.umd.min.js
cp node_modules/chart.js/LICENSE.md ../internal/web/static/chart.js.LICENSE.md
echo "vendored chart.js $(node -p 'require("./node_modules/chart.js/package.json").version')"
