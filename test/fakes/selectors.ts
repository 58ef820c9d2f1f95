import { ClusterError } from '../../src/lifecycle/errors.js'

/**
 * Label- and field-selector evaluation as the API server does it, for the fakes. An invalid
 * selector is a 400, like the real thing.
 */

type Requirement = (labels: Record<string, string>) => boolean

function splitTopLevel(selector: string): string[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of selector) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(current)
      current = ''
    } else current += ch
  }
  parts.push(current)
  return parts.map((p) => p.trim())
}

function parseRequirement(raw: string, selector: string): Requirement {
  const set = /^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(raw)
  if (set) {
    const key = set[1]!
    const values = set[3]!.split(',').map((v) => v.trim())
    return set[2] === 'in'
      ? (l) => l[key] !== undefined && values.includes(l[key]!)
      : (l) => l[key] === undefined || !values.includes(l[key]!)
  }
  const eq = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(raw)
  if (eq) {
    const [, key, op, value] = eq as unknown as [string, string, string, string]
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value
  }
  const exists = /^(!?)([^\s!=(),]+)$/.exec(raw)
  if (exists) {
    const key = exists[2]!
    return exists[1] === '!' ? (l) => l[key] === undefined : (l) => l[key] !== undefined
  }
  throw new ClusterError(`unable to parse requirement "${raw}" in label selector "${selector}"`, 400)
}

/** Compiles a kubectl label selector (throws the API server's 400 at once); empty/undefined matches everything. */
export function labelMatcher(selector: string | undefined): (labels: Record<string, string>) => boolean {
  if (selector === undefined || selector.trim() === '') return () => true
  const requirements = splitTopLevel(selector).map((raw) => parseRequirement(raw, selector))
  return (labels) => requirements.every((r) => r(labels))
}

/** Compiles a field selector (`a=b`, `a==b`, `a!=b`, comma-separated) over the `supported` fields. */
export function fieldMatcher(
  selector: string | undefined,
  supported: readonly string[],
): (fields: Record<string, string | undefined>) => boolean {
  if (selector === undefined || selector.trim() === '') return () => true
  const requirements = selector.split(',').map((raw) => {
    const m = /^\s*([\w.]+)\s*(==|=|!=)\s*([^\s,]*)\s*$/.exec(raw)
    if (!m) throw new ClusterError(`invalid field selector "${selector}"`, 400)
    const [, key, op, value] = m as unknown as [string, string, string, string]
    if (!supported.includes(key)) throw new ClusterError(`field label not supported: ${key}`, 400)
    return (fields: Record<string, string | undefined>) => (op === '!=' ? fields[key] !== value : fields[key] === value)
  })
  return (fields) => requirements.every((r) => r(fields))
}
