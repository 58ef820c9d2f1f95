/**
 * One e2e "world": a namespace with a kata-deploy-like release on its own kwok nodes, the real CLI
 * to run against it, and readers of what the cluster says afterwards. Each test builds its own and
 * tears it down, so suites can share the one control plane.
 */
import { randomBytes } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1Taint } from '@kubernetes/client-node'
import { afterEach, beforeAll } from 'vitest'
import { AuditLog, WRITE_VERBS } from '../harness/audit.js'
import {
  cacheDir,
  e2eCluster,
  envWithTools,
  loadKubeConfig,
  REPO_ROOT,
  run,
  TESTBED_SCRIPTS,
} from '../harness/cluster.js'
import { startKataDeployStandIn, type StandIn, type StandInOptions } from '../harness/kata-deploy-stand-in.js'
import { createFakeNodes, deleteNodes } from '../harness/nodes.js'
import { waitForList, waitForObject, type KubeObject } from '../harness/wait.js'

export const STATUS = 'katacontainers.io/kata-lifecycle-manager-status'
export const VERSION = 'katacontainers.io/kata-current-version'
export const CLI_USER_AGENT = 'kata-lcm/'

export interface WorldOptions {
  /** Node names (a `vfail-` prefix fails verification there, `jfail-` the install Job). */
  nodes: { name: string; labels?: Record<string, string>; taints?: V1Taint[]; unschedulable?: boolean }[]
  version: string
  mode?: 'daemonset' | 'job'
  /** Outcome label of the verification pod: succeed | fail | pending | creating. */
  verify?: string
  /** Extra `--set` values for the initial install. */
  set?: string[]
  /** Install and upgrade the real kata-deploy chart (../shared) instead of the fixture chart. */
  real?: boolean
  /** How the stand-in for kata-deploy's binaries behaves (harness/kata-deploy-stand-in.ts). */
  standIn?: StandInOptions
  /** A real job-mode world's spare node for the dispatcher (`spareNode`); default true. */
  spare?: boolean
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function chartPath(version: string): string {
  return path.join(cacheDir(), 'charts', `kata-deploy-${version}.tgz`)
}

/** The REAL kata-deploy chart, as packaged from the kata-containers tags beside the project (../shared). */
export function realChartPath(version: string): string {
  return path.resolve(REPO_ROOT, '../shared/reference/kata-deploy-charts', `kata-deploy-${version}.tgz`)
}

export class World {
  readonly id = randomBytes(3).toString('hex')
  readonly namespace = `kd-${this.id}`
  readonly kc: KubeConfig = loadKubeConfig()
  readonly core = this.kc.makeApiClient(CoreV1Api)
  readonly apps = this.kc.makeApiClient(AppsV1Api)
  readonly audit = new AuditLog(e2eCluster().auditLogPath)
  verificationFile = ''
  /** The stand-in for kata-deploy's binary and job dispatcher, running for this world's namespace. */
  standIn?: StandIn
  /** This world's scratch directory (its verification pod and other files). */
  dir = ''

  constructor(readonly options: WorldOptions) {}

  /** The chart file of `version` this world installs and upgrades with: the real one or the fixture. */
  chart(version: string): string {
    return this.options.real ? realChartPath(version) : chartPath(version)
  }

  /** `helm get values -o json`, byte for byte: what the operator set. */
  async rawUserValues(): Promise<string> {
    return this.helm(['get', 'values', 'kata-deploy', '-n', this.namespace, '-o', 'json'])
  }

  /** Node name scoped to this world: `${prefix}-${id}-${suffix}`. */
  static nodeName(prefix: string, id: string, suffix: string | number): string {
    return `${prefix}-${id}-${suffix}`
  }

  get nodeNames(): string[] {
    return this.options.nodes.map((n) => n.name)
  }

  /**
   * The real chart's install dispatcher is a pod the scheduler places: with every node of the world
   * cordoned by a wave it would stay Pending (as on a real cluster with no other schedulable node).
   * A real job-mode world gets one more node, outside the world's label, for it.
   */
  get spareNode(): string | undefined {
    return this.options.real && this.options.mode === 'job' && this.options.spare !== false
      ? World.nodeName('spare', this.id, 0)
      : undefined
  }

