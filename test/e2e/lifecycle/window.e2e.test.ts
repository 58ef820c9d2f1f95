/**
 * Maintenance windows on a real control plane: a wave starts only inside one. The run waits (a timer
 * to the opening, its lease held), status says what it waits for, then the wave runs.
 */
import { describe, expect, it } from 'vitest'
import { useWorlds, World } from './world.js'

const open = useWorlds()
const hhmm = (at: Date) => at.toISOString().slice(11, 16)

describe('maintenance windows', () => {
  it('a run started outside its window waits for it (status names the wait), then upgrades inside it', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('mw', 'win', 1) }], version: '3.27.0' })
    const [node] = w.nodeNames as [string]
    // A window that opens at a whole minute at least 10 s away and lasts ten minutes, in UTC.
    const opens = new Date(Math.ceil((Date.now() + 10_000) / 60_000) * 60_000)
    const window = `${hhmm(opens)}-${hhmm(new Date(opens.getTime() + 600_000))} UTC`
    const { child, done } = w.spawnCli(w.upgradeArgs('3.28.0', ['--window', window]))
    let stderr = ''
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (d: string) => {
        stderr += d
        if (/waits for a maintenance window/.test(stderr)) resolve()
      })
    })
    const status = await w.cli(['status', '--node-selector', `kata-lcm.test/world=${w.id}`])
    // The window is 10 to 70 s away: "opens in 45s", or "1m" past a minute.
    expect(status.stdout).toMatch(/wave 1 waits for the maintenance window, which opens in (\d+s|1m) \(at /)
    expect((await w.node(node)).status).toBeUndefined()
    const r = await done
    expect(r.code, r.stderr).toBe(0)
    expect(Date.now()).toBeGreaterThanOrEqual(opens.getTime())
    expect(r.stderr).toMatch(
      new RegExp(`wave 1 waits for a maintenance window \\(${window}\\): it opens in (\\d+s|1m)`),
    )
    expect(await w.node(node)).toMatchObject({ status: 'completed', version: '3.28.0' })
    // Its phases ran inside the window.
    const started = (await w.node(node)).annotations['kata-lcm.katacontainers.io/phase-started-at']
    expect(new Date(started!).getTime()).toBeGreaterThanOrEqual(opens.getTime())
  })

  it('a time zone that does not exist is bad input (exit 2), nothing written', async () => {
    const w = await open({ nodes: [{ name: World.nodeName('mw', 'tz', 1) }], version: '3.27.0' })
    const since = new Date()
    const r = await w.upgrade('3.28.0', ['--window', 'Mon-Fri 02:00-05:00 Mars/Olympus_Mons'])
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toMatch(/--window: time zone "Mars\/Olympus_Mons" does not exist/)
    expect(await w.writesSince(since)).toEqual([])
  })
})
