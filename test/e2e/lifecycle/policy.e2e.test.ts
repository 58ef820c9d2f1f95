/**
 * The fleet policy on the test cluster: once `kata-lcm policy set` stored it, the three commands work
 * exactly as the mission writes them; a flag beats the policy; a bad policy is refused naming its
 * field, writing nothing; a missing verification pod names every place looked at; `kata-lcm init`
 * builds its pods from the cluster's Kata RuntimeClasses.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { CoreV1Api, CustomObjectsApi, NodeV1Api } from '@kubernetes/client-node'
import { parse, stringify } from 'yaml'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { applyArgoCrds, deleteArgoCrds, helm } from '../argo/argo-harness.js'
import { e2eCluster, loadKubeConfig } from '../harness/cluster.js'
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
})
