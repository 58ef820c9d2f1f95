/**
 * The WorkflowTemplate's steps on the kwok cluster, with the token of the chart's ServiceAccount
 * (what a workflow pod presents), run the way Argo runs them (argo-harness runWorkflow reads the
 * template the API server stored: order, arguments, loop, stop on failure, exit handler):
 *
 * - RBAC: every step command succeeds, the API server refused none of its requests, and writes
 *   outside the chart's roles are forbidden;
 * - the steps leave the cluster in the same state as `kata-lcm upgrade` for the same scenario.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { AuditLog, describeEvents } from '../harness/audit.js'
import { e2eCluster, loadKubeConfig } from '../harness/cluster.js'
import { waitForList } from '../harness/wait.js'
import {
  applyArgoCrds,
  clusterState,
  ensureCliBuilt,
  fixtureCharts,
  helm,
  kataLcm,
  kubectl,
  must,
  removeCli,
  RUN_LABEL,
  runWorkflow,
  serviceAccountKubeconfig,
  setupScenario,
  teardownScenario,
  VERIFICATION_POD,
  type Scenario,
  type StepRun,
  type WorkflowTemplateSpec,
} from './argo-harness.js'

const CURRENT = '3.27.0'
const TARGET = '3.28.0'

let kubeconfig: string
let kc: KubeConfig
let audit: AuditLog
let charts: Record<string, string>
let dir: string
let podFile: string
const cleanups: (() => Promise<unknown>)[] = []

function newScenario(name: string, nodes: string[]): Scenario {
  const id = `${name}-${randomBytes(2).toString('hex')}`
  return {
    id,
    namespace: `kd-${id}`,
    nodes: nodes.map((n) => (n.startsWith('vfail-') ? `vfail-${id}-${n.slice(6)}` : `${id}-${n}`)),
  }
}

/** The chart installed by `kata-lcm install-workflow` for a scenario, and a kubeconfig with its ServiceAccount's token. */
async function installWorkflowFor(
  scenario: Scenario,
  /** More install-workflow arguments (e.g. the fleet policy's namespace). */
  extra: string[] = [],
): Promise<{ argoNamespace: string; saKubeconfig: string; spec: WorkflowTemplateSpec }> {
  const argoNamespace = `argo-${scenario.id}`
  const release = `klm-${scenario.id}`
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: argoNamespace } } })
  cleanups.push(() =>
    kc
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: argoNamespace })
      .catch(() => undefined),
  )
  cleanups.push(() => helm(kubeconfig, ['uninstall', release, '-n', argoNamespace]))
  const r = await kataLcm(
    [
      'install-workflow',
      '--verification-pod',
      podFile,
      '--namespace',
      argoNamespace,
      '--release-name',
      release,
      '--helm-release',
      'kata-deploy',
      '--helm-namespace',
      scenario.namespace,
      '--set',
      `defaults.verificationNamespace=${scenario.namespace}`,
      ...extra,
    ],
    kubeconfig,
  )
  expect(r.code, r.stderr).toBe(0)
  const stored = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
    group: 'argoproj.io',
    version: 'v1alpha1',
    namespace: argoNamespace,
    plural: 'workflowtemplates',
    name: 'kata-lifecycle-manager',
  })) as { spec: WorkflowTemplateSpec & { serviceAccountName: string } }
  const saKubeconfig = await serviceAccountKubeconfig(
    kubeconfig,
    argoNamespace,
    stored.spec.serviceAccountName,
    path.join(dir, `${scenario.id}.kubeconfig`),
  )
  return { argoNamespace, saKubeconfig, spec: stored.spec }
}

function summary(runs: StepRun[]): string[] {
  return runs.map(
    (r) =>
      `${r.template}${r.argv.includes('--wave=1') ? ' 1' : r.argv.includes('--wave=2') ? ' 2' : ''} ${r.argv[1] ?? ''}`.trim() +
      ` -> ${r.code}`,
  )
}

/** Every request of `username` since `t0` the API server refused (403 and any other >= 400 but 404/409). */
async function refused(username: string, t0: Date) {
  await audit.barrier(kc)
  return (await audit.find({ since: t0, username })).filter(
    (e) => (e.responseStatus?.code ?? 0) >= 400 && ![404, 409].includes(e.responseStatus?.code ?? 0),
  )
}

