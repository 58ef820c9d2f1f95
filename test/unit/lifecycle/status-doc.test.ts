/**
 * docs/status.md documents every field of the versioned status report: the example below must set
 * every field of `StatusReport` (the type says so: a field added to the report and not here fails
 * the typecheck), and each of its field paths must have its row in the doc's table, and no more.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import YAML from 'yaml'
import {
  countByState,
  STATUS_API_VERSION,
  STATUS_COUNT_KEYS,
  type StatusReport,
} from '../../../src/lifecycle/services/status.service.js'
import { ROOT } from '../commands/cli.js'

type Full<T> = T extends (infer E)[] ? Full<E>[] : T extends object ? { [K in keyof T]-?: Full<T[K]> } : T

const EVERY_FIELD: Full<StatusReport> = {
  apiVersion: STATUS_API_VERSION,
  kind: 'Status',
  release: { name: 'r', namespace: 'n', chartVersion: '1', status: 'deployed', helmProblem: 'p' },
  run: {
    runId: 'id',
    targetVersion: '1',
    paused: { by: 'me', at: 'now' },
    waitingForWindow: { wave: 2, opensAt: 'then' },
    heldByAlerts: { wave: 2, since: 'then', reason: 'r' },
  },
  selection: 'all nodes',
  counts: countByState([]),
  rows: [
    {
      node: 'n',
      status: '-',
      version: '-',
      cordoned: true,
      cordonedBy: 'operator',
      kataDeployPod: 'current',
      podVersion: '1',
      podRelation: 'same as the release',
      runId: 'id',
      previousVersion: '0',
      phaseStartedAt: 'now',
      lastError: 'e',
      disruptedWorkloads: 'ns/p restarted',
    },
  ],
}

/** `release.name`, `rows[].node`, ...: every path to a field, arrays as `[]`. */
function fieldPaths(value: unknown, prefix = ''): string[] {
  if (Array.isArray(value)) return fieldPaths(value[0], `${prefix}[]`)
  if (value === null || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([key, v]) => {
    const at = prefix ? `${prefix}.${key}` : key
    return [at, ...fieldPaths(v, at)]
  })
}

const doc = () => readFile(path.join(ROOT, 'docs/status.md'), 'utf8')

describe('docs/status.md', () => {
  it('has one row per field of the report, and none for a field it does not have', async () => {
    const documented = [...(await doc()).matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1])
    expect(documented).toEqual(fieldPaths(EVERY_FIELD))
  })

  it('counts: one key per state, and `untouched` for a node kata-lcm never touched', () => {
    expect(Object.keys(EVERY_FIELD.counts)).toEqual(STATUS_COUNT_KEYS)
    expect(countByState([{ status: '-' }, { status: 'completed' }, { status: 'completed' }])).toMatchObject({
      untouched: 1,
      completed: 2,
      failed: 0,
    })
  })

  it("its example is a report of this apiVersion with only the report's fields", async () => {
    const example = YAML.parse(/```yaml\n([\s\S]*?)```/.exec(await doc())![1]!) as StatusReport
    expect(example).toMatchObject({ apiVersion: STATUS_API_VERSION, kind: 'Status' })
    const known = new Set(fieldPaths(EVERY_FIELD))
    expect(fieldPaths(example).filter((p) => !known.has(p))).toEqual([])
    expect(Object.keys(example.counts)).toEqual(STATUS_COUNT_KEYS)
  })
})
