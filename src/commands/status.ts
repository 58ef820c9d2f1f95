import { Flags } from '@oclif/core'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { ExitCode } from '../lifecycle/errors.js'
import { checkReleaseRef } from '../lifecycle/names.js'
import { validateSelection } from '../lifecycle/plan.js'
import { nodeStatus, type StatusReport } from '../lifecycle/status.service.js'
import { renderStatus, type StatusOutput } from '../ui/report-format.js'
import { globalFlags, selectionFlags, selectionFrom } from '../flags.js'
import { applyPolicy, policyFlags } from '../policy-flags.js'

export default class Status extends BaseCommand {
  static override summary = 'Show where every selected node stands.'
  static override description =
    "One row per node: lifecycle status, kata-deploy version, whether it is cordoned and by whom, and whether its kata-deploy pod runs the DaemonSet's current revision, with the count of nodes in each state. -o json|yaml prints the versioned report (apiVersion kata-lcm.katacontainers.io/v1alpha1, kind Status; docs/status.md), the same object --json prints; -o wide adds the run, the previous version and when the phase started. When helm cannot be run, the nodes are still shown, the release line says why, and the exit code is 7. Read-only."
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status -o wide',
    '<%= config.bin %> status --node-selector node-pool=kata -o yaml',
  ]

  static override flags = {
    ...globalFlags,
    ...policyFlags,
    ...selectionFlags,
    output: Flags.option({
      char: 'o',
      description:
        'Output format, as kubectl: json or yaml (the versioned report, docs/status.md), wide (the table with more columns).',
      options: ['json', 'yaml', 'wide'] as const satisfies readonly StatusOutput[],
      exclusive: ['json'],
    })(),
  }

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
    if (!this.jsonEnabled()) this.log(renderStatus(report, parsed.flags.output))
    // The nodes are shown, but helm could not say a word about the release: not a whole answer.
    if (report.release.helmProblem !== undefined) process.exitCode = ExitCode.ClusterUnavailable
    return report
  }
}