  async setup(): Promise<this> {
    if (!existsSync(path.join(REPO_ROOT, 'dist/commands/upgrade.js')))
      throw new Error('the CLI is not built: run npm run build (scripts/test.sh does)')
    this.dir = await mkdtemp(path.join(tmpdir(), `kata-lcm-e2e-${this.id}-`))
    await createFakeNodes(this.kc, [
      ...this.options.nodes.map((n) => ({ ...n, labels: { ...n.labels, 'kata-lcm.test/world': this.id } })),
      ...(this.spareNode ? [{ name: this.spareNode }] : []),
    ])
    this.standIn = startKataDeployStandIn(this.namespace, this.options.standIn)
    const set = [...(this.options.mode === 'job' ? ['deploymentMode=job'] : []), ...(this.options.set ?? [])]
    await this.helm([
      'install',
      'kata-deploy',
      this.chart(this.options.version),
      '-n',
      this.namespace,
      '--create-namespace',
      '--set-string',
      `nodeSelector.kata-lcm\\.test/world=${this.id}`,
      ...set.flatMap((s) => ['--set', s]),
    ])
    if ((this.options.mode ?? 'daemonset') === 'daemonset') await this.waitKataDeployReady()
    this.verificationFile = await this.writeVerificationPod(this.options.verify ?? 'succeed')
    return this
  }

  async writeVerificationPod(outcome: string, extra = ''): Promise<string> {
    const file = path.join(this.dir, `verify-${outcome}.yaml`)
    await writeFile(
      file,
      `apiVersion: v1
kind: Pod
metadata:
  name: \${TEST_POD}
  labels:
    kata-lcm.test/verify: ${outcome}
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
${extra}`,
    )
    return file
  }

  async teardown(): Promise<void> {
    await this.helm(['uninstall', 'kata-deploy', '-n', this.namespace, '--no-hooks']).catch(() => undefined)
    // The real chart keeps its cluster-scoped RBAC on uninstall (helm.sh/resource-policy: keep): remove this world's.
    if (this.options.real) await this.deleteKeptClusterObjects().catch(() => undefined)
    this.standIn?.stop()
    await this.core.deleteNamespace({ name: this.namespace }).catch(() => undefined)
    await deleteNodes(this.kc, [...this.nodeNames, ...(this.spareNode ? [this.spareNode] : [])]).catch(() => undefined)
    if (this.dir) await rm(this.dir, { recursive: true, force: true })
  }

  private async deleteKeptClusterObjects(): Promise<void> {
    const rbac = this.kc.makeApiClient(RbacAuthorizationV1Api)
    const ours = (o: { metadata?: { annotations?: Record<string, string> } }) =>
      o.metadata?.annotations?.['meta.helm.sh/release-namespace'] === this.namespace
    for (const role of (await rbac.listClusterRole()).items.filter(ours))
      await rbac.deleteClusterRole({ name: role.metadata!.name! })
    for (const binding of (await rbac.listClusterRoleBinding()).items.filter(ours))
      await rbac.deleteClusterRoleBinding({ name: binding.metadata!.name! })
  }

