// An ESLint rule of this project: no import circle among the files of src/ (type-only imports
// included: a circle of types is still a tangle a reader must hold at once). The graph is read from
// the files' own `import ... from './x.js'` / `export ... from` lines, once per lint run; a file
// on a circle is reported with the files of its circle.
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'

const IMPORT = /^(?:import|export)\s[^'";]*?from\s+'(\.{1,2}\/[^']+)'/gms

/** Each .ts file under `root` and the files of `root` it imports. */
export function importGraph(root) {
  const files = readdirSync(root, { recursive: true })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.resolve(root, f))
  const graph = new Map()
  for (const file of files) {
    const targets = [...readFileSync(file, 'utf8').matchAll(IMPORT)]
      .map((m) => path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts')))
      .filter((t) => files.includes(t))
    graph.set(file, [...new Set(targets)])
  }
  return graph
}

/** The circles of `graph`: its strongly connected parts of two files or more (Tarjan). */
export function importCycles(graph) {
  let next = 0
  const index = new Map()
  const low = new Map()
  const stack = []
  const onStack = new Set()
  const cycles = []
  const visit = (v) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v), low.get(w)))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)))
    }
    if (low.get(v) !== index.get(v)) return
    const part = []
    let w
    do {
      w = stack.pop()
      onStack.delete(w)
      part.push(w)
    } while (w !== v)
    if (part.length > 1) cycles.push(part.reverse())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return cycles
}

let cached
const cyclesOf = (root) => (cached ??= importCycles(importGraph(root)))

export const noImportCycle = {
  meta: { type: 'problem', schema: [{ type: 'string' }], messages: { cycle: 'import circle among {{files}}: break it (a type to a file of its own, or a dependency turned round)' } },
  create(context) {
    const root = path.resolve(context.cwd, context.options[0] ?? 'src')
    const file = path.resolve(context.filename)
    return {
      Program(node) {
        const cycle = cyclesOf(root).find((c) => c.includes(file))
        if (!cycle) return
        const files = cycle.map((f) => path.relative(context.cwd, f)).join(', ')
        context.report({ node, messageId: 'cycle', data: { files } })
      },
    }
  },
}
