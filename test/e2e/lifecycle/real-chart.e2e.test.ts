/**
 * The REAL kata-deploy chart (../shared/reference/kata-deploy-charts), daemonset mode, on kwok nodes:
 * whatever path the runs take, the operator's values come back byte for byte (`helm get values -o
 * json`), the DaemonSet gets its own update strategy back, and kata-lcm's run record goes.
 */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { waitForList } from '../harness/wait.js'
import { useWorlds, World } from './world.js'

const open = useWorlds()
// The operator's own values: a node selector (the world's) and settings of theirs. RuntimeClasses off:
// they are cluster-scoped, and the test bed's real node owns a kata-qemu RuntimeClass (runc) already.
const OPERATOR = ['env.debug=true', 'runtimeClasses.enabled=false']

async function world(id: string, nodes = 2): Promise<{ w: World; before: string }> {
  const w = await open({
    nodes: Array.from({ length: nodes }, (_, i) => ({ name: World.nodeName('r', id, i + 1) })),
    version: '3.27.0',
    real: true,
    set: OPERATOR,
  })
  return { w, before: await w.rawUserValues() }
}

async function expectOperatorState(w: World, before: string): Promise<void> {
  expect(await w.rawUserValues()).toBe(before)
  const ds = await w.apps.readNamespacedDaemonSet({ namespace: w.namespace, name: 'kata-deploy' })
  expect(ds.spec?.updateStrategy?.type).toBe('RollingUpdate')
  const secrets = await w.core.listNamespacedSecret({ namespace: w.namespace })
  expect(secrets.items.map((s) => s.metadata?.name)).not.toContain('kata-lcm-run-kata-deploy')
}

