#!/bin/sh
# The ONE recipe of the kata-lcm image's own files, run by the Dockerfile's build stage and by
# scripts/image/build-local.sh (the test bed's registry-less build): both images get the tree
# this script lays out, so they cannot drift.
#
#   app.sh deps SRC              npm ci in SRC (SRC holds package.json, package-lock.json)
#   app.sh assemble SRC OUT      in SRC (also tsconfig*.json, bin/, src/, chart/): build, keep the
#                                production dependencies only, and lay out OUT as the image's
#                                root: OUT/opt/kata-lcm/{package.json,oclif.manifest.json,bin/run.js,
#                                dist,node_modules,chart,.compile-cache} and the
#                                OUT/usr/local/bin/kata-lcm launcher
#
# helm (OUT/usr/local/bin/helm) is added by the caller: the Dockerfile compiles it in its own
# stage, the local build takes the test bed's (both from helm's Go module at HELM_VERSION).
# POSIX sh: the Dockerfile's build stage has dash.
set -eu

cmd="${1:-}"
src="${2:-}"
[ -n "$src" ] && [ -d "$src" ] || { echo "usage: app.sh deps SRC | app.sh assemble SRC OUT" >&2; exit 2; }

case "$cmd" in
deps)
  cd "$src"
  npm ci --no-audit --no-fund
  ;;
assemble)
  out="${3:-}"
  [ -n "$out" ] || { echo "usage: app.sh assemble SRC OUT" >&2; exit 2; }
  cd "$src"
  npm run build
  npm prune --omit=dev --no-audit --no-fund
  app="$out/opt/kata-lcm"
  mkdir -p "$app/bin" "$out/usr/local/bin"
  cp package.json oclif.manifest.json "$app/"
  cp bin/run.js "$app/bin/run.js"
  cp -R dist node_modules chart "$app/"
  # The launcher caps the heap (a step is one short process; 512Mi pod limit) and reads V8's code
  # cache built below (Node's compile cache; portable: its paths are relative to it).
  node_flags="--max-semi-space-size=1 --max-old-space-size=256"
  cache="$app/.compile-cache"
  printf '#!/bin/sh\nexport NODE_COMPILE_CACHE=/opt/kata-lcm/.compile-cache NODE_COMPILE_CACHE_PORTABLE=1\nexec node %s /opt/kata-lcm/bin/run.js "$@"\n' "$node_flags" >"$out/usr/local/bin/kata-lcm"
  chmod 0755 "$out/usr/local/bin/kata-lcm"
  # Files as COPY makes them: root-owned, readable by the image's non-root user.
  chmod -R a+rX,go-w "$app"
  # The code cache: every command module and oclif's start, compiled once here with the launcher's
  # flags. Node keeps one directory per Node version, architecture, V8 flags and uid
  # (<tag>-<uid>); built by this uid, it is renamed for the image's user, 1000 (the image test runs
  # a step in the image as that user and checks every module comes from it).
  home="$(mktemp -d)"
  mkdir -p "$cache"
  warm() { HOME="$home" NODE_COMPILE_CACHE="$cache" NODE_COMPILE_CACHE_PORTABLE=1 node $node_flags "$@" >/dev/null; }
  warm "$app/bin/run.js" --help
  warm "$app/bin/run.js" step plan --help
  warm --input-type=module -e "
    import { readdirSync } from 'node:fs'
    const dir = '$app/dist/commands'
    for (const f of readdirSync(dir, { recursive: true })) if (String(f).endsWith('.js')) await import(dir + '/' + f)"
  rm -rf "$home"
  uid="$(id -u)"
  for d in "$cache"/*-"$uid"; do
    [ -d "$d" ] || { echo "app.sh: node wrote no compile cache in $cache" >&2; exit 1; }
    [ "$uid" = 1000 ] || mv "$d" "${d%-"$uid"}-1000"
  done
  chmod -R a+rX,go-w "$cache"
  ;;
*)
  echo "usage: app.sh deps SRC | app.sh assemble SRC OUT" >&2; exit 2
  ;;
esac
