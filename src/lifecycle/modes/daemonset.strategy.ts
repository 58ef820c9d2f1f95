import type { NodeView, PodView } from '../../ports/cluster.port.js'
import type { HelmUpgradeRequest } from '../../ports/helm.port.js'
import { readRelease } from '../checks/release-read.js'
import { kataDeployNames } from '../context.js'
import { PreconditionError } from '../errors.js'
import { listed } from '../run/report.js'
import { mergeValues, type Values } from '../settings/values.js'
import { REVISION_LABEL, restartAndAwait } from './kata-deploy-pods.js'
import { NO_HOOKS, runUpgrade, type DeploymentStrategy, type NodeOutcomes, type RunContext } from './strategy.js'

/**
 * What kata-lcm changes in the release's values while it rolls nodes: OnDelete so Kubernetes restarts
 * nothing by itself, and kata-deploy's own verification hook off (kata-lcm verifies per node).
 */
export const DAEMONSET_OVERRIDES: Values = { updateStrategy: { type: 'OnDelete' }, verification: { pod: '' } }

/** The helm upgrade to `chart` `version` with the operator's values, and kata-lcm's `overrides` over them when given. */
function request(
  ctx: RunContext,
  chart: string,
  version: string,
  overrides?: Values,
  noHooks = false,
): HelmUpgradeRequest {
  return {
    release: ctx.release.name,
    namespace: ctx.release.namespace,
    chart,
    version,
    values: overrides ? mergeValues(ctx.userValues, overrides) : ctx.userValues,
    ...(overrides ? { overrides } : {}),
    noHooks,
    timeout: ctx.helmTimeout,
  }
}

/** The version each run context has already brought the release to: later waves skip the helm reads. */
const ensured = new WeakMap<RunContext, string>()

/**
 * Brings the release to `version` with the OnDelete overrides, unless it is already there (a rerun
 * never re-upgrades helm needlessly). Idempotent; checked once per run (context) and version.
 */
async function ensureRelease(ctx: RunContext, chart: string, version: string): Promise<void> {
  if (ensured.get(ctx) === version) return
  await bringRelease(ctx, chart, version)
  ensured.set(ctx, version)
}

async function bringRelease(ctx: RunContext, chart: string, version: string): Promise<void> {
  const { cluster } = ctx.deps
  const names = kataDeployNames(ctx.userValues)
  const [release, daemonSet] = await Promise.all([
    readRelease(ctx.deps, ctx.release),
    cluster.getDaemonSet(ctx.release.namespace, names.daemonSet),
  ])
  if (release?.chartVersion === version && release.status === 'deployed' && daemonSet?.updateStrategy === 'OnDelete')
    return
  await runUpgrade(ctx, request(ctx, chart, version, DAEMONSET_OVERRIDES))
  if (!(await cluster.getDaemonSet(ctx.release.namespace, names.daemonSet))) {
    throw new PreconditionError(
      `after helm upgrade there is no DaemonSet ${names.daemonSet} in ${ctx.release.namespace}; the release does not look like kata-deploy in daemonset mode`,
    )
  }
}

/**
 * The release's kata-deploy pods that stand for a node of the fleet: bound to a node that exists and
 * not terminating. A pod left on a deleted node (until the pod garbage collector removes it) runs
 * nothing anyone can schedule onto. With the nodes as listed, by name. Read-only.
 */
async function podsInFleet(ctx: RunContext): Promise<{ pods: PodView[]; nodes: Map<string, NodeView> }> {
  const { cluster } = ctx.deps
  const [pods, listed] = await Promise.all([
    cluster.listPods({ namespace: ctx.release.namespace, labelSelector: kataDeployNames(ctx.userValues).podSelector }),
    cluster.listNodes(),
  ])
  const nodes = new Map(listed.map((n) => [n.name, n]))
  return { pods: pods.filter((p) => p.nodeName !== undefined && nodes.has(p.nodeName) && !p.deletionTimestamp), nodes }
}

/** How long a read of the DaemonSet's current revision waits for its controller to observe it. */
const REVISION_WAIT_MS = 30_000

/** The kata-deploy version whose pod, deleted, crashes the node's running Kata pods. */
const RESTART_HAZARD_VERSION = '3.28.0'

