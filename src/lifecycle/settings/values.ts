/** Helm values handling: pure functions over plain objects. */

export type Values = Record<string, unknown>

function isPlainObject(value: unknown): value is Values {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Deep merge, `override` wins; arrays are replaced, not merged (helm's rule). Returns a new object. */
export function mergeValues(base: Values, override: Values): Values {
  const out: Values = { ...base }
  for (const [key, value] of Object.entries(override)) {
    const current = out[key]
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeValues(current, value) : value
  }
  return out
}

/** `{job: {nodes: [a, b]}}` -> `job.nodes=["a","b"]`: one `path=JSON` per leaf, for one-line messages. Pure. */
export function flattenValues(values: Values, prefix = ''): string[] {
  return Object.entries(values).flatMap(([key, value]) =>
    isPlainObject(value) && Object.keys(value).length > 0
      ? flattenValues(value, `${prefix}${key}.`)
      : [`${prefix}${key}=${JSON.stringify(value)}`],
  )
}
