/**
 * Bad input met at the command line: refused with one line naming the flag and a documented exit
 * code (README's table), before anything is asked of a cluster.
 */
import type { Command } from '@oclif/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import InstallWorkflow from '../../../src/commands/install-workflow.js'
import PolicySchema from '../../../src/commands/policy/schema.js'
import PolicySet from '../../../src/commands/policy/set.js'
import PolicyShow from '../../../src/commands/policy/show.js'
import Rollback from '../../../src/commands/rollback.js'
import Status from '../../../src/commands/status.js'
import Upgrade from '../../../src/commands/upgrade.js'
import { apiServer, ROOT, runCli, type ApiServer } from './cli.js'

let api: ApiServer
beforeAll(async () => {
  api = await apiServer()
})
afterAll(async () => api.close())

/** The one line of a refusal (after "Error: "), and that nothing was asked of the cluster. */
function refusal(r: { code: number; stderr: string }, since: number): string {
  expect(api.requests.slice(since)).toEqual([])
  const lines = r.stderr.trimEnd().split('\n')
  expect(lines[0]).toMatch(/^Error: /)
  return lines[0]!.slice('Error: '.length)
}

describe('policy schema', () => {
  it('prints the schema and takes no flag it does not know (exit 2, naming it)', async () => {
    const ok = await runCli(PolicySchema, [])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.stdout)).toHaveProperty('properties')
    const bogus = await runCli(PolicySchema, ['--bogus'])
    expect(bogus).toMatchObject({ code: 2, stdout: '' })
    expect(bogus.stderr).toMatch(/Nonexistent flag: --bogus/)
  })
})

describe('--policy-namespace', () => {
  const bad = ['--policy-namespace', 'Bad_NS']
  it.each<[string, Command.Class, string[]]>([
    ['upgrade', Upgrade, ['--target-version', '3.28.0', ...bad]],
    ['rollback', Rollback, ['worker-1', ...bad]],
    ['status', Status, bad],
    ['install-workflow', InstallWorkflow, ['--dry-run', ...bad]],
    ['policy show', PolicyShow, bad],
    ['policy set', PolicySet, [`${ROOT}/package.json`, ...bad]],
  ])(
    '%s: a namespace that is no DNS-1123 label is refused (exit 2, naming the flag), before the cluster',
    async (_, command, argv) => {
      const since = api.requests.length
      const r = await runCli(command, [...argv, '--kubeconfig', api.kubeconfig])
      expect(r.code).toBe(2)
      expect(refusal(r, since)).toMatch(
        /^--policy-namespace: "Bad_NS" is not a namespace name; use at most 63 lower-case letters/,
      )
    },
  )
})