  async helm(args: string[]): Promise<string> {
    const result = await run('helm', [...args, '--kubeconfig', e2eCluster().kubeconfigPath], { env: envWithTools() })
    if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${result.code}): ${result.stderr}`)
    return result.stdout
  }

  /** Runs the built CLI (`node bin/run.js`) against this world's release. */
  async cli(
    args: string[],
    env: Record<string, string> = {},
    kubeconfig = e2eCluster().kubeconfigPath,
    options: { bare?: boolean } = {},
  ): Promise<CliResult> {
    // bare: the command line exactly as given (plus the kubeconfig), no --helm-namespace of the world's.
    const scope = options.bare ? [] : ['--helm-namespace', this.namespace]
    const result = await run(
      process.execPath,
      [path.join(REPO_ROOT, 'bin/run.js'), ...args, '--kubeconfig', kubeconfig, ...scope],
      {
        env: envWithTools({ CI: 'true', NO_COLOR: '1', ...env }),
      },
    )
    return { code: result.code, stdout: result.stdout, stderr: result.stderr }
  }

  /** Starts the CLI without waiting: the child, and its result once it exits. */
  spawnCli(
    args: string[],
    kubeconfig = e2eCluster().kubeconfigPath,
    options: { group?: boolean } = {},
  ): { child: ChildProcess; done: Promise<CliResult> } {
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'bin/run.js'), ...args, '--kubeconfig', kubeconfig, '--helm-namespace', this.namespace],
      {
        cwd: REPO_ROOT,
        // group: its own process group, so `process.kill(-child.pid)` takes its helm with it (a lost pod).
        detached: options.group === true,
        env: envWithTools({ CI: 'true', NO_COLOR: '1' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const done = new Promise<CliResult>((resolve) =>
      child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr })),
    )
    return { child, done }
  }

  /** The upgrade arguments `upgrade()` would run, for spawnCli. */
  upgradeArgs(target: string, extra: string[] = []): string[] {
    const defaults: Record<string, string> = {
      '--chart': this.chart(target),
      '--previous-chart': this.chart(this.options.version),
      '--verification-pod': this.verificationFile,
      '--verification-namespace': this.namespace,
      '--verification-timeout': '30s',
      '--ready-timeout': '60s',
      '--node-selector': `kata-lcm.test/world=${this.id}`,
    }
    const given = new Set(extra.filter((a) => a.startsWith('--')))
    return [
      'upgrade',
      '--target-version',
      target,
      ...Object.entries(defaults)
        .filter(([flag]) => !given.has(flag))
        .flat(),
      ...extra,
    ]
  }

  /** Waits (watch) until the node's lifecycle status annotation is `status`. */
  async waitNodeStatus(name: string, status: string, timeoutMs = 60_000): Promise<void> {
    type Annotated = KubeObject & { metadata?: { annotations?: Record<string, string> } }
    await waitForObject<Annotated>(
      this.kc,
      '/api/v1/nodes',
      name,
      (n) => n.metadata?.annotations?.[STATUS] === status,
      timeoutMs,
      `${name} to be ${status}`,
    )
  }

  /**
   * `kata-lcm upgrade` with this world's verification pod, chart files and nodes (a default
   * --node-selector on the world's label); flags in `extra` replace the defaults.
   */
  upgrade(target: string, extra: string[] = []): Promise<CliResult> {
    return this.cli(this.upgradeArgs(target, extra))
  }

  async node(
    name: string,
  ): Promise<{ status?: string; version?: string; unschedulable: boolean; annotations: Record<string, string> }> {
    const node = await this.core.readNode({ name })
    const annotations = node.metadata?.annotations ?? {}
    return {
      status: annotations[STATUS],
      version: annotations[VERSION],
      unschedulable: node.spec?.unschedulable === true,
      annotations,
    }
  }

  async release(): Promise<{ chartVersion: string; revision: number; status: string }> {
    // The states named: helm 3 lists no pending release by default, and helm 4 has no --all.
    const states = ['--deployed', '--failed', '--pending']
    const list = JSON.parse(await this.helm(['list', ...states, '-n', this.namespace, '-o', 'json'])) as {
      chart: string
      revision: string
      status: string
    }[]
    const rel = list[0]!
    return { chartVersion: rel.chart.replace(/^kata-deploy-/, ''), revision: Number(rel.revision), status: rel.status }
  }

  async userValues(): Promise<Record<string, unknown>> {
    return (JSON.parse(await this.helm(['get', 'values', 'kata-deploy', '-n', this.namespace, '-o', 'json'])) ??
      {}) as Record<string, unknown>
  }

  /** Node -> image of its live kata-deploy pod and whether it carries the DaemonSet's current revision. */
  async kataDeployPods(): Promise<Record<string, { image: string; current: boolean; ready: boolean }>> {
    const ds = await this.apps.readNamespacedDaemonSet({ namespace: this.namespace, name: 'kata-deploy' })
    const revisions = await this.apps.listNamespacedControllerRevision({ namespace: this.namespace })
    const latest = revisions.items
      .filter((r) => r.metadata?.ownerReferences?.some((o) => o.uid === ds.metadata?.uid))
      .sort((a, b) => Number(b.revision) - Number(a.revision))[0]
    const hash = latest?.metadata?.labels?.['controller-revision-hash']
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: 'name=kata-deploy' })
    const out: Record<string, { image: string; current: boolean; ready: boolean }> = {}
    for (const p of pods.items) {
      if (p.metadata?.deletionTimestamp || !p.spec?.nodeName) continue
      out[p.spec.nodeName] = {
        image: p.spec.containers[0]?.image ?? '',
        current: p.metadata?.labels?.['controller-revision-hash'] === hash,
        ready: (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      }
    }
    return out
  }

  /** Writes the CLI sent since `since` (by the kata-lcm user agent, or helm's); SelfSubjectAccessReviews are questions, not writes. */
  async writesSince(since: Date): Promise<string[]> {
    const events = await this.audit.events()
    return (
      events
        .filter(
          (e) =>
            e.stage === 'ResponseComplete' &&
            WRITE_VERBS.includes(e.verb) &&
            new Date(e.requestReceivedTimestamp) >= since,
        )
        // An access review is a question (created, answered, never stored), not a write; nor is a dry run.
        .filter((e) => !(e.objectRef?.resource ?? '').endsWith('accessreviews'))
        .filter((e) => !/[?&]dryRun=All/.test(e.requestURI ?? ''))
        .filter(
          (e) =>
            (e.userAgent ?? '').startsWith(CLI_USER_AGENT) ||
            (e.userAgent ?? '').startsWith('Helm/') ||
            (e.userAgent ?? '').startsWith('helm/'),
        )
        .map((e) => `${e.verb} ${e.objectRef?.resource ?? '?'}/${e.objectRef?.name ?? ''} (${e.userAgent})`)
    )
  }

  /** How many kata-deploy pods kata-lcm deleted (restarted) in this world since `since`, from the audit log. */
  async kataDeployPodDeletesSince(since: Date): Promise<number> {
    const events = await this.audit.events()
    return events.filter(
      (e) =>
        e.stage === 'ResponseComplete' &&
        e.verb === 'delete' &&
        e.objectRef?.resource === 'pods' &&
        e.objectRef?.namespace === this.namespace &&
        (e.objectRef?.name ?? '').startsWith('kata-deploy-') &&
        (e.userAgent ?? '').startsWith(CLI_USER_AGENT) &&
        new Date(e.requestReceivedTimestamp) >= since,
    ).length
  }

  /** The kata-deploy DaemonSet's name (and its pods' `name` label): `kata-deploy[-<env.multiInstallSuffix>]`. */
  get kataDeployName(): string {
    const suffix = this.options.set?.find((s) => s.startsWith('env.multiInstallSuffix='))?.split('=')[1]
    return suffix ? `kata-deploy-${suffix}` : 'kata-deploy'
  }

  async waitKataDeployReady(): Promise<void> {
    const names = new Set(this.nodeNames)
    await waitForList<
      KubeObject & { spec?: { nodeName?: string }; status?: { conditions?: { type: string; status: string }[] } }
    >(
      this.kc,
      `/api/v1/namespaces/${this.namespace}/pods`,
      (pods) =>
        [...names].every((n) =>
          pods.some(
            (p) =>
              p.spec?.nodeName === n &&
              (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
          ),
        ),
      90_000,
      { labelSelector: `name=${this.kataDeployName}` },
    )
  }
}

/** Packages the fixture charts (idempotent, about a second when nothing changed). */
export async function packageFixtureCharts(): Promise<void> {
  const packaged = await run('bash', [`${TESTBED_SCRIPTS}/package-fixture-charts.sh`])
  if (packaged.code !== 0) throw new Error(packaged.stderr)
}

/**
 * Registers a suite's hooks (fixture charts packaged once, each test's world torn down after it,
 * even when the test failed) and returns the function a test opens its world with.
 */
export function useWorlds(): (options: WorldOptions) => Promise<World> {
  let current: World | undefined
  beforeAll(packageFixtureCharts)
  afterEach(async () => {
    await current?.teardown()
    current = undefined
  })
  return async (options) => {
    current = new World(options)
    return current.setup()
  }
}
