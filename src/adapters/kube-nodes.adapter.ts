/** Nodes: read, merge-patch (only the keys we own), and Events on the Node for `kubectl describe`. */
import { hostname } from 'node:os'
import createDebug from 'debug'
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Node } from '@kubernetes/client-node'
import type { Decide, NodeEvent, NodePatch, NodeStore, NodeView, WaitResult } from '../ports/cluster.port.js'
import { isNotFound, kubeCall, notFoundError, toClusterError } from './kube-errors.js'
import { listInPages, listViews, type ListPage, type PageParams } from './kube-list.js'
import { toNodeView } from './kube-views.js'
import type { SharedWatches } from './kube-watch.js'

const debug = createDebug('kata-lcm:kube')

/** The component name Events are reported under. */
export const EVENT_SOURCE = 'kata-lcm'

/**
 * Nodes through core/v1. `patchNode` sends ONE merge patch naming only the keys it changes, so
 * concurrent writers of other annotations, labels and taints are never overwritten.
 */
export class KubeNodes implements NodeStore {
  constructor(
    private readonly core: CoreV1Api,
    private readonly shared: SharedWatches,
    /** For the Events only: the client's background lane (kube-limit.ts), behind the work's own requests. */
    private readonly events: CoreV1Api = core,
  ) {}

  /** One page of the nodes `labelSelector` picks (kube-list.ts). */
  private page(labelSelector: string | undefined, page: PageParams): Promise<ListPage<V1Node>> {
    return kubeCall(
      `list nodes${labelSelector ? ` (${labelSelector})` : ''}`,
      { verb: 'list', resource: 'nodes' },
      () => this.core.listNode({ labelSelector, ...page }),
    )
  }

  /** Read-only. */
  async listNodes(labelSelector?: string): Promise<NodeView[]> {
    const views = await listViews((page) => this.page(labelSelector, page), toNodeView)
    return views.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  waitForNodes<T>(
    labelSelector: string | undefined,
    decide: Decide<NodeView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, NodeView[]>> {
    return this.shared.until(
      {
        what: `nodes${labelSelector ? ` (${labelSelector})` : ''}`,
        path: '/api/v1/nodes',
        labelSelector,
        permission: { resource: 'nodes' },
        list: (each) => listInPages((page) => this.page(labelSelector, page), each),
      },
      toNodeView,
      decide,
      timeoutMs,
      signal,
    )
  }

  /** Read-only; undefined when the node does not exist. */
  async getNode(name: string): Promise<NodeView | undefined> {
    try {
      return toNodeView(await this.core.readNode({ name }))
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw toClusterError(`get node ${name}`, error, { verb: 'get', resource: 'nodes' })
    }
  }

  /** Idempotent: the same patch twice leaves the same node. Only the named keys change. */
  async patchNode(name: string, patch: NodePatch): Promise<NodeView> {
    const body: {
      metadata?: { annotations: Record<string, string | null> }
      spec?: { unschedulable: boolean | null }
    } = {}
    if (patch.annotations && Object.keys(patch.annotations).length > 0)
      body.metadata = { annotations: { ...patch.annotations } }
    // `false` is written as null (field removed), which is what `kubectl uncordon` leaves behind.
    if (patch.unschedulable !== undefined) body.spec = { unschedulable: patch.unschedulable ? true : null }
    if (!body.metadata && !body.spec) {
      const node = await this.getNode(name)
      if (!node) throw notFoundError(`patch node ${name}`, 'node')
      return node
    }
    debug('patch node %s %j', name, body)
    const node = await kubeCall(`patch node ${name}`, { verb: 'patch', resource: 'nodes' }, () =>
      this.core.patchNode({ name, body }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    )
    return toNodeView(node)
  }

  /** Best effort: never throws (a failure is only logged under DEBUG=kata-lcm:kube). */
  async recordNodeEvent(node: NodeView, event: NodeEvent): Promise<void> {
    const now = new Date()
    try {
      await this.events.createNamespacedEvent({
        // Node Events live in `default`, like the kubelet's, where `kubectl describe node` finds them.
        namespace: 'default',
        body: {
          metadata: { generateName: `${node.name}.kata-lcm.`, namespace: 'default' },
          involvedObject: { kind: 'Node', apiVersion: 'v1', name: node.name, uid: node.uid },
          reason: event.reason,
          message: event.message,
          type: event.type,
          source: { component: EVENT_SOURCE, host: hostname() },
          reportingComponent: EVENT_SOURCE,
          reportingInstance: hostname(),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
    } catch (error) {
      debug(
        'recording event %s on node %s failed: %s',
        event.reason,
        node.name,
        toClusterError('create event', error).message,
      )
    }
  }
}
