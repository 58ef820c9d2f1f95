#!/usr/bin/env bash
# A local sandbox to try kata-lcm: a real control plane with kwok nodes, a kata-deploy-like release
# (the test fixture chart, daemonset mode, 3.27.0) on three labelled nodes, a fleet policy for its
# local charts, and what install-workflow needs (Argo's CRDs, the argo namespace).
#
#   bash scripts/sandbox.sh up     build the tools once (cached), start it, print what to run
#   bash scripts/sandbox.sh real-node   join one real kubelet node (containerd + runc; root)
#   bash scripts/sandbox.sh down   remove it
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${KATA_LCM_CACHE:-$HOME/.cache/kata-lcm}"
# KATA_LCM_SANDBOX names another sandbox (the e2e suite runs its own beside yours).
NAME="${KATA_LCM_SANDBOX:-kata-lcm-sandbox}"
DIR="$CACHE/$NAME"

case "${1:-}" in
up)
  bash "$ROOT/scripts/testbed/build-tools.sh" >&2
  bash "$ROOT/scripts/testbed/package-fixture-charts.sh" >/dev/null
  eval "$(bash "$ROOT/scripts/testbed/cluster.sh" create "$NAME" | grep '^KUBECONFIG=')"
  export KUBECONFIG PATH="$CACHE/bin:$PATH"
  mkdir -p "$DIR"
  for i in 1 2 3; do
    kubectl apply -f - >/dev/null <<NODE
apiVersion: v1
kind: Node
metadata:
  name: worker-$i
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: worker-$i, type: kwok, katacontainers.io/kata-runtime: "true", node-pool: kata}
NODE
  done
  kubectl wait --for=condition=Ready node/worker-1 node/worker-2 node/worker-3 --timeout=60s >/dev/null
  # With its RuntimeClasses, as the real chart installs them (the fixture's default is off), so that
  # README's quickstart (kata-lcm init) finds Kata here; qemu's own class is left to `real-node`,
  # which makes kata-qemu run with runc (a RuntimeClass's handler cannot change).
  helm upgrade --install kata-deploy "$CACHE/charts/kata-deploy-3.27.0.tgz" -n kube-system --wait --timeout 2m \
    --set runtimeClasses.enabled=true --set shims.qemu.enabled=false >/dev/null
  cat >"$DIR/verify.yaml" <<'POD'
apiVersion: v1
kind: Pod
metadata:
  name: ${TEST_POD}
  labels:
    kata-lcm.test/verify: succeed   # the sandbox's kwok stages: succeed | fail | pending | creating
spec:
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: ${NODE}
  tolerations:
    - operator: Exists
  containers:
    - name: verify
      image: quay.io/kata-containers/alpine-bash-curl:latest
      command: ["uname", "-a"]
POD
  # What install-workflow needs: Argo's CRDs from the workflow-controller module's own manifests, its namespace.
  . "$ROOT/scripts/testbed/versions.env"
  crds="$CACHE/tools/argo-controller-$ARGO_VERSION/crds"
  [[ -d "$crds" ]] || bash "$ROOT/scripts/testbed/build-tools.sh" argo-controller >&2
  kubectl apply --server-side --force-conflicts -f "$crds" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s -f "$crds" >/dev/null
  kubectl create namespace argo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  # The fleet policy: the sandbox's local charts, its nodes, its verification pod.
  {
    cat <<POLICY
apiVersion: kata-lcm.katacontainers.io/v1alpha1
kind: Policy
release: {name: kata-deploy, namespace: kube-system}
chart: $CACHE/charts/kata-deploy-3.28.0.tgz
previousChart: $CACHE/charts/kata-deploy-3.27.0.tgz
nodeSelector: node-pool=kata
batchSize: 1
timeouts: {ready: 60s}
verification:
  namespace: default
  timeout: 60s
  pod:
POLICY
    sed 's/^/    /' "$DIR/verify.yaml"
  } >"$DIR/policy.yaml"
  "$ROOT/scripts/kata-lcm" policy set "$DIR/policy.yaml" >/dev/null
  cat <<TXT
sandbox up: 3 kwok nodes (worker-1..3, label node-pool=kata), kata-deploy 3.27.0 in kube-system,
the fleet policy $DIR/policy.yaml stored in ConfigMap kube-system/kata-lcm-policy, Argo's CRDs.

  export KUBECONFIG=$KUBECONFIG PATH=$ROOT/scripts:$CACHE/bin:\$PATH
  kata-lcm status
  kata-lcm upgrade --target-version 3.28.0 --batch-size 2
  kata-lcm rollback worker-1
  kata-lcm install-workflow

Charts of 3.26.0 3.27.0 3.28.0 3.30.0 (its pods crash-loop) 3.32.0 3.33.0 are in $CACHE/charts.
A node named vfail-* fails every verification pod. Remove it all: bash scripts/sandbox.sh down
TXT
  ;;
real-node)
  # Pods tolerating kata-lcm.test/real-node=true:NoSchedule and selecting it by name run there for
  # real (RuntimeClass kata-qemu = runc); removed with the sandbox.
  bash "$ROOT/scripts/testbed/real-node.sh" up "$NAME"
  ;;
down)
  bash "$ROOT/scripts/testbed/cluster.sh" delete "$NAME"
  rm -rf "$DIR"
  ;;
*)
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
