import path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { e2eCluster } from '../harness/cluster.js'
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js'
import { packageFixtureCharts, World } from '../lifecycle/world.js'

let world: World | undefined
let proxy: FaultProxy | undefined

beforeAll(packageFixtureCharts)
afterEach(async () => {
  await proxy?.close()
  await world?.teardown()
  world = undefined
})

describe('an API server that fails about 10% of calls', () => {
  it('a multi-node upgrade still completes correctly through 500s, 429s, resets and lost responses', async () => {
    const names = [1, 2, 3].map((i) => World.nodeName('n', 'flt', i))
    world = new World({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
    const w = await world.setup()
    proxy = await startFaultProxy(
      e2eCluster().kubeconfigPath,
      path.join(path.dirname(w.verificationFile), 'faulty.kubeconfig'),
      { rate: 0.1, seed: 7 },
    )
    const result = await w.cli(w.upgradeArgs('3.28.0', ['--batch-size', '2']), {}, proxy.kubeconfigPath)
    expect(result.code, result.stderr).toBe(0)
    for (const name of names)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    const pods = await w.kataDeployPods()
    expect(Object.values(pods).every((p) => p.current && p.ready && p.image.endsWith(':3.28.0'))).toBe(true)
    expect(await w.release()).toMatchObject({ chartVersion: '3.28.0', status: 'deployed' })
    const injected = Object.values(proxy.stats.faults).reduce((a, b) => a + b, 0)
    console.error('[faults] kata-lcm requests and injected faults:', JSON.stringify(proxy.stats))
    // the faults really happened: about a tenth of kata-lcm's requests
    expect(injected, JSON.stringify(proxy.stats)).toBeGreaterThanOrEqual(Math.floor(proxy.stats.requests * 0.04))
    for (const kind of Object.keys(proxy.stats.faults))
      expect(proxy.stats.faults[kind as keyof typeof proxy.stats.faults], kind).toBeGreaterThan(0)
  })
})
