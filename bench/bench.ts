// kata-lcm fleet benchmark on the kwok test bed. Run through bench/run.sh (it sets up PATH, builds
// the CLI and packages the fixture charts); see bench/README.md and docs/performance.md.
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cpus, freemem, loadavg, totalmem } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  auditSize,
  countBy,
  isHelm,
  isKataLcm,
  isKubectl,
  isKwok,
  readWindow,
  waitForBarrier,
  type Ev,
} from './lib/audit.js'
import { analyzeBaseline, analyzeRun, type BaselineAnalysis, type RunAnalysis } from './lib/analyze.js'
import {
  auditBarrierRequest,
  connect,
  controlPlaneLeases,
  createFleet,
  deleteNamespace,
  FLEET_LABEL,
  kataDeployPods,
  leasesLost,
  nodeStates,
  resetNodes,
  waitDaemonSetReady,
  watchUntil,
  type Kube,
} from './lib/kube.js'
import { must, runProc } from './lib/proc.js'
import {
  analyzeWorkflow,
  startArgoBed,
  type ArgoAnalysis,
  type ArgoBed,
  type StepPod,
  type Workflow,
} from './lib/argo.js'
import { BENCH_CONTROL_PLANE, renderMarkdown } from './lib/report.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CACHE = process.env.KATA_LCM_CACHE ?? path.join(process.env.HOME ?? '/root', '.cache/kata-lcm')
const CHARTS = path.join(CACHE, 'charts')
/** The CLI under test: bench/run.sh's private build of src/ (else the repo's own dist/). */
const CLI = path.join(process.env.KATA_LCM_BENCH_CLI ?? ROOT, 'bin/run.js')
const FROM = '3.27.0'
const TO = '3.28.0'
const MAIN = 'main'
const VFAIL = 'vfail'

// ---------- options ----------

interface Options {
  sizes: number[]
  batchSizes?: number[]
  baselineFullMax: number
  baselineBudgetS: number
  baselineMaxN: number
  runBudgetS?: number
  nodeOptions?: string
  /** More kata-lcm flags (--cli-flags), e.g. the client-side request limits. */
  cliFlags: string[]
  baseline: boolean
  vfail: boolean
  coldStart: boolean
  keepCluster: boolean
  /** Also run the chart's deploy-version through the real workflow-controller at each batch (--argo). */
  argo: boolean
  /** With --argo: install the chart with onePodPerWave (--argo-one-pod-per-wave): one step pod per wave. */
  argoOnePodPerWave: boolean
  /** With --argo: also overlapWaves (--argo-overlap): each wave's pod starts beside the one before. */
  argoOverlap: boolean
  /** With --argo: the chart's wavesPerPod (--argo-waves-per-pod K): K waves in each step pod. */
  argoWavesPerPod: number
  out: string
}

const DEFAULT_PLAN: Record<number, number[]> = { 100: [1, 10, 50], 1000: [50, 200], 5000: [500] }

