#!/usr/bin/env bash
# Cold start of `kata-lcm --help`, alone (no cluster): median of 21 runs after 3 warm-ups, per CLI
# given (a checkout's root with bin/run.js and dist/), interleaved round by round so both see the
# same machine load. Installs hyperfine from Debian when it is missing.
#
#   bench/cold-start.sh [ROOT ...]        default: this checkout
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=/dev/null
. "$HERE/scripts/node-env.sh"
if ! command -v hyperfine >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine; } >&2 || true
fi
roots=("$@"); [[ ${#roots[@]} -gt 0 ]] || roots=("$HERE")
cmds=(); for r in "${roots[@]}"; do cmds+=("$(command -v node) $r/bin/run.js --help"); done
if command -v hyperfine >/dev/null 2>&1; then
  out="$(mktemp)"
  hyperfine -N --warmup 3 --runs 21 --export-json "$out" "${cmds[@]}" >&2
  node -e 'for (const r of JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).results) console.log(`${Math.round(r.median * 1000)} ms median, ${Math.round(r.min * 1000)}-${Math.round(r.max * 1000)} ms, ${r.times.length} runs: ${r.command}`)' "$out"
else
  for c in "${cmds[@]}"; do
    node -e '
      const { spawnSync } = require("node:child_process"); const [bin, ...args] = process.argv[1].split(" "); const t = []
      for (let i = 0; i < 24; i++) { const s = process.hrtime.bigint(); spawnSync(bin, args); if (i >= 3) t.push(Number(process.hrtime.bigint() - s) / 1e6) }
      t.sort((a, b) => a - b); console.log(`${Math.round(t[10])} ms median, ${Math.round(t[0])}-${Math.round(t[20])} ms, 21 runs: ${process.argv[1]}`)' "$c"
  done
fi
