import semver from 'semver'
import type {
  ChartInfo,
  Helm,
  HelmUpgradeRequest,
  HelmVersion,
  ReleaseInfo,
  ReleaseRevision,
} from '../../src/ports/helm.port.js'
import { HelmError } from '../../src/lifecycle/errors.js'
import { mergeValues, type Values } from '../../src/lifecycle/settings/values.js'
import type { HelmRevisionView } from '../../src/ports/cluster.port.js'
import type { FakeCluster } from './fake-cluster.js'

/** The kata-deploy chart's defaults as `helm get values --all` shows them, per version. */
export function chartDefaults(version: string): Values {
  const at = (minimum: string) => semver.valid(version) !== null && semver.gte(version, minimum)
  const defaults: Values = {
    image: { reference: 'quay.io/kata-containers/kata-deploy', tag: '' },
    nodeSelector: {},
    tolerations: [],
    verification: { namespace: 'default', timeout: 180, pod: '' },
  }
  if (at('3.27.0')) defaults.updateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } }
  // deploymentMode (and job.*) exist only from 3.32.0: an older release has no such key at all.
  if (at('3.32.0')) {
    defaults.deploymentMode = 'daemonset'
    defaults.job = { nodes: [], parallelism: 100, backoffLimit: 3 }
  }
  return defaults
}

interface Revision extends ReleaseRevision {
  chartRef: string
  values: Values
  /** When helm last wrote it (the storage Secret's modifiedAt), ISO 8601. */
  modifiedAt?: string
}

interface StoredRelease {
  name: string
  namespace: string
  revisions: Revision[]
  /** helm's info.first_deployed: the same for every revision of one install. */
  firstDeployed: string
}

export interface ReleaseSeed {
  name: string
  namespace: string
  version: string
  values?: Values
  chart?: string
}

export interface UpgradeFailure {
  message?: string
  /** Only requests matching this fail. */
  when?: (request: HelmUpgradeRequest) => boolean
  /** true (default): helm recorded a `failed` revision; false: it failed before (e.g. chart pull). */
  recordsRevision?: boolean
}

const clone = <T>(value: T): T => structuredClone(value)

function goDurationMs(duration: string | undefined): number {
  if (!duration) return 5 * 60_000
  let ms = 0
  for (const [, n, unit] of duration.matchAll(/(\d+)(h|m|s)/g))
    ms += Number(n) * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : 1000)
  return ms || 5 * 60_000
}

/**
 * An in-memory helm: releases with revision history, user and coalesced values, charts with the
 * versions they offer, and upgrades that the attached FakeCluster applies (DaemonSet roll or
 * install Jobs). Every upgrade request is kept, values included.
 */
export class FakeHelm implements Helm {
  /** Every upgrade request, in order (values deep-copied). */
  readonly upgrades: HelmUpgradeRequest[] = []
  installed = true
  /** What `version()` answers: which helm, what it printed, the version in it. Set it to play another helm. */
  helmVersion: HelmVersion = { bin: 'helm', printed: 'v3.17.0', version: '3.17.0' }
  private readonly releases = new Map<string, StoredRelease>()
  private readonly charts = new Map<string, string[]>()
  private readonly localCharts = new Map<string, string>()
  private failures: UpgradeFailure[] = []
  private installs = 0

  constructor(private readonly cluster?: FakeCluster) {
    cluster?.attachHelmStorage((namespace, release) => this.storage(release, namespace))
  }

  /** The release's revisions as helm's storage Secrets show them (`[]` when there is no release). */
  storage(name: string, namespace: string): HelmRevisionView[] {
    return (this.releases.get(`${namespace}/${name}`)?.revisions ?? []).map(({ revision, status, modifiedAt }) => ({
      revision,
      status,
      ...(modifiedAt ? { modifiedAt } : {}),
    }))
  }

  /**
   * An upgrade whose helm process was lost: a `pending-upgrade` revision written now, and nothing
   * applied. `finishAfterMs`: the lost process was still running and marks it deployed that much later.
   */
  leavePendingUpgrade(name: string, namespace: string, finishAfterMs?: number): void {
    const stored = this.mustRelease(name, namespace)
    const previous = stored.revisions.at(-1)!
    const pending: Revision = {
      ...clone(previous),
      revision: previous.revision + 1,
      status: 'pending-upgrade',
      description: 'Preparing upgrade',
      modifiedAt: this.now(),
    }
    stored.revisions.push(pending)
    this.cluster?.store.changed()
    if (finishAfterMs === undefined) return
    this.cluster?.store.clock.setTimer(finishAfterMs, () => {
      for (const r of stored.revisions) if (r.status === 'deployed') r.status = 'superseded'
      pending.status = 'deployed'
      pending.modifiedAt = this.now()
      this.cluster?.store.changed()
    })
  }

