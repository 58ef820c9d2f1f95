/** Pods: the kata-deploy and verification pods, their waits, eviction for drain, diagnostics. */
import createDebug from 'debug'
import type { CoreV1Api, CoreV1Event, V1Pod, Watch } from '@kubernetes/client-node'
import type { Decide, EvictionResult, PodQuery, PodStore, PodView, WaitResult } from '../ports/cluster.port.js'
import { describeError } from '../lifecycle/errors.js'
import { isNotFound, kubeCall, statusOf, toClusterError } from './kube-errors.js'
import { listInPages, listViews, type ListPage, type PageParams } from './kube-list.js'
import { toPodView } from './kube-views.js'
import { watchUntil, type ListWatchSource, type SharedWatches } from './kube-watch.js'

const debug = createDebug('kata-lcm:kube')

function describeQuery(query: PodQuery): string {
  const selectors = [query.labelSelector, query.fieldSelector].filter(Boolean).join(', ')
  return `pods in ${query.namespace ?? 'all namespaces'}${selectors ? ` (${selectors})` : ''}`
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp
  return t ? new Date(t).getTime() : 0
}

/** Pods through core/v1 and policy/v1 evictions. */
export class KubePods implements PodStore {
  constructor(
    private readonly core: CoreV1Api,
    private readonly watch: Watch,
    private readonly shared: SharedWatches,
  ) {}

  /** One page of the pods `query` picks (kube-list.ts). */
  private page(query: PodQuery, page: PageParams): Promise<ListPage<V1Pod>> {
    const { namespace, labelSelector, fieldSelector } = query
    return kubeCall(`list ${describeQuery(query)}`, { verb: 'list', resource: 'pods', namespace }, () =>
      namespace
        ? this.core.listNamespacedPod({ namespace, labelSelector, fieldSelector, ...page })
        : this.core.listPodForAllNamespaces({ labelSelector, fieldSelector, ...page }),
    )
  }

  /** Read-only; sorted by namespace/name. */
  async listPods(query: PodQuery): Promise<PodView[]> {
    const views = await listViews((page) => this.page(query, page), toPodView)
    return views.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))
  }

  /**
   * Safe to retry: when a retried create meets 409 AlreadyExists because an earlier attempt landed
   * (its response lost), the existing pod is returned if it is the same one (same labels).
   */
  async createPod(namespace: string, manifest: Record<string, unknown>): Promise<PodView> {
    const meta = manifest.metadata as
      { name?: string; generateName?: string; labels?: Record<string, string> } | undefined
    const call = `create pod ${meta?.name ?? meta?.generateName ?? ''} in ${namespace}`
    try {
      return toPodView(await this.core.createNamespacedPod({ namespace, body: manifest as V1Pod }))
    } catch (error) {
      if (statusOf(error) === 409 && meta?.name) {
        const existing = await this.core.readNamespacedPod({ namespace, name: meta.name }).catch(() => undefined)
        const same =
          existing && Object.entries(meta.labels ?? {}).every(([k, v]) => existing.metadata?.labels?.[k] === v)
        if (same) return toPodView(existing)
      }
      throw toClusterError(call, error, { verb: 'create', resource: 'pods', namespace })
    }
  }

  /** Idempotent: a pod that is already gone is not an error. */
  async deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds })
    } catch (error) {
      if (isNotFound(error)) return
      throw toClusterError(`delete pod ${namespace}/${name}`, error, { verb: 'delete', resource: 'pods', namespace })
    }
  }

  /** Read-only; a watch (never a poll), see watchUntil for the guarantees. */
  waitForPods<T>(
    query: PodQuery,
    decide: Decide<PodView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, PodView[]>> {
    const source: ListWatchSource<V1Pod> = {
      what: describeQuery(query),
      path: query.namespace ? `/api/v1/namespaces/${encodeURIComponent(query.namespace)}/pods` : '/api/v1/pods',
      labelSelector: query.labelSelector,
      fieldSelector: query.fieldSelector,
      permission: { resource: 'pods', namespace: query.namespace },
      list: (each) => listInPages((page) => this.page(query, page), each),
    }
    // A collection (the kata-deploy or the verification pods) is shared across waves; a field
    // selector (one node's pods, one pod) is one wait's own.
    return query.fieldSelector
      ? watchUntil(this.watch, source, toPodView, decide, timeoutMs, signal)
      : this.shared.until(source, toPodView, decide, timeoutMs, signal)
  }

  /** Safe to retry: `gone` once the pod is deleted, `blocked` while a PodDisruptionBudget refuses (429). */
  async evictPod(namespace: string, name: string, options: { dryRun?: boolean } = {}): Promise<EvictionResult> {
    try {
      await this.core.createNamespacedPodEviction({
        namespace,
        name,
        body: {
          apiVersion: 'policy/v1',
          kind: 'Eviction',
          metadata: { name, namespace },
          ...(options.dryRun ? { deleteOptions: { dryRun: ['All'] } } : {}),
        },
        ...(options.dryRun ? { dryRun: 'All' } : {}),
      })
      return 'evicted'
    } catch (error) {
      const status = statusOf(error)
      if (status === 429) return 'blocked'
      if (status === 404) return 'gone'
      throw toClusterError(`evict pod ${namespace}/${name}`, error, {
        verb: 'create',
        resource: 'pods/eviction',
        namespace,
      })
    }
  }

  /** Never throws: what cannot be read is left out (and logged under DEBUG=kata-lcm:kube). */
  async podDiagnostics(
    namespace: string,
    name: string,
    tailLines: number,
  ): Promise<{ events: string[]; logTail: string[] }> {
    const events: string[] = []
    const logTail: string[] = []
    try {
      const list = await this.core.listNamespacedEvent({
        namespace,
        fieldSelector: `involvedObject.name=${name},involvedObject.kind=Pod`,
      })
      for (const e of [...list.items].sort((a, b) => eventTime(a) - eventTime(b))) {
        const repeated = (e.count ?? 1) > 1 ? ` (x${e.count})` : ''
        events.push(`${e.reason ?? 'Unknown'}: ${(e.message ?? '').trim()}${repeated}`)
      }
    } catch (error) {
      debug('events of pod %s/%s: %s', namespace, name, describeError(error))
    }
    let containers: string[] = []
    try {
      const pod = await this.core.readNamespacedPod({ namespace, name })
      containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name)
    } catch (error) {
      debug('pod %s/%s: %s', namespace, name, describeError(error))
    }
    for (const container of containers) {
      try {
        const text = await this.core.readNamespacedPodLog({ namespace, name, container, tailLines })
        const lines = String(text ?? '')
          .split('\n')
          .filter((l) => l.length > 0)
          .slice(-tailLines)
        logTail.push(...lines.map((l) => (containers.length > 1 ? `[${container}] ${l}` : l)))
      } catch (error) {
        // Expected for containers that never started; say nothing in the report.
        debug('log of %s/%s[%s]: %s', namespace, name, container, describeError(error))
      }
    }
    return { events, logTail }
  }
}
