import { daemonSetStrategy } from './daemonset.strategy.js'
import { jobStrategy } from './job.strategy.js'
import type { DeploymentMode, DeploymentStrategy } from './strategy.js'

const STRATEGIES: Record<DeploymentMode, DeploymentStrategy> = {
  daemonset: daemonSetStrategy,
  job: jobStrategy,
}

/** The strategy for a mode. */
export function strategyFor(mode: DeploymentMode): DeploymentStrategy {
  return STRATEGIES[mode]
}
