import { daemonSetStrategy } from './daemonset.strategy.js'
import { jobStrategy } from './job.strategy.js'
import { PreconditionError } from '../errors.js'
import type { Values } from '../values.js'
import type { DeploymentMode, DeploymentStrategy } from './strategy.js'

const STRATEGIES: Record<DeploymentMode, DeploymentStrategy> = {
  daemonset: daemonSetStrategy,
  job: jobStrategy,
}

/** The strategy for a mode. */
export function strategyFor(mode: DeploymentMode): DeploymentStrategy {
  return STRATEGIES[mode]
}

export const DEPLOYMENT_MODES = Object.keys(STRATEGIES) as DeploymentMode[]

/** The mode a release is in: `deploymentMode` from its coalesced values; absent (< 3.32.0) = daemonset. Pure. */
export function detectMode(allValues: Values): string {
  const mode = allValues.deploymentMode
  return mode === undefined || mode === null || mode === '' ? daemonSetStrategy.mode : String(mode)
}

/** Whether `value` names a mode kata-lcm knows. */
export function isDeploymentMode(value: unknown): value is DeploymentMode {
  return typeof value === 'string' && Object.hasOwn(STRATEGIES, value)
}

/** The strategy of a run record's mode, which is checked: a record edited by hand or by another tool is refused. */
export function strategyOfRecord(mode: unknown): DeploymentStrategy {
  if (!isDeploymentMode(mode))
    throw new PreconditionError(
      `the run record names deployment mode "${String(mode)}"; kata-lcm knows ${Object.keys(STRATEGIES).join(' and ')}`,
      { suggestions: ['inspect it: kata-lcm status; forget it with kata-lcm unlock --forget-run'] },
    )
  return STRATEGIES[mode]
}
