#!/usr/bin/env bash
# Container images for the test bed's real node, built with no registry, no pull and no builder:
# an OCI image layout written with tar + sha256sum + jq, ready for `ctr image import`.
#
#   scripts/image/build-local.sh pause|argoexec|kata-lcm
#   scripts/image/build-local.sh kata-deploy-stand-in VERSION   TEST CODE: the kata-deploy fixture's pod on the real node
#   scripts/image/build-local.sh with-charts DIR    kata-lcm + DIR/*.tgz in /opt/kata-deploy-charts
#       prints "REF TAR" on stdout: the image name to use (imagePullPolicy: Never) and the
#       OCI archive; diagnostics on stderr. Cached under ${KATA_LCM_CACHE:-~/.cache/kata-lcm}/images,
#       keyed by the content of every input: a rerun with nothing changed takes well under 1 s.
#
# pause     kata-lcm.local/pause:<TAG>: pause.c of the k8s.io/kubernetes module at KUBE_VERSION
#           (build/pause/linux), gcc -static, as upstream's Makefile compiles it.
# argoexec  kata-lcm.local/argoexec:<ARGO_VERSION>: the argoexec binary built by
#           scripts/testbed/build-tools.sh argo-controller, at /bin/argoexec, user 8737 (as upstream).
# kata-lcm  kata-lcm.local/kata-lcm:<content key>: the Dockerfile's image from local parts:
#           base = Debian bookworm minbase (debootstrap) + the Node.js binary of the Dockerfile's
#           NODE_VERSION major + user node (1000), like node:<NODE_VERSION>-bookworm-slim;
#           app layer = scripts/image/app.sh (the Dockerfile's own recipe) + the test bed's helm;
#           ENV, WORKDIR, USER and ENTRYPOINT read from the Dockerfile's final stage.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../testbed/versions.env
source "$ROOT/scripts/testbed/versions.env"
CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
IMAGES="$CACHE/images"
mkdir -p "$IMAGES"

log() { printf '[build-local] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

exec 8>"$IMAGES/.lock"
flock 8

# Deterministic layer: sorted, fixed mtime; --root forces root ownership (COPY's default).
layer_tar() { # DIR OUT [--root]
  local dir="$1" out="$2" own=()
  [[ "${3:-}" == --root ]] && own=(--owner=0 --group=0)
  tar --sort=name --mtime=@0 --numeric-owner "${own[@]}" --xattrs-exclude='*' \
    --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* \
    -C "$dir" -cf "$out" .
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# oci_archive OUT REF CONFIG_JSON LAYER... : OCI layout tar with one manifest named REF.
# CONFIG_JSON is the image config's "config" object (Env, Entrypoint, User, WorkingDir, ...).
oci_archive() {
  local out="$1" ref="$2" cfg="$3"; shift 3
  local d; d="$(mktemp -d "$IMAGES/.oci.XXXXXX")"
  mkdir -p "$d/blobs/sha256"
  local layers='[]' diffs='[]' l dg sz
  for l in "$@"; do
    dg="$(sha "$l")"; sz="$(stat -c %s "$l")"
    ln "$l" "$d/blobs/sha256/$dg" 2>/dev/null || cp "$l" "$d/blobs/sha256/$dg"
    layers="$(jq -c --arg d "sha256:$dg" --argjson s "$sz" '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $d, size: $s}]' <<<"$layers")"
    diffs="$(jq -c --arg d "sha256:$dg" '. + [$d]' <<<"$diffs")"
  done
  jq -n -c --argjson c "$cfg" --argjson diffs "$diffs" \
    '{architecture: "amd64", os: "linux", config: $c, rootfs: {type: "layers", diff_ids: $diffs}}' >"$d/config.json"
  dg="$(sha "$d/config.json")"; sz="$(stat -c %s "$d/config.json")"; mv "$d/config.json" "$d/blobs/sha256/$dg"
  jq -n -c --arg d "sha256:$dg" --argjson s "$sz" --argjson layers "$layers" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s}, layers: $layers}' >"$d/manifest.json"
  dg="$(sha "$d/manifest.json")"; sz="$(stat -c %s "$d/manifest.json")"; mv "$d/manifest.json" "$d/blobs/sha256/$dg"
  jq -n -c --arg d "sha256:$dg" --argjson s "$sz" --arg ref "$ref" --arg tag "${ref##*:}" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
        annotations: {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": $tag}}]}' >"$d/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$d" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$d"
}

gomod_dir() { # MODULE@VERSION
  (cd "$IMAGES" && GOFLAGS=-mod=mod go mod download -json "$1" | jq -r .Dir)
}

build_pause() {
  local src tag=3.10.1 rev=0 key out ref
  src="$(gomod_dir "k8s.io/kubernetes@$KUBE_VERSION")/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "no $src"
  key="$( { sha "$src"; echo "$tag-$rev"; sha "${BASH_SOURCE[0]}"; gcc --version | head -n1; } | sha256sum | cut -c1-16)"
  ref="kata-lcm.local/pause:$tag"
  out="$IMAGES/pause-$key.tar"
  if [[ ! -f "$out" ]]; then
    local w; w="$(mktemp -d "$IMAGES/.pause.XXXXXX")"
    mkdir -p "$w/root"
    # upstream: CFLAGS = -Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV)
    gcc -Os -Wall -Werror -static -DVERSION="v$tag-$rev" -o "$w/root/pause" "$src"
    strip "$w/root/pause"
    layer_tar "$w/root" "$w/layer.tar" --root
    oci_archive "$out" "$ref" '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$w/layer.tar"
    rm -rf "$w"
    log "pause image built ($out)"
  fi
  echo "$ref $out"
}

build_argoexec() {
  local bin="$CACHE/tools/argo-controller-$ARGO_VERSION/argoexec" key out ref
  [[ -x "$bin" ]] || die "$bin missing: run scripts/testbed/build-tools.sh argo-controller"
  key="$( { sha "$bin"; sha "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)"
  ref="kata-lcm.local/argoexec:$ARGO_VERSION"
  out="$IMAGES/argoexec-$key.tar"
  if [[ ! -f "$out" ]]; then
    local w; w="$(mktemp -d "$IMAGES/.argoexec.XXXXXX")"
    mkdir -p "$w/root/bin" "$w/root/tmp"
    chmod 1777 "$w/root/tmp"
    cp "$bin" "$w/root/bin/argoexec"
    layer_tar "$w/root" "$w/layer.tar" --root
    oci_archive "$out" "$ref" '{"Entrypoint":["argoexec"],"User":"8737","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' "$w/layer.tar"
    rm -rf "$w"
    log "argoexec image built ($out)"
  fi
  echo "$ref $out"
}

