// The test bed's real kubelet node and a real Argo workflow-controller, for the test files that
// need containers to really run (test/e2e/argo/workflow-controller*.e2e.test.ts).
//
// Started by the project's scripts (scripts/testbed/real-node.sh, argo-controller.sh,
// scripts/image/build-local.sh) from the test file's beforeAll and stopped in its afterAll, not
// from global-setup: the kata-deploy fixture chart tolerates every taint, so a real node joined
// for the whole run would get a DaemonSet pod of every other test's release (with an image that
// cannot be pulled here) and hold up their `helm --wait`. Test files run one at a time, so the
// node is there only while the files that want it run. CI gets it the same way: `bash .ci/run`
// -> scripts/test.sh -> vitest -> these files -> the scripts (which install the Debian packages
// on a fresh machine, scripts/testbed/host-packages.sh).
import path from 'node:path'

import { REPO_ROOT, TESTBED_SCRIPTS, run } from './cluster.js'

export interface RealNode {
  /** The Node's name (label kata-lcm.test/real-node=true, taint kata-lcm.test/real-node=true:NoSchedule). */
  name: string
  cluster: string
  /** Its containerd's and kubelet's logs (containerd.log: each container's start, nanoseconds). */
  logs: string
}

/** The taint every pod meant for the real node must tolerate. */
export const REAL_NODE_TAINT = { key: 'kata-lcm.test/real-node', operator: 'Exists', effect: 'NoSchedule' } as const

async function script(file: string, args: string[]): Promise<string> {
  const r = await run('bash', [file, ...args], { stream: true })
  if (r.code !== 0) throw new Error(`${path.basename(file)} ${args.join(' ')} failed (exit ${r.code})`)
  return r.stdout
}

function keyValue(out: string, key: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`${key}=`))
  if (!line) throw new Error(`no ${key}= in:\n${out}`)
  return line.slice(key.length + 1)
}

export async function startRealNode(cluster: string): Promise<RealNode> {
  if (!cluster) throw new Error('the real node needs the name of the test cluster (KATA_LCM_E2E_CLUSTER)')
  const out = await script(path.join(TESTBED_SCRIPTS, 'real-node.sh'), ['up', cluster])
  return { name: keyValue(out, 'NODE'), cluster, logs: keyValue(out, 'LOGS') }
}

export async function stopRealNode(node: RealNode): Promise<void> {
  await script(path.join(TESTBED_SCRIPTS, 'real-node.sh'), ['down', node.cluster])
}

/** Builds (cached by content) and imports a local image; returns its reference (imagePullPolicy: Never). */
export async function loadImage(node: RealNode, what: string[]): Promise<string> {
  const out = (await script(path.join(REPO_ROOT, 'scripts/image/build-local.sh'), what)).trim()
  const [ref, tar] = out.split(' ')
  if (!ref || !tar) throw new Error(`build-local.sh ${what.join(' ')} printed '${out}'`)
  await script(path.join(TESTBED_SCRIPTS, 'real-node.sh'), ['import', node.cluster, ref, tar])
  return ref
}

export interface ArgoController {
  cluster: string
  namespace: string
  logPath: string
  /** The controller's /metrics (plain HTTP): Argo's own metrics and the template's custom ones. */
  metricsUrl: string
}

/** Argo's CRDs (the module's manifests), NAMESPACE, and workflow-controller watching the cluster. */
export async function startArgoController(node: RealNode, namespace: string): Promise<ArgoController> {
  const out = await script(path.join(TESTBED_SCRIPTS, 'argo-controller.sh'), ['start', node.cluster, namespace])
  return {
    cluster: node.cluster,
    namespace,
    logPath: keyValue(out, 'CONTROLLER_LOG'),
    metricsUrl: keyValue(out, 'METRICS_URL'),
  }
}

export async function stopArgoController(c: ArgoController): Promise<void> {
  await script(path.join(TESTBED_SCRIPTS, 'argo-controller.sh'), ['stop', c.cluster])
}