function parseArgs(argv: string[]): Options {
  const o: Options = {
    sizes: [100, 1000, 5000],
    baselineFullMax: 100,
    baselineBudgetS: 420,
    baselineMaxN: 1000,
    baseline: true,
    vfail: true,
    coldStart: true,
    keepCluster: false,
    argo: false,
    argoOnePodPerWave: false,
    argoOverlap: false,
    argoWavesPerPod: 1,
    cliFlags: [],
    out: path.join(ROOT, 'bench/results'),
  }
  const list = (v: string | undefined) =>
    (v ?? '')
      .split(',')
      .map((x) => Number(x.trim()))
      .filter((x) => Number.isInteger(x) && x > 0)
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    const value = () => inline ?? argv[++i]
    switch (flag) {
      case '--sizes':
        o.sizes = list(value())
        break
      case '--batch-sizes':
        o.batchSizes = list(value())
        break
      case '--baseline-full-max':
        o.baselineFullMax = Number(value())
        break
      case '--baseline-budget':
        o.baselineBudgetS = Number(value())
        break
      case '--baseline-max-n':
        o.baselineMaxN = Number(value())
        break
      case '--no-baseline':
        o.baseline = false
        break
      case '--run-budget':
        o.runBudgetS = Number(value())
        break
      case '--node-options':
        o.nodeOptions = value()
        break
      case '--cli-flags':
        o.cliFlags = (value() ?? '').split(/\s+/).filter(Boolean)
        break
      case '--no-vfail':
        o.vfail = false
        break
      case '--no-cold-start':
        o.coldStart = false
        break
      case '--keep-cluster':
        o.keepCluster = true
        break
      case '--argo':
        o.argo = true
        break
      case '--argo-one-pod-per-wave':
        o.argo = true
        o.argoOnePodPerWave = true
        break
      case '--argo-overlap':
        o.argo = true
        o.argoOnePodPerWave = true
        o.argoOverlap = true
        break
      case '--argo-waves-per-pod': {
        const k = Number(value())
        if (!Number.isInteger(k) || k < 1) throw new Error('--argo-waves-per-pod: a whole number >= 1 (e.g. 5)')
        o.argo = true
        o.argoOnePodPerWave = true
        o.argoWavesPerPod = k
        break
      }
      case '--out':
        o.out = path.resolve(value() ?? o.out)
        break
      case '--help':
      case '-h':
        process.stdout
          .write(`usage: bench/run.sh [--sizes 100,1000,5000] [--batch-sizes 10,50] [--baseline-full-max 100] [--baseline-budget 420] [--baseline-max-n 1000]
                    [--run-budget S] [--node-options '...'] [--cli-flags '--kube-qps 200 ...'] [--no-baseline] [--no-vfail] [--no-cold-start] [--keep-cluster] [--argo] [--argo-one-pod-per-wave] [--argo-overlap] [--argo-waves-per-pod K] [--out DIR]
default batch sizes: ${JSON.stringify(DEFAULT_PLAN)} (other N: N/20)\n`)
        process.exit(0)
        break
      default:
        throw new Error(`unknown argument ${a}`)
    }
  }
  if (o.sizes.length === 0) throw new Error('--sizes: give e.g. 100,1000')
  return o
}

function batchesFor(o: Options, n: number): number[] {
  const plan = o.batchSizes ?? DEFAULT_PLAN[n] ?? [Math.max(1, Math.round(n / 20))]
  return [...new Set(plan.filter((b) => b <= n))]
}

// ---------- results ----------

export interface KataLcmRun {
  kind: 'kata-lcm'
  n: number
  batch: number
  namespace: string
  exitCode: number | null
  /** `outcome` of the CLI's --json report, when it printed one. */
  outcome?: string
  wallS: number
  waves: number
  peakRssMb: number
  /** CPU time (user + system) of the kata-lcm process itself, s (polled every 100 ms). */
  cpuS: number
  resetS: number
  /** NODE_OPTIONS given to the CLI (--node-options), if any. */
  nodeOptions?: string
  /** More kata-lcm flags (--cli-flags), if any. */
  cliFlags?: string[]
  /** Set when the run budget stopped the run (SIGINT after budgetS): only the finished waves count. */
  budgetS?: number
  endState: { completed: number; onTarget: number; cordoned: number }
  loadavgBefore: number[]
  analysis: RunAnalysis
  /** The control-plane components whose leader-election Lease changed hands during the run (none: all kept). */
  leasesLost?: string[]
  note?: string
}

export interface ArgoRun {
  kind: 'argo'
  n: number
  batch: number
  namespace: string
  workflow: string
  resetS: number
  endState: { completed: number; onTarget: number; cordoned: number }
  loadavgBefore: number[]
  analysis: ArgoAnalysis
  /** Requests of the run's window by who sent them (audit log user agent, up to its first "/"). */
  requestsBy: Record<string, number>
  /** kata-lcm's requests (its step pods') per node. */
  kataLcmPerNode: number
  /** The chart's onePodPerWave: each wave one step pod (kata-lcm step wave) instead of four. */
  onePodPerWave: boolean
  /** The chart's overlapWaves: each wave's pod started beside the one before, waiting its turn. */
  overlapWaves?: boolean
  /** The chart's wavesPerPod: the waves each step pod runs (1: one pod per wave). */
  wavesPerPod?: number
}

export interface BaselineRun {
  kind: 'baseline'
  n: number
  namespace: string
  exitCode: number | null
  wallS: number
  budgetS?: number
  budgetHit: boolean
  loadavgBefore: number[]
  analysis: BaselineAnalysis
}

export interface SizeResult {
  n: number
  clusterCreateS: number
  fleetCreateS: number
  auditMB: number
  runs: KataLcmRun[]
  /** --argo: deploy-version through the real workflow-controller, at each batch, on the same fleet. */
  argoRuns?: ArgoRun[]
  baseline?: BaselineRun
  vfail?: KataLcmRun
  errors: string[]
}

