#!/usr/bin/env bash
# A real Argo workflow-controller against a test cluster (scripts/testbed/cluster.sh), built from
# its Go module by scripts/testbed/build-tools.sh argo-controller at ARGO_VERSION; its step pods
# run on the cluster's real node (scripts/testbed/real-node.sh) with the argoexec image built and
# imported here (scripts/image/build-local.sh argoexec, imagePullPolicy Never).
#
#   scripts/testbed/argo-controller.sh start CLUSTER NAMESPACE
#       Argo's CRDs from the module's own manifests (server-side apply), NAMESPACE, the
#       controller's ConfigMap, and the controller process (log: <cluster dir>/argo/controller.log);
#       prints CONTROLLER_LOG=<log> and METRICS_URL=<its /metrics, plain HTTP on a free local port>
#   scripts/testbed/argo-controller.sh stop CLUSTER
#       stop the process it started (the CRDs and NAMESPACE stay: the cluster goes with them)
#
# Test settings: DEFAULT_REQUEUE_TIME=1s (upstream's 10s adds ~10 s per step), no leader
# election, the metrics server on a free local port without TLS (the template's custom metrics
# are read there), no telemetry server.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
BIN="$CACHE/bin"
KWOK_WORKDIR="${KATA_LCM_KWOK_WORKDIR:-$CACHE/kwok}"
TOOL="$CACHE/tools/argo-controller-$ARGO_VERSION"

log() { printf '[argo-controller] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A local TCP port nothing listens on (another test cluster's controller may hold one).
free_port() {
  # The kernel's choice of a port free on every address (the controller listens on ":PORT"): a
  # connect to 127.0.0.1 misses a port another process holds on another address.
  python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])' 2>/dev/null \
    || node -e 'const s=require("net").createServer().listen(0,()=>{console.log(s.address().port);s.close()})' \
    || die "no free local port for the metrics server"
}

ours() {
  local cmdline
  [[ -r "/proc/$1/cmdline" ]] || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline")" || return 1
  [[ "$cmdline" == *"$2"* ]]
}

cmd_start() {
  local name="$1" ns="$2" CDIR A t0=$SECONDS
  CDIR="$KWOK_WORKDIR/clusters/$name"; A="$CDIR/argo"
  [[ -f "$CDIR/kubeconfig.yaml" ]] || die "no cluster $name"
  [[ -d "$CDIR/real-node" ]] || die "cluster $name has no real node (scripts/testbed/real-node.sh up $name)"
  [[ -x "$TOOL/workflow-controller" && -d "$TOOL/crds" ]] || die "$TOOL incomplete: scripts/testbed/build-tools.sh argo-controller"
  local k=("$BIN/kubectl" --kubeconfig "$CDIR/kubeconfig.yaml")
  [[ -f "$A/controller.pid" ]] && cmd_stop "$name"
  mkdir -p "$A"
  local ref tar port
  port="$(free_port)"
  read -r ref tar < <(bash "$ROOT/scripts/image/build-local.sh" argoexec)
  bash "$HERE/real-node.sh" import "$name" "$ref" "$tar"
  "${k[@]}" apply --server-side --force-conflicts -f "$TOOL/crds" >/dev/null
  "${k[@]}" wait --for=condition=Established --timeout=60s -f "$TOOL/crds" >/dev/null
  "${k[@]}" create namespace "$ns" --dry-run=client -o yaml | "${k[@]}" apply -f - >/dev/null
  "${k[@]}" -n "$ns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: workflow-controller-configmap
data:
  metricsConfig: |
    enabled: true
    port: $port
    secure: false
  telemetryConfig: |
    enabled: false
YAML
  # The controller's kubeconfig: the cluster's, in namespace NAMESPACE.
  "${k[@]}" config view --raw --flatten >"$A/kubeconfig.yaml"
  KUBECONFIG="$A/kubeconfig.yaml" "$BIN/kubectl" config set-context --current --namespace "$ns" >/dev/null
  log "starting workflow-controller $ARGO_VERSION in namespace $ns (executor $ref)"
  DEFAULT_REQUEUE_TIME=1s LEADER_ELECTION_DISABLE=true KUBECONFIG="$A/kubeconfig.yaml" \
    "$TOOL/workflow-controller" --kubeconfig "$A/kubeconfig.yaml" --namespace "$ns" \
    --executor-image "$ref" --executor-image-pull-policy Never --loglevel info \
    >"$A/controller.log" 2>&1 &
  echo $! >"$A/controller.pid"
  # Up when it has taken its configuration (a watch on its log would be a file poll too: the
  # process either logs this within seconds or dies).
  local i
  for ((i = 0; i < 300; i++)); do
    # Alive (right after the fork its command line is still this script's, so no `ours` here).
    kill -0 "$(cat "$A/controller.pid")" 2>/dev/null || { tail -n 30 "$A/controller.log" >&2; die "workflow-controller exited"; }
    grep -q 'Starting Workflow Controller\|Started Workflow Controller\|Starting workflow TTL controller' "$A/controller.log" && break
    sleep 0.1
  done
  log "workflow-controller up in $((SECONDS - t0))s"
  echo "CONTROLLER_LOG=$A/controller.log"
  echo "METRICS_URL=http://127.0.0.1:$port/metrics"
}

cmd_stop() {
  local name="$1" A pid i
  A="$KWOK_WORKDIR/clusters/$name/argo"
  [[ -f "$A/controller.pid" ]] || { log "no controller in cluster $name"; return 0; }
  pid="$(tr -dc '0-9' <"$A/controller.pid")"
  if [[ -n "$pid" ]] && ours "$pid" "$A/"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do ours "$pid" "$A/" || break; sleep 0.1; done
    ours "$pid" "$A/" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$A/controller.pid"
  log "workflow-controller of $name stopped"
}

case "${1:-}" in
  start) [[ $# -eq 3 ]] || die "usage: argo-controller.sh start CLUSTER NAMESPACE"; cmd_start "$2" "$3" ;;
  stop) [[ $# -eq 2 ]] || die "usage: argo-controller.sh stop CLUSTER"; cmd_stop "$2" ;;
  *) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