describe("the operator's values on the real kata-deploy chart", () => {
  it('a run that succeeds', async () => {
    const { w, before } = await world('ok')
    const r = await w.upgrade('3.28.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(0)
    await expectOperatorState(w, before)
  })

  it('a failed canary rolled back, then the rerun', async () => {
    const { w, before } = await world('fr')
    const failing = await w.writeVerificationPod('fail')
    const r1 = await w.upgrade('3.28.0', ['--verification-pod', failing])
    expect(r1.code, r1.stderr).toBe(3)
    // Every node is back on 3.27.0: the release has the operator's values back at once.
    await expectOperatorState(w, before)
    const r2 = await w.upgrade('3.28.0')
    expect(r2.code, r2.stderr).toBe(0)
    await expectOperatorState(w, before)
  })

  it('rollback NODE, then upgrade again', async () => {
    const { w, before } = await world('rb')
    expect((await w.upgrade('3.28.0', ['--batch-size', '2'])).code).toBe(0)
    const rb = await w.cli(['rollback', w.nodeNames[0]!, '--chart', w.chart('3.27.0')])
    expect(rb.code, rb.stderr).toBe(0)
    // status names each node's pod version and how it relates to the release (back on 3.27.0 after
    // the rollback, OnDelete), rather than calling the node still on 3.28.0 "outdated".
    const st = await w.cli(['status', '--node-selector', `kata-lcm.test/world=${w.id}`, '--json'])
    expect(st.code, st.stderr).toBe(0)
    const rows = (JSON.parse(st.stdout) as { rows: { node: string; podVersion?: string; podRelation?: string }[] }).rows
    expect(rows.map((r) => [r.node, r.podVersion, r.podRelation])).toEqual([
      [w.nodeNames[0], '3.27.0', 'same as the release'],
      [w.nodeNames[1], '3.28.0', 'newer than the release'],
    ])
    // Mixed fleet: kata-lcm keeps the values in its record (a Secret), the release keeps OnDelete.
    const secrets = await w.core.listNamespacedSecret({ namespace: w.namespace })
    expect(secrets.items.find((s) => s.metadata?.name === 'kata-lcm-run-kata-deploy')?.type).toBe(
      'kata-lcm.katacontainers.io/run-record',
    )
    const r = await w.upgrade('3.28.0')
    expect(r.code, r.stderr).toBe(0)
    await expectOperatorState(w, before)
  })

  it('kill -9 mid-run, then the resumed run', async () => {
    const { w, before } = await world('kl')
    const { child, done } = w.spawnCli(w.upgradeArgs('3.28.0'))
    await w.waitNodeStatus(w.nodeNames[0]!, 'verifying')
    child.kill('SIGKILL')
    expect((await done).code).toBe(137)
    expect((await w.cli(['unlock'])).code).toBe(0)
    const r = await w.upgrade('3.28.0')
    expect(r.code, r.stderr).toBe(0)
    await expectOperatorState(w, before)
  })

  it('another target after a rollback: rollback NODE from 3.28.0, then a run to 3.29.0', async () => {
    const { w, before } = await world('at')
    expect((await w.upgrade('3.28.0', ['--batch-size', '2'])).code).toBe(0)
    expect((await w.cli(['rollback', w.nodeNames[1]!, '--chart', w.chart('3.27.0')])).code).toBe(0)
    const r = await w.upgrade('3.29.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(0)
    for (const name of w.nodeNames) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.29.0' })
    await expectOperatorState(w, before)
  })
})

describe('daemonset mode across 4.1.0 and with env.multiInstallSuffix, on the real chart', () => {
  it('3.27.0 -> 4.1.0 in waves of 2: every node on 4.1.0 and labelled with the install marker, the values back', async () => {
    const { w, before } = await world('41', 3)
    const r = await w.upgrade('4.1.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(0)
    // The plan named 4.1.0's cluster-scoped change at the first wave.
    expect(r.stdout + r.stderr).toMatch(/RuntimeClass/)
    for (const name of w.nodeNames) {
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.1.0', unschedulable: false })
      const labels = (await w.core.readNode({ name })).metadata?.labels ?? {}
      expect(labels['kata-deploy.katacontainers.io/default']).toBe('true')
    }
    expect(await w.rawUserValues()).toBe(before)
  })

  it('a release installed with env.multiInstallSuffix (DaemonSet kata-deploy-blue) upgrades wave by wave', async () => {
    const w = await open({
      nodes: [1, 2].map((i) => ({ name: World.nodeName('r', 'sfx', i) })),
      version: '3.27.0',
      real: true,
      set: [...OPERATOR, 'env.multiInstallSuffix=blue'],
    })
    const before = await w.rawUserValues()
    const r = await w.upgrade('3.29.0', ['--batch-size', '1'])
    expect(r.code, r.stderr).toBe(0)
    for (const name of w.nodeNames) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.29.0' })
    const ds = await w.apps.readNamespacedDaemonSet({ namespace: w.namespace, name: 'kata-deploy-blue' })
    expect(ds.spec?.updateStrategy?.type).toBe('RollingUpdate')
    expect(ds.spec?.template.spec?.containers[0]?.image).toMatch(/:3\.29\.0$/)
    expect(await w.rawUserValues()).toBe(before)
  })
})

describe('daemonset mode on kata-deploy 4.2.0 (kata-containers main after the external job dispatcher)', () => {
  it('4.1.0 -> 4.2.0 in waves of 2, then rollback NODE to 4.1.0: every node labelled with the install marker, the values back', async () => {
    const w = await open({
      nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('r', '42', i) })),
      version: '4.1.0',
      real: true,
      set: OPERATOR,
    })
    const before = await w.rawUserValues()
    const [n1] = w.nodeNames as [string]
    const r = await w.upgrade('4.2.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(0)
    for (const name of w.nodeNames) {
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.2.0', unschedulable: false })
      const labels = (await w.core.readNode({ name })).metadata?.labels ?? {}
      expect(labels['kata-deploy.katacontainers.io/default']).toBe('true')
      expect(labels['katacontainers.io/kata-runtime']).toBe('true')
    }
    const ds = await w.apps.readNamespacedDaemonSet({ namespace: w.namespace, name: 'kata-deploy' })
    expect(ds.spec?.template.spec?.containers[0]?.image).toMatch(/:4\.2\.0$/)
    await expectOperatorState(w, before)
    const rb = await w.cli(['rollback', n1, '--chart', w.chart('4.1.0')])
    expect(rb.code, rb.stderr).toBe(0)
    expect(await w.node(n1)).toMatchObject({ status: 'rolled-back', version: '4.1.0', unschedulable: false })
  })
})

describe('version hazards on the real chart', () => {
  it('a pod restart from 3.28.0 (its cleanup crashes running Kata pods) is refused without --drain, writing nothing', async () => {
    const w = await open({
      nodes: [{ name: World.nodeName('r', 'hz', 1) }],
      version: '3.28.0',
      real: true,
      set: OPERATOR,
    })
    const since = new Date()
    const r = await w.upgrade('3.29.0')
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/restarting kata-deploy 3\.28\.0 pods crashes the Kata pods running on their nodes/)
    expect(r.stderr).toMatch(/--drain/)
    expect(await w.writesSince(since)).toEqual([])
    const ok = await w.upgrade('3.29.0', ['--accept-restart-hazard'])
    expect(ok.code, ok.stderr).toBe(0)
  })
})

