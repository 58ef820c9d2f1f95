import { helmChartInstaller } from './adapters/chart-installer.adapter.js'
import { HelmCli } from './adapters/helm-cli.adapter.js'
import { KubeCluster } from './adapters/kube-cluster.adapter.js'
import { DEFAULT_LIMITS } from './adapters/kube-limit.js'

export { DEFAULT_LIMITS }
import { createKubeConfig } from './adapters/kube-config.js'
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

/** Wires the real adapters. The one place that knows which implementation backs each port. */
export function createDeps(connection: ConnectionOptions, events: EventSink): LifecycleDeps {
  const kubeConfig = createKubeConfig({
    ...(connection.kubeconfig ? { kubeconfig: connection.kubeconfig } : {}),
    ...(connection.context ? { context: connection.context } : {}),
  })
  return {
    cluster: new KubeCluster(kubeConfig, {
      limits: {
        qps: connection['kube-qps'] ?? DEFAULT_LIMITS.qps,
        burst: connection['kube-burst'] ?? DEFAULT_LIMITS.burst,
        maxInFlight: connection['kube-max-in-flight'] ?? DEFAULT_LIMITS.maxInFlight,
      },
    }),
    helm: new HelmCli({
      ...(connection.kubeconfig ? { kubeconfig: connection.kubeconfig } : {}),
      ...(connection.context ? { kubeContext: connection.context } : {}),
    }),
    clock: new SystemClock(),
    events,
  }
}

/** The bundled chart's installer (helm) for `install-workflow`, on the cluster the flags name. */
export function createChartInstaller(connection: ConnectionOptions): ChartInstaller {
  return helmChartInstaller(connection)
}
