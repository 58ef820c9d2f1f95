/**
 * TEST CODE: a stand-in for what kata-deploy's own binaries do to the cluster, for kwok nodes where
 * no container runs. Written from kata-containers' source at 3.32.0, 4.0.0 and 4.1.0
 * (tools/packaging/kata-deploy: `job-dispatcher/src/{main,job,nodes}.rs`, the chart's
 * `kata-deploy-install-job.yaml` and `kata-deploy-job-templates.yaml`, the binary's `install-stage-label`),
 * and for 4.2.0 (kata-containers a395737cae: the chart runs the external
 * `ghcr.io/kata-containers/k8s-job-dispatcher`, `/usr/bin/k8s-job-dispatcher`) from
 * kata-containers/k8s-job-dispatcher's `src/main.rs` and README:
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
 * - the external dispatcher (4.2.0) takes what the in-tree one hard-coded from its flags: the Jobs'
 *   tracking labels from `--tracking-label-prefix` (the chart passes `kata-deploy-job-dispatcher`, so
 *   they are unchanged), the node label from `--node-label-key`, the install marker from
 *   `--instance-label-prefix`/`--multi-install-suffix`; with `--require-node-machine-id` /
 *   `--require-node-runtime-version` a node reporting no `.status.nodeInfo.machineID` /
 *   `containerRuntimeVersion` fails without a Job; every per-node Job's containers get
 *   `NODE_MACHINE_ID` and `CONTAINER_RUNTIME_VERSION` from the node (a value the template has is kept);
 *   and each node's result is recorded on it: label `<prefix>/result=succeeded|failed`, annotations
 *   `<prefix>/error` (removed on success) and `<prefix>/finished-at`; a cleanup clears all three. It
 *   still ends its pod Failed (non-zero exit) when any node failed.
 *
 * The dispatcher's work starts once its pod is scheduled (a Pending dispatcher does nothing).
 *
 * Not imitated: the dispatcher's pacing (`--parallelism`: every Job is created at once), its taint
 * filter for selector-chosen nodes, `--wait-for-nodes-secs`, `--require-node-handlers` (kwok nodes
 * report no runtime handlers), the `pending` claim before a node's Job, the in-tree dispatcher's
 * (4.1.0) own machine-ID check, and the external one's Events and UID-guarded patches.
 */
import { BatchV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type V1Job, type V1Pod } from '@kubernetes/client-node'
import semver from 'semver'
import { parse } from 'yaml'
import { loadKubeConfig } from './cluster.js'
import { followList, waitFor, waitForDeletion } from './wait.js'

export const KATA_RUNTIME_LABEL = 'katacontainers.io/kata-runtime'
/** The in-tree dispatcher's (3.32.0-4.1.0) tracking prefix; the external one takes it from its flag. */
const IN_TREE_TRACKING = 'kata-deploy-job-dispatcher'
/** What the external dispatcher (4.2.0) uses without `--tracking-label-prefix`. */
const EXTERNAL_TRACKING = 'k8s-job-dispatcher'
const EXTERNAL_BINARY = '/usr/bin/k8s-job-dispatcher'
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
export function instanceLabel(suffix?: string, prefix = 'kata-deploy.katacontainers.io'): string {
  return `${prefix}/${suffix || 'default'}`
}

/** The external dispatcher's (4.2.0) record of a node's result, under the chart's tracking prefix. */
export const RESULT_LABEL = `${IN_TREE_TRACKING}/result`
export const ERROR_ANNOTATION = `${IN_TREE_TRACKING}/error`
export const FINISHED_ANNOTATION = `${IN_TREE_TRACKING}/finished-at`

/** How one dispatcher run names and records things: the in-tree dispatcher's constants, or the external one's flags. */
interface Dispatcher {
  external: boolean
  /** `<tracking>/owner`, `<tracking>/node`, `<tracking>/node-name` on the Jobs; `<tracking>/result` on nodes. */
  tracking: string
  /** The shared node label (`katacontainers.io/kata-runtime`). */
  labelKey: string
  /** This install's marker, when the dispatcher keeps one. */
  marker: string | undefined
  requireMachineId: boolean
  requireRuntimeVersion: boolean
}

