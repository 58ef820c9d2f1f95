import type { LifecycleDeps, ReleaseRef } from '../../src/lifecycle/context.js'
import { STATUS_ANNOTATION, type NodeStatus } from '../../src/lifecycle/engine/node-state.js'
import type { UpgradeRequest } from '../../src/lifecycle/checks/prerequisites.js'
import type { RollbackRequest } from '../../src/lifecycle/settings/request.js'
import type { Values } from '../../src/lifecycle/settings/values.js'
import type { NodePatch } from '../../src/ports/cluster.port.js'
import type { Timings } from './cluster-store.js'
import { FakeAlerts } from './fake-alerts.js'
import { FakeClock } from './fake-clock.js'
import { FakeCluster, type NodeSeed, type WriteRecord } from './fake-cluster.js'
import { FakeHelm } from './fake-helm.js'
import { FakeProcess } from './fake-process.js'
import { RecordingEvents } from './recording-events.js'

export const CHART = 'oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy'
export const RELEASE: ReleaseRef = { name: 'kata-deploy', namespace: 'kube-system' }
export const VERIFY_NAMESPACE = 'kata-verify'

/** The design's example verification pod. */
export const VERIFICATION_POD = `apiVersion: v1
kind: Pod
metadata:
  name: \${TEST_POD}
spec:
  runtimeClassName: kata-qemu
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: \${NODE}
  tolerations:
    - operator: Exists
  containers:
    - name: verify
      image: quay.io/kata-containers/alpine-bash-curl:latest
      command: ["uname", "-a"]
`

export interface ScenarioOptions {
  /** A count (node-1 .. node-N) or explicit nodes. Default 3. */
  nodes?: number | (string | NodeSeed)[]
  mode?: 'daemonset' | 'job'
  /** The release's chart version now. Default 3.28.0 (daemonset) / 3.32.0 (job). */
  version?: string
  /** The version upgrades aim at. Default 3.29.0 (daemonset) / 3.33.0 (job). */
  target?: string
  /** Versions the chart reference offers. Default: version and target. */
  chartVersions?: string[]
  /** The operator's own values on the release (job mode adds deploymentMode: job). */
  userValues?: Values
  verificationPod?: string
  timings?: Partial<Timings>
}

export interface Scenario {
  clock: FakeClock
  cluster: FakeCluster
  helm: FakeHelm
  events: RecordingEvents
  /** The alert gate's Prometheus. */
  alerts: FakeAlerts
  deps: LifecycleDeps
  version: string
  target: string
  nodeNames: string[]
  /** A separate kata-lcm process over the same cluster and helm (kill() it to simulate a crash). */
  spawn(): FakeProcess
  upgradeRequest(overrides?: Partial<UpgradeRequest>): UpgradeRequest
  rollbackRequest(node: string, overrides?: Partial<RollbackRequest>): RollbackRequest
  /** The node's lifecycle status annotation. */
  status(node: string): string | undefined
}

/** A write that sets a node's status annotation (for crashAfter and journal queries). */
export function statusWrite(node: string, status: NodeStatus): (w: WriteRecord) => boolean {
  return (w) =>
    w.resource === 'nodes' && w.name === node && (w.detail as NodePatch).annotations?.[STATUS_ANNOTATION] === status
}

/** One call: nodes, a kata-deploy release in the chosen mode with its pods or installs, charts, deps. */
export async function scenario(options: ScenarioOptions = {}): Promise<Scenario> {
  const mode = options.mode ?? 'daemonset'
  const version = options.version ?? (mode === 'job' ? '3.32.0' : '3.28.0')
  const target = options.target ?? (mode === 'job' ? '3.33.0' : '3.29.0')
  const clock = new FakeClock()
  const cluster = new FakeCluster(clock, options.timings)
  const helm = new FakeHelm(cluster)
  const events = new RecordingEvents()
  const seeds =
    typeof options.nodes === 'object'
      ? options.nodes
      : Array.from({ length: options.nodes ?? 3 }, (_, i) => `node-${i + 1}`)
  for (const seed of seeds) cluster.addNode(typeof seed === 'string' ? { name: seed } : seed)
  helm.addChart(CHART, options.chartVersions ?? [version, target])
  const userValues = { ...(mode === 'job' ? { deploymentMode: 'job' } : {}), ...options.userValues }
  await helm.install({ ...RELEASE, version, values: userValues, chart: CHART })
  let ids = 0
  const alerts = new FakeAlerts(() => clock.now())
  const deps: LifecycleDeps = { cluster, helm, clock, events, alerts, randomId: () => `r${++ids}` }
  const verification = {
    source: options.verificationPod ?? VERIFICATION_POD,
    origin: 'verify.yaml',
    namespace: VERIFY_NAMESPACE,
    timeoutMs: 120_000,
  }
  return {
    alerts,
    clock,
    cluster,
    helm,
    events,
    deps,
    version,
    target,
    nodeNames: seeds.map((s) => (typeof s === 'string' ? s : s.name)),
    spawn: () => new FakeProcess(deps),
    upgradeRequest: (overrides = {}) => ({
      targetVersion: target,
      chart: CHART,
      selection: {},
      batchSize: 1,
      drain: false,
      drainTimeoutMs: 60_000,
      verification,
      readyTimeoutMs: 300_000,
      helmTimeout: '10m',
      release: RELEASE,
      deploymentMode: 'auto',
      // The default fleet runs 3.28.0, whose pod restart crashes running Kata pods; these fake nodes run none.
      allowDowngrade: false,
      dryRun: false,
      acceptRestartHazard: true,
      policy: { name: 'none (--no-policy)' },
      ...overrides,
    }),
    rollbackRequest: (node, overrides = {}) => ({
      node,
      release: RELEASE,
      chart: CHART,
      readyTimeoutMs: 300_000,
      helmTimeout: '10m',
      policy: { name: 'none (--no-policy)' },
      ...overrides,
    }),
    status: (node) => cluster.node(node).annotations[STATUS_ANNOTATION],
  }
}

/** The statuses a node is given when it fails after its upgrade (at its verification) and is rolled back. */
export const FAILED_AT_VERIFY = ['cordoned', 'upgrading', 'verifying', 'rolling-back', 'rolled-back']

/** The statuses written on a node, in order, with when and whether the same patch (un)cordoned it. */
export function statusWrites(
  cluster: FakeCluster,
  node: string,
): { status: string; at: number; seq: number; unschedulable?: boolean }[] {
  return cluster.writes
    .filter((w) => w.resource === 'nodes' && w.name === node && !w.failed)
    .flatMap((w) => {
      const patch = w.detail as NodePatch
      const status = patch.annotations?.[STATUS_ANNOTATION]
      return status
        ? [
            {
              status,
              at: w.at,
              seq: w.seq,
              ...(patch.unschedulable !== undefined ? { unschedulable: patch.unschedulable } : {}),
            },
          ]
        : []
    })
}
