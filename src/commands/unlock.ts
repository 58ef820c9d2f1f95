import { Flags } from '@oclif/core'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { unlock } from '../lifecycle/services/unlock.service.js'
import { globalFlags } from '../flags.js'

export default class Unlock extends BaseCommand {
  static override summary = 'Break a stale single-runner lock (and optionally forget an interrupted run).'
  static override description =
    "Only for a run that is gone for sure (its process killed, its workflow deleted). The CLI and the Argo workflow share one Lease per release: whoever is working renews it every 20s (an Argo step for as long as it runs; between two steps of a workflow it rests for the seconds the next step pod takes to start), and a lease not renewed for 60s is taken over by the next run anyway. --forget-run also drops the interrupted run's record (its rollback target); nodes keep their annotations."
  static override examples = [
    '<%= config.bin %> unlock',
    '<%= config.bin %> unlock --forget-run --helm-namespace kube-system',
  ]

  static override flags = {
    ...globalFlags,
    'forget-run': Flags.boolean({
      description: "Also delete the interrupted run's record; the operator's values it kept are printed.",
      default: false,
    }),
  }

  async run() {
    const { flags } = await this.parse(Unlock)
    const result = await unlock(
      createDeps(flags, { emit: () => undefined }),
      { name: flags['helm-release'], namespace: flags['helm-namespace'] },
      flags['forget-run'],
    )
    if (!this.jsonEnabled()) {
      this.log(
        result.removedLock
          ? `removed the lock held by ${result.removedLock.holder} (renewed ${result.removedLock.renewedAt})`
          : 'no lock was held',
      )
      if (flags['forget-run']) this.log(result.forgotRun ? `forgot run ${result.forgotRun}` : 'no run record was there')
      if (result.operatorValues) {
        // Nothing the operator set may be lost: the record's values are handed back, in full.
        this.log(
          `your own values of the release, as the run captured them (put them back with helm upgrade ${flags['helm-release']} CHART -n ${flags['helm-namespace']} --reset-values -f FILE if the release still carries kata-lcm's OnDelete / verification.pod overrides):`,
        )
        this.log(JSON.stringify(result.operatorValues, null, 2))
      }
    }
    return result
  }
}
