import { exitStep } from '../../lifecycle/services/steps.service.js'
import { StepCommand, stepFlags } from '../../step-command.js'

export default class StepExit extends StepCommand {
  static override summary = 'Exit handler: roll back nodes a dead step left mid-flight, release the lock.'
  static override flags = stepFlags

  async run() {
    const { flags } = await this.parse(StepExit)
    const { deps, release } = this.connect(flags)
    const result = await exitStep(deps, release, flags.holder)
    this.log(
      `exit: rolled back ${result.rolledBack.join(', ') || 'nothing'}${result.failed.length ? `; FAILED: ${result.failed.join(', ')}` : ''}`,
    )
    if (result.failed.length > 0) process.exitCode = 4
    return result
  }
}
