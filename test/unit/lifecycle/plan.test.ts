import { describe, expect, it } from 'vitest'
import { kataDeployNames } from '../../../src/lifecycle/context.js'
import { installMarker } from '../../../src/lifecycle/modes/job.strategy.js'
import { InputError } from '../../../src/lifecycle/errors.js'
import {
  describeSelection,
  hasTaint,
  planWaves,
  selectNodes,
  validateLabelSelector,
  validateSelection,
} from '../../../src/lifecycle/run/plan.js'
import type { NodeView, Taint } from '../../../src/ports/cluster.port.js'

function node(name: string, taints: Taint[] = []): NodeView {
  return { name, uid: name, labels: {}, annotations: {}, taints, unschedulable: false }
}

describe('validateLabelSelector', () => {
  it.each([
    'node-pool=kata',
    'node-pool==kata',
    'env!=prod',
    'katacontainers.io/kata-runtime',
    '!excluded',
    'zone in (a,b)',
    'zone in (a, b)',
    'tier notin (frontend)',
    'node-pool=kata,zone in (a,b),!excluded',
    'example.com/pool = kata',
    'empty=',
  ])('accepts %s', (selector) => {
    expect(() => validateLabelSelector(selector)).not.toThrow()
  })

  it.each([
    ['', /empty requirement/],
    ['a,', /empty requirement/],
    ['a=b=c', /not a valid label requirement/],
    ['zone in a,b', /not a valid label requirement/],
    ['!zone in (a)', /not a valid label requirement/],
    ['-bad=x', /not a valid label requirement/],
    ['pool=has space', /not a valid label requirement/],
    ['pool=val!', /not a valid label requirement/],
    ['a=(b)', /not a valid label requirement/],
  ])('refuses %j naming --node-selector', (selector, message) => {
    let error: unknown
    try {
      validateLabelSelector(selector)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).field).toBe('--node-selector')
    expect((error as Error).message).toMatch(message)
  })
})

describe('validateSelection', () => {
  it('refuses a taint value without a key', () => {
    expect(() => validateSelection({ taintValue: 'pending' })).toThrow(
      expect.objectContaining({ field: '--node-taint-value' }),
    )
  })

  it('refuses an invalid taint key', () => {
    expect(() => validateSelection({ taintKey: 'bad key' })).toThrow(
      expect.objectContaining({ field: '--node-taint-key' }),
    )
  })

  it('accepts key alone, key+value, and an empty value', () => {
    expect(() => validateSelection({ taintKey: 'kata-lifecycle-manager' })).not.toThrow()
    expect(() => validateSelection({ taintKey: 'example.com/maint', taintValue: 'pending' })).not.toThrow()
    expect(() => validateSelection({ taintValue: '' })).not.toThrow()
  })
})

describe('hasTaint', () => {
  const taints: Taint[] = [
    { key: 'maint', value: 'pending', effect: 'NoSchedule' },
    { key: 'bare', effect: 'NoExecute' },
  ]
  it.each<[string, string | undefined, boolean]>([
    ['maint', undefined, true],
    ['maint', '', true],
    ['maint', 'pending', true],
    ['maint', 'done', false],
    ['bare', undefined, true],
    ['bare', 'x', false],
    ['other', undefined, false],
  ])('key %s value %s -> %s', (key, value, expected) => {
    expect(hasTaint(taints, key, value)).toBe(expected)
  })
})

describe('selectNodes', () => {
  // The label part is evaluated by the API server: these are the nodes it returned for the selector.
  const listed = [
    node('worker-c', [{ key: 'maint', value: 'pending', effect: 'NoSchedule' }]),
    node('worker-a', [{ key: 'maint', value: 'done', effect: 'NoSchedule' }]),
    node('worker-b', [{ key: 'maint', value: 'pending', effect: 'NoSchedule' }]),
    node('worker-d'),
  ]

  it('sorts by name whatever order the API returned', () => {
    expect(selectNodes(listed, {}).map((n) => n.name)).toEqual(['worker-a', 'worker-b', 'worker-c', 'worker-d'])
    expect(selectNodes([...listed].reverse(), {}).map((n) => n.name)).toEqual([
      'worker-a',
      'worker-b',
      'worker-c',
      'worker-d',
    ])
  })

  it.each([
    [{ taintKey: 'maint' }, ['worker-a', 'worker-b', 'worker-c']],
    [{ taintKey: 'maint', taintValue: 'pending' }, ['worker-b', 'worker-c']],
    // AND: the label selector already narrowed `listed` on the server; the taint narrows further
    [{ labelSelector: 'pool=kata', taintKey: 'maint', taintValue: 'pending' }, ['worker-b', 'worker-c']],
    [{ taintKey: 'absent' }, []],
  ])('%j -> %j', (selection, expected) => {
    expect(selectNodes(listed, selection).map((n) => n.name)).toEqual(expected)
  })

  it('does not reorder its input', () => {
    const input = [...listed]
    selectNodes(input, {})
    expect(input.map((n) => n.name)).toEqual(listed.map((n) => n.name))
  })
})

describe('planWaves', () => {
  const five = ['n1', 'n2', 'n3', 'n4', 'n5']
  it.each([
    [1, [['n1'], ['n2'], ['n3'], ['n4'], ['n5']]],
    [2, [['n1', 'n2'], ['n3', 'n4'], ['n5']]],
    [
      3,
      [
        ['n1', 'n2', 'n3'],
        ['n4', 'n5'],
      ],
    ],
    [5, [five]],
    [10, [five]],
  ])('batch size %i over 5 nodes', (batch, waves) => {
    expect(planWaves(five, batch)).toEqual(waves)
  })

  it('no nodes, no waves', () => {
    expect(planWaves([], 2)).toEqual([])
  })

  it.each([0, -1, 1.5, Number.NaN])('refuses batch size %s', (batch) => {
    expect(() => planWaves(five, batch)).toThrow(expect.objectContaining({ field: '--batch-size' }))
  })
})

describe('describeSelection', () => {
  it.each([
    [{}, 'all nodes'],
    [{ labelSelector: 'a=b' }, 'label selector "a=b"'],
    [{ labelSelector: 'a=b', taintKey: 'k', taintValue: 'v' }, 'label selector "a=b" and taint k=v'],
  ])('%j', (selection, text) => {
    expect(describeSelection(selection)).toBe(text)
  })
})

describe('kata-deploy names', () => {
  it('follow env.multiInstallSuffix as the chart does (kata-deploy-<suffix>)', () => {
    expect(kataDeployNames({})).toEqual({ daemonSet: 'kata-deploy', podSelector: 'name=kata-deploy' })
    expect(kataDeployNames({ env: { multiInstallSuffix: '' } })).toEqual({
      daemonSet: 'kata-deploy',
      podSelector: 'name=kata-deploy',
    })
    expect(kataDeployNames({ env: { multiInstallSuffix: 'blue' } })).toEqual({
      daemonSet: 'kata-deploy-blue',
      podSelector: 'name=kata-deploy-blue',
    })
    expect(installMarker({ env: { multiInstallSuffix: 'blue' } })).toBe('kata-deploy.katacontainers.io/blue=true')
    expect(installMarker({})).toBe('kata-deploy.katacontainers.io/default=true')
  })
})
