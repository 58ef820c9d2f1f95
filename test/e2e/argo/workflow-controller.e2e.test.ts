/**
 * The chart's WorkflowTemplate run by a REAL Argo workflow-controller (built from its Go module at
 * ARGO_VERSION), every step a real pod of the locally built kata-lcm image on the test bed's real
 * kubelet node (containerd + runc), the kata-deploy fleet on kwok nodes. Workflows are submitted
 * with `argo submit` as docs/argo.md says; the step pods reach the API server with in-cluster
 * config and the chart's ServiceAccount.
 *
 * The real node and the controller are started for this file only (harness/real-node.ts says why).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type KubeConfig,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node'
import { parse, stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuditLog, describeEvents, type AuditEvent } from '../harness/audit.js'
import { parseMetrics } from '../harness/promcheck.js'
import { hostAddress, startPrometheus, unreachablePrometheusUrl } from '../harness/prometheus.js'
import { REPO_ROOT, cacheDir, e2eCluster, envWithTools, loadKubeConfig, run, toolsBinDir } from '../harness/cluster.js'
import {
  REAL_NODE_TAINT,
  loadImage,
  startArgoController,
  startRealNode,
  stopArgoController,
  stopRealNode,
  type ArgoController,
  type RealNode,
} from '../harness/real-node.js'
import { waitForList, waitForObject } from '../harness/wait.js'
import {
  clusterState,
  ensureCliBuilt,
  fixtureCharts,
  helm,
  kataLcm,
  kubectl,
  must,
  removeCli,
  RUN_LABEL,
  setupScenario,
  teardownScenario,
  VERIFICATION_POD,
  type Scenario,
} from './argo-harness.js'

const CURRENT = '3.27.0'
const TARGET = '3.28.0'
/** Where the test image carries the fixture charts (scripts/image/build-local.sh with-charts). */
const IMAGE_CHARTS = '/opt/kata-deploy-charts'
const ARGO = path.join(toolsBinDir(), 'argo')

let kubeconfig: string
let kc: KubeConfig
let audit: AuditLog
let charts: Record<string, string>
let dir: string
let podFile: string
let node: RealNode | undefined
let controller: ArgoController | undefined
let image: string
const cleanups: (() => Promise<unknown>)[] = []

interface WfNode {
  id: string
  name: string
  displayName: string
  type: string
  templateName?: string
  phase?: string
  startedAt?: string
  finishedAt?: string
  inputs?: { parameters?: { name: string; value?: string }[] }
  outputs?: { parameters?: { name: string; value?: string }[] }
}
interface Workflow {
  metadata: { name: string }
  spec: { serviceAccountName?: string }
  status?: { phase?: string; startedAt?: string; finishedAt?: string; nodes?: Record<string, WfNode> }
}

/**
 * Waves take nodes in name order: "vfail-c" sorts after the plain names and before the "x-" ones,
 * so ['a', 'b', 'vfail-c', 'x-d', ...] puts the failing node in wave 2 at batch 2.
 */
function newScenario(name: string, nodes: string[]): Scenario {
  const id = `c${name}-${randomBytes(2).toString('hex')}`
  const prefixed = /^(vfail|x)-(.*)$/
  return {
    id,
    namespace: `kd-${id}`,
    nodes: nodes.map((n) => {
      const m = prefixed.exec(n)
      return m ? `${m[1]}-${id}-${m[2]}` : `${id}-${n}`
    }),
  }
}

interface Installed {
  argoNamespace: string
  serviceAccount: string
  username: string
}

/** The verification pod of the policies, and pool `first`'s own: the same with its container named `verify-first`. */
async function policyPods() {
  const pod = parse(await readFile(podFile, 'utf8')) as { spec: { containers: Record<string, unknown>[] } }
  const firstPod = {
    ...pod,
    spec: { ...pod.spec, containers: pod.spec.containers.map((c) => ({ ...c, name: 'verify-first' })) },
  }
  return { pod, firstPod }
}

/**
 * A watch on `path` (with `query`) that client-node's Watch would end after 30 s without events,
 * started again until the returned stop is called.
 */
async function resumedWatch<T>(
  path: string,
  query: Record<string, string>,
  onEvent: (type: string, obj: T) => void,
): Promise<() => void> {
  let stopped = false
  let req: AbortController | undefined
  const start = async (): Promise<void> => {
    req = await new Watch(kc).watch(path, query, onEvent, () => {
      if (!stopped) void start()
    })
  }
  await start()
  return () => {
    stopped = true
    req?.abort()
  }
}

/**
 * The fleet policy of a scenario, stored in the cluster with `kata-lcm policy set` (in the scenario's
 * namespace): its release, the chart in the image, its nodes, a canary of 1 then waves of 3, its
 * verification pod, and two pools: `first` (the first node, verified with its own pod, whose container
 * is `verify-first`), then `rest`.
 */
async function setPolicyFor(s: Scenario): Promise<string> {
  const { pod, firstPod } = await policyPods()
  const file = path.join(dir, `policy-${s.id}.yaml`)
  await writeFile(
    file,
    stringify({
      apiVersion: 'kata-lcm.katacontainers.io/v1alpha1',
      kind: 'Policy',
      release: { name: 'kata-deploy', namespace: s.namespace },
      chart: `${IMAGE_CHARTS}/kata-deploy-${TARGET}.tgz`,
      nodeSelector: `${RUN_LABEL}=${s.id}`,
      batchSize: 3,
      canary: 1,
      deploymentMode: 'daemonset',
      verification: { namespace: s.namespace, pod },
      pools: [
        { name: 'first', nodeSelector: `kubernetes.io/hostname=${s.nodes[0]}`, verification: { pod: firstPod } },
        { name: 'rest' },
      ],
    }),
  )
  await must(kataLcm(['policy', 'set', file, '--policy-namespace', s.namespace], kubeconfig), 'kata-lcm policy set')
  return s.namespace
}

/**
 * `kata-lcm install-workflow` for a scenario: its own Argo namespace, the test image, the step pods on
 * the real node. With `policyNamespace` the fleet policy stored there gives the verification pod,
 * the release and the defaults (no flag for them); otherwise flags do.
 */
/** The template's other shape: four step pods per wave, one per phase (the default is one pod per wave). */
const FOUR_STEPS = ['--set', 'onePodPerWave=false']

async function installFor(s: Scenario, policyNamespace?: string, extra: string[] = []): Promise<Installed> {
  const argoNamespace = `argo-${s.id}`
  const release = `klm-${s.id}`
  const core = kc.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: argoNamespace } } })
  cleanups.push(() => core.deleteNamespace({ name: argoNamespace }).catch(() => undefined))
  cleanups.push(() => helm(kubeconfig, ['uninstall', release, '-n', argoNamespace]))
  const [repository, tag] = image.split(':') as [string, string]
  const fleet = policyNamespace
    ? ['--policy-namespace', policyNamespace]
    : [
        '--verification-pod',
        podFile,
        '--helm-release',
        'kata-deploy',
        '--helm-namespace',
        s.namespace,
        '--set',
        `defaults.verificationNamespace=${s.namespace}`,
        '--set',
        `defaults.chart=${IMAGE_CHARTS}/kata-deploy-${TARGET}.tgz`,
      ]
  const r = await kataLcm(
    [
      'install-workflow',
      ...fleet,
      '--namespace',
      argoNamespace,
      '--release-name',
      release,
      '--set',
      `image.repository=${repository}`,
      '--set',
      `image.tag=${tag}`,
      '--set',
      'image.pullPolicy=Never',
      '--set',
      `nodeSelector.kubernetes\\.io/hostname=${node!.name}`,
      '--set',
      `tolerations[0].key=${REAL_NODE_TAINT.key}`,
      '--set',
      `tolerations[0].operator=${REAL_NODE_TAINT.operator}`,
      '--set',
      `tolerations[0].effect=${REAL_NODE_TAINT.effect}`,
      ...extra,
    ],
    kubeconfig,
  )
  expect(r.code, r.stderr).toBe(0)
  const serviceAccount = `${release}-kata-lifecycle-manager`
  return { argoNamespace, serviceAccount, username: `system:serviceaccount:${argoNamespace}:${serviceAccount}` }
}