beforeAll(async () => {
  const cluster = e2eCluster()
  kubeconfig = cluster.kubeconfigPath
  kc = loadKubeConfig(kubeconfig)
  audit = new AuditLog(cluster.auditLogPath)
  await ensureCliBuilt()
  await applyArgoCrds(kubeconfig)
  charts = await fixtureCharts()
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-argo-steps-'))
  podFile = path.join(dir, 'verification-pod.yaml')
  await writeFile(podFile, VERIFICATION_POD)
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  if (dir) await rm(dir, { recursive: true, force: true })
  await removeCli()
})

describe("the WorkflowTemplate's steps with the chart's ServiceAccount token", () => {
  it('succeed end to end (plan, waves with drain, finalize, no exit step, then rollback-node), refused nothing, and cannot write outside the roles', async () => {
    const s = newScenario('rbac', ['a', 'b'])
    await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
    cleanups.push(() => teardownScenario(kc, kubeconfig, s))
    const { argoNamespace, saKubeconfig, spec } = await installWorkflowFor(s)
    const username = `system:serviceaccount:${argoNamespace}:klm-${s.id}-kata-lifecycle-manager`
    // A workload in a namespace the chart knows nothing about, for the drain to evict: a ReplicaSet's
    // pod, so that something recreates it (kata-lcm refuses to evict a pod nothing recreates).
    const core = kc.makeApiClient(CoreV1Api)
    await kc.makeApiClient(AppsV1Api).createNamespacedReplicaSet({
      namespace: argoNamespace,
      body: {
        metadata: { name: 'workload' },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'workload' } },
          template: {
            metadata: { labels: { app: 'workload' } },
            spec: {
              nodeSelector: { 'kubernetes.io/hostname': s.nodes[0]! },
              containers: [{ name: 'w', image: 'registry.example/w:1' }],
            },
          },
        },
      },
    })
    const [original] = await waitForList<V1Pod>(
      kc,
      `/api/v1/namespaces/${argoNamespace}/pods`,
      (ps) => ps.some((p) => p.spec?.nodeName === s.nodes[0]),
      60_000,
      { labelSelector: 'app=workload' },
    )
    const t0 = new Date()

    const deploy = await runWorkflow(spec, {
      workflowName: `kata-lifecycle-manager-${s.id}`,
      kubeconfig: saKubeconfig,
      tmpDir: dir,
      submitted: {
        'target-version': TARGET,
        chart: charts[TARGET]!,
        'previous-chart': charts[CURRENT]!,
        'node-selector': `${RUN_LABEL}=${s.id}`,
        'deployment-mode': 'daemonset',
        'drain-enabled': 'true',
        'drain-timeout': '60s',
      },
    })
    expect(deploy.runs[0]!.argv).toContain('--drain')
    expect(deploy.runs[0]!.argv).toContain('--no-drain-force')
    // Evicted: the pod that ran there is gone (its ReplicaSet made another).
    const workloads = (await core.listNamespacedPod({ namespace: argoNamespace, labelSelector: 'app=workload' })).items
    expect(workloads.map((p) => p.metadata?.uid)).not.toContain(original!.metadata?.uid)
    const failed = deploy.runs.filter((r) => r.code !== 0)
    expect(failed.map((r) => `${r.template} ${r.argv.join(' ')}\n${r.stderr}`)).toEqual([])
    // The chart's default: each wave one step (kata-lcm step wave).
    expect(summary(deploy.runs)).toEqual([
      'plan plan -> 0',
      'wave-phase 1 wave -> 0',
      'wave-phase 2 wave -> 0',
      'finalize finalize -> 0',
      // Succeeded: no exit step (nothing left mid-flight, the lock released by finalize).
    ])
    expect(JSON.parse(deploy.runs[0]!.stdout)).toMatchObject({ waves: 2, nodes: 2, skipped: 0 })
    const after = await clusterState(kc, kubeconfig, s)
    expect(
      after.nodes.map((n) => [
        n.annotations['katacontainers.io/kata-lifecycle-manager-status'],
        n.annotations['katacontainers.io/kata-current-version'],
        n.unschedulable,
      ]),
    ).toEqual([
      ['completed', TARGET, false],
      ['completed', TARGET, false],
    ])
    expect(after).toMatchObject({
      release: { chartVersion: TARGET, status: 'deployed' },
      runRecord: false,
      lock: false,
    })

    // The manual rollback entrypoint, same token: node a goes back to the previous version.
    const rollback = await runWorkflow(spec, {
      entrypoint: 'rollback-node',
      workflowName: `kata-lifecycle-manager-rb-${s.id}`,
      kubeconfig: saKubeconfig,
      tmpDir: dir,
      submitted: { 'node-name': s.nodes[0]!, chart: charts[TARGET]!, 'previous-chart': charts[CURRENT]! },
    })
    expect(rollback.runs.map((r) => `${r.template} -> ${r.code}${r.code ? `\n${r.stderr}` : ''}`)).toEqual([
      'rollback-node -> 0',
    ])
    const rolled = (await clusterState(kc, kubeconfig, s)).nodes[0]!
    expect([
      rolled.annotations['katacontainers.io/kata-lifecycle-manager-status'],
      rolled.annotations['katacontainers.io/kata-current-version'],
      rolled.unschedulable,
    ]).toEqual(['rolled-back', CURRENT, false])

    const denied = await refused(username, t0)
    expect(denied, describeEvents(denied)).toHaveLength(0)
    // The steps did their writes with this identity (so the audit check above is about them),
    // including the best-effort ones a denial would not fail: node Events, and the drain's eviction.
    const wrote = (filter: Parameters<AuditLog['find']>[0]) =>
      audit.find({ since: t0, username, succeededOnly: true, ...filter })
    expect((await wrote({ verbs: ['patch'], resource: 'nodes' })).length).toBeGreaterThan(0)
    expect((await wrote({ verbs: ['create'], resource: 'events', namespace: 'default' })).length).toBeGreaterThan(0)
    // One eviction, after the drain preflight's dry-run evictions (the plan's and the wave's).
    const evictions = await wrote({
      verbs: ['create'],
      resource: 'pods',
      subresource: 'eviction',
      namespace: argoNamespace,
    })
    expect(evictions.filter((e) => !/[?&]dryRun=All/.test(e.requestURI))).toHaveLength(1)
    expect(evictions.filter((e) => /[?&]dryRun=All/.test(e.requestURI)).length).toBeGreaterThan(0)

    // Writes outside the roles are forbidden.
    const outside: [string, string[]][] = [
      ['delete a namespace', ['delete', 'namespace', s.namespace, '--wait=false']],
      [
        'create a Secret in another namespace',
        ['create', 'secret', 'generic', `x-${s.id}`, '-n', 'default', '--from-literal=a=b'],
      ],
      [
        'create a Pod in another namespace',
        ['run', `x-${s.id}`, '-n', 'default', '--image=registry.example/x:1', '--restart=Never'],
      ],
      [
        'delete a DaemonSet in another namespace',
        ['delete', 'daemonset', 'kata-deploy', '-n', 'kube-system', '--ignore-not-found=false'],
      ],
      [
        'grant itself cluster-admin',
        [
          'create',
          'clusterrolebinding',
          `x-${s.id}`,
          '--clusterrole=cluster-admin',
          `--serviceaccount=${argoNamespace}:klm-${s.id}-kata-lifecycle-manager`,
        ],
      ],
      [
        'edit its own ClusterRole',
        [
          'patch',
          'clusterrole',
          `klm-${s.id}-kata-lifecycle-manager`,
          '--type=json',
          '-p=[{"op":"add","path":"/rules/-","value":{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}}]',
        ],
      ],
    ]
    for (const [what, args] of outside) {
      const r = await kubectl(saKubeconfig, args)
      expect(r.code, `${what}: ${r.stdout}`).not.toBe(0)
      expect(r.stderr, what).toMatch(/forbidden/i)
    }
    await must(kubectl(kubeconfig, ['get', 'namespace', s.namespace]), 'the namespace still exists')
  })

  it("a fleet policy's drain (force, emptyDir data), both timeouts and previousChart reach the run record through install-workflow and the plan step", async () => {
    const s = newScenario('policy', ['a'])
    await setupScenario(kc, kubeconfig, s, charts[CURRENT]!)
    cleanups.push(() => teardownScenario(kc, kubeconfig, s))
    // The policy lives in the scenario's namespace (--policy-namespace), not in the shared kube-system.
    const policyFile = path.join(dir, `policy-${s.id}.yaml`)
    await writeFile(
      policyFile,
      stringify({
        apiVersion: 'kata-lcm.katacontainers.io/v1alpha1',
        kind: 'Policy',
        release: { name: 'kata-deploy', namespace: s.namespace },
        chart: charts[TARGET]!,
        previousChart: charts[CURRENT]!,
        nodeSelector: `${RUN_LABEL}=${s.id}`,
        deploymentMode: 'daemonset',
        drain: { enabled: true, timeout: '1m30s', force: true, deleteEmptyDirData: true },
        timeouts: { ready: '10m', helm: '1h30m' },
        verification: { namespace: s.namespace, timeout: '2m30s', pod: parse(VERIFICATION_POD) as unknown },
      }),
    )
    await must(kataLcm(['policy', 'set', policyFile, '--policy-namespace', s.namespace], kubeconfig), 'policy set')
    const { saKubeconfig, spec } = await installWorkflowFor(s, ['--policy-namespace', s.namespace])

    // Only the plan: the exit handler runs for deploy-version alone, so the run record stays to be read.
    const planned = await runWorkflow(spec, {
      entrypoint: 'plan',
      workflowName: `kata-lifecycle-manager-${s.id}`,
      kubeconfig: saKubeconfig,
      tmpDir: dir,
      submitted: { 'target-version': TARGET },
    })
    expect(planned.runs.map((r) => `${r.template} -> ${r.code}\n${r.code ? r.stderr : ''}`)).toEqual(['plan -> 0\n'])
    expect(planned.runs[0]!.argv).toEqual(
      expect.arrayContaining([
        `--previous-chart=${charts[CURRENT]!}`,
        '--drain',
        '--drain-timeout=1m30s',
        '--drain-force',
        '--drain-delete-emptydir-data',
        '--ready-timeout=10m',
        '--helm-timeout=1h30m',
        '--verification-timeout=2m30s',
      ]),
    )
    const secret = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: 'kata-lcm-run-kata-deploy', namespace: s.namespace })
    const record = JSON.parse(Buffer.from(secret.data!['run.json']!, 'base64').toString('utf8')) as Record<
      string,
      unknown
    >
    expect(record).toMatchObject({
      chart: charts[TARGET],
      previousChart: charts[CURRENT],
      targetVersion: TARGET,
      waves: [[s.nodes[0]]],
      settings: {
        drain: true,
        drainTimeoutMs: 90_000,
        drainPolicy: { force: true, deleteEmptyDirData: true },
        readyTimeoutMs: 600_000,
        helmTimeout: '5400s',
        verification: { namespace: s.namespace, timeoutMs: 150_000 },
      },
    })
  })
})

