/**
 * A mistyped command (`kata-lcm upgrad`) is refused with the nearest command named, and never runs
 * one: @oclif/plugin-not-found asked "Did you mean upgrade? (Y/n)" on a terminal and ran it on Enter.
 */
import { Errors, type Config, type Hook } from '@oclif/core'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import hook, { nearestCommand } from '../../../src/hooks/command-not-found.js'
import { ROOT } from './cli.js'

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  oclif: { plugins: string[]; hooks?: Record<string, string> }
}

/** The command ids of src/commands (policy/show.ts: policy:show), as oclif names them. */
const IDS = readdirSync(path.join(ROOT, 'src/commands'), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.replace(/\.ts$/, '').split(path.sep).join(':'))

/** The hook as oclif runs it, on a terminal, with a config whose runCommand must never be called. */
async function mistyped(id: string): Promise<{ error: Errors.CLIError; ran: unknown[] }> {
  const runCommand = vi.fn()
  const config = {
    bin: 'kata-lcm',
    topicSeparator: ' ',
    commandIDs: IDS,
    commands: IDS.map((c) => ({ id: c, hidden: false, aliases: [] })),
    runCommand,
  } as unknown as Config
  const context = { error: Errors.error, exit: Errors.exit, log: vi.fn(), warn: vi.fn(), debug: vi.fn() }
  const tty = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY')
  Object.defineProperty(process.stdin, 'isTTY', { value: true, configurable: true })
  try {
    await (hook as Hook.CommandNotFound).call(context as unknown as Hook.Context, {
      id,
      argv: [],
      config,
      context: context as unknown as Hook.Context,
    })
  } catch (error) {
    return { error: error as Errors.CLIError, ran: runCommand.mock.calls }
  } finally {
    if (tty) Object.defineProperty(process.stdin, 'isTTY', tty)
    else delete (process.stdin as { isTTY?: boolean }).isTTY
  }
  throw new Error(`the hook let ${id} through`)
}

describe('a mistyped command', () => {
  it("is answered by kata-lcm's own hook, not @oclif/plugin-not-found (which runs the suggestion on Enter)", () => {
    expect(pkg.oclif.plugins).not.toContain('@oclif/plugin-not-found')
    expect(pkg.oclif.hooks?.command_not_found).toBe('./dist/hooks/command-not-found.js')
  })

  it.each([
    ['upgrad', 'upgrade'],
    ['statsu', 'status'],
    ['policy:sho', 'policy show'],
  ])('%s: refused with exit 127, naming %s, and nothing runs, even on a terminal', async (typed, nearest) => {
    const { error, ran } = await mistyped(typed)
    expect(ran).toEqual([])
    expect(error.oclif.exit).toBe(127)
    expect(error.message).toBe(
      `${typed.replace(':', ' ')} is not a kata-lcm command. Did you mean ${nearest}? Run kata-lcm help for a list of available commands.`,
    )
  })

  it('the nearest command is the one fewest edits away, the first of equals', () => {
    expect(nearestCommand('rollbak', IDS)).toBe('rollback')
    expect(nearestCommand('ab', ['ax', 'xb'])).toBe('ax')
    expect(nearestCommand('x', [])).toBeUndefined()
  })
})