/** `argo submit -n NS --from workflowtemplate/kata-lifecycle-manager ARGS`; the workflow's name. */
async function submit(ns: string, args: string[]): Promise<string> {
  const r = await must(
    run(ARGO, ['submit', '-n', ns, '--from', 'workflowtemplate/kata-lifecycle-manager', ...args, '-o', 'name'], {
      env: envWithTools({ KUBECONFIG: kubeconfig }),
    }),
    'argo submit',
  )
  return r.stdout.trim()
}

/** deploy-version toward TARGET over the scenario's nodes in daemonset mode, waves of 2, plus `extra`. */
function submitDeploy(inst: Installed, s: Scenario, extra: string[] = []): Promise<string> {
  return submit(inst.argoNamespace, [
    '-p',
    `target-version=${TARGET}`,
    '-p',
    `previous-chart=${IMAGE_CHARTS}/kata-deploy-${CURRENT}.tgz`,
    '-p',
    `node-selector=${RUN_LABEL}=${s.id}`,
    '-p',
    'batch-size=2',
    '-p',
    'deployment-mode=daemonset',
    ...extra,
  ])
}

async function finished(ns: string, name: string, timeoutMs = 420_000): Promise<Workflow> {
  return await waitForObject<Workflow & { metadata: { name: string } }>(
    kc,
    `/apis/argoproj.io/v1alpha1/namespaces/${ns}/workflows`,
    name,
    (wf) => ['Succeeded', 'Failed', 'Error'].includes(wf.status?.phase ?? ''),
    timeoutMs,
    `workflow ${name} finished`,
  )
}

/** `kata-lcm status` of a scenario's release and nodes. */
function scenarioStatus(s: Scenario): ReturnType<typeof kataLcm> {
  return kataLcm(
    [
      'status',
      '--helm-release',
      'kata-deploy',
      '--helm-namespace',
      s.namespace,
      '--node-selector',
      `${RUN_LABEL}=${s.id}`,
    ],
    kubeconfig,
  )
}

function podNodes(wf: Workflow): WfNode[] {
  return Object.values(wf.status?.nodes ?? {})
    .filter((n) => n.type === 'Pod')
    .sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? ''))
}

function param(n: WfNode, name: string): string | undefined {
  return n.inputs?.parameters?.find((p) => p.name === name)?.value
}

/** "plan", "prepare 1", ..., "exit": the pod steps in start order, with their phase. */
function stepSummary(wf: Workflow): string[] {
  return podNodes(wf).map(
    (n) =>
      `${n.templateName === 'wave-phase' ? `${param(n, 'phase')} ${param(n, 'wave')}` : n.templateName} ${n.phase}`,
  )
}

/** Every status a node of `names` shows while `during` runs (a watch on the nodes). */
async function recordStatuses<T>(
  names: string[],
  during: () => Promise<T>,
): Promise<{ result: T; seen: Map<string, string[]> }> {
  const seen = new Map<string, string[]>(names.map((n) => [n, []]))
  const key = 'katacontainers.io/kata-lifecycle-manager-status'
  const req = await new Watch(kc).watch(
    '/api/v1/nodes',
    {},
    (_type: string, obj: V1Node) => {
      const name = obj.metadata?.name ?? ''
      const status = obj.metadata?.annotations?.[key]
      const list = seen.get(name)
      if (list && status && list.at(-1) !== status) list.push(status)
    },
    () => undefined,
  )
  try {
    return { result: await during(), seen }
  } finally {
    req.abort()
  }
}

/** Every version of one node's annotations while `during` runs (a watch on the node). */
async function recordAnnotations<T>(
  name: string,
  during: () => Promise<T>,
): Promise<{ result: T; seen: Record<string, string>[] }> {
  const seen: Record<string, string>[] = []
  const req = await new Watch(kc).watch(
    '/api/v1/nodes',
    { fieldSelector: `metadata.name=${name}` },
    (_type: string, obj: V1Node) => {
      seen.push({ ...obj.metadata?.annotations })
    },
    () => undefined,
  )
  try {
    return { result: await during(), seen }
  } finally {
    req.abort()
  }
}

/** How many kata-deploy pods kata-lcm deleted (restarted) in `namespace`, from the audit log. */
async function kataDeployPodDeletes(namespace: string): Promise<number> {
  return (await audit.events()).filter(
    (e) =>
      e.stage === 'ResponseComplete' &&
      e.verb === 'delete' &&
      e.objectRef?.resource === 'pods' &&
      e.objectRef?.namespace === namespace &&
      (e.objectRef?.name ?? '').startsWith('kata-deploy-') &&
      (e.userAgent ?? '').startsWith('kata-lcm/'),
  ).length
}

/** The container names of every verification pod created in `namespace` while `during` runs, per node. */
async function recordVerificationPods<T>(
  namespace: string,
  during: () => Promise<T>,
): Promise<{ result: T; pods: Map<string, string[]> }> {
  const pods = new Map<string, string[]>()
  const seen = new Set<string>()
  // The plan step is quieter than the Watch's 30 s: resumed.
  const stop = await resumedWatch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: 'kata-lcm.katacontainers.io/verification-for' },
    (_type: string, pod: V1Pod) => {
      const uid = pod.metadata?.uid ?? ''
      if (seen.has(uid)) return
      seen.add(uid)
      const node = pod.metadata?.labels?.['kata-lcm.katacontainers.io/verification-for'] ?? ''
      pods.set(node, [...(pods.get(node) ?? []), ...(pod.spec?.containers ?? []).map((c) => c.name)])
    },
  )
  try {
    return { result: await during(), pods }
  } finally {
    stop()
  }
}

function nodeStatuses(state: Awaited<ReturnType<typeof clusterState>>): (string | undefined)[][] {
  return state.nodes.map((n) => [
    n.annotations['katacontainers.io/kata-lifecycle-manager-status'],
    n.annotations['katacontainers.io/kata-current-version'],
    String(n.unschedulable),
  ])
}

// ------------------------------------------------------------- RBAC as docs/argo.md lists it

interface Grant {
  scope: string
  resource: string
  verbs: string[]
}
const ALL_BUT_STAR = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection']

