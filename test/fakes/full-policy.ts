/**
 * A fleet policy that sets every field the schema has, with values other than the defaults
 * (test/unit/chart/settings.test.ts holds it to the schema).
 */
export const FULL_POLICY = `apiVersion: kata-lcm.katacontainers.io/v1alpha1
kind: Policy
release: { name: kd, namespace: kata-system }
chart: oci://registry.example/charts/kata-deploy
previousChart: /charts/kata-deploy-3.27.0.tgz
nodeSelector: pool=kata
nodeTaint: { key: kata-lifecycle-manager, value: pending }
batchSize: 25%
canary: 1
soak: 10m
maxUnavailable: 3
workloads: { onDisruption: stop }
alerts: { url: "http://prometheus.monitoring:9090", match: 'severity="critical",alertname=~"Kata.*"', timeout: 30m }
pools:
  - name: gpu
    nodeSelector: pool=gpu
  - name: rest
deploymentMode: daemonset
drain: { enabled: true, timeout: 1h30m, force: true, deleteEmptyDirData: true }
timeouts: { ready: 10m, helm: 20m }
windows:
  - { days: Mon-Fri, start: "02:00", end: "05:00", timeZone: Europe/Berlin }
  - { start: "22:00", end: "01:00" }
verification:
  namespace: kata-verify
  timeout: 2m30s
  pod:
    apiVersion: v1
    kind: Pod
    metadata: { name: "\${TEST_POD}" }
    spec: { containers: [{ name: v, image: busybox }] }
`
