/**
 * The fleet policy on the test cluster: once `kata-lcm policy set` stored it, the three commands work
 * exactly as the mission writes them; a flag beats the policy; a bad policy is refused naming its
 * field, writing nothing; a missing verification pod names every place looked at; `kata-lcm init`
 * builds its pods from the cluster's Kata RuntimeClasses; a policy ConfigMap that cannot be read (403,
 * 500, unreachable) refuses the command instead of being taken for none, and every run names the
 * policy in effect first.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CoreV1Api, CustomObjectsApi, NodeV1Api } from '@kubernetes/client-node'
import { parse, stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { applyArgoCrds, deleteArgoCrds, helm } from '../argo/argo-harness.js'
import { e2eCluster, envWithTools, loadKubeConfig, run } from '../harness/cluster.js'
import { startFaultProxy } from '../harness/fault-proxy.js'
import { useWorlds, World } from './world.js'

const open = useWorlds()
const kc = loadKubeConfig()
const core = kc.makeApiClient(CoreV1Api)
let dir = ''

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kata-lcm-policy-e2e-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})
// The policy lives in kube-system, as a cluster's would: every test leaves none behind.
afterEach(async () => {
  await core.deleteNamespacedConfigMap({ namespace: 'kube-system', name: 'kata-lcm-policy' }).catch(() => undefined)
})

/** The fleet policy for a world: its release, charts, nodes and verification pod. */
async function policyFor(w: World, extra: Record<string, unknown> = {}): Promise<string> {
  const pod = parse(await readFile(w.verificationFile, 'utf8')) as Record<string, unknown>
  const file = path.join(dir, `policy-${w.id}.yaml`)
  await writeFile(
    file,
    `# the fleet's own comment\n${stringify({
      apiVersion: 'kata-lcm.katacontainers.io/v1alpha1',
      kind: 'Policy',
      release: { name: 'kata-deploy', namespace: w.namespace },
      chart: w.chart('3.28.0'),
      previousChart: w.chart('3.27.0'),
      nodeSelector: `kata-lcm.test/world=${w.id}`,
      timeouts: { ready: '60s' },
      verification: { namespace: w.namespace, timeout: '30s', pod },
      ...extra,
    })}`,
  )
  return file
}

/**
 * A ServiceAccount of the world that may do everything a run does (and helm with it) but read
 * ConfigMaps, as a token kubeconfig. Returns it and how to remove its cluster-wide RBAC.
 */
async function identityWithoutConfigMaps(w: World): Promise<{ kubeconfig: string; remove: () => Promise<void> }> {
  const kubectl = async (args: string[]) => {
    const r = await run('kubectl', [...args, '--kubeconfig', e2eCluster().kubeconfigPath], { env: envWithTools() })
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  const name = `no-configmaps-${w.id}`
  const rbac = path.join(dir, `${name}.yaml`)
  await writeFile(
    rbac,
    stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: w.namespace } },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name },
          rules: [
            {
              apiGroups: [''],
              // Every core resource a run and its helm touch: configmaps are not among them.
              resources: [
                'nodes',
                'pods',
                'pods/log',
                'pods/eviction',
                'secrets',
                'serviceaccounts',
                'namespaces',
                'events',
              ],
              verbs: ['*'],
            },
            { apiGroups: ['apps', 'batch', 'coordination.k8s.io', 'node.k8s.io'], resources: ['*'], verbs: ['*'] },
          ],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
          subjects: [{ kind: 'ServiceAccount', name, namespace: w.namespace }],
        },
      ],
    }),
  )
  await kubectl(['apply', '-f', rbac])
  const token = (await kubectl(['create', 'token', name, '-n', w.namespace])).trim()
  const kubeconfig = path.join(dir, `${name}.kubeconfig`)
  await writeFile(
    kubeconfig,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: kc.getCurrentCluster()!.server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  )
  return {
    kubeconfig,
    remove: async () => {
      await kubectl(['delete', 'clusterrolebinding,clusterrole', name, '--ignore-not-found'])
    },
  }
}

/** The first line a command printed on stderr (its progress), without its timestamp. */
const firstLine = (stderr: string) => (stderr.split('\n')[0] ?? '').replace(/^\d{4}-\d\d-\d\dT\S+ /, '')

