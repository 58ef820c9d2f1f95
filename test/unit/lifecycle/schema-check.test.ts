import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { POLICY_SCHEMA } from '../../../src/lifecycle/policy/policy-schema.js'
import { schemaViolation } from '../../../src/lifecycle/policy/schema-check.js'

const base = { apiVersion: 'kata-lcm.katacontainers.io/v1alpha1', kind: 'Policy' }
const check = (yaml: string) => schemaViolation({ ...base, ...(parse(yaml) as object) }, POLICY_SCHEMA, '')

describe("the policy's schema through Ajv, in kata-lcm's words", () => {
  it('accepts a policy that sets its fields right', () => {
    expect(
      check(
        'batchSize: 2\ncanary: 1\nsoak: 1h30m\ndrain: {enabled: true, timeout: 90s, force: true}\ntimeouts: {ready: 10m}',
      ),
    ).toBeUndefined()
  })

  it.each([
    [
      'an unknown field, with the known ones',
      'batchsize: 2',
      /^batchsize: unknown field; known: apiVersion, kind, .*batchSize/,
    ],
    ['a nested unknown field', 'drain: {enabeld: true}', /^drain\.enabeld: unknown field; known: enabled, /],
    ['a wrong type', 'canary: two', /^canary: must be an integer, not string "two"$/],
    ['a value below its minimum', 'canary: 0', /^canary: must be at least 1, not 0$/],
    [
      'a value not in its enum',
      'deploymentMode: helm',
      /^deploymentMode: "helm" is not one of "auto", "daemonset", "job"$/,
    ],
    [
      'a duration in neither form (the string form is told)',
      'soak: 5 minutes',
      /^soak: "5 minutes" does not match a duration; use e.g. 90s, 5m, 1h or 1h30m$/,
    ],
    ['a mapping where a mapping is wanted not', 'release: []', /^release: must be a mapping, not array \[\]$/],
    ['a pool without its name, by index', 'pools: [{batchSize: 2}]', /^pools\[0\]\.name: is required$/],
  ])('%s', (_, yaml, message) => {
    expect(check(yaml)).toMatch(message)
  })

  it('names the field under the path it is given', () => {
    expect(
      schemaViolation(
        [{ name: 'gpu', canary: -1 }],
        {
          type: 'array',
          items: { type: 'object', properties: { name: { type: 'string' }, canary: { type: 'integer', minimum: 1 } } },
        },
        'pools',
      ),
    ).toBe('pools[0].canary: must be at least 1, not -1')
  })
})
