import type { ContainerView, Decide, JobView, NodeView, PodView, WaitResult } from '../../src/ports/cluster.port.js'
import type { FakeClock } from './fake-clock.js'

export interface Toleration {
  key?: string
  operator?: string
  value?: string
  effect?: string
}

/** A pod as the fake API server holds it: the view plus what the simulated kubelet needs. */
export interface StoredPod {
  view: PodView
  spec: { nodeName?: string; nodeSelector: Record<string, string>; tolerations: Toleration[] }
  /** `kubectl describe` events about the pod, oldest first. */
  events: string[]
  logTail: string[]
  /** Timers tied to the pod's life (kubelet steps); cancelled when it is removed. */
  cancels: (() => void)[]
}

export interface DaemonSetState {
  namespace: string
  name: string
  generation: number
  observedGeneration: number
  updateStrategy: string
  /** The chart version whose pod template is current. */
  version: string
  nodeSelector: Record<string, string>
  images: string[]
}

export interface Timings {
  /** Created -> scheduled (verification pods). */
  scheduleMs: number
  /** Scheduled -> containers running. */
  startMs: number
  /** Running -> finished (verification pods), unless a script says otherwise. */
  runMs: number
  /** Terminating -> gone, for a delete or eviction with the default grace period. */
  terminationMs: number
  /** A replacement kata-deploy pod: created -> Ready (or crash-looping). */
  kataDeployReadyMs: number
  /** An install Job: created -> Complete/Failed. */
  jobRunMs: number
}

export const DEFAULT_TIMINGS: Timings = {
  scheduleMs: 200,
  startMs: 1_000,
  runMs: 3_000,
  terminationMs: 1_000,
  kataDeployReadyMs: 2_000,
  jobRunMs: 5_000,
}