/** The CLI as an operator types it: only the kubeconfig added (World.cli would add --helm-namespace). */
function kataLcm(w: World, args: string[]) {
  return w.cli(args, {}, e2eCluster().kubeconfigPath, { bare: true })
}

describe('the fleet policy', () => {
  it('after policy set: upgrade --target-version 3.28.0 --batch-size 2, rollback NODE and install-workflow work exactly as written', async () => {
    const w = await open({ nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('p', 'as', i) })), version: '3.27.0' })
    const file = await policyFor(w)
    const set = await kataLcm(w, ['policy', 'set', file])
    expect(set.code, set.stderr).toBe(0)
    const stored = await core.readNamespacedConfigMap({ namespace: 'kube-system', name: 'kata-lcm-policy' })
    expect(stored.data?.['policy.yaml']).toContain("# the fleet's own comment")

    const up = await kataLcm(w, ['upgrade', '--target-version', '3.28.0', '--batch-size', '2', '--json'])
    expect(up.code, up.stderr).toBe(0)
    const report = JSON.parse(up.stdout) as { waves: string[][]; verificationPod: string }
    expect(report.waves).toEqual([w.nodeNames.slice(0, 2), w.nodeNames.slice(2)])
    for (const name of w.nodeNames) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })

    const beforeRollback = new Date()
    const rb = await kataLcm(w, ['rollback', w.nodeNames[0]!])
    expect(rb.code, rb.stderr).toBe(0)
    // Verified with the policy's pod (in the policy's namespace), back on the policy's previousChart.
    const verifyPods = (await w.audit.events()).filter(
      (e) =>
        e.verb === 'create' &&
        e.stage === 'ResponseComplete' &&
        e.objectRef?.resource === 'pods' &&
        e.objectRef?.namespace === w.namespace &&
        (e.userAgent ?? '').startsWith('kata-lcm/') &&
        new Date(e.requestReceivedTimestamp) >= beforeRollback,
    )
    expect(verifyPods).toHaveLength(1)
    expect(await w.node(w.nodeNames[0]!)).toMatchObject({ status: 'rolled-back', version: '3.27.0' })

    const crdsBefore = await kc
      .makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: 'default',
        plural: 'workflowtemplates',
      })
      .then(() => true)
      .catch(() => false)
    if (!crdsBefore) await applyArgoCrds(e2eCluster().kubeconfigPath)
    try {
      const argoNs = `argo-${w.id}`
      await core.createNamespace({ body: { metadata: { name: argoNs } } })
      const iw = await kataLcm(w, ['install-workflow', '--namespace', argoNs, '--release-name', `klm-${w.id}`])
      expect(iw.code, iw.stderr).toBe(0)
      const template = (await kc.makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: argoNs,
        plural: 'workflowtemplates',
        name: 'kata-lifecycle-manager',
      })) as { spec: { arguments: { parameters: { name: string; value?: string }[] } } }
      const param = (name: string) => template.spec.arguments.parameters.find((p) => p.name === name)?.value
      // The template's defaults are the fleet's policy.
      expect(param('helm-namespace')).toBe(w.namespace)
      expect(param('node-selector')).toBe(`kata-lcm.test/world=${w.id}`)
      expect(param('verification-namespace')).toBe(w.namespace)
      expect(JSON.stringify(template)).toContain(
        Buffer.from(stringify(parse(await readFile(w.verificationFile, 'utf8')), { lineWidth: 0 }))
          .toString('base64')
          .slice(0, 40),
      )
      await helm(e2eCluster().kubeconfigPath, ['uninstall', `klm-${w.id}`, '-n', argoNs])
      await core.deleteNamespace({ name: argoNs })
    } finally {
      if (!crdsBefore) await deleteArgoCrds(e2eCluster().kubeconfigPath)
    }
  })

  it('a flag beats the policy; the policy beats the built-in default', async () => {
    const w = await open({ nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('p', 'fb', i) })), version: '3.27.0' })
    await kataLcm(w, ['policy', 'set', await policyFor(w, { batchSize: 3 })])
    const fromPolicy = await kataLcm(w, ['upgrade', '--target-version', '3.28.0', '--dry-run', '--json'])
    expect(fromPolicy.code, fromPolicy.stderr).toBe(0)
    expect((JSON.parse(fromPolicy.stdout) as { waves: string[][] }).waves).toEqual([w.nodeNames])
    const fromFlag = await kataLcm(w, [
      'upgrade',
      '--target-version',
      '3.28.0',
      '--batch-size',
      '1',
      '--dry-run',
      '--json',
    ])
    expect((JSON.parse(fromFlag.stdout) as { waves: string[][] }).waves).toEqual(w.nodeNames.map((n) => [n]))
  })

  it('a policy that does not validate is refused naming its field (exit 2), by policy set and by a run, writing nothing', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('p', 'bad', 1) }], version: '3.27.0' })
    const bad = await policyFor(w, { batchSize: 0 })
    const since = new Date()
    const set = await kataLcm(w, ['policy', 'set', bad])
    expect(set.code).toBe(2)
    expect(set.stderr).toMatch(
      new RegExp(`Error: policy file ${bad.replace(/[.]/g, '\\.')}: batchSize: must be at least 1, not 0`),
    )
    const run = await kataLcm(w, ['upgrade', '--target-version', '3.28.0', '--policy', bad])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/batchSize: must be at least 1, not 0/)
    const timeout = await kataLcm(w, [
      'upgrade',
      '--target-version',
      '3.28.0',
      '--policy',
      await policyFor(w, { timeouts: { ready: '48h' } }),
    ])
    expect(timeout.code).toBe(2)
    expect(timeout.stderr).toMatch(/policy file .*: timeouts\.ready: "48h" is longer than the 24h kata-lcm allows/)
    expect(await w.writesSince(since)).toEqual([])
    await expect(core.readNamespacedConfigMap({ namespace: 'kube-system', name: 'kata-lcm-policy' })).rejects.toThrow()
  })

  it('no verification pod anywhere: the error names every place looked at and how to set one (exit 2, nothing written)', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('p', 'np', 1) }], version: '3.27.0' })
    const since = new Date()
    const r = await kataLcm(w, ['upgrade', '--target-version', '3.28.0', '--helm-namespace', w.namespace])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /Error: --verification-pod: no verification pod: looked at the flag \(not given\), ConfigMap kube-system\/kata-lcm-policy \(none\)/,
    )
    expect(r.stderr).toMatch(/kata-lcm init writes a starter, kata-lcm policy set FILE stores it/)
    const iw = await kataLcm(w, ['install-workflow'])
    expect(iw.code).toBe(2)
    expect(iw.stderr).toMatch(/--verification-pod: no verification pod/)
    expect(await w.writesSince(since)).toEqual([])
  })

  it('init against a cluster with two Kata RuntimeClass families: one verification pod each, a policy that policy set takes', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('p', 'in', 1) }], version: '3.27.0' })
    const node = kc.makeApiClient(NodeV1Api)
    const classes = [`kata-clh-${w.id}`, `kata-fc-${w.id}`]
    for (const name of classes) await node.createRuntimeClass({ body: { metadata: { name }, handler: name } })
    try {
      const out = path.join(dir, `init-${w.id}`)
      const r = await kataLcm(w, ['init', '--output-dir', out])
      expect(r.code, r.stderr).toBe(0)
      const files = await readdir(out)
      for (const name of classes) expect(files).toContain(`verify-${name}.yaml`)
      const fc = parse(await readFile(path.join(out, `verify-kata-fc-${w.id}.yaml`), 'utf8')) as {
        spec: { runtimeClassName: string }
      }
      expect(fc.spec.runtimeClassName).toBe(`kata-fc-${w.id}`)
      const again = await kataLcm(w, ['init', '--output-dir', out])
      expect(again.code).toBe(2)
      expect(again.stderr).toMatch(/exist; pass --force to overwrite them/)
      const set = await kataLcm(w, ['policy', 'set', path.join(out, 'kata-lcm-policy.yaml')])
      expect(set.code, set.stderr).toBe(0)
      const show = await kataLcm(w, ['policy', 'show'])
      expect(show.stdout).toMatch(/# policy ConfigMap kube-system\/kata-lcm-policy/)
    } finally {
      for (const name of classes) await node.deleteRuntimeClass({ name }).catch(() => undefined)
    }
  })
  it('with an identity that cannot read ConfigMaps: a run is refused naming the ConfigMap and the 403 (exit 2, nothing written), policy show too; --no-policy runs on its flags and says so first', async () => {
    const w = await open({ nodes: [1, 2].map((i) => ({ name: World.nodeName('p', 'nc', i) })), version: '3.27.0' })
    const set = await kataLcm(w, ['policy', 'set', await policyFor(w, { batchSize: 2 })])
    expect(set.code, set.stderr).toBe(0)
    // The operator's own identity reads it, and the run says so in its first line and its report.
    const dry = await kataLcm(w, ['upgrade', '--target-version', '3.28.0', '--dry-run', '--json'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(firstLine(dry.stderr)).toBe('policy: ConfigMap kube-system/kata-lcm-policy')
    expect((JSON.parse(dry.stdout) as { policy: string }).policy).toBe('ConfigMap kube-system/kata-lcm-policy')

    const identity = await identityWithoutConfigMaps(w)
    try {
      const since = new Date()
      const forbidden = new RegExp(
        `Error: cannot read the fleet policy, ConfigMap kube-system/kata-lcm-policy: get configmap kube-system/kata-lcm-policy failed: HTTP 403: configmaps "kata-lcm-policy" is forbidden: User "system:serviceaccount:${w.namespace}:no-configmaps-${w.id}" cannot get resource "configmaps"`,
      )
      const refused = await w.cli(['upgrade', '--target-version', '3.28.0'], {}, identity.kubeconfig, { bare: true })
      expect(refused.code, refused.stderr).toBe(2)
      expect(refused.stderr).toMatch(forbidden)
      expect(refused.stderr).toMatch(/give --no-policy/)
      const show = await w.cli(['policy', 'show'], {}, identity.kubeconfig, { bare: true })
      expect(show.code, show.stderr).toBe(2)
      expect(show.stderr).toMatch(forbidden)
      expect(show.stdout).toBe('')
      expect(await w.writesSince(since)).toEqual([])
      for (const name of w.nodeNames)
        expect(await w.node(name)).toMatchObject({ status: undefined, unschedulable: false })
      expect(await w.release()).toMatchObject({ chartVersion: '3.27.0', revision: 1 })

      // --no-policy: the policy is not even looked for; every value comes from the command line.
      const up = await w.cli(
        w.upgradeArgs('3.28.0', ['--batch-size', '2', '--no-policy', '--json']),
        {},
        identity.kubeconfig,
      )
      expect(up.code, up.stderr).toBe(0)
      expect(firstLine(up.stderr)).toBe('policy: none (--no-policy)')
      expect((JSON.parse(up.stdout) as { policy: string }).policy).toBe('none (--no-policy)')
      for (const name of w.nodeNames)
        expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })
    } finally {
      await identity.remove()
    }
  })

  it('a policy ConfigMap the API server keeps failing (500) refuses the run with the cluster error (exit 7), never "no policy"; an unreachable one refuses policy show (exit 7)', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('p', 'f5', 1) }], version: '3.27.0' })
    const proxy = await startFaultProxy(e2eCluster().kubeconfigPath, path.join(dir, `faulty-${w.id}.kubeconfig`), {
      plan: (req) => (req.url?.includes('/configmaps/kata-lcm-policy') ? '500' : undefined),
    })
    try {
      const since = new Date()
      const r = await w.cli(w.upgradeArgs('3.28.0'), {}, proxy.kubeconfigPath)
      expect(r.code, r.stderr).toBe(7)
      expect(r.stderr).toMatch(
        /Error: cannot read the fleet policy, ConfigMap kube-system\/kata-lcm-policy: get configmap kube-system\/kata-lcm-policy failed: HTTP 500/,
      )
      expect(proxy.stats.faults['500']).toBeGreaterThan(1)
      const show = await w.cli(['policy', 'show'], {}, proxy.kubeconfigPath, { bare: true })
      expect(show.code, show.stderr).toBe(7)
      expect(await w.writesSince(since)).toEqual([])
    } finally {
      await proxy.close()
    }
    const unreachable = await w.cli(['policy', 'show'], {}, path.join(dir, `faulty-${w.id}.kubeconfig`), { bare: true })
    expect(unreachable.code, unreachable.stderr).toBe(7)
    expect(unreachable.stderr).toMatch(
      /Error: cannot read the fleet policy, ConfigMap kube-system\/kata-lcm-policy: .*ECONNREFUSED/,
    )
  })
})
