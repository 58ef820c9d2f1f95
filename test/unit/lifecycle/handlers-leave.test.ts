import { describe, expect, it } from 'vitest'
import { checkLeft, type WaveState } from '../../../src/lifecycle/engine/phases.js'
import { Annotation } from '../../../src/lifecycle/engine/node-state.js'
import type { NodeView } from '../../../src/ports/cluster.port.js'

const node = (name: string, status?: string): NodeView =>
  ({
    name,
    labels: {},
    annotations: status ? { [Annotation.status]: status } : {},
    taints: [],
    unschedulable: false,
  }) as unknown as NodeView

const stateOf = (nodes: NodeView[], gone: string[] = []) =>
  ({ nodes: new Map(nodes.map((n) => [n.name, n])), gone: new Set(gone) }) as unknown as WaveState

describe('a handler is held to the states it declares', () => {
  it('passes nodes left in a declared state, or rolling-back after a failure, or deleted meanwhile', () => {
    const state = stateOf([node('a', 'cordoned'), node('b', 'rolling-back'), node('c')], ['c'])
    expect(() => checkLeft(state, 'the prepare handler', ['a', 'b', 'c'], ['rolling-back', 'cordoned'])).not.toThrow()
  })

  it("stops on a node left in a state the handler does not declare, or without one: kata-lcm's bug, named", () => {
    expect(() =>
      checkLeft(stateOf([node('a', 'upgrading')]), 'the prepare handler', ['a'], ['rolling-back', 'cordoned']),
    ).toThrow('kata-lcm bug: the prepare handler left a upgrading, not rolling-back or cordoned')
    expect(() => checkLeft(stateOf([node('a')]), 'wave 1', ['a'], ['completed'])).toThrow(
      'kata-lcm bug: wave 1 left a without a state, not completed',
    )
  })
})
