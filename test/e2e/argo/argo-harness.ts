/**
 * Helpers of the Argo e2e tests: the built CLI, Argo's CRDs, a kubeconfig with a ServiceAccount's
 * token, a kata-deploy fixture release on kwok nodes, and a small interpreter that runs the
 * WorkflowTemplate's steps (as the API server stored it) the way Argo would, with `kata-lcm` as
 * the built CLI: same order, same arguments, same stop-on-failure, same exit handler.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node'
import { REPO_ROOT, envWithTools, helmBin, run, toolsBinDir, type RunResult } from '../harness/cluster.js'
import { createFakeNodes, deleteNodes } from '../harness/nodes.js'
import { hasCondition, waitForList, waitForObject } from '../harness/wait.js'

/** Argo Workflows' CRDs (v4.1.2), in the shared/ folder that sits beside the repository. */
export const ARGO_CRDS = path.resolve(REPO_ROOT, '../shared/reference/argo')
export const KUBECTL = path.join(toolsBinDir(), 'kubectl')
export const HELM = helmBin()
/** The label the fixture DaemonSet selects nodes by, so each scenario's pods land on its own nodes only. */
export const RUN_LABEL = 'kata-lcm.test/run'

export const VERIFICATION_POD = `apiVersion: v1
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
      image: registry.example/verify:1
      command: ["true"]
`

let cliRoot: string | undefined

/**
 * Builds the CLI from the current sources into a private directory (package.json, bin/run.js, dist/,
 * and links to chart/ and node_modules/): the same files `npm run build` makes, out of reach of a
 * concurrent `npm run build` in the work tree, which empties dist/ while it runs.
 */
export async function ensureCliBuilt(): Promise<void> {
  if (cliRoot) return
  const root = await mkdtemp(path.join(tmpdir(), 'kata-lcm-cli-'))
  await mkdir(path.join(root, 'bin'))
  await copyFile(path.join(REPO_ROOT, 'package.json'), path.join(root, 'package.json'))
  await copyFile(path.join(REPO_ROOT, 'bin/run.js'), path.join(root, 'bin/run.js'))
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'))
  await symlink(path.join(REPO_ROOT, 'chart'), path.join(root, 'chart'))
  await must(
    run('node', [path.join(REPO_ROOT, 'scripts/build.mjs'), path.join(root, 'dist')]),
    'scripts/build.mjs (private CLI build)',
  )
  cliRoot = root
}

export async function removeCli(): Promise<void> {
  if (cliRoot) await rm(cliRoot, { recursive: true, force: true })
  cliRoot = undefined
}

/** `kata-lcm ARGS` from the built CLI, with the test bed's helm and the given kubeconfig (KUBECONFIG). */
export function kataLcm(args: string[], kubeconfig: string): Promise<RunResult> {
  if (!cliRoot) throw new Error('call ensureCliBuilt() first')
  return run('node', [path.join(cliRoot, 'bin/run.js'), ...args], {
    env: envWithTools({ KUBECONFIG: kubeconfig, HELM_BIN: HELM, NO_COLOR: '1', CI: 'true' }),
  })
}

export function kubectl(kubeconfig: string, args: string[]): Promise<RunResult> {
  return run(KUBECTL, ['--kubeconfig', kubeconfig, ...args], { env: envWithTools() })
}

export function helm(kubeconfig: string, args: string[]): Promise<RunResult> {
  return run(HELM, [...args, '--kubeconfig', kubeconfig], { env: envWithTools() })
}

