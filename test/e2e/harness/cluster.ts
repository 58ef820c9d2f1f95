// The e2e test cluster: a kwok cluster made by scripts/testbed/cluster.sh from
// binaries built by scripts/testbed/build-tools.sh (see test/e2e/testbed/README.md).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { homedir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { KubeConfig } from '@kubernetes/client-node'
import { withUserAgent } from '../../../src/adapters/kube-config.js'

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
export const TESTBED_SCRIPTS = path.join(REPO_ROOT, 'scripts/testbed')

/** Env vars through which global-setup hands the cluster to the tests (and to child processes). */
export const ENV_KUBECONFIG = 'KATA_LCM_E2E_KUBECONFIG'
export const ENV_AUDIT_LOG = 'KATA_LCM_E2E_AUDIT_LOG'
export const ENV_CLUSTER_NAME = 'KATA_LCM_E2E_CLUSTER'

/** User agent of the harness' own API clients, so the audit log tells test writes apart. */
export const HARNESS_USER_AGENT = 'kata-lcm-e2e-harness'

export function cacheDir(): string {
  return process.env['KATA_LCM_CACHE'] ?? path.join(homedir(), '.cache/kata-lcm')
}

/** Where build-tools.sh links kubectl, helm, argo, kwokctl, ... */
export function toolsBinDir(): string {
  return path.join(cacheDir(), 'bin')
}

/**
 * The helm lane (`scripts/test.sh --matrix`): KATA_LCM_HELM_LANE=helm3 puts build-tools.sh's helm 3
 * (lanes/helm3/) before the default helm 4 wherever a test or the CLI under test runs helm.
 */
function helmLaneDir(): string | undefined {
  const lane = process.env['KATA_LCM_HELM_LANE']
  if (!lane) return undefined
  if (lane !== 'helm3') throw new Error(`KATA_LCM_HELM_LANE=${lane}: the only lane is helm3`)
  return path.join(cacheDir(), 'lanes', lane)
}

/** The helm binary the tests run (the lane's, else the test bed's helm 4). */
export function helmBin(): string {
  return path.join(helmLaneDir() ?? toolsBinDir(), 'helm')
}

/** process.env with the testbed tools (and the helm lane's helm) first on PATH (for spawning the CLI under test). */
export function envWithTools(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const first = [helmLaneDir(), toolsBinDir()].filter((d): d is string => d !== undefined)
  const parts = (process.env['PATH'] ?? '').split(path.delimiter).filter((p) => !first.includes(p))
  return { ...process.env, PATH: [...first, ...parts].join(path.delimiter), ...extra }
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Run a command; stderr is streamed through (prefixed) when `stream` is set. */
export function run(
  cmd: string,
  args: string[],
  opts: { stream?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: REPO_ROOT,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      if (opts.stream) process.stderr.write(d)
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
  })
}

/** Build (or reuse, it is idempotent) the testbed tools. */
export async function buildTools(): Promise<void> {
  const r = await run('bash', [path.join(TESTBED_SCRIPTS, 'build-tools.sh')], { stream: true })
  if (r.code !== 0) throw new Error(`build-tools.sh failed (exit ${r.code})`)
}

export interface TestCluster {
  name: string
  kubeconfigPath: string
  auditLogPath: string
  /** kwokctl's dir of this cluster (logs/ holds the component logs). */
  workdir: string
  stop(): Promise<void>
}

function parseKeyValues(out: string): Record<string, string> {
  const kv: Record<string, string> = {}
  for (const line of out.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m?.[1] !== undefined && m[2] !== undefined) kv[m[1]] = m[2]
  }
  return kv
}

export async function deleteCluster(name: string): Promise<void> {
  const r = await run('bash', [path.join(TESTBED_SCRIPTS, 'cluster.sh'), 'delete', name], { stream: true })
  if (r.code !== 0) throw new Error(`cluster.sh delete ${name} failed (exit ${r.code})`)
}

/** Create a fresh kwok cluster (tools must be built). */
export async function startCluster(name = `kata-lcm-e2e-${randomBytes(3).toString('hex')}`): Promise<TestCluster> {
  const r = await run('bash', [path.join(TESTBED_SCRIPTS, 'cluster.sh'), 'create', name], { stream: true })
  if (r.code !== 0) throw new Error(`cluster.sh create ${name} failed (exit ${r.code})`)
  const kv = parseKeyValues(r.stdout)
  const kubeconfigPath = kv['KUBECONFIG']
  const auditLogPath = kv['AUDIT_LOG']
  const workdir = kv['WORKDIR']
  if (!kubeconfigPath || !auditLogPath || !workdir) {
    await deleteCluster(name).catch(() => undefined)
    throw new Error(`cluster.sh create printed no KUBECONFIG/AUDIT_LOG/WORKDIR:\n${r.stdout}`)
  }
  let stopped = false
  return {
    name,
    kubeconfigPath,
    auditLogPath,
    workdir,
    async stop() {
      if (stopped) return
      stopped = true
      await deleteCluster(name)
    },
  }
}

/**
 * The cluster of this e2e run, as handed over by global-setup (env vars; also
 * available through vitest's inject('kataLcmE2e')).
 */
export function e2eCluster(): { kubeconfigPath: string; auditLogPath: string; name: string } {
  const kubeconfigPath = process.env[ENV_KUBECONFIG]
  const auditLogPath = process.env[ENV_AUDIT_LOG]
  if (!kubeconfigPath || !auditLogPath) {
    throw new Error(
      `${ENV_KUBECONFIG}/${ENV_AUDIT_LOG} are not set: run the e2e tests through vitest --project e2e (global-setup)`,
    )
  }
  return { kubeconfigPath, auditLogPath, name: process.env[ENV_CLUSTER_NAME] ?? '' }
}

/**
 * A KubeConfig whose API clients (makeApiClient, Watch) send `userAgent`, so the
 * audit log can tell these requests apart from the CLI's.
 */
export function loadKubeConfig(
  kubeconfigPath = e2eCluster().kubeconfigPath,
  userAgent = HARNESS_USER_AGENT,
): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromFile(kubeconfigPath)
  return withUserAgent(kc, userAgent)
}
