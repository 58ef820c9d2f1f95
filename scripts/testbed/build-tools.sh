#!/usr/bin/env bash
# Build the e2e testbed tools from Go modules (no prebuilt downloads).
#
#   scripts/testbed/build-tools.sh [TOOL...]     TOOL in: k8s etcd kwok helm helm3 argo argo-controller promcheck
#                                               prometheus
#                                               (none: all but helm3, which only the --matrix lane needs)
#
# k8s: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet.
# argo: the argo CLI. argo-controller: workflow-controller, argoexec and the module's CRDs.
# prometheus: the Prometheus server, for the alert gate's e2e (no service discoveries but file/http, no UI).
#
# Versions come from scripts/testbed/versions.env. Every tool is built into a
# cache OUTSIDE the repo, keyed by version:
#   ${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}/tools/<name>-<version>/
# and symlinked into ${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}/bin/.
# Idempotent: a tool whose versioned dir is complete is not rebuilt.
# Non-interactive (fine as root under CI=true with no stdin).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"

CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
TOOLS="$CACHE/tools"
BIN="$CACHE/bin"
SCRATCH="$CACHE/scratch"
mkdir -p "$TOOLS" "$BIN" "$SCRATCH"

# Small, static, reproducible-ish binaries; 2 cores -> -p 2.
export CGO_ENABLED=0
export GOFLAGS="-trimpath -buildvcs=false -mod=mod"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
GO_P="${KATA_LCM_GO_P:-2}"
LDFLAGS_BASE="-s -w"

