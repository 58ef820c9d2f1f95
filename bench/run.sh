#!/usr/bin/env bash
# kata-lcm fleet benchmark on the kwok test bed (see bench/README.md, docs/performance.md).
#
#   bench/run.sh [--sizes 100,1000,5000] [--batch-sizes 10,50] [--baseline-budget 420] [--baseline-max-n 1000]
#                [--baseline-full-max 100] [--no-baseline] [--no-vfail] [--no-cold-start] [--keep-cluster]
#
# Per fleet size: a fresh kwok cluster, N fake nodes, the fixture release 3.27.0 (daemonset mode) in a
# fresh namespace per run, `kata-lcm upgrade` to 3.28.0 at each batch size, the design's manual script
# as the baseline; results in bench/results/<timestamp>.{json,md} and bench/results/latest.md, raw
# CLI logs in bench/results/raw/ (gitignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Node >= 22 and the npm dependencies (a fresh machine has neither).
bash scripts/setup.sh >&2
# shellcheck source=/dev/null
. scripts/node-env.sh
# shellcheck source=/dev/null
. scripts/testbed/env.sh
for tool in kwokctl kwok kube-apiserver kubectl helm; do
  [[ -x "$KATA_LCM_CACHE/bin/$tool" ]] || { scripts/testbed/build-tools.sh >&2; break; }
done
scripts/testbed/package-fixture-charts.sh >/dev/null
# hyperfine times the cold start (Debian's package); installed here when the machine lacks it.
if ! command -v hyperfine >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine; } >&2 || echo "bench: could not install hyperfine; cold start is timed with plain runs" >&2
fi
# The CLI under test is a private snapshot of src/ (compiled into $KATA_LCM_CACHE/bench-cli), so a
# concurrent `npm run build` (which removes dist/) cannot pull the CLI away mid-benchmark.
SNAP="${KATA_LCM_BENCH_CLI:-$KATA_LCM_CACHE/bench-cli}"
rm -rf "$SNAP" && mkdir -p "$SNAP/bin"
node scripts/build.mjs "$SNAP/dist" >&2
cp package.json "$SNAP/" && cp bin/run.js "$SNAP/bin/" && cp -R chart "$SNAP/" && ln -s "$ROOT/node_modules" "$SNAP/node_modules"
(cd "$SNAP" && "$ROOT/node_modules/.bin/oclif" manifest >/dev/null 2>&1) || echo "bench: oclif manifest failed; the CLI runs without one" >&2
export KATA_LCM_BENCH_CLI="$SNAP"
export KATA_LCM_BENCH_SOURCE="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo '+uncommitted src changes')"
exec npx tsx bench/bench.ts "$@"
