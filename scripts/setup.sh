#!/usr/bin/env bash
# One-time (idempotent) set-up: Node >= 22, the npm dependencies, and a build of the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node-env.sh
echo "kata-lcm setup: using node $(node --version) at $(command -v node)"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
