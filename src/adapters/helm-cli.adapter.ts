/** The Helm port on the helm binary (MINIMUM_HELM or later, helm-version.ts). Values always travel through a 0600 temp file. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import type {
  ChartInfo,
  Helm,
  HelmUpgradeRequest,
  HelmVersion,
  ReleaseInfo,
  ReleaseRevision,
} from '../ports/helm.port.js'
import { HelmError } from '../lifecycle/errors.js'
import { flattenValues } from '../lifecycle/settings/values.js'
import { readHelmVersion, runHelm } from './helm-run.js'

/** Which helm to run and which cluster it talks to (the same as the kube adapter's). */
export interface HelmCliOptions {
  /** The helm binary: a path or a name on PATH. Default: $HELM_BIN, else `helm`. */
  bin?: string
  /** Passed as `--kubeconfig` on every call. */
  kubeconfig?: string
  /** Passed as `--kube-context` on every call. */
  kubeContext?: string
}

/** Placeholder for the values file in `describeUpgrade`. */
export const VALUES_FILE_PLACEHOLDER = '<values-file>'

const RELEASE_NOT_FOUND = /release: not found/

/** `kata-deploy-3.33.0-rc1` -> name `kata-deploy`, version `3.33.0-rc1` (helm history prints name-version). Pure. */
export function splitChartRef(chart: string): { name: string; version: string } {
  const match = /^(.*?)-(v?\d+\.\d+\.\d+.*)$/.exec(chart)
  return match ? { name: match[1] ?? chart, version: match[2] ?? '' } : { name: chart, version: '' }
}

function parseJson<T>(what: string, argv: string[], stdout: string): T {
  try {
    return JSON.parse(stdout) as T
  } catch (error) {
    throw new HelmError(`helm ${what}: output is not JSON`, argv, 0, stdout.slice(0, 500), { cause: error })
  }
}

/** Helm through its CLI; every call goes through runHelm (one place for errors and debug output). */
export class HelmCli implements Helm {
  readonly bin: string
  private readonly kubeFlags: string[]

  constructor(options: HelmCliOptions = {}) {
    this.bin = options.bin ?? process.env.HELM_BIN ?? 'helm'
    this.kubeFlags = [
      ...(options.kubeconfig ? ['--kubeconfig', options.kubeconfig] : []),
      ...(options.kubeContext ? ['--kube-context', options.kubeContext] : []),
    ]
  }

  private run(argv: string[]) {
    return runHelm(this.bin, [...argv, ...this.kubeFlags])
  }

  /** Read-only: `helm version --short` (e.g. `v4.1.4+g...`) and the version in it. */
  version(): Promise<HelmVersion> {
    return readHelmVersion(this.bin, this.kubeFlags)
  }

  /**
   * Read-only: `helm get metadata -o json` (helm >= 3.13), which carries the revision, status and
   * chart name/version/appVersion in one call. Undefined when the release does not exist.
   */
  async release(release: string, namespace: string): Promise<ReleaseInfo | undefined> {
    const argv = ['get', 'metadata', release, '-n', namespace, '-o', 'json']
    const stdout = await this.ofRelease(argv)
    if (stdout === undefined) return undefined
    const m = parseJson<{
      name?: string
      namespace?: string
      revision?: number
      status?: string
      chart?: string
      version?: string
      appVersion?: string
      deployedAt?: string
    }>('get metadata', argv, stdout)
    return {
      name: m.name ?? release,
      namespace: m.namespace ?? namespace,
      revision: m.revision ?? 0,
      status: m.status ?? 'unknown',
      chartName: m.chart ?? '',
      chartVersion: m.version ?? '',
      appVersion: m.appVersion ?? '',
      ...(m.deployedAt ? { deployedAt: m.deployedAt } : {}),
    }
  }

  async firstDeployed(release: string, namespace: string): Promise<string | undefined> {
    const argv = ['status', release, '-n', namespace, '-o', 'json']
    const stdout = await this.ofRelease(argv)
    if (stdout === undefined) return undefined
    const first = parseJson<{ info?: { first_deployed?: string } }>('status', argv, stdout).info?.first_deployed
    return typeof first === 'string' && first !== '' ? first : undefined
  }

  /** A read of one release: helm's stdout, or undefined when the release does not exist. */
  private async ofRelease(argv: string[]): Promise<string | undefined> {
    try {
      return (await this.run(argv)).stdout
    } catch (error) {
      if (error instanceof HelmError && RELEASE_NOT_FOUND.test(error.stderrTail)) return undefined
      throw error
    }
  }

