import type { Alerts } from '../ports/alerts.port.js'
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
  /** The alert gate's Prometheus client (only a run with an alert gate asks it). */
  alerts?: Alerts
  /** Random suffixes (pod names, run ids); injectable so tests are deterministic. */
  randomId?: () => string
}

/** The kata-deploy release kata-lcm drives. */
export interface ReleaseRef {
  name: string
  namespace: string
}

/** Where kata-deploy's own objects are found. */
export interface KataDeployNames {
  daemonSet: string
  podSelector: string
}

/**
 * The chart names its DaemonSet and pods `kata-deploy`, or `kata-deploy-<suffix>` when the release
 * sets `env.multiInstallSuffix` (several installs side by side). Pure.
 */
export function kataDeployNames(values: Record<string, unknown>): KataDeployNames {
  const suffix = (values.env as { multiInstallSuffix?: unknown } | undefined)?.multiInstallSuffix
  const base = typeof suffix === 'string' && suffix !== '' ? `kata-deploy-${suffix}` : 'kata-deploy'
  return { daemonSet: base, podSelector: `name=${base}` }
}

export function randomSuffix(deps: LifecycleDeps): string {
  return deps.randomId ? deps.randomId() : Math.random().toString(36).slice(2, 7)
}
