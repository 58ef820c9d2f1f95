/**
 * The alert gate on the test bed: the real CLI against a real control plane (kwok nodes) and a real
 * Prometheus (harness/prometheus.ts) whose alert the test fires and clears. An alert firing before
 * wave 2 holds it (status says so) and its clearing lets it go on; a Prometheus that is down holds,
 * and the hold's timeout stops the run with exit 3, nothing touched and the run resumable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startPrometheus, unreachablePrometheusUrl, type TestPrometheus } from '../harness/prometheus.js'
import { useWorlds, World } from '../lifecycle/world.js'

const open = useWorlds()
let prom: TestPrometheus

beforeAll(async () => {
  prom = await startPrometheus({ labels: { team: 'kata' } })
}, 90_000)

afterAll(async () => {
  await prom?.stop()
})

describe('the alert gate', () => {
  it('an alert firing before wave 2 holds it, status names it, and its clearing lets the run go on', async () => {
    const w = await open({ nodes: [1, 2].map((i) => ({ name: World.nodeName('ag', 'hold', i) })), version: '3.27.0' })
    const [one, two] = w.nodeNames as [string, string]
    // The soak after wave 1 leaves the alert time to fire (Prometheus scrapes and evaluates every second).
    const gate = ['--alert-url', prom.url, '--alert-match', `alertname="${prom.alertName}",team="kata"`]
    const { child, done } = w.spawnCli(w.upgradeArgs('3.28.0', ['--batch-size', '1', '--soak', '10s', ...gate]))
    let stderr = ''
    child.stderr!.on('data', (d: string) => (stderr += d))
    await w.waitNodeStatus(one, 'completed', 90_000)
    prom.fire()
    await prom.waitForAlert('firing')
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no hold in:\n${stderr}`)), 60_000)
      child.stderr!.on('data', () => {
        if (/wave 2 is held: 1 alert\(s\) firing/.test(stderr)) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    const status = await w.cli(['status', '--node-selector', `kata-lcm.test/world=${w.id}`])
    expect(status.stdout).toMatch(
      new RegExp(`wave 2 is HELD by alerts since .*: 1 alert\\(s\\) firing that match .*${prom.alertName}\\{`),
    )
    expect((await w.node(two)).status).toBeUndefined()
    prom.clear()
    const r = await done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/wave 2: the alerts that held it cleared; it starts/)
    expect(await w.node(two)).toMatchObject({ status: 'completed', version: '3.28.0' })
  }, 240_000)

  it('a Prometheus that is down holds; the timeout stops the run with exit 3, nothing touched, and a rerun goes on', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('ag', 'down', 1) }], version: '3.27.0' })
    const [node] = w.nodeNames as [string]
    const down = await unreachablePrometheusUrl()
    const since = new Date()
    const r = await w.upgrade('3.28.0', ['--alert-url', down, '--alert-timeout', '20s'])
    expect(r.code, r.stderr).toBe(3)
    expect(r.stderr).toMatch(/wave 1 is held: Prometheus cannot be asked \(.*ECONNREFUSED/)
    expect(r.stdout).toMatch(/stopped: firing alerts held the next wave for longer than the alert timeout/)
    expect((await w.node(node)).status).toBeUndefined()
    // Nothing but the run's own record and lease was written.
    expect((await w.writesSince(since)).filter((x) => !/secrets|leases/.test(x))).toEqual([])
    const again = await w.upgrade('3.28.0', ['--alert-url', prom.url])
    expect(again.code, again.stderr).toBe(0)
    expect(await w.node(node)).toMatchObject({ status: 'completed', version: '3.28.0' })
  }, 180_000)
})
