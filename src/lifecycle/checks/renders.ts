import { HelmError, InputError } from '../errors.js'
import type { RunContext } from '../modes/strategy.js'

/**
 * Renders (`helm template`) every helm upgrade the run can make, with the exact values kata-lcm
 * will pass: the target's (each distinct one), a rollback's, and the one putting the operator's
 * values back. A chart that refuses them (kata-deploy 4.1.0 refuses `job.nodeSelector`, say) is
 * found here, before any node is cordoned: an InputError naming the chart flag, with helm's reason.
 * Read-only.
 */
export async function checkRenders(ctx: RunContext, waves: string[][]): Promise<void> {
  if (waves.length === 0) return
  const upgrades = ctx.strategy.plannedUpgrades(ctx, waves)
  const checks = [
    // Waves differ only in job.nodes: the first wave's render stands for them all.
    { flag: '--chart', version: ctx.targetVersion, request: upgrades[0]! },
    {
      flag: ctx.previousChart === ctx.chart ? '--chart' : '--previous-chart',
      version: ctx.previousVersion,
      request: ctx.strategy.plannedRevert(ctx, waves[0]!),
    },
  ]
  // Both render at once (two helm processes); a refusal is reported in this order.
  const renders = await Promise.allSettled(checks.map((c) => ctx.deps.helm.render(c.request)))
  for (const [i, { flag, version }] of checks.entries()) {
    const render = renders[i]!
    if (render.status === 'rejected') {
      const error: unknown = render.reason
      if (!(error instanceof HelmError)) throw error
      const reason = error.message.replace(/^helm template failed \([^)]*\): /, '').replace(/^Error:\s*/, '')
      throw new InputError(flag, `kata-deploy ${version} refuses the values kata-lcm would install: ${reason}`, {
        cause: error,
        suggestions: [
          "the values are the release's own (helm get values) plus what kata-lcm sets for the mode; fix the release's values or pick another version",
        ],
      })
    }
  }
}
