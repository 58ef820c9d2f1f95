/** The bundled kata-lifecycle-manager chart, installed through helm (`kata-lcm install-workflow`). */

/** One helm invocation of the bundled chart. */
export interface ChartRelease {
  release: string
  namespace: string
  chartDir: string
  /** `--set-file key=path`: files go to helm as they are (no quoting or escaping on the way). */
  setFiles: Record<string, string>
  /** `--set key=value`, in order: a later one wins. */
  sets: string[]
  /** `--set-string key=value`: values kept as strings. */
  setStrings: string[]
}

/** What installing the chart needs from helm. */
export interface ChartInstaller {
  /** `helm template`: the rendered manifests. Offline; writes nothing. */
  render(chart: ChartRelease): Promise<string>
  /** `helm upgrade --install`; returns what helm printed (the chart's NOTES). Rerunning is safe. */
  install(chart: ChartRelease): Promise<string>
}
