import type {
  AccessCheck,
  Cluster,
  DaemonSetView,
  Decide,
  EvictionResult,
  HelmRevisionView,
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
  Taint,
  WaitResult,
} from '../../src/ports/cluster.port.js'
import { ClusterError, TimeoutError } from '../../src/lifecycle/errors.js'
import {
  ClusterStore,
  DEFAULT_TIMINGS,
  podKey,
  type StoredPod,
  type Timings,
  type Toleration,
} from './cluster-store.js'
import type { FakeClock } from './fake-clock.js'
import { DAEMONSET_NAME, KataDeploySim, REVISION_LABEL, revisionHashOf, type ReleaseApply } from './kata-deploy-sim.js'
import {
  runVerificationPod,
  targetNodeOf,
  toScript,
  type VerificationBehaviour,
  type VerificationScript,
} from './kubelet-sim.js'
import { fieldMatcher, labelMatcher } from './selectors.js'

/** One mutating call made through the ports (helm upgrades included, see FakeHelm). */
export interface WriteRecord {
  seq: number
  /** Virtual time of the call (ms since the FakeClock started). */
  at: number
  verb: 'patch' | 'create' | 'update' | 'delete' | 'upgrade' | 'rollback'
  resource: string
  name: string
  namespace?: string
  /** The node the write is about (the node itself, a pod on it, an Event on it). */
  node?: string
  detail?: unknown
  /** The call was refused by an injected failure. */
  failed?: boolean
}

export interface FailureRule {
  verb: WriteRecord['verb']
  resource: string
  name?: string
  when?: (write: WriteRecord) => boolean
  /** How many calls fail (default 1; Infinity for all). */
  times?: number
  error?: Error
}

export interface NodeSeed {
  name: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  taints?: Taint[]
  unschedulable?: boolean
}

export interface PodSeed {
  namespace: string
  name: string
  node: string
  /** Default ['ReplicaSet']; [] is a pod no controller manages. */
  ownerKinds?: string[]
  mirror?: boolean
  emptyDirs?: string[]
  phase?: 'Running' | 'Succeeded' | 'Failed'
  labels?: Record<string, string>
  /** A Kata workload names a Kata RuntimeClass (the fake's `runtimeClasses` says which are). */
  runtimeClassName?: string
}

const clone = <T>(value: T): T => structuredClone(value)

/**
 * An in-memory Kubernetes that behaves like the real one where the lifecycle can tell: merge
 * patches, terminating pods, a DaemonSet controller, a kubelet for verification pods, install Jobs,
 * PDB-refused evictions, and watches driven by changes with deadlines on the FakeClock.
 */
export class FakeCluster implements Cluster {
  readonly store: ClusterStore
  readonly kataDeploy: KataDeploySim
  /** Every mutating call, in order. */
  readonly writes: WriteRecord[] = []
  /** Every read call by method name, in order. */
  readonly reads: string[] = []
  /** Node Events recorded through recordNodeEvent. */
  readonly nodeEvents: (NodeEvent & { node: string })[] = []
  /** How the kubelet treats verification pods, per node (default: succeed). */
  readonly verification = new Map<string, VerificationBehaviour | VerificationScript>()
  /** PodDisruptionBudget refusals left per `namespace/name` (Infinity: always refused). */
  readonly evictionBlocks = new Map<string, number>()
  /** Node name -> virtual ms its next patch takes before the API server applies it (a slow answer). */
  readonly slowNextPatch = new Map<string, number>()
  /** Run records (ConfigMaps) by `namespace/release`. */
  readonly runs = new Map<string, RunRecord>()
  /** Leases by `namespace/name`. */
  readonly leases = new Map<string, LockInfo>()
  reachable = true
  private failures: FailureRule[] = []
  private seq = 0
  private hooks: { when: (w: WriteRecord) => boolean; fn: () => void }[] = []

  constructor(
    readonly clock: FakeClock,
    timings: Partial<Timings> = {},
  ) {
    this.store = new ClusterStore(clock, { ...DEFAULT_TIMINGS, ...timings })
    this.kataDeploy = new KataDeploySim(this.store)
  }

  // ---- test set-up and inspection (not port calls; never logged) ----

