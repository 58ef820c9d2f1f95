/** The bundled kata-lifecycle-manager chart, installed through helm (`kata-lcm install-workflow`). */
import type { HelmVersion } from './helm.port.js'

/** One helm invocation of the bundled chart. */
export interface ChartRelease {
  release: string
  namespace: string
  chartDir: string
  /** Values under every `--set` (a values file): the fleet policy's defaults. */
  values: Record<string, unknown>
  /** `--set-file key=<a file with this content>`: the text goes to helm as it is (no quoting or escaping). */
  fileValues: Record<string, string>
  /** `--set key=value`, in order: a later one wins. */
  sets: string[]
  /** `--set-string key=value`: values kept as strings. */
  setStrings: string[]
}

/** What installing the chart needs from helm. */
export interface ChartInstaller {
  /** `helm version --short`, parsed; throws a HelmError when helm is missing. Read-only. */
  version(): Promise<HelmVersion>
  /** `helm template`: the rendered manifests. Offline; writes nothing. */
  render(chart: ChartRelease): Promise<string>
  /** `helm upgrade --install`; returns what helm printed (the chart's NOTES). Rerunning is safe. */
  install(chart: ChartRelease): Promise<string>
}
