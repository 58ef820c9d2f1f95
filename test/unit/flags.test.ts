import { describe, expect, it } from 'vitest'
import {
  booleanSetting,
  defaultedSetting,
  requiredSetting,
  stringSetting,
  upgradeRequestFrom,
} from '../../src/flags.js'
import { parsePolicy, policyFlags } from '../../src/lifecycle/policy/policy.js'
import { SETTINGS } from '../../src/lifecycle/settings/settings.js'
import { UPGRADE_FLAGS } from '../fakes/upgrade-flags.js'
import { FULL_POLICY } from '../fakes/full-policy.js'

describe('a flag built from the settings table', () => {
  it('takes the kind its entry gives, and fails as the command loads when built with another', () => {
    expect(() => stringSetting('drain')).toThrow(
      'flags: --drain is built with stringSetting, but its entry in the settings table is a boolean (booleanSetting)',
    )
    expect(() => stringSetting('batch-size')).toThrow(/has a default \(defaultedSetting\)/)
    expect(() => defaultedSetting('canary')).toThrow(/has no default \(stringSetting\)/)
    expect(() => booleanSetting('soak')).toThrow(/is not a boolean/)
    expect(() => requiredSetting('chart')).toThrow(/has a default or a policy field/)
  })

  it("gives a run's boolean its --no- form, and a process's (--dry-run) none", () => {
    expect(booleanSetting('drain-force').allowNo).toBe(true)
    expect(booleanSetting('allow-downgrade').allowNo).toBe(true)
    expect(booleanSetting('dry-run').allowNo).toBe(false)
  })
})

/** A value of each run setting no policy field gives (the policy's give the others). */
const SAMPLE: Record<string, string | boolean | string[]> = {
  'target-version': '3.29.0',
  'accept-restart-hazard': true,
  'allow-downgrade': true,
  window: ['Mon-Fri 02:00-05:00 Europe/Berlin'],
}

const POLICY = parsePolicy(FULL_POLICY, 'full policy')

describe('the request a run is built from (upgradeRequestFrom)', () => {
  // The verification pod and the pools are files: the commands read them and pass their content.
  const fromFlags = SETTINGS.filter((s) => s.schema && !s.content)

  it.each(fromFlags.map((s) => [s.flag]))('takes --%s: given alone, its value changes the request', (flag) => {
    const value = SAMPLE[flag] ?? policyFlags(POLICY)[flag]
    expect(value, `no sample value of --${flag}`).toBeDefined()
    const base = upgradeRequestFrom(UPGRADE_FLAGS, { source: 'x', origin: 'x' })
    // Given alone, but a flag that only widens the alert gate needs its URL.
    const needs = flag.startsWith('alert-') && flag !== 'alert-url' ? { 'alert-url': 'http://p:9090' } : {}
    const given = upgradeRequestFrom({ ...UPGRADE_FLAGS, ...needs, [flag]: value }, { source: 'x', origin: 'x' })
    const against = upgradeRequestFrom({ ...UPGRADE_FLAGS, ...needs }, { source: 'x', origin: 'x' })
    expect(given).not.toEqual(against)
    if (Object.keys(needs).length === 0) expect(against).toEqual(base)
  })
})
