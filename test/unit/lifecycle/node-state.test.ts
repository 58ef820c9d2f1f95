import { describe, expect, it } from 'vitest'
import {
  Annotation,
  canTransition,
  isInFlight,
  NODE_STATUSES,
  readStatus,
  STATUS_ANNOTATION,
  TRANSITIONS,
  type NodeStatus,
} from '../../../src/lifecycle/engine/node-state.js'
import { releaseCordon, transition } from '../../../src/lifecycle/engine/node-ops.js'
import { FakeClock } from '../../fakes/fake-clock.js'
import { FakeCluster } from '../../fakes/fake-cluster.js'
import { FakeHelm } from '../../fakes/fake-helm.js'
import { RecordingEvents } from '../../fakes/recording-events.js'

describe('transition table', () => {
  it.each<[NodeStatus | undefined, NodeStatus]>([
    [undefined, 'cordoned'],
    [undefined, 'rolling-back'],
    // a node left preparing by an earlier kata-lcm is resumed
    ['preparing', 'cordoned'],
    ['cordoned', 'draining'],
    ['cordoned', 'upgrading'],
    ['draining', 'upgrading'],
    ['upgrading', 'verifying'],
    ['verifying', 'completed'],
    ['verifying', 'rolling-back'],
    ['rolling-back', 'rolled-back'],
    ['rolling-back', 'failed'],
    ['completed', 'cordoned'],
    ['completed', 'rolling-back'],
    ['rolled-back', 'cordoned'],
    ['failed', 'rolling-back'],
  ])('allows %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true)
  })

  it.each<[NodeStatus | undefined, NodeStatus]>([
    [undefined, 'completed'],
    // nothing writes preparing any more: the record and the cordon are one write
    [undefined, 'preparing'],
    ['completed', 'preparing'],
    ['rolled-back', 'preparing'],
    [undefined, 'rolled-back'],
    ['preparing', 'upgrading'],
    ['preparing', 'completed'],
    ['cordoned', 'verifying'],
    ['upgrading', 'completed'],
    ['completed', 'verifying'],
    ['completed', 'rolled-back'],
    ['rolling-back', 'completed'],
    ['rolling-back', 'preparing'],
    ['rolled-back', 'completed'],
    ['failed', 'completed'],
    // a rerun picks an interrupted node up where it is: it never goes back to the start
    ['cordoned', 'preparing'],
    ['upgrading', 'cordoned'],
    ['verifying', 'cordoned'],
    ['failed', 'cordoned'],
    ['rolling-back', 'cordoned'],
  ])('refuses %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false)
  })

  it('names every status and only known statuses as targets', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...NODE_STATUSES].sort())
    for (const targets of Object.values(TRANSITIONS)) for (const t of targets) expect(NODE_STATUSES).toContain(t)
  })

  it('lets every status reach a rollback, and a rollback end only in rolled-back or failed', () => {
    for (const s of NODE_STATUSES) if (s !== 'rolling-back') expect(canTransition(s, 'rolling-back'), s).toBe(true)
    expect(TRANSITIONS['rolling-back']).toEqual(['rolled-back', 'failed'])
  })
})

describe('readStatus / isInFlight', () => {
  it.each([
    [{ [STATUS_ANNOTATION]: 'verifying' }, 'verifying'],
    [{ [STATUS_ANNOTATION]: 'rolled-back' }, 'rolled-back'],
    [{ [STATUS_ANNOTATION]: 'upgraded' }, undefined],
    [{ [STATUS_ANNOTATION]: '' }, undefined],
    [{}, undefined],
  ])('%j -> %s', (annotations, expected) => {
    expect(readStatus(annotations)).toBe(expected)
  })

  it.each<[NodeStatus | undefined, boolean]>([
    ['preparing', true],
    ['cordoned', true],
    ['draining', true],
    ['upgrading', true],
    ['verifying', true],
    ['rolling-back', true],
    ['completed', false],
    ['rolled-back', false],
    ['failed', false],
    [undefined, false],
  ])('%s in flight: %s', (status, expected) => {
    expect(isInFlight(status)).toBe(expected)
  })
})

describe('transition (node-ops)', () => {
  async function setup(annotations: Record<string, string>) {
    const clock = new FakeClock()
    const cluster = new FakeCluster(clock)
    const events = new RecordingEvents()
    cluster.addNode({ name: 'n1', annotations: { 'example.com/owner': 'team-a', ...annotations } })
    return { cluster, events, deps: { cluster, helm: new FakeHelm(cluster), clock, events } }
  }

  it('writes status and phase time in one merge patch, keeps foreign annotations, records an Event', async () => {
    const { cluster, events, deps } = await setup({})
    const updated = await transition(deps, cluster.node('n1'), 'cordoned', {
      message: 'go',
      unschedulable: true,
      annotations: { [Annotation.runId]: 'r1' },
    })
    expect(updated.unschedulable).toBe(true)
    expect(updated.annotations).toMatchObject({
      [STATUS_ANNOTATION]: 'cordoned',
      [Annotation.runId]: 'r1',
      'example.com/owner': 'team-a',
    })
    expect(cluster.node('n1').annotations[Annotation.phaseStartedAt]).toBe('2025-06-01T10:00:00.000Z')
    expect(cluster.writes.filter((w) => w.resource === 'nodes')).toHaveLength(1)
    expect(cluster.nodeEvents).toEqual([{ node: 'n1', reason: 'KataUpgradeCordoned', message: 'go', type: 'Normal' }])
    expect(events.ofType('node-status')).toEqual([
      { type: 'node-status', node: 'n1', status: 'cordoned', message: 'go' },
    ])
  })

  it('refuses a transition the table does not allow, writing nothing', async () => {
    const { cluster, deps } = await setup({ [STATUS_ANNOTATION]: 'completed' })
    await expect(transition(deps, cluster.node('n1'), 'verifying', { message: 'x' })).rejects.toThrow(
      /refusing status completed -> verifying/,
    )
    expect(cluster.writes).toEqual([])
  })

  it('re-entering the same state is allowed (idempotent rerun)', async () => {
    const { cluster, deps } = await setup({ [STATUS_ANNOTATION]: 'verifying' })
    await transition(deps, cluster.node('n1'), 'verifying', { message: 'again' })
    expect(cluster.node('n1').annotations[STATUS_ANNOTATION]).toBe('verifying')
  })

  it('releaseCordon uncordons only a node kata-lcm cordoned', () => {
    const base = { name: 'n', uid: 'u', labels: {}, taints: [], unschedulable: true }
    expect(releaseCordon({ ...base, annotations: { [Annotation.cordonedByUs]: 'true' } })).toEqual({
      unschedulable: false,
      annotations: { [Annotation.cordonedByUs]: null },
    })
    expect(releaseCordon({ ...base, annotations: {} })).toEqual({ annotations: { [Annotation.cordonedByUs]: null } })
  })
})
