import { daemonSetStrategy } from './daemonset.strategy.js'
import { jobStrategy } from './job.strategy.js'
import { PreconditionError } from '../errors.js'
import type { Values } from '../settings/values.js'
import type { DeploymentMode, DeploymentStrategy } from './strategy.js'

/** Every mode kata-lcm drives, each a strategy: a new mode is one entry here (and its strategy file). */
export const STRATEGIES: readonly DeploymentStrategy[] = [daemonSetStrategy, jobStrategy]

/**
 * What the rest of kata-lcm knows of the modes, derived from `strategies` alone: their names, a
 * mode's strategy, the mode a release is in, and a run record's. Nothing outside modes/ lists the
 * modes (the policy's schema and the flags take `DEPLOYMENT_MODES`). Pure.
 */
export function modeTable(strategies: readonly DeploymentStrategy[]) {
  const byMode = new Map<string, DeploymentStrategy>(strategies.map((s) => [s.mode, s]))
  const isDeploymentMode = (value: unknown): value is DeploymentMode => typeof value === 'string' && byMode.has(value)
  const known = () => strategies.map((s) => s.mode).join(' and ')
  return {
    DEPLOYMENT_MODES: strategies.map((s) => s.mode),
    /** The strategy for a mode. */
    strategyFor: (mode: DeploymentMode): DeploymentStrategy => byMode.get(mode)!,
    /** The mode a release is in: `deploymentMode` from its coalesced values; absent (< 3.32.0) = the first mode, daemonset. Pure. */
    detectMode: (allValues: Values): string => {
      const mode = allValues.deploymentMode
      return mode === undefined || mode === null || mode === '' ? strategies[0]!.mode : String(mode)
    },
    /** Whether `value` names a mode kata-lcm knows. */
    isDeploymentMode,
    /** The strategy of a run record's mode, which is checked: a record edited by hand or by another tool is refused. */
    strategyOfRecord: (mode: unknown): DeploymentStrategy => {
      if (!isDeploymentMode(mode))
        throw new PreconditionError(
          `the run record names deployment mode "${String(mode)}"; kata-lcm knows ${known()}`,
          {
            suggestions: ['inspect it: kata-lcm status; forget it with kata-lcm unlock --forget-run'],
          },
        )
      return byMode.get(mode)!
    },
  }
}

export const { DEPLOYMENT_MODES, strategyFor, detectMode, isDeploymentMode, strategyOfRecord } = modeTable(STRATEGIES)

/** The choices of a mode flag, in words: `auto, daemonset or job` (`auto` as given). Pure. */
export function modeChoices(auto = 'auto'): string {
  const all = [auto, ...DEPLOYMENT_MODES]
  return `${all.slice(0, -1).join(', ')} or ${all.at(-1)!}`
}
