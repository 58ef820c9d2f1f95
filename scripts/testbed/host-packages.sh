#!/usr/bin/env bash
# Debian packages the test bed's real kubelet node and the local image build need, installed
# once (idempotent: nothing is done when every package is already installed).
#
#   scripts/testbed/host-packages.sh            install what is missing (root, apt)
#   scripts/testbed/host-packages.sh --check    exit 1 when something is missing, install nothing
#
# containerd + runc run the node's pods, containernetworking-plugins give them a network (bridge,
# host-local), iptables routes the kubernetes Service IP to the API server (there is no
# kube-proxy; nft removes the tables iptables-nft created), debootstrap makes the base root filesystem of the local images, gcc + libc6-dev
# compile the pause binary statically.
set -euo pipefail

PACKAGES=(containerd runc containernetworking-plugins iptables nftables debootstrap gcc libc6-dev)

log() { printf '[host-packages] %s\n' "$*" >&2; }

missing=()
for p in "${PACKAGES[@]}"; do
  # dpkg-query prints "install ok installed" for an installed package.
  if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  log "all present (${PACKAGES[*]})"
  exit 0
fi
if [[ "${1:-}" == "--check" ]]; then
  log "missing: ${missing[*]}"
  exit 1
fi
[[ $(id -u) == 0 ]] || { log "ERROR: missing ${missing[*]} and not root: install them with apt-get"; exit 1; }

t0=$SECONDS
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# One lock for both calls: a concurrent apt-get waits instead of failing.
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >&2
# Debian's containerd package would be started by its postinst on a systemd machine; the test
# bed runs its own containerd with its own config and sockets, never the packaged service.
log "installed in $((SECONDS - t0))s"