  addNode(seed: NodeSeed): NodeView {
    const node: NodeView = {
      name: seed.name,
      uid: `node-uid-${seed.name}`,
      labels: { 'kubernetes.io/hostname': seed.name, ...seed.labels },
      annotations: { ...seed.annotations },
      taints: clone(seed.taints ?? []),
      unschedulable: seed.unschedulable ?? false,
      ready: true,
    }
    this.store.nodes.set(seed.name, node)
    this.store.changed()
    return clone(node)
  }

  /** Changes a node behind the lifecycle's back (an operator, another tool). */
  setNode(name: string, change: Partial<Omit<NodeView, 'name' | 'uid'>>): void {
    Object.assign(this.mustNode(name), clone(change))
    this.store.changed()
  }

  /**
   * Deletes a node behind the lifecycle's back (an autoscaler's scale-down, a reclaimed spot
   * instance). Its pods stay, as on a real cluster until the pod garbage collector's quarantine
   * (40 s) has passed; the DaemonSet controller makes no new pod for it.
   */
  deleteNode(name: string): void {
    this.mustNode(name)
    this.store.nodes.delete(name)
    this.store.changed()
  }

  node(name: string): NodeView {
    return clone(this.mustNode(name))
  }

  /** A workload pod, Running and Ready unless said otherwise. */
  addPod(seed: PodSeed): PodView {
    const pod = this.store.newPod({
      namespace: seed.namespace,
      name: seed.name,
      nodeName: seed.node,
      ownerKinds: seed.ownerKinds ?? ['ReplicaSet'],
      emptyDirs: seed.emptyDirs ?? [],
      labels: seed.labels ?? {},
      annotations: seed.mirror ? { 'kubernetes.io/config.mirror': 'mirror-hash' } : {},
      containers: [{ name: 'app', image: 'registry.example/app:1' }],
    })
    if (seed.runtimeClassName) pod.view.runtimeClassName = seed.runtimeClassName
    ClusterStore.markRunningReady(pod)
    if (seed.phase && seed.phase !== 'Running') {
      pod.view.phase = seed.phase
      pod.view.ready = false
    }
    this.store.addPod(pod)
    return clone(pod.view)
  }

  /**
   * The pod's containers restart whenever a kata-deploy pod on its node goes away, as Kata pods did
   * under kata-deploy 3.28.0's cleanup (it restarts containerd on SIGTERM; kata-containers#12761).
   */
  restartsWithKataDeploy(namespace: string, name: string): void {
    this.store.onPodRemoved.push((gone) => {
      const pod = this.store.pods.get(podKey(namespace, name))
      if (!pod || !this.kataDeploy.isDaemonPod(gone) || gone.view.nodeName !== pod.view.nodeName) return
      pod.view.containers = pod.view.containers.map((c) => ({ ...c, restartCount: c.restartCount + 1 }))
    })
  }

  /** Live pods (not terminating) on a node, optionally in one namespace. */
  podsOn(node: string, namespace?: string): PodView[] {
    return [...this.store.pods.values()]
      .filter((p) => p.view.nodeName === node && (namespace === undefined || p.view.namespace === namespace))
      .map((p) => clone(p.view))
  }

  /** The node's live kata-deploy pod. */
  kataDeployPodOn(node: string): PodView | undefined {
    const pod = [...this.store.pods.values()].find(
      (p) => this.kataDeploy.isDaemonPod(p) && p.view.nodeName === node && p.view.deletionTimestamp === undefined,
    )
    return pod ? clone(pod.view) : undefined
  }

  /**
   * The node's kata-deploy pod replaced at once, as an eviction and the DaemonSet controller's quick
   * answer would leave it: the old pod gone, a new one (new uid) already Ready. Synchronous.
   */
  replaceKataDeployPodNow(node: string): void {
    const old = [...this.store.pods.values()].find(
      (p) => this.kataDeploy.isDaemonPod(p) && p.view.nodeName === node && p.view.deletionTimestamp === undefined,
    )
    if (!old) throw new Error(`no kata-deploy pod on ${node}`)
    this.store.beginDelete(old, 0)
    const now = [...this.store.pods.values()].find((p) => this.kataDeploy.isDaemonPod(p) && p.view.nodeName === node)
    if (!now) throw new Error(`the DaemonSet made no pod on ${node}`)
    ClusterStore.markRunningReady(now)
    this.store.changed()
  }

