import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { ExitCode } from '../lifecycle/errors.js'
import { checkReleaseRef } from '../lifecycle/names.js'
import { validateSelection } from '../lifecycle/plan.js'
import { nodeStatus, type StatusReport } from '../lifecycle/status.service.js'
import { formatStatus } from '../ui/report-format.js'
import { globalFlags, selectionFlags, selectionFrom } from '../flags.js'
import { applyPolicy, policyFlags } from '../policy-flags.js'

export default class Status extends BaseCommand {
  static override summary = 'Show where every selected node stands.'
  static override description =
    "One row per node: lifecycle status, kata-deploy version, whether it is cordoned and by whom, and whether its kata-deploy pod runs the DaemonSet's current revision. When helm cannot be run, the nodes are still shown, the release line says why, and the exit code is 7. Read-only."
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --node-selector node-pool=kata --json',
  ]

  static override flags = { ...globalFlags, ...policyFlags, ...selectionFlags }

  async run(): Promise<StatusReport> {
    const parsed = await this.parse(Status)
    // The flags as given, before the kubeconfig is read or the policy looked up (a default is valid).
    checkReleaseRef({ name: parsed.flags['helm-release'], namespace: parsed.flags['helm-namespace'] })
    validateSelection(selectionFrom(parsed.flags))
    const { flags } = await applyPolicy(parsed, Status.flags)
    const report = await nodeStatus(
      createDeps(flags, { emit: () => undefined }),
      { name: flags['helm-release'], namespace: flags['helm-namespace'] },
      selectionFrom(flags),
    )
    if (!this.jsonEnabled()) this.log(formatStatus(report).join('\n'))
    // The nodes are shown, but helm could not say a word about the release: not a whole answer.
    if (report.release.helmProblem !== undefined) process.exitCode = ExitCode.ClusterUnavailable
    return report
  }
}
