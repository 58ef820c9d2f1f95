import semver from 'semver'
import type { JobView } from '../../src/ports/cluster.port.js'
import type { Values } from '../../src/lifecycle/settings/values.js'
import { ClusterStore, podKey, type DaemonSetState, type StoredPod } from './cluster-store.js'

export const KATA_DEPLOY_IMAGE = 'quay.io/kata-containers/kata-deploy'
export const DAEMONSET_NAME = 'kata-deploy'
export const REVISION_LABEL = 'controller-revision-hash'
export const INSTALL_JOB_LABEL = 'katacontainers.io/kata-deploy-job'

/** The DaemonSet's pod-template hash for a chart version: a stable, hash-looking string. */
export function revisionHashOf(version: string): string {
  let h = 0x811c9dc5
  for (const ch of `kata-deploy@${version}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0
  return h.toString(16).padStart(8, '0').slice(0, 8) + 'c'
}

/** `none`: the dispatcher creates no Job for the node (as it skips a node it cannot act on). */
export type InstallJobBehaviour = 'complete' | 'fail' | 'hang' | 'none'

/** What kata-deploy's installer puts on a node it installed; its cleanup takes it off. */
export const INSTALLED_LABEL = ['katacontainers.io/kata-runtime', 'true'] as const

/** What FakeHelm hands the cluster when a revision is applied. */
export interface ReleaseApply {
  namespace: string
  release: string
  revision: number
  version: string
  /** Coalesced values (chart defaults + user values). */
  values: Values
  /** false for --no-hooks: the job-mode dispatcher does not run. */
  hooks: boolean
  timeoutMs: number
  /** The first install: pods come up Ready at once, nodes count as installed. */
  initial?: boolean
}

function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

/**
 * kata-deploy's side of the cluster: the DaemonSet controller (daemonset mode) and the per-node
 * install Job dispatcher (job mode), both reacting to helm revisions like the real chart would.
 */
export class KataDeploySim {
  /** Versions whose kata-deploy container crash-loops (a broken release). */
  readonly crashLoopVersions = new Set<string>()
  /** How long a replacement kata-deploy pod takes to be Ready, per node (default: the timings'). */
  readonly readyMsOn = new Map<string, number>()
  /** Install Job outcome per `node` or `node@version` (the latter wins); default complete. */
  readonly installJobs = new Map<string, InstallJobBehaviour>()
  /** job mode: the version each node got from its last Complete install Job. */
  readonly installed = new Map<string, string>()
  /**
   * job mode: true = helm waits for the install Jobs (the real chart's dispatcher hook) and fails
   * when one fails; false = the Jobs are plain resources (the fixture chart): helm returns once they
   * exist, before they finish.
   */
  helmWaitsForJobs = true
  /**
   * job mode: the dispatcher first uninstalls every labelled node outside job.nodes (4.1.0's
   * ownership cleanup, here on any version: a dispatcher that does what kata-lcm must catch).
   */
  cleansOutsideJobNodes = false
  /** The DaemonSet controller stops observing new generations. */
  controllerStalled = false
  private readonly versionsByHash = new Map<string, string>()

  constructor(private readonly store: ClusterStore) {
    store.onPodRemoved.push((pod) => this.replace(pod))
  }

  daemonSet(namespace: string): DaemonSetState | undefined {
    return this.store.daemonSets.get(podKey(namespace, DAEMONSET_NAME))
  }

  /** Makes `versionOfHash` know `version`'s revision hash (a revision this fake never applied itself). */
  knowVersion(version: string): void {
    this.versionsByHash.set(revisionHashOf(version), version)
  }

  versionOfHash(hash: string | undefined): string | undefined {
    return hash === undefined ? undefined : this.versionsByHash.get(hash)
  }

  async apply(input: ReleaseApply): Promise<void> {
    const mode = String(input.values.deploymentMode ?? 'daemonset')
    if (mode === 'job') {
      this.removeDaemonSet(input.namespace)
      if (input.initial) for (const node of this.store.nodes.keys()) this.installed.set(node, input.version)
      const nodes = (valueAt(input.values, 'job.nodes') ?? []) as string[]
      if (!input.hooks || nodes.length === 0) return
      const parallelism = Number(valueAt(input.values, 'job.parallelism') ?? 100)
      if (this.helmWaitsForJobs) return this.dispatch(input, nodes, Math.max(1, parallelism))
      // The Jobs are plain resources of the release (the fixture chart's shape): they exist when helm returns, unfinished.
      for (const node of nodes) this.createJob(input, node)
      this.store.changed()
      return
    }
    this.applyDaemonSet(input)
  }

  private applyDaemonSet(input: ReleaseApply): void {
    const key = podKey(input.namespace, DAEMONSET_NAME)
    const ds: DaemonSetState = this.store.daemonSets.get(key) ?? {
      namespace: input.namespace,
      name: DAEMONSET_NAME,
      generation: 0,
      observedGeneration: 0,
      updateStrategy: 'RollingUpdate',
      version: input.version,
      nodeSelector: {},
      images: [],
    }
    this.store.daemonSets.set(key, ds)
    ds.generation++
    if (!this.controllerStalled) ds.observedGeneration = ds.generation
    ds.version = input.version
    this.versionsByHash.set(revisionHashOf(input.version), input.version)
    // updateStrategy is honoured from 3.27.0 on; older charts always roll.
    ds.updateStrategy =
      semver.valid(input.version) && semver.gte(input.version, '3.27.0')
        ? String(valueAt(input.values, 'updateStrategy.type') ?? 'RollingUpdate')
        : 'RollingUpdate'
    ds.nodeSelector = (input.values.nodeSelector ?? {}) as Record<string, string>
    ds.images = [`${KATA_DEPLOY_IMAGE}:${input.version}`]
    const hash = revisionHashOf(ds.version)
    for (const node of this.store.nodes.values()) {
      if (!matchesSelector(node.labels, ds.nodeSelector)) continue
      const pods = this.livePodsOn(ds.namespace, node.name)
      if (pods.length === 0) this.createPod(ds, node.name, input.initial === true)
      // RollingUpdate as one step: every outdated pod is replaced at once.
      else if (ds.updateStrategy === 'RollingUpdate')
        for (const pod of pods) if (pod.view.labels[REVISION_LABEL] !== hash) this.store.beginDelete(pod)
    }
    this.store.changed()
  }

  private removeDaemonSet(namespace: string): void {
    const ds = this.daemonSet(namespace)
    if (!ds) return
    this.store.daemonSets.delete(podKey(namespace, DAEMONSET_NAME))
    for (const pod of [...this.store.pods.values()])
      if (this.isDaemonPod(pod) && pod.view.namespace === namespace) this.store.remove(pod)
    this.store.changed()
  }

  isDaemonPod(pod: StoredPod): boolean {
    return pod.view.ownerKinds.includes('DaemonSet') && pod.view.labels.name === 'kata-deploy'
  }

  livePodsOn(namespace: string, node: string): StoredPod[] {
    return [...this.store.pods.values()].filter(
      (p) =>
        this.isDaemonPod(p) &&
        p.view.namespace === namespace &&
        p.view.nodeName === node &&
        p.view.deletionTimestamp === undefined,
    )
  }

  /** The controller's answer to a kata-deploy pod disappearing: a new pod at the current revision. */
  private replace(gone: StoredPod): void {
    if (!this.isDaemonPod(gone) || gone.view.nodeName === undefined) return
    const ds = this.daemonSet(gone.view.namespace)
    const node = this.store.nodes.get(gone.view.nodeName)
    if (!ds || !node || !matchesSelector(node.labels, ds.nodeSelector)) return
    if (this.livePodsOn(ds.namespace, node.name).length > 0) return
    this.createPod(ds, node.name, false)
  }

  private createPod(ds: DaemonSetState, node: string, readyNow: boolean): void {
    const version = ds.version
    const pod = this.store.newPod({
      namespace: ds.namespace,
      name: `kata-deploy-${this.store.nextId()}`,
      labels: { name: 'kata-deploy', [REVISION_LABEL]: revisionHashOf(version) },
      nodeName: node,
      ownerKinds: ['DaemonSet'],
      containers: [{ name: 'kube-kata', image: `${KATA_DEPLOY_IMAGE}:${version}` }],
    })
    if (readyNow) {
      ClusterStore.markRunningReady(pod)
      this.store.addPod(pod)
      return
    }
    pod.view.conditions = [{ type: 'PodScheduled', status: 'True' }]
    pod.view.containers = pod.view.containers.map((c) => ({ ...c, state: 'waiting', reason: 'ContainerCreating' }))
    this.store.addPod(pod)
    this.store.after(pod, this.readyMsOn.get(node) ?? this.store.timings.kataDeployReadyMs, () => {
      if (!this.crashLoopVersions.has(version)) return ClusterStore.markRunningReady(pod)
      pod.view.phase = 'Running'
      pod.view.containers = pod.view.containers.map((c) => ({
        ...c,
        state: 'waiting',
        reason: 'CrashLoopBackOff',
        message: 'back-off 40s restarting failed container',
        ready: false,
        restartCount: 3,
      }))
      pod.events.push('BackOff: Back-off restarting failed container kube-kata')
    })
  }

  /**
   * The dispatcher (a helm hook, as kata-deploy's `job-dispatcher/src/main.rs`): install Jobs in
   * batches of `parallelism`; a node that fails does not stop the others, and the hook (so helm)
   * fails at the end when any node failed.
   */
  private async dispatch(input: ReleaseApply, nodes: string[], parallelism: number): Promise<void> {
    const deadline = this.store.clock.now().getTime() + input.timeoutMs
    if (this.cleansOutsideJobNodes)
      for (const node of this.store.nodes.values())
        if (!nodes.includes(node.name) && node.labels[INSTALLED_LABEL[0]]) {
          delete node.labels[INSTALLED_LABEL[0]]
          this.installed.delete(node.name)
        }
    let failed: JobView | undefined
    for (let i = 0; i < nodes.length; i += parallelism) {
      const names = nodes.slice(i, i + parallelism).flatMap((node) => this.createJob(input, node))
      const left = Math.max(0, deadline - this.store.clock.now().getTime())
      const result = await this.store.watch(
        () => names.map((n) => this.store.jobs.get(n)!),
        (jobs) => (jobs.every((j) => j.outcome !== 'Running') ? jobs : undefined),
        left,
      )
      if (!result.done)
        throw new Error(`UPGRADE FAILED: post-upgrade hooks failed: timed out waiting for the condition`)
      failed ??= result.value.find((j) => j.outcome === 'Failed')
    }
    if (failed)
      throw new Error(`UPGRADE FAILED: post-upgrade hooks failed: job ${failed.name} failed: BackoffLimitExceeded`)
  }

  private createJob(input: ReleaseApply, node: string): string[] {
    const behaviour = this.installJobs.get(`${node}@${input.version}`) ?? this.installJobs.get(node) ?? 'complete'
    if (behaviour === 'none') return []
    const name = `kata-deploy-install-${node}-r${input.revision}`
    const job: JobView = {
      name,
      namespace: input.namespace,
      uid: `uid-${name}`,
      labels: { [INSTALL_JOB_LABEL]: 'install', 'katacontainers.io/node': node },
      annotations: {},
      outcome: 'Running',
      creationTimestamp: this.store.timestamp(),
      targetNode: node,
      images: [`${KATA_DEPLOY_IMAGE}:${input.version}`],
    }
    this.store.jobs.set(podKey(input.namespace, name), job)
    this.store.changed()
    if (behaviour === 'hang') return [podKey(input.namespace, name)]
    this.store.clock.setTimer(this.store.timings.jobRunMs, () => {
      if (behaviour === 'complete') {
        job.outcome = 'Complete'
        this.installed.set(node, input.version)
        const view = this.store.nodes.get(node)
        if (view) view.labels[INSTALLED_LABEL[0]] = INSTALLED_LABEL[1]
      } else {
        job.outcome = 'Failed'
        job.message = 'BackoffLimitExceeded: Job has reached the specified backoff limit'
      }
      this.store.changed()
    })
    return [podKey(input.namespace, name)]
  }
}

/** Reads a dotted path (`verification.pod`) from values. */
function valueAt(values: Values, path: string): unknown {
  let current: unknown = values
  for (const key of path.split('.')) {
    if (!(typeof current === 'object' && current !== null && !Array.isArray(current))) return undefined
    current = (current as Values)[key]
  }
  return current
}
