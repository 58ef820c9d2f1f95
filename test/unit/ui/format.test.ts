import { describe, expect, it } from 'vitest'
import { stripVTControlCharacters } from 'node:util'
import { Chalk } from 'chalk'
import { parseDuration } from '../../../src/flags.js'
import { describeEvent } from '../../../src/ui/plain-progress.js'
import { table } from '../../../src/ui/report-format.js'

describe('parseDuration', () => {
  it.each([['90s', 90_000], ['5m', 300_000], ['1h', 3_600_000], ['1500ms', 1500], ['30', 30_000], ['2.5s', 2500]])('%s', (text, ms) => {
    expect(parseDuration('--x', text)).toBe(ms)
  })
  it.each(['soon', '5 m', '-1s', '0s', ''])('refuses %j naming the flag', (text) => {
    expect(() => parseDuration('--verification-timeout', text)).toThrow(/^--verification-timeout: /)
  })
})

describe('table', () => {
  it('aligns on visible width, colour codes included', () => {
    const green = new Chalk({ level: 1 }).green
    const lines = table(['NODE', 'STATUS', 'V'], [['a', green('completed'), '1'], ['bb', 'x', '2']]).map((l) => stripVTControlCharacters(l))
    expect(lines).toEqual(['NODE  STATUS     V', 'a     completed  1', 'bb    x          2'])
  })
})

describe('plain progress lines', () => {
  it('says what happened, and nothing for a phase that went well', () => {
    expect(describeEvent({ type: 'wave-start', wave: 1, waves: 3, nodes: ['a', 'b'] })).toBe('wave 1/3: a, b')
    expect(describeEvent({ type: 'phase-end', wave: 1, phase: 'verify', nodes: ['a'], failures: [] })).toBeUndefined()
    expect(describeEvent({ type: 'phase-end', wave: 2, phase: 'verify', nodes: ['a'], failures: [{ node: 'a', reason: 'exit 1' }] })).toBe('wave 2 verify FAILED on a: exit 1')
    expect(describeEvent({ type: 'wave-end', wave: 2, passed: ['b'], rolledBack: ['a'], failed: [] })).toBe('wave 2 done: 1 passed, rolled back: a')
  })
})
