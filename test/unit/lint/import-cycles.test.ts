/** The lint rule that keeps src/ free of import circles (scripts/lint/import-cycles.mjs). */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module of the lint configuration, no types
import { importCycles, importGraph } from '../../../scripts/lint/import-cycles.mjs'

const cyclesIn = async (files: Record<string, string>): Promise<string[][]> => {
  const root = await mkdtemp(path.join(tmpdir(), 'kata-lcm-cycles-'))
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true })
    await writeFile(path.join(root, name), text)
  }
  return (importCycles(importGraph(root)) as string[][]).map((c) => c.map((f) => path.relative(root, f)).sort())
}

describe('no-import-cycle', () => {
  it('finds a circle through type-only imports, export-from and a subfolder, and none in a tree', async () => {
    expect(
      await cyclesIn({
        'a.ts': "import type { B } from './b.js'\nexport type A = B\n",
        'b.ts': "export { c } from './sub/c.js'\nexport type B = string\n",
        'sub/c.ts': "import {\n  type A,\n} from '../a.js'\nexport const c: A | undefined = undefined\n",
        'd.ts': "import { c } from './sub/c.js'\nexport const d = c\n",
      }),
    ).toEqual([['a.ts', 'b.ts', 'sub/c.ts']])
    expect(
      await cyclesIn({ 'a.ts': "import { b } from './b.js'\nexport const a = b\n", 'b.ts': 'export const b = 1\n' }),
    ).toEqual([])
  })

  it('src/ has none', () => {
    expect(importCycles(importGraph(path.resolve(import.meta.dirname, '../../../src')))).toEqual([])
  })
})
