import { Flags } from '@oclif/core'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { BaseCommand } from '../base-command.js'
import { createChartInstaller } from '../deps.js'
import { globalFlags } from '../flags.js'
import { InputError } from '../lifecycle/errors.js'
import { chartDefaults } from '../lifecycle/policy/policy.js'
import { missingVerificationPod } from '../lifecycle/services/policy.service.js'
import { applyPolicy, policyFlags } from '../policy-flags.js'
import { installWorkflow, type InstallWorkflowResult } from '../lifecycle/services/install-workflow.service.js'

/** The chart shipped in the package (`files` in package.json): <package root>/chart, from src/ or dist/. */
const BUNDLED_CHART = fileURLToPath(new URL('../../chart', import.meta.url))

export default class InstallWorkflow extends BaseCommand {
  static override summary =
    'Install or upgrade the Argo WorkflowTemplate (the kata-lifecycle-manager chart) and its RBAC.'
  static override description =
    "Runs helm upgrade --install of the chart bundled with kata-lcm. Needs Argo Workflows' CRDs on the cluster; refuses with a clear message (writing nothing) when they are missing. The fleet policy (--policy, or the cluster's) becomes the template's defaults, under any --set; --helm-release/--helm-namespace become the workflow's default kata-deploy release."
  static override examples = [
    '<%= config.bin %> install-workflow   # the fleet policy gives the verification pod and the defaults',
    '<%= config.bin %> install-workflow --verification-pod ./verify.yaml',
    '<%= config.bin %> install-workflow --verification-pod ./verify.yaml --namespace argo --set image.repository=registry.local/kata-lcm --dry-run',
  ]

  static override flags = {
    ...globalFlags,
    ...policyFlags,
    'verification-pod': Flags.string({
      description:
        "Pod YAML run on each upgraded node (the chart's defaults.verificationPod). Default: the policy's verification.pod.",
    }),
    namespace: Flags.string({
      char: 'n',
      description:
        'Namespace where Argo runs workflows: the WorkflowTemplate, its ServiceAccount and the helm release.',
      default: 'argo',
    }),
    set: Flags.string({
      description: 'Chart value key=value (repeatable), e.g. image.tag=0.1.0 or defaults.batchSize=2.',
      multiple: true,
      default: [],
    }),
    'set-string': Flags.string({
      description: 'Chart value key=value kept as a string (repeatable), e.g. nodeSelector.kata=true.',
      multiple: true,
      default: [],
    }),
    'release-name': Flags.string({ description: 'Helm release name of the chart.', default: 'kata-lifecycle-manager' }),
    'dry-run': Flags.boolean({
      description: 'Print the rendered manifests (helm template) and write nothing.',
      default: false,
    }),
  }

  async run(): Promise<InstallWorkflowResult> {
    const { flags, found, verification } = await applyPolicy(await this.parse(InstallWorkflow), InstallWorkflow.flags)
    if (!verification) throw missingVerificationPod(found.looked)
    if (!existsSync(BUNDLED_CHART))
      throw new InputError('install-workflow', `the bundled chart is missing at ${BUNDLED_CHART}; reinstall kata-lcm`)
    const result = await installWorkflow(createChartInstaller(flags), {
      release: flags['release-name'],
      namespace: flags.namespace,
      chartDir: BUNDLED_CHART,
      verificationPod: { path: verification.origin, source: verification.source },
      // The policy's name goes along: each workflow run names it in its first line.
      defaults: { ...chartDefaults(found.source?.policy), policy: found.inEffect.name },
      kataDeploy: { release: flags['helm-release'], namespace: flags['helm-namespace'] },
      sets: flags.set,
      setStrings: flags['set-string'],
      dryRun: flags['dry-run'],
    })
    if (!this.jsonEnabled()) this.log((result.manifests ?? result.notes ?? '').trimEnd())
    return result
  }
}