# The Dockerfile's final stage: ENV, WORKDIR, USER, ENTRYPOINT as an image config fragment.
dockerfile_config() {
  awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$ROOT/Dockerfile" | awk '
    /^ENV /      { sub(/^ENV /, ""); print "ENV\t" $0 }
    /^WORKDIR /  { print "WORKDIR\t" $2 }
    /^USER /     { print "USER\t" $2 }
    /^ENTRYPOINT / { sub(/^ENTRYPOINT /, ""); print "ENTRYPOINT\t" $0 }'
}

dockerfile_arg() { sed -n "s/^ARG $1=//p" "$ROOT/Dockerfile" | head -n1; }

base_rootfs_tar() { # prints the base layer tar
  local node_major node ver key out
  node_major="$(dockerfile_arg NODE_VERSION)"
  [[ -n "$node_major" ]] || die "no ARG NODE_VERSION in the Dockerfile"
  # shellcheck source=../node-env.sh
  . "$ROOT/scripts/node-env.sh"
  node="$(readlink -f "$(command -v node)")"
  ver="$("$node" --version)"
  [[ "$ver" == "v$node_major."* ]] || die "node $ver at $node is not the Dockerfile's NODE_VERSION $node_major"
  key="$( { echo "bookworm minbase $ver"; sha "$node"; sed -n '/^base_rootfs_tar()/,/^}/p' "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)"
  out="$IMAGES/base-$key.tar"
  if [[ ! -f "$out" ]]; then
    command -v debootstrap >/dev/null || die "debootstrap missing: scripts/testbed/host-packages.sh"
    local w t0=$SECONDS mirror
    w="$(mktemp -d "$IMAGES/.base.XXXXXX")"
    mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)"
    log "base rootfs: debootstrap --variant=minbase bookworm (${mirror:-http://deb.debian.org/debian}) + node $ver"
    debootstrap --variant=minbase bookworm "$w/root" "${mirror:-http://deb.debian.org/debian}" >"$w/debootstrap.log" 2>&1 \
      || { tail -n 20 "$w/debootstrap.log" >&2; die "debootstrap failed"; }
    # As the -slim images: no apt lists or caches, no docs.
    rm -rf "$w/root"/var/lib/apt/lists/* "$w/root"/var/cache/apt/* "$w/root"/var/cache/debconf/*-old \
      "$w/root"/usr/share/doc/* "$w/root"/usr/share/man/* "$w/root"/var/log/*
    install -m 0755 "$node" "$w/root/usr/local/bin/node"
    # The node images' user: node, 1000:1000, home /home/node.
    echo 'node:x:1000:' >>"$w/root/etc/group"
    echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$w/root/etc/passwd"
    echo 'node:*:19000:0:99999:7:::' >>"$w/root/etc/shadow"
    install -d -o 1000 -g 1000 "$w/root/home/node"
    layer_tar "$w/root" "$out.tmp"
    mv "$out.tmp" "$out"
    rm -rf "$w"
    log "base rootfs built in $((SECONDS - t0))s"
  fi
  echo "$out"
}

build_kata_lcm() {
  local helm="$CACHE/tools/helm-$HELM_VERSION/helm" base key out ref
  [[ -x "$helm" ]] || die "$helm missing: run scripts/testbed/build-tools.sh helm"
  [[ "$(dockerfile_arg HELM_VERSION)" == "$HELM_VERSION" ]] || die "Dockerfile HELM_VERSION differs from versions.env"
  base="$(base_rootfs_tar)"
  # Every input of the image: the files the Dockerfile COPYs, the recipe, helm, the base.
  key="$(
    cd "$ROOT"
    { find package.json package-lock.json tsconfig.json scripts/build.mjs bin src chart scripts/image/app.sh Dockerfile -type f -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum
      sha "$helm"; basename "$base"; sha "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)"
  ref="kata-lcm.local/kata-lcm:local-$key"
  out="$IMAGES/kata-lcm-$key.tar"
  if [[ ! -f "$out" ]]; then
    local w t0=$SECONDS
    w="$(mktemp -d "$IMAGES/.kata-lcm.XXXXXX")"
    mkdir -p "$w/src" "$w/out"
    mkdir -p "$w/src/scripts"
    (cd "$ROOT" && cp -R package.json package-lock.json tsconfig.json bin src chart "$w/src/" && cp scripts/build.mjs "$w/src/scripts/")
    log "kata-lcm image: scripts/image/app.sh deps + assemble"
    (. "$ROOT/scripts/node-env.sh"; sh "$ROOT/scripts/image/app.sh" deps "$w/src" && sh "$ROOT/scripts/image/app.sh" assemble "$w/src" "$w/out") >"$w/app.log" 2>&1 \
      || { tail -n 30 "$w/app.log" >&2; die "app.sh failed"; }
    install -m 0755 "$helm" "$w/out/usr/local/bin/helm"
    layer_tar "$w/out" "$w/app.tar" --root
    # Config: the base image's PATH and NODE_VERSION, then the Dockerfile's final stage.
    local cfg kind val node_ver
    node_ver="$(. "$ROOT/scripts/node-env.sh"; node -p process.versions.node)"
    cfg="$(jq -n -c --arg nv "$node_ver" '{Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ("NODE_VERSION=" + $nv)]}')"
    while IFS=$'\t' read -r kind val; do
      case "$kind" in
        ENV) cfg="$(jq -c --arg e "$val" '.Env += [$e]' <<<"$cfg")" ;;
        WORKDIR) cfg="$(jq -c --arg v "$val" '.WorkingDir = $v' <<<"$cfg")" ;;
        USER) cfg="$(jq -c --arg v "$val" '.User = $v' <<<"$cfg")" ;;
        ENTRYPOINT) cfg="$(jq -c --argjson v "$val" '.Entrypoint = $v' <<<"$cfg")" ;;
      esac
    done < <(dockerfile_config)
    oci_archive "$out" "$ref" "$cfg" "$base" "$w/app.tar"
    # Kept for derived images (with-charts).
    mv "$w/app.tar" "$IMAGES/kata-lcm-$key.app-layer"; echo "$cfg" >"$IMAGES/kata-lcm-$key.config"
    echo "$base" >"$IMAGES/kata-lcm-$key.base"
    rm -rf "$w"
    # Older kata-lcm archives: only the newest few are kept.
    local old
    for old in $(ls -1t "$IMAGES"/kata-lcm-*.tar 2>/dev/null | tail -n +4); do rm -f "${old%.tar}".*; done
    log "kata-lcm image built in $((SECONDS - t0))s ($ref)"
  fi
  echo "$ref $out"
}

# The kata-lcm image plus the kata-deploy chart archives of DIR in /opt/kata-deploy-charts, for
# an air-gapped cluster (docs/argo.md: "a chart .tgz baked into a derived image").
build_with_charts() {
  local dir="$1" ref0 tar0 key0 key out ref
  [[ -d "$dir" ]] || die "no chart dir $dir"
  read -r ref0 tar0 < <(build_kata_lcm)
  key0="${ref0##*:local-}"
  key="$( { echo "$key0"; (cd "$dir" && sha256sum ./*.tgz); } | sha256sum | cut -c1-16)"
  ref="kata-lcm.local/kata-lcm-charts:local-$key"
  out="$IMAGES/kata-lcm-charts-$key.tar"
  if [[ ! -f "$out" ]]; then
    local w; w="$(mktemp -d "$IMAGES/.charts.XXXXXX")"
    mkdir -p "$w/root/opt/kata-deploy-charts"
    cp "$dir"/*.tgz "$w/root/opt/kata-deploy-charts/"
    chmod -R a+rX "$w/root"
    layer_tar "$w/root" "$w/charts.tar" --root
    oci_archive "$out" "$ref" "$(cat "$IMAGES/kata-lcm-$key0.config")" "$(cat "$IMAGES/kata-lcm-$key0.base")" "$IMAGES/kata-lcm-$key0.app-layer" "$w/charts.tar"
    rm -rf "$w"
    for old in $(ls -1t "$IMAGES"/kata-lcm-charts-*.tar 2>/dev/null | tail -n +4); do rm -f "$old"; done
    log "kata-lcm image with the charts of $dir built ($ref)"
  fi
  echo "$ref $out"
}

# TEST CODE: kata-lcm.local/kata-deploy-stand-in:<VERSION>, what the kata-deploy fixture chart's pod runs on
# the test bed's real node: the base rootfs plus /usr/bin/kata-deploy, a shell that runs until the
# pod is stopped (the real binary installs Kata, labels the node and waits; the test's TypeScript
# stand-in, test/e2e/harness/kata-deploy-stand-in.ts, labels the node from the pod's readiness).
build_kata_deploy_stand_in() {
  local version="$1" base key ref out w
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "usage: build-local.sh kata-deploy-stand-in VERSION (the chart's appVersion, the image tag)"
  base="$(base_rootfs_tar)"
  local script='#!/bin/sh
# TEST CODE (scripts/image/build-local.sh kata-deploy-stand-in): stands in for kata-deploy.
trap "exit 0" TERM INT
sleep infinity &
wait
'
  key="$( { basename "$base"; printf '%s' "$script"; sha "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)"
  ref="kata-lcm.local/kata-deploy-stand-in:$version"
  out="$IMAGES/kata-deploy-stand-in-$key-$version.tar"
  if [[ ! -f "$out" ]]; then
    w="$(mktemp -d "$IMAGES/.stand-in.XXXXXX")"
    mkdir -p "$w/root/usr/bin"
    printf '%s' "$script" >"$w/root/usr/bin/kata-deploy"
    chmod 0755 "$w/root/usr/bin/kata-deploy"
    layer_tar "$w/root" "$w/stand-in.tar" --root
    oci_archive "$out" "$ref" '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' "$base" "$w/stand-in.tar"
    rm -rf "$w"
    for old in $(ls -1t "$IMAGES"/kata-deploy-stand-in-*.tar 2>/dev/null | tail -n +5); do rm -f "$old"; done
    log "kata-deploy stand-in image built ($ref)"
  fi
  echo "$ref $out"
}

case "${1:-}" in
  kata-deploy-stand-in) [[ $# -eq 2 ]] || die "usage: build-local.sh kata-deploy-stand-in VERSION"; build_kata_deploy_stand_in "$2" ;;
  with-charts) [[ $# -eq 2 ]] || die "usage: build-local.sh with-charts DIR"; build_with_charts "$2" ;;
  pause) build_pause ;;
  argoexec) build_argoexec ;;
  kata-lcm) build_kata_lcm ;;
  *) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
