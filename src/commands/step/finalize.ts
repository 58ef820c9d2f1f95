import { finalizeStep } from '../../lifecycle/services/steps.service.js'
import { StepCommand, stepFlags } from '../../step-command.js'

export default class StepFinalize extends StepCommand {
  static override summary = "Last step: restore the operator's values, clear the run record, release the lock."
  static override flags = stepFlags

  async run() {
    const { flags } = await this.parse(StepFinalize)
    const { deps, release } = this.connect(flags)
    await finalizeStep(deps, release, flags.holder)
    this.log('finalized')
  }
}
