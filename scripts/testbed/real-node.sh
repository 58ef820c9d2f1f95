#!/usr/bin/env bash
# One REAL kubelet node joined to a test cluster (scripts/testbed/cluster.sh): containerd + runc +
# CNI bridge from Debian's packages (scripts/testbed/host-packages.sh), the kubelet built by
# scripts/testbed/build-tools.sh k8s. The kwok fleet stays fake; this node is where the Argo
# workflow-controller's step pods and the verification pods really run.
#
#   scripts/testbed/real-node.sh up CLUSTER       start it; prints NODE=<name> and LOGS=<dir> on stdout
#   scripts/testbed/real-node.sh down CLUSTER     stop it and undo every change to the host
#   scripts/testbed/real-node.sh import CLUSTER REF TAR   import an OCI archive into its containerd
#   scripts/testbed/real-node.sh ctr CLUSTER ARGS...      ctr -n k8s.io against its containerd
#
# The node: name <CLUSTER>-real, label kata-lcm.test/real-node=true, taint
# kata-lcm.test/real-node=true:NoSchedule (only pods that tolerate it land there), no kwok
# annotation (kwok manages only nodes annotated kwok.x-k8s.io/node=fake). A RuntimeClass
# kata-qemu with handler runc is created, so pods written for Kata run here with runc.
#
# Pods reach the API server with in-cluster config: the kubernetes Service IP (10.96.0.1:443; it
# is in the serving cert, see cluster.sh) is DNAT'ed, for this node's pod subnet only, to the API
# server's port on the bridge's gateway address. There is no kube-proxy and no DNS.
#
# Everything lives in <cluster dir>/real-node (containerd root/state, netns, kubelet root, pod
# logs, CNI state); `down` (also run by cluster.sh delete) stops the processes it started, removes
# the pods' mounts, cgroups, bridge, iptables rules and kubelet's chains, and puts back the sysctls
# kubelet and the bridge plugin changed: the host is left as it was.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
BIN="$CACHE/bin"
KWOK_WORKDIR="${KATA_LCM_KWOK_WORKDIR:-$CACHE/kwok}"
SERVICE_IP=10.96.0.1
LABEL=kata-lcm.test/real-node
# Host settings kubelet (setupKernelTunables) and the CNI bridge (isGateway) may change.
SYSCTLS=(net.ipv4.ip_forward vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Chains kubelet creates (iptables canaries / hints), per table.
KUBELET_CHAINS=("mangle KUBE-KUBELET-CANARY" "nat KUBE-KUBELET-CANARY" "filter KUBE-KUBELET-CANARY"
  "mangle KUBE-IPTABLES-HINT" "filter KUBE-FIREWALL" "nat KUBE-MARK-MASQ" "nat KUBE-POSTROUTING")

log() { printf '[real-node] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cluster_dir() { echo "$KWOK_WORKDIR/clusters/$1"; }

# ours PID DIR: PID's command line points into DIR (we never look processes up by name).
ours() {
  local cmdline
  [[ -r "/proc/$1/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline")" || return 1
  [[ "$cmdline" == *"$2"* ]]
}

stop_pid() { # PIDFILE DIR
  local pid i
  [[ -f "$1" ]] || return 0
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] && ours "$pid" "$2" || { rm -f "$1"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do ours "$pid" "$2" || break; sleep 0.1; done
  ours "$pid" "$2" && { log "pid $pid did not exit on SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$1"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])' 2>/dev/null \
    || node -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})'
}

host_ip() { ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1; }

# The cgroup v1 hierarchies (and the unified one) the kubelet's cgroupfs driver uses.
cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts; }

kctl() { "$BIN/kubectl" --kubeconfig "$CDIR/kubeconfig.yaml" "$@"; }

cmd_up() {
  local name="$1" t0=$SECONDS
  CDIR="$(cluster_dir "$name")"
  [[ -f "$CDIR/kubeconfig.yaml" ]] || die "no cluster $name (scripts/testbed/cluster.sh create $name)"
  [[ $(id -u) == 0 ]] || die "a real node needs root (containerd, mounts, iptables)"
  local D="$CDIR/real-node"
  [[ -e "$D" ]] && { log "a real node of $name exists: replacing it"; cmd_down "$name"; }
  bash "$HERE/host-packages.sh" >&2
  local b
  for b in kubelet kubectl; do [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: scripts/testbed/build-tools.sh k8s"; done
  local cg; for cg in $(cgroup_mounts); do [[ -w "$cg" ]] || die "cgroup hierarchy $cg is not writable"; done

  mkdir -p "$D"/{pids,logs,cni/net.d,cni-ipam,containerd,kubelet,pod-logs}
  # A start that fails half-way is undone.
  UP_NAME="$name"
  trap '[[ ${UP_OK:-0} == 1 ]] || { log "start failed: undoing it"; cmd_down "$UP_NAME" || true; }' EXIT
  local node="$name-real"
  # A /24 of 10.244.0.0/16 per real node, so two test clusters' nodes never share a subnet.
  local n=""
  exec 7>"$KWOK_WORKDIR/.real-node.lock"; flock 7
  local i f used
  for ((i = 1; i < 255; i++)); do
    used=0
    for f in "$KWOK_WORKDIR"/clusters/*/real-node/subnet; do [[ -f "$f" && "$(cat "$f")" == "$i" ]] && used=1; done
    ip -4 addr show 2>/dev/null | grep -q " 10\.244\.$i\.1/" && used=1
    [[ $used == 0 ]] && { n=$i; break; }
  done
  [[ -n "$n" ]] || die "no free 10.244.N.0/24 pod subnet"
  echo "$n" >"$D/subnet"
  flock -u 7
  local subnet="10.244.$n.0/24" gw="10.244.$n.1" bridge="klm$n"
  echo "$node" >"$D/node-name"
  echo "$bridge" >"$D/bridge"

  # What down puts back.
  local s
  for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$D/sysctls.saved"
  for f in "${KUBELET_CHAINS[@]}"; do
    set -- $f
    iptables -t "$1" -S "$2" >/dev/null 2>&1 && echo "$f"
  done >"$D/chains.preexisting" || true
  nft list tables 2>/dev/null | sort >"$D/nft-tables.saved" || true
  [[ -d /var/log/containers ]] && echo yes >"$D/var-log-containers.existed" || true

  # CNI: a bridge with host-local addresses, no masquerade (pods only talk to this host).
  cat >"$D/cni/net.d/10-$bridge.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "$bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$D/cni-ipam",
        "ranges": [[{ "subnet": "$subnet", "gateway": "$gw" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
JSON

  # containerd: its own root, state, sockets and netns dir; CRI with the local pause image.
  local pause_ref pause_tar
  read -r pause_ref pause_tar < <(bash "$ROOT/scripts/image/build-local.sh" pause)
  cat >"$D/containerd.toml" <<TOML
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$D/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  # root here lacks CAP_SYS_RESOURCE: runc must not lower oom_score_adj below the parent's.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
    max_conf_num = 1
TOML
  log "starting containerd ($D/containerd.sock)"
  containerd --config "$D/containerd.toml" >"$D/logs/containerd.log" 2>&1 &
  echo $! >"$D/pids/containerd.pid"
  for ((i = 0; i < 100; i++)); do
    ctr --address "$D/containerd.sock" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  ctr --address "$D/containerd.sock" version >/dev/null 2>&1 || { tail -n 20 "$D/logs/containerd.log" >&2; die "containerd did not start"; }
  cmd_import "$name" "$pause_ref" "$pause_tar"

  # kubelet: cgroups under /klm-<n> in every hierarchy, its root, certs and pod logs in $D.
  local cgroot="/klm-$n" cg
  for cg in $(cgroup_mounts); do
    mkdir -p "$cg$cgroot"
    if [[ -f "$cg/cpuset.cpus" ]]; then
      cat "$cg/cpuset.cpus" >"$cg$cgroot/cpuset.cpus"; cat "$cg/cpuset.mems" >"$cg$cgroot/cpuset.mems"
    fi
  done
  echo "$cgroot" >"$D/cgroup-root"
  local port hport ip
  port="$(free_port)"; hport="$(free_port)"; ip="$(host_ip)"
  [[ -n "$ip" ]] || die "no host IPv4 address (default route)"
  cat >"$D/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubelet 1.35 refuses cgroup v1 unless told (this machine is cgroup v1 hybrid).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: $cgroot
containerRuntimeEndpoint: unix://$D/containerd.sock
address: $ip
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $hport
podLogsDir: $D/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $CDIR/pki/ca.crt}
authorization:
  mode: AlwaysAllow
registerWithTaints:
  - {key: $LABEL, value: "true", effect: NoSchedule}
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 30
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
nodeStatusReportFrequency: 10s
YAML
  cp "$CDIR/kubeconfig.yaml" "$D/kubelet.kubeconfig"
  log "starting kubelet (node $node, $ip:$port, pods $subnet on $bridge)"
  "$BIN/kubelet" --config "$D/kubelet-config.yaml" --kubeconfig "$D/kubelet.kubeconfig" \
    --hostname-override "$node" --node-ip "$ip" --node-labels "$LABEL=true" \
    --root-dir "$D/kubelet" --cert-dir "$D/kubelet/pki" -v 1 >"$D/logs/kubelet.log" 2>&1 &
  echo $! >"$D/pids/kubelet.pid"

  # The kubernetes Service for this node's pods (no kube-proxy): DNAT to the API server.
  local api_port
  api_port="$(sed -n 's#^ *server: https://[^:]*:\([0-9]*\).*#\1#p' "$CDIR/kubeconfig.yaml" | head -n1)"
  [[ -n "$api_port" ]] || die "no API server port in $CDIR/kubeconfig.yaml"
  local rule=(PREROUTING -s "$subnet" -d "$SERVICE_IP/32" -p tcp --dport 443 -m comment --comment "kata-lcm real-node $name" -j DNAT --to-destination "$gw:$api_port")
  iptables -t nat -A "${rule[@]}"
  printf '%s\n' "${rule[@]}" >"$D/dnat.rule"

  { kctl wait --for=create "node/$node" --timeout=120s && kctl wait --for=condition=Ready "node/$node" --timeout=120s; } >/dev/null \
    || { grep -v 'flags.go' "$D/logs/kubelet.log" | tail -n 30 >&2; die "node $node did not become Ready"; }
  kctl apply -f - >/dev/null <<YAML
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: kata-qemu
  labels: {kata-lcm.test/real-node: "true"}
# The test bed runs no Kata: pods asking for kata-qemu run with runc on the real node.
handler: runc
YAML
  UP_OK=1
  log "node $node Ready in $((SECONDS - t0))s"
  echo "NODE=$node"
  echo "LOGS=$D/logs"
}

cmd_import() { # CLUSTER REF TAR
  local D; D="$(cluster_dir "$1")/real-node"
  [[ -S "$D/containerd.sock" ]] || die "no real node in cluster $1"
  if ctr --address "$D/containerd.sock" -n k8s.io images check "name==$2" 2>/dev/null | grep -q "$2"; then return 0; fi
  ctr --address "$D/containerd.sock" -n k8s.io images import --no-unpack=false --snapshotter overlayfs "$3" >&2 \
    || die "ctr images import $3 failed"
  ctr --address "$D/containerd.sock" -n k8s.io images check "name==$2" | grep -q "$2" || die "image $2 not in containerd after import"
}

cmd_down() {
  local name="$1" CDIR D
  CDIR="$(cluster_dir "$name")"; D="$CDIR/real-node"
  [[ -d "$D" ]] || { log "no real node in cluster $name"; return 0; }
  local node; node="$(cat "$D/node-name" 2>/dev/null || echo "$name-real")"
  log "stopping real node $node"
  # The pods first, while kubelet still runs: it stops their containers and sandboxes (CNI DEL).
  if [[ -f "$D/pids/kubelet.pid" && -f "$CDIR/kubeconfig.yaml" ]] && kctl get --raw /readyz >/dev/null 2>&1; then
    kctl delete pods -A --field-selector "spec.nodeName=$node" --wait=false >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 60; i++)); do
      [[ -z "$(ctr --address "$D/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null)" ]] && break
      sleep 0.5
    done
    kctl delete node "$node" --wait=false >/dev/null 2>&1 || true
    kctl delete runtimeclass -l "$LABEL=true" >/dev/null 2>&1 || true
  fi
  stop_pid "$D/pids/kubelet.pid" "$D"
  # Whatever is left: kill the tasks, then containerd, then its shims (their command line names
  # our containerd's socket).
  local t
  for t in $(ctr --address "$D/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$D/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
  done
  stop_pid "$D/pids/containerd.pid" "$D"
  local p
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    ours "$p" "$D/containerd.sock" && kill -KILL "$p" 2>/dev/null || true
  done
  # Mounts under $D (overlay rootfs, shm, netns, projected volumes), deepest first.
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || log "could not unmount $m"; done < <(
    awk -v d="$D/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
  # cgroups, deepest first.
  local cgroot cg
  cgroot="$(cat "$D/cgroup-root" 2>/dev/null || true)"
  if [[ -n "$cgroot" ]]; then
    for cg in $(cgroup_mounts); do
      [[ -d "$cg$cgroot" ]] || continue
      find "$cg$cgroot" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [[ -d "$cg$cgroot" ]] && log "could not remove cgroup $cg$cgroot"
    done
  fi
  # Network: the bridge, our DNAT rule, kubelet's chains (unless another one had made them).
  local bridge; bridge="$(cat "$D/bridge" 2>/dev/null || true)"
  [[ -n "$bridge" ]] && ip link show "$bridge" >/dev/null 2>&1 && ip link delete "$bridge"
  if [[ -f "$D/dnat.rule" ]]; then
    local rule; mapfile -t rule <"$D/dnat.rule"
    while iptables -t nat -C "${rule[@]}" 2>/dev/null; do iptables -t nat -D "${rule[@]}"; done
  fi
  local f others=0
  for f in "$KWOK_WORKDIR"/clusters/*/real-node/pids/kubelet.pid; do
    [[ -f "$f" && "$f" != "$D/pids/kubelet.pid" ]] && others=1
  done
  if [[ $others == 0 ]]; then
    for f in "${KUBELET_CHAINS[@]}"; do
      grep -qxF "$f" "$D/chains.preexisting" 2>/dev/null && continue
      set -- $f
      local ipt
      for ipt in iptables ip6tables; do
        if "$ipt" -t "$1" -S "$2" >/dev/null 2>&1; then
          # Jumps into the chain first, then the chain.
          "$ipt" -t "$1" -S | awk -v c="$2" '$1 == "-A" && $0 ~ ("-j " c "( |$)") { sub(/^-A/, "-D"); print }' \
            | while read -r r; do eval "$ipt -t $1 $r" 2>/dev/null || true; done
          "$ipt" -t "$1" -F "$2" 2>/dev/null || true
          "$ipt" -t "$1" -X "$2" 2>/dev/null || true
        fi
      done
    done
  fi
  # iptables-nft made its tables on first use: remove those that were not there before and hold
  # no rule of anyone's (only when no other real node is running).
  if [[ $others == 0 && -f "$D/nft-tables.saved" ]]; then
    local fam tbl ipt
    while read -r _ fam tbl; do
      grep -qx "table $fam $tbl" "$D/nft-tables.saved" && continue
      case "$fam" in ip) ipt=iptables ;; ip6) ipt=ip6tables ;; *) continue ;; esac
      # Nothing but the built-in chains' policies left.
      if [[ -z "$("$ipt" -t "$tbl" -S 2>/dev/null | grep -v '^-P ')" ]]; then
        nft delete table "$fam" "$tbl" 2>/dev/null || log "could not delete nft table $fam $tbl"
      fi
    done < <(nft list tables 2>/dev/null)
  fi
  # Sysctls back to what they were.
  if [[ -f "$D/sysctls.saved" ]]; then
    local kv
    while IFS= read -r kv; do
      [[ "$(sysctl -n "${kv%%=*}")" == "${kv#*=}" ]] || sysctl -q -w "$kv" >/dev/null || log "could not restore $kv"
    done <"$D/sysctls.saved"
  fi
  # Container log links kubelet left in /var/log/containers (they point into $D).
  if [[ -d /var/log/containers ]]; then
    for f in /var/log/containers/*; do
      [[ -L "$f" && "$(readlink "$f")" == "$D/"* ]] && rm -f "$f"
    done
    [[ -f "$D/var-log-containers.existed" ]] || rmdir /var/log/containers 2>/dev/null || true
  fi
  rm -rf "$D"
  log "real node $node stopped; host restored"
}

cmd_ctr() {
  local D; D="$(cluster_dir "$1")/real-node"; shift
  ctr --address "$D/containerd.sock" -n k8s.io "$@"
}

[[ $# -ge 2 ]] || usage
case "$1" in
  up) [[ $# -eq 2 ]] || usage; cmd_up "$2" ;;
  down) [[ $# -eq 2 ]] || usage; cmd_down "$2" ;;
  import) [[ $# -eq 4 ]] || usage; cmd_import "$2" "$3" "$4" ;;
  ctr) shift; cmd_ctr "$@" ;;
  *) usage ;;
esac
