#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it): set-up, lint, typecheck,
# the test bed's binaries (built from Go modules, cached), then unit and end-to-end tests.
# Ends with the plain line "N passed, N failed".
#
# On a fresh machine the Argo binaries (argo CLI, workflow-controller, argoexec: about a third of
# the Go builds) and Prometheus (the alert gate's test bed) are built in the background while the
# suites that do not need them run; the Argo suites, the chart's (argo lint), the alert gate's
# (test/e2e/alerts) and the sandbox's (which applies the controller module's CRDs) run after. Arguments (a file
# filter, vitest flags) run one vitest over everything instead, after every build.
#
# --matrix: all of the above, then every lane of scripts/testbed/versions.env (README "Lanes"):
# the helm-3 lane runs the e2e suites that drive the real kata-deploy charts and the helm adapter
# again under helm 3 (HELM3_VERSION). Argo Workflows v4 has no lane: docs/compatibility.md says why.
set -euo pipefail
cd "$(dirname "$0")/.."
MATRIX=0
if [ "${1:-}" = "--matrix" ]; then
  MATRIX=1
  shift
fi
# The suites a helm lane runs: everything that drives a real chart through helm.
HELM_LANE_FILES=(test/e2e/lifecycle/real-chart.e2e.test.ts test/e2e/lifecycle/real-chart-job.e2e.test.ts
  test/e2e/adapters/helm-cli.e2e.test.ts)
# The minutes each part takes, on stderr ("[time] PART: N s"), for docs/performance.md.
SECONDS=0
_part_start=0
took() { echo "[time] $1: $((SECONDS - _part_start)) s (total $SECONDS s)" >&2; _part_start=$SECONDS; }
bash scripts/setup.sh
. scripts/node-env.sh
took "set-up (Node, npm ci, build)"
npm run --silent lint
npm run --silent typecheck
took "lint and typecheck"
# The real kubelet node's Debian packages (containerd, runc, CNI plugins, ...): idempotent.
bash scripts/testbed/host-packages.sh
bash scripts/testbed/package-fixture-charts.sh >/dev/null
took "host packages, fixture charts"
out="$(mktemp -d)"
summary() {
  node -e 'let p = 0, f = 0, s = 0
    for (const file of process.argv.slice(1)) {
      try { const r = require(file); p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests } catch { f += 1 }
    }
    console.log(`${p} passed, ${f} failed` + (s ? `, ${s} skipped` : ""))' "$@"
}
status=0
if [ "$#" -gt 0 ]; then
  bash scripts/testbed/build-tools.sh
  npx vitest run --reporter=default --reporter=json --outputFile.json="$out/all.json" "$@" || status=$?
  summary "$out/all.json"
  exit "$status"
fi
bash scripts/testbed/build-tools.sh k8s etcd kwok helm promcheck
took "Go builds: Kubernetes, etcd, kwok, helm, promcheck"
lanes=()
[ "$MATRIX" = 1 ] && lanes=(helm3)
(
  start=$SECONDS
  bash scripts/testbed/build-tools.sh argo argo-controller prometheus "${lanes[@]}" >"$out/argo-build.log" 2>&1
  echo $? >"$out/argo-build.rc"
  echo "[time] Go builds: argo CLI, workflow-controller, argoexec, Prometheus (beside the first suites): $((SECONDS - start)) s" >&2
) &
builder=$!
# The chart's unit tests run the argo CLI (argo lint), built in the background too.
LATER=(test/unit/chart/chart.test.ts test/e2e/argo test/e2e/alerts test/e2e/sandbox.e2e.test.ts)
KATA_LCM_E2E_SKIP_BUILD=1 npx vitest run --reporter=default --reporter=json --outputFile.json="$out/first.json" \
  --exclude test/unit/chart/chart.test.ts --exclude 'test/e2e/argo/**' --exclude 'test/e2e/alerts/**' \
  --exclude test/e2e/sandbox.e2e.test.ts || status=$?
took "unit and e2e suites but Argo's and the sandbox's"
wait "$builder" || true
took "waiting for the Argo builds"
if [ "$(cat "$out/argo-build.rc" 2>/dev/null)" != 0 ]; then
  cat "$out/argo-build.log" >&2
  echo "building the Argo binaries or Prometheus failed" >&2
  summary "$out/first.json"
  exit 1
fi
npx vitest run --reporter=default --reporter=json --outputFile.json="$out/later.json" "${LATER[@]}" ||
  status=$?
took "the Argo and sandbox suites"
results=("$out/first.json" "$out/later.json")
if [ "$MATRIX" = 1 ]; then
  KATA_LCM_HELM_LANE=helm3 KATA_LCM_E2E_SKIP_BUILD=1 npx vitest run --project e2e --reporter=default --reporter=json \
    --outputFile.json="$out/helm3.json" "${HELM_LANE_FILES[@]}" || status=$?
  took "lane helm3 ($(grep '^HELM3_VERSION=' scripts/testbed/versions.env | cut -d= -f2)): ${HELM_LANE_FILES[*]}"
  results+=("$out/helm3.json")
fi
summary "${results[@]}"
exit "$status"