  /**
   * The node's kata-deploy pod at `version`'s DaemonSet revision, Ready: as a wave that upgraded it
   * and a release rolled back after it leave the pod (OnDelete keeps it). Synchronous.
   */
  setKataDeployRevision(node: string, version: string): void {
    const pod = [...this.store.pods.values()].find(
      (p) => this.kataDeploy.isDaemonPod(p) && p.view.nodeName === node && p.view.deletionTimestamp === undefined,
    )
    if (!pod) throw new Error(`no kata-deploy pod on ${node}`)
    this.kataDeploy.knowVersion(version)
    pod.view.labels = { ...pod.view.labels, [REVISION_LABEL]: revisionHashOf(version) }
    this.store.changed()
  }

  /** The kata-deploy version the node really runs: its Ready pod's revision, or (job mode) its last Complete install Job. */
  versionOn(node: string): string | undefined {
    const pod = this.kataDeployPodOn(node)
    if (pod) return pod.ready ? this.kataDeploy.versionOfHash(pod.labels[REVISION_LABEL]) : undefined
    return this.kataDeploy.installed.get(node)
  }

  revisionHashOf(version: string): string {
    return revisionHashOf(version)
  }

  /** Writes about one node. */
  writesTo(node: string): WriteRecord[] {
    return this.writes.filter((w) => w.node === node)
  }

  /** Makes matching writes fail with a ClusterError 500 (or the given error). */
  injectFailure(rule: FailureRule): void {
    this.failures.push({ times: 1, ...rule })
  }

  /**
   * Calls `fn` synchronously right after the first write matching `when` was applied, before the
   * caller sees the result (e.g. to kill a FakeProcess there). Resolves after `fn` ran.
   */
  afterWrite(when: (w: WriteRecord) => boolean, fn: () => void = () => {}): Promise<void> {
    return new Promise((resolve) => {
      this.hooks.push({
        when,
        fn: () => {
          fn()
          resolve()
        },
      })
    })
  }

  /** FakeHelm reports its upgrades here, so one journal holds every write. */
  journal(record: Omit<WriteRecord, 'seq' | 'at'>): WriteRecord {
    return this.logWrite(record)
  }

  /** FakeHelm applies a revision: the DaemonSet controller or the Job dispatcher reacts. */
  applyRelease(input: ReleaseApply): Promise<void> {
    return this.kataDeploy.apply(input)
  }

  /** `verb resource [namespace]` strings this identity is denied (deniedAccess answers from it). */
  readonly denied = new Set<string>()
  /** What reading the policy ConfigMap throws (a 403 or 500 ClusterError), instead of answering. */
  policyReadError: Error | undefined
  /** Namespaces that exist (namespaceExists); every one, unless set. */
  namespaces: Set<string> | undefined

  // ---- the Cluster port ----

  deniedAccess(checks: readonly AccessCheck[]): Promise<AccessCheck[]> {
    return this.call('deniedAccess', () =>
      checks.filter((c) => this.denied.has(`${c.verb} ${c.resource}${c.namespace ? ` ${c.namespace}` : ''}`)),
    )
  }

  namespaceExists(name: string): Promise<boolean> {
    return this.call('namespaceExists', () => this.namespaces === undefined || this.namespaces.has(name))
  }

  /** How many keepWatches holds are open, and were ever taken (the fake's watches need no keeping). */
  watchKeepers = 0
  watchHolds = 0

  keepWatches(): () => void {
    this.watchKeepers++
    this.watchHolds++
    let released = false
    return () => {
      if (!released) this.watchKeepers--
      released = true
    }
  }

  ping(): Promise<void> {
    return this.call('ping', () => {
      if (!this.reachable) throw new ClusterError('cannot reach the API server: connect ECONNREFUSED 127.0.0.1:6443')
    })
  }

  listNodes(labelSelector?: string): Promise<NodeView[]> {
    return this.call('listNodes', () => {
      const matches = labelMatcher(labelSelector)
      return [...this.store.nodes.values()].filter((n) => matches(n.labels)).map(clone)
    })
  }

