import { helmChartInstaller } from './adapters/chart-installer.adapter.js'
import { HelmCli } from './adapters/helm-cli.adapter.js'
import { KubeCluster } from './adapters/kube-cluster.adapter.js'
import { DEFAULT_CAPS, DEFAULT_LIMITS, type AdaptiveLimits } from './adapters/kube-limit.js'

export { DEFAULT_CAPS, DEFAULT_LIMITS }
import { createKubeConfig } from './adapters/kube-config.js'
import { PrometheusAlerts } from './adapters/prometheus-alerts.adapter.js'
import { SystemClock } from './adapters/system-clock.adapter.js'
import type { LifecycleDeps } from './lifecycle/context.js'
import type { ChartInstaller } from './ports/chart.port.js'
import type { EventSink } from './ports/events.port.js'

export interface ConnectionOptions {
  kubeconfig?: string | undefined
  context?: string | undefined
  /** Client-side limits of the API requests (the global flags); defaults when absent. */
  'kube-qps'?: number | undefined
  'kube-burst'?: number | undefined
  'kube-max-in-flight'?: number | undefined
}

/**
 * The client's limits: a `--kube-*` flag given is that limit's cap and where it starts (the operator
 * vouches for the control plane); one not given starts at DEFAULT_LIMITS and may grow to DEFAULT_CAPS.
 * Either way the limiter backs off when the API server throttles or slows (kube-limit.ts). Pure.
 */
export function adaptiveLimits(connection: ConnectionOptions): AdaptiveLimits {
  const qps = connection['kube-qps']
  const burst = connection['kube-burst']
  const maxInFlight = connection['kube-max-in-flight']
  return {
    start: {
      qps: qps ?? DEFAULT_LIMITS.qps,
      burst: burst ?? DEFAULT_LIMITS.burst,
      maxInFlight: maxInFlight ?? DEFAULT_LIMITS.maxInFlight,
    },
    cap: {
      qps: qps ?? DEFAULT_CAPS.qps,
      burst: burst ?? DEFAULT_CAPS.burst,
      maxInFlight: maxInFlight ?? DEFAULT_CAPS.maxInFlight,
    },
  }
}

/**
 * The process's cluster client per connection: a command that looks up the fleet policy before it
 * runs asks twice, and both get one client (one kubeconfig read, one connection pool, one limiter).
 */
const clusters = new Map<string, KubeCluster>()

function clusterFor(connection: ConnectionOptions): KubeCluster {
  const limits = adaptiveLimits(connection)
  const key = JSON.stringify([connection.kubeconfig, connection.context, limits])
  let cluster = clusters.get(key)
  if (!cluster) {
    const kubeConfig = createKubeConfig({
      ...(connection.kubeconfig ? { kubeconfig: connection.kubeconfig } : {}),
      ...(connection.context ? { context: connection.context } : {}),
    })
    cluster = new KubeCluster(kubeConfig, { limits })
    clusters.set(key, cluster)
  }
  return cluster
}

/** Wires the real adapters. The one place that knows which implementation backs each port. */
export function createDeps(connection: ConnectionOptions, events: EventSink): LifecycleDeps {
  return {
    cluster: clusterFor(connection),
    helm: new HelmCli({
      ...(connection.kubeconfig ? { kubeconfig: connection.kubeconfig } : {}),
      ...(connection.context ? { kubeContext: connection.context } : {}),
    }),
    clock: new SystemClock(),
    events,
    alerts: new PrometheusAlerts(),
  }
}

/** The bundled chart's installer (helm) for `install-workflow`, on the cluster the flags name. */
export function createChartInstaller(connection: ConnectionOptions): ChartInstaller {
  return helmChartInstaller(connection)
}
