/**
 * The fleet policy's JSON schema (draft 2020-12): the one definition `parsePolicy` validates against
 * and `kata-lcm policy schema` prints (for editors: yaml-language-server's `$schema`). Built from the
 * settings table: each setting with a policy field puts its value's schema (settings.ts `schema`)
 * at that path, described by its flag and help. Only the document's identity and the groups'
 * descriptions are written here.
 */
import { SETTINGS } from '../settings/settings.js'
import type { Schema } from '../settings/value-schemas.js'

/** What a group of fields says of itself (a field `a.b` puts `b` in the closed object `a`). */
const GROUPS: Record<string, { description: string; required?: string[] }> = {
  release: { description: 'The kata-deploy helm release.' },
  nodeTaint: { description: 'Select nodes carrying this taint.', required: ['key'] },
  workloads: { description: "The node's Kata pods through its upgrade (docs/policy.md, Kata workloads)." },
  alerts: { description: 'The alert gate (docs/policy.md, Alert gate).' },
  drain: { description: 'Evicting workloads after cordon, before the upgrade.' },
  timeouts: { description: 'How long kata-deploy may take.' },
  verification: { description: 'The verification pod run on each upgraded node.' },
}

interface ObjectSchema {
  type: 'object'
  additionalProperties: false
  description?: string
  required?: string[]
  properties: Record<string, Schema | ObjectSchema>
}

/** The closed object at `group` in `root`, made on first use. */
function groupIn(root: ObjectSchema, group: string[]): ObjectSchema {
  return group.reduce((parent, key, i) => {
    const existing = parent.properties[key]
    if (existing) return existing as ObjectSchema
    const name = group.slice(0, i + 1).join('.')
    const made: ObjectSchema = { type: 'object', additionalProperties: false, ...GROUPS[name], properties: {} }
    parent.properties[key] = made
    return made
  }, root)
}

/** The policy's schema from the settings table. Pure. */
export function policySchema(): Schema {
  const root: ObjectSchema = {
    type: 'object',
    additionalProperties: false,
    required: ['apiVersion', 'kind'],
    properties: { apiVersion: { enum: ['kata-lcm.katacontainers.io/v1alpha1'] }, kind: { enum: ['Policy'] } },
  }
  for (const s of SETTINGS) {
    if (!s.policy) continue
    if (!s.schema) throw new Error(`policy schema: --${s.flag} (${s.policy}) has no schema`)
    const path = s.policy.split('.')
    const field = path.pop()!
    groupIn(root, path).properties[field] = { ...s.schema, description: `--${s.flag}: ${s.help}` }
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/kata-containers/kata-lcm/schema/policy.schema.json',
    title: 'kata-lcm fleet policy',
    description:
      "The fleet's defaults for kata-lcm upgrade, rollback, status and install-workflow. Flags override each field.",
    ...root,
  }
}

export const POLICY_SCHEMA = policySchema()