describe('the step commands in template order vs kata-lcm upgrade', () => {
  it('leave the cluster in the same state (3 nodes, batch 2, daemonset, a node failing verification in wave 2)', async () => {
    const flags = (s: Scenario) => ({ selector: `${RUN_LABEL}=${s.id}`, batch: '2', mode: 'daemonset' })

    // (a) the workflow's steps, with the ServiceAccount's token
    const a = newScenario('steps', ['1', '2', 'vfail-3'])
    await setupScenario(kc, kubeconfig, a, charts[CURRENT]!)
    cleanups.push(() => teardownScenario(kc, kubeconfig, a))
    // Four steps per wave, each its own process: the handlers decide from the cluster alone.
    const { saKubeconfig, spec } = await installWorkflowFor(a, ['--set', 'onePodPerWave=false'])
    const steps = await runWorkflow(spec, {
      workflowName: `kata-lifecycle-manager-${a.id}`,
      kubeconfig: saKubeconfig,
      tmpDir: dir,
      submitted: {
        'target-version': TARGET,
        chart: charts[TARGET]!,
        'previous-chart': charts[CURRENT]!,
        'node-selector': flags(a).selector,
        'batch-size': flags(a).batch,
        'deployment-mode': flags(a).mode,
      },
    })
    expect(steps.ok).toBe(false)
    expect(summary(steps.runs), steps.runs.map((r) => r.stderr).join('\n')).toEqual([
      'plan plan -> 0',
      'wave-phase 1 prepare -> 0',
      'wave-phase 1 upgrade -> 0',
      'wave-phase 1 verify -> 0',
      'wave-phase 1 rollback -> 0',
      'wave-phase 2 prepare -> 0',
      'wave-phase 2 upgrade -> 0',
      'wave-phase 2 verify -> 0',
      'wave-phase 2 rollback -> 3',
      // failFast: no finalize; the exit handler still runs
      'exit exit -> 0',
    ])
    expect(JSON.parse(steps.runs[0]!.stdout)).toMatchObject({ waves: 2, nodes: 3 })

    // (b) kata-lcm upgrade on a fresh, identical setup
    const b = newScenario('cli', ['1', '2', 'vfail-3'])
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
        flags(b).selector,
        '--batch-size',
        flags(b).batch,
        '--deployment-mode',
        flags(b).mode,
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

    const viaSteps = await clusterState(kc, kubeconfig, a)
    const viaCli = await clusterState(kc, kubeconfig, b)
    expect(viaSteps.nodes.map((n) => n.annotations['katacontainers.io/kata-lifecycle-manager-status'])).toEqual([
      'completed',
      'completed',
      'rolled-back',
    ])
    expect(viaSteps).toEqual(viaCli)
  })
})
