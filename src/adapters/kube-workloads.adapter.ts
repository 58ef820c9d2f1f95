/** kata-deploy's workloads: its DaemonSet (and the revision pods must carry) and its install Jobs. */
import type { AppsV1Api, BatchV1Api, V1DaemonSet, V1Job, Watch } from '@kubernetes/client-node'
import type { DaemonSetView, Decide, JobView, WaitResult, WorkloadStore } from '../ports/cluster.port.js'
import { TimeoutError } from '../lifecycle/errors.js'
import { isNotFound, kubeCall, notFoundError, toClusterError } from './kube-errors.js'
import { listInPages, listViews, type ListPage, type PageParams } from './kube-list.js'
import { toDaemonSetView, toJobView } from './kube-views.js'
import { watchUntil, type ListWatchSource, type SharedWatches } from './kube-watch.js'

/** The label the DaemonSet controller puts on its ControllerRevisions and pods. */
const REVISION_HASH_LABEL = 'controller-revision-hash'

/** DaemonSets, ControllerRevisions and Jobs through apps/v1 and batch/v1. */
export class KubeWorkloads implements WorkloadStore {
  constructor(
    private readonly apps: AppsV1Api,
    private readonly batch: BatchV1Api,
    private readonly watch: Watch,
    private readonly shared: SharedWatches,
  ) {}

  /** The revision hash found per DaemonSet uid and generation: a generation's revision never changes. */
  private readonly revisions = new Map<string, string>()

  /** Read-only; undefined when the DaemonSet does not exist. */
  async getDaemonSet(namespace: string, name: string): Promise<DaemonSetView | undefined> {
    try {
      return toDaemonSetView(await this.apps.readNamespacedDaemonSet({ namespace, name }))
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw toClusterError(`get daemonset ${namespace}/${name}`, error, {
        verb: 'get',
        resource: 'daemonsets.apps',
        namespace,
      })
    }
  }

  /**
   * Read-only. Waits (watch) until the controller observed the DaemonSet's latest generation, so the
   * hash is the one new pods get; throws a TimeoutError after `timeoutMs`, a ClusterError when the
   * DaemonSet is missing.
   */
  async daemonSetRevisionHash(
    namespace: string,
    name: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<string> {
    const source: ListWatchSource<V1DaemonSet> = {
      what: `daemonset ${namespace}/${name}`,
      path: `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/daemonsets`,
      fieldSelector: `metadata.name=${name}`,
      permission: { resource: 'daemonsets.apps', namespace },
      list: (each) =>
        listInPages(
          (page) =>
            kubeCall(
              `list daemonset ${namespace}/${name}`,
              { verb: 'list', resource: 'daemonsets.apps', namespace },
              () => this.apps.listNamespacedDaemonSet({ namespace, fieldSelector: `metadata.name=${name}`, ...page }),
            ),
          each,
        ),
    }
    // Shared while watches are kept (a run's waves ask once per wave).
    const observed = await this.shared.until(
      source,
      (ds) => ds,
      ([ds]) => {
        if (!ds) throw notFoundError(`get daemonset ${namespace}/${name}`, 'daemonset')
        return (ds.status?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1) ? ds : undefined
      },
      timeoutMs,
      signal,
    )
    if (!observed.done) {
      const ds = observed.last[0]
      throw new TimeoutError(
        `daemonset ${namespace}/${name}: controller did not observe generation ${ds?.metadata?.generation} within ${Math.round(timeoutMs / 1000)}s (observed ${ds?.status?.observedGeneration ?? 'none'})`,
        { suggestions: ['is kube-controller-manager running? kubectl -n kube-system get pods'] },
      )
    }
    const uid = observed.value.metadata?.uid
    const key = `${uid}/${observed.value.metadata?.generation}`
    const known = this.revisions.get(key)
    if (known) return known
    const revisions = await kubeCall(
      `list controllerrevisions in ${namespace}`,
      { verb: 'list', resource: 'controllerrevisions.apps', namespace },
      () => this.apps.listNamespacedControllerRevision({ namespace }),
    )
    const newest = revisions.items
      .filter((r) => r.metadata?.ownerReferences?.some((o) => o.uid === uid))
      .sort((a, b) => b.revision - a.revision)[0]
    // The controller names revisions `<daemonset>-<hash>`: the fallback if the label is ever missing.
    const hash = newest?.metadata?.labels?.[REVISION_HASH_LABEL] ?? newest?.metadata?.name?.slice(name.length + 1)
    if (!hash)
      throw notFoundError(
        `find the current revision of daemonset ${namespace}/${name}`,
        'a ControllerRevision owned by it',
      )
    this.revisions.set(key, hash)
    return hash
  }

  /** Read-only; sorted by name. */
  async listJobs(namespace: string, labelSelector?: string): Promise<JobView[]> {
    const views = await listViews((page) => this.jobPage(namespace, labelSelector, page), toJobView)
    return views.sort((a, b) => a.name.localeCompare(b.name))
  }

  /** Read-only; a watch (never a poll), see watchUntil for the guarantees. */
  waitForJobs<T>(
    namespace: string,
    labelSelector: string,
    decide: Decide<JobView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, JobView[]>> {
    const source: ListWatchSource<V1Job> = {
      what: `jobs in ${namespace} (${labelSelector})`,
      path: `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`,
      labelSelector,
      permission: { resource: 'jobs.batch', namespace },
      list: (each) => listInPages((page) => this.jobPage(namespace, labelSelector, page), each),
    }
    return watchUntil(this.watch, source, toJobView, decide, timeoutMs, signal)
  }

  /** One page of the Jobs (kube-list.ts): a fleet has an install Job per node. */
  private jobPage(namespace: string, labelSelector: string | undefined, page: PageParams): Promise<ListPage<V1Job>> {
    return kubeCall(
      `list jobs in ${namespace}${labelSelector ? ` (${labelSelector})` : ''}`,
      { verb: 'list', resource: 'jobs.batch', namespace },
      () => this.batch.listNamespacedJob({ namespace, labelSelector, ...page }),
    )
  }
}
