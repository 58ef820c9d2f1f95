/**
 * TEST CODE: a stand-in for what kata-deploy's own binaries do to the cluster, for kwok nodes where
 * no container runs. Written from kata-containers' source at 3.32.0, 4.0.0 and 4.1.0
 * (tools/packaging/kata-deploy: `job-dispatcher/src/{main,job,nodes}.rs`, the chart's
 * `kata-deploy-install-job.yaml` and `kata-deploy-job-templates.yaml`, the binary's `install-stage-label`):
 *
 * - daemonset mode: once a kata-deploy pod is Ready on a node, the binary has labelled the node
 *   `katacontainers.io/kata-runtime=true`, and from 4.1.0 also with the install's own marker
 *   `kata-deploy.katacontainers.io/<suffix|default>=true`;
 * - job mode: the install dispatcher (the chart's post-install/post-upgrade hook Job, label
 *   `kata-deploy/dispatcher=install`) reads its flags and the job-templates ConfigMap; with
 *   `--cleanup-job-template` (4.1.0) it first cleans every node carrying the marker that is not in the
 *   desired set (`<prefix>-removed-<node>` Jobs from the cleanup template, then both labels go); then it
 *   creates one node-pinned Job per desired node (`<prefix>-<node>`, owner label, node label and
 *   annotation, owned by the dispatcher Job, `spec.template.spec.nodeName`), labels each node whose
 *   Job succeeded, and ends its own pod Failed when any node failed (helm's hook then fails) and
 *   Succeeded otherwise. kwok runs the per-node Jobs' pods (stages/40-job.yaml); this stand-in tells
 *   kwok how the dispatcher's pod ends through the pod label `kata-lcm.test/outcome`.
 *
 * The dispatcher's work starts once its pod is scheduled (a Pending dispatcher does nothing).
 *
 * Not imitated: the dispatcher's pacing (`--parallelism`: every Job is created at once), its taint
 * filter for selector-chosen nodes, `--wait-for-nodes-secs`, `--require-node-handlers` (kwok nodes
 * report no runtime handlers) and the `pending` claim before a node's Job.
 */
import { BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Job, type V1Pod } from '@kubernetes/client-node'
import semver from 'semver'
import { parse } from 'yaml'
import { loadKubeConfig } from './cluster.js'
import { followList, waitFor, waitForDeletion } from './wait.js'

export const KATA_RUNTIME_LABEL = 'katacontainers.io/kata-runtime'
const OWNER_LABEL = 'kata-deploy-job-dispatcher/owner'
const NODE_LABEL = 'kata-deploy-job-dispatcher/node'
const NODE_ANNOTATION = 'kata-deploy-job-dispatcher/node-name'
const OUTCOME_LABEL = 'kata-lcm.test/outcome'
const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch)

export interface StandInOptions {
  /** The per-node install Job of kata-deploy `version` fails on `node` (kwok ends its pod Failed). */
  failInstall?: (node: string, version: string) => boolean
  /** kata-deploy `version`'s dispatcher creates no Job for `node` (as it skips a node it cannot act on). */
  skipNode?: (node: string, version: string) => boolean
  /**
   * Run 4.1.0's cleanup of owned nodes outside the desired set on every version, taking every node
   * labelled `katacontainers.io/kata-runtime=true` as owned (a dispatcher that misbehaves).
   */
  alwaysCleanUp?: boolean
}

export interface StandIn {
  /** What the dispatcher stand-in did, in order (`install NODE`, `cleanup NODE`, `label NODE`, `unlabel NODE`, `hook failed|succeeded`). */
  log: string[]
  /** The next dispatcher does its work but its hook never ends (helm waits until its --timeout): `hook held`. */
  holdNextHook: boolean
  /** Resolves once `line` is in the log. */
  logged(line: string): Promise<void>
  stop(): void
}

/** The install's own marker label key, `kata-deploy.katacontainers.io/<suffix|default>`. */
export function instanceLabel(suffix?: string): string {
  return `kata-deploy.katacontainers.io/${suffix || 'default'}`
}

function tagOf(image: string | undefined): string {
  return image?.split('@')[0]?.split(':').at(-1) ?? ''
}

function flags(command: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const arg of command) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2] ?? 'true'])
  }
  return out
}

