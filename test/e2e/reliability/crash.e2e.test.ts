import { describe, expect, it } from 'vitest'
import { waitForList, type KubeObject } from '../harness/wait.js'
import { useWorlds, World } from '../lifecycle/world.js'

const open = useWorlds()

/** A helm subprocess orphaned by the kill may still be finishing: wait (watch) until no release revision is pending. */
async function helmSettled(w: World): Promise<void> {
  type Secret = KubeObject & { metadata?: { labels?: Record<string, string> } }
  await waitForList<Secret>(
    w.kc,
    `/api/v1/namespaces/${w.namespace}/secrets`,
    (secrets) => !secrets.some((s) => (s.metadata?.labels?.status ?? '').startsWith('pending')),
    90_000,
    { labelSelector: 'owner=helm' },
  )
}

describe('kill -9 at every phase boundary, then rerun (real control plane)', () => {
  // [the status of `watched` at which the process is killed, the rerun's exit code]
  const cases: [string, number][] = [
    ['cordoned', 0],
    ['upgrading', 0],
    ['verifying', 0],
    ['completed', 0],
    ['rolling-back', 3],
  ]

  it.each(cases)(
    'killed when a node turns %s: the rerun converges, nothing left cordoned, each node upgraded at most once',
    async (status, rerunCode) => {
      const failing = status === 'rolling-back'
      const names = [
        World.nodeName('a', `k${status.slice(0, 4)}`, 1),
        World.nodeName(failing ? 'vfail' : 'b', `k${status.slice(0, 4)}`, 2),
      ]
      const w = await open({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
      const watched = failing ? names[1]! : names[0]!
      const before = await w.release()
      const since = new Date()
      const { child, done } = w.spawnCli(w.upgradeArgs('3.28.0'))
      await w.waitNodeStatus(watched, status)
      child.kill('SIGKILL')
      expect((await done).code).toBe(137)
      await helmSettled(w)
      expect((await w.cli(['unlock'])).code).toBe(0)

      const rerun = await w.upgrade('3.28.0')
      expect(rerun.code, rerun.stderr).toBe(rerunCode)
      for (const name of names) expect((await w.node(name)).unschedulable, `${name} left cordoned`).toBe(false)
      expect(await w.node(names[0]!)).toMatchObject({ status: 'completed', version: '3.28.0' })
      expect(await w.node(names[1]!)).toMatchObject(
        failing ? { status: 'rolled-back', version: '3.27.0' } : { status: 'completed', version: '3.28.0' },
      )
      // one upgrade + (finalize | the revert): a rerun never re-upgrades helm needlessly
      expect((await w.release()).revision - before.revision).toBeLessThanOrEqual(2)
      // each node's kata-deploy pod restarted once for the upgrade (+ once for a revert)
      expect(await w.kataDeployPodDeletesSince(since)).toBeLessThanOrEqual(failing ? 3 : 2)
      expect(rerun.stderr).toMatch(/resuming/)
    },
  )
})

describe('signals and a second operator', () => {
  it('SIGTERM: the current wave finishes, no new node starts, the run says how to resume', async () => {
    const names = [1, 2, 3].map((i) => World.nodeName('n', 'sig', i))
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
    const { child, done } = w.spawnCli(w.upgradeArgs('3.28.0'))
    await w.waitNodeStatus(names[0]!, 'upgrading')
    child.kill('SIGTERM')
    const result = await done
    expect(result.code, result.stderr).toBe(6)
    expect(result.stderr).toMatch(/finishing the current wave/)
    expect(result.stdout).toMatch(/rerun the same kata-lcm upgrade command/)
    expect(await w.node(names[0]!)).toMatchObject({ status: 'completed', unschedulable: false })
    for (const name of names.slice(1))
      expect(await w.node(name)).toMatchObject({ status: undefined, unschedulable: false })
    const rerun = await w.upgrade('3.28.0')
    expect(rerun.code, rerun.stderr).toBe(0)
    for (const name of names) expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0' })
  })

  it('two concurrent runs: exactly one proceeds, the other is refused with the holder', async () => {
    const names = [1, 2].map((i) => World.nodeName('n', 'two', i))
    const w = await open({ nodes: names.map((name) => ({ name })), version: '3.27.0' })
    const [one, two] = [w.spawnCli(w.upgradeArgs('3.28.0')), w.spawnCli(w.upgradeArgs('3.28.0'))]
    const results = await Promise.all([one.done, two.done])
    expect(results.map((r) => r.code).sort()).toEqual([0, 5])
    expect(results.find((r) => r.code === 5)!.stderr).toMatch(/another kata-lcm run holds the lock .*pid \d+ run/)
    for (const name of names)
      expect(await w.node(name)).toMatchObject({ status: 'completed', version: '3.28.0', unschedulable: false })
    // the lock is gone after the run: a third run starts (and has nothing to do)
    const third = await w.upgrade('3.28.0')
    expect(third.code, third.stderr).toBe(0)
    expect(third.stdout).toMatch(/nothing to do/)
  })
})