export interface Results {
  startedAt: string
  finishedAt?: string
  command: string
  source: string
  machine: {
    nproc: number
    cpuModel: string
    memGiB: number
    freeGiBAtStart: number
    node: string
    kube: string
    kwok: string
    helm: string
  }
  coldStart?: {
    tool: string
    command: string
    medianMs: number
    meanMs: number
    minMs: number
    maxMs: number
    runs: number
    nodeBareMedianMs?: number
  }
  sizes: SizeResult[]
}

// ---------- helpers ----------

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

function envWithTools(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${path.join(CACHE, 'bin')}:${process.env.PATH ?? ''}`, ...extra }
}

async function versionsEnv(): Promise<Record<string, string>> {
  const text = await readFile(path.join(ROOT, 'scripts/testbed/versions.env'), 'utf8')
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]),
  )
}

function chart(version: string): string {
  return path.join(CHARTS, `kata-deploy-${version}.tgz`)
}

function nodeNames(prefix: string, n: number): string[] {
  const width = String(n).length
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(width, '0')}`)
}

const VERIFY_TEMPLATE = `apiVersion: v1
kind: Pod
metadata:
  name: \${TEST_POD}
  labels:
    kata-lcm.test/verify: succeed
spec:
  restartPolicy: Never
  nodeSelector:
    kubernetes.io/hostname: \${NODE}
  tolerations:
    - operator: Exists
  containers:
    - name: verify
      image: quay.io/kata-containers/alpine-bash-curl:latest
      command: ["uname", "-a"]
`

/** The design's verification-pod.yaml: one static pod named kata-verify (no per-node substitution). */
const BASELINE_VERIFY = `apiVersion: v1
kind: Pod
metadata:
  name: kata-verify
  labels:
    kata-lcm.test/verify: succeed
spec:
  restartPolicy: Never
  tolerations:
    - operator: Exists
  containers:
    - name: verify
      image: quay.io/kata-containers/alpine-bash-curl:latest
      command: ["uname", "-a"]
`

interface Cluster {
  name: string
  kubeconfig: string
  auditLog: string
  k: Kube
}

