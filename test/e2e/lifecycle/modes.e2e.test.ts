import { BatchV1Api } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { useWorlds, World } from './world.js'

const open = useWorlds()

interface Report {
  mode: string
  waves: string[][]
  outcome: string
  nodes: { name: string; status: string; version?: string }[]
}

describe('deployment modes and waves (real control plane)', () => {
  it('job mode, 6 nodes, batch 3: a node failing in wave 2 alone goes back to the old chart version', async () => {
    const id = 'jm'
    // Name order makes the waves: [a1 a2 a3] [jfail k5 k6]; 3.34.0's install Job fails on jfail-* nodes.
    const names = [
      World.nodeName('a', id, 1),
      World.nodeName('a', id, 2),
      World.nodeName('a', id, 3),
      World.nodeName('jfail', id, 4),
      World.nodeName('k', id, 5),
      World.nodeName('k', id, 6),
    ]
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.32.0', mode: 'job' })
    const result = await w.upgrade('3.34.0', ['--batch-size', '3', '--json'])
    expect(result.code, result.stderr).toBe(3)
    const report = JSON.parse(result.stdout) as Report
    expect(
      report.nodes.filter((n) => n.status !== 'completed').map((n) => n.name),
      JSON.stringify(report.nodes),
    ).toEqual([names[3]])
    expect(report.mode).toBe('job')
    expect(report.waves).toEqual([names.slice(0, 3), names.slice(3)])
    for (const name of [...names.slice(0, 3), ...names.slice(4)])
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.34.0', unschedulable: false })
    const failed = await w.node(names[3]!)
    expect(failed).toMatchObject({ status: 'rolled-back', version: '3.32.0', unschedulable: false })
    expect(failed.annotations['kata-lcm.katacontainers.io/last-error']).toMatch(/install Job .* failed/)
    // The revert was scoped: the release now installs 3.32.0 on the failed node only.
    expect(await w.release()).toMatchObject({ chartVersion: '3.32.0' })
    expect((await w.userValues()).job).toMatchObject({ nodes: [names[3]] })
    const jobs = await w.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: w.namespace })
    const oldInstalls = jobs.items.filter((j) =>
      (j.spec?.template.spec?.containers ?? []).some((c) => c.image?.endsWith(':3.32.0')),
    )
    expect(oldInstalls.map((j) => j.spec?.template.spec?.nodeName)).toEqual([names[3]])
    // job mode never waits on a DaemonSet: there is none
    await expect(w.apps.readNamespacedDaemonSet({ namespace: w.namespace, name: 'kata-deploy' })).rejects.toThrow()
  })

  it("job mode happy path ends with the operator's own job.nodes back in the release", async () => {
    const names = [1, 2, 3].map((i) => World.nodeName('n', 'jh', i))
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.32.0', mode: 'job' })
    const result = await w.upgrade('3.33.0', ['--batch-size', '2'])
    expect(result.code, result.stderr).toBe(0)
    for (const name of names) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.33.0' })
    expect(await w.release()).toMatchObject({ chartVersion: '3.33.0' })
    // finalize: job.nodes is what the operator had (unset), so a later plain helm upgrade reaches every node
    const values = await w.userValues()
    expect(values.job).toBeUndefined()
    expect(values.deploymentMode).toBe('job')
  })

  it('daemonset mode, batch 2 over 5 nodes: three waves, every node verified', async () => {
    const names = [1, 2, 3, 4, 5].map((i) => World.nodeName('n', 'ds5', i))
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
    const result = await w.upgrade('3.28.0', ['--batch-size', '2', '--json'])
    expect(result.code, result.stderr).toBe(0)
    const report = JSON.parse(result.stdout) as Report
    expect(report.mode).toBe('daemonset')
    expect(report.waves).toEqual([names.slice(0, 2), names.slice(2, 4), names.slice(4)])
    for (const name of names)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    expect(Object.values(await w.kataDeployPods()).every((p) => p.current && p.image.endsWith(':3.28.0'))).toBe(true)
  })

  it('refuses a mode mismatch and prints the one-time migration command, writing nothing', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('n', 'mm', 1) }], version: '3.32.0' })
    const since = new Date()
    const result = await w.upgrade('3.33.0', ['--deployment-mode', 'job'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/release is in daemonset mode, not job/)
    expect(result.stderr).toMatch(/helm upgrade kata-deploy .* --set deploymentMode=job/)
    expect(await w.writesSince(since)).toEqual([])
  })

  it('auto-detects job mode and refuses a target below its minimum, writing nothing', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('n', 'bm', 1) }], version: '3.32.0', mode: 'job' })
    const since = new Date()
    const result = await w.upgrade('3.28.0', ['--allow-downgrade'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--target-version: 3\.28\.0 is below 3\.32\.0.*job mode/)
    const daemonset = await w.upgrade('3.27.0', ['--allow-downgrade', '--deployment-mode', 'daemonset'])
    expect(daemonset.code).toBe(2)
    expect(daemonset.stderr).toMatch(/release is in job mode, not daemonset/)
    expect(await w.writesSince(since)).toEqual([])
  })

  it('refuses a daemonset target below 3.27.0 (no OnDelete) before any write', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('n', 'od', 1) }], version: '3.26.0' })
    const since = new Date()
    const result = await w.upgrade('3.26.0')
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--target-version: 3\.26\.0 is below 3\.27\.0/)
    expect(await w.writesSince(since)).toEqual([])
  })
})
