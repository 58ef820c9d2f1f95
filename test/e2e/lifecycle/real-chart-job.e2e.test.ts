/**
 * The REAL kata-deploy chart in job mode (3.32.0 -> 4.0.0, and 4.1.0's ownership), on kwok nodes with
 * the stand-in for its install dispatcher (harness/kata-deploy-stand-in.ts): per-node Jobs, node
 * labels, the hook failing when a node fails, 4.1.0's cleanup of owned nodes outside job.nodes.
 */
import { BatchV1Api } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { e2eCluster, envWithTools, run } from '../harness/cluster.js'
import { ERROR_ANNOTATION, KATA_RUNTIME_LABEL, RESULT_LABEL, instanceLabel } from '../harness/kata-deploy-stand-in.js'
import { useWorlds, World } from './world.js'
import type { StandInOptions } from '../harness/kata-deploy-stand-in.js'

const open = useWorlds()
// The operator's values: RuntimeClasses off (cluster-scoped; the test bed's real node owns kata-qemu),
// no Job retries (a failing node fails at once instead of after 10 + 20 + 40 s of back-off).
const OPERATOR = ['runtimeClasses.enabled=false', 'job.backoffLimit=0', 'env.debug=true']

async function jobWorld(id: string, nodes: number, standIn: StandInOptions = {}, version = '3.32.0') {
  const w = await open({
    nodes: Array.from({ length: nodes }, (_, i) => ({ name: World.nodeName('j', id, i + 1) })),
    version,
    mode: 'job',
    real: true,
    set: OPERATOR,
    standIn,
  })
  return { w, before: await w.rawUserValues() }
}

async function labelsOf(w: World, node: string): Promise<Record<string, string>> {
  return (await w.core.readNode({ name: node })).metadata?.labels ?? {}
}

