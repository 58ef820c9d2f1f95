import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { globalFlags } from '../flags.js'
import { resumeRun } from '../lifecycle/services/pause.service.js'

export default class Resume extends BaseCommand {
  static override summary = 'Let a paused run go on with its next wave.'
  static override description =
    'Clears the flag kata-lcm pause set in the run record; the waiting run starts its next wave.'
  static override examples = ['<%= config.bin %> resume']
  static override flags = { ...globalFlags }

  async run() {
    const { flags } = await this.parse(Resume)
    const result = await resumeRun(createDeps(flags, { emit: () => undefined }), {
      name: flags['helm-release'],
      namespace: flags['helm-namespace'],
    })
    if (!this.jsonEnabled())
      this.log(result.wasPaused ? `run ${result.runId} resumed` : `run ${result.runId} was not paused`)
    return result
  }
}
