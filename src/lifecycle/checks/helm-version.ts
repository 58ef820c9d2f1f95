/**
 * The oldest helm kata-lcm supports, and the check every command that runs helm makes before its
 * first write. 3.14.0: runs read the release with `helm get metadata` (new in helm 3.13.0), and the
 * mode switch kata-lcm prints for kata-deploy before 4.1.0 uses `--reset-then-reuse-values` (new in
 * 3.14.0). helm 4 has both.
 */
import semver from 'semver'
import type { HelmVersion } from '../../ports/helm.port.js'
import { PreconditionError } from '../errors.js'

/** The oldest helm kata-lcm runs with (docs/compatibility.md says why). */
export const MINIMUM_HELM = '3.14.0'

/** What an operator with too old (or no) helm is told to install: `helm v3.14+ or v4`. */
export const SUPPORTED_HELM = `helm v${semver.major(MINIMUM_HELM)}.${semver.minor(MINIMUM_HELM)}+ or v4`

/**
 * Throws a PreconditionError (exit 2) naming the helm binary, the version it reports and the
 * minimum, when that version is older than MINIMUM_HELM or cannot be read. A pre-release counts as
 * its release (3.14.0-rc.1 has 3.14.0's commands). Read-only; the helm binary's own failure (not
 * found) is its HelmError, unchanged.
 */
export async function checkHelmVersion(helm: { version(): Promise<HelmVersion> }): Promise<void> {
  const found = await helm.version()
  const problem = helmVersionProblem(found)
  if (problem)
    throw new PreconditionError(problem, {
      suggestions: [
        `install ${SUPPORTED_HELM} (https://helm.sh/docs/intro/install/), or set HELM_BIN to one; \`${found.bin} version --short\` shows which runs`,
      ],
    })
}

/** Why this helm will not do, or undefined when it will. Pure. */
export function helmVersionProblem(found: HelmVersion): string | undefined {
  const release = found.version === undefined ? null : semver.coerce(found.version)
  if (release === null)
    return `helm "${found.bin}" reports "${found.printed}", in which kata-lcm finds no version; it needs helm ${MINIMUM_HELM} or later`
  if (semver.lt(release, MINIMUM_HELM))
    return `helm "${found.bin}" is ${found.printed}, older than ${MINIMUM_HELM}, the oldest kata-lcm supports (it needs \`helm get metadata\`, new in 3.13.0, and \`--reset-then-reuse-values\`, new in 3.14.0)`
  return undefined
}