export async function must(r: Promise<RunResult>, what: string): Promise<RunResult> {
  const result = await r
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}\n${result.stdout}`)
  return result
}

/** Argo's full CRDs, server-side applied (too big for a client-side apply annotation); waits until Established. */
export async function applyArgoCrds(kubeconfig: string): Promise<void> {
  await must(
    kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', ARGO_CRDS]),
    'kubectl apply Argo CRDs',
  )
  await must(
    kubectl(kubeconfig, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/workflows.argoproj.io',
      'crd/workflowtemplates.argoproj.io',
    ]),
    'kubectl wait CRDs',
  )
}

export async function deleteArgoCrds(kubeconfig: string): Promise<void> {
  await must(
    kubectl(kubeconfig, [
      'delete',
      '--ignore-not-found',
      '--wait',
      '--timeout=120s',
      'crd/workflows.argoproj.io',
      'crd/workflowtemplates.argoproj.io',
    ]),
    'kubectl delete Argo CRDs',
  )
}

/** The packaged fixture charts, version -> .tgz (scripts/testbed/package-fixture-charts.sh; idempotent). */
export async function fixtureCharts(): Promise<Record<string, string>> {
  const r = await must(
    run('bash', [path.join(REPO_ROOT, 'scripts/testbed/package-fixture-charts.sh')], { env: envWithTools({ HELM }) }),
    'package-fixture-charts.sh',
  )
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .filter(Boolean)
      .map((tgz) => [/kata-deploy-(.+)\.tgz$/.exec(tgz)?.[1] ?? tgz, tgz]),
  )
}

/**
 * A kubeconfig for `namespace/serviceAccount`: the cluster of `adminKubeconfig` and a fresh token
 * (TokenRequest, 1 h): what a workflow pod of that ServiceAccount would present.
 */
export async function serviceAccountKubeconfig(
  adminKubeconfig: string,
  namespace: string,
  serviceAccount: string,
  file: string,
): Promise<string> {
  const token = (
    await must(
      kubectl(adminKubeconfig, ['create', 'token', serviceAccount, '-n', namespace, '--duration=1h']),
      'kubectl create token',
    )
  ).stdout.trim()
  const admin = parseYaml(await readFile(adminKubeconfig, 'utf8')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[]
    'current-context': string
    contexts: { name: string; context: { cluster: string } }[]
  }
  const cluster =
    admin.clusters.find(
      (c) => c.name === admin.contexts.find((x) => x.name === admin['current-context'])?.context.cluster,
    ) ?? admin.clusters[0]!
  await writeFile(
    file,
    stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'sa',
      clusters: [{ name: 'cluster', cluster: cluster.cluster }],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: 'cluster', user: serviceAccount, namespace } }],
    }),
    { mode: 0o600 },
  )
  return file
}

export interface Scenario {
  id: string
  /** The kata-deploy release namespace, also the verification pods' namespace. */
  namespace: string
  nodes: string[]
}

/** A namespace with kata-deploy `version` (fixture, daemonset mode) running on fresh kwok nodes labelled for this scenario only. */
export async function setupScenario(
  kc: KubeConfig,
  kubeconfig: string,
  scenario: Scenario,
  chart: string,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api)
  await core.createNamespace({ body: { metadata: { name: scenario.namespace } } })
  await createFakeNodes(
    kc,
    scenario.nodes.map((name) => ({ name, labels: { [RUN_LABEL]: scenario.id } })),
  )
  await must(
    helm(kubeconfig, [
      'install',
      'kata-deploy',
      chart,
      '-n',
      scenario.namespace,
      '--set',
      `nodeSelector.${RUN_LABEL.replace(/\./g, '\\.')}=${scenario.id}`,
      '--wait',
      '--timeout',
      '2m',
    ]),
    'helm install kata-deploy',
  )
  await waitForList<V1Pod>(
    kc,
    `/api/v1/namespaces/${scenario.namespace}/pods`,
    (pods) => scenario.nodes.every((n) => pods.some((p) => p.spec?.nodeName === n && hasCondition(p, 'Ready'))),
    60_000,
    { labelSelector: 'name=kata-deploy', description: 'kata-deploy pods Ready on every node' },
  )
}

export async function teardownScenario(kc: KubeConfig, kubeconfig: string, scenario: Scenario): Promise<void> {
  await helm(kubeconfig, ['uninstall', 'kata-deploy', '-n', scenario.namespace, '--wait', '--timeout', '1m'])
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: scenario.namespace })
    .catch(() => undefined)
  await deleteNodes(kc, scenario.nodes).catch(() => undefined)
}

// ---------------------------------------------------------------- the WorkflowTemplate, run by hand

interface Param {
  name: string
  value?: string
}
interface Step {
  name: string
  template: string
  when?: string
  withSequence?: { start?: string; count?: string }
  arguments?: { parameters?: Param[] }
}
interface Template {
  name: string
  inputs?: { parameters?: Param[]; artifacts?: { name: string; path: string; raw?: { data: string } }[] }
  container?: { command: string[]; args?: string[] }
  steps?: Step[][]
  failFast?: boolean
  parallelism?: number
}
export interface WorkflowTemplateSpec {
  entrypoint: string
  onExit?: string
  arguments: { parameters: Param[] }
  templates: Template[]
}

/** One container the interpreter ran: its template, argv (after `kata-lcm`) and exit code. */
export interface StepRun {
  template: string
  argv: string[]
  code: number
  stdout: string
  stderr: string
}

interface Scope {
  workflow: Record<string, string>
  inputs: Record<string, string>
  steps: Record<string, { result: string }>
  item?: string
}

/** `{{workflow.name|mainEntrypoint|status}}`, `{{workflow.parameters.X}}`, `{{inputs.parameters.X}}`, `{{item}}`. */
function lookup(scope: Scope, ref: string): string {
  const [kind, first, ...more] = ref.split('.')
  const value =
    kind === 'item'
      ? scope.item
      : first === 'parameters' && (kind === 'workflow' || kind === 'inputs')
        ? scope[kind][more.join('.')]
        : kind === 'workflow'
          ? scope.workflow[`@${[first, ...more].join('.')}`]
          : undefined
  if (value === undefined) throw new Error(`the interpreter cannot resolve {{${ref}}}`)
  return value
}

/** The few Argo expressions the template uses; anything else fails the test (so the interpreter keeps up with the template). */
function expression(scope: Scope, expr: string): string {
  const operand = (text: string): string => {
    const t = text.trim()
    const lit = /^'([^']*)'$/.exec(t)
    if (lit) return lit[1]!
    const param = /^workflow\.parameters(?:\['([^']+)'\]|\.([\w-]+))$/.exec(t)
    if (param) return lookup(scope, `workflow.parameters.${param[1] ?? param[2]}`)
    throw new Error(`the interpreter cannot evaluate ${t}`)
  }
  const json = /^jsonpath\(steps\.(\w+)\.outputs\.result, '\$\.(\w+)'\)$/.exec(expr)
  if (json) return String((JSON.parse(scope.steps[json[1]!]!.result) as Record<string, unknown>)[json[2]!])
  const b64 = /^sprig\.b64dec\((.*)\)$/.exec(expr)
  if (b64) {
    // Its argument: a parameter or a literal, else an expression (a ternary).
    const inner = b64[1]!
    const value = /^(workflow\.parameters\S*|'[^']*')$/.test(inner.trim()) ? operand(inner) : expression(scope, inner)
    return Buffer.from(value, 'base64').toString('utf8')
  }
  const ternary = /^(.+?) (==|!=) ('[^']*') \? (.+?) : (.+)$/.exec(expr)
  if (ternary) {
    const equal = operand(ternary[1]!) === operand(ternary[3]!)
    return operand((ternary[2] === '==') === equal ? ternary[4]! : ternary[5]!)
  }
  throw new Error(`the interpreter cannot evaluate {{=${expr}}}`)
}

function substitute(text: string, scope: Scope): string {
  return text.replace(/\{\{(=?)(.+?)\}\}(?!\})/g, (_, isExpr: string, body: string) =>
    isExpr ? expression(scope, body) : lookup(scope, body.trim()),
  )
}

/** govaluate as the template uses it: `N > 0`, `'a' == 'b'`, `'a' != 'b'` (the window gate's), joined by `&&`. */
function when(condition: string): boolean {
  if (condition.includes(' && ')) return condition.split(' && ').every(when)
  const num = /^(-?\d+) > (-?\d+)$/.exec(condition)
  if (num) return Number(num[1]) > Number(num[2])
  const str = /^'([^']*)' (==|!=) '([^']*)'$/.exec(condition)
  if (str) return (str[1] === str[3]) === (str[2] === '==')
  throw new Error(`the interpreter cannot evaluate when: ${condition}`)
}

/**
 * Runs `entrypoint` of the WorkflowTemplate, then its onExit handler, as Argo would: steps in order,
 * a step group's loop one item at a time, the first failed step failing its steps template (and so
 * its callers: run-waves has failFast and parallelism 1), `kata-lcm` being the built CLI.
 * Every argument comes from the template; `submitted` are the `argo submit -p` parameters.
 */
export async function runWorkflow(
  spec: WorkflowTemplateSpec,
  opts: {
    entrypoint?: string
    workflowName: string
    submitted: Record<string, string>
    kubeconfig: string
    tmpDir: string
  },
): Promise<{ ok: boolean; runs: StepRun[] }> {
  const entrypoint = opts.entrypoint ?? spec.entrypoint
  const workflow: Record<string, string> = { '@name': opts.workflowName, '@mainEntrypoint': entrypoint }
  for (const p of spec.arguments.parameters) if (p.value !== undefined) workflow[p.name] = p.value
  Object.assign(workflow, opts.submitted)
  const runs: StepRun[] = []
  const templates = new Map(spec.templates.map((t) => [t.name, t]))

  const exec = async (name: string, inputs: Record<string, string>): Promise<{ ok: boolean; result: string }> => {
    const t = templates.get(name)
    if (!t) throw new Error(`no template ${name}`)
    const scope: Scope = {
      workflow,
      inputs: {
        ...Object.fromEntries(
          (t.inputs?.parameters ?? []).filter((p) => p.value !== undefined).map((p) => [p.name, p.value!]),
        ),
        ...inputs,
      },
      steps: {},
    }
    if (t.container) {
      let argv = [...t.container.command, ...(t.container.args ?? [])].map((a) => substitute(a, scope))
      for (const art of t.inputs?.artifacts ?? []) {
        const file = path.join(opts.tmpDir, `${name}-${art.name}`)
        await writeFile(file, substitute(art.raw?.data ?? '', scope))
        argv = argv.map((a) => a.replace(art.path, file))
      }
      if (argv[0] !== 'kata-lcm') throw new Error(`template ${name} runs ${argv[0]}, not kata-lcm`)
      const r = await kataLcm(argv.slice(1), opts.kubeconfig)
      runs.push({ template: name, argv: argv.slice(1), code: r.code, stdout: r.stdout, stderr: r.stderr })
      return { ok: r.code === 0, result: r.stdout.replace(/\n$/, '') }
    }
    for (const group of t.steps ?? []) {
      for (const step of group) {
        const items = step.withSequence
          ? Array.from({ length: Number(substitute(step.withSequence.count ?? '0', scope)) }, (_, i) =>
              String(Number(step.withSequence!.start ?? '0') + i),
            )
          : [undefined]
        let last = { ok: true, result: '' }
        for (const item of items) {
          const itemScope = { ...scope, item }
          if (step.when && !when(substitute(step.when, itemScope))) continue
          const args = Object.fromEntries(
            (step.arguments?.parameters ?? []).map((p) => [p.name, substitute(p.value ?? '', itemScope)]),
          )
          last = await exec(step.template, args)
          if (!last.ok) return { ok: false, result: '' }
        }
        scope.steps[step.name] = { result: last.result }
      }
    }
    return { ok: true, result: '' }
  }

  const main = await exec(entrypoint, {})
  // The exit handler sees how the workflow ended ({{workflow.status}}).
  workflow['@status'] = main.ok ? 'Succeeded' : 'Failed'
  if (spec.onExit) await exec(spec.onExit, {})
  return { ok: main.ok, runs }
}

// ---------------------------------------------------------------- what a run leaves behind

export interface NodeState {
  annotations: Record<string, string>
  unschedulable: boolean
  /** The node's kata-deploy pod: image, DaemonSet ControllerRevision number, on the current revision. */
  kataDeploy: { image: string; revision: number; current: boolean }[]
}

export interface ClusterState {
  nodes: NodeState[]
  release: { chartVersion: string; status: string; history: string[] }
  daemonSet: { image: string; updateStrategy: string }
  runRecord: boolean
  lock: boolean
}

/** Keys that name a run, an install of the release, a pod or a moment, not an outcome. */
const VOLATILE = new Set([
  'kata-lcm.katacontainers.io/run-id',
  'kata-lcm.katacontainers.io/phase-started-at',
  'kata-lcm.katacontainers.io/release-instance',
  'kata-lcm.katacontainers.io/verified-kata-deploy',
])

/** The cluster as a kata-lcm run left it, in scenario-independent terms (node i, pod names and ids removed). */
export async function clusterState(kc: KubeConfig, kubeconfig: string, scenario: Scenario): Promise<ClusterState> {
  const core = kc.makeApiClient(CoreV1Api)
  const apps = kc.makeApiClient(AppsV1Api)
  const ns = scenario.namespace
  const ds = await apps.readNamespacedDaemonSet({ namespace: ns, name: 'kata-deploy' })
  await waitForObject(kc, `/apis/apps/v1/namespaces/${ns}/daemonsets`, 'kata-deploy', (obj) => {
    const d = obj as { metadata?: { generation?: number }; status?: { observedGeneration?: number } }
    return (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1)
  })
  const revisions = (await apps.listNamespacedControllerRevision({ namespace: ns })).items
  const current = revisions.reduce((a, b) => ((a.revision ?? 0) >= (b.revision ?? 0) ? a : b))
  const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'name=kata-deploy' })).items.filter(
    (p) => !p.metadata?.deletionTimestamp,
  )
  const normalize = (text: string) =>
    scenario.nodes
      .reduce((t, n, i) => t.replaceAll(n, `node-${i}`), text)
      .replaceAll(ns, 'NS')
      .replace(/\b(kata-verify-node-\d+)-[a-z0-9]+\b/g, '$1-RANDOM')
  const nodes: NodeState[] = []
  for (const name of scenario.nodes) {
    const node = await core.readNode({ name })
    const annotations = Object.fromEntries(
      Object.entries(node.metadata?.annotations ?? {})
        .filter(
          ([k]) =>
            (k.startsWith('katacontainers.io/') || k.startsWith('kata-lcm.katacontainers.io/')) && !VOLATILE.has(k),
        )
        .map(([k, v]) => [k, normalize(v)]),
    )
    const kataDeploy = pods
      .filter((p) => p.spec?.nodeName === name)
      .map((p) => {
        const hash = p.metadata?.labels?.['controller-revision-hash']
        const rev = revisions.find(
          (r) => r.metadata?.labels?.['controller-revision-hash'] === hash || r.metadata?.name?.endsWith(`-${hash}`),
        )
        return {
          image: p.spec?.containers[0]?.image ?? '',
          revision: rev?.revision ?? -1,
          current: rev?.metadata?.name === current.metadata?.name,
        }
      })
    nodes.push({ annotations, unschedulable: node.spec?.unschedulable === true, kataDeploy })
  }
  const meta = JSON.parse(
    (await must(helm(kubeconfig, ['get', 'metadata', 'kata-deploy', '-n', ns, '-o', 'json']), 'helm get metadata'))
      .stdout,
  ) as { version: string; status: string }
  const history = JSON.parse(
    (await must(helm(kubeconfig, ['history', 'kata-deploy', '-n', ns, '-o', 'json']), 'helm history')).stdout,
  ) as { chart: string; status: string }[]
  const cms = (await core.listNamespacedConfigMap({ namespace: ns })).items.map((c) => c.metadata?.name)
  const lock = await kubectl(kubeconfig, ['get', 'leases.coordination.k8s.io', '-n', ns, '-o', 'name'])
  return {
    nodes,
    release: { chartVersion: meta.version, status: meta.status, history: history.map((h) => `${h.chart} ${h.status}`) },
    daemonSet: {
      image: ds.spec?.template.spec?.containers[0]?.image ?? '',
      updateStrategy: ds.spec?.updateStrategy?.type ?? '',
    },
    runRecord: cms.some((n) => n?.startsWith('kata-lcm-run-')),
    lock: lock.stdout.trim() !== '',
  }
}