  async rollbackWithoutHooks(name: string, namespace: string, revision: number): Promise<void> {
    this.rollbacks.push({ name, namespace, revision })
    this.cluster?.journal({ verb: 'rollback', resource: 'helm-release', name, namespace, detail: { revision } })
    const stored = this.mustRelease(name, namespace)
    const target = stored.revisions.find((r) => r.revision === revision)
    if (!target) throw this.error(`Error: release has no ${revision} version`, ['rollback', name, String(revision)])
    for (const r of stored.revisions) if (r.status === 'deployed') r.status = 'superseded'
    stored.revisions.push({
      ...clone(target),
      revision: stored.revisions.at(-1)!.revision + 1,
      status: 'deployed',
      description: `Rollback to ${revision}`,
      modifiedAt: this.now(),
    })
    this.cluster?.store.changed()
  }

  /** Every `rollbackWithoutHooks`, in order. */
  readonly rollbacks: { name: string; namespace: string; revision: number }[] = []

  private now(): string {
    return (this.cluster?.store.clock.now() ?? new Date()).toISOString()
  }

  /** A chart reference (OCI or repo/name) offering these versions. */
  addChart(ref: string, versions: string[]): void {
    this.charts.set(ref, [...(this.charts.get(ref) ?? []), ...versions])
  }

  /** A chart directory or .tgz: one version, whatever --version says. */
  addLocalChart(path: string, version: string): void {
    this.localCharts.set(path, version)
  }

  /** `helm install`: revision 1, deployed, applied to the cluster as a settled installation. */
  async install(seed: ReleaseSeed): Promise<void> {
    const chartRef = seed.chart ?? 'kata-deploy'
    const revision: Revision = {
      revision: 1,
      status: 'deployed',
      chartName: 'kata-deploy',
      chartVersion: seed.version,
      appVersion: seed.version,
      description: 'Install complete',
      chartRef,
      values: clone(seed.values ?? {}),
    }
    // Each install is a new instance of the release, as a `helm uninstall` + `helm install` makes one.
    this.installs += 1
    this.releases.set(`${seed.namespace}/${seed.name}`, {
      name: seed.name,
      namespace: seed.namespace,
      revisions: [revision],
      firstDeployed: new Date(Date.UTC(2026, 0, 1, 0, 0, this.installs)).toISOString(),
    })
    await this.cluster?.applyRelease({
      namespace: seed.namespace,
      release: seed.name,
      revision: 1,
      version: seed.version,
      values: mergeValues(chartDefaults(seed.version), revision.values),
      hooks: false,
      timeoutMs: 0,
      initial: true,
    })
  }

  /** Forces the latest revision's status (e.g. `pending-upgrade` after an interrupted helm). */
  setStatus(name: string, namespace: string, status: string): void {
    this.mustRelease(name, namespace).revisions.at(-1)!.status = status
  }

  /** The next matching upgrade fails. */
  failNextUpgrade(failure: UpgradeFailure = {}): void {
    this.failures.push(failure)
  }

  /** The upgrades that ran hooks / that did not. */
  upgradesWith(noHooks: boolean): HelmUpgradeRequest[] {
    return this.upgrades.filter((u) => (u.noHooks ?? false) === noHooks)
  }

  async version(): Promise<HelmVersion> {
    if (!this.installed)
      throw new HelmError('helm not found on PATH', ['helm', 'version'], undefined, 'spawn helm ENOENT', {
        suggestions: ['install helm 3.x or 4.x'],
      })
    return { ...this.helmVersion }
  }

  async release(name: string, namespace: string): Promise<ReleaseInfo | undefined> {
    const stored = this.releases.get(`${namespace}/${name}`)
    const latest = stored?.revisions.at(-1)
    if (!stored || !latest) return undefined
    return {
      name,
      namespace,
      revision: latest.revision,
      status: latest.status,
      chartName: latest.chartName,
      chartVersion: latest.chartVersion,
      appVersion: latest.appVersion,
      // Unique per install and revision, as helm's timestamp is.
      deployedAt: `${stored.firstDeployed}+${latest.revision}`,
    }
  }

  async firstDeployed(name: string, namespace: string): Promise<string | undefined> {
    return this.releases.get(`${namespace}/${name}`)?.firstDeployed
  }

  async history(name: string, namespace: string): Promise<ReleaseRevision[]> {
    return this.mustRelease(name, namespace).revisions.map(
      ({ revision, status, chartName, chartVersion, appVersion, description }) => ({
        revision,
        status,
        chartName,
        chartVersion,
        appVersion,
        description,
      }),
    )
  }

