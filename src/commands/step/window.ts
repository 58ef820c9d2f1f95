import { Flags } from '@oclif/core'
import { windowStep } from '../../lifecycle/services/steps.service.js'
import { StepCommand, stepFlags } from '../../step-command.js'

export default class StepWindow extends StepCommand {
  static override summary =
    "Before a wave: the seconds until one of the run's maintenance windows opens (0: open, or none)."
  static override description =
    'Prints the number alone on stdout, for the template, which suspends that long before the wave (no pod runs meanwhile); the wait is recorded on the run record, so kata-lcm status shows it.'

  static override flags = {
    ...stepFlags,
    wave: Flags.integer({ description: 'Wave number (1-based) from the run record.', required: true, min: 1 }),
  }

  async run() {
    const { flags } = await this.parse(StepWindow)
    const { deps, release } = this.connect(flags)
    const seconds = await windowStep(deps, release, flags.wave, flags.holder)
    process.stdout.write(`${seconds}\n`)
    return { wave: flags.wave, seconds }
  }
}
