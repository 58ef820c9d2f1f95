import { describe, expect, it } from 'vitest'
import { STATUS_ANNOTATION } from '../../../src/lifecycle/engine/node-state.js'
import { planStep, waveStep } from '../../../src/lifecycle/services/steps.service.js'
import { upgrade } from '../../../src/lifecycle/services/upgrade.service.js'
import { RELEASE, scenario, type Scenario } from '../../fakes/scenario.js'

const HOLDER = 'argo/wf-1'

/** A step plan, the wave prepared, then an upgrade attempt whose helm was lost: the revision stays pending. */
async function lostUpgrade(s: Scenario, finishAfterMs?: number): Promise<void> {
  await planStep(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-1', HOLDER)
  await waveStep(s.deps, RELEASE, 1, 'prepare', HOLDER)
  s.helm.leavePendingUpgrade(RELEASE.name, RELEASE.namespace, finishAfterMs)
}

describe('a release an earlier attempt left pending (its helm lost with its step pod, or still running)', () => {
  it('a helm still running: the retried step waits for its verdict, then upgrades; nothing rolled back', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    await lostUpgrade(s, 20_000)
    const started = s.clock.now().getTime()
    await waveStep(s.deps, RELEASE, 1, 'upgrade', HOLDER)
    expect(s.clock.now().getTime() - started).toBeGreaterThanOrEqual(20_000)
    expect(s.helm.rollbacks).toEqual([])
    for (const node of s.nodeNames) expect(s.cluster.node(node).annotations[STATUS_ANNOTATION]).toBe('verifying')
  })

  it('a helm that is gone: past --helm-timeout the pending revision is rolled back without hooks, then the wave upgrades', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    await lostUpgrade(s)
    const started = s.clock.now().getTime()
    await waveStep(s.deps, RELEASE, 1, 'upgrade', HOLDER)
    // --helm-timeout 10m (the scenario's) plus 30 s for helm to have written its verdict.
    expect(s.clock.now().getTime() - started).toBeGreaterThanOrEqual(630_000)
    expect(s.helm.rollbacks).toEqual([{ ...RELEASE, revision: 1 }])
    expect(s.events.ofType('warning').map((e) => e.message)).toContainEqual(
      expect.stringMatching(
        /revision 2 stayed pending-upgrade past --helm-timeout .* rolling the release back to revision 1 without hooks/,
      ),
    )
    for (const node of s.nodeNames) expect(s.cluster.node(node).annotations[STATUS_ANNOTATION]).toBe('verifying')
  })

  it('the CLI resuming its interrupted run goes ahead; without a kata-lcm run the pending release is refused', async () => {
    const s = await scenario({ mode: 'job', nodes: 2 })
    await lostUpgrade(s, 5_000)
    await s.cluster.unlock(RELEASE.namespace, `kata-lcm-${RELEASE.name}`, HOLDER)
    const report = await upgrade(s.deps, s.upgradeRequest({ batchSize: 2 }), 'run-2')
    expect(report.outcome).toBe('success')

    const other = await scenario({ mode: 'job', nodes: 1 })
    other.helm.leavePendingUpgrade(RELEASE.name, RELEASE.namespace)
    await expect(upgrade(other.deps, other.upgradeRequest(), 'run-1')).rejects.toThrow(
      /is "pending-upgrade", not deployed/,
    )
  })
})