export function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`
}

/**
 * The fake API server's state. Every mutation ends with `changed()`, which re-evaluates every open
 * watch synchronously: waits are driven by state changes, never by polling.
 */
export class ClusterStore {
  readonly nodes = new Map<string, NodeView>()
  readonly pods = new Map<string, StoredPod>()
  /** Pods already removed, kept for diagnostics (`podDiagnostics` after deletion). */
  readonly graveyard = new Map<string, StoredPod>()
  readonly jobs = new Map<string, JobView>()
  readonly daemonSets = new Map<string, DaemonSetState>()
  /** Called after a pod is removed (the DaemonSet controller reacts here). */
  readonly onPodRemoved: ((pod: StoredPod) => void)[] = []
  /** How often watches asked `decide` (a poller would ask on a timer instead). */
  decideCalls = 0
  private readonly watchers = new Set<() => void>()
  private counter = 0

  constructor(
    readonly clock: FakeClock,
    readonly timings: Timings,
  ) {}

  /** Deterministic ids: `00001`, `00002`, ... */
  nextId(): string {
    return (++this.counter).toString(36).padStart(5, '0')
  }

  /** Notifies every open watch. */
  changed(): void {
    for (const evaluate of [...this.watchers]) evaluate()
  }

  /** Open watches (for tests of the fakes). */
  openWatches(): number {
    return this.watchers.size
  }

  /**
   * Evaluates `decide` now and after every change until it returns a value, or the deadline on the
   * fake clock passes (then `{done: false, last}`), or `signal` aborts (rejects with its reason).
   */
  watch<V, T>(
    list: () => V[],
    decide: Decide<V[], T>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<WaitResult<T, V[]>> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      let finished = false
      let cancelTimer = () => {}
      const finish = () => {
        finished = true
        this.watchers.delete(evaluate)
        cancelTimer()
        signal?.removeEventListener('abort', onAbort)
      }
      const evaluate = () => {
        if (finished) return
        this.decideCalls++
        let value: T | undefined
        try {
          value = decide(list())
        } catch (error) {
          finish()
          return reject(error)
        }
        if (value !== undefined) {
          finish()
          resolve({ done: true, value })
        }
      }
      const onAbort = () => {
        if (finished) return
        finish()
        reject(signal!.reason)
      }
      cancelTimer = this.clock.setTimer(timeoutMs, () => {
        if (finished) return
        finish()
        resolve({ done: false, last: list() })
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      this.watchers.add(evaluate)
      evaluate()
    })
  }

  /** Runs `fn` after `ms` while the pod exists. */
  after(pod: StoredPod, ms: number, fn: () => void): void {
    pod.cancels.push(
      this.clock.setTimer(ms, () => {
        if (this.pods.get(podKey(pod.view.namespace, pod.view.name)) !== pod) return
        fn()
        this.changed()
      }),
    )
  }

  newPod(input: {
    namespace: string
    name: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    nodeName?: string
    ownerKinds?: string[]
    emptyDirs?: string[]
    containers: { name: string; image?: string }[]
    spec?: Partial<StoredPod['spec']>
  }): StoredPod {
    const annotations = input.annotations ?? {}
    return {
      view: {
        name: input.name,
        namespace: input.namespace,
        uid: `pod-uid-${this.nextId()}`,
        ...(input.nodeName ? { nodeName: input.nodeName } : {}),
        phase: 'Pending',
        labels: { ...(input.labels ?? {}) },
        annotations: { ...annotations },
        ready: false,
        containers: input.containers.map((c): ContainerView => ({
          name: c.name,
          ready: false,
          restartCount: 0,
          state: 'unknown',
          ...(c.image ? { image: c.image } : {}),
        })),
        conditions: [],
        ownerKinds: input.ownerKinds ?? [],
        mirror: annotations['kubernetes.io/config.mirror'] !== undefined,
        emptyDirs: input.emptyDirs ?? [],
      },
      spec: {
        nodeSelector: {},
        tolerations: [],
        ...(input.nodeName ? { nodeName: input.nodeName } : {}),
        ...input.spec,
      },
      events: [],
      logTail: [],
      cancels: [],
    }
  }

  addPod(pod: StoredPod): void {
    this.pods.set(podKey(pod.view.namespace, pod.view.name), pod)
    this.changed()
  }

  /** Marks a pod Running with every container running and Ready. */
  static markRunningReady(pod: StoredPod): void {
    pod.view.phase = 'Running'
    pod.view.ready = true
    pod.view.containers = pod.view.containers.map((c) => ({
      name: c.name,
      ready: true,
      restartCount: c.restartCount,
      state: 'running',
      ...(c.image ? { image: c.image } : {}),
    }))
    pod.view.conditions = [
      { type: 'PodScheduled', status: 'True' },
      { type: 'Ready', status: 'True' },
    ]
  }

  /** Starts deletion: terminating first (deletionTimestamp set), gone after the grace period. */
  beginDelete(pod: StoredPod, gracePeriodSeconds?: number): void {
    const immediate = gracePeriodSeconds === 0 || this.timings.terminationMs === 0
    if (pod.view.deletionTimestamp === undefined) {
      pod.view.deletionTimestamp = this.clock.now().toISOString()
      pod.view.ready = false
      pod.view.conditions = pod.view.conditions.map((c) => (c.type === 'Ready' ? { ...c, status: 'False' } : c))
      this.changed()
      if (!immediate) {
        this.clock.setTimer(this.timings.terminationMs, () => this.remove(pod))
        return
      }
    }
    if (immediate) this.remove(pod)
  }

  /** Removes the pod now (termination finished). */
  remove(pod: StoredPod): void {
    const key = podKey(pod.view.namespace, pod.view.name)
    if (this.pods.get(key) !== pod) return
    this.pods.delete(key)
    this.graveyard.set(key, pod)
    for (const cancel of pod.cancels) cancel()
    this.changed()
    for (const hook of this.onPodRemoved) hook(pod)
  }

  /** A creationTimestamp as the API server writes it (whole seconds). */
  timestamp(): string {
    return new Date(Math.floor(this.clock.now().getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z')
  }
}
