import { HelmError, InputError, PreconditionError } from '../errors.js'
import type { ChartInstaller, ChartRelease } from '../../ports/chart.port.js'
import { checkHelmVersion } from '../checks/helm-version.js'
import { checkNamespace, checkReleaseName, checkReleaseRef } from '../checks/names.js'
import { parseVerificationTemplate } from '../engine/verification.js'

/**
 * `kata-lcm install-workflow`: installs (or upgrades) the bundled kata-lifecycle-manager chart,
 * i.e. the Argo WorkflowTemplate and its RBAC, with helm. The chart, not this code, knows what is
 * installed; this checks the input first and turns helm's "no such kind" into one clear line.
 */

export type { ChartInstaller, ChartRelease } from '../../ports/chart.port.js'

export interface InstallWorkflowRequest {
  release: string
  /** Namespace of the release, the WorkflowTemplate and its ServiceAccount (where Argo runs workflows). */
  namespace: string
  chartDir: string
  /** The pod's YAML and where it came from (a file, or the fleet policy). */
  verificationPod: { path: string; source: string }
  /** The fleet policy's defaults for the template (`defaults.*`), under every --set. */
  defaults?: Record<string, unknown>
  /** The kata-deploy release the workflow upgrades by default. */
  kataDeploy: { release: string; namespace: string }
  /** The operator's own `--set key=value` overrides, applied last. */
  sets: string[]
  /** The operator's `--set-string key=value` overrides: the value stays a string (`true`, `1`). */
  setStrings?: string[]
  dryRun: boolean
}

export interface InstallWorkflowResult {
  release: string
  namespace: string
  dryRun: boolean
  /** `--dry-run`: the rendered manifests. */
  manifests?: string
  /** After an install: helm's output, with the chart's NOTES (how to submit and watch). */
  notes?: string
}

export const ARGO_CRDS_MISSING =
  'Argo Workflows CRDs are missing (workflowtemplates.argoproj.io): install Argo Workflows first'

/** True when helm failed because the API server does not know the WorkflowTemplate kind. Pure. */
export function isMissingArgoCrd(stderr: string): boolean {
  return (
    /no matches for kind "?WorkflowTemplate"? in (version|group) "?argoproj\.io/i.test(stderr) ||
    /could not find the requested resource.*argoproj\.io/i.test(stderr)
  )
}

/**
 * Validates the verification pod and the `--set` overrides, then helm's version, then renders (dry run) or installs the
 * chart. Writes nothing when the input is wrong or the Argo CRDs are missing (helm maps every
 * manifest to an API kind before it stores or applies anything). Idempotent: an install twice
 * leaves the same objects.
 */
export async function installWorkflow(
  installer: ChartInstaller,
  request: InstallWorkflowRequest,
): Promise<InstallWorkflowResult> {
  checkReleaseName('--release-name', request.release)
  checkNamespace('--namespace', request.namespace)
  checkReleaseRef({ name: request.kataDeploy.release, namespace: request.kataDeploy.namespace })
  parseVerificationTemplate(request.verificationPod.source, request.verificationPod.path)
  for (const [flag, sets] of [
    ['--set', request.sets],
    ['--set-string', request.setStrings ?? []],
  ] as const) {
    for (const set of sets) {
      if (!/^[^=]+=/.test(set))
        throw new InputError(flag, `"${set}" is not key=value; use e.g. ${flag} image.tag=0.1.0`)
    }
  }
  await checkHelmVersion(installer)
  const chart: ChartRelease = {
    release: request.release,
    namespace: request.namespace,
    chartDir: request.chartDir,
    values: request.defaults ? { defaults: request.defaults } : {},
    fileValues: { 'defaults.verificationPod': request.verificationPod.source },
    sets: [
      `defaults.helmRelease=${request.kataDeploy.release}`,
      `defaults.helmNamespace=${request.kataDeploy.namespace}`,
      ...request.sets,
    ],
    setStrings: request.setStrings ?? [],
  }
  const base = { release: request.release, namespace: request.namespace, dryRun: request.dryRun }
  try {
    if (request.dryRun) return { ...base, manifests: await installer.render(chart) }
    return { ...base, notes: await installer.install(chart) }
  } catch (error) {
    // The chart's values.schema.json refused a --set: the operator's input, named as such (exit 2).
    if (error instanceof HelmError && /values don't meet the specifications of the schema/.test(error.stderrTail)) {
      const detail = error.stderrTail
        .split('\n')
        .filter((l) => /^- |at '|:/.test(l.trim()))
        .map((l) => l.trim().replace(/^- /, ''))
        .slice(-3)
        .join('; ')
      throw new InputError(
        request.setStrings?.length ? '--set/--set-string' : '--set',
        `the chart's schema refuses the values: ${detail || error.message}`,
        {
          cause: error,
          suggestions: [
            'kata-lcm install-workflow --help lists the chart values; a string that looks like true or 1 needs --set-string',
          ],
        },
      )
    }
    if (error instanceof HelmError && isMissingArgoCrd(error.stderrTail)) {
      throw new PreconditionError(ARGO_CRDS_MISSING, {
        cause: error,
        suggestions: [
          'see https://argo-workflows.readthedocs.io/en/latest/installation/ ; check with: kubectl get crd workflowtemplates.argoproj.io',
        ],
      })
    }
    throw error
  }
}
