import { Flags } from '@oclif/core'
import { alertsStep } from '../../lifecycle/services/steps.service.js'
import { StepCommand, stepFlags } from '../../step-command.js'

/** The exit code of a held gate (EX_TEMPFAIL): the template's retryStrategy asks again on this code only. */
export const HELD_EXIT_CODE = 75

export default class StepAlerts extends StepCommand {
  static override summary = "Before a wave: whether the run's alert gate holds it (firing alerts, or no answer)."
  static override description = `Exit 0: clear (or no gate). Exit ${HELD_EXIT_CODE}: held, recorded on the run record (kata-lcm status shows it); the template retries this step after a backoff, so no pod runs between questions. Exit 3: held longer than the gate's timeout; the run is stopped (later waves refuse to start).`

  static override flags = {
    ...stepFlags,
    wave: Flags.integer({ description: 'Wave number (1-based) from the run record.', required: true, min: 1 }),
  }

  async run() {
    const { flags } = await this.parse(StepAlerts)
    const { deps, release } = this.connect(flags)
    const check = await alertsStep(deps, release, flags.wave, flags.holder)
    process.stdout.write(`${JSON.stringify({ wave: flags.wave, ...check })}\n`)
    if (check.held) process.exitCode = HELD_EXIT_CODE
    return { wave: flags.wave, ...check }
  }
}
