import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { NODE_STATUSES, TRANSITIONS } from '../../../src/lifecycle/engine/node-state.js'
import { PHASES, phaseTable, WAVE_STEPS } from '../../../src/lifecycle/engine/phases.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const doc = () => readFile(path.join(ROOT, 'docs/architecture.md'), 'utf8')
const state = (s: string) => s.replace(/_/g, '-')

describe('docs/architecture.md says what the code does', () => {
  it("the node-state table lists exactly the code's states", async () => {
    const section = (await doc()).split('## Node states')[1]!.split('```mermaid')[0]!
    const rows = [...section.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1])
    expect(rows).toEqual([...NODE_STATUSES])
  })

  it('the diagram draws exactly the transitions of TRANSITIONS (plus the entries from no state)', async () => {
    const diagram = (await doc()).split('```mermaid')[1]!.split('```')[0]!
    const edges = [...diagram.matchAll(/^\s+(\[\*\]|[a-z_]+) --> ([a-z_]+)/gm)].map(
      (m) => `${m[1] === '[*]' ? '(none)' : state(m[1]!)} -> ${state(m[2]!)}`,
    )
    const code = [
      '(none) -> cordoned',
      '(none) -> rolling-back',
      ...NODE_STATUSES.flatMap((from) => TRANSITIONS[from].map((to) => `${from} -> ${to}`)),
    ]
    expect([...edges].sort()).toEqual([...code].sort())
  })

  it('the handler table lists the phases in order, with their steps and the states they leave', async () => {
    const section = (await doc()).split('## One lifecycle, two drivers')[1]!.split('### Adding a phase')[0]!
    const rows = [...section.matchAll(/^\| ([a-z]+) \| ([a-z]+) \| [^|]+ \| ([^|]+) \|$/gm)]
      .map((m) => ({
        phase: m[1],
        step: m[2],
        leavesIn: [...m[3]!.matchAll(/`([a-z-]+)`/g)].map((x) => x[1]),
      }))
      .filter((r) => r.phase !== 'phase')
    expect(rows).toEqual(phaseTable().map((r) => ({ ...r, leavesIn: [...r.leavesIn] })))
  })
})

describe('one table, every place that lists the steps', () => {
  it("the chart's run-wave runs exactly WAVE_STEPS, in order", async () => {
    const template = await readFile(path.join(ROOT, 'chart/templates/workflow-template.yaml'), 'utf8')
    const list = /range \$phase := list ((?:"[a-z]+" ?)+)/.exec(template)?.[1]
    expect(list?.match(/[a-z]+/g)).toEqual([...WAVE_STEPS])
  })

  it('there is a `kata-lcm step` command for each wave step', async () => {
    const commands = (await readdir(path.join(ROOT, 'src/commands/step'))).map((f) => f.replace(/\.ts$/, ''))
    expect(commands).toEqual(expect.arrayContaining([...WAVE_STEPS]))
  })

  it("the progress display draws the table's phases, not a list of its own", async () => {
    const listr = await readFile(path.join(ROOT, 'src/ui/listr-progress.ts'), 'utf8')
    expect(listr).toMatch(/import \{[^}]*\bPHASES\b[^}]*\} from '\.\.\/lifecycle\/engine\/phases\.js'/)
    expect(PHASES).toEqual(['prepare', 'drain', 'upgrade', 'verify', 'soak', 'rollback'])
  })
})