  waitForNodes<T>(
    labelSelector: string | undefined,
    decide: Decide<NodeView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, NodeView[]>> {
    const matches = labelMatcher(labelSelector)
    return this.call('waitForNodes', () =>
      this.store.watch(
        () => [...this.store.nodes.values()].filter((n) => matches(n.labels)).map(clone),
        decide,
        timeoutMs,
        signal,
      ),
    )
  }

  getNode(name: string): Promise<NodeView | undefined> {
    return this.call('getNode', () => {
      const node = this.store.nodes.get(name)
      return node ? clone(node) : undefined
    })
  }

  async patchNode(name: string, patch: NodePatch): Promise<NodeView> {
    const slow = this.slowNextPatch.get(name)
    if (slow !== undefined) {
      this.slowNextPatch.delete(name)
      await this.clock.sleep(slow)
    }
    return this.call(undefined, () =>
      this.mutate({ verb: 'patch', resource: 'nodes', name, node: name, detail: clone(patch) }, () => {
        const node = this.store.nodes.get(name)
        if (!node) throw new ClusterError(`nodes "${name}" not found`, 404)
        for (const [key, value] of Object.entries(patch.annotations ?? {})) {
          if (value === null) delete node.annotations[key]
          else node.annotations[key] = value
        }
        if (patch.unschedulable !== undefined) node.unschedulable = patch.unschedulable
        this.store.changed()
        return clone(node)
      }),
    )
  }

  recordNodeEvent(node: NodeView, event: NodeEvent): Promise<void> {
    return this.call(undefined, () => {
      try {
        this.mutate(
          { verb: 'create', resource: 'events', name: node.name, node: node.name, detail: clone(event) },
          () => {
            this.nodeEvents.push({ ...clone(event), node: node.name })
          },
        )
      } catch {
        // Best effort, like the adapter: an Event that cannot be written never fails the lifecycle.
      }
    })
  }

  listPods(query: PodQuery): Promise<PodView[]> {
    return this.call('listPods', () => this.matchPods(query))
  }

  createPod(namespace: string, manifest: Record<string, unknown>): Promise<PodView> {
    return this.call(undefined, () => {
      const metadata = (manifest.metadata ?? {}) as {
        name?: string
        generateName?: string
        labels?: Record<string, string>
        annotations?: Record<string, string>
      }
      const spec = (manifest.spec ?? {}) as {
        nodeName?: string
        nodeSelector?: Record<string, string>
        tolerations?: Toleration[]
        containers?: { name: string; image?: string }[]
      }
      const name = metadata.name ?? `${metadata.generateName ?? 'pod-'}${this.store.nextId()}`
      const podSpec = {
        nodeSelector: spec.nodeSelector ?? {},
        tolerations: spec.tolerations ?? [],
        ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
      }
      const target = targetNodeOf(podSpec)
      return this.mutate(
        {
          verb: 'create',
          resource: 'pods',
          name,
          namespace,
          ...(target ? { node: target } : {}),
          detail: clone(manifest),
        },
        () => {
          if (this.store.pods.has(podKey(namespace, name))) throw new ClusterError(`pods "${name}" already exists`, 409)
          const pod = this.store.newPod({
            namespace,
            name,
            labels: metadata.labels ?? {},
            annotations: metadata.annotations ?? {},
            containers: spec.containers ?? [],
            spec: podSpec,
            ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
          })
          const script = toScript(target === undefined ? undefined : this.verification.get(target))
          if (script.behaviour !== 'never-seen') {
            this.store.addPod(pod)
            runVerificationPod(this.store, pod, script)
          }
          return clone(pod.view)
        },
      )
    })
  }

  deletePod(namespace: string, name: string, gracePeriodSeconds?: number): Promise<void> {
    return this.call(undefined, () => {
      const pod = this.store.pods.get(podKey(namespace, name))
      this.mutate(
        {
          verb: 'delete',
          resource: 'pods',
          name,
          namespace,
          ...(pod?.view.nodeName ? { node: pod.view.nodeName } : {}),
          detail: { gracePeriodSeconds },
        },
        () => {
          if (!pod) return
          // No kubelet confirms a graceful delete on a deleted node: the pod stays terminating (until
          // the pod garbage collector, not imitated).
          const orphan = pod.view.nodeName !== undefined && !this.store.nodes.has(pod.view.nodeName)
          if (orphan && gracePeriodSeconds !== 0) {
            pod.view.deletionTimestamp ??= this.clock.now().toISOString()
            pod.view.ready = false
            this.store.changed()
            return
          }
          this.store.beginDelete(pod, gracePeriodSeconds)
        },
      )
    })
  }

  waitForPods<T>(
    query: PodQuery,
    decide: Decide<PodView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, PodView[]>> {
    return this.call('waitForPods', () => this.store.watch(() => this.matchPods(query), decide, timeoutMs, signal))
  }

  evictPod(namespace: string, name: string, options: { dryRun?: boolean } = {}): Promise<EvictionResult> {
    if (options.dryRun)
      // The API server judges it (a budget that refuses now) and changes nothing: a read, not a write.
      return this.call('evictPod:dry-run', () => {
        const key = podKey(namespace, name)
        if (!this.store.pods.get(key)) return 'gone'
        return (this.evictionBlocks.get(key) ?? 0) > 0 ? 'blocked' : 'evicted'
      })
    return this.call(undefined, () => {
      const key = podKey(namespace, name)
      const pod = this.store.pods.get(key)
      return this.mutate(
        {
          verb: 'create',
          resource: 'pods/eviction',
          name,
          namespace,
          ...(pod?.view.nodeName ? { node: pod.view.nodeName } : {}),
        },
        (): EvictionResult => {
          if (!pod) return 'gone'
          const blocks = this.evictionBlocks.get(key) ?? 0
          if (blocks > 0) {
            this.evictionBlocks.set(key, blocks - 1)
            return 'blocked'
          }
          this.store.beginDelete(pod)
          return 'evicted'
        },
      )
    })
  }

  podDiagnostics(namespace: string, name: string, tailLines: number): Promise<{ events: string[]; logTail: string[] }> {
    return this.call('podDiagnostics', () => {
      const pod: StoredPod | undefined =
        this.store.pods.get(podKey(namespace, name)) ?? this.store.graveyard.get(podKey(namespace, name))
      return { events: [...(pod?.events ?? [])], logTail: (pod?.logTail ?? []).slice(-tailLines) }
    })
  }

  getDaemonSet(namespace: string, name: string): Promise<DaemonSetView | undefined> {
    return this.call('getDaemonSet', () => {
      const ds = name === DAEMONSET_NAME ? this.kataDeploy.daemonSet(namespace) : undefined
      if (!ds) return undefined
      const desired = [...this.store.nodes.values()].filter((n) =>
        Object.entries(ds.nodeSelector).every(([k, v]) => n.labels[k] === v),
      ).length
      return {
        name: ds.name,
        namespace,
        generation: ds.generation,
        observedGeneration: ds.observedGeneration,
        updateStrategy: ds.updateStrategy,
        desiredNumberScheduled: desired,
      }
    })
  }

  daemonSetRevisionHash(namespace: string, name: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
    return this.call('daemonSetRevisionHash', async () => {
      const current = () => (name === DAEMONSET_NAME ? this.kataDeploy.daemonSet(namespace) : undefined)
      const result = await this.store.watch(
        () => [current()],
        ([ds]) => {
          if (!ds) throw new ClusterError(`daemonsets.apps "${name}" not found`, 404)
          return ds.observedGeneration >= ds.generation ? revisionHashOf(ds.version) : undefined
        },
        timeoutMs,
        signal,
      )
      if (!result.done)
        throw new TimeoutError(
          `daemonset ${namespace}/${name}: controller did not observe the latest generation within ${Math.round(timeoutMs / 1000)}s`,
        )
      return result.value
    })
  }

  private helmStorage: (namespace: string, release: string) => HelmRevisionView[] = () => []

  /** The FakeHelm whose releases `waitForHelmRevisions` shows (as helm's storage Secrets would). */
  attachHelmStorage(storage: (namespace: string, release: string) => HelmRevisionView[]): void {
    this.helmStorage = storage
  }

  waitForHelmRevisions<T>(
    namespace: string,
    release: string,
    decide: Decide<HelmRevisionView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, HelmRevisionView[]>> {
    return this.call('waitForHelmRevisions', () =>
      this.store.watch(() => this.helmStorage(namespace, release), decide, timeoutMs, signal),
    )
  }

  listJobs(namespace: string, labelSelector?: string): Promise<JobView[]> {
    return this.call('listJobs', () => this.matchJobs(namespace, labelSelector))
  }

  waitForJobs<T>(
    namespace: string,
    labelSelector: string,
    decide: Decide<JobView[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, JobView[]>> {
    return this.call('waitForJobs', () =>
      this.store.watch(() => this.matchJobs(namespace, labelSelector), decide, timeoutMs, signal),
    )
  }

  /** Policy documents by namespace, and the cluster's RuntimeClasses. */
  readonly policies = new Map<string, string>()
  readonly runtimeClasses: { name: string; handler: string }[] = []

  readPolicy(namespace: string): Promise<string | undefined> {
    return this.call('readPolicy', () => {
      // As the real adapter: an absent ConfigMap is undefined, any other failure a ClusterError.
      if (this.policyReadError) throw this.policyReadError
      return this.policies.get(namespace)
    })
  }

  writePolicy(namespace: string, text: string): Promise<void> {
    return this.call('writePolicy', () => {
      this.logWrite({ verb: 'update', resource: 'configmaps', name: 'kata-lcm-policy', namespace })
      this.policies.set(namespace, text)
    })
  }

  listRuntimeClasses(): Promise<{ name: string; handler: string }[]> {
    return this.call('listRuntimeClasses', () => clone(this.runtimeClasses))
  }

  waitForRun<T>(
    namespace: string,
    release: string,
    decide: (record: RunRecord | undefined) => T | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, RunRecord | undefined>> {
    return this.call('waitForRun', async () => {
      const key = `${namespace}/${release}`
      const result = await this.store.watch(
        () => (this.runs.has(key) ? [clone(this.runs.get(key)!)] : []),
        (records: RunRecord[]) => decide(records[0]),
        timeoutMs,
        signal,
      )
      return result.done ? result : { done: false as const, last: result.last[0] }
    })
  }

  readRun(namespace: string, release: string): Promise<RunRecord | undefined> {
    return this.call('readRun', () => {
      const record = this.runs.get(`${namespace}/${release}`)
      return record ? clone(record) : undefined
    })
  }

  writeRun(record: RunRecord): Promise<void> {
    return this.call(undefined, () =>
      this.mutate(
        {
          verb: 'update',
          resource: 'secrets',
          name: `kata-lcm-run-${record.release}`,
          namespace: record.namespace,
          detail: clone(record),
        },
        () => {
          this.runs.set(`${record.namespace}/${record.release}`, clone(record))
          this.store.changed()
        },
      ),
    )
  }

  clearRun(namespace: string, release: string): Promise<void> {
    return this.call(undefined, () =>
      this.mutate({ verb: 'delete', resource: 'secrets', name: `kata-lcm-run-${release}`, namespace }, () => {
        this.runs.delete(`${namespace}/${release}`)
        this.store.changed()
      }),
    )
  }

  tryLock(namespace: string, name: string, holder: string, ttlSeconds: number, now: Date): Promise<LockAttempt> {
    return this.call(undefined, () => {
      const key = `${namespace}/${name}`
      const current = this.leases.get(key)
      const expired = (info: LockInfo) => Date.parse(info.renewedAt) + info.ttlSeconds * 1000 < now.getTime()
      if (current && current.holder !== holder && !expired(current))
        return { acquired: false, current: clone(current) } satisfies LockAttempt
      return this.mutate(
        { verb: 'update', resource: 'leases', name, namespace, detail: { holder } },
        (): LockAttempt => {
          const stamp = now.toISOString()
          this.leases.set(key, {
            holder,
            acquiredAt: current?.holder === holder ? current.acquiredAt : stamp,
            renewedAt: stamp,
            ttlSeconds,
          })
          return { acquired: true }
        },
      )
    })
  }

  /** The fake keeps no helm storage Secrets: the release and its instance come from the fake helm. */
  async helmStoredRelease(): Promise<StoredRelease | undefined> {
    return undefined
  }

  /** Hands the lease over: a renewal (the fake has no client limits to leave on it), recorded as a hand-over. */
  handOverLock(namespace: string, name: string, holder: string, now: Date): Promise<boolean> {
    return this.renewAs(namespace, name, holder, now, { holder, handOver: true })
  }

  renewLock(namespace: string, name: string, holder: string, now: Date): Promise<boolean> {
    return this.renewAs(namespace, name, holder, now, { holder, renew: true })
  }

  /** Renews the lease while `holder` holds it; the write recorded with `detail`. */
  private renewAs(namespace: string, name: string, holder: string, now: Date, detail: object): Promise<boolean> {
    return this.call(undefined, () => {
      const current = this.leases.get(`${namespace}/${name}`)
      if (!current || current.holder !== holder) return false
      return this.mutate({ verb: 'update', resource: 'leases', name, namespace, detail }, () => {
        current.renewedAt = now.toISOString()
        return true
      })
    })
  }

  unlock(namespace: string, name: string, holder?: string): Promise<LockInfo | undefined> {
    return this.call(undefined, () => {
      const key = `${namespace}/${name}`
      const current = this.leases.get(key)
      if (!current) return undefined
      if (holder !== undefined && current.holder !== holder) return clone(current)
      return this.mutate({ verb: 'delete', resource: 'leases', name, namespace }, () => {
        this.leases.delete(key)
        return clone(current)
      })
    })
  }

  // ---- internals ----

  private mustNode(name: string): NodeView {
    const node = this.store.nodes.get(name)
    if (!node) throw new Error(`test set-up: no node ${name}`)
    return node
  }

  private matchPods(query: PodQuery): PodView[] {
    const labels = labelMatcher(query.labelSelector)
    const fields = fieldMatcher(query.fieldSelector, [
      'spec.nodeName',
      'metadata.name',
      'metadata.namespace',
      'status.phase',
    ])
    return [...this.store.pods.values()]
      .map((p) => p.view)
      .filter(
        (p) =>
          (query.namespace === undefined || p.namespace === query.namespace) &&
          labels(p.labels) &&
          fields({
            'spec.nodeName': p.nodeName ?? '',
            'metadata.name': p.name,
            'metadata.namespace': p.namespace,
            'status.phase': p.phase,
          }),
      )
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))
      .map(clone)
  }

  private matchJobs(namespace: string, labelSelector?: string): JobView[] {
    const labels = labelMatcher(labelSelector)
    return [...this.store.jobs.values()]
      .filter((j) => j.namespace === namespace && labels(j.labels))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(clone)
  }

  private logWrite(record: Omit<WriteRecord, 'seq' | 'at'>): WriteRecord {
    const write: WriteRecord = { seq: ++this.seq, at: this.clock.elapsedMs(), ...record }
    this.writes.push(write)
    const rule = this.failures.find(
      (r) =>
        r.verb === write.verb &&
        r.resource === write.resource &&
        (r.name === undefined || r.name === write.name) &&
        (r.when?.(write) ?? true),
    )
    if (rule) {
      write.failed = true
      rule.times = (rule.times ?? 1) - 1
      if (rule.times <= 0) this.failures = this.failures.filter((r) => r !== rule)
      throw rule.error ?? new ClusterError(`injected failure: ${write.verb} ${write.resource} ${write.name}`, 500)
    }
    return write
  }

  private mutate<T>(record: Omit<WriteRecord, 'seq' | 'at'>, apply: () => T): T {
    const write = this.logWrite(record)
    const result = apply()
    const hook = this.hooks.find((h) => h.when(write))
    if (hook) {
      this.hooks = this.hooks.filter((h) => h !== hook)
      hook.fn()
    }
    return result
  }

  /** Every port call is async, like the network. */
  private async call<T>(read: string | undefined, fn: () => T | Promise<T>): Promise<T> {
    await Promise.resolve()
    if (read !== undefined) this.reads.push(read)
    return fn()
  }
}