function dispatcherOf(command: readonly string[], args: Map<string, string[]>): Dispatcher {
  const external = command[0] === EXTERNAL_BINARY
  const suffix = args.get('multi-install-suffix')?.[0]
  const prefix = args.get('instance-label-prefix')?.[0]
  return {
    external,
    tracking: args.get('tracking-label-prefix')?.[0] ?? (external ? EXTERNAL_TRACKING : IN_TREE_TRACKING),
    labelKey: args.get('node-label-key')?.[0] ?? KATA_RUNTIME_LABEL,
    marker: external ? (prefix ? instanceLabel(suffix, prefix) : undefined) : instanceLabel(suffix),
    requireMachineId: args.has('require-node-machine-id'),
    requireRuntimeVersion: args.has('require-node-runtime-version'),
  }
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

  /** The external dispatcher's record of a node's result (a cleanup clears it: `undefined`). */
  const recordResult = async (d: Dispatcher, node: string, result: { ok: boolean; error?: string } | undefined) => {
    if (!d.external) return
    const at = new Date().toISOString()
    await core.patchNode(
      {
        name: node,
        body: {
          metadata: {
            labels: { [`${d.tracking}/result`]: result ? (result.ok ? 'succeeded' : 'failed') : null },
            annotations: {
              [`${d.tracking}/error`]: result && !result.ok ? (result.error ?? 'its Job failed') : null,
              [`${d.tracking}/finished-at`]: result ? at : null,
            },
          },
        },
      },
      MERGE_PATCH,
    )
  }

  /** Why the external dispatcher would not dispatch to `node` (a fact its flags require is missing). */
  const missingFact = async (d: Dispatcher, node: string): Promise<string | undefined> => {
    if (!d.requireMachineId && !d.requireRuntimeVersion) return undefined
    const info = (await core.readNode({ name: node })).status?.nodeInfo
    if (d.requireRuntimeVersion && !info?.containerRuntimeVersion)
      return `node ${node}: reports no containerRuntimeVersion immediately before dispatch`
    if (d.requireMachineId && !info?.machineID) return `node ${node}: reports no machineID immediately before dispatch`
    return undefined
  }

  /** The external dispatcher hands each container the node's facts, keeping a value the template has. */
  const withNodeFacts = async (job: V1Job, node: string) => {
    const info = (await core.readNode({ name: node })).status?.nodeInfo
    const facts = { CONTAINER_RUNTIME_VERSION: info?.containerRuntimeVersion, NODE_MACHINE_ID: info?.machineID }
    const spec = job.spec!.template.spec!
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      for (const [name, value] of Object.entries(facts)) {
        if (!value || (c.env ?? []).some((e) => e.name === name)) continue
        c.env = [...(c.env ?? []), { name, value }]
      }
    }
  }

  async function runFanout(
    d: Dispatcher,
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
        const missing = await missingFact(d, node)
        if (missing) {
          failed.push(node)
          await recordResult(d, node, { ok: false, error: missing })
          return void note(`refused ${node}`)
        }
        const name = `${prefix}-${node}`.slice(0, 63).replace(/-+$/, '')
        const fail = options.failInstall?.(node, version) === true
        const job: V1Job = structuredClone(template)
        job.metadata = {
          ...job.metadata,
          name,
          namespace,
          labels: { ...job.metadata?.labels, [`${d.tracking}/owner`]: prefix, [`${d.tracking}/node`]: node },
          annotations: { ...job.metadata?.annotations, [`${d.tracking}/node-name`]: node },
          ownerReferences: [
            { apiVersion: 'batch/v1', kind: 'Job', name: owner.metadata!.name!, uid: owner.metadata!.uid! },
          ],
        }
        const podMeta = (job.spec!.template.metadata ??= {})
        podMeta.labels = {
          ...podMeta.labels,
          [`${d.tracking}/owner`]: prefix,
          ...(fail ? { [OUTCOME_LABEL]: 'fail' } : {}),
        }
        job.spec!.template.spec!.nodeName = node
        if (d.external) await withNodeFacts(job, node)
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
    const command = pod?.containers[0]?.command ?? []
    const args = flags(command)
    const d = dispatcherOf(command, args)
    const configMap = pod?.volumes?.find((v) => v.configMap)?.configMap?.name ?? ''
    const templates = (await core.readNamespacedConfigMap({ name: configMap, namespace })).data ?? {}
    const install = parse(templates['install-job.yaml'] ?? '') as V1Job
    const prefix = args.get('name-prefix')?.[0] ?? 'kata-deploy-install'
    const marker = d.marker
    const labelValue = args.get('node-label')?.[0]
    const desired = await desiredNodes(args)

    let failed: string[] = []
    if (args.has('cleanup-job-template') || options.alwaysCleanUp) {
      const ownership = options.alwaysCleanUp ? `${d.labelKey}=true` : (marker ?? d.labelKey)
      const owned = (await core.listNode({ labelSelector: ownership })).items.map((n) => n.metadata!.name!)
      const removed = owned.filter((n) => !desired.includes(n))
      const cleanup = parse(templates['cleanup-job.yaml'] ?? '') as V1Job
      failed = await runFanout(d, owner, cleanup, `${prefix}-removed`, removed, async (node, ok) => {
        note(`cleanup ${node}`)
        if (ok) {
          await labelNode(node, { [d.labelKey]: null, ...(marker ? { [marker]: null } : {}) })
          await recordResult(d, node, undefined)
          note(`unlabel ${node}`)
        }
      })
    }
    if (failed.length === 0) {
      const version = tagOf(install.spec?.template.spec?.containers[0]?.image)
      const targets = desired.filter((n) => !options.skipNode?.(n, version))
      failed = await runFanout(d, owner, install, prefix, targets, async (node, ok) => {
        note(`install ${node}`)
        if (!ok) return void (await recordResult(d, node, { ok: false }))
        // 3.32.0/4.0.0: the Job's `label` container sets kata-runtime; 4.1.0+: the dispatcher, with the marker too.
        await labelNode(node, {
          [d.labelKey]: labelValue ?? 'true',
          ...(labelValue && marker ? { [marker]: 'true' } : {}),
        })
        await recordResult(d, node, { ok: true })
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
