/** The ChartInstaller port through the helm binary ($HELM_BIN or helm on PATH). */
import type { ChartInstaller, ChartRelease } from '../ports/chart.port.js'
import { runHelm } from './helm-run.js'

/** Renders and installs the bundled chart with helm, on the cluster the kube flags name. */
export function helmChartInstaller(connection: {
  kubeconfig?: string | undefined
  context?: string | undefined
}): ChartInstaller {
  const bin = process.env.HELM_BIN ?? 'helm'
  const kubeFlags = [
    ...(connection.kubeconfig ? ['--kubeconfig', connection.kubeconfig] : []),
    ...(connection.context ? ['--kube-context', connection.context] : []),
  ]
  const valueArgs = (c: ChartRelease) => [
    c.release,
    c.chartDir,
    '-n',
    c.namespace,
    ...Object.entries(c.setFiles).flatMap(([key, path]) => ['--set-file', `${key}=${path}`]),
    ...c.sets.flatMap((s) => ['--set', s]),
    ...c.setStrings.flatMap((s) => ['--set-string', s]),
  ]
  return {
    render: async (c) => (await runHelm(bin, ['template', ...valueArgs(c)])).stdout,
    install: async (c) => (await runHelm(bin, ['upgrade', '--install', ...valueArgs(c), ...kubeFlags])).stdout,
  }
}
