import { Flags } from '@oclif/core'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { MAX_DURATION_MS } from '../lifecycle/settings/durations.js'
import { ExitCode } from '../lifecycle/errors.js'
import { checkReleaseRef } from '../lifecycle/checks/names.js'
import { validateSelection } from '../lifecycle/run/plan.js'
import { nodeStatus, type StatusReport } from '../lifecycle/services/status.service.js'
import { watchStatus, type WatchVerdict } from '../lifecycle/services/status-watch.service.js'
import { formatWatchVerdict, renderStatus, type StatusOutput } from '../ui/report-format.js'
import { watchView } from '../ui/watch-view.js'
import { globalFlags, selectionFlags, selectionFrom } from '../flags.js'
import { applyPolicy, policyFlags } from '../policy-flags.js'

const WATCH_EXIT: Record<WatchVerdict['outcome'], ExitCode> = {
  completed: ExitCode.Success,
  'rolled-back': ExitCode.RolledBack,
  'manual-action': ExitCode.ManualActionNeeded,
}

export default class Status extends BaseCommand {
  static override summary = 'Show where every selected node stands.'
  static override description =
    "One row per node: lifecycle status, kata-deploy version, whether it is cordoned and by whom, and whether its kata-deploy pod runs the DaemonSet's current revision, with the count of nodes in each state. -o json|yaml prints the versioned report (apiVersion kata-lcm.katacontainers.io/v1alpha1, kind Status; docs/status.md), the same object --json prints; -o wide adds the run, the previous version and when the phase started. When helm cannot be run, the nodes are still shown, the release line says why, and the exit code is 7. --watch (-w) follows the run as kubectl rollout status does, through watches on the nodes and the run record: the run, its wave of the total and pool, paused or waiting for its window, elapsed time and ETA, the policy it runs under, the nodes per state; one line redrawn on a terminal, a timestamped line per change in CI or a pipe, exit 0 when the run completes (its record gone, every selected node completed), 3 when a node of it was rolled back, 4 when one could not be. Read-only."
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status -o wide',
    '<%= config.bin %> status --node-selector node-pool=kata -o yaml',
    '<%= config.bin %> status --watch',
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
    watch: Flags.boolean({
      char: 'w',
      description:
        'Follow the run until it ends (at most 24h): a line per change; exit 0 when it completes, 3 or 4 when a node of it fails.',
      exclusive: ['json', 'output'],
    }),
  }

  async run(): Promise<StatusReport | WatchVerdict> {
    const parsed = await this.parse(Status)
    // The flags as given, before the kubeconfig is read or the policy looked up (a default is valid).
    checkReleaseRef({ name: parsed.flags['helm-release'], namespace: parsed.flags['helm-namespace'] })
    validateSelection(selectionFrom(parsed.flags))
    const { flags } = await applyPolicy(parsed, Status.flags)
    const deps = createDeps(flags, { emit: () => undefined })
    const release = { name: flags['helm-release'], namespace: flags['helm-namespace'] }
    if (flags.watch) {
      const view = watchView()
      const verdict = await watchStatus(deps, release, selectionFrom(flags), (s) => view.show(s), {
        timeoutMs: MAX_DURATION_MS,
      })
      view.end(formatWatchVerdict(verdict))
      process.exitCode = WATCH_EXIT[verdict.outcome]
      return verdict
    }
    const report = await nodeStatus(deps, release, selectionFrom(flags))
    if (!this.jsonEnabled()) this.log(renderStatus(report, parsed.flags.output))
    // The nodes are shown, but helm could not say a word about the release: not a whole answer.
    if (report.release.helmProblem !== undefined) process.exitCode = ExitCode.ClusterUnavailable
    return report
  }
}
