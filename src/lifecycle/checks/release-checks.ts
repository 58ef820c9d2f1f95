import semver from 'semver'
import type { ReleaseInfo } from '../../ports/helm.port.js'
import type { LifecycleDeps, ReleaseRef } from '../context.js'
import { describeError, InputError, PreconditionError } from '../errors.js'
import { DEPLOYMENT_MODES, detectMode, isDeploymentMode, strategyFor } from '../modes/index.js'
import type { DeploymentStrategy } from '../modes/strategy.js'
import type { Values } from '../settings/values.js'

/**
 * The checks every run of a release shares, whoever drives it (`upgrade`, the Argo `step plan`,
 * `rollback NODE`): the release is there and deployed, its mode is one kata-lcm knows, a chart is
 * the version asked for, and what helm history says the version before was. One wording each.
 */

/**
 * The release a run may act on: it exists, its chart version is semver, and it is deployed, or, for
 * a kata-lcm run in flight (`inFlight`), pending its own earlier helm command (pending-release.ts
 * waits for or clears it). Pure.
 */
export function checkRelease(ref: ReleaseRef, release: ReleaseInfo | undefined, inFlight = false): ReleaseInfo {
  if (!release)
    throw new PreconditionError(
      `--helm-release: no release "${ref.name}" in namespace ${ref.namespace}; check --helm-release and --helm-namespace (helm list -A shows them)`,
    )
  if (!semver.valid(release.chartVersion))
    throw new PreconditionError(
      `release ${release.name} runs chart version "${release.chartVersion}", which is not semver; kata-lcm cannot order versions`,
    )
  if (release.status !== 'deployed' && !(inFlight && release.status.startsWith('pending-')))
    throw new PreconditionError(
      `release ${release.name} is "${release.status}", not deployed; an earlier helm operation did not finish`,
      {
        suggestions: [
          `inspect: helm history ${release.name} -n ${release.namespace}`,
          `if an upgrade was interrupted: helm rollback ${release.name} -n ${release.namespace}`,
        ],
      },
    )
  return release
}

/** The strategy of the mode the release's values say it runs in (`allValues`: helm's computed values). Pure. */
export function releaseStrategy(release: ReleaseInfo, allValues: Values): DeploymentStrategy {
  const mode = detectMode(allValues)
  if (!isDeploymentMode(mode))
    throw new PreconditionError(
      `release ${release.name} has deploymentMode "${mode}"; kata-lcm knows ${DEPLOYMENT_MODES.join(' and ')}`,
    )
  return strategyFor(mode)
}

/** Throws an InputError naming `flag` unless helm reads `chart` at exactly `version`; `hint` ends the mismatch's line. */
export async function checkChart(
  deps: LifecycleDeps,
  chart: string,
  version: string,
  flag: string,
  hint = '',
): Promise<void> {
  let info
  try {
    info = await deps.helm.showChart(chart, version)
  } catch (error) {
    throw new InputError(
      flag,
      `cannot read chart ${chart} at version ${version}: ${describeError(error).split('\n')[0]}`,
      { cause: error },
    )
  }
  if (info.version !== version) {
    throw new InputError(
      flag,
      `${chart} is ${info.name} ${info.version}, not ${version}; a local chart has one version, so give the chart of ${version}${hint}`,
    )
  }
}

/** The newest chart version in the release's helm history other than `current` (semver only), if any. */
export async function versionBefore(
  deps: LifecycleDeps,
  release: ReleaseRef,
  current: string,
): Promise<string | undefined> {
  const history = await deps.helm.history(release.name, release.namespace)
  return [...history]
    .sort((a, b) => b.revision - a.revision)
    .find((r) => r.chartVersion !== current && semver.valid(r.chartVersion))?.chartVersion
}
