/**
 * A toy deployment mode, test code only: Kata "installed" on a node is an annotation of the node
 * (`toy.kata-lcm.test/version`) that its strategy sets to the target and back. No DaemonSet, no Job,
 * no helm upgrade per wave. It exists to show that a mode is its strategy and one entry in
 * src/lifecycle/modes/index.ts's list, and nothing else (test/unit/lifecycle/toy-mode.test.ts).
 */
import type { LifecycleDeps } from '../../src/lifecycle/context.js'
import type {
  DeploymentMode,
  DeploymentStrategy,
  NodeOutcomes,
  RunContext,
  WaveHooks,
} from '../../src/lifecycle/modes/strategy.js'
import { NO_HOOKS } from '../../src/lifecycle/modes/strategy.js'

export const TOY_VERSION = 'toy.kata-lcm.test/version'

async function setVersion(deps: LifecycleDeps, nodes: readonly string[], version: string, hooks: WaveHooks) {
  const outcomes: NodeOutcomes = new Map()
  for (const node of nodes) {
    if (!(await hooks.starting(node))) continue
    await deps.cluster.patchNode(node, { annotations: { [TOY_VERSION]: version } })
    outcomes.set(node, { ok: true })
    hooks.settled(node, { ok: true })
  }
  return outcomes
}

async function onVersion(deps: LifecycleDeps, nodes: readonly string[] | undefined, version: string) {
  const all = await deps.cluster.listNodes()
  return new Set(
    all
      .filter((n) => (nodes === undefined || nodes.includes(n.name)) && n.annotations[TOY_VERSION] === version)
      .map((n) => n.name),
  )
}

export const toyStrategy: DeploymentStrategy = {
  mode: 'toy' as DeploymentMode,
  minimumVersion: '0.0.1',
  upgradeWave: (ctx: RunContext, nodes, hooks = NO_HOOKS) => setVersion(ctx.deps, nodes, ctx.targetVersion, hooks),
  revertNodes: (ctx: RunContext, nodes) => setVersion(ctx.deps, nodes, ctx.previousVersion, NO_HOOKS),
  async health(ctx, nodes) {
    const all = new Map((await ctx.deps.cluster.listNodes()).map((n) => [n.name, n]))
    return new Map(
      nodes.map((node) => {
        const version = all.get(node)?.annotations[TOY_VERSION]
        return [node, { ok: version !== undefined, detail: version ?? 'no toy runtime' }]
      }),
    )
  },
  healthPods: () => undefined,
  coveredNodes: async (ctx) => ({ nodes: await ctx.deps.cluster.listNodes(), pods: [] }),
  // What the release would be upgraded to (rendered before any write); the toy itself never runs helm.
  plannedUpgrades: (ctx) => [
    {
      release: ctx.release.name,
      namespace: ctx.release.namespace,
      chart: ctx.chart,
      version: ctx.targetVersion,
      values: ctx.userValues,
    },
  ],
  plannedRevert: (ctx) => ({
    release: ctx.release.name,
    namespace: ctx.release.namespace,
    chart: ctx.previousChart,
    version: ctx.previousVersion,
    values: ctx.userValues,
  }),
  requiredAccess: () => [],
  precheck: async () => undefined,
  confirmDone: (deps, _release, _values, nodes, target) => onVersion(deps, nodes, target),
  checkWaves: async () => undefined,
  // The fleet is on one version when every node's annotation says so; the release's values were never changed.
  async restoreValues(_ctx, _chart, version, { nodes }) {
    return nodes.every((n) => n.annotations[TOY_VERSION] === undefined || n.annotations[TOY_VERSION] === version)
  },
}
