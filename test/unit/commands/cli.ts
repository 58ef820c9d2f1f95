/**
 * Runs one kata-lcm command class in this process, as `kata-lcm ARGV` would (oclif's parse, the
 * base command's one-line errors and exit codes), and returns what it printed and its exit code.
 * For the checks that need no cluster, or only the small one a test serves itself.
 */
import { Config, Errors, type Command } from '@oclif/core'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { format } from 'node:util'
import { vi } from 'vitest'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')

let config: Promise<Config> | undefined

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** `kata-lcm <command> ...argv` with `env` set for the run (undefined: unset); never throws for an exit code. */
export async function runCli(
  command: Command.Class,
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  const saved = {
    exitCode: process.exitCode,
    env: Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]])),
  }
  const out: string[] = []
  const err: string[] = []
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0)
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0)
  // oclif's this.log and this.warn print through console.
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(`${format(...a)}\n`))
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(`${format(...a)}\n`))
  for (const [k, v] of Object.entries(env)) setEnv(k, v)
  process.exitCode = undefined
  let code: number
  try {
    await command.run(argv, await (config ??= Config.load(ROOT)))
    code = Number(process.exitCode ?? 0)
  } catch (error) {
    if (!(error instanceof Errors.ExitError || (error as { oclif?: { exit?: number } }).oclif?.exit !== undefined))
      throw error
    code = (error as { oclif: { exit: number } }).oclif.exit
  } finally {
    stdout.mockRestore()
    stderr.mockRestore()
    log.mockRestore()
    error.mockRestore()
    for (const [k, v] of Object.entries(saved.env)) setEnv(k, v)
    process.exitCode = saved.exitCode
  }
  return { code, stdout: out.join(''), stderr: err.join('') }
}

function setEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
}