async function createCluster(name: string): Promise<Cluster> {
  const out = await must(
    path.join(ROOT, 'scripts/testbed/cluster.sh'),
    ['create', name],
    envWithTools({ KATA_LCM_TESTBED_EXTRA_ARGS: BENCH_CONTROL_PLANE.join(' ') }),
  )
  const kv = Object.fromEntries(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
  if (!kv.KUBECONFIG || !kv.AUDIT_LOG) throw new Error(`cluster.sh create printed no KUBECONFIG/AUDIT_LOG:\n${out}`)
  return { name, kubeconfig: kv.KUBECONFIG, auditLog: kv.AUDIT_LOG, k: connect(kv.KUBECONFIG) }
}

async function helm(c: Cluster, args: string[]): Promise<string> {
  return must('helm', [...args, '--kubeconfig', c.kubeconfig], envWithTools())
}

/** A fresh namespace with the fixture release at FROM on the fleet, all its pods Ready. */
async function freshRelease(c: Cluster, namespace: string, fleet: string, n: number): Promise<number> {
  const t0 = Date.now()
  await helm(c, [
    'install',
    'kata-deploy',
    chart(FROM),
    '-n',
    namespace,
    '--create-namespace',
    '--set-string',
    `nodeSelector.kata-lcm\\.bench/fleet=${fleet}`,
  ])
  await waitDaemonSetReady(c.k, namespace, 'kata-deploy', n, Math.max(300_000, n * 400))
  return (Date.now() - t0) / 1000
}

async function teardownRelease(c: Cluster, namespace: string, fleet: string, n: number): Promise<void> {
  await helm(c, ['uninstall', 'kata-deploy', '-n', namespace, '--no-hooks']).catch((e: unknown) =>
    log(`uninstall: ${(e as Error).message.split('\n')[0]}`),
  )
  await deleteNamespace(c.k, namespace, Math.max(300_000, n * 300))
  const reset = await resetNodes(c.k, fleet)
  if (reset > 0) log(`reset ${reset} node(s) (annotations, cordon)`)
}

async function auditWindow(
  c: Cluster,
  offset: number,
  since: number,
  keep: (e: Ev) => boolean,
): Promise<{ events: Ev[]; lines: number }> {
  const barrier = `bench-barrier-${randomBytes(4).toString('hex')}`
  await auditBarrierRequest(c.k, barrier)
  await waitForBarrier(c.auditLog, offset, barrier, 120_000)
  return readWindow(c.auditLog, offset, since - 1, Date.now(), keep)
}

/** How many of the run's nodes are completed, on the target, still cordoned. */
function endStateOf(states: Awaited<ReturnType<typeof nodeStates>>): KataLcmRun['endState'] {
  return {
    completed: states.filter((s) => s.status === 'completed').length,
    onTarget: states.filter((s) => s.version === TO).length,
    cordoned: states.filter((s) => s.unschedulable).length,
  }
}

// ---------- runs ----------

/** The fleet a run upgrades, at one batch size, and where its raw records go. */
interface FleetRun {
  n: number
  batch: number
  fleet: string
  nodes: string[]
  rawDir: string
}

async function runKataLcm(
  c: Cluster,
  opts: FleetRun & {
    label: string
    expectFailure?: boolean
    budgetS?: number
    nodeOptions?: string
    cliFlags?: string[]
  },
): Promise<KataLcmRun> {
  const namespace = `bench-${opts.label}`
  log(`${opts.label}: installing ${FROM} for ${opts.n} nodes in ${namespace}`)
  const resetS = await freshRelease(c, namespace, opts.fleet, opts.n)
  const verifyFile = path.join(opts.rawDir, `verify-${opts.label}.yaml`)
  await writeFile(verifyFile, VERIFY_TEMPLATE)
  const oldPods = await kataDeployPods(c.k, namespace)
  const loadavgBefore = loadavg().map((x) => Math.round(x * 100) / 100)
  const offset = await auditSize(c.auditLog)
  const leasesBefore = await controlPlaneLeases(c.k)
  const args = [
    CLI,
    'upgrade',
    '--target-version',
    TO,
    '--chart',
    chart(TO),
    '--previous-chart',
    chart(FROM),
    '--verification-pod',
    verifyFile,
    '--verification-namespace',
    namespace,
    '--helm-namespace',
    namespace,
    '--node-selector',
    `${FLEET_LABEL}=${opts.fleet}`,
    '--batch-size',
    String(opts.batch),
    '--kubeconfig',
    c.kubeconfig,
    '--json',
    ...(opts.cliFlags ?? []),
  ]
  log(
    `${opts.label}: kata-lcm upgrade --batch-size ${opts.batch} (${Math.ceil(opts.n / opts.batch)} waves)${opts.cliFlags?.length ? ` ${opts.cliFlags.join(' ')}` : ''}`,
  )
  const r = await runProc(process.execPath, args, {
    env: envWithTools({
      CI: 'true',
      NO_COLOR: '1',
      DEBUG: 'kata-lcm:helm',
      KUBECONFIG: c.kubeconfig,
      ...(opts.nodeOptions ? { NODE_OPTIONS: opts.nodeOptions } : {}),
    }),
    ...(opts.budgetS ? { budgetMs: opts.budgetS * 1000, budgetSignal: 'interrupt' as const } : {}),
  })
  if (r.budgetHit)
    log(`${opts.label}: run budget of ${opts.budgetS} s reached: sent SIGINT (kata-lcm stops after the current wave)`)
  log(
    `${opts.label}: exit ${r.code} in ${(r.wallMs / 1000).toFixed(1)} s, peak RSS ${(r.peakRssKb / 1024).toFixed(0)} MB, CPU ${r.cpuS.toFixed(1)} s`,
  )
  await writeFile(
    path.join(opts.rawDir, `${opts.label}.log`),
    r.lines.map((l) => `${new Date(l.t).toISOString()} ${l.stream} ${l.text}`).join('\n') + '\n',
  )
  // --json: the report on stdout; the progress lines still go to the (non-terminal) stderr.
  let outcome: string | undefined
  try {
    outcome = (
      JSON.parse(
        r.lines
          .filter((l) => l.stream === 'out')
          .map((l) => l.text)
          .join('\n'),
      ) as { outcome?: string; error?: { code?: string } }
    ).outcome
  } catch {
    outcome = undefined
  }
  const newPods = await kataDeployPods(c.k, namespace)
  const lost = leasesLost(leasesBefore, await controlPlaneLeases(c.k))
  if (lost.length > 0) log(`${opts.label}: LEASE LOST during the run: ${lost.join(', ')}`)
  const { events } = await auditWindow(
    c,
    offset,
    r.startMs,
    (e) => isKataLcm(e) || isHelm(e) || (isKwok(e) && e.resource === 'pods' && e.namespace === namespace),
  )
  const analysis = analyzeRun({ events, lines: r.lines, nodes: opts.nodes, namespace, oldPods, newPods })
  await writeFile(path.join(opts.rawDir, `${opts.label}.requests.json`), JSON.stringify(analysis.requests, null, 2))
  await writeFile(
    path.join(opts.rawDir, `${opts.label}.events.jsonl`),
    events.map((e) => JSON.stringify(e)).join('\n') + '\n',
  )
  const states = (await nodeStates(c.k, opts.fleet)).filter((s) => opts.nodes.includes(s.name))
  if (!opts.expectFailure && r.code !== 0) log(`${opts.label}: UNEXPECTED exit ${r.code}; see ${opts.label}.log`)
  const run: KataLcmRun = {
    kind: 'kata-lcm',
    n: opts.n,
    batch: opts.batch,
    namespace,
    exitCode: r.code,
    ...(outcome ? { outcome } : {}),
    wallS: Math.round(r.wallMs) / 1000,
    waves: analysis.waves.length,
    peakRssMb: Math.round(r.peakRssKb / 102.4) / 10,
    cpuS: Math.round(r.cpuS * 100) / 100,
    resetS: Math.round(resetS * 10) / 10,
    endState: endStateOf(states),
    loadavgBefore,
    analysis,
    leasesLost: lost,
    ...(r.budgetHit ? { budgetS: opts.budgetS } : {}),
    ...(opts.nodeOptions ? { nodeOptions: opts.nodeOptions } : {}),
    ...(opts.cliFlags?.length ? { cliFlags: opts.cliFlags } : {}),
  }
  await teardownRelease(c, namespace, opts.fleet, opts.n)
  return run
}

const ARGO_CHARTS = '/opt/kata-deploy-charts'

/**
 * The chart's deploy-version toward TO over the fleet, through the real workflow-controller (step pods
 * on the real node), after `install-workflow` in a namespace of its own; analysed from the finished
 * Workflow, its step pods and the audit log.
 */
async function runArgo(
  c: Cluster,
  bed: ArgoBed,
  opts: FleetRun & { onePodPerWave: boolean; overlapWaves: boolean; wavesPerPod: number },
): Promise<ArgoRun> {
  const label = `argo-b${opts.batch}`
  const namespace = `bench-${label}`
  const argoNs = `${bed.namespace}-b${opts.batch}`
  log(`${label}: installing ${FROM} for ${opts.n} nodes in ${namespace}`)
  const resetS = await freshRelease(c, namespace, opts.fleet, opts.n)
  const verifyFile = path.join(opts.rawDir, `verify-${label}.yaml`)
  await writeFile(verifyFile, VERIFY_TEMPLATE)
  await c.k.core.createNamespace({ body: { metadata: { name: argoNs } } })
  const [repository, tag] = bed.image.split(':') as [string, string]
  await must(
    process.execPath,
    [
      CLI,
      'install-workflow',
      ...['--namespace', argoNs, '--release-name', `klm-b${opts.batch}`, '--verification-pod', verifyFile],
      ...['--helm-release', 'kata-deploy', '--helm-namespace', namespace, '--kubeconfig', c.kubeconfig],
      ...[`defaults.verificationNamespace=${namespace}`, `defaults.chart=${ARGO_CHARTS}/kata-deploy-${TO}.tgz`]
        .concat([`image.repository=${repository}`, `image.tag=${tag}`, 'image.pullPolicy=Never'])
        .concat([`nodeSelector.kubernetes\\.io/hostname=${bed.node}`, 'tolerations[0].key=kata-lcm.test/real-node'])
        .concat(['tolerations[0].operator=Exists', 'tolerations[0].effect=NoSchedule'])
        .concat([`onePodPerWave=${opts.onePodPerWave}`, `overlapWaves=${opts.overlapWaves}`])
        .concat([`wavesPerPod=${opts.wavesPerPod}`])
        .flatMap((v) => ['--set', v]),
    ],
    envWithTools(),
  )
  const loadavgBefore = loadavg().map((x) => Math.round(x * 100) / 100)
  const offset = await auditSize(c.auditLog)
  const started = Date.now()
  log(`${label}: argo submit deploy-version --batch-size ${opts.batch} (${Math.ceil(opts.n / opts.batch)} waves)`)
  const params = [
    `target-version=${TO}`,
    `previous-chart=${ARGO_CHARTS}/kata-deploy-${FROM}.tgz`,
    `node-selector=${FLEET_LABEL}=${opts.fleet}`,
    `batch-size=${opts.batch}`,
    'deployment-mode=daemonset',
  ]
  const submitted = await must(
    'argo',
    ['submit', '-n', argoNs, '--from', 'workflowtemplate/kata-lifecycle-manager', '-o', 'name'].concat(
      params.flatMap((p) => ['-p', p]),
    ),
    envWithTools({ KUBECONFIG: c.kubeconfig }),
  )
  const workflow = submitted.trim()
  const get = async () =>
    JSON.parse(
      await must(
        'kubectl',
        ['get', 'workflow', workflow, '-n', argoNs, '-o', 'json', '--kubeconfig', c.kubeconfig],
        envWithTools(),
      ),
    ) as Workflow & { metadata: { name: string; resourceVersion: string } }
  const finished = (wf: Workflow | undefined) => ['Succeeded', 'Failed', 'Error'].includes(wf?.status?.phase ?? '')
  await watchUntil<Workflow & { metadata: { name: string; resourceVersion: string } }>(
    c.k,
    `/apis/argoproj.io/v1alpha1/namespaces/${argoNs}/workflows`,
    { fieldSelector: `metadata.name=${workflow}` },
    async () => {
      const wf = await get()
      return { items: [wf], resourceVersion: wf.metadata.resourceVersion }
    },
    (objs) => [...objs.values()].some(finished),
    Math.max(1_800_000, opts.n * 6_000),
    `workflow ${workflow}`,
  )
  const wf = await get()
  log(`${label}: workflow ${workflow} ${wf.status?.phase} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  const pods = (await c.k.core.listNamespacedPod({ namespace: argoNs })).items.map((p): StepPod => {
    const main = p.status?.containerStatuses?.find((s) => s.name === 'main')?.state?.terminated
    return {
      nodeName: p.metadata?.name ?? '',
      ...(main?.startedAt ? { mainStartedAt: new Date(main.startedAt).toISOString() } : {}),
      ...(main?.finishedAt ? { mainFinishedAt: new Date(main.finishedAt).toISOString() } : {}),
    }
  })
  const { events } = await auditWindow(c, offset, started, () => true)
  const requestsBy = countBy(events, (e) => e.ua.split('/')[0] ?? '?')
  await writeFile(path.join(opts.rawDir, `${label}.workflow.json`), JSON.stringify(wf, null, 2))
  const states = (await nodeStates(c.k, opts.fleet)).filter((s) => opts.nodes.includes(s.name))
  const run: ArgoRun = {
    kind: 'argo',
    n: opts.n,
    batch: opts.batch,
    namespace,
    workflow,
    resetS: Math.round(resetS * 10) / 10,
    endState: endStateOf(states),
    loadavgBefore,
    analysis: analyzeWorkflow(wf, pods),
    requestsBy,
    kataLcmPerNode: Math.round(((requestsBy['kata-lcm'] ?? 0) / opts.n) * 100) / 100,
    onePodPerWave: opts.onePodPerWave,
    overlapWaves: opts.overlapWaves,
    wavesPerPod: opts.wavesPerPod,
  }
  await teardownRelease(c, namespace, opts.fleet, opts.n)
  return run
}

async function runBaseline(c: Cluster, n: number, budgetS: number | undefined, rawDir: string): Promise<BaselineRun> {
  const namespace = 'bench-baseline'
  log(`baseline: installing ${FROM} for ${n} nodes in ${namespace}`)
  await freshRelease(c, namespace, MAIN, n)
  const verifyFile = path.join(rawDir, 'verification-pod.yaml')
  await writeFile(verifyFile, BASELINE_VERIFY)
  const loadavgBefore = loadavg().map((x) => Math.round(x * 100) / 100)
  const offset = await auditSize(c.auditLog)
  log(`baseline: design script over ${n} nodes${budgetS ? ` (budget ${budgetS} s, then extrapolated)` : ''}`)
  const r = await runProc('bash', [path.join(ROOT, 'bench/baseline.sh')], {
    env: envWithTools({
      KUBECONFIG: c.kubeconfig,
      NS: namespace,
      CHART: chart(TO),
      VERSION: TO,
      SELECTOR: `${FLEET_LABEL}=${MAIN}`,
      VERIFY_FILE: verifyFile,
    }),
    ...(budgetS ? { budgetMs: budgetS * 1000 } : {}),
  })
  await writeFile(
    path.join(rawDir, 'baseline.log'),
    r.lines.map((l) => `${new Date(l.t).toISOString()} ${l.stream} ${l.text}`).join('\n') + '\n',
  )
  const { events } = await auditWindow(c, offset, r.startMs, (e) => isHelm(e) || isKubectl(e))
  const analysis = analyzeBaseline(r.lines, r.startMs, r.endMs, n, events)
  await writeFile(path.join(rawDir, 'baseline.events.jsonl'), events.map((e) => JSON.stringify(e)).join('\n') + '\n')
  log(
    `baseline: ${analysis.nodesDone}/${n} nodes in ${(r.wallMs / 1000).toFixed(1)} s; full fleet ${analysis.extrapolated ? '~' : ''}${analysis.fullFleetS} s`,
  )
  await teardownRelease(c, namespace, MAIN, n)
  return {
    kind: 'baseline',
    n,
    namespace,
    exitCode: r.code,
    wallS: Math.round(r.wallMs) / 1000,
    ...(budgetS ? { budgetS } : {}),
    budgetHit: r.budgetHit,
    loadavgBefore,
    analysis,
  }
}

async function coldStart(): Promise<Results['coldStart']> {
  const file = path.join(ROOT, 'bench/results/raw/cold-start.json')
  await mkdir(path.dirname(file), { recursive: true })
  const cmd = `${process.execPath} ${CLI} --help`
  const hf = await runProc(
    'hyperfine',
    ['--warmup', '3', '--runs', '30', '-N', '--export-json', file, cmd, `${process.execPath} -e 0`],
    {},
  )
  if (hf.code === 0) {
    const data = JSON.parse(await readFile(file, 'utf8')) as {
      results: { median: number; mean: number; min: number; max: number; times: number[] }[]
    }
    const [cli, bare] = data.results
    if (cli)
      return {
        tool: 'hyperfine',
        command: 'node bin/run.js --help',
        medianMs: Math.round(cli.median * 1000),
        meanMs: Math.round(cli.mean * 1000),
        minMs: Math.round(cli.min * 1000),
        maxMs: Math.round(cli.max * 1000),
        runs: cli.times.length,
        ...(bare ? { nodeBareMedianMs: Math.round(bare.median * 1000) } : {}),
      }
  }
  // No hyperfine: 20 timed runs after 3 warm-ups.
  const times: number[] = []
  for (let i = 0; i < 23; i++) {
    const r = await runProc(process.execPath, [CLI, '--help'])
    if (i >= 3) times.push(r.wallMs)
  }
  times.sort((a, b) => a - b)
  return {
    tool: 'repeated runs',
    command: 'node bin/run.js --help',
    medianMs: times[Math.floor(times.length / 2)]!,
    meanMs: Math.round(times.reduce((a, b) => a + b, 0) / times.length),
    minMs: times[0]!,
    maxMs: times[times.length - 1]!,
    runs: times.length,
  }
}

// ---------- main ----------

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
  const rawRoot = path.join(o.out, 'raw', stamp)
  await mkdir(rawRoot, { recursive: true })
  const versions = await versionsEnv()
  const helmVersion = (await must('helm', ['version', '--short'], envWithTools())).trim()
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8')
  const results: Results = {
    startedAt: new Date().toISOString(),
    source: process.env.KATA_LCM_BENCH_SOURCE ?? 'unknown',
    command: `bench/run.sh ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      nproc: cpus().length,
      cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
      memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
      freeGiBAtStart: Math.round((freemem() / 2 ** 30) * 10) / 10,
      node: process.version,
      kube: versions.KUBE_VERSION ?? '?',
      kwok: versions.KWOK_VERSION ?? '?',
      helm: helmVersion,
    },
    sizes: [],
  }
  const save = async () => {
    const json = path.join(o.out, `${stamp}.json`)
    const md = renderMarkdown(results)
    await writeFile(json, JSON.stringify(results, null, 2) + '\n')
    await writeFile(path.join(o.out, `${stamp}.md`), md)
    await writeFile(path.join(o.out, 'latest.md'), md)
    log(`results: ${path.relative(ROOT, json)}, ${path.relative(ROOT, path.join(o.out, `${stamp}.md`))}`)
  }

  if (o.coldStart) {
    log('cold start: kata-lcm --help')
    results.coldStart = await coldStart()
    log(`cold start median ${results.coldStart?.medianMs} ms`)
    await save()
  }

  for (const n of o.sizes) {
    const size: SizeResult = { n, clusterCreateS: 0, fleetCreateS: 0, auditMB: 0, runs: [], errors: [] }
    results.sizes.push(size)
    const rawDir = path.join(rawRoot, `n${n}`)
    await mkdir(rawDir, { recursive: true })
    const name = `bench-n${n}`
    let t = Date.now()
    log(`N=${n}: creating cluster ${name}`)
    const c = await createCluster(name)
    size.clusterCreateS = (Date.now() - t) / 1000
    try {
      t = Date.now()
      const nodes = nodeNames('bn', n)
      log(`N=${n}: creating ${n} nodes`)
      await createFleet(c.k, nodes, MAIN, Math.max(120_000, n * 200))
      size.fleetCreateS = (Date.now() - t) / 1000
      log(`N=${n}: fleet Ready in ${size.fleetCreateS.toFixed(1)} s`)
      const bed = o.argo ? await startArgoBed(ROOT, c.name, CHARTS, envWithTools()) : undefined
      for (const batch of batchesFor(o, n)) {
        if (bed) {
          try {
            ;(size.argoRuns ??= []).push(
              await runArgo(c, bed, {
                n,
                batch,
                fleet: MAIN,
                nodes,
                rawDir,
                onePodPerWave: o.argoOnePodPerWave,
                overlapWaves: o.argoOverlap,
                wavesPerPod: o.argoWavesPerPod,
              }),
            )
          } catch (e) {
            size.errors.push(`argo batch ${batch}: ${(e as Error).message}`)
            log(`argo batch ${batch} failed: ${(e as Error).message}`)
          }
          await save()
        }
        try {
          size.runs.push(
            await runKataLcm(c, {
              n,
              batch,
              fleet: MAIN,
              nodes,
              rawDir,
              label: `b${batch}`,
              ...(o.runBudgetS ? { budgetS: o.runBudgetS } : {}),
              ...(o.nodeOptions ? { nodeOptions: o.nodeOptions } : {}),
              cliFlags: o.cliFlags,
            }),
          )
        } catch (e) {
          size.errors.push(`batch ${batch}: ${(e as Error).message}`)
          log(`batch ${batch} failed: ${(e as Error).message}`)
        }
        await save()
      }
      await bed?.stop()
      if (o.baseline && n <= o.baselineMaxN) {
        try {
          size.baseline = await runBaseline(c, n, n <= o.baselineFullMax ? undefined : o.baselineBudgetS, rawDir)
        } catch (e) {
          size.errors.push(`baseline: ${(e as Error).message}`)
          log(`baseline failed: ${(e as Error).message}`)
        }
        await save()
      }
      if (o.vfail && n === o.sizes[0]) {
        try {
          // 4 nodes that pass and one whose verification pod fails (vfail-*), one wave.
          const vnodes = [...nodeNames('bv', 4), 'vfail-bv-5']
          await createFleet(c.k, vnodes, VFAIL, 120_000)
          size.vfail = await runKataLcm(c, {
            n: vnodes.length,
            batch: vnodes.length,
            fleet: VFAIL,
            nodes: vnodes,
            rawDir,
            label: 'vfail',
            expectFailure: true,
          })
        } catch (e) {
          size.errors.push(`vfail: ${(e as Error).message}`)
          log(`vfail run failed: ${(e as Error).message}`)
        }
        await save()
      }
    } catch (e) {
      size.errors.push((e as Error).message)
      log(`N=${n} failed: ${(e as Error).message}`)
    } finally {
      size.auditMB = Math.round((await auditSize(c.auditLog).catch(() => 0)) / 1e5) / 10
      if (!o.keepCluster)
        await must(path.join(ROOT, 'scripts/testbed/cluster.sh'), ['delete', name], envWithTools()).catch(
          (e: unknown) => log(`cluster delete: ${(e as Error).message}`),
        )
      await save()
    }
  }
  results.finishedAt = new Date().toISOString()
  await save()
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
