import { Args, Flags } from '@oclif/core'
import { hostname } from 'node:os'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { applyPolicy, policyFlags, poolsFrom } from '../policy-flags.js'
import type { LifecycleReport } from '../lifecycle/run/report.js'
import { rollbackNode } from '../lifecycle/services/rollback.service.js'
import { createProgress } from '../ui/progress.js'
import { formatLifecycleReport } from '../ui/report-format.js'
import { chartFlag, globalFlags, timingFlags, verificationFlags } from '../flags.js'
import { helmDuration, parseDuration } from '../lifecycle/settings/durations.js'

export default class Rollback extends BaseCommand {
  static override summary = 'Put one node back on the kata-deploy version it ran before.'
  static override description =
    "The version comes from the node (recorded when kata-lcm upgraded it), else from helm history, or --to-version. The node is cordoned, reverted, its kata-deploy restarted (daemonset) or reinstalled (job), verified with its pool's own pod (--pools, else the policy's pools), else --verification-pod, else the fleet policy's verification.pod, and uncordoned if kata-lcm cordoned it. --chart defaults to the policy's previousChart, then its chart."
  static override examples = [
    '<%= config.bin %> rollback worker-1',
    '<%= config.bin %> rollback worker-1 --verification-pod ./verify.yaml --to-version 3.27.0',
  ]

  static override args = { node: Args.string({ description: 'The node to roll back.', required: true }) }

  static override flags = {
    ...globalFlags,
    ...policyFlags,
    chart: chartFlag,
    'to-version': Flags.string({
      description: 'Version to go back to (default: recorded on the node, else helm history).',
    }),
    'verification-pod': Flags.string({
      description: "Pod YAML to verify the node after the rollback (default: the policy's verification.pod).",
    }),
    pools: Flags.string({
      description:
        "YAML list of node pools (as kata-lcm upgrade --pools): a node of a pool with its own verification pod is verified with that pod. Default: the policy's pools.",
    }),
    ...verificationFlags,
    ...timingFlags,
  }

  async run(): Promise<LifecycleReport> {
    const parsed = await this.parse(Rollback)
    const { args } = parsed
    const { flags, origins, found, verification: pod } = await applyPolicy(parsed, Rollback.flags)
    const name = (flag: string) => origins[flag] ?? `--${flag}`
    const verification = pod && {
      ...pod,
      namespace: flags['verification-namespace'],
      timeoutMs: parseDuration(name('verification-timeout'), flags['verification-timeout']),
    }
    // The chart that yields the version to go back to: the policy's previousChart before its chart.
    const previousChart = parsed.metadata.flags.chart?.setFromDefault ? found.source?.policy.previousChart : undefined
    // A node of a pool (--pools, else the policy's) with its own pod is verified with that pod.
    const pools = await poolsFrom(flags, found)
    const request = {
      node: args.node,
      release: { name: flags['helm-release'], namespace: flags['helm-namespace'] },
      chart: previousChart ?? flags.chart,
      ...(flags['to-version'] ? { toVersion: flags['to-version'] } : {}),
      ...(verification ? { verification } : {}),
      ...(pools
        ? {
            pools: {
              pools,
              namespace: flags['verification-namespace'],
              timeoutMs: parseDuration(name('verification-timeout'), flags['verification-timeout']),
            },
          }
        : {}),
      readyTimeoutMs: parseDuration(name('ready-timeout'), flags['ready-timeout']),
      helmTimeout: helmDuration(parseDuration(name('helm-timeout'), flags['helm-timeout'])),
      policy: found.inEffect,
    }
    const progress = createProgress({ json: this.jsonEnabled() })
    const runId = this.newRunId()
    const report = await rollbackNode(
      createDeps(flags, progress),
      request,
      runId,
      `${hostname()} pid ${process.pid} run ${runId}`,
    )
    await progress.close()
    if (!this.jsonEnabled()) this.log(formatLifecycleReport(report).join('\n'))
    process.exitCode = this.exitCodeFor(report.outcome)
    return report
  }
}