  async values(
    name: string,
    namespace: string,
    options: { all: boolean; revision?: number },
  ): Promise<Record<string, unknown>> {
    const stored = this.mustRelease(name, namespace)
    const revision =
      options.revision === undefined
        ? stored.revisions.at(-1)
        : stored.revisions.find((r) => r.revision === options.revision)
    if (!revision) throw this.error(`release: revision ${options.revision} not found`, ['get', 'values', name])
    return clone(options.all ? mergeValues(chartDefaults(revision.chartVersion), revision.values) : revision.values)
  }

  async showChart(chart: string, version?: string): Promise<ChartInfo> {
    return this.resolveChart(chart, version)
  }

  /** Charts that refuse values at render time, as kata-deploy 4.1.0 refuses job.nodeSelector. */
  readonly renderRefusals: { when: (request: HelmUpgradeRequest) => boolean; message: string }[] = []
  readonly renders: HelmUpgradeRequest[] = []

  async render(request: HelmUpgradeRequest): Promise<void> {
    this.renders.push(clone(request))
    this.resolveChart(request.chart, request.version)
    const refusal = this.renderRefusals.find((r) => r.when(request))
    if (refusal) throw this.error(refusal.message, ['template', request.release, request.chart])
  }

  async upgrade(request: HelmUpgradeRequest): Promise<void> {
    this.upgrades.push(clone(request))
    this.cluster?.journal({
      verb: 'upgrade',
      resource: 'helm-release',
      name: request.release,
      namespace: request.namespace,
      detail: { version: request.version, noHooks: request.noHooks ?? false },
    })
    const stored = this.releases.get(`${request.namespace}/${request.release}`)
    if (!stored) throw this.error(`UPGRADE FAILED: "${request.release}" has no deployed releases`, this.argv(request))
    const previous = stored.revisions.at(-1)!
    if (previous.status.startsWith('pending-'))
      throw this.error(
        'UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress',
        this.argv(request),
      )
    const chart = this.resolveChart(request.chart, request.version)
    const revision: Revision = {
      revision: previous.revision + 1,
      status: 'pending-upgrade',
      chartName: chart.name,
      chartVersion: chart.version,
      appVersion: chart.appVersion,
      description: 'Preparing upgrade',
      chartRef: request.chart,
      values: clone(request.values),
    }
    const failure = this.failures.find((f) => f.when?.(request) ?? true)
    if (failure) {
      this.failures = this.failures.filter((f) => f !== failure)
      const message = failure.message ?? `UPGRADE FAILED: injected failure upgrading to ${chart.version}`
      if (failure.recordsRevision ?? true)
        stored.revisions.push({ ...revision, status: 'failed', description: message })
      throw this.error(message, this.argv(request))
    }
    revision.modifiedAt = this.now()
    stored.revisions.push(revision)
    try {
      await this.cluster?.applyRelease({
        namespace: request.namespace,
        release: request.release,
        revision: revision.revision,
        version: chart.version,
        values: mergeValues(chartDefaults(chart.version), request.values),
        hooks: !request.noHooks,
        timeoutMs: goDurationMs(request.timeout),
      })
    } catch (error) {
      revision.status = 'failed'
      revision.description = (error as Error).message
      throw this.error((error as Error).message, this.argv(request))
    }
    for (const r of stored.revisions) if (r.status === 'deployed') r.status = 'superseded'
    revision.status = 'deployed'
    revision.description = 'Upgrade complete'
  }

  describeUpgrade(request: HelmUpgradeRequest): string {
    return this.argv(request).join(' ')
  }

  private argv(request: HelmUpgradeRequest): string[] {
    return [
      'helm',
      'upgrade',
      request.release,
      request.chart,
      '-n',
      request.namespace,
      ...(request.version ? ['--version', request.version] : []),
      '--reset-values',
      '-f',
      '<values-file>',
      ...(request.noHooks ? ['--no-hooks'] : []),
      ...(request.timeout ? ['--timeout', request.timeout] : []),
    ]
  }

  private resolveChart(chart: string, version?: string): ChartInfo {
    const local = this.localCharts.get(chart)
    if (local !== undefined) return { name: 'kata-deploy', version: local, appVersion: local }
    const versions = this.charts.get(chart)
    if (!versions) throw this.error(`Error: failed to download "${chart}"`, ['show', 'chart', chart])
    const picked = version ?? [...versions].sort(semver.rcompare)[0]
    if (picked === undefined || !versions.includes(picked))
      throw this.error(`Error: chart "kata-deploy" version "${version}" not found in ${chart}`, [
        'show',
        'chart',
        chart,
        '--version',
        String(version),
      ])
    return { name: 'kata-deploy', version: picked, appVersion: picked }
  }

  private mustRelease(name: string, namespace: string): StoredRelease {
    const stored = this.releases.get(`${namespace}/${name}`)
    if (!stored) throw this.error('Error: release: not found', ['history', name, '-n', namespace])
    return stored
  }

  private error(message: string, argv: string[]): HelmError {
    return new HelmError(message, argv, 1, message)
  }
}
