/** What the lifecycle needs from helm. The adapter runs the helm binary; values always go through a file. */

export interface ReleaseInfo {
  name: string
  namespace: string
  revision: number
  /** deployed, failed, pending-upgrade, ... */
  status: string
  chartName: string
  chartVersion: string
  appVersion: string
  /** When this revision was deployed, as helm says it (`helm get metadata`'s deployedAt), if it does. */
  deployedAt?: string
}

export interface ReleaseRevision {
  revision: number
  status: string
  chartName: string
  chartVersion: string
  appVersion: string
  description: string
}

export interface ChartInfo {
  name: string
  version: string
  appVersion: string
}

export interface HelmUpgradeRequest {
  release: string
  namespace: string
  chart: string
  version?: string
  /** The complete user-supplied values; the release's previous values are reset, never merged blindly. */
  values: Record<string, unknown>
  /** What kata-lcm sets over the operator's values (part of `values`); `describeUpgrade` names it. */
  overrides?: Record<string, unknown>
  noHooks?: boolean
  /** Go duration, e.g. `10m`. */
  timeout?: string
}

/** Which helm runs, and the version it reports. */
export interface HelmVersion {
  /** The binary run ($HELM_BIN, else `helm` from PATH). */
  bin: string
  /** What `helm version --short` printed, e.g. `v3.10.0+gabc`. */
  printed: string
  /** Its version as semver (`3.10.0`, `4.1.4`, `3.14.0` for a source build's `v3.14`), when one is there. */
  version: string | undefined
}

export interface Helm {
  /** `helm version --short`, parsed; throws a HelmError when helm is missing. Read-only. */
  version(): Promise<HelmVersion>
  /** The release, or undefined when it does not exist. Read-only. */
  release(release: string, namespace: string): Promise<ReleaseInfo | undefined>
  /**
   * When this install of the release was first deployed (`helm status -o json`'s info.first_deployed):
   * helm carries it through every upgrade and rollback, and a release uninstalled and installed again
   * under the same name gets a new one, so it names the release instance. Undefined when the release
   * does not exist. Read-only.
   */
  firstDeployed(release: string, namespace: string): Promise<string | undefined>
  history(release: string, namespace: string): Promise<ReleaseRevision[]>
  /** `all` = coalesced with chart defaults; otherwise only user-supplied values. */
  values(
    release: string,
    namespace: string,
    options: { all: boolean; revision?: number },
  ): Promise<Record<string, unknown>>
  /** `helm show chart` of a chart reference (OCI, repo, directory or .tgz) at a version. Read-only. */
  showChart(chart: string, version?: string): Promise<ChartInfo>
  upgrade(request: HelmUpgradeRequest): Promise<void>
  /**
   * `helm rollback <release> <revision> --no-hooks`: a new revision with that revision's chart and
   * values, no hooks run. kata-lcm uses it only to take a release out of a pending state a lost helm
   * process left behind.
   */
  rollbackWithoutHooks(release: string, namespace: string, revision: number, timeout?: string): Promise<void>
  /**
   * `helm template` of exactly what `upgrade(request)` would install, without touching the cluster:
   * throws a HelmError with the chart's reason when the chart refuses the values. Read-only.
   */
  render(request: HelmUpgradeRequest): Promise<void>
  /** The argv `upgrade` would run (values shown as a file), for --dry-run plans. */
  describeUpgrade(request: HelmUpgradeRequest): string
}
