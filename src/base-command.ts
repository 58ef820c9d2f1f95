import { Command, Errors } from '@oclif/core'
import { randomBytes } from 'node:crypto'
import { ExitCode, KataLcmError } from './lifecycle/errors.js'
import { colors } from './ui/colors.js'

/**
 * Every command's base: --json, one place that turns any error into one line, suggestions and an
 * exit code from the documented table, and signal handling (first signal: stop at a safe point;
 * second: exit at once).
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true
  protected readonly abort = new AbortController()

  protected newRunId(): string {
    return `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`
  }

  protected handleSignals(): () => void {
    let count = 0
    const onSignal = (signal: NodeJS.Signals) => {
      count++
      if (count > 1) {
        process.stderr.write(`\n${signal} again: exiting now; rerun the same command to resume.\n`)
        process.exit(ExitCode.Interrupted)
      }
      process.stderr.write(
        `\n${signal}: finishing the current wave at a safe point, then stopping (press again to exit at once).\n`,
      )
      this.abort.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    return () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
  }

  protected override async catch(error: Error & { exitCode?: number }): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    const known = error instanceof KataLcmError ? error : undefined
    // oclif's own parse errors (unknown flag, missing required flag) are bad input too.
    const isParseError = !known && (error as { oclif?: { exit?: number } }).oclif !== undefined
    const exitCode = known?.exitCode ?? (isParseError ? ExitCode.BadInput : ExitCode.Unexpected)
    // One line: oclif's parse errors come as several lines around the one that matters (a flag's
    // own check, thrown from its parse, comes as "Parsing --flag", the error, "See more help").
    const message = (error.message ?? String(error))
      .split('\n')
      .map((l) => l.trim())
      .filter(
        (l) =>
          l !== '' &&
          !/^The following errors? occurred:?$/.test(l) &&
          !/^See more help with --help$/.test(l) &&
          !(known && /^Parsing --[\w-]+$/.test(l)),
      )
      .join('; ')
    if (this.jsonEnabled()) {
      this.logJson({
        error: {
          code: known?.code ?? (isParseError ? 'BAD_INPUT' : 'UNEXPECTED'),
          message,
          suggestions: known?.suggestions ?? [],
        },
      })
    } else {
      process.stderr.write(`${colors.red('Error:')} ${message}\n`)
      for (const s of known?.suggestions ?? []) process.stderr.write(`  ${s}\n`)
      if (!known && !isParseError) process.stderr.write('  run with DEBUG=kata-lcm* for details\n')
    }
    process.exitCode = exitCode
    return undefined
  }

  /** The exit code that goes with a report's outcome. */
  protected exitCodeFor(outcome: string): number {
    switch (outcome) {
      case 'rolled-back':
      case 'workloads-disrupted':
      case 'held-by-alerts':
        return ExitCode.RolledBack
      case 'manual-action':
        return ExitCode.ManualActionNeeded
      case 'interrupted':
        return ExitCode.Interrupted
      case 'nodes-gone':
        return ExitCode.NodesGone
      default:
        return ExitCode.Success
    }
  }
}