/** Starts the stand-in for the kata-deploy releases in `namespace`; `stop()` ends it. */
export function startKataDeployStandIn(namespace: string, options: StandInOptions = {}): StandIn {
  const kc = loadKubeConfig()
  const core = kc.makeApiClient(CoreV1Api)
  const batch = kc.makeApiClient(BatchV1Api)
  const log: string[] = []
  const waiting: { line: string; resolve: () => void }[] = []
  const note = (line: string) => {
    log.push(line)
    for (const w of waiting.filter((w) => w.line === line)) w.resolve()
  }
  const handled = new Set<string>()
  const labelled = new Set<string>()
  let stopped = false

  const labelNode = async (node: string, labels: Record<string, string | null>) => {
    await core.patchNode({ name: node, body: { metadata: { labels } } }, MERGE_PATCH)
  }

  // daemonset mode: the binary labels its node once its pod is Ready.
  const pods = followList<V1Pod>(kc, `/api/v1/namespaces/${namespace}/pods`, (items) => {
    for (const pod of items) {
      const name = pod.metadata?.labels?.name ?? ''
      const node = pod.spec?.nodeName
      if (!name.startsWith('kata-deploy') || !node || pod.metadata?.deletionTimestamp) continue
      const ready = (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
      const key = `${pod.metadata?.uid}`
      if (!ready || labelled.has(key)) continue
      labelled.add(key)
      const version = semver.valid(tagOf(pod.spec?.containers[0]?.image))
      const suffix = name === 'kata-deploy' ? undefined : name.slice('kata-deploy-'.length)
      void labelNode(node, {
        [KATA_RUNTIME_LABEL]: 'true',
        ...(version && semver.gte(version, '4.1.0') ? { [instanceLabel(suffix)]: 'true' } : {}),
      }).catch(() => labelled.delete(key))
    }
  })

  // job mode: the install dispatcher.
  const jobs = followList<V1Job>(
    kc,
    `/apis/batch/v1/namespaces/${namespace}/jobs`,
    (items) => {
      for (const job of items) {
        const uid = job.metadata?.uid ?? ''
        if (handled.has(uid) || job.metadata?.deletionTimestamp) continue
        handled.add(uid)
        void dispatch(job).catch((error: unknown) => note(`stand-in error: ${String(error)}`))
      }
    },
    { labelSelector: 'kata-deploy/dispatcher=install' },
  )

  async function runFanout(
    owner: V1Job,
    template: V1Job,
    prefix: string,
    nodes: string[],
    after: (node: string, ok: boolean) => Promise<void>,
  ): Promise<string[]> {
    const version = tagOf(template.spec?.template.spec?.containers[0]?.image)
    const failed: string[] = []
    await Promise.all(
      nodes.map(async (node) => {
        const name = `${prefix}-${node}`.slice(0, 63).replace(/-+$/, '')
        const fail = options.failInstall?.(node, version) === true
        const job: V1Job = structuredClone(template)
        job.metadata = {
          ...job.metadata,
          name,
          namespace,
          labels: { ...job.metadata?.labels, [OWNER_LABEL]: prefix, [NODE_LABEL]: node },
          annotations: { ...job.metadata?.annotations, [NODE_ANNOTATION]: node },
          ownerReferences: [
            { apiVersion: 'batch/v1', kind: 'Job', name: owner.metadata!.name!, uid: owner.metadata!.uid! },
          ],
        }
        const podMeta = (job.spec!.template.metadata ??= {})
        podMeta.labels = { ...podMeta.labels, [OWNER_LABEL]: prefix, ...(fail ? { [OUTCOME_LABEL]: 'fail' } : {}) }
        job.spec!.template.spec!.nodeName = node
        // The previous dispatcher's Jobs go with it (owner references), maybe not yet: clear a stale one first.
        await batch
          .deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' })
          .then(() => waitForDeletion(kc, `/apis/batch/v1/namespaces/${namespace}/jobs`, name))
          .catch(() => undefined)
        await batch.createNamespacedJob({ namespace, body: job })
        const done = await waitFor<V1Job>(
          kc,
          `/apis/batch/v1/namespaces/${namespace}/jobs`,
          (j) =>
            (j.status?.conditions ?? []).some((c) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True'),
          120_000,
          { fieldSelector: `metadata.name=${name}` },
        )
        const ok = (done.status?.conditions ?? []).some((c) => c.type === 'Complete' && c.status === 'True')
        if (!ok) failed.push(node)
        await after(node, ok)
      }),
    )
    return failed
  }

  async function dispatch(owner: V1Job): Promise<void> {
    const held = standIn.holdNextHook
    standIn.holdNextHook = false
    // The dispatcher works from its own pod (4.1.0+): nothing happens until the scheduler has placed
    // it. A pod nothing can take (every eligible node cordoned, its tolerations short) stays Pending,
    // and helm waits its --timeout for the hook, as on a real cluster.
    const dispatcherPod = await waitFor<V1Pod>(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      (p) => p.spec?.nodeName !== undefined,
      600_000,
      { labelSelector: `batch.kubernetes.io/controller-uid=${owner.metadata!.uid!}` },
    )
    if (stopped) return
    const pod = owner.spec?.template.spec
    const args = flags(pod?.containers[0]?.command ?? [])
    const configMap = pod?.volumes?.find((v) => v.configMap)?.configMap?.name ?? ''
    const templates = (await core.readNamespacedConfigMap({ name: configMap, namespace })).data ?? {}
    const install = parse(templates['install-job.yaml'] ?? '') as V1Job
    const prefix = args.get('name-prefix')?.[0] ?? 'kata-deploy-install'
    const marker = instanceLabel(args.get('multi-install-suffix')?.[0])
    const labelValue = args.get('node-label')?.[0]
    const desired = await desiredNodes(args)

    let failed: string[] = []
    if (args.has('cleanup-job-template') || options.alwaysCleanUp) {
      const ownership = options.alwaysCleanUp ? `${KATA_RUNTIME_LABEL}=true` : marker
      const owned = (await core.listNode({ labelSelector: ownership })).items.map((n) => n.metadata!.name!)
      const removed = owned.filter((n) => !desired.includes(n))
      const cleanup = parse(templates['cleanup-job.yaml'] ?? '') as V1Job
      failed = await runFanout(owner, cleanup, `${prefix}-removed`, removed, async (node, ok) => {
        note(`cleanup ${node}`)
        if (ok) {
          await labelNode(node, { [KATA_RUNTIME_LABEL]: null, [marker]: null })
          note(`unlabel ${node}`)
        }
      })
    }
    if (failed.length === 0) {
      const version = tagOf(install.spec?.template.spec?.containers[0]?.image)
      const targets = desired.filter((n) => !options.skipNode?.(n, version))
      failed = await runFanout(owner, install, prefix, targets, async (node, ok) => {
        note(`install ${node}`)
        if (!ok) return
        // 3.32.0/4.0.0: the Job's `label` container sets kata-runtime; 4.1.0: the dispatcher, with the marker too.
        await labelNode(node, {
          [KATA_RUNTIME_LABEL]: labelValue ?? 'true',
          ...(labelValue ? { [marker]: 'true' } : {}),
        })
        note(`label ${node}`)
      })
    }
    if (held) return void note('hook held')
    const outcome = failed.length === 0 ? 'succeed' : 'fail'
    if (stopped) return
    await core.patchNamespacedPod(
      { name: dispatcherPod.metadata!.name!, namespace, body: { metadata: { labels: { [OUTCOME_LABEL]: outcome } } } },
      MERGE_PATCH,
    )
    note(`hook ${failed.length === 0 ? 'succeeded' : 'failed'}`)
  }

  async function desiredNodes(args: Map<string, string[]>): Promise<string[]> {
    const explicit = args.get('nodes')?.[0]
    if (explicit)
      return [
        ...new Set(
          explicit
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
        ),
      ].sort()
    const selectors = args.get('node-selector') ?? ['']
    const names = new Set<string>()
    for (const labelSelector of selectors)
      for (const n of (await core.listNode(labelSelector ? { labelSelector } : {})).items) names.add(n.metadata!.name!)
    return [...names].sort()
  }

  const standIn: StandIn = {
    log,
    holdNextHook: false,
    logged: (line) =>
      log.includes(line) ? Promise.resolve() : new Promise((resolve) => waiting.push({ line, resolve })),
    stop() {
      stopped = true
      pods.stop()
      jobs.stop()
    },
  }
  return standIn
}
