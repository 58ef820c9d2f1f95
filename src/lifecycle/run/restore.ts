import { Annotation, readStatus } from '../engine/node-state.js'
import { listed } from './report.js'
import type { RunContext } from '../modes/strategy.js'

/**
 * Puts the operator's own values back in the release at `version`, and drops the run record that
 * kept them, once every node kata-lcm has touched that the release still covers runs `version` (and the mode agrees: daemonset
 * also wants every kata-deploy pod at the DaemonSet's revision). Until then the record keeps them,
 * so no later run can mistake kata-lcm's overrides for the operator's. Idempotent.
 */
export async function restoreWhenConverged(ctx: RunContext, chart: string, version: string): Promise<boolean> {
  const { deps } = ctx
  // Only the nodes the release still covers count: one taken out of its selection (its kata-deploy
  // pod gone) or deleted runs nothing of it, whatever its annotations last said.
  const coverage = await ctx.strategy.coveredNodes(ctx, version)
  const elsewhere = coverage.nodes
    .filter(
      (n) =>
        readStatus(n.annotations) !== undefined &&
        n.annotations[Annotation.currentVersion] !== undefined &&
        n.annotations[Annotation.currentVersion] !== version,
    )
    .map((n) => `${n.name} (${n.annotations[Annotation.currentVersion]})`)
  if (elsewhere.length > 0) {
    const shown = listed(elsewhere)
    deps.events.emit({
      type: 'info',
      message: `not every node runs ${version} (${shown}); kata-lcm keeps your own values in its run record, and the release keeps its overrides, until they do`,
    })
    return false
  }
  if (!(await ctx.strategy.restoreValues(ctx, chart, version, coverage))) return false
  await deps.cluster.clearRun(ctx.release.namespace, ctx.release.name)
  return true
}