  /** Read-only; oldest first; empty when the release does not exist. */
  async history(release: string, namespace: string): Promise<ReleaseRevision[]> {
    const argv = ['history', release, '-n', namespace, '-o', 'json']
    let stdout: string
    try {
      stdout = (await this.run(argv)).stdout
    } catch (error) {
      if (error instanceof HelmError && RELEASE_NOT_FOUND.test(error.stderrTail)) return []
      throw error
    }
    const rows =
      parseJson<
        { revision: number; status: string; chart: string; app_version?: string; description?: string }[] | null
      >('history', argv, stdout) ?? []
    return rows
      .map((r) => {
        const { name, version } = splitChartRef(r.chart)
        return {
          revision: r.revision,
          status: r.status,
          chartName: name,
          chartVersion: version,
          appVersion: r.app_version ?? '',
          description: r.description ?? '',
        }
      })
      .sort((a, b) => a.revision - b.revision)
  }

  /** Read-only: `helm get values -o json`; `{}` when there are none (helm prints `null`). */
  async values(
    release: string,
    namespace: string,
    options: { all: boolean; revision?: number },
  ): Promise<Record<string, unknown>> {
    const argv = ['get', 'values', release, '-n', namespace, '-o', 'json']
    if (options.all) argv.push('--all')
    if (options.revision !== undefined) argv.push('--revision', String(options.revision))
    const { stdout } = await this.run(argv)
    return parseJson<Record<string, unknown> | null>('get values', argv, stdout) ?? {}
  }

  /** Read-only (may pull the chart into helm's cache): `helm show chart`. */
  async showChart(chart: string, version?: string): Promise<ChartInfo> {
    const argv = ['show', 'chart', chart, ...(version ? ['--version', version] : [])]
    const { stdout } = await this.run(argv)
    let meta: { name?: unknown; version?: unknown; appVersion?: unknown } | null
    try {
      meta = parseYaml(stdout) as typeof meta
    } catch (error) {
      throw new HelmError('helm show chart: output is not YAML', argv, 0, stdout.slice(0, 500), { cause: error })
    }
    return {
      name: String(meta?.name ?? ''),
      version: String(meta?.version ?? ''),
      appVersion: String(meta?.appVersion ?? ''),
    }
  }

  /**
   * `helm upgrade --reset-values -f <0600 temp file>`: the release ends up with exactly
   * `request.values`. Rerunning the same request is safe (helm makes a new, equal revision).
   * The temp directory is removed whether helm succeeds or not.
   */
  async upgrade(request: HelmUpgradeRequest): Promise<void> {
    await this.withValuesFile(request, (file) => this.run(this.upgradeArgv(request, file)))
  }

  async rollbackWithoutHooks(release: string, namespace: string, revision: number, timeout?: string): Promise<void> {
    await this.run([
      'rollback',
      release,
      String(revision),
      '-n',
      namespace,
      '--no-hooks',
      ...(timeout ? ['--timeout', timeout] : []),
    ])
  }

  /** Read-only: `helm template` with the same chart, version and values file as `upgrade`; no cluster access. */
  async render(request: HelmUpgradeRequest): Promise<void> {
    await this.withValuesFile(request, (file) =>
      runHelm(this.bin, [
        'template',
        request.release,
        request.chart,
        '-n',
        request.namespace,
        ...(request.version ? ['--version', request.version] : []),
        '-f',
        file,
      ]),
    )
  }

  /** The request's values in a 0600 temp file for the duration of `use`; the directory is always removed. */
  private async withValuesFile<T>(request: HelmUpgradeRequest, use: (file: string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), 'kata-lcm-values-'))
    try {
      const file = join(dir, 'values.json')
      // JSON is YAML: no serializer ambiguity (e.g. "on"/"no" strings) for helm to trip on.
      await writeFile(file, JSON.stringify(request.values, null, 2), { mode: 0o600 })
      return await use(file)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  /** Pure: the command `upgrade` would run, for plans; the values file is shown as a placeholder. */
  describeUpgrade(request: HelmUpgradeRequest): string {
    const command = [this.bin, ...this.upgradeArgv(request, VALUES_FILE_PLACEHOLDER), ...this.kubeFlags]
      .map(quote)
      .join(' ')
    const overrides = request.overrides ? flattenValues(request.overrides) : []
    return overrides.length === 0
      ? command
      : `${command}  # ${VALUES_FILE_PLACEHOLDER}: the release's values with ${overrides.join(', ')}`
  }

  private upgradeArgv(request: HelmUpgradeRequest, valuesFile: string): string[] {
    return [
      'upgrade',
      request.release,
      request.chart,
      '-n',
      request.namespace,
      ...(request.version ? ['--version', request.version] : []),
      '--reset-values',
      '-f',
      valuesFile,
      ...(request.noHooks ? ['--no-hooks'] : []),
      ...(request.timeout ? ['--timeout', request.timeout] : []),
    ]
  }
}

/** Shell-quotes an argument for display only (never executed). */
function quote(arg: string): string {
  if (arg === VALUES_FILE_PLACEHOLDER || /^[\w@%+=:,./-]+$/.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}