describe('job mode on the real kata-deploy chart, with the dispatcher stand-in', () => {
  it('3.32.0 -> 4.0.0 in waves of 2: each wave one dispatcher run over its own nodes, every node installed, the values back', async () => {
    const { w, before } = await jobWorld('ok', 3)
    const [n1, n2, n3] = w.nodeNames as [string, string, string]
    // The dry run shows each wave's helm upgrade with its job.nodes, and writes nothing.
    const since = new Date()
    const dry = await w.upgrade('4.0.0', ['--batch-size', '2', '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`job.nodes=["${n1}","${n2}"], job.parallelism=2`)
    expect(dry.stdout).toContain(`job.nodes=["${n3}"], job.parallelism=1`)
    expect(await w.writesSince(since)).toEqual([])
    w.standIn!.log.length = 0
    const r = await w.upgrade('4.0.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(0)
    for (const name of w.nodeNames) {
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.0.0', unschedulable: false })
      expect((await labelsOf(w, name))[KATA_RUNTIME_LABEL]).toBe('true')
    }
    // Two dispatcher runs (one per wave), each over just its wave; finalize restores values without hooks.
    expect(w.standIn!.log.filter((l) => l.startsWith('install ')).sort()).toEqual(
      [`install ${n1}`, `install ${n2}`, `install ${n3}`].sort(),
    )
    expect(w.standIn!.log.filter((l) => l.startsWith('hook '))).toEqual(['hook succeeded', 'hook succeeded'])
    expect(await w.release()).toMatchObject({ chartVersion: '4.0.0' })
    expect(await w.rawUserValues()).toBe(before)
  })

  it("a node whose 4.0.0 install Job fails: the hook fails, that node alone goes back to 3.32.0, the next wave's node untouched", async () => {
    const failing = World.nodeName('j', 'nf', 2)
    const { w, before } = await jobWorld('nf', 3, { failInstall: (node, v) => node === failing && v === '4.0.0' })
    const [n1, , n3] = w.nodeNames as [string, string, string]
    const r = await w.upgrade('4.0.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(3)
    expect(await w.node(n1)).toMatchObject({ status: 'completed', version: '4.0.0', unschedulable: false })
    const failed = await w.node(failing)
    expect(failed).toMatchObject({ status: 'rolled-back', version: '3.32.0', unschedulable: false })
    expect(failed.annotations['kata-lcm.katacontainers.io/last-error']).toMatch(
      new RegExp(`install Job kata-deploy-install-${failing} for ${failing} failed`),
    )
    expect(w.standIn!.log).toContain('hook failed')
    expect((await w.node(n3)).status).toBeUndefined()
    // The revert was one more dispatcher run, over the failed node only, and it installed 3.32.0 there.
    const jobs = await w.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: w.namespace })
    const reinstall = jobs.items.find((j) => j.metadata?.name === `kata-deploy-install-${failing}`)
    expect(reinstall?.spec?.template.spec?.containers[0]?.image).toMatch(/:3\.32\.0$/)
    expect(reinstall?.status?.succeeded).toBe(1)
    // Mixed fleet: the record keeps the operator's values until the rerun converges.
    expect((await w.cli(['unlock', '--forget-run'])).code).toBe(0)
    expect(before).toContain('"backoffLimit":0')
  })

  it('a node the dispatcher created no Job for is failed as soon as helm returns, not after the ready timeout', async () => {
    const skipped = World.nodeName('j', 'sk', 1)
    const { w } = await jobWorld('sk', 2, { skipNode: (node, v) => node === skipped && v === '4.0.0' })
    const r = await w.upgrade('4.0.0', ['--batch-size', '2', '--ready-timeout', '20m'])
    expect(r.code, r.stderr).toBe(3)
    const node = await w.node(skipped)
    expect(node).toMatchObject({ status: 'rolled-back', version: '3.32.0' })
    expect(node.annotations['kata-lcm.katacontainers.io/last-error']).toBe(
      `kata-deploy's dispatcher created no install Job for ${skipped} (helm returned, so none will come)`,
    )
    expect(await w.node(w.nodeNames[1]!)).toMatchObject({ status: 'completed', version: '4.0.0' })
  })

  it('4.1.0: a helm upgrade scoped with job.nodes uninstalls every other node of the release (what kata-lcm refuses to do)', async () => {
    const { w } = await jobWorld('own', 3, {}, '4.1.0')
    const [n1, n2, n3] = w.nodeNames as [string, string, string]
    for (const name of w.nodeNames) expect((await labelsOf(w, name))[instanceLabel()]).toBe('true')
    await w.helm([
      'upgrade',
      'kata-deploy',
      w.chart('4.1.0'),
      '-n',
      w.namespace,
      '--reuse-values',
      '--set',
      `job.nodes={${n1}}`,
    ])
    expect(w.standIn!.log).toEqual(expect.arrayContaining([`cleanup ${n2}`, `cleanup ${n3}`, `install ${n1}`]))
    expect((await labelsOf(w, n1))[instanceLabel()]).toBe('true')
    for (const name of [n2, n3]) {
      const labels = await labelsOf(w, name)
      expect(labels[instanceLabel()]).toBeUndefined()
      expect(labels[KATA_RUNTIME_LABEL]).toBeUndefined()
    }
  })

  it('4.0.0 -> 4.1.0 in one wave over every node the dispatcher may run on: the dispatcher gets past the cordon, every node installed, the values back', async () => {
    // The operator confines the dispatcher to these nodes (job.dispatcherNodeSelector), and no other
    // node is schedulable for it: the wave cordons them all. Without kata-lcm's toleration the
    // dispatcher pod stays Pending, helm waits out its timeout, and the rollback fails the same way.
    const here = { 'kata-lcm.test/dispatcher': 'here' }
    const w = await open({
      nodes: [1, 2, 3].map((i) => ({ name: World.nodeName('j', 'all', i), labels: here })),
      version: '4.0.0',
      mode: 'job',
      real: true,
      spare: false,
      set: [...OPERATOR, 'job.dispatcherNodeSelector.kata-lcm\\.test/dispatcher=here'],
    })
    const before = await w.rawUserValues()
    const r = await w.upgrade('4.1.0', ['--batch-size', '3', '--helm-timeout', '90s'])
    expect(r.code, r.stderr).toBe(0)
    for (const name of w.nodeNames)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.1.0', unschedulable: false })
    expect(w.standIn!.log.filter((l) => l.startsWith('hook '))).toContain('hook succeeded')
    // The toleration was kata-lcm's, for the wave: the operator's values come back without it.
    expect(await w.rawUserValues()).toBe(before)
    expect(before).not.toContain('unschedulable')
  })

  it('4.1.0 -> 4.2.0 (the external k8s-job-dispatcher): waves refused before any write; one wave over every node of the release installs them all, the dispatcher records each result on its node, the values back', async () => {
    const { w, before } = await jobWorld('42', 3, {}, '4.1.0')
    const since = new Date()
    const waves = await w.upgrade('4.2.0', ['--batch-size', '2'])
    expect(waves.code, waves.stderr).toBe(2)
    expect(waves.stderr).toMatch(/job mode cannot go wave by wave on kata-deploy/)
    expect(await w.writesSince(since)).toEqual([])
    w.standIn!.log.length = 0
    const r = await w.upgrade('4.2.0', ['--batch-size', '3', '--helm-timeout', '90s'])
    expect(r.code, r.stderr).toBe(0)
    for (const name of w.nodeNames) {
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.2.0', unschedulable: false })
      const node = await w.core.readNode({ name })
      expect(node.metadata?.labels).toMatchObject({
        [KATA_RUNTIME_LABEL]: 'true',
        [instanceLabel()]: 'true',
        [RESULT_LABEL]: 'succeeded',
      })
      expect(node.metadata?.annotations?.[ERROR_ANNOTATION]).toBeUndefined()
    }
    // One dispatcher run, the external one (the chart's own image and binary), over every node.
    expect(w.standIn!.log.filter((l) => l.startsWith('install ')).sort()).toEqual(
      w.nodeNames.map((n) => `install ${n}`).sort(),
    )
    expect(w.standIn!.log.filter((l) => l.startsWith('hook '))).toEqual(['hook succeeded'])
    const hooks = await w.kc.makeApiClient(BatchV1Api).listNamespacedJob({
      namespace: w.namespace,
      labelSelector: 'kata-deploy/dispatcher=install',
    })
    expect(hooks.items[0]?.spec?.template.spec?.containers[0]).toMatchObject({
      image: 'ghcr.io/kata-containers/k8s-job-dispatcher:0.1.0',
      command: expect.arrayContaining(['/usr/bin/k8s-job-dispatcher', '--require-node-machine-id']),
    })
    expect(await w.release()).toMatchObject({ chartVersion: '4.2.0' })
    expect(await w.rawUserValues()).toBe(before)
  })

  it('a dispatcher that uninstalls nodes outside the wave stops the run at once (exit 4), naming them; it never reports success', async () => {
    const { w, before } = await jobWorld('cl', 2, { alwaysCleanUp: true })
    const [n1, n2] = w.nodeNames as [string, string]
    const r = await w.upgrade('4.0.0', ['--batch-size', '1'])
    expect(r.code, r.stderr).toBe(4)
    expect(r.stderr).toMatch(
      new RegExp(
        `kata-deploy 4\\.0\\.0's install dispatcher removed Kata from .*${n2}.*, outside job\\.nodes \\(${n1}\\)`,
      ),
    )
    // The wave's node stays cordoned and unverified; the removed node was never touched by kata-lcm.
    expect(await w.node(n1)).toMatchObject({ status: 'upgrading', unschedulable: true })
    expect((await w.node(n2)).status).toBeUndefined()
    // The record keeps the operator's values for whoever repairs the fleet.
    const forget = await w.cli(['unlock', '--forget-run'])
    expect(forget.code, forget.stderr).toBe(0)
    expect(before).toContain('"debug":true')
  })
})

describe('an Argo step pod lost mid-helm, on the real chart', () => {
  it('step upgrade killed with its helm while the dispatcher hook runs: the retry clears the pending revision after --helm-timeout, the wave converges', async () => {
    const { w, before } = await jobWorld('lost', 2)
    const holder = ['--holder', 'argo/lost-pod-e2e']
    const plan = await w.cli([
      'step',
      'plan',
      ...holder,
      ...w.upgradeArgs('4.0.0', ['--batch-size', '2', '--helm-timeout', '15s']).slice(1),
    ])
    expect(plan.code, plan.stderr).toBe(0)
    expect((await w.cli(['step', 'prepare', ...holder, '--wave', '1'])).code).toBe(0)
    w.standIn!.holdNextHook = true
    const lost = w.spawnCli(['step', 'upgrade', ...holder, '--wave', '1'], undefined, { group: true })
    await w.standIn!.logged('hook held')
    process.kill(-lost.child.pid!, 'SIGKILL')
    expect((await lost.done).code).toBe(137)
    expect((await w.release()).status).toBe('pending-upgrade')

    const retry = await w.cli(['step', 'upgrade', ...holder, '--wave', '1'])
    expect(retry.code, retry.stderr).toBe(0)
    expect(retry.stdout + retry.stderr).toMatch(
      /stayed pending-upgrade past --helm-timeout \(15s\): the helm process that ran it is gone; rolling the release back to revision 1 without hooks/,
    )
    for (const s of ['verify', 'rollback']) expect((await w.cli(['step', s, ...holder, '--wave', '1'])).code).toBe(0)
    expect((await w.cli(['step', 'finalize', ...holder])).code).toBe(0)
    for (const name of w.nodeNames)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.0.0', unschedulable: false })
    expect(await w.helm(['history', 'kata-deploy', '-n', w.namespace])).toMatch(/Rollback to 1/)
    expect(await w.rawUserValues()).toBe(before)
  })
})

describe('the mode-switch command kata-lcm prints works on the real chart', () => {
  it('3.32.0 daemonset -> job: the printed helm upgrade runs and the release is in job mode', async () => {
    const w = await open({
      nodes: [{ name: World.nodeName('m', 'sw', 1) }],
      version: '3.32.0',
      real: true,
      set: ['runtimeClasses.enabled=false'],
    })
    const r = await w.upgrade('4.0.0', ['--deployment-mode', 'job'])
    expect(r.code).toBe(2)
    const command = /(helm upgrade kata-deploy .*--set deploymentMode=job)/.exec(r.stderr)?.[1]
    expect(command, r.stderr).toBeDefined()
    const ran = await run('bash', ['-c', command!], {
      env: envWithTools({ KUBECONFIG: e2eCluster().kubeconfigPath }),
    })
    expect(ran.code, ran.stderr).toBe(0)
    expect((await w.userValues()).deploymentMode).toBe('job')
    await expect(w.apps.readNamespacedDaemonSet({ namespace: w.namespace, name: 'kata-deploy' })).rejects.toThrow()
    expect(w.standIn!.log).toContain('hook succeeded')
  })

  it('4.1.0 daemonset -> job (the mode is immutable there): the printed uninstall + install runs', async () => {
    const w = await open({
      nodes: [{ name: World.nodeName('m', 'si', 1) }],
      version: '4.1.0',
      real: true,
      set: ['runtimeClasses.enabled=false'],
    })
    const r = await w.upgrade('4.1.0', ['--deployment-mode', 'job'])
    expect(r.code).toBe(2)
    const command = /(helm get values .* --set deploymentMode=job)/.exec(r.stderr)?.[1]
    expect(command, r.stderr).toBeDefined()
    const ran = await run('bash', ['-c', `cd "$(mktemp -d)" && ${command!}`], {
      env: envWithTools({ KUBECONFIG: e2eCluster().kubeconfigPath }),
    })
    expect(ran.code, ran.stderr).toBe(0)
    expect((await w.userValues()).deploymentMode).toBe('job')
    expect(await w.release()).toMatchObject({ chartVersion: '4.1.0', status: 'deployed' })
  })
})

describe('a release uninstalled and installed again, on the real chart', () => {
  it('daemonset 3.32.0 -> 4.0.0, rollback NODE, reinstall in job mode: the next run neither resumes the old run nor trusts its annotations', async () => {
    const w = await open({
      nodes: [1, 2].map((i) => ({ name: World.nodeName('ri', 'kata', i) })),
      version: '3.32.0',
      real: true,
      set: ['runtimeClasses.enabled=false', 'env.debug=true'],
    })
    const [n1, n2] = w.nodeNames as [string, string]
    const first = await w.upgrade('4.0.0', ['--batch-size', '2'])
    expect(first.code, first.stderr).toBe(0)
    const rb = await w.cli(['rollback', n1, '--chart', w.chart('3.32.0')])
    expect(rb.code, rb.stderr).toBe(0)
    // The fleet is mixed, so the run record is kept. The operator reinstalls the release in job mode
    // (the mode switch kata-lcm prints from 4.1.0): kata-deploy 3.32.0 on both nodes again.
    const reinstall = [
      `helm get values kata-deploy -n ${w.namespace} -o yaml > values.yaml`,
      `helm uninstall kata-deploy -n ${w.namespace}`,
      `helm install kata-deploy ${w.chart('3.32.0')} -n ${w.namespace} -f values.yaml --set deploymentMode=job --set job.backoffLimit=0`,
    ].join(' && ')
    const ran = await run('bash', ['-c', `cd "$(mktemp -d)" && ${reinstall}`], {
      env: envWithTools({ KUBECONFIG: e2eCluster().kubeconfigPath }),
    })
    expect(ran.code, ran.stderr).toBe(0)
    expect(await w.release()).toMatchObject({ chartVersion: '3.32.0', revision: 1 })
    const installed = await w.rawUserValues()
    const r = await w.upgrade('4.0.0', ['--batch-size', '2'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(/resuming run|already completed/)
    expect(r.stderr).toMatch(/belongs to an earlier install of release kata-deploy/)
    for (const name of [n1, n2]) {
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '4.0.0' })
      expect((await labelsOf(w, name))[KATA_RUNTIME_LABEL]).toBe('true')
    }
    // Both nodes were installed by this run, and the values that came back are the new install's.
    expect(w.standIn!.log.filter((l) => l.startsWith('install ')).sort()).toEqual(
      expect.arrayContaining([`install ${n1}`, `install ${n2}`]),
    )
    expect(await w.rawUserValues()).toBe(installed)
  })
})
