#!/usr/bin/env bash
# Fake Kubernetes cluster for the e2e tests: kwokctl's "binary" runtime with the
# binaries built by scripts/testbed/build-tools.sh (nothing is downloaded).
#
#   scripts/testbed/cluster.sh create NAME      create (replacing any old NAME);
#                                               prints KEY=VALUE lines on stdout:
#                                                 KUBECONFIG=<path>
#                                                 AUDIT_LOG=<path>
#                                                 WORKDIR=<cluster dir>
#   scripts/testbed/cluster.sh delete NAME      delete; never fails if absent
#   scripts/testbed/cluster.sh kubeconfig NAME  print the kubeconfig path
#   scripts/testbed/cluster.sh audit-log NAME   print the audit log path
#   scripts/testbed/cluster.sh logs NAME        print the component logs dir
#
# Cluster: etcd, kube-apiserver (audit policy test/e2e/testbed/audit-policy.yaml,
# Metadata level, JSON lines), kube-controller-manager (DaemonSet, Job, GC, ...
# controllers), kube-scheduler and kwok-controller with the Stages in
# test/e2e/testbed/stages/*.yaml (see test/e2e/testbed/README.md).
# No Node is created: tests create their own Node objects.
#
# kwokctl state lives in ${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}/kwok
# (KWOK_WORKDIR), never in the repo; ~/.kube/config is not touched.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"

CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
BIN="$CACHE/bin"
export KWOK_WORKDIR="${KATA_LCM_KWOK_WORKDIR:-$CACHE/kwok}"
# kwokctl reads KWOK_* env vars over its config: keep them consistent.
export KWOK_KUBE_VERSION="$KUBE_VERSION"
export KWOK_RUNTIME=binary
export KWOK_QUIET_PULL=true
unset KWOK_VERSION || true
STAGES_DIR="${KATA_LCM_STAGES_DIR:-$ROOT/test/e2e/testbed/stages}"
AUDIT_POLICY="$ROOT/test/e2e/testbed/audit-policy.yaml"
# The Service range of every test cluster and its first address, the kubernetes Service.
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

KWOKCTL="$BIN/kwokctl"

cluster_dir() { echo "$KWOK_WORKDIR/clusters/$1"; }

