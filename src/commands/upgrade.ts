import { hostname } from 'node:os'
import { BaseCommand } from '../base-command.js'
import { createDeps } from '../deps.js'
import { missingVerificationPod } from '../lifecycle/services/policy.service.js'
import { applyPolicy, policyFlags, poolsFrom, readFlagFile } from '../policy-flags.js'
import { everyPoolVerifies, NO_RUN_POD, parsePoolsFile, type Pool } from '../lifecycle/run/pools.js'
import type { LifecycleReport } from '../lifecycle/run/report.js'
import { validateRequest, validateSettings } from '../lifecycle/checks/prerequisites.js'
import { parseVerificationTemplate } from '../lifecycle/engine/verification.js'
import { upgrade } from '../lifecycle/services/upgrade.service.js'
import { checkMetricsFile, MetricsFile } from '../ui/metrics-file.js'
import { createProgress } from '../ui/progress.js'
import { formatLifecycleReport } from '../ui/report-format.js'
import {
  allowDowngradeFlag,
  booleanSetting,
  chartFlag,
  defaultedSetting,
  requiredSetting,
  stringSetting,
  checkDrainOptions,
  drainFlags,
  globalFlags,
  poolsFlag,
  policyWindows,
  windowFlag,
  rolloutFlags,
  alertFlags,
  selectionFlags,
  timingFlags,
  upgradeRequestFrom,
  verificationFlags,
  type UpgradeFlags,
} from '../flags.js'

export default class Upgrade extends BaseCommand {
  static override summary = 'Upgrade kata-deploy on the selected nodes, wave by wave, verifying each node.'
  static override description =
    'Cordons each wave, rolls the new kata-deploy onto it, runs your verification pod on every node, and uncordons the nodes that pass (only those kata-lcm cordoned). A failed node is rolled back and the run stops before the next wave. Rerunning the same command resumes: completed nodes are skipped.'
  static override examples = [
    '<%= config.bin %> upgrade --target-version 3.28.0 --batch-size 2   # the fleet policy (kata-lcm init, policy set) gives the rest',
    '<%= config.bin %> upgrade --target-version 3.28.0 --verification-pod ./verify.yaml',
    '<%= config.bin %> upgrade --target-version 3.28.0 --verification-pod ./verify.yaml --node-selector node-pool=kata --batch-size 2',
    '<%= config.bin %> upgrade --target-version 3.28.0 --verification-pod ./verify.yaml --node-taint-key kata-lifecycle-manager --node-taint-value pending --dry-run',
  ]

  static override flags = {
    ...globalFlags,
    ...policyFlags,
    'target-version': requiredSetting('target-version'),
    chart: chartFlag,
    'previous-chart': stringSetting('previous-chart'),
    ...selectionFlags,
    ...rolloutFlags,
    ...alertFlags,
    pools: poolsFlag,
    window: windowFlag,
    'deployment-mode': defaultedSetting('deployment-mode'),
    ...drainFlags,
    'verification-pod': stringSetting('verification-pod'),
    ...verificationFlags,
    ...timingFlags,
    'allow-downgrade': allowDowngradeFlag,
    'dry-run': booleanSetting('dry-run'),
    'metrics-file': stringSetting('metrics-file'),
  }

  async run(): Promise<LifecycleReport> {
    const parsed = await this.parse(Upgrade)
    // Everything the flags alone decide, before the kubeconfig is even read or the policy looked up.
    const filePools = await checkGivenFlags(parsed.flags)
    const { flags, origins, found, verification } = await applyPolicy(parsed, Upgrade.flags)
    checkDrainOptions(flags, origins)
    const pools = filePools ?? (await poolsFrom(flags, found))
    if (!verification && !everyPoolVerifies(pools)) throw missingVerificationPod(found.looked)
    const fromFlags = upgradeRequestFrom(flags, verification ?? NO_RUN_POD, origins, pools)
    // --window beats the policy's windows (a list, so taken whole, not merged).
    const windows = fromFlags.windows ?? policyWindows(found.source)
    const request = { ...fromFlags, ...(windows ? { windows } : {}), policy: found.inEffect }
    // Again with the policy's values in (an error names the policy's field), and its verification pod.
    validateRequest(request)
    const progress = createProgress({ json: this.jsonEnabled() })
    const stopSignals = this.handleSignals()
    const runId = this.newRunId()
    const metrics = flags['metrics-file']
      ? new MetricsFile(
          flags['metrics-file'],
          { runId, targetVersion: request.targetVersion, release: request.release },
          progress,
        )
      : undefined
    try {
      const report = await upgrade(
        createDeps(flags, metrics ?? progress),
        request,
        runId,
        this.abort.signal,
        `${hostname()} pid ${process.pid} run ${runId}`,
      )
      metrics?.finish(report)
      await progress.close()
      if (!this.jsonEnabled()) this.log(formatLifecycleReport(report).join('\n'))
      process.exitCode = this.exitCodeFor(report.outcome)
      return report
    } catch (error) {
      metrics?.fail()
      throw error
    } finally {
      stopSignals()
    }
  }
}

/**
 * The checks the flags decide alone, on the flags as given (a flag beats the policy, and a built-in
 * default is valid): the files they name parsed, every setting checked. Reads only those files;
 * returns the --pools file's pools.
 */
async function checkGivenFlags(
  flags: UpgradeFlags & {
    pools?: string | undefined
    'verification-pod'?: string | undefined
    'metrics-file'?: string | undefined
  },
): Promise<Pool[] | undefined> {
  const pools = flags.pools
    ? parsePoolsFile(await readFlagFile('--pools', flags.pools), `--pools ${flags.pools}`)
    : undefined
  const pod = flags['verification-pod']
  if (pod) parseVerificationTemplate(await readFlagFile('--verification-pod', pod), pod)
  if (flags['metrics-file']) await checkMetricsFile(flags['metrics-file'])
  validateSettings(upgradeRequestFrom(flags, NO_RUN_POD, {}, pools))
  return pools
}
