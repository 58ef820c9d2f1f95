import { hostname, userInfo } from 'node:os'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { globalFlags } from '../flags.js'
import { pauseRun } from '../lifecycle/services/pause.service.js'

export default class Pause extends BaseCommand {
  static override summary = 'Hold the run in flight before its next wave (CLI or Argo), until kata-lcm resume.'
  static override description =
    'Sets a flag in the run record beside the release. The wave in progress finishes; the next wave waits (the CLI between waves, the Argo workflow at its next wave-prepare step) and the lease stays held. kata-lcm status shows the pause.'
  static override examples = ['<%= config.bin %> pause', '<%= config.bin %> resume']
  static override flags = { ...globalFlags }

  async run() {
    const { flags } = await this.parse(Pause)
    const by = `${userInfo().username}@${hostname()}`
    const result = await pauseRun(
      createDeps(flags, { emit: () => undefined }),
      { name: flags['helm-release'], namespace: flags['helm-namespace'] },
      by,
    )
    if (!this.jsonEnabled())
      this.log(
        `run ${result.runId} paused by ${result.paused.by} at ${result.paused.at}: its next wave waits for kata-lcm resume`,
      )
    return result
  }
}