check_name() {
  [[ "$1" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "bad cluster name '$1' (lowercase DNS label)"
}

need_tools() {
  local b
  for b in kwokctl kwok etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: run scripts/testbed/build-tools.sh"
  done
}

# ours PID DIR: true when PID's command line points into the cluster dir DIR
# (kwokctl starts every component as DIR/bin/<component>).
ours() {
  local cmdline
  [[ -r "/proc/$1/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline")" || return 1
  [[ "$cmdline" == *"$2/"* ]]
}

# cluster_pids NAME: pids recorded in the cluster's pid files that still look
# like ours (we never look processes up by name).
cluster_pids() {
  local dir pidf pid
  dir="$(cluster_dir "$1")"
  [[ -d "$dir/pids" ]] || return 0
  for pidf in "$dir"/pids/*.pid; do
    [[ -f "$pidf" ]] || continue
    pid="$(tr -dc '0-9' <"$pidf")"
    [[ -n "$pid" ]] && ours "$pid" "$dir" && echo "$pid"
  done
  return 0
}

# stop_pids DIR PID...: SIGTERM those still ours, up to 15s to exit, then SIGKILL.
stop_pids() {
  local dir="$1" pid i left; shift
  [[ $# -gt 0 ]] || return 0
  for pid in "$@"; do ours "$pid" "$dir" && kill -TERM "$pid" 2>/dev/null; done
  for ((i = 0; i < 150; i++)); do
    left=0
    for pid in "$@"; do ours "$pid" "$dir" && left=1; done
    [[ $left == 1 ]] || return 0
    sleep 0.1
  done
  for pid in "$@"; do
    if ours "$pid" "$dir"; then
      log "killing pid $pid (did not exit on SIGTERM)"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

cmd_delete() {
  local name="$1" dir
  check_name "$name"
  dir="$(cluster_dir "$name")"
  if [[ ! -e "$dir" ]]; then
    log "cluster $name: not present"
    return 0
  fi
  log "deleting cluster $name"
  # An Argo controller and a real node joined to it (argo-controller.sh, real-node.sh) first:
  # the node's mounts live in $dir.
  if [[ -f "$dir/argo/controller.pid" ]]; then
    bash "$HERE/argo-controller.sh" stop "$name" || log "argo-controller.sh stop $name failed (continuing)"
  fi
  if [[ -d "$dir/real-node" ]]; then
    bash "$HERE/real-node.sh" down "$name" || log "real-node.sh down $name failed (continuing)"
  fi
  local pids
  mapfile -t pids < <(cluster_pids "$name")
  if [[ -x "$KWOKCTL" ]]; then
    timeout 120 "$KWOKCTL" --name "$name" delete cluster --kubeconfig "$dir/no-user-kubeconfig" </dev/null >&2 2>&1 \
      || log "kwokctl delete cluster failed (continuing with manual cleanup)"
  fi
  stop_pids "$dir" "${pids[@]}"
  rm -rf "$dir"
  log "cluster $name deleted"
}

write_kwokctl_config() {
  local file="$1"
  cat >"$file" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: ${KUBE_VERSION}
  quietPull: true
  kubeAuditPolicy: ${AUDIT_POLICY}
  kubeAuthorization: true
  kubeAdmission: true
  etcdBinary: ${BIN}/etcd
  kubeApiserverBinary: ${BIN}/kube-apiserver
  kubeControllerManagerBinary: ${BIN}/kube-controller-manager
  kubeSchedulerBinary: ${BIN}/kube-scheduler
  kubectlBinary: ${BIN}/kubectl
  kwokControllerBinary: ${BIN}/kwok
  # Anything that would still be fetched points at a non-existent local path,
  # so a missing binary fails loudly instead of reaching for the network.
  kubeBinaryPrefix: ${BIN}/no-download
  etcdBinaryPrefix: ${BIN}/no-download
  kwokBinaryPrefix: ${BIN}/no-download
  etcdctlBinary: ${BIN}/no-download/etcdctl
  etcdutlBinary: ${BIN}/no-download/etcdutl
  kectlBinary: ${BIN}/no-download/kectl
  # The kubernetes Service IP (first of the range below) is a SAN of the serving cert: pods on the
  # real node (scripts/testbed/real-node.sh) reach the API server through it, in-cluster config.
  kubeApiserverCertSANs:
    - ${SERVICE_IP}
  components:
    - etcd
    - kube-apiserver
    - kube-controller-manager
    - kube-scheduler
    - kwok-controller
---
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
componentsPatches:
  # kwok plays only the fake nodes (the harness gives them this annotation), never the real
  # kubelet node: kwokctl runs kwok with --manage-all-nodes=true, the later flags win.
  - name: kwok-controller
    extraArgs:
      - key: manage-all-nodes
        value: "false"
      - key: manage-nodes-with-annotation-selector
        value: kwok.x-k8s.io/node=fake
EOF
  extra_component_patches >>"$file"
}

# KATA_LCM_TESTBED_EXTRA_ARGS: more component flags, space-separated component=flag=value (the
# benchmark raises kube-controller-manager's own client rate and sync workers in its clusters only),
# as componentsPatches of the kwokctl configuration (kwokctl v0.8.0's --extra-args panics on them).
extra_component_patches() {
  local extra component last=""
  for extra in $(printf '%s\n' ${KATA_LCM_TESTBED_EXTRA_ARGS:-} | sort -t= -k1,1 -s); do
    component="${extra%%=*}"
    [[ "$component" != kwok-controller ]] || die "KATA_LCM_TESTBED_EXTRA_ARGS: kwok-controller is patched above already"
    if [[ "$component" != "$last" ]]; then
      printf '  - name: %s\n    extraArgs:\n' "$component"
      last="$component"
    fi
    extra="${extra#*=}"
    printf '      - key: %s\n        value: "%s"\n' "${extra%%=*}" "${extra#*=}"
  done
}

kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

cmd_create() {
  local name="$1" dir cfg t0=$SECONDS
  check_name "$name"
  need_tools
  [[ -d "$STAGES_DIR" ]] || die "no stages dir $STAGES_DIR"
  dir="$(cluster_dir "$name")"
  if [[ -e "$dir" ]]; then
    log "cluster $name exists: deleting it first"
    cmd_delete "$name"
  fi
  mkdir -p "$KWOK_WORKDIR"
  cfg="$(mktemp -d "${TMPDIR:-/tmp}/kata-lcm-kwokctl.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$cfg'" EXIT
  write_kwokctl_config "$cfg/kwokctl.yaml"
  local args=(--name "$name" --config "$cfg/kwokctl.yaml")
  local f n=0
  for f in "$STAGES_DIR"/*.yaml; do
    [[ -f "$f" ]] || continue
    args+=(--config "$f"); n=$((n + 1))
  done
  [[ $n -gt 0 ]] || die "no stage files in $STAGES_DIR"
  # (audit log: no rotation at lumberjack's default 100 MB, tests read one file)
  log "creating cluster $name (kubernetes $KUBE_VERSION, $n stage files, workdir $KWOK_WORKDIR${KATA_LCM_TESTBED_EXTRA_ARGS:+, extra: $KATA_LCM_TESTBED_EXTRA_ARGS})"
  if ! "$KWOKCTL" "${args[@]}" create cluster \
      --runtime binary \
      --kubeconfig "" \
      --extra-args "kube-apiserver=audit-log-maxsize=100000" \
      --extra-args "kube-apiserver=service-cluster-ip-range=$SERVICE_CIDR" \
      --extra-args "kube-apiserver=kubelet-client-certificate=$dir/pki/admin.crt" \
      --extra-args "kube-apiserver=kubelet-client-key=$dir/pki/admin.key" \
      --extra-args "kube-apiserver=kubelet-preferred-address-types=InternalIP,Hostname" \
      --wait 3m \
      --timeout 5m \
      </dev/null >&2; then
    log "kwokctl create cluster failed; component logs:"
    local l
    for l in "$dir"/logs/*.log; do
      [[ -f "$l" && "$l" != */audit.log ]] || continue
      log "---- $l (tail)"; tail -n 30 "$l" >&2 || true
    done
    cmd_delete "$name" || true
    die "could not create cluster $name"
  fi

  KUBECONFIG_PATH="$dir/kubeconfig.yaml"
  [[ -f "$KUBECONFIG_PATH" ]] || die "kubeconfig $KUBECONFIG_PATH missing"
  # Ready to take pods: apiserver ready and the default ServiceAccount made
  # by kube-controller-manager (pods are rejected before it exists).
  local i ok=0
  for ((i = 0; i < 240; i++)); do
    if kubectl_ get --raw /readyz >/dev/null 2>&1 \
        && kubectl_ -n default get serviceaccount default >/dev/null 2>&1; then
      ok=1; break
    fi
    sleep 0.5
  done
  [[ $ok == 1 ]] || { cmd_delete "$name" || true; die "cluster $name did not become ready"; }

  local audit="$dir/logs/audit.log"
  [[ -f "$audit" ]] || die "audit log $audit missing"
  log "cluster $name ready in $((SECONDS - t0))s"
  echo "KUBECONFIG=$KUBECONFIG_PATH"
  echo "AUDIT_LOG=$audit"
  echo "WORKDIR=$dir"
}

cmd_kubeconfig() {
  local f
  f="$(cluster_dir "$1")/kubeconfig.yaml"
  [[ -f "$f" ]] || die "no cluster $1"
  echo "$f"
}

cmd_audit_log() {
  local f
  f="$(cluster_dir "$1")/logs/audit.log"
  [[ -f "$f" ]] || die "no audit log for cluster $1"
  echo "$f"
}

cmd_logs() {
  local d
  d="$(cluster_dir "$1")/logs"
  [[ -d "$d" ]] || die "no cluster $1"
  echo "$d"
}

[[ $# -eq 2 ]] || usage
case "$1" in
  create) cmd_create "$2" ;;
  delete) cmd_delete "$2" ;;
  kubeconfig) cmd_kubeconfig "$2" ;;
  audit-log) cmd_audit_log "$2" ;;
  logs) cmd_logs "$2" ;;
  *) usage ;;
esac
