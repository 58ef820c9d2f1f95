/**
 * Bad input met at the command line: refused with one line naming the flag and a documented exit
 * code (README's table), before anything is asked of a cluster.
 */
import { describe, expect, it } from 'vitest'
import PolicySchema from '../../../src/commands/policy/schema.js'
import { runCli } from './cli.js'

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
