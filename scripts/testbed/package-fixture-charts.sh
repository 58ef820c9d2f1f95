#!/usr/bin/env bash
# Package the kata-deploy test fixture chart (test/fixtures/kata-deploy/chart)
# once per fixture version and write a `helm repo index` index.yaml next to them.
#
#   scripts/testbed/package-fixture-charts.sh [OUTDIR]
#
# OUTDIR defaults to ${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}/charts. Produces
#   OUTDIR/kata-deploy-<version>.tgz   for every version in FIXTURE_VERSIONS
#   OUTDIR/index.yaml                  (urls relative to OUTDIR)
# and prints the .tgz paths, one a line, on stdout (diagnostics go to stderr).
#
# Idempotent: when the chart sources, this script, the version list and the helm
# version are unchanged and every output exists, nothing is rebuilt (set
# FORCE=1 to rebuild). Concurrent runs on one OUTDIR are serialized with flock.
#
# Per version, the chart is copied, Chart.yaml gets version/appVersion, and the
# values.yaml blocks marked ">>> fixture-gate since=X" ... "<<< fixture-gate"
# are dropped when version < X (deploymentMode/job: 3.32.0, updateStrategy:
# 3.27.0), so `helm show values` / `helm get values --all` look like the real
# chart of that version.
#
# Environment:
#   HELM               helm binary to use (default: see find_helm below)
#   KATA_LCM_CACHE     cache root (default $HOME/.cache/kata-lcm)
#   FIXTURE_VERSIONS   space separated "version[:appVersion]" list
#   FORCE=1            rebuild even if up to date
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CHART_SRC="${REPO_ROOT}/test/fixtures/kata-deploy/chart"
CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
OUTDIR="${1:-${CACHE}/charts}"
# version[:appVersion]; 3.30.0 runs an image tag containing "crashloop", which
# the kwok test cluster crash-loops; 3.34.0's image contains "jobfail", whose
# install Jobs the kwok test cluster fails on jfail-* nodes.
FIXTURE_VERSIONS="${FIXTURE_VERSIONS:-3.26.0 3.27.0 3.28.0 3.30.0:3.30.0-crashloop 3.32.0 3.33.0 3.34.0:3.34.0-jobfail}"