log() { printf '[build-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH"

# One builder at a time per cache (vitest global setup and a developer's shell
# may both run this script): wait for the other one, then find its results.
if command -v flock >/dev/null; then
  exec 9>"$TOOLS/.build.lock"
  if ! flock -n 9; then
    log "another build-tools.sh is running on $CACHE: waiting for it"
    flock 9
  fi
fi

# is_built DIR BIN... : true when DIR has a completion stamp and every binary.
is_built() {
  local dir="$1"; shift
  [[ -f "$dir/.complete" ]] || return 1
  local b
  for b in "$@"; do [[ -x "$dir/$b" ]] || return 1; done
}

# link DIR BIN... : symlink binaries of DIR into $BIN.
link() {
  local dir="$1"; shift
  local b
  for b in "$@"; do ln -sfn "$dir/$b" "$BIN/$b"; done
}

# gomod_of MODULE@VERSION : path of that module's go.mod in the module cache.
gomod_of() {
  local out
  out="$(cd "$SCRATCH" && GOFLAGS=-mod=mod go mod download -json "$1")" || die "go mod download $1 failed"
  sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$out" | head -n1
}

# replaces_of GOMOD : the replace directives of a go.mod, one per line,
# "old [oldver] => new [newver]" (block and single-line forms).
replaces_of() {
  go mod edit -print "$1" | awk '
    /^replace[[:space:]]*\($/ { inb = 1; next }
    inb && /^\)/              { inb = 0; next }
    inb                       { sub(/^[[:space:]]+/, ""); print; next }
    /^replace[[:space:]]/     { sub(/^replace[[:space:]]+/, ""); print }'
}

# go_version_of GOMOD : its "go" directive (e.g. 1.25.0).
go_version_of() { go mod edit -print "$1" | awk '$1 == "go" { print $2; exit }'; }

# new_scratch NAME MODULE VERSION : fresh scratch module requiring MODULE@VERSION
# and carrying over MODULE's non-local replace directives (go install pkg@ver
# refuses modules with replaces; a scratch main module applies them instead).
# Prints the scratch dir.
new_scratch() {
  local name="$1" mod="$2" ver="$3" dir gomod line
  dir="$SCRATCH/$name"
  rm -rf "$dir"; mkdir -p "$dir"
  gomod="$(gomod_of "$mod@$ver")"
  [[ -n "$gomod" && -f "$gomod" ]] || die "no go.mod for $mod@$ver"
  (
    cd "$dir"
    go mod init "kata-lcm.local/testbed/$name" >/dev/null 2>&1
    go mod edit -go="$(go_version_of "$gomod")" -require="$mod@$ver"
    while IFS= read -r line; do
      [[ -n "$line" ]] || continue
      # old [ver] => new [ver]; local paths (./..., ../..., /...) are skipped.
      local lhs="${line%%=>*}" rhs="${line#*=>}"
      lhs="$(echo $lhs)"; rhs="$(echo $rhs)"
      case "$rhs" in ./*|../*|/*) continue ;; esac
      go mod edit -replace="${lhs// /@}=${rhs// /@}"
    done < <(replaces_of "$gomod")
  )
  echo "$dir"
}

# timed NAME CMD... : run CMD, report wall time.
timed() {
  local name="$1"; shift
  local t0=$SECONDS
  "$@"
  log "built $name in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- kubernetes
# The control plane, kubectl and the real node's kubelet: one scratch module, one set of ldflags.
# A cache made before a binary joined the list gets only the missing ones (the others are kept:
# a running test cluster may be using them).
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
build_k8s() {
  local ver="$KUBE_VERSION" out="$TOOLS/kubernetes-$KUBE_VERSION"
  local bins=("${K8S_BINS[@]}")
  if is_built "$out" "${bins[@]}"; then link "$out" "${bins[@]}"; log "kubernetes $ver: cached"; return; fi
  local todo=() b
  if [[ -f "$out/.complete" ]]; then
    for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || todo+=("$b"); done
  else
    todo=("${bins[@]}")
  fi
  log "kubernetes $ver: building ${todo[*]}"
  local t0=$SECONDS
  local dir gomod staging_ver line old new
  dir="$(new_scratch kubernetes k8s.io/kubernetes "$ver")"
  gomod="$(gomod_of "k8s.io/kubernetes@$ver")"
  staging_ver="v0.${ver#v1.}"          # v1.35.4 -> v0.35.4
  # Every staging module (replaced by ./staging/src/... upstream) -> published
  # release of the same minor/patch.
  local n=0
  while IFS= read -r line; do
    old="$(echo ${line%%=>*})"; new="$(echo ${line#*=>})"
    case "$new" in ./staging/*)
      old="${old%% *}"
      (cd "$dir" && go mod edit -replace="$old=$old@$staging_ver")
      n=$((n + 1)) ;;
    esac
  done < <(replaces_of "$gomod")
  [[ $n -gt 0 ]] || die "found no staging modules in $gomod"
  log "kubernetes $ver: replaced $n staging modules with $staging_ver"

  local major minor date ld
  major="${ver#v}"; major="${major%%.*}"
  minor="${ver#v*.}"; minor="${minor%%.*}"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ld="$LDFLAGS_BASE"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$ver -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$date"
  done
  local pkgs=()
  for b in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (
    cd "$dir"
    go mod download k8s.io/kubernetes
    go build -p "$GO_P" -ldflags "$ld" -o "$out.tmp/" "${pkgs[@]}"
  )
  local v
  for b in "${todo[@]}"; do
    case "$b" in
      kubectl) v="$("$out.tmp/kubectl" version --client 2>/dev/null || true)"
        [[ "$v" == *"Client Version: $ver"* ]] || die "kubectl version --client printed '$v', want $ver" ;;
      *) v="$("$out.tmp/$b" --version 2>/dev/null || true)"
        [[ "$v" == "Kubernetes $ver" ]] || die "$b --version printed '$v', want 'Kubernetes $ver'" ;;
    esac
  done
  if [[ ${#todo[@]} -lt ${#bins[@]} ]]; then
    # Add the new binaries beside the kept ones (a rename each, never a missing file).
    for b in "${todo[@]}"; do mv -f "$out.tmp/$b" "$out/$b"; done
    rm -rf "$out.tmp"
  else
    touch "$out.tmp/.complete"
    rm -rf "$out"; mv "$out.tmp" "$out"
  fi
  link "$out" "${bins[@]}"
  log "built kubernetes $ver (${todo[*]}) in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- etcd
build_etcd() {
  local ver="$ETCD_VERSION" out="$TOOLS/etcd-$ETCD_VERSION"
  if is_built "$out" etcd; then link "$out" etcd; log "etcd $ver: cached"; return; fi
  log "etcd $ver: building"
  local t0=$SECONDS dir
  # go.etcd.io/etcd/server/v3 has main.go at its root; its go.mod replaces
  # sibling modules with local paths, hence a scratch module.
  dir="$(new_scratch etcd go.etcd.io/etcd/server/v3 "$ver")"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (
    cd "$dir"
    go build -p "$GO_P" -ldflags "$LDFLAGS_BASE" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  local v
  v="$("$out.tmp/etcd" --version 2>&1 || true)"
  [[ "$v" == *"etcd Version: ${ver#v}"* ]] || die "etcd --version printed '$v', want ${ver#v}"
  touch "$out.tmp/.complete"
  rm -rf "$out"; mv "$out.tmp" "$out"
  link "$out" etcd
  log "built etcd $ver in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- go install style tools
# install_mod NAME MODULE VERSION LDFLAGS PKG:BIN...
install_mod() {
  local name="$1" mod="$2" ver="$3" ld="$4"; shift 4
  local out="$TOOLS/$name-$ver" bins=() spec
  for spec in "$@"; do bins+=("${spec#*:}"); done
  if is_built "$out" "${bins[@]}"; then link "$out" "${bins[@]}"; log "$name $ver: cached"; return; fi
  log "$name $ver: building ${bins[*]}"
  local t0=$SECONDS dir
  dir="$(new_scratch "$name" "$mod" "$ver")"
  if declare -F "prepare_$name" >/dev/null; then "prepare_$name" "$dir" "$mod" "$ver"; fi
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (
    cd "$dir"
    for spec in "$@"; do
      go build -p "$GO_P" -ldflags "$LDFLAGS_BASE $ld" -o "$out.tmp/${spec#*:}" "${spec%%:*}"
    done
  )
  touch "$out.tmp/.complete"
  rm -rf "$out"; mv "$out.tmp" "$out"
  rm -rf "$dir/src"   # a patched source copy (prepare_*), no longer needed
  link "$out" "${bins[@]}"
  log "built $name $ver in $((SECONDS - t0))s"
}

build_kwok() {
  # kwokctl's default kube version (for clusters) becomes the one built here.
  local ld="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  ld+=" -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"
  install_mod kwok sigs.k8s.io/kwok "$KWOK_VERSION" "$ld" \
    sigs.k8s.io/kwok/cmd/kwok:kwok sigs.k8s.io/kwok/cmd/kwokctl:kwokctl
}

build_helm() {
  local ld="-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
  install_mod helm helm.sh/helm/v4 "$HELM_VERSION" "$ld" helm.sh/helm/v4/cmd/helm:helm
}

# helm 3, for the helm-3 lane (scripts/test.sh --matrix): linked into $CACHE/lanes/helm3/ (a
# directory the lane puts first on PATH), never over the default lane's helm in $BIN.
build_helm3() {
  local ld="-X helm.sh/helm/v3/internal/version.version=$HELM3_VERSION"
  mkdir -p "$CACHE/lanes/helm3"
  BIN="$CACHE/lanes/helm3" install_mod helm3 helm.sh/helm/v3 "$HELM3_VERSION" "$ld" helm.sh/helm/v3/cmd/helm:helm
}

# The argo CLI embeds the UI (ui/dist/app, built by yarn upstream and not in
# the module zip). Like upstream's Makefile with STATIC_FILES=false: build from
# a copy of the module with an empty ui/dist/app/index.html.
prepare_argo() {
  local dir="$1" mod="$2" ver="$3" src
  src="$(cd "$SCRATCH" && GOFLAGS=-mod=mod go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  [[ -d "$src" ]] || die "no source dir for $mod@$ver"
  cp -r "$src" "$dir/src"
  chmod -R u+w "$dir/src"
  mkdir -p "$dir/src/ui/dist/app"
  : >"$dir/src/ui/dist/app/index.html"
  (cd "$dir" && go mod edit -replace="$mod=./src")
}

build_argo() {
  local ld="-X github.com/argoproj/argo-workflows/v3.version=$ARGO_VERSION"
  install_mod argo github.com/argoproj/argo-workflows/v3 "$ARGO_VERSION" "$ld" \
    github.com/argoproj/argo-workflows/v3/cmd/argo:argo
}

# workflow-controller and argoexec (the real node's Argo): the same module, version and UI-less
# source copy as the CLI, plus one fix: upstream's workflow/executor/osspecific/signal_linux.go is
# a git symlink to signal_darwin.go, and module zips drop symlinks, so argoexec does not compile
# from the zip (undefined: Setpgid). The copy gets the file back as a regular file.
prepare_argo-controller() {
  prepare_argo "$@"
  local os="$1/src/workflow/executor/osspecific"
  [[ -f "$os/signal_darwin.go" ]] || die "no $os/signal_darwin.go in the argo module"
  if [[ ! -f "$os/signal_linux.go" ]]; then
    # The darwin file's build constraint names darwin only; Linux needs the same code.
    sed 's#^//go:build .*#//go:build linux#' "$os/signal_darwin.go" >"$os/signal_linux.go"
  fi
}

build_argo_controller() {
  local ld="-X github.com/argoproj/argo-workflows/v3.version=$ARGO_VERSION"
  install_mod argo-controller github.com/argoproj/argo-workflows/v3 "$ARGO_VERSION" "$ld" \
    github.com/argoproj/argo-workflows/v3/cmd/workflow-controller:workflow-controller \
    github.com/argoproj/argo-workflows/v3/cmd/argoexec:argoexec
  # The module's CRDs (the controller's own manifests), beside the binaries.
  local out="$TOOLS/argo-controller-$ARGO_VERSION" src
  if [[ ! -d "$out/crds" ]]; then
    src="$(cd "$SCRATCH" && GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-workflows/v3@$ARGO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
    [[ -d "$src/manifests/base/crds/minimal" ]] || die "no manifests/base/crds/minimal in $src"
    rm -rf "$out/crds.tmp"; mkdir -p "$out/crds.tmp"
    cp "$src"/manifests/base/crds/minimal/argoproj.io_*.yaml "$out/crds.tmp/"
    chmod -R u+w "$out/crds.tmp"; mv "$out/crds.tmp" "$out/crds"
  fi
  ln -sfn "$out/crds" "$CACHE/argo-crds"
}

# promcheck (test/tools/promcheck, test code): Prometheus' own text-format parser
# (prometheus/common/expfmt at the version its go.mod pins) over stdin, for the
# metrics e2e. Keyed by the hash of its sources, so an edit rebuilds it.
build_promcheck() {
  local src
  src="$(cd "$HERE/../../test/tools/promcheck" && pwd)"
  local key
  key="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-12)"
  local out="$TOOLS/promcheck-$key"
  if is_built "$out" promcheck; then link "$out" promcheck; log "promcheck $key: cached"; return; fi
  log "promcheck $key: building"
  local t0=$SECONDS
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (cd "$src" && GOFLAGS="-trimpath -buildvcs=false -mod=readonly" go build -p "$GO_P" -ldflags "$LDFLAGS_BASE" -o "$out.tmp/promcheck" .)
  touch "$out.tmp/.complete"
  rm -rf "$out"; mv "$out.tmp" "$out"
  link "$out" promcheck
  log "built promcheck in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- prometheus
# The Prometheus server (cmd/prometheus), the smallest build that serves the HTTP API, scrapes and
# evaluates rules: tag remove_all_sd drops every service discovery plugin but file and http (the
# module's plugins/), and without tag builtinassets (upstream's .promu.yml sets it) no web UI is
# embedded (the UI pages answer 500, no index.html; /api/v1 and /-/ready are whole).
# The module has no replace directives; a scratch module like the others all the same.
PROMETHEUS_TAGS=remove_all_sd
build_prometheus() {
  local ver="$PROMETHEUS_VERSION" out="$TOOLS/prometheus-$PROMETHEUS_VERSION"
  if is_built "$out" prometheus; then link "$out" prometheus; log "prometheus $ver: cached"; return; fi
  log "prometheus $ver: building (tags $PROMETHEUS_TAGS)"
  local t0=$SECONDS dir src release ld p
  dir="$(new_scratch prometheus github.com/prometheus/prometheus "$ver")"
  # Module v0.316.0 is Prometheus 3.16.0: the release is the module's VERSION file.
  src="$(cd "$SCRATCH" && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/prometheus@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n1)"
  release="$(tr -d '[:space:]' <"$src/VERSION" 2>/dev/null || true)"
  [[ -n "$release" ]] || die "no VERSION file in $src"
  p=github.com/prometheus/common/version
  ld="$LDFLAGS_BASE -X $p.Version=$release -X $p.Revision=$ver -X $p.Branch=$ver -X $p.BuildUser=kata-lcm-testbed"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  (
    cd "$dir"
    go build -p "$GO_P" -tags "$PROMETHEUS_TAGS" -ldflags "$ld" -o "$out.tmp/prometheus" \
      github.com/prometheus/prometheus/cmd/prometheus
  )
  local v
  v="$("$out.tmp/prometheus" --version 2>&1 || true)"
  [[ "$v" == *"prometheus, version $release "* ]] || die "prometheus --version printed '$v', want $release"
  touch "$out.tmp/.complete"
  rm -rf "$out"; mv "$out.tmp" "$out"
  link "$out" prometheus
  log "built prometheus $ver ($release) in $((SECONDS - t0))s"
}

main() {
  local want=("$@")
  [[ ${#want[@]} -gt 0 ]] || want=(k8s etcd kwok helm argo argo-controller promcheck prometheus)
  local t0=$SECONDS t
  for t in "${want[@]}"; do
    case "$t" in
      k8s|kubernetes) build_k8s ;;
      etcd) build_etcd ;;
      kwok) build_kwok ;;
      helm) build_helm ;;
      helm3) build_helm3 ;;
      argo) build_argo ;;
      argo-controller) build_argo_controller ;;
      promcheck) build_promcheck ;;
      prometheus) build_prometheus ;;
      *) die "unknown tool '$t' (k8s etcd kwok helm helm3 argo argo-controller promcheck prometheus)" ;;
    esac
  done
  log "done in $((SECONDS - t0))s; binaries in $BIN"
}

main "$@"
