#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it): set-up, lint, typecheck,
# the test bed's binaries (built from Go modules, cached), then unit and end-to-end tests.
# Ends with the plain line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. scripts/node-env.sh
npm run --silent lint
npm run --silent typecheck
bash scripts/testbed/build-tools.sh
# The real kubelet node's Debian packages (containerd, runc, CNI plugins, ...): idempotent.
bash scripts/testbed/host-packages.sh
bash scripts/testbed/package-fixture-charts.sh >/dev/null
results="$(mktemp -d)/vitest.json"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
if [ -s "$results" ]; then
  node -e 'const r = require(process.argv[1]); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""))' "$results"
fi
exit "$status"