/** daemonset mode (kata-deploy >= 3.27.0): one helm upgrade with OnDelete, then pod by pod. */
export const daemonSetStrategy: DeploymentStrategy = {
  mode: 'daemonset',
  minimumVersion: '3.27.0',

  // One helm upgrade for the whole run: every later wave only restarts pods.
  plannedUpgrades(ctx, waves) {
    return waves.length === 0 ? [] : [request(ctx, ctx.chart, ctx.targetVersion, DAEMONSET_OVERRIDES)]
  },

  requiredAccess(namespace) {
    return [
      ...['get', 'list', 'watch'].map((verb) => ({ verb, resource: 'daemonsets.apps', namespace })),
      { verb: 'list', resource: 'controllerrevisions.apps', namespace },
      ...['list', 'watch', 'delete'].map((verb) => ({ verb, resource: 'pods', namespace })),
    ]
  },

  plannedRevert(ctx) {
    return request(ctx, ctx.previousChart, ctx.previousVersion, DAEMONSET_OVERRIDES)
  },

  async checkWaves(_deps, plan) {
    // Each wave restarts only its own nodes' pods, so any wave plan is safe, but for one version:
    // deleting a 3.28.0 pod runs its cleanup, which restarts containerd and crashes the Kata pods
    // running on the node (kata-containers#12761; 3.29.0 skips the cleanup while its DaemonSet exists).
    if (
      plan.waves.length === 0 ||
      plan.previousVersion !== RESTART_HAZARD_VERSION ||
      plan.drain ||
      plan.acceptRestartHazard
    )
      return
    throw new PreconditionError(
      `restarting kata-deploy ${RESTART_HAZARD_VERSION} pods crashes the Kata pods running on their nodes (its cleanup on SIGTERM restarts containerd; kata-containers#12761), and daemonset mode restarts them`,
      {
        suggestions: [
          'pass --drain, so the nodes carry no workload when their pod restarts',
          'or --accept-restart-hazard if the nodes run no Kata pods, or losing them is fine',
        ],
      },
    )
  },

  async precheck(deps, release, selected, values) {
    const names = kataDeployNames(values)
    const [pods, nodes] = await Promise.all([
      deps.cluster.listPods({ namespace: release.namespace, labelSelector: names.podSelector }),
      selected,
    ])
    const without = nodes.filter((n) => !pods.some((p) => p.nodeName === n.name))
    if (without.length > 0) {
      throw new PreconditionError(
        `${listed(without.map((n) => n.name))} run no ${names.daemonSet} pod of release ${release.name}; they are not Kata nodes of this release, so narrow --node-selector / --node-taint-key`,
      )
    }
  },

  async confirmDone(deps, release, values, nodes, targetVersion) {
    const names = kataDeployNames(values)
    const wanted = new Set(nodes)
    const [hash, pods] = await Promise.all([
      deps.cluster.daemonSetRevisionHash(release.namespace, names.daemonSet, REVISION_WAIT_MS),
      deps.cluster.listPods({ namespace: release.namespace, labelSelector: names.podSelector }),
    ])
    // The release at the target: its revision is the target's. Elsewhere (rolled back after a failed
    // wave, say): a pod at its revision runs the release's own version, not the target.
    const atTarget = release.chartVersion === targetVersion
    return new Set(
      pods
        .filter((p) => p.nodeName !== undefined && wanted.has(p.nodeName) && !p.deletionTimestamp && p.ready)
        .filter((p) => (p.labels[REVISION_LABEL] === hash) === atTarget)
        .map((p) => p.nodeName!),
    )
  },

  // The node's live kata-deploy pod: Ready, and the same pod with the same restarts from end to end of a soak.
  async health(ctx, nodes) {
    const names = kataDeployNames(ctx.userValues)
    // One node (its verification just passed): its own pods only, not the whole release's.
    const one = nodes.length === 1 ? { fieldSelector: `spec.nodeName=${nodes[0]}` } : {}
    const pods = (
      await ctx.deps.cluster.listPods({ namespace: ctx.release.namespace, labelSelector: names.podSelector, ...one })
    ).filter((p) => !p.deletionTimestamp)
    return new Map(
      nodes.map((node): [string, { ok: boolean; detail: string }] => {
        const pod = pods.find((p) => p.nodeName === node)
        if (!pod) return [node, { ok: false, detail: `no ${names.daemonSet} pod runs on the node` }]
        const restarts = pod.containers.reduce((sum, c) => sum + c.restartCount, 0)
        if (!pod.ready) return [node, { ok: false, detail: `its kata-deploy pod ${pod.name} is not Ready` }]
        return [node, { ok: true, detail: `pod ${pod.name} (${pod.uid}), ${restarts} restart(s)` }]
      }),
    )
  },

  async coveredNodes(ctx) {
    const { pods, nodes } = await podsInFleet(ctx)
    return { nodes: [...new Set(pods.map((p) => p.nodeName!))].map((name) => nodes.get(name)!), pods }
  },

  healthPods(ctx) {
    return { namespace: ctx.release.namespace, labelSelector: kataDeployNames(ctx.userValues).podSelector }
  },

  // The helm upgrade changes no node (OnDelete): it runs while the nodes are being marked `upgrading`.
  async upgradeWave(ctx, nodes, hooks = NO_HOOKS): Promise<NodeOutcomes> {
    const starting = new Map(nodes.map((node) => [node, hooks.starting(node)]))
    await ensureRelease(ctx, ctx.chart, ctx.targetVersion)
    return restartAndAwait(ctx, nodes, { ...hooks, starting: (node) => starting.get(node)! })
  },

  async revertNodes(ctx, nodes): Promise<NodeOutcomes> {
    await ensureRelease(ctx, ctx.previousChart, ctx.previousVersion)
    return restartAndAwait(ctx, nodes)
  },

  async restoreValues(ctx, chart, version, coverage) {
    // Restoring the operator's own updateStrategy is only safe once no kata-deploy pod is behind the
    // DaemonSet's revision: with RollingUpdate, Kubernetes would roll those nodes unverified.
    const { cluster } = ctx.deps
    const names = kataDeployNames(ctx.userValues)
    const hash = await cluster.daemonSetRevisionHash(ctx.release.namespace, names.daemonSet, ctx.readyTimeoutMs)
    // The pods as coveredNodes read them just now: the fleet is not read twice (0.2 s at 1000 nodes).
    const behind = coverage.pods.filter((p) => p.labels[REVISION_LABEL] !== hash).map((p) => p.nodeName!)
    if (behind.length > 0) {
      ctx.deps.events.emit({
        type: 'info',
        message: `the kata-deploy pods on ${listed(behind)} do not run ${version}; the release keeps updateStrategy OnDelete (so they are not rolled unverified) and kata-lcm keeps your values in its run record until every node is on one version`,
      })
      return false
    }
    // --no-hooks: the values change touches no pod; kata-deploy's own verification hook must not run again.
    await runUpgrade(ctx, request(ctx, chart, version, undefined, true))
    return true
  },
}
