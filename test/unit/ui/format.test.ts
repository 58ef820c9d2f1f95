import { describe, expect, it } from 'vitest'
import { UPGRADE_FLAGS } from '../../fakes/upgrade-flags.js'
import { stripVTControlCharacters } from 'node:util'
import { Chalk } from 'chalk'
import { MAX_TIMER_MS, parseDuration, timerMs } from '../../../src/lifecycle/settings/durations.js'
import { upgradeRequestFrom, type UpgradeFlags } from '../../../src/flags.js'
import { describeEvent } from '../../../src/ui/plain-progress.js'
import { table } from '../../../src/ui/report-format.js'

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1500ms', 1500],
    ['30', 30_000],
    ['2.5s', 2500],
  ])('%s', (text, ms) => {
    expect(parseDuration('--x', text)).toBe(ms)
  })
  it.each(['soon', '5 m', '-1s', '0s', ''])('refuses %j naming the flag', (text) => {
    expect(() => parseDuration('--verification-timeout', text)).toThrow(/^--verification-timeout: /)
  })

  const flags: UpgradeFlags = { ...UPGRADE_FLAGS, chart: 'c' }
  it.each(['verification-timeout', 'ready-timeout', 'drain-timeout', 'helm-timeout'] as const)(
    '--%s: 24h is the bound, a millisecond past it is refused',
    (flag) => {
      expect(() => upgradeRequestFrom({ ...flags, [flag]: '24h' }, { source: '', origin: 'x' })).not.toThrow()
      expect(() => upgradeRequestFrom({ ...flags, [flag]: '86400001ms' }, { source: '', origin: 'x' })).toThrow(
        new RegExp(`^--${flag}: "86400001ms" is longer than the 24h kata-lcm allows; use at most 24h$`),
      )
      expect(() => upgradeRequestFrom({ ...flags, [flag]: '999999h' }, { source: '', origin: 'x' })).toThrow(
        new RegExp(`^--${flag}: `),
      )
    },
  )

  it('--helm-timeout reaches helm as whole seconds', () => {
    expect(upgradeRequestFrom({ ...flags, 'helm-timeout': '1.5m' }, { source: '', origin: 'x' }).helmTimeout).toBe(
      '90s',
    )
  })

  it('no timer can overflow: every delay is clamped into what setTimeout honours', () => {
    expect(timerMs(10 * MAX_TIMER_MS)).toBe(MAX_TIMER_MS)
    expect(timerMs(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS)
    expect(timerMs(-5)).toBe(0)
    expect(timerMs(1500)).toBe(1500)
  })
})

describe('table', () => {
  it('aligns on visible width, colour codes included', () => {
    const green = new Chalk({ level: 1 }).green
    const lines = table(
      ['NODE', 'STATUS', 'V'],
      [
        ['a', green('completed'), '1'],
        ['bb', 'x', '2'],
      ],
    ).map((l) => stripVTControlCharacters(l))
    expect(lines).toEqual(['NODE  STATUS     V', 'a     completed  1', 'bb    x          2'])
  })
})

describe('plain progress lines', () => {
  it('says what happened, and nothing for a phase that went well', () => {
    expect(describeEvent({ type: 'wave-start', wave: 1, waves: 3, nodes: ['a', 'b'] })).toBe('wave 1/3: a, b')
    expect(describeEvent({ type: 'phase-end', wave: 1, phase: 'verify', nodes: ['a'], failures: [] })).toBeUndefined()
    expect(
      describeEvent({
        type: 'phase-end',
        wave: 2,
        phase: 'verify',
        nodes: ['a'],
        failures: [{ node: 'a', reason: 'exit 1' }],
      }),
    ).toBe('wave 2 verify FAILED on a: exit 1')
    expect(describeEvent({ type: 'wave-end', wave: 2, passed: ['b'], rolledBack: ['a'], failed: [] })).toBe(
      'wave 2 done: 1 passed, rolled back: a',
    )
  })
})
