/**
 * JSON Schema validation with Ajv (a maintained validator; kata-lcm's schemas are JSON Schema 2020-12
 * JSON Schema: the policy's, a pools file's, the chart's values.schema.json holds the same
 * patterns), and its first error in kata-lcm's words: `field: what`, the field as a dotted path
 * (`drain.timeout`, `pools[0].name`). Pure.
 */
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { DURATION_PATTERN } from '../settings/durations.js'

// verbose: each error carries its schema and data, so the words can quote both.
const ajv = new Ajv2020({ verbose: true, strict: true, allowUnionTypes: true })
const compiled = new WeakMap<object, ValidateFunction>()

const kindOf = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v)

/** The first violation of `schema` in `value`, as `field: what` (`path`: the field `value` is), or undefined. */
export function schemaViolation(value: unknown, schema: object, path: string): string | undefined {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  if (validate(value)) return undefined
  return describe(firstError(validate.errors ?? []), path)
}

/**
 * The error to report. Where an `anyOf` failed, Ajv lists every alternative's errors before it: a
 * string is told the last alternative's (the string form, e.g. a duration's pattern), anything else
 * the first's (the number or mapping form).
 */
function firstError(errors: readonly ErrorObject[]): ErrorObject | undefined {
  const anyOf = errors.find((e) => e.keyword === 'anyOf')
  if (!anyOf) return errors[0]
  const inside = errors.filter((e) => e.schemaPath.startsWith(`${anyOf.schemaPath}/`))
  const alternative = (e: ErrorObject) => Number(e.schemaPath.slice(anyOf.schemaPath.length + 1).split('/')[0])
  const chosen =
    kindOf(anyOf.data) === 'string' ? Math.max(...inside.map(alternative)) : Math.min(...inside.map(alternative))
  return inside.find((e) => alternative(e) === chosen) ?? anyOf
}

/** `/pools/0/name` under `path` as `path.pools[0].name`. */
function fieldOf(path: string, instancePath: string): string {
  let field = path
  for (const part of instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~')
    field = /^[0-9]+$/.test(key) ? `${field}[${key}]` : field ? `${field}.${key}` : key
  }
  return field
}

function describe(error: ErrorObject | undefined, path: string): string {
  if (!error) return `${path || '(the document)'}: does not match its schema`
  const field = fieldOf(path, error.instancePath) || '(the document)'
  const data: unknown = error.data
  const params = error.params as Record<string, unknown>
  const child = (key: unknown) => fieldOf(path, `${error.instancePath}/${String(key)}`)
  switch (error.keyword) {
    case 'required':
      return `${child(params.missingProperty)}: is required`
    case 'additionalProperties': {
      const known = Object.keys((error.parentSchema as { properties?: object } | undefined)?.properties ?? {})
      return `${child(params.additionalProperty)}: unknown field; known: ${known.join(', ')}`
    }
    case 'enum':
      return `${field}: ${JSON.stringify(data)} is not one of ${(params.allowedValues as unknown[]).map((e) => JSON.stringify(e)).join(', ')}`
    case 'type': {
      const type = String(params.type)
      const article = type === 'object' ? 'a mapping' : `a${type === 'integer' ? 'n' : ''} ${type}`
      return `${field}: must be ${article}, not ${kindOf(data)} ${JSON.stringify(data)}`
    }
    case 'minimum':
      return `${field}: must be at least ${String(params.limit)}, not ${String(data)}`
    case 'minLength':
      return `${field}: must not be empty`
    case 'maxLength':
      return `${field}: at most ${String(params.limit)} characters, not ${(data as string).length}`
    case 'pattern':
      if (params.pattern === DURATION_PATTERN)
        return `${field}: "${String(data)}" does not match a duration; use e.g. 90s, 5m, 1h or 1h30m`
      return `${field}: "${String(data)}" does not match ${String(params.pattern)}`
    case 'minItems':
      return `${field}: must hold at least ${String(params.limit)} item(s)`
    default:
      return `${field}: ${error.message ?? 'does not match its schema'}`
  }
}
