/** The Cluster port on @kubernetes/client-node: three small stores behind one facade. */
import {
  AppsV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  NodeV1Api,
  Watch,
  type KubeConfig,
} from '@kubernetes/client-node'
import type {
  AccessCheck,
  Cluster,
  DaemonSetView,
  Decide,
  HelmRevisionView,
  EvictionResult,
  JobView,
  LockAttempt,
  LockInfo,
  NodeEvent,
  NodePatch,
  NodeView,
  PodQuery,
  PodView,
  RunRecord,
  StoredRelease,
  WaitResult,
} from '../ports/cluster.port.js'
import { defaultUserAgent, withUserAgent } from './kube-config.js'
import { isNotFound, kubeCall, statusOf, toClusterError } from './kube-errors.js'
import { KubeNodes } from './kube-nodes.adapter.js'
import { KubePods } from './kube-pods.adapter.js'
import { SharedWatches } from './kube-watch.js'
import {
  DEFAULT_CAPS,
  DEFAULT_LIMITS,
  formatLimits,
  limited,
  parseLimits,
  RequestLimiter,
  type AdaptiveLimits,
  type RequestLimits,
} from './kube-limit.js'
import { DEFAULT_RETRY, retrying, type RetryPolicy } from './kube-retry.js'
import { HANDED_LIMITS, KubeState } from './kube-state.adapter.js'
import { KubeWorkloads } from './kube-workloads.adapter.js'

/** Knobs of KubeCluster; all optional. */
export interface KubeClusterOptions {
  /** Sent on every request (API calls and watches); default `kata-lcm/<version>`. */
  userAgent?: string
  /** How failed calls are retried; default DEFAULT_RETRY (tests shorten the waits). */
  retry?: RetryPolicy
  /** Client-side request limits (QPS, burst, in flight): fixed, or where they start and their cap; default DEFAULT_LIMITS up to DEFAULT_CAPS. */
  limits?: RequestLimits | AdaptiveLimits
}

/**
 * Cluster backed by a real API server. Every request carries the kata-lcm user agent; every wait
 * is a list+watch with a deadline; every failure is a ClusterError naming the call.
 */
export class KubeCluster implements Cluster {
  private readonly core: CoreV1Api
  private readonly nodes: KubeNodes
  private readonly pods: KubePods
  private readonly watches: SharedWatches
  private readonly workloads: KubeWorkloads
  private readonly state: KubeState
  private readonly authorization: AuthorizationV1Api
  private readonly node: NodeV1Api
  /** One limiter for every call this process makes to the API server (retries included). */
  private readonly limiter: RequestLimiter

  constructor(kubeConfig: KubeConfig, options: KubeClusterOptions = {}) {
    const kc = withUserAgent(kubeConfig, options.userAgent ?? defaultUserAgent())
    const watch = new Watch(kc)
    const policy = options.retry ?? DEFAULT_RETRY
    const limiter = new RequestLimiter(options.limits ?? { start: DEFAULT_LIMITS, cap: DEFAULT_CAPS })
    this.limiter = limiter
    this.core = retrying(limited(kc.makeApiClient(CoreV1Api), limiter), policy)
    this.watches = new SharedWatches(watch)
    this.nodes = new KubeNodes(
      this.core,
      this.watches,
      retrying(limited(kc.makeApiClient(CoreV1Api), limiter, 'background'), policy),
    )
    this.pods = new KubePods(this.core, watch, this.watches)
    this.workloads = new KubeWorkloads(
      retrying(limited(kc.makeApiClient(AppsV1Api), limiter), policy),
      retrying(limited(kc.makeApiClient(BatchV1Api), limiter), policy),
      watch,
      this.watches,
    )
    this.state = new KubeState(
      this.core,
      retrying(limited(kc.makeApiClient(CoordinationV1Api), limiter), policy),
      watch,
    )
    this.authorization = retrying(limited(kc.makeApiClient(AuthorizationV1Api), limiter), policy)
    this.node = retrying(limited(kc.makeApiClient(NodeV1Api), limiter), policy)
  }

  /** The client limits in force now (they adapt to the control plane: kube-limit.ts). */
  clientLimits(): RequestLimits {
    return { ...this.limiter.limits }
  }

  /** One SelfSubjectAccessReview per check, concurrently. Read-only. */
  async deniedAccess(checks: readonly AccessCheck[]): Promise<AccessCheck[]> {
    const verdicts = await Promise.all(
      checks.map(async (check) => {
        const [resource, subresource] = check.resource.split('/') as [string, string | undefined]
        const [plural, ...group] = resource.split('.')
        const review = await kubeCall(
          `can-i ${check.verb} ${check.resource}`,
          { verb: 'create', resource: 'selfsubjectaccessreviews.authorization.k8s.io' },
          () =>
            this.authorization.createSelfSubjectAccessReview({
              body: {
                spec: {
                  resourceAttributes: {
                    verb: check.verb,
                    resource: plural,
                    group: group.join('.'),
                    ...(subresource ? { subresource } : {}),
                    ...(check.namespace ? { namespace: check.namespace } : {}),
                  },
                },
              },
            }),
        )
        return review.status?.allowed === true
      }),
    )
    return checks.filter((_, i) => !verdicts[i])
  }

  /** Read-only: one `get namespace`. */
  async namespaceExists(name: string): Promise<boolean> {
    try {
      await this.core.readNamespace({ name })
      return true
    } catch (error) {
      if (isNotFound(error)) return false
      // Not allowed to read namespaces: the access checks will say what is missing.
      if (statusOf(error) === 403) return true
      throw toClusterError(`get namespace ${name}`, error, { verb: 'get', resource: 'namespaces' })
    }
  }

