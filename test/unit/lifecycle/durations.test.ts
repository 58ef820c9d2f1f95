/**
 * Durations in the forms helm, kubectl and Argo take (Go's time.ParseDuration: `1h30m`, `2m30s`,
 * `1.5h`, `300ms`), plus kata-lcm's bare number of seconds; the bounds stay (0 < d <= 24h). The
 * policy's schema and the chart's values.schema.json take the same forms.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { DURATION_PATTERN, parseDuration } from '../../../src/lifecycle/settings/durations.js'
import { parsePolicy } from '../../../src/lifecycle/policy/policy.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

describe('durations as helm, kubectl and Argo write them', () => {
  it.each([
    ['1h30m', 5_400_000],
    ['2m30s', 150_000],
    ['1h0m0s', 3_600_000],
    ['1m30.5s', 90_500],
    ['1.5h', 5_400_000],
    ['90s', 90_000],
    ['300ms', 300],
    ['1s500ms', 1_500],
    ['2000000us', 2_000],
    ['2000000µs', 2_000],
    ['3000000000ns', 3_000],
    ['30', 30_000],
    ['23h59m59s', 86_399_000],
    ['24h', 86_400_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration('--x', text)).toBe(ms)
  })

  it.each([
    ['24h1s', /is longer than the 24h kata-lcm allows/],
    ['23h61m', /is longer than the 24h kata-lcm allows/],
    ['0h0m', /must be longer than zero/],
    ['1h 30m', /is not a duration/],
    ['30m1h2', /is not a duration/],
    ['1d', /is not a duration/],
    ['h', /is not a duration/],
  ])('refuses %j, naming the flag', (text, why) => {
    expect(() => parseDuration('--ready-timeout', text)).toThrow(/^--ready-timeout: /)
    expect(() => parseDuration('--ready-timeout', text)).toThrow(why)
  })

  it('the policy takes them, and still names the field of one out of bounds', () => {
    const policy = (fields: string) =>
      parsePolicy(`apiVersion: kata-lcm.katacontainers.io/v1alpha1\nkind: Policy\n${fields}\n`, 'policy file p.yaml')
    expect(policy('soak: 1h30m\ntimeouts: { ready: 2m30s, helm: 1h0m0s }\ndrain: { timeout: 90s }').timeouts).toEqual({
      ready: '2m30s',
      helm: '1h0m0s',
    })
    expect(policy('verification: { timeout: 1m30s }').verification).toEqual({ timeout: '1m30s' })
    expect(() => policy('timeouts: { ready: 1h 30m }')).toThrow(/^policy file p.yaml: timeouts.ready: /)
  })

  it("the chart's duration values take the same pattern (soak may be empty: no soak)", () => {
    const schema = JSON.parse(readFileSync(path.join(ROOT, 'chart/values.schema.json'), 'utf8')) as {
      properties: { defaults: { properties: Record<string, { pattern?: string }> } }
    }
    const defaults = schema.properties.defaults.properties
    const timeouts = Object.keys(defaults).filter((key) => key.endsWith('Timeout'))
    expect(timeouts).toEqual(expect.arrayContaining(['drainTimeout', 'verificationTimeout']))
    for (const key of timeouts) expect(defaults[key]?.pattern, key).toBe(DURATION_PATTERN)
    expect(new RegExp(defaults.soak!.pattern!).test('')).toBe(true)
    for (const text of ['1h30m', '2m30s', '90s', '30'])
      expect(new RegExp(defaults.soak!.pattern!).test(text), text).toBe(true)
    expect(new RegExp(defaults.soak!.pattern!).test('soon')).toBe(false)
  })
})
