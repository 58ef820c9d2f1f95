import type { Cluster } from '../ports/cluster.port.js'
import type { Clock } from '../ports/clock.port.js'
import type { EventSink } from '../ports/events.port.js'
import type { Helm } from '../ports/helm.port.js'

/** The ports every service needs; `createDeps()` wires the real ones, tests pass fakes. */
export interface LifecycleDeps {
  cluster: Cluster
  helm: Helm
  clock: Clock
  events: EventSink
  /** Random suffixes (pod names, run ids); injectable so tests are deterministic. */
  randomId?: () => string
}

/** The kata-deploy release kata-lcm drives. */
export interface ReleaseRef {
  name: string
  namespace: string
}

/** Where kata-deploy's own objects are found; fixed by the chart. */
export const KATA_DEPLOY = {
  daemonSet: 'kata-deploy',
  podSelector: 'name=kata-deploy',
} as const

export function randomSuffix(deps: LifecycleDeps): string {
  return deps.randomId ? deps.randomId() : Math.random().toString(36).slice(2, 7)
}