  /** Read-only: one `list nodes?limit=1`. */
  async ping(): Promise<void> {
    await kubeCall('list nodes (connectivity check)', { verb: 'list', resource: 'nodes' }, () =>
      this.core.listNode({ limit: 1 }),
    )
  }

  listNodes(labelSelector?: string): Promise<NodeView[]> {
    return this.nodes.listNodes(labelSelector)
  }
  getNode(name: string): Promise<NodeView | undefined> {
    return this.nodes.getNode(name)
  }
  patchNode(name: string, patch: NodePatch): Promise<NodeView> {
    return this.nodes.patchNode(name, patch)
  }
  recordNodeEvent(node: NodeView, event: NodeEvent): Promise<void> {
    return this.nodes.recordNodeEvent(node, event)
  }
  waitForNodes<T>(
    labelSelector: string | undefined,
    decide: Decide<NodeView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, NodeView[]>> {
    return this.nodes.waitForNodes(labelSelector, decide, timeoutMs, signal)
  }

  listPods(query: PodQuery): Promise<PodView[]> {
    return this.pods.listPods(query)
  }
  createPod(namespace: string, manifest: Record<string, unknown>): Promise<PodView> {
    return this.pods.createPod(namespace, manifest)
  }
  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
    return this.pods.deletePod(namespace, name, gracePeriodSeconds)
  }
  keepWatches(): () => void {
    return this.watches.keep()
  }

  waitForPods<T>(
    query: PodQuery,
    decide: Decide<PodView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, PodView[]>> {
    return this.pods.waitForPods(query, decide, timeoutMs, signal)
  }
  evictPod(namespace: string, name: string, options?: { dryRun?: boolean }): Promise<EvictionResult> {
    return this.pods.evictPod(namespace, name, options)
  }
  podDiagnostics(namespace: string, name: string, tailLines: number): Promise<{ events: string[]; logTail: string[] }> {
    return this.pods.podDiagnostics(namespace, name, tailLines)
  }

  getDaemonSet(namespace: string, name: string): Promise<DaemonSetView | undefined> {
    return this.workloads.getDaemonSet(namespace, name)
  }
  daemonSetRevisionHash(namespace: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    return this.workloads.daemonSetRevisionHash(namespace, name, timeoutMs, signal)
  }
  listJobs(namespace: string, labelSelector?: string): Promise<JobView[]> {
    return this.workloads.listJobs(namespace, labelSelector)
  }
  waitForJobs<T>(
    namespace: string,
    labelSelector: string,
    decide: Decide<JobView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, JobView[]>> {
    return this.workloads.waitForJobs(namespace, labelSelector, decide, timeoutMs, signal)
  }

  readRun(namespace: string, release: string): Promise<RunRecord | undefined> {
    return this.state.readRun(namespace, release)
  }

  waitForRun<T>(
    namespace: string,
    release: string,
    decide: (record: RunRecord | undefined) => T | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, RunRecord | undefined>> {
    return this.state.waitForRun(namespace, release, decide, timeoutMs, signal)
  }

  readPolicy(namespace: string): Promise<string | undefined> {
    return this.state.readPolicy(namespace)
  }

  writePolicy(namespace: string, text: string): Promise<void> {
    return this.state.writePolicy(namespace, text)
  }

  /** Read-only. */
  async listRuntimeClasses(): Promise<{ name: string; handler: string }[]> {
    const list = await kubeCall('list runtimeclasses', { verb: 'list', resource: 'runtimeclasses.node.k8s.io' }, () =>
      this.node.listRuntimeClass(),
    )
    return list.items.map((rc) => ({ name: rc.metadata?.name ?? '', handler: rc.handler }))
  }

  helmStoredRelease(namespace: string, release: string): Promise<StoredRelease | undefined> {
    return this.state.helmStoredRelease(namespace, release)
  }
  waitForHelmRevisions<T>(
    namespace: string,
    release: string,
    decide: Decide<HelmRevisionView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, HelmRevisionView[]>> {
    return this.state.waitForHelmRevisions(namespace, release, decide, timeoutMs, signal)
  }
  writeRun(record: RunRecord): Promise<void> {
    return this.state.writeRun(record)
  }
  clearRun(namespace: string, release: string): Promise<void> {
    return this.state.clearRun(namespace, release)
  }
  /** Taken again by the same holder (an Argo step after the last), the client limits start where the last left them. */
  async tryLock(namespace: string, name: string, holder: string, ttlSeconds: number, now: Date): Promise<LockAttempt> {
    const attempt = await this.state.tryLock(namespace, name, holder, ttlSeconds, now)
    if (!attempt.acquired) return attempt
    const handed = parseLimits(attempt.handedLimits)
    if (handed) this.limiter.warmTo(handed)
    return { acquired: true }
  }
  renewLock(namespace: string, name: string, holder: string, now: Date): Promise<boolean> {
    return this.state.renewLock(namespace, name, holder, now)
  }
  /** Renews the lease with the client limits this process reached, for the holder's next process. */
  handOverLock(namespace: string, name: string, holder: string, now: Date): Promise<boolean> {
    return this.state.renewLock(namespace, name, holder, now, { [HANDED_LIMITS]: formatLimits(this.limiter.limits) })
  }
  unlock(namespace: string, name: string, holder?: string): Promise<LockInfo | undefined> {
    return this.state.unlock(namespace, name, holder)
  }
}