/** The RBAC table of docs/argo.md: scope (cluster | a values key | a namespace), resource, verbs. */
async function documentedGrants(): Promise<Grant[]> {
  const md = await readFile(path.join(REPO_ROOT, 'docs/argo.md'), 'utf8')
  const section = md.slice(md.indexOf('## RBAC'), md.indexOf('\n## ', md.indexOf('## RBAC') + 1))
  const grants: Grant[] = []
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim())
    if (cells.length < 5 || !/^(Cluster)?Role /.test(cells[1] ?? '')) continue
    const scope = cells[2]!.replace(/`/g, '')
    for (const part of cells[3]!
      .split(';')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const all = /^(.+): all verbs but `\*`$/.exec(part)
      if (all) {
        for (const resource of all[1]!.split(',').map((r) => r.trim()))
          grants.push({ scope, resource, verbs: ALL_BUT_STAR })
        continue
      }
      const m = /^(\S+) ([a-z/]+)$/.exec(part)
      if (!m) throw new Error(`docs/argo.md RBAC: cannot read "${part}"`)
      grants.push({ scope, resource: m[1]!, verbs: m[2]!.split('/') })
    }
  }
  return grants
}

/** The namespace a documented scope stands for in a scenario ('' = cluster-wide). */
function scopeNamespace(scope: string, s: Scenario, inst: Installed): string {
  if (scope === 'cluster') return ''
  if (scope === 'defaults.verificationNamespace' || scope === 'defaults.helmNamespace') return s.namespace
  if (scope === 'argoNamespace') return inst.argoNamespace
  return scope
}

function allowed(
  grants: Grant[],
  s: Scenario,
  inst: Installed,
  namespace: string,
  resource: string,
  verb: string,
): boolean {
  return grants.some((g) => {
    const ns = scopeNamespace(g.scope, s, inst)
    return (ns === '' || ns === namespace) && g.resource === resource && g.verbs.includes(verb)
  })
}

/** `kubectl auth can-i --list` as rows "resource verb" (the API group dropped, resource names none). */
async function canIList(user: string, namespace: string): Promise<string[]> {
  const r = await must(
    kubectl(kubeconfig, ['auth', 'can-i', '--list', `--as=${user}`, '-n', namespace]),
    'kubectl auth can-i --list',
  )
  const rows: string[] = []
  for (const line of r.stdout.split('\n').slice(1)) {
    const m = /^(\S+)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+\[([^\]]*)\]/.exec(line.trim())
    if (!m) continue
    const resource = m[1]!.replace(/^([^./]+)(\.[^/]+)?(\/.*)?$/, '$1$3')
    for (const verb of m[4]!.split(' ').filter(Boolean))
      rows.push(`${resource} ${verb}${m[2] !== '[]' ? ` url ${m[2]}` : ''}${m[3] !== '[]' ? ` names ${m[3]}` : ''}`)
  }
  return rows
}

/**
 * Per step of a finished workflow: the pod node's duration (Argo: scheduling, init and wait
 * containers, kubelet), the kata-lcm process inside it, the part of that before its first API
 * request (audit log, user agent kata-lcm/...: process start, module and client load), and the
 * time argoexec's emissary takes to notice the exit.
 * - start: the main container's start (the real node's containerd logs "StartContainer ... returns
 *   successfully" in nanoseconds; the emissary execs kata-lcm a few milliseconds later);
 * - kata-lcm's end: its last output line, as the container runtime stamped it (kubectl logs
 *   --timestamps, nanoseconds; every step ends by printing its result);
 * - the emissary's "sub-process exited" line: it reaps its child by polling every second
 *   (osspecific.Wait), so that line comes up to a second after kata-lcm is gone: Argo's share.
 * Printed and written to ${KATA_LCM_CACHE}/perf/; it asserts nothing.
 */
async function measure(wf: Workflow, pods: V1Pod[], inst: Installed, submitted: number, done: number): Promise<void> {
  await audit.barrier(kc)
  const events = await audit.find({ since: new Date(submitted), username: inst.username, userAgentPrefix: 'kata-lcm' })
  const started = new Map<string, number>()
  for (const line of (await readFile(path.join(node!.logs, 'containerd.log'), 'utf8')).split('\n')) {
    const m = /^time="([^"]+)".*StartContainer for \\?"([0-9a-f]{64})\\?" returns successfully/.exec(line)
    if (m) started.set(m[2]!, Date.parse(m[1]!))
  }
  // kubectl logs --timestamps: each line led by the time the container runtime read it (RFC 3339,
  // nanoseconds), finer than the whole seconds argoexec's emissary stamps its own lines with.
  const stamp = (line: string | undefined) => (line ? Date.parse(line.slice(0, line.indexOf(' '))) : NaN)
  const rows: { step: string; pod: number; kataLcm: number; startup: number; reaped: number }[] = []
  for (const n of podNodes(wf)) {
    const pod = pods.find((p) => p.metadata?.annotations?.['workflows.argoproj.io/node-name'] === n.name)
    if (!pod) throw new Error(`no pod for ${n.name}`)
    const logs = (
      await must(
        kubectl(kubeconfig, ['logs', '--timestamps', '-n', inst.argoNamespace, pod.metadata!.name!, '-c', 'main']),
        'kubectl logs',
      )
    ).stdout.split('\n')
    const id = pod.status?.containerStatuses
      ?.find((c) => c.name === 'main')
      ?.containerID?.replace(/^containerd:\/\//, '')
    const start = id ? (started.get(id) ?? NaN) : NaN
    const exited = stamp(logs.find((l) => l.includes('sub-process exited')))
    const printed = logs.filter((l) => l.trim() && !l.includes('argo=true')).map(stamp)
    const end = printed.length > 0 ? Math.max(...printed) : NaN
    const first =
      events
        .filter((e) => Date.parse(e.requestReceivedTimestamp) >= start && Date.parse(e.requestReceivedTimestamp) <= end)
        .map((e) => Date.parse(e.requestReceivedTimestamp))
        .sort((a, b) => a - b)[0] ?? NaN
    rows.push({
      step: n.templateName === 'wave-phase' ? `${param(n, 'phase')} ${param(n, 'wave')}` : (n.templateName ?? n.name),
      pod: Date.parse(n.finishedAt!) - Date.parse(n.startedAt!),
      kataLcm: end - start,
      startup: first - start,
      reaped: exited - end,
    })
  }
  // A record, not a check: speed is judged in bench/ (docs/performance.md), never by a test. A row
  // whose lines were not found (argoexec's or containerd's wording) is reported as such (null), not failed.
  const mean = (k: 'pod' | 'kataLcm' | 'startup' | 'reaped') =>
    Math.round(rows.reduce((a, r) => a + r[k], 0) / rows.length)
  const report = {
    date: new Date().toISOString(),
    submitToDoneMs: done - submitted,
    steps: rows.length,
    meanMs: { pod: mean('pod'), kataLcm: mean('kataLcm'), startup: mean('startup'), reaped: mean('reaped') },
    rows,
  }
  const out = path.join(cacheDir(), 'perf')
  await mkdir(out, { recursive: true })
  await writeFile(path.join(out, `workflow-controller-${Date.now()}.json`), JSON.stringify(report, null, 2))
  console.error(`[perf] workflow-controller: ${JSON.stringify(report)}`)
}

beforeAll(async () => {
  const cluster = e2eCluster()
  kubeconfig = cluster.kubeconfigPath
  kc = loadKubeConfig(kubeconfig)
  audit = new AuditLog(cluster.auditLogPath)
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-wfc-'))
  podFile = path.join(dir, 'verification-pod.yaml')
  await writeFile(podFile, VERIFICATION_POD)
  await ensureCliBuilt()
  charts = await fixtureCharts()
  node = await startRealNode(cluster.name)
  image = await loadImage(node, ['with-charts', path.dirname(charts[TARGET]!)])
  controller = await startArgoController(node, `argo-wfc-${randomBytes(2).toString('hex')}`)
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  if (controller) await stopArgoController(controller)
  if (node) await stopRealNode(node)
  if (dir) await rm(dir, { recursive: true, force: true })
  await removeCli()
})

/**
 * The template's custom metrics for one release as the real controller's /metrics serves them
 * (Argo prefixes them `argo_workflows_`), parsed by Prometheus' own parser: `value(name, labels)`
 * with the name after `argo_workflows_kata_lcm_`, and the type of each family.
 */
async function templateMetrics(release: string): Promise<{
  value: (name: string, labels?: Record<string, string>) => number | undefined
  types: Record<string, string>
}> {
  const response = await fetch(controller!.metricsUrl)
  expect(response.status).toBe(200)
  const families = await parseMetrics(await response.text())
  const prefix = 'argo_workflows_kata_lcm_'
  const ours = Object.entries(families).filter(([name]) => name.startsWith(prefix))
  return {
    value: (name, labels = {}) =>
      families[prefix + name]?.samples.find((s) =>
        Object.entries({ release, ...labels }).every(([k, v]) => s.labels[k] === v),
      )?.value,
    types: Object.fromEntries(ours.map(([name, f]) => [name.slice(prefix.length), f.type])),
  }
}

describe('workflow-controller: deploy-version, rollback-node and RBAC', () => {
  it("deploy-version over 3 waves (two pools in order, a canary of 1, then batch 3), driven by the fleet policy, succeeds, every node completed, each pool verified with its own pod, lock released; step pods run as the chart's ServiceAccount within docs/argo.md's RBAC; rollback-node as documented", async () => {
    const s = newScenario('ok', ['a', 'b', 'c', 'd', 'e'])
    await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
    cleanups.push(() => teardownScenario(kc, kubeconfig, s))
    // The policy (kata-lcm policy set) gives the release, nodes, the mode, the verification pod, a canary
    // of 1 then waves of 3, and two pools: `first` (node a, its own pod), then `rest`, whose canary is
    // its first wave: 5 nodes make 3 waves, [a] [b] [c d e].
    const inst = await installFor(s, await setPolicyFor(s))
    const t0 = new Date()

    let submitted = 0
    let done = 0
    const {
      result: { result: wf, seen },
      pods: verified,
    } = await recordVerificationPods(s.namespace, () =>
      recordStatuses(s.nodes, async () => {
        submitted = Date.now()
        // previous-chart: the chart is a .tgz in the image (docs/argo.md), one version only.
        const name = await submit(inst.argoNamespace, [
          '-p',
          `target-version=${TARGET}`,
          '-p',
          `previous-chart=${IMAGE_CHARTS}/kata-deploy-${CURRENT}.tgz`,
        ])
        const w = await finished(inst.argoNamespace, name)
        done = Date.now()
        return w
      }),
    )
    expect(wf.status?.phase, stepSummary(wf).join('\n')).toBe('Succeeded')
    // Pool `first` verified with its own pod, the others with the policy's.
    expect(s.nodes.map((n) => verified.get(n))).toEqual(s.nodes.map((_, i) => [i === 0 ? 'verify-first' : 'verify']))
    // The chart's default: each wave one step pod (onePodPerWave).
    expect(stepSummary(wf)).toEqual([
      'plan Succeeded',
      ...[1, 2, 3].map((w) => `wave ${w} Succeeded`),
      'finalize Succeeded',
    ])
    const after = await clusterState(kc, kubeconfig, s)
    expect(nodeStatuses(after)).toEqual(s.nodes.map(() => ['completed', TARGET, 'false']))
    expect(after).toMatchObject({
      release: { chartVersion: TARGET, status: 'deployed' },
      runRecord: false,
      lock: false,
    })
    for (const n of s.nodes) expect(seen.get(n)).not.toContain('rolling-back')

    // Step pods: on the real node, the chart's ServiceAccount, logs readable with kubectl logs.
    const pods = (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: inst.argoNamespace })).items
    expect(pods).toHaveLength(podNodes(wf).length)
    for (const p of pods)
      expect([p.spec?.nodeName, p.spec?.serviceAccountName]).toEqual([node!.name, inst.serviceAccount])
    const planPod = pods.find((p) =>
      /\.plan(\(\d+\))?$/.test(p.metadata?.annotations?.['workflows.argoproj.io/node-name'] ?? ''),
    )!
    const logs = await must(
      kubectl(kubeconfig, ['logs', '-n', inst.argoNamespace, planPod.metadata!.name!, '-c', 'main']),
      'kubectl logs',
    )
    // kata-lcm's stdout line among argoexec's (emissary) log lines.
    const planLine = logs.stdout.split('\n').find((l) => l.startsWith('{'))
    expect(JSON.parse(planLine ?? '{}')).toMatchObject({ waves: 3, nodes: 5 })

    // rollback-node, as docs/argo.md gives it (previous-chart: the chart is a .tgz in the image).
    // Node a is in pool `first`: it is verified with that pool's own pod again.
    const { result: rbWf, pods: reverified } = await recordVerificationPods(s.namespace, async () => {
      const rb = await submit(inst.argoNamespace, [
        '--entrypoint',
        'rollback-node',
        '-p',
        `node-name=${s.nodes[0]!}`,
        '-p',
        `previous-chart=${IMAGE_CHARTS}/kata-deploy-${CURRENT}.tgz`,
      ])
      return finished(inst.argoNamespace, rb)
    })
    expect(reverified.get(s.nodes[0]!)).toEqual(['verify-first'])
    expect(rbWf.status?.phase, stepSummary(rbWf).join('\n')).toBe('Succeeded')
    expect(stepSummary(rbWf)).toEqual(['rollback-node Succeeded'])
    const rolled = await clusterState(kc, kubeconfig, s)
    expect(nodeStatuses(rolled)[0]).toEqual(['rolled-back', CURRENT, 'false'])
    expect(nodeStatuses(rolled).slice(1)).toEqual(s.nodes.slice(1).map(() => ['completed', TARGET, 'false']))

    // The template's metrics, from the real controller's /metrics (one series per release).
    const m = await templateMetrics(`${s.namespace}/kata-deploy`)
    expect(m.value('runs_total', { entrypoint: 'deploy-version', status: 'Succeeded' })).toBe(1)
    expect(m.value('runs_total', { entrypoint: 'rollback-node', status: 'Succeeded' })).toBe(1)
    expect(m.value('run_duration_seconds', { entrypoint: 'deploy-version', status: 'Succeeded' })).toBeGreaterThan(0)
    expect(m.value('nodes_completed_total')).toBe(5)
    expect(m.value('nodes_rolled_back_total')).toBe(0)
    expect(m.value('nodes_failed_total')).toBe(0)
    // A histogram's value here is its count: one observation per wave.
    expect(m.value('wave_duration_seconds', { status: 'Succeeded' })).toBe(3)
    // Realtime: the workflow's time, frozen at its end (so about its submit-to-done time).
    expect(m.value('run_elapsed_seconds', { workflow: wf.metadata.name })).toBeGreaterThan(10)
    expect(m.types).toEqual({
      runs_total: 'COUNTER',
      run_duration_seconds: 'GAUGE',
      run_elapsed_seconds: 'GAUGE',
      nodes_completed_total: 'COUNTER',
      nodes_rolled_back_total: 'COUNTER',
      nodes_failed_total: 'COUNTER',
      wave_duration_seconds: 'HISTOGRAM',
    })

    // RBAC: nothing refused; every request within docs/argo.md's table; can-i --list no wider.
    await audit.barrier(kc)
    const events = await audit.find({ since: t0, username: inst.username })
    const refused = events.filter((e) => (e.responseStatus?.code ?? 0) === 403)
    expect(refused, describeEvents(refused)).toHaveLength(0)
    const grants = await documentedGrants()
    const outside = events.filter((e: AuditEvent) => {
      const o = e.objectRef
      if (!o?.resource) return false // discovery (non-resource URLs)
      // kata-lcm asks what it may do before it writes: every identity may ask (system:basic-user).
      if (o.resource === 'selfsubjectaccessreviews' && e.verb === 'create') return false
      const resource = o.subresource ? `${o.resource}/${o.subresource}` : o.resource
      return !allowed(grants, s, inst, o.namespace ?? '', resource, e.verb)
    })
    expect(outside, describeEvents(outside)).toHaveLength(0)
    const used = new Set(
      events.map(
        (e) =>
          `${e.verb} ${e.objectRef?.resource ?? e.requestURI}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}`,
      ),
    )
    for (const v of ['patch nodes', 'create pods', 'create workflowtaskresults', 'update leases', 'get secrets'])
      expect(used).toContain(v)

    // A ServiceAccount with no binding at all: what every authenticated identity may do.
    const baseline = new Set(await canIList(`system:serviceaccount:${inst.argoNamespace}:default`, inst.argoNamespace))
    for (const ns of [inst.argoNamespace, s.namespace, 'default', 'kube-system']) {
      const extra = (await canIList(inst.username, ns))
        .filter((row) => !baseline.has(row))
        .filter((row) => {
          const [resource, verb] = row.split(' ') as [string, string]
          return row.includes(' url ') || row.includes(' names ') || !allowed(grants, s, inst, ns, resource, verb)
        })
      expect(extra, `can-i --list -n ${ns}`).toEqual([])
    }

    await measure(wf, pods, inst, submitted, done)
  }, 900_000)
})

/**
 * A fleet policy that sets every field a run takes, stored in the scenario's namespace: the release,
 * both charts (`charts`: where the driver reads them), the nodes, batch, canary, soak, room, a
 * maintenance window (`window`, UTC, every day), the alert gate, the workloads check, drain with force and emptyDir
 * data, both timeouts, the verification pod and its timeout, and two pools (`first`, with its own pod
 * and batch, then `rest`).
 */
async function setEveryFieldPolicy(
  s: Scenario,
  charts: { chart: string; previousChart: string },
  alertUrl: string,
  window: { start: string; end: string },
): Promise<void> {
  const { pod, firstPod } = await policyPods()
  const file = path.join(dir, `policy-${s.id}.yaml`)
  await writeFile(
    file,
    stringify({
      apiVersion: 'kata-lcm.katacontainers.io/v1alpha1',
      kind: 'Policy',
      release: { name: 'kata-deploy', namespace: s.namespace },
      ...charts,
      nodeSelector: `${RUN_LABEL}=${s.id}`,
      batchSize: 2,
      canary: 1,
      soak: '5s',
      maxUnavailable: 3,
      deploymentMode: 'daemonset',
      windows: [{ days: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'], ...window, timeZone: 'UTC' }],
      alerts: { url: alertUrl, match: 'team="kata"', timeout: '5m' },
      workloads: { onDisruption: 'stop' },
      drain: { enabled: true, timeout: '1m30s', force: true, deleteEmptyDirData: true },
      timeouts: { ready: '4m', helm: '1h30m' },
      verification: { namespace: s.namespace, timeout: '2m30s', pod },
      pools: [
        {
          name: 'first',
          nodeSelector: `kubernetes.io/hostname=${s.nodes[0]}`,
          batchSize: 1,
          verification: { pod: firstPod, timeout: '2m' },
        },
        { name: 'rest' },
      ],
    }),
  )
  await must(kataLcm(['policy', 'set', file, '--policy-namespace', s.namespace], kubeconfig), 'kata-lcm policy set')
}

/** The run record (`kata-lcm-run-kata-deploy`) as first written in `namespace` while `during` runs. */
async function recordFirstRun<T>(
  namespace: string,
  during: () => Promise<T>,
): Promise<{ result: T; record: () => Record<string, unknown> | undefined }> {
  let first: Record<string, unknown> | undefined
  const stop = await resumedWatch(
    `/api/v1/namespaces/${namespace}/secrets`,
    { fieldSelector: 'metadata.name=kata-lcm-run-kata-deploy' },
    (_type: string, secret: { data?: Record<string, string> }) => {
      const json = secret.data?.['run.json']
      if (first === undefined && json)
        first = JSON.parse(Buffer.from(json, 'base64').toString('utf8')) as Record<string, unknown>
    },
  )
  try {
    return { result: await during(), record: () => first }
  } finally {
    stop()
  }
}

/**
 * A run record's settings and waves, the same for two scenarios' fleets: the scenario's id (in its
 * node names and namespace) and where each driver reads the charts from made alike, and each pod's
 * `origin` left out (where its text came from, for an error's words: the policy's ConfigMap for the
 * CLI, the workflow's parameter for the plan step).
 */
function planOf(record: Record<string, unknown> | undefined, s: Scenario, chartDirs: string[]): unknown {
  let text = JSON.stringify({ settings: record?.settings, waves: record?.waves, wavePools: record?.wavePools })
  for (const d of chartDirs) text = text.split(d).join('CHARTS')
  return JSON.parse(text.split(s.id).join('ID'), (key, value: unknown) => (key === 'origin' ? undefined : value))
}

/**
 * Two fleets of 5 nodes at batch 2 (3 waves), each with the chart installed with `extra` and
 * deploy-version submitted at once: one whose nodes all pass, one whose wave-2 node `vfail-c`
 * fails verification. Returns both scenarios and their finished workflows.
 */
async function twoFleets(
  [okName, badName]: [string, string],
  extra: string[],
): Promise<{ ok: Scenario; okWf: Workflow; bad: Scenario; badWf: Workflow }> {
  const ok = newScenario(okName, ['a', 'b', 'c', 'd', 'e'])
  const bad = newScenario(badName, ['a', 'b', 'vfail-c', 'x-d', 'x-e'])
  for (const s of [ok, bad]) {
    await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
    cleanups.push(() => teardownScenario(kc, kubeconfig, s))
  }
  const [okWf, badWf] = await Promise.all(
    [ok, bad].map(async (s) => {
      const inst = await installFor(s, undefined, extra)
      return finished(inst.argoNamespace, await submitDeploy(inst, s))
    }),
  )
  return { ok, okWf: okWf!, bad, badWf: badWf! }
}

/** Every node of the fleet completed and schedulable, the lock released. */
async function expectAllCompleted(s: Scenario): Promise<void> {
  const done = await clusterState(kc, kubeconfig, s)
  expect(nodeStatuses(done).map(([status, , unschedulable]) => [status, unschedulable])).toEqual(
    s.nodes.map(() => ['completed', 'false']),
  )
  expect(done).toMatchObject({ lock: false })
}

/**
 * The fleet ['a', 'b', 'vfail-c', 'x-d', 'x-e'] at batch 2 after its run stopped in wave 2: wave 1
 * completed, the failing node rolled back and its wave-mate completed, wave 3 untouched, every node
 * schedulable, the lock released.
 */
async function expectStoppedInWave2(s: Scenario): Promise<void> {
  const state = await clusterState(kc, kubeconfig, s)
  expect(nodeStatuses(state).map(([status, , unschedulable]) => [status, unschedulable])).toEqual([
    ['completed', 'false'],
    ['completed', 'false'],
    ['rolled-back', 'false'],
    ['completed', 'false'],
    [undefined, 'false'],
  ])
  expect(state).toMatchObject({ lock: false })
}

// These scenarios share nothing but the controller and the node: run at the same time (≈ 2 min
// less than one after the other on 2 cores). The timed scenario above runs alone.
describe.concurrent(
  'workflow-controller: a failing node, overlapping waves, several waves per pod, a maintenance window, an alert gate, a lost step pod, one policy for both drivers',
  () => {
    it('one pod per wave (the default): each wave is one step pod (step wave); a node failing verification in wave 2 is rolled back there, wave 3 never starts, the workflow fails, and the cluster is as kata-lcm upgrade leaves it', async () => {
      const s = newScenario('onepod', ['a', 'b', 'vfail-c', 'x-d', 'x-e'])
      await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      const inst = await installFor(s)
      const wf = await finished(inst.argoNamespace, await submitDeploy(inst, s))
      expect(wf.status?.phase, stepSummary(wf).join('\n')).toBe('Failed')
      expect(stepSummary(wf)).toEqual(['plan Succeeded', 'wave 1 Succeeded', 'wave 2 Failed', 'exit Succeeded'])
      await expectStoppedInWave2(s)
    }, 900_000)

    it("overlapping waves (overlapWaves=true): each wave's pod starts beside the one before and waits its turn, every node completed; on a second fleet a node failing in wave 2 is rolled back there, and wave 3 (already started) touches no node", async () => {
      const { ok, okWf, bad, badWf } = await twoFleets(['overlap', 'ovfail'], ['--set', 'overlapWaves=true'])
      expect(okWf.status?.phase, stepSummary(okWf).join('\n')).toBe('Succeeded')
      // Two wave pods start at once (the later waits), so their start order within a second is Argo's.
      expect(stepSummary(okWf).sort()).toEqual([
        'finalize Succeeded',
        'plan Succeeded',
        'wave 1 Succeeded',
        'wave 2 Succeeded',
        'wave 3 Succeeded',
      ])
      // Wave 2's pod was up while wave 1's ran: its start-up was off the rollout's path.
      const wave = (n: number) =>
        podNodes(okWf).find((p) => param(p, 'phase') === 'wave' && param(p, 'wave') === String(n))!
      expect(Date.parse(wave(2).startedAt!)).toBeLessThan(Date.parse(wave(1).finishedAt!))
      await expectAllCompleted(ok)

      expect(badWf.status?.phase, stepSummary(badWf).join('\n')).toBe('Failed')
      const summary = stepSummary(badWf)
      expect(summary.filter((l) => !l.startsWith('wave 3')).sort()).toEqual([
        'exit Succeeded',
        'plan Succeeded',
        'wave 1 Succeeded',
        'wave 2 Failed',
      ])
      // Wave 3's pod, if Argo had started it beside wave 2, refused to start (the run stopped).
      for (const line of summary.filter((l) => l.startsWith('wave 3'))) expect(line).toBe('wave 3 Failed')
      await expectStoppedInWave2(bad)
    }, 900_000)

    it("several waves per pod (wavesPerPod=2): the plan's 3 waves run in 2 step pods, every node completed; on a second fleet a node failing in wave 2 is rolled back there and fails the first pod, and no second pod is created", async () => {
      const { ok, okWf, bad, badWf } = await twoFleets(['perpod', 'ppfail'], ['--set', 'wavesPerPod=2'])
      expect(okWf.status?.phase, stepSummary(okWf).join('\n')).toBe('Succeeded')
      // "wave N" is the loop's item: here the pod's number.
      expect(stepSummary(okWf)).toEqual([
        'plan Succeeded',
        'wave 1 Succeeded',
        'wave 2 Succeeded',
        'finalize Succeeded',
      ])
      // Pod 1 ran waves 1 and 2: its counts are both waves' nodes.
      const pod1 = podNodes(okWf).find((p) => param(p, 'phase') === 'wave' && param(p, 'wave') === '1')!
      expect(pod1.outputs?.parameters?.find((p) => p.name === 'completed')?.value).toBe('4')
      await expectAllCompleted(ok)

      expect(badWf.status?.phase, stepSummary(badWf).join('\n')).toBe('Failed')
      expect(stepSummary(badWf)).toEqual(['plan Succeeded', 'wave 1 Failed', 'exit Succeeded'])
      await expectStoppedInWave2(bad)
    }, 900_000)

    it('one fleet policy that sets every field (pools, canary, soak, window, alert gate, workloads, drain with force, both timeouts, previous chart) drives a CLI run and an Argo run over the same kind of fleet: both run records carry the same settings and the same waves, and both runs complete', async () => {
      const prom = await startPrometheus({ forPods: true, labels: { team: 'kata' } })
      cleanups.push(() => prom.stop())
      const viaCli = newScenario('pcli', ['a', 'b', 'c', 'd'])
      const viaArgo = newScenario('pargo', ['a', 'b', 'c', 'd'])
      for (const s of [viaCli, viaArgo]) {
        await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
        cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      }
      // One window for both, open from an hour ago to three hours on, in UTC (it may cross midnight).
      const hhmm = (offsetH: number) => new Date(Date.now() + offsetH * 3_600_000).toISOString().slice(11, 16)
      const window = { start: hhmm(-1), end: hhmm(3) }
      // The CLI reads the charts on this host, the steps in their image: the same charts.
      await setEveryFieldPolicy(viaCli, { chart: charts[TARGET]!, previousChart: charts[CURRENT]! }, prom.url, window)
      await setEveryFieldPolicy(
        viaArgo,
        {
          chart: `${IMAGE_CHARTS}/kata-deploy-${TARGET}.tgz`,
          previousChart: `${IMAGE_CHARTS}/kata-deploy-${CURRENT}.tgz`,
        },
        prom.url,
        window,
      )
      const inst = await installFor(viaArgo, viaArgo.namespace)
      const [cli, argo] = await Promise.all([
        recordFirstRun(viaCli.namespace, () =>
          kataLcm(['upgrade', '--target-version', TARGET, '--policy-namespace', viaCli.namespace], kubeconfig),
        ),
        recordFirstRun(viaArgo.namespace, async () =>
          finished(inst.argoNamespace, await submit(inst.argoNamespace, ['-p', `target-version=${TARGET}`]), 900_000),
        ),
      ])
      expect(cli.result.code, cli.result.stderr).toBe(0)
      expect(argo.result.status?.phase, stepSummary(argo.result).join('\n')).toBe('Succeeded')
      const chartDirs = [path.dirname(charts[TARGET]!), IMAGE_CHARTS]
      const planned = planOf(cli.record(), viaCli, chartDirs)
      expect(planned).toMatchObject({
        waves: [['ID-a'], ['ID-b'], ['ID-c', 'ID-d']],
        wavePools: ['first', 'rest', 'rest'],
        settings: {
          batchSize: 2,
          soakMs: 5_000,
          onWorkloadDisruption: 'stop',
          alerts: { url: prom.url, timeoutMs: 300_000 },
          drain: true,
          drainTimeoutMs: 90_000,
          drainPolicy: { force: true, deleteEmptyDirData: true },
          readyTimeoutMs: 240_000,
          helmTimeout: '5400s',
          verification: { namespace: 'kd-ID', timeoutMs: 150_000 },
          poolVerification: { first: { timeoutMs: 120_000 } },
        },
      })
      expect((planned as { settings: { windows?: unknown[] } }).settings.windows).toHaveLength(1)
      expect(planOf(argo.record(), viaArgo, chartDirs)).toEqual(planned)
      for (const s of [viaCli, viaArgo])
        expect(nodeStatuses(await clusterState(kc, kubeconfig, s))).toEqual(
          s.nodes.map(() => ['completed', TARGET, 'false']),
        )
    }, 900_000)

    it('four steps per wave (onePodPerWave=false): a node failing verification in wave 2 is rolled back, no pod of wave 3 is created, the workflow fails, the exit handler runs, and the cluster is as kata-lcm upgrade leaves it', async () => {
      const s = newScenario('fail', ['a', 'b', 'vfail-c', 'x-d', 'x-e', 'x-f'])
      await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      const inst = await installFor(s, undefined, FOUR_STEPS)
      const name = await submitDeploy(inst, s)
      const wf = await finished(inst.argoNamespace, name)
      expect(wf.status?.phase).toBe('Failed')
      expect(stepSummary(wf)).toEqual([
        'plan Succeeded',
        'prepare 1 Succeeded',
        'upgrade 1 Succeeded',
        'verify 1 Succeeded',
        'rollback 1 Succeeded',
        'prepare 2 Succeeded',
        'upgrade 2 Succeeded',
        'verify 2 Succeeded',
        'rollback 2 Failed',
        'exit Succeeded',
      ])
      const pods = (await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: inst.argoNamespace })).items
      expect(
        pods.filter((p) => /\.wave\(2:3\)/.test(p.metadata?.annotations?.['workflows.argoproj.io/node-name'] ?? '')),
      ).toEqual([])
      expect(pods).toHaveLength(podNodes(wf).length)
      // The template's metrics: wave 1's two nodes and wave 2's passing one completed, one rolled back.
      const m = await templateMetrics(`${s.namespace}/kata-deploy`)
      expect(m.value('runs_total', { entrypoint: 'deploy-version', status: 'Failed' })).toBe(1)
      expect(m.value('nodes_completed_total')).toBe(3)
      expect(m.value('nodes_rolled_back_total')).toBe(1)
      expect(m.value('nodes_failed_total')).toBe(0)
      expect(m.value('wave_duration_seconds', { status: 'Succeeded' })).toBe(1)
      expect(m.value('wave_duration_seconds', { status: 'Failed' })).toBe(1)

      // The same scenario with kata-lcm upgrade.
      const b = newScenario('cli', ['a', 'b', 'vfail-c', 'x-d', 'x-e', 'x-f'])
      await setupScenario(kc, kubeconfig, b, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, b))
      const cli = await kataLcm(
        [
          'upgrade',
          '--target-version',
          TARGET,
          '--chart',
          charts[TARGET]!,
          '--previous-chart',
          charts[CURRENT]!,
          '--node-selector',
          `${RUN_LABEL}=${b.id}`,
          '--batch-size',
          '2',
          '--deployment-mode',
          'daemonset',
          '--verification-pod',
          podFile,
          '--verification-namespace',
          b.namespace,
          '--helm-release',
          'kata-deploy',
          '--helm-namespace',
          b.namespace,
        ],
        kubeconfig,
      )
      expect(cli.code, cli.stderr).toBe(3)
      const viaArgo = await clusterState(kc, kubeconfig, s)
      expect(nodeStatuses(viaArgo).map((n) => n[0])).toEqual([
        'completed',
        'completed',
        'rolled-back',
        'completed',
        undefined,
        undefined,
      ])
      expect(viaArgo).toEqual(await clusterState(kc, kubeconfig, b))
    }, 900_000)

    it('a maintenance window that opens in a minute or two: the wave waits in an Argo suspend (no pod), status says so, and the wave starts inside the window', async () => {
      const s = newScenario('win', ['a', 'b'])
      await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      const inst = await installFor(s)
      // A window from the next minute but one (60 to 120 s away) for an hour, every day, in UTC.
      const opens = new Date(Date.now() + 120_000)
      opens.setUTCSeconds(0, 0)
      const hhmm = (d: Date) => d.toISOString().slice(11, 16)
      const windows = `${hhmm(opens)}-${hhmm(new Date(opens.getTime() + 3_600_000))} UTC`
      const name = await submitDeploy(inst, s, ['-p', `windows=${windows}`])
      // While it waits: the suspend node runs, and kata-lcm status names the wait.
      await waitForObject<Workflow & { metadata: { name: string } }>(
        kc,
        `/apis/argoproj.io/v1alpha1/namespaces/${inst.argoNamespace}/workflows`,
        name,
        (wf) =>
          Object.values(wf.status?.nodes ?? {}).some((n) => n.templateName === 'window-wait' && n.phase === 'Running'),
        120_000,
        `workflow ${name} suspended for the window`,
      )
      const status = await scenarioStatus(s)
      expect(status.stdout).toMatch(/wave 1 waits for the maintenance window, which opens in \d+[ms]/)
      const wf = await finished(inst.argoNamespace, name)
      expect(wf.status?.phase, stepSummary(wf).join('\n')).toBe('Succeeded')
      expect(stepSummary(wf)).toEqual([
        'plan Succeeded',
        'window-check Succeeded',
        'wave 1 Succeeded',
        'finalize Succeeded',
      ])
      const wait = Object.values(wf.status?.nodes ?? {}).find((n) => n.templateName === 'window-wait')!
      expect(wait).toMatchObject({ type: 'Suspend', phase: 'Succeeded' })
      // The wave's first write (its step pod) inside the window.
      const wave = podNodes(wf).find((n) => param(n, 'phase') === 'wave')!
      expect(new Date(wave.startedAt!).getTime()).toBeGreaterThanOrEqual(opens.getTime())
      expect(nodeStatuses(await clusterState(kc, kubeconfig, s))).toEqual(
        s.nodes.map(() => ['completed', TARGET, 'false']),
      )
    }, 900_000)

    it("an alert gate: a firing alert holds wave 1 in the alert-gate step (asked again by Argo's retry, no wave pod), status names it, and once it clears the run completes", async () => {
      const prom = await startPrometheus({ forPods: true, labels: { team: 'kata' } })
      cleanups.push(() => prom.stop())
      prom.fire()
      await prom.waitForAlert('firing')
      const s = newScenario('alert', ['a', 'b'])
      await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      const inst = await installFor(s)
      const name = await submitDeploy(inst, s, ['-p', `alert-url=${prom.url}`, '-p', 'alert-match=team="kata"'])
      // Held: the gate's first answer failed its pod (exit 75) and Argo asks again after its backoff.
      await waitForObject<Workflow & { metadata: { name: string } }>(
        kc,
        `/apis/argoproj.io/v1alpha1/namespaces/${inst.argoNamespace}/workflows`,
        name,
        (wf) => podNodes(wf).some((n) => n.templateName === 'alert-gate' && n.phase === 'Failed'),
        240_000,
        `workflow ${name} held by the alert gate`,
      )
      const status = await scenarioStatus(s)
      expect(status.stdout).toMatch(new RegExp(`wave 1 is HELD by alerts since .*${prom.alertName}\\{`))
      expect(nodeStatuses(await clusterState(kc, kubeconfig, s)).map((n) => n[0])).toEqual([undefined, undefined])
      prom.clear()
      const wf = await finished(inst.argoNamespace, name)
      expect(wf.status?.phase, stepSummary(wf).join('\n')).toBe('Succeeded')
      const summary = stepSummary(wf)
      const held = summary.filter((l) => l === 'alert-gate Failed').length
      expect(held).toBeGreaterThanOrEqual(1)
      expect(summary).toEqual([
        'plan Succeeded',
        ...Array<string>(held).fill('alert-gate Failed'),
        'alert-gate Succeeded',
        'wave 1 Succeeded',
        'finalize Succeeded',
      ])
      expect(nodeStatuses(await clusterState(kc, kubeconfig, s))).toEqual(
        s.nodes.map(() => ['completed', TARGET, 'false']),
      )
    }, 900_000)

    it('an alert gate whose Prometheus is down holds wave 1 until alert-timeout, then the run stops: the workflow fails, no wave pod, nodes untouched', async () => {
      const down = (await unreachablePrometheusUrl()).replace('127.0.0.1', hostAddress())
      const s = newScenario('alertdown', ['a'])
      await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      const inst = await installFor(s)
      const name = await submitDeploy(inst, s, ['-p', `alert-url=${down}`, '-p', 'alert-timeout=40s'])
      const wf = await finished(inst.argoNamespace, name)
      expect(wf.status?.phase).toBe('Failed')
      const summary = stepSummary(wf)
      expect(summary[0]).toBe('plan Succeeded')
      expect(
        summary.slice(1, -1).every((l) => l === 'alert-gate Failed'),
        summary.join('\n'),
      ).toBe(true)
      expect(summary.at(-1)).toBe('exit Succeeded')
      expect(nodeStatuses(await clusterState(kc, kubeconfig, s)).map((n) => n[0])).toEqual([undefined])
      // The last answer stopped the run (exit 3, not asked again): its reason is on the record.
      const last = podNodes(wf)
        .filter((n) => n.templateName === 'alert-gate')
        .at(-1)!
      expect(last).toMatchObject({ phase: 'Failed' })
      expect((last as WfNode & { message?: string }).message).toMatch(/exit code 3/)
    }, 900_000)

    it('a step pod deleted mid-step: the workflow still converges (Argo retries a lost pod), no completed node rolled back', async () => {
      const s = newScenario('retry', ['a', 'b', 'c', 'd'])
      await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
      cleanups.push(() => teardownScenario(kc, kubeconfig, s))
      // Four steps per wave: the victim is wave 2's upgrade step.
      const inst = await installFor(s, undefined, FOUR_STEPS)
      const { result: wf, seen } = await recordStatuses(s.nodes, async () => {
        const name = await submitDeploy(inst, s)
        // Wave 2's upgrade step, once its kata-lcm process runs: deleted (wave 1's nodes are completed by then).
        const [victim] = await waitForList<V1Pod>(
          kc,
          `/api/v1/namespaces/${inst.argoNamespace}/pods`,
          (ps) => ps.some(isVictim),
          300_000,
          { description: 'wave 2 upgrade pod running' },
        ).then((ps) => ps.filter(isVictim))
        await kc
          .makeApiClient(CoreV1Api)
          .deleteNamespacedPod({ namespace: inst.argoNamespace, name: victim!.metadata!.name! })
        return await finished(inst.argoNamespace, name)
      })
      // On failure: every pod step with Argo's message (its exit code), to tell a lost pod from a step that failed.
      const detail = podNodes(wf)
        .map(
          (n) =>
            `${n.templateName === 'wave-phase' ? `${param(n, 'phase')} ${param(n, 'wave')}` : n.templateName} ${n.phase}: ${(n as WfNode & { message?: string }).message ?? ''}`,
        )
        .join('\n')
      expect(wf.status?.phase, detail).toBe('Succeeded')
      // The last attempt succeeded, and any before it ended with the lost pod. When the deletion lands
      // after kata-lcm's work (a daemonset wave takes ~2 s), Argo records the one attempt as Succeeded.
      const upgrades2 = podNodes(wf).filter((n) => param(n, 'phase') === 'upgrade' && param(n, 'wave') === '2')
      process.stderr.write(
        `[workflow-controller] wave 2 upgrade attempts: ${upgrades2.map((n) => n.phase).join(', ')}\n`,
      )
      expect(upgrades2.at(-1)?.phase).toBe('Succeeded')
      expect(upgrades2.slice(0, -1).every((n) => n.phase === 'Error' || n.phase === 'Failed')).toBe(true)
      const after = await clusterState(kc, kubeconfig, s)
      expect(nodeStatuses(after)).toEqual(s.nodes.map(() => ['completed', TARGET, 'false']))
      expect(after).toMatchObject({ runRecord: false, lock: false })
      for (const n of s.nodes) expect(seen.get(n)).not.toContain('rolling-back')
    }, 900_000)
  },
)

function isVictim(p: V1Pod): boolean {
  const nodeName = p.metadata?.annotations?.['workflows.argoproj.io/node-name'] ?? ''
  const main = p.status?.containerStatuses?.find((c) => c.name === 'main')
  // Node names: "<wf>[1].waves[0].wave(1:2)[1].upgrade(0)": step groups are "[i]", a step with a
  // retryStrategy has its pod in the child "<step>(<attempt>)".
  return (
    /\.wave\(1:2\)\[\d+\]\.upgrade\(\d+\)$/.test(nodeName) &&
    main?.state?.running !== undefined &&
    !p.metadata?.deletionTimestamp
  )
}

describe('workflow-controller test bed: the real node', () => {
  it("runs the README's verification pod (runtimeClassName kata-qemu, a local image) to completion, and kubectl logs reads it", async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8')
    const yaml = /```yaml\n(\s*apiVersion: v1\n\s*kind: Pod\n[\s\S]*?)```/.exec(readme)?.[1]
    expect(yaml).toContain('runtimeClassName: kata-qemu')
    const name = `verify-${randomBytes(2).toString('hex')}`
    // The README's pod, with the image this machine has (no registry here) and Never pulled.
    const pod = yaml!
      .replace(/^\s{3}/gm, '')
      .replace('${TEST_POD}', name)
      .replace('${NODE}', node!.name)
      .replace(/image: .*/, `image: ${image}\n      imagePullPolicy: Never`)
      .replace(/command: .*/, 'command: ["uname", "-a"]')
    const file = path.join(dir, `${name}.yaml`)
    await writeFile(file, pod)
    await must(kubectl(kubeconfig, ['apply', '-n', 'default', '-f', file]), 'kubectl apply the README pod')
    cleanups.push(() => kubectl(kubeconfig, ['delete', 'pod', '-n', 'default', name, '--wait=false']))
    const [done] = await waitForList<V1Pod>(
      kc,
      '/api/v1/namespaces/default/pods',
      (ps) => ps.some((p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? '')),
      120_000,
      { fieldSelector: `metadata.name=${name}` },
    )
    expect(done!.status?.phase).toBe('Succeeded')
    expect(done!.spec?.runtimeClassName).toBe('kata-qemu')
    const logs = await must(kubectl(kubeconfig, ['logs', '-n', 'default', name]), 'kubectl logs')
    expect(logs.stdout).toMatch(/^Linux /)
  })
  it('a real Kata pod (runtimeClassName kata-qemu, runc-backed here) on the real node comes through a real kata-lcm upgrade of that node untouched, recorded before and compared after', async () => {
    const id = `real-${randomBytes(2).toString('hex')}`
    const namespace = `kd-${id}`
    const core = kc.makeApiClient(CoreV1Api)
    // The image each chart version's pod names (the chart's appVersion as its tag), as on a registry.
    let standInRepo = ''
    for (const version of [CURRENT, TARGET])
      standInRepo = (await loadImage(node!, ['kata-deploy-stand-in', version])).split(':')[0]!
    await core.createNamespace({ body: { metadata: { name: namespace } } })
    const label = { op: 'add', path: `/metadata/labels/${RUN_LABEL.replace('/', '~1')}`, value: id }
    await core.patchNode({ name: node!.name, body: [label] }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch))
    cleanups.push(async () => {
      await helm(kubeconfig, ['uninstall', 'kata-deploy', '-n', namespace, '--wait', '--timeout', '1m'])
      await core.deleteNamespace({ name: namespace }).catch(() => undefined)
      // The real node as it was: no run label, none of kata-lcm's annotations, schedulable.
      const n = await core.readNode({ name: node!.name })
      const ours = Object.keys(n.metadata?.annotations ?? {}).filter((k) => /kata-lcm|katacontainers\.io/.test(k))
      await core.patchNode(
        {
          name: node!.name,
          body: {
            metadata: {
              labels: { [RUN_LABEL]: null },
              annotations: Object.fromEntries(ours.map((k) => [k, null])),
            },
            spec: { unschedulable: null },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
    })
    // kata-deploy (the fixture chart) on the real node, its pod running the stand-in image.
    await must(
      helm(kubeconfig, [
        'install',
        'kata-deploy',
        charts[CURRENT]!,
        '-n',
        namespace,
        '--set',
        `nodeSelector.${RUN_LABEL.replace(/\./g, '\\.')}=${id}`,
        '--set',
        `image.reference=${standInRepo}`,
        '--set',
        'imagePullPolicy=Never',
        ...['startupProbe', 'livenessProbe', 'readinessProbe'].flatMap((p) => ['--set', `health.${p}.enabled=false`]),
        '--wait',
        '--timeout',
        '2m',
      ]),
      'helm install kata-deploy on the real node',
    )
    // The workload: a real container under the kata-qemu RuntimeClass (handler runc on the test bed).
    const workload = 'kata-workload'
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: workload },
        spec: {
          nodeName: node!.name,
          runtimeClassName: 'kata-qemu',
          tolerations: [REAL_NODE_TAINT],
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'app', image, imagePullPolicy: 'Never', command: ['sleep', '3600'] }],
        },
      },
    })
    const [running] = await waitForList<V1Pod>(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      (ps) => ps.some((p) => p.status?.containerStatuses?.[0]?.state?.running !== undefined),
      120_000,
      { fieldSelector: `metadata.name=${workload}`, description: 'the Kata workload running' },
    )
    const before = running!.status!.containerStatuses![0]!
    // A verification pod that really runs on the node, with the Kata RuntimeClass.
    const verify = path.join(dir, `verify-${id}.yaml`)
    await writeFile(
      verify,
      stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: '${TEST_POD}' },
        spec: {
          runtimeClassName: 'kata-qemu',
          restartPolicy: 'Never',
          nodeSelector: { 'kubernetes.io/hostname': '${NODE}' },
          tolerations: [{ operator: 'Exists' }],
          containers: [{ name: 'verify', image, imagePullPolicy: 'Never', command: ['uname', '-a'] }],
        },
      }),
    )
    // The node's annotations while it upgrades: the record of its Kata pods is written with `upgrading`.
    const { result: r, seen } = await recordAnnotations(node!.name, () =>
      kataLcm(
        [
          'upgrade',
          '--target-version',
          TARGET,
          '--chart',
          charts[TARGET]!,
          '--previous-chart',
          charts[CURRENT]!,
          '--node-selector',
          `${RUN_LABEL}=${id}`,
          '--deployment-mode',
          'daemonset',
          '--verification-pod',
          verify,
          '--verification-namespace',
          namespace,
          '--helm-release',
          'kata-deploy',
          '--helm-namespace',
          namespace,
          '--json',
        ],
        kubeconfig,
      ),
    )
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as { nodes: { name: string; status: string; disruptedWorkloads?: string[] }[] }
    expect(report.nodes).toEqual([{ name: node!.name, status: 'completed', version: TARGET }])
    const upgrading = seen.find((a) => a['katacontainers.io/kata-lifecycle-manager-status'] === 'upgrading')
    expect(Object.keys(JSON.parse(upgrading!['kata-lcm.katacontainers.io/kata-workloads']!) as object)).toEqual([
      `${namespace}/${workload}`,
    ])
    const after = await core.readNode({ name: node!.name })
    expect(after.metadata?.annotations).not.toHaveProperty('kata-lcm.katacontainers.io/disrupted-workloads')
    expect(after.metadata?.annotations).not.toHaveProperty('kata-lcm.katacontainers.io/kata-workloads')
    // The kata-deploy pod was really replaced on the node, and the workload ran on untouched.
    expect(await kataDeployPodDeletes(namespace)).toBe(1)
    const now = await core.readNamespacedPod({ namespace, name: workload })
    expect(now.metadata?.uid).toBe(running!.metadata?.uid)
    // The same container run: no restart, the same start (the watch's JSON and the client's Date, as instants).
    const startedAt = (c: { state?: { running?: { startedAt?: Date | string } } } | undefined) =>
      new Date(c!.state!.running!.startedAt!).toISOString()
    expect(now.status?.containerStatuses?.[0]?.restartCount).toBe(0)
    expect(startedAt(now.status?.containerStatuses?.[0])).toBe(startedAt(before))
  }, 600_000)
})