describe('job mode on the real kata-deploy 4.1.0, refused before any write', () => {
  it("a target chart that refuses the release's values (job.nodeSelector, removed in 4.1.0): exit 2 with the chart's reason", async () => {
    const w = await open({
      nodes: [{ name: World.nodeName('r', 'jns', 1) }],
      version: '3.32.0',
      mode: 'job',
      real: true,
      set: ['runtimeClasses.enabled=false', 'job.nodeSelector.pool=kata'],
    })
    const since = new Date()
    const r = await w.upgrade('4.1.0')
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(
      /Error: --chart: kata-deploy 4.1.0 refuses the values kata-lcm would install: .*job.nodeSelector has been removed/,
    )
    expect(await w.writesSince(since)).toEqual([])
  })

  it('waves: its dispatcher would uninstall Kata from every node outside the wave, so they are refused, naming the alternative', async () => {
    const w = await open({
      nodes: [1, 2].map((i) => ({ name: World.nodeName('r', 'jwv', i) })),
      version: '3.32.0',
      mode: 'job',
      real: true,
      set: ['runtimeClasses.enabled=false'],
    })
    const since = new Date()
    const r = await w.upgrade('4.1.0', ['--batch-size', '1'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(
      new RegExp(
        `Error: job mode cannot go wave by wave on kata-deploy 4.1.0: .* so a wave would uninstall it from ${w.nodeNames[1]}`,
      ),
    )
    expect(r.stderr).toMatch(/--batch-size 2 or more/)
    expect(await w.writesSince(since)).toEqual([])
  })
})

describe('the cluster is the truth, on the real chart', () => {
  it('a node rolled back and then taken out of the release does not keep OnDelete and the run record for good', async () => {
    // vfail- fails its verification; it sorts first, so it is the first wave alone.
    const w = await open({
      nodes: [World.nodeName('vfail', 'lp', 1), World.nodeName('x', 'lp', 2), World.nodeName('x', 'lp', 3)].map(
        (name) => ({ name }),
      ),
      version: '3.27.0',
      real: true,
      set: OPERATOR,
    })
    const before = await w.rawUserValues()
    const [failing, n2, n3] = w.nodeNames as [string, string, string]
    const r1 = await w.upgrade('3.28.0', ['--batch-size', '1'])
    expect(r1.code, r1.stderr).toBe(3)
    expect(await w.node(failing)).toMatchObject({ status: 'rolled-back', version: '3.27.0' })
    // The operator takes it out of the pool: the label the release's nodeSelector uses goes, and the
    // DaemonSet controller removes its kata-deploy pod.
    await w.core.patchNode(
      { name: failing, body: { metadata: { labels: { 'kata-lcm.test/world': null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    await waitForList(w.kc, `/api/v1/namespaces/${w.namespace}/pods`, (pods) => pods.length === 0, 60_000, {
      fieldSelector: `spec.nodeName=${failing}`,
    })
    const r2 = await w.upgrade('3.28.0', ['--batch-size', '2'])
    expect(r2.code, r2.stderr).toBe(0)
    expect(r2.stderr).not.toMatch(/not every node runs/)
    for (const name of [n2, n3]) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })
    // Every node the release covers runs 3.28.0: the operator's values and update strategy are back,
    // and no run is in flight.
    await expectOperatorState(w, before)
    const st = await w.cli(['status', '--node-selector', `kata-lcm.test/world=${w.id}`])
    expect(st.stdout).not.toMatch(/in flight/)
  })

  it('a node deleted mid-wave (a scale-down) is seen gone at once and never counted as upgraded (exit 8)', async () => {
    const { w, before } = await world('gn', 3)
    const [n1, n2, n3] = w.nodeNames as [string, string, string]
    const { done } = w.spawnCli(w.upgradeArgs('3.28.0', ['--batch-size', '3', '--ready-timeout', '5m']))
    await w.waitNodeStatus(n2, 'upgrading')
    const deleted = Date.now()
    await w.core.deleteNode({ name: n2 })
    const r = await done
    // Well inside the 5-minute ready timeout the deleted node could never have met.
    expect(Date.now() - deleted).toBeLessThan(120_000)
    expect(r.code, r.stderr).toBe(8)
    expect(r.stdout + r.stderr).toMatch(
      new RegExp(
        `2 selected node\\(s\\) run kata-deploy 3\\.28\\.0; 1 left during the run \\(deleted, or out of the release\\), not upgraded: ${n2}`,
      ),
    )
    expect(r.stdout + r.stderr).not.toMatch(/MIXED/)
    for (const name of [n1, n3]) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })
    await expectOperatorState(w, before)
  })
})