log() { echo "package-fixture-charts: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# find_helm: $HELM, else the testbed toolchain's helm ($CACHE/bin/helm, built by
# scripts/testbed/build-tools.sh at HELM_VERSION from versions.env), building it
# with build-tools.sh when missing, else helm on PATH.
find_helm() {
  if [[ -n "${HELM:-}" ]]; then echo "${HELM}"; return; fi
  local want="" v
  if [[ -f "${REPO_ROOT}/scripts/testbed/versions.env" ]]; then
    v="$(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?HELM_VERSION=["'\'']\?\([^"'\'' ]*\).*/\2/p' \
      "${REPO_ROOT}/scripts/testbed/versions.env" | head -n1)"
    [[ -n "${v}" ]] && want="v${v#v}"
  fi
  if [[ -x "${CACHE}/bin/helm" ]]; then echo "${CACHE}/bin/helm"; return; fi
  if [[ -n "${want}" && -x "${CACHE}/tools/helm-${want}/helm" ]]; then
    echo "${CACHE}/tools/helm-${want}/helm"; return
  fi
  if [[ -x "${REPO_ROOT}/scripts/testbed/build-tools.sh" ]] && command -v go >/dev/null 2>&1; then
    log "no helm in ${CACHE}/bin; building it with scripts/testbed/build-tools.sh helm"
    KATA_LCM_CACHE="${CACHE}" "${REPO_ROOT}/scripts/testbed/build-tools.sh" helm >&2
    if [[ -x "${CACHE}/bin/helm" ]]; then echo "${CACHE}/bin/helm"; return; fi
  fi
  if command -v helm >/dev/null 2>&1; then command -v helm; return; fi
  die "no helm found: set HELM=/path/to/helm or run scripts/testbed/build-tools.sh helm"
}

# ver_ge A B: true when dotted version A >= B (numeric fields, no pre-release).
ver_ge() {
  [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" == "$2" ]]
}

# gate_values VERSION < values.yaml > values.yaml for that version
gate_values() {
  local version="$1" line since="" keep=1
  while IFS= read -r line || [[ -n "${line}" ]]; do
    if [[ "${line}" =~ ^#\ \>\>\>\ fixture-gate\ since=([0-9.]+)[[:space:]]*$ ]]; then
      [[ -z "${since}" ]] || die "nested fixture-gate in values.yaml"
      since="${BASH_REMATCH[1]}"
      if ver_ge "${version}" "${since}"; then keep=1; else keep=0; fi
      continue
    fi
    if [[ "${line}" =~ ^#\ \<\<\<\ fixture-gate[[:space:]]*$ ]]; then
      [[ -n "${since}" ]] || die "unbalanced fixture-gate end in values.yaml"
      since=""; keep=1
      continue
    fi
    [[ "${keep}" == 1 ]] && printf '%s\n' "${line}"
  done
  [[ -z "${since}" ]] || die "unterminated fixture-gate in values.yaml"
}

[[ -f "${CHART_SRC}/Chart.yaml" ]] || die "chart not found at ${CHART_SRC}"
HELM_BIN="$(find_helm)"
[[ -x "${HELM_BIN}" ]] || die "helm not executable: ${HELM_BIN}"
HELM_VER="$("${HELM_BIN}" version --template '{{.Version}}' 2>/dev/null || echo unknown)"

mkdir -p "${OUTDIR}"
OUTDIR="$(cd "${OUTDIR}" && pwd)"

exec 9>"${OUTDIR}/.kata-deploy-fixture.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

# Fingerprint of every input.
INPUT_HASH="$(
  {
    echo "helm=${HELM_VER}"
    echo "versions=${FIXTURE_VERSIONS}"
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
    (cd "${CHART_SRC}" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -d' ' -f1
)"
STAMP="${OUTDIR}/.kata-deploy-fixture.sha256"

outputs=()
for entry in ${FIXTURE_VERSIONS}; do
  outputs+=("${OUTDIR}/kata-deploy-${entry%%:*}.tgz")
done

up_to_date=1
[[ "${FORCE:-0}" == 1 ]] && up_to_date=0
[[ -f "${STAMP}" && "$(cat "${STAMP}")" == "${INPUT_HASH}" ]] || up_to_date=0
[[ -f "${OUTDIR}/index.yaml" ]] || up_to_date=0
for f in "${outputs[@]}"; do [[ -f "${f}" ]] || up_to_date=0; done

if [[ "${up_to_date}" == 1 ]]; then
  log "up to date in ${OUTDIR}"
  printf '%s\n' "${outputs[@]}"
  exit 0
fi

WORK="$(mktemp -d "${OUTDIR}/.kata-deploy-fixture.XXXXXX")"
trap 'rm -rf "${WORK}"' EXIT
mkdir -p "${WORK}/out"

for entry in ${FIXTURE_VERSIONS}; do
  version="${entry%%:*}"
  app_version="${entry#*:}"
  [[ "${entry}" == *:* ]] || app_version="${version}"
  [[ "${version}" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "bad fixture version '${version}'"

  stage="${WORK}/stage-${version}/kata-deploy"
  mkdir -p "${stage}"
  cp -R "${CHART_SRC}/." "${stage}/"
  rm -f "${stage}/values.yaml"
  gate_values "${version}" < "${CHART_SRC}/values.yaml" > "${stage}/values.yaml"
  # Rewrite version / appVersion (both lines must exist in the source Chart.yaml).
  sed -i \
    -e "s/^version:.*/version: \"${version}\"/" \
    -e "s/^appVersion:.*/appVersion: \"${app_version}\"/" \
    "${stage}/Chart.yaml"
  grep -q "^version: \"${version}\"$" "${stage}/Chart.yaml" || die "could not set version in Chart.yaml"
  grep -q "^appVersion: \"${app_version}\"$" "${stage}/Chart.yaml" || die "could not set appVersion in Chart.yaml"

  "${HELM_BIN}" package "${stage}" --destination "${WORK}/out" >/dev/null
  [[ -f "${WORK}/out/kata-deploy-${version}.tgz" ]] || die "helm package produced no kata-deploy-${version}.tgz"
  log "packaged kata-deploy ${version} (appVersion ${app_version})"
done

# Replace our outputs; drop fixture archives of versions no longer listed.
for old in "${OUTDIR}"/kata-deploy-*.tgz; do
  [[ -e "${old}" ]] || continue
  [[ -f "${WORK}/out/$(basename "${old}")" ]] || rm -f "${old}"
done
mv -f "${WORK}/out/"kata-deploy-*.tgz "${OUTDIR}/"

"${HELM_BIN}" repo index "${OUTDIR}" >/dev/null
[[ -f "${OUTDIR}/index.yaml" ]] || die "helm repo index wrote no index.yaml"

echo "${INPUT_HASH}" > "${STAMP}"
log "wrote ${#outputs[@]} charts and index.yaml to ${OUTDIR}"
printf '%s\n' "${outputs[@]}"
