import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { e2eCluster, envWithTools, run } from '../harness/cluster.js'
import { chartPath, packageFixtureCharts, World } from '../lifecycle/world.js'

/**
 * The bad-input corpus: every case is refused with ONE line naming the flag or field, a documented
 * exit code, and not a single write to the cluster (checked in the audit log over the whole corpus).
 */
let w: World
let dir: string
let since: Date
const file = async (name: string, text: string) => {
  const p = path.join(dir, name)
  await writeFile(p, text)
  return p
}
const POD = (spec: string, meta = 'name: ${TEST_POD}') =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  ${meta}\nspec:\n${spec}`
const GOOD_SPEC =
  '  restartPolicy: Never\n  nodeSelector: {kubernetes.io/hostname: ${NODE}}\n  tolerations: [{operator: Exists}]\n  containers: [{name: v, image: busybox}]\n'

beforeAll(async () => {
  await packageFixtureCharts()
  w = new World({
    nodes: [
      { name: World.nodeName('n', 'bad', 1) },
      { name: World.nodeName('n', 'bad', 2), taints: [{ key: 'dedicated', value: 'kata', effect: 'NoSchedule' }] },
    ],
    version: '3.28.0',
  })
  await w.setup()
  dir = path.dirname(w.verificationFile)
  since = new Date()
})
afterAll(async () => {
  try {
    // Zero writes by kata-lcm or helm while the whole corpus ran.
    if (since) expect(await w.writesSince(since)).toEqual([])
  } finally {
    await w.teardown()
  }
})

type Case = [
  name: string,
  args: () => Promise<string[]>,
  code: number,
  message: RegExp,
  options?: { env?: Record<string, string>; kubeconfig?: () => Promise<string> },
]

// upgradeArgs() supplies the target's chart, the world's version as --previous-chart, and the world's nodes.
const up =
  (extra: string[] = [], target = '3.33.0') =>
  async () =>
    w.upgradeArgs(target, extra)
const pod = (name: string, text: string) => async () =>
  w.upgradeArgs('3.33.0', ['--verification-pod', await file(name, text)])

const cases: Case[] = [
  [
    'a Deployment instead of a Pod',
    pod('deploy.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {x: ${NODE}}\n'),
    2,
    /--verification-pod kind: .*give a v1 Pod/,
  ],
  [
    'two YAML documents',
    pod('two.yaml', `${POD(GOOD_SPEC)}---\n${POD(GOOD_SPEC)}`),
    2,
    /--verification-pod: .* holds 2 YAML documents; give exactly one Pod/,
  ],
  [
    'no ${NODE}',
    pod('nonode.yaml', POD(GOOD_SPEC.replace('${NODE}', 'worker-1'))),
    2,
    /--verification-pod: .*never uses \$\{NODE\}/,
  ],
  [
    'no toleration for the cordoned node',
    pod('notol.yaml', POD(GOOD_SPEC.replace('  tolerations: [{operator: Exists}]\n', ''))),
    2,
    /--verification-pod: spec.tolerations: .*node.kubernetes.io\/unschedulable/,
  ],
  [
    'a node taint the pod does not tolerate',
    pod(
      'taint.yaml',
      POD(GOOD_SPEC.replace('[{operator: Exists}]', '[{key: node.kubernetes.io/unschedulable, operator: Exists}]')),
    ),
    2,
    /spec.tolerations: .*dedicated=kata:NoSchedule/,
  ],
  [
    'restartPolicy Always',
    pod('always.yaml', POD(GOOD_SPEC.replace('Never', 'Always'))),
    2,
    /spec.restartPolicy: .*use Never/,
  ],
  [
    'no containers',
    pod('empty.yaml', POD(GOOD_SPEC.replace('  containers: [{name: v, image: busybox}]\n', ''))),
    2,
    /spec.containers: .*no containers/,
  ],
  [
    'not YAML',
    pod('garbage.yaml', '${NODE}: [unclosed\n  - : :\n'),
    2,
    /--verification-pod: .*not valid YAML|--verification-pod/,
  ],
  [
    'a missing verification file',
    up(['--verification-pod', '/nonexistent/verify.yaml']),
    2,
    /--verification-pod: cannot read \/nonexistent\/verify.yaml/,
  ],
  ['a version that is not semver', up([], '3.28'), 2, /--target-version: "3.28" is not a semantic version/],
  ['a leading v', up([], 'v3.33.0'), 2, /--target-version: "v3.33.0" is not a semantic version/],
  [
    'a downgrade without consent',
    up([], '3.27.0'),
    2,
    /--target-version: 3.27.0 is older than the release's 3.28.0; pass --allow-downgrade/,
  ],
  ['below the daemonset minimum', up(['--allow-downgrade'], '3.26.0'), 2, /--target-version: 3.26.0 is below 3.27.0/],
  [
    'a taint value without a key',
    up(['--node-taint-value', 'pending']),
    2,
    /--node-taint-value: needs --node-taint-key/,
  ],
  [
    'an invalid taint key',
    up(['--node-taint-key', 'not a key']),
    2,
    /--node-taint-key: "not a key" is not a valid taint key/,
  ],
  [
    'an invalid label selector',
    up(['--node-selector', 'a=b=c']),
    2,
    /--node-selector: "a=b=c" is not a valid label requirement/,
  ],
  [
    'no node matches',
    up(['--node-selector', 'no-such-label=here']),
    2,
    /no node matches label selector "no-such-label=here"/,
  ],
  [
    'batch size 0',
    up(['--batch-size', '0']),
    2,
    /--batch-size: "0" is not a batch size; use a whole number of nodes \(2\) or a percentage of the selected nodes \(25%\)/,
  ],
  ['batch size 150%', up(['--batch-size', '150%']), 2, /--batch-size: "150%" is not a batch size/],
  ['canary 0', up(['--canary', '0']), 2, /--canary: "0" is not a canary size; use a whole number of nodes >= 1/],
  ['soak not a duration', up(['--soak', 'soon']), 2, /--soak: "soon" is not a duration/],
  ['max-unavailable 0', up(['--max-unavailable', '0']), 2, /--max-unavailable: "0" is not a node count/],
  [
    'a pool with a bad node selector',
    async () =>
      w.upgradeArgs('3.33.0', [
        '--pools',
        await file('pools-sel.yaml', '- name: gpu\n  nodeSelector: "pool in gpu"\n'),
      ]),
    2,
    /--pools .*pools-sel.yaml: pools\[0\].nodeSelector: "pool in gpu" is not a valid label requirement/,
  ],
  [
    'a pool with an unknown field',
    async () => w.upgradeArgs('3.33.0', ['--pools', await file('pools-field.yaml', '- name: gpu\n  size: 2\n')]),
    2,
    /--pools .*pools-field.yaml: pools\[0\].size: unknown field; known: name, nodeSelector/,
  ],
  [
    'selected nodes that no pool selects',
    async () =>
      w.upgradeArgs('3.33.0', ['--pools', await file('pools-none.yaml', '- name: gpu\n  nodeSelector: pool=gpu\n')]),
    2,
    /selected but in no pool \(gpu\); add a pool without a nodeSelector last/,
  ],
  [
    'an unknown mode',
    up(['--deployment-mode', 'sideways']),
    2,
    /--deployment-mode: "sideways" is not a mode; use auto, daemonset or job/,
  ],
  [
    'a mode mismatch',
    up(['--deployment-mode', 'job']),
    2,
    /--deployment-mode: the release is in daemonset mode, not job/,
  ],
  ['a bad duration', up(['--verification-timeout', 'soon']), 2, /--verification-timeout: "soon" is not a duration/],
  ['a zero duration', up(['--drain-timeout', '0s']), 2, /--drain-timeout: "0s" must be longer than zero/],
  [
    'a chart of another version',
    up(['--chart', chartPath('3.28.0')]),
    2,
    /--chart: .* is kata-deploy 3.28.0, not 3.33.0/,
  ],
  [
    'a missing chart file',
    up(['--chart', '/nonexistent/kata-deploy-3.33.0.tgz']),
    2,
    /--chart: cannot read chart \/nonexistent\/kata-deploy-3.33.0.tgz/,
  ],
  ['a missing release', up(['--helm-release', 'nope']), 2, /--helm-release: no release "nope" in namespace/],
  [
    'a missing --target-version',
    async () => ['upgrade', '--verification-pod', w.verificationFile],
    2,
    /Missing required flag target-version/,
  ],
  ['an unknown flag', up(['--frobnicate']), 2, /Nonexistent flag: --frobnicate/],
  [
    'a missing kubeconfig file',
    up(),
    2,
    /--kubeconfig: cannot load \/nonexistent\/kubeconfig/,
    { kubeconfig: async () => '/nonexistent/kubeconfig' },
  ],
  ['an unknown context', up(['--context', 'nowhere']), 2, /--context: .*nowhere/],
  [
    'an unreachable API server',
    up(),
    7,
    /is the API server reachable|ECONNREFUSED/,
    { kubeconfig: async () => unreachableKubeconfig() },
  ],
  ['helm missing', up(), 7, /helm/, { env: { HELM_BIN: '/nonexistent/helm' } }],
  [
    'forbidden by RBAC',
    // --no-policy: this identity may not read the policy either, which would be refused first (below).
    up(['--no-policy']),
    2,
    /this identity may not list nodes \(cluster-wide\), get nodes \(cluster-wide\), patch nodes/,
    { kubeconfig: async () => forbiddenKubeconfig() },
  ],
  [
    'forbidden to read the fleet policy',
    up(),
    2,
    /cannot read the fleet policy, ConfigMap kube-system\/kata-lcm-policy: get configmap kube-system\/kata-lcm-policy failed: HTTP 403/,
    { kubeconfig: async () => forbiddenKubeconfig() },
  ],
  [
    'policy show on an unreachable API server',
    async () => ['policy', 'show'],
    7,
    /cannot read the fleet policy, ConfigMap kube-system\/kata-lcm-policy: .*ECONNREFUSED/,
    { kubeconfig: async () => unreachableKubeconfig() },
  ],
  [
    'rollback of a node that does not exist',
    async () => ['rollback', 'no-such-node', '--chart', chartPath('3.27.0')],
    2,
    /NODE: no node named "no-such-node"/,
  ],
  [
    'a rollback forbidden by RBAC',
    // The rights an upgrade's planner checks, checked by rollback's the same way, before the node is read.
    async () => ['rollback', w.nodeNames[0]!, '--chart', chartPath('3.27.0'), '--no-policy'],
    2,
    /this identity may not list nodes \(cluster-wide\), get nodes \(cluster-wide\), patch nodes/,
    { kubeconfig: async () => forbiddenKubeconfig() },
  ],
  // Bounds: a wish for patience is refused, never turned into an instant timeout.
  [
    'a verification timeout of 999999h',
    up(['--verification-timeout', '999999h']),
    2,
    /--verification-timeout: "999999h" is longer than the 24h kata-lcm allows/,
  ],
  [
    'a ready timeout of 1000000000s',
    up(['--ready-timeout', '1000000000s']),
    2,
    /--ready-timeout: "1000000000s" is longer than the 24h/,
  ],
  [
    'a drain timeout of 48h',
    up(['--drain', '--drain-timeout', '48h']),
    2,
    /--drain-timeout: "48h" is longer than the 24h/,
  ],
  ['a helm timeout of 25h', up(['--helm-timeout', '25h']), 2, /--helm-timeout: "25h" is longer than the 24h/],
  [
    'a helm timeout that is no duration',
    up(['--helm-timeout', 'forever']),
    2,
    /--helm-timeout: "forever" is not a duration/,
  ],
  [
    'a rollback with a verification timeout past the bound',
    async () => [
      'rollback',
      w.nodeNames[0]!,
      '--chart',
      chartPath('3.27.0'),
      '--verification-pod',
      w.verificationFile,
      '--verification-timeout',
      '25h',
    ],
    2,
    /--verification-timeout: "25h" is longer than the 24h/,
  ],
  // Everything the run will need, checked before the first write.
  [
    'a verification namespace that does not exist',
    up(['--verification-namespace', 'no-such-ns']),
    2,
    /--verification-namespace: namespace "no-such-ns" does not exist/,
  ],
  [
    'a verification namespace that is no name',
    up(['--verification-namespace', 'Bad_NS']),
    2,
    /--verification-namespace: "Bad_NS" is not a namespace name/,
  ],
  [
    'an invalid release name',
    up(['--helm-release', 'Bad_Name!']),
    2,
    /--helm-release: "Bad_Name!" is not a helm release name/,
  ],
  [
    'a release name over 53 characters',
    up(['--helm-release', 'k'.repeat(54)]),
    2,
    /--helm-release: "k{54}" is not a helm release name/,
  ],
  [
    'a label value over 63 characters',
    up(['--node-selector', `pool=${'x'.repeat(64)}`]),
    2,
    /--node-selector: "x{64}" is 64 characters; label values and label names are at most 63/,
  ],
  [
    'status with an invalid release name',
    async () => ['status', '--helm-release', 'kata_deploy'],
    2,
    /--helm-release: "kata_deploy" is not a helm release name/,
  ],
  [
    'input errors before the kubeconfig',
    async () => ['upgrade', '--target-version', 'banana', '--verification-pod', w.verificationFile],
    2,
    /--target-version: "banana" is not a semantic version/,
    { kubeconfig: async () => '/nonexistent/kubeconfig' },
  ],
  ['HELM_BIN set but empty', up(), 7, /HELM_BIN is set but empty/, { env: { HELM_BIN: '' } }],
  // install-workflow
  [
    'install-workflow into an invalid namespace, even as a dry run',
    async () => ['install-workflow', '--verification-pod', w.verificationFile, '--namespace', 'Bad_NS', '--dry-run'],
    2,
    /--namespace: "Bad_NS" is not a namespace name/,
  ],
  [
    'install-workflow with an invalid release name',
    async () => [
      'install-workflow',
      '--verification-pod',
      w.verificationFile,
      '--release-name',
      'Bad_Name!',
      '--dry-run',
    ],
    2,
    /--release-name: "Bad_Name!" is not a helm release name/,
  ],
  [
    'install-workflow --set a value the chart schema refuses',
    async () => [
      'install-workflow',
      '--verification-pod',
      w.verificationFile,
      '--set',
      'nodeSelector.x=true',
      '--dry-run',
    ],
    2,
    /--set: the chart's schema refuses the values/,
  ],
  [
    'install-workflow --set without a value',
    async () => ['install-workflow', '--verification-pod', w.verificationFile, '--set', 'image.tag', '--dry-run'],
    2,
    /--set: "image.tag" is not key=value/,
  ],
]

/** A port nothing listens on (fetch refuses to even try port 1: "bad port"). */
async function closedPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
  return port
}

async function unreachableKubeconfig(): Promise<string> {
  return file(
    'unreachable.kubeconfig',
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${await closedPort()}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
  )
}

/** A ServiceAccount with no rights at all, as a token kubeconfig. */
async function forbiddenKubeconfig(): Promise<string> {
  const kubectl = (args: string[]) =>
    run('kubectl', [...args, '--kubeconfig', e2eCluster().kubeconfigPath], { env: envWithTools() })
  await kubectl(['create', 'serviceaccount', 'nobody', '-n', w.namespace])
  const token = (await kubectl(['create', 'token', 'nobody', '-n', w.namespace])).stdout.trim()
  const server = (
    await kubectl(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}'])
  ).stdout.trim()
  return file(
    'forbidden.kubeconfig',
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: "${token}"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
  )
}

describe('bad input: one line, a documented exit code, zero writes', () => {
  it('the corpus has at least 45 cases', () => expect(cases.length).toBeGreaterThanOrEqual(45))

  it.each(cases)('%s', async (_name, args, code, message, options) => {
    const kubeconfig = options?.kubeconfig ? await options.kubeconfig() : undefined
    const result = await w.cli(await args(), options?.env ?? {}, kubeconfig)
    expect(result.code, result.stderr).toBe(code)
    const first = result.stderr.split('\n').find((l) => l.startsWith('Error:') || l.includes('Error:'))
    expect(first, result.stderr).toMatch(message)
  })
})
