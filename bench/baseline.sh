#!/bin/bash
# The baseline: the manual upgrade script of the design (kata-upgrade-design-v1.md, "For Users
# Not Wanting Argo"), adapted ONLY to the benchmark fixture's names:
#   - node label selector: the bench fleet's label instead of katacontainers.io/kata-runtime=true
#   - release namespace: $NS instead of kube-system
#   - chart: the fixture's packaged .tgz instead of the OCI reference
#   - verification-pod.yaml: $VERIFY_FILE, a static pod named kata-verify (the design's file has
#     no per-node substitution, so neither does this one)
# The loop structure is the design's: per node cordon, helm upgrade --reuse-values --wait,
# rollout status, apply the verification pod, kubectl wait, delete, uncordon.
# Inputs (environment): NS, CHART, VERSION, SELECTOR, VERIFY_FILE, KUBECONFIG; kubectl and helm on PATH.
set -euo pipefail

VERSION="${VERSION:?}"

# Upgrade each node with Kata runtime
kubectl get nodes -l "${SELECTOR:?}" -o name | while read -r node_path; do
  NODE="${node_path#node/}"
  echo "Upgrading $NODE..."
  kubectl cordon "$NODE"

  helm upgrade kata-deploy "${CHART:?}" \
    --namespace "${NS:?}" \
    --version "$VERSION" \
    --reuse-values \
    --wait

  # Wait for DaemonSet pod on this node
  kubectl rollout status daemonset/kata-deploy -n "$NS"

  # Run verification (apply your pod, wait, check exit code)
  kubectl apply -n "$NS" -f "${VERIFY_FILE:?}"
  kubectl wait -n "$NS" pod/kata-verify --for=jsonpath='{.status.phase}'=Succeeded --timeout=180s
  kubectl delete -n "$NS" pod/kata-verify

  kubectl uncordon "$NODE"
  echo "$NODE upgraded successfully"
done
