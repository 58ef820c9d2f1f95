/**
 * A mode is its strategy and one entry in src/lifecycle/modes/index.ts's list: this test adds a toy
 * mode (test/fakes/toy.strategy.ts) to that list and nothing else (vi.mock replaces the list with one
 * more entry; every other file of src/ is as shipped), then plans, runs and rolls back a fleet whose
 * release says `deploymentMode: toy`. docs/architecture.md's "Adding a mode" lists these files.
 */
import { describe, expect, it, vi } from 'vitest'
import { toyStrategy, TOY_VERSION } from '../../fakes/toy.strategy.js'

vi.mock('../../../src/lifecycle/modes/index.js', async (importOriginal) => {
  const shipped = await importOriginal<typeof import('../../../src/lifecycle/modes/index.js')>()
  const STRATEGIES = [...shipped.STRATEGIES, toyStrategy]
  return { ...shipped, STRATEGIES, ...shipped.modeTable(STRATEGIES) }
})

const { checkPrerequisites } = await import('../../../src/lifecycle/checks/prerequisites.js')
const { upgrade } = await import('../../../src/lifecycle/services/upgrade.service.js')
const { rollbackNode } = await import('../../../src/lifecycle/services/rollback.service.js')
const { parsePolicy } = await import('../../../src/lifecycle/policy/policy.js')
const { scenario } = await import('../../fakes/scenario.js')

describe('a toy mode, added in modes/ only', () => {
  it('is planned, run wave by wave and rolled back through the same engine, and the policy takes its name', async () => {
    const s = await scenario({ nodes: 3, userValues: { deploymentMode: 'toy' } })
    for (const n of s.nodeNames) await s.cluster.patchNode(n, { annotations: { [TOY_VERSION]: s.version } })
    const request = s.upgradeRequest({ batchSize: 2 })

    const plan = await checkPrerequisites(s.deps, request, 'run-plan')
    expect(plan.strategy.mode).toBe('toy')
    expect(plan.record.waves).toEqual([['node-1', 'node-2'], ['node-3']])
    expect(plan.record).toMatchObject({ mode: 'toy', previousVersion: s.version, targetVersion: s.target })

    const report = await upgrade(s.deps, request, 'run-1')
    expect(report).toMatchObject({ outcome: 'success', mode: 'toy', mixedFleet: false })
    for (const n of s.nodeNames) {
      expect(s.status(n)).toBe('completed')
      expect(s.cluster.node(n).annotations[TOY_VERSION]).toBe(s.target)
      expect(s.cluster.node(n).unschedulable).toBe(false)
    }

    const back = await rollbackNode(s.deps, s.rollbackRequest('node-2'), 'run-2')
    expect(back).toMatchObject({ outcome: 'success', mode: 'toy', mixedFleet: true })
    expect(s.status('node-2')).toBe('rolled-back')
    expect(s.cluster.node('node-2').annotations[TOY_VERSION]).toBe(s.version)
    expect(s.cluster.node('node-1').annotations[TOY_VERSION]).toBe(s.target)

    // The policy's schema takes the mode's name from the same list.
    expect(
      parsePolicy('apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\ndeploymentMode: toy\n', 'p.yaml')
        .deploymentMode,
    ).toBe('toy')
  })
})
